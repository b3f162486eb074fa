// Package train trains a ResNet on a dataset the way the tutorial's
// train.py does, and more: the three transfer-learning modes, validation
// after every epoch, the best and the last checkpoint written atomically,
// class_indices.json, a history CSV, and an exact resume after an
// interruption. It shows nothing itself: its caller follows the training
// through Hooks.
package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/internal/atomicfile"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/optim"
	"github.com/resgo/resgo/tensor"
	"github.com/resgo/resgo/transform"
)

// Config is a training run's settings. The defaults (Defaults) are the
// tutorial's: Adam, learning rate 1e-4, batch 16, 3 epochs.
type Config struct {
	Arch      string `json:"arch"`
	SmallStem bool   `json:"small_stem,omitempty"`
	// Weights are pretrained weights to start from ("" for random
	// initialization): a .pth or .safetensors file or a torchvision
	// weights name.
	Weights  string   `json:"weights,omitempty"`
	Transfer Transfer `json:"transfer"`

	Epochs         int     `json:"epochs"`
	Batch          int     `json:"batch"`
	Optimizer      string  `json:"optimizer"` // adam, adamw or sgd
	LR             float64 `json:"lr"`
	Momentum       float64 `json:"momentum"`
	WeightDecay    float64 `json:"weight_decay"`
	Schedule       string  `json:"schedule"` // constant, step or cosine
	StepEpochs     int     `json:"step_epochs,omitempty"`
	Gamma          float64 `json:"gamma,omitempty"`
	WarmupSteps    int     `json:"warmup_steps,omitempty"`
	LabelSmoothing float64 `json:"label_smoothing,omitempty"`
	Seed           uint64  `json:"seed"`

	// Augment is the training augmentation; Eval the evaluation
	// preprocessing, also stored in the checkpoint for prediction. With
	// pretrained torchvision weights, Eval's sizes and normalization come
	// from the weights.
	Augment transform.Augment `json:"augment"`
	Eval    transform.Preset  `json:"eval"`

	Workers int    `json:"-"` // loader goroutines (0: one per CPU)
	Out     string `json:"-"` // output folder
	Hooks   Hooks  `json:"-"` // how the caller follows the training
}

// Defaults returns the tutorial's settings for arch.
func Defaults(arch string) Config {
	return Config{Arch: arch, Epochs: 3, Batch: 16, Optimizer: "adam", LR: 1e-4, Momentum: 0.9,
		Schedule: "constant", Gamma: 0.1, Augment: transform.ImageNetTrain, Eval: transform.ImageNetV1}
}

// State is the training state kept in the last checkpoint, enough to
// resume exactly: the position in the data, the partial sums of the epoch
// under way and the history so far.
type State struct {
	Config   Config       `json:"config"`
	Cursor   data.Cursor  `json:"cursor"` // the next batch to train on
	Step     int          `json:"step"`   // optimizer steps taken
	LossSum  float64      `json:"loss_sum"`
	Correct  int          `json:"correct"`
	Seen     int          `json:"seen"`
	Elapsed  float64      `json:"elapsed"` // training seconds in the epoch under way
	BestAcc  float64      `json:"best_acc"`
	History  []EpochStats `json:"history"`
	Finished bool         `json:"finished"`
}

// ErrInterrupted is returned by Run when its context is cancelled: the last
// checkpoint has been written and Resume continues from it.
var ErrInterrupted = errors.New("training interrupted; the last checkpoint is saved, resume to continue")

// Trainer runs one training.
type Trainer struct {
	cfg     Config
	b       backend.Backend
	model   *resnet.Model
	opt     optim.Optimizer
	sched   optim.Schedule
	trainDS data.Dataset
	valDS   data.Dataset
	classes []string
	log     io.Writer
	state   State

	dlogits tensor.Tensor
}

// Files written in the output folder.
const (
	BestFile    = "best.safetensors"
	LastFile    = "last.safetensors"
	ClassFile   = "class_indices.json"
	HistoryFile = "history.csv"
)

// New prepares a training of a new model (random or pretrained weights).
// log receives a line for each unreadable image the training skips.
func New(b backend.Backend, cfg Config, trainDS, valDS data.Dataset, log io.Writer) (*Trainer, error) {
	classes := trainDS.Classes()
	var m *resnet.Model
	var err error
	if cfg.Weights != "" {
		var w *resnet.Weights
		m, w, err = Pretrained(b, cfg.Arch, cfg.Weights, len(classes), cfg.Seed)
		if err != nil {
			return nil, err
		}
		cfg.Arch = m.Name
		if c := m.Options.InChannels; c != cfg.Eval.Channels {
			return nil, fmt.Errorf("weights %s take %d-channel images, the data has %d", cfg.Weights, c, cfg.Eval.Channels)
		}
		if w != nil {
			// torchvision's weights come with their preprocessing.
			pre := w.Preset()
			cfg.Eval.ResizeSize, cfg.Eval.CropSize, cfg.Eval.Norm = pre.ResizeSize, pre.CropSize, pre.Norm
		}
	} else {
		if cfg.Transfer.From != 0 {
			return nil, fmt.Errorf("transfer mode %s needs pretrained --weights", cfg.Transfer)
		}
		m, err = resnet.New(b, cfg.Arch, resnet.Options{IncludeTop: true, NumClasses: len(classes),
			InChannels: cfg.Eval.Channels, SmallStem: cfg.SmallStem, Seed: cfg.Seed})
		if err != nil {
			return nil, err
		}
	}
	if err := cfg.Transfer.Apply(m); err != nil {
		return nil, err
	}
	t := &Trainer{cfg: cfg, b: b, model: m, trainDS: trainDS, valDS: valDS, classes: classes, log: log}
	t.state.Config = cfg
	if err := t.setup(); err != nil {
		return nil, err
	}
	return t, nil
}

// Resume prepares to continue the training whose last checkpoint is in
// cfg.Out, with the settings it was started with (cfg's Epochs may extend
// it; Out, Workers and Hooks are taken from cfg).
func Resume(b backend.Backend, cfg Config, trainDS, valDS data.Dataset, log io.Writer) (*Trainer, error) {
	path := filepath.Join(cfg.Out, LastFile)
	m, meta, err := modelfile.Load(b, path)
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(meta.Train, &st); err != nil {
		return nil, fmt.Errorf("%s: no training state to resume: %w", path, err)
	}
	saved := st.Config
	saved.Out, saved.Workers, saved.Hooks = cfg.Out, cfg.Workers, cfg.Hooks
	if cfg.Epochs > saved.Epochs {
		saved.Epochs = cfg.Epochs
	}
	if !slices.Equal(meta.Classes, trainDS.Classes()) {
		return nil, fmt.Errorf("%s was trained on classes %v, the data has %v", path, meta.Classes, trainDS.Classes())
	}
	if err := saved.Transfer.Apply(m); err != nil {
		return nil, err
	}
	t := &Trainer{cfg: saved, b: b, model: m, trainDS: trainDS, valDS: valDS, classes: meta.Classes, log: log, state: st}
	t.state.Config = saved
	if err := t.setup(); err != nil {
		return nil, err
	}
	sd, _, err := modelfile.Read(path)
	if err != nil {
		return nil, err
	}
	optState := map[string]*tensor.Tensor{}
	for _, k := range sd.Keys {
		if name, ok := strings.CutPrefix(k, optimPrefix); ok {
			optState[name] = sd.Get(k).ToTensor()
		}
	}
	if err := t.opt.LoadState(optState); err != nil {
		return nil, fmt.Errorf("%s: optimizer state: %w", path, err)
	}
	return t, nil
}

// optimPrefix names the optimizer's tensors in a checkpoint.
const optimPrefix = "optim."

// setup creates the optimizer and the schedule over the trainable
// parameters.
func (t *Trainer) setup() error {
	c := t.cfg
	params := nn.Params(t.model, true)
	var err error
	switch c.Optimizer {
	case "adam", "adamw":
		ac := optim.DefaultAdam()
		ac.LR, ac.WeightDecay = c.LR, c.WeightDecay
		if c.Optimizer == "adam" {
			t.opt, err = optim.NewAdam(params, ac)
		} else {
			t.opt, err = optim.NewAdamW(params, ac)
		}
	case "sgd":
		t.opt, err = optim.NewSGD(params, optim.SGDConfig{LR: c.LR, Momentum: c.Momentum, WeightDecay: c.WeightDecay, Nesterov: c.Momentum > 0})
	default:
		err = fmt.Errorf("optimizer %q: want adam, adamw or sgd", c.Optimizer)
	}
	if err != nil {
		return err
	}
	steps := stepsPerEpoch(t.trainDS.Len(), c.Batch)
	var s optim.Schedule
	switch c.Schedule {
	case "", "constant":
		s = optim.Constant(c.LR)
	case "step":
		n := c.StepEpochs
		if n < 1 {
			n = max(1, c.Epochs/3)
		}
		s = optim.PerEpoch{StepsPerEpoch: steps, Epochs: optim.StepDecay{Base: c.LR, StepSize: n, Gamma: c.Gamma}}
	case "cosine":
		s = optim.Cosine{Base: c.LR, TMax: max(1, c.Epochs*steps-c.WarmupSteps)}
	default:
		return fmt.Errorf("schedule %q: want constant, step or cosine", c.Schedule)
	}
	if c.WarmupSteps > 0 {
		s = optim.Warmup{Steps: c.WarmupSteps, Factor: 0.01, Then: s}
	}
	t.sched = s
	return nil
}

func stepsPerEpoch(n, batch int) int { return (n + batch - 1) / batch }

// Model returns the model being trained.
func (t *Trainer) Model() *resnet.Model { return t.model }

// TrainableParams returns the number of parameter elements the optimizer
// updates (the frozen ones left out).
func (t *Trainer) TrainableParams() int {
	n := 0
	for _, v := range nn.Params(t.model, true) {
		n += v.Value.Len()
	}
	return n
}

// History returns the statistics of the epochs trained so far.
func (t *Trainer) History() []EpochStats { return t.state.History }

// Run trains until the configured number of epochs, validating after each
// and writing the checkpoints, class_indices.json and the history into the
// output folder, and calls the configured Hooks as it goes. When ctx is
// cancelled it stops after the current step, writes the last checkpoint
// and returns ErrInterrupted.
func (t *Trainer) Run(ctx context.Context) ([]EpochStats, error) {
	c := t.cfg
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return nil, err
	}
	if err := WriteClassIndices(filepath.Join(c.Out, ClassFile), t.classes); err != nil {
		return nil, err
	}
	h, w := c.Augment.OutputSize(0, 0)
	if h == 0 {
		return nil, fmt.Errorf("the training augmentation must give a fixed size (a crop)")
	}
	train, err := data.NewLoader(t.trainDS, data.Options{BatchSize: c.Batch, Channels: c.Eval.Channels, Height: h, Width: w,
		Shuffle: true, Seed: c.Seed, Transform: c.Augment.Func(c.Eval.Norm), Workers: c.Workers, Log: t.log})
	if err != nil {
		return nil, err
	}
	val, err := t.evalLoader(t.valDS)
	if err != nil {
		return nil, err
	}
	for t.state.Cursor.Epoch < c.Epochs {
		epoch := t.state.Cursor.Epoch
		interrupted, err := t.trainEpoch(ctx, train)
		if err != nil {
			return t.state.History, err
		}
		if interrupted {
			if err := t.save(LastFile); err != nil {
				return t.state.History, err
			}
			return t.state.History, ErrInterrupted
		}
		st := EpochStats{Epoch: epoch + 1, LR: t.opt.LR(), TrainLoss: t.state.LossSum / float64(max(1, t.state.Seen)),
			TrainAcc: float64(t.state.Correct) / float64(max(1, t.state.Seen)), Seconds: t.state.Elapsed}
		st.ImagesPerSec = float64(t.state.Seen) / max(st.Seconds, 1e-9)
		vp := Progress{Phase: Validation, Epoch: epoch + 1, Epochs: c.Epochs, Steps: val.Len()}
		c.Hooks.passStart(vp)
		res, err := Evaluate(ctx, t.model, val, c.LabelSmoothing, func(done int) {
			vp.Step = done
			c.Hooks.batch(vp)
		})
		c.Hooks.passEnd(vp)
		if errors.Is(err, context.Canceled) {
			// Interrupted while validating: the epoch's training is done
			// and the cursor is at its end, so resuming validates again.
			if err := t.save(LastFile); err != nil {
				return t.state.History, err
			}
			return t.state.History, ErrInterrupted
		}
		if err != nil {
			return t.state.History, err
		}
		st.ValLoss, st.ValAcc = res.Loss, res.Accuracy
		t.state.History = append(t.state.History, st)

		t.state.Cursor = data.Cursor{Epoch: epoch + 1}
		t.state.LossSum, t.state.Correct, t.state.Seen, t.state.Elapsed = 0, 0, 0, 0
		best := st.ValAcc > t.state.BestAcc || len(t.state.History) == 1
		if best {
			t.state.BestAcc = st.ValAcc
		}
		t.state.Finished = t.state.Cursor.Epoch >= c.Epochs
		if best {
			if err := t.save(BestFile); err != nil {
				return t.state.History, err
			}
		}
		if err := t.save(LastFile); err != nil {
			return t.state.History, err
		}
		if err := t.writeHistory(); err != nil {
			return t.state.History, err
		}
		if err := c.Hooks.epoch(st, slices.Clone(t.state.History)); err != nil {
			return t.state.History, err
		}
	}
	return t.state.History, nil
}

// trainEpoch trains from the state's cursor to the end of its epoch. It
// reports whether ctx was cancelled before the end.
func (t *Trainer) trainEpoch(ctx context.Context, loader *data.Loader) (interrupted bool, err error) {
	c := t.cfg
	epoch := t.state.Cursor.Epoch
	nn.SetTraining(t.model, true)
	it := loader.Resume(t.state.Cursor)
	defer it.Close()
	start := time.Now()
	defer func() { t.state.Elapsed += time.Since(start).Seconds() }()
	p := t.trainProgress(t.state.Cursor.Batch, loader.Len(), t.state.Elapsed)
	c.Hooks.passStart(p)
	for {
		if ctx.Err() != nil {
			c.Hooks.passEnd(p)
			return true, nil
		}
		batch := it.Next()
		if batch == nil {
			break
		}
		t.opt.SetLR(t.sched.LR(t.state.Step))
		var loss float64
		var correct int
		err := backend.Do(t.b, func() {
			logits := t.model.Forward(batch.X)
			loss = t.b.SoftmaxCrossEntropy(&t.dlogits, logits, batch.Labels, float32(c.LabelSmoothing))
			correct = countCorrect(backend.Values(t.b, logits), batch.Labels)
			t.model.Backward(&t.dlogits, false)
		})
		if err != nil {
			return false, err
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return false, fmt.Errorf("epoch %d, batch %d: the loss is %v: lower the learning rate", epoch+1, batch.Index+1, loss)
		}
		t.opt.Step()
		n := len(batch.Labels)
		t.state.Step++
		t.state.LossSum += loss * float64(n)
		t.state.Correct += correct
		t.state.Seen += n
		t.state.Cursor = batch.Next
		batch.Release()
		p = t.trainProgress(batch.Index+1, loader.Len(), t.state.Elapsed+time.Since(start).Seconds())
		c.Hooks.batch(p)
	}
	c.Hooks.passEnd(p)
	return false, nil
}

// trainProgress returns the progress of the training pass of the epoch
// under way after step of its steps batches and seconds of training.
func (t *Trainer) trainProgress(step, steps int, seconds float64) Progress {
	s := &t.state
	p := Progress{Phase: Training, Epoch: s.Cursor.Epoch + 1, Epochs: t.cfg.Epochs, Step: step, Steps: steps}
	if s.Seen > 0 {
		n := float64(s.Seen)
		p.Loss, p.Accuracy, p.ImagesPerSec = s.LossSum/n, float64(s.Correct)/n, n/max(seconds, 1e-9)
	}
	return p
}

// countCorrect counts the rows of logits whose largest entry is the label.
func countCorrect(logits []float32, labels []int) int {
	k := len(logits) / len(labels)
	correct := 0
	for i, l := range labels {
		if argmax(logits[i*k:(i+1)*k]) == l {
			correct++
		}
	}
	return correct
}

func argmax(v []float32) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

// evalLoader returns a loader of ds with the evaluation preprocessing, in
// order.
func (t *Trainer) evalLoader(ds data.Dataset) (*data.Loader, error) {
	return EvalLoader(ds, t.cfg.Eval, t.cfg.Batch, t.cfg.Workers, t.log)
}

// EvalLoader returns a loader of ds with the evaluation preprocessing pre,
// in dataset order. Images smaller than pre's crop are enlarged by its
// resize first; without a crop, images must all have one size.
func EvalLoader(ds data.Dataset, pre transform.Preset, batch, workers int, log io.Writer) (*data.Loader, error) {
	h, w := pre.CropSize, pre.CropSize
	if h == 0 {
		if ds.Len() == 0 {
			return nil, fmt.Errorf("empty dataset")
		}
		img, err := ds.Image(0)
		if err != nil {
			return nil, err
		}
		h, w = pre.OutputSize(img.W, img.H)
	}
	return data.NewLoader(ds, data.Options{BatchSize: batch, Channels: pre.Channels, Height: h, Width: w,
		Seed: 0, Workers: workers, Log: log,
		Transform: func(img *transform.Image, _ *rand.Rand, dst []float32) { pre.Apply(img, dst) }})
}

// save writes a checkpoint (model, optimizer state, metadata) atomically.
func (t *Trainer) save(name string) error {
	raw, err := json.Marshal(t.state)
	if err != nil {
		return err
	}
	extra := map[string]*checkpoint.Tensor{}
	for k, v := range t.opt.State() {
		extra[optimPrefix+k] = checkpoint.FromTensor(optimPrefix+k, v)
	}
	meta := modelfile.Meta{Arch: t.model.Name, NumClasses: len(t.classes), InChannels: t.model.Options.InChannels,
		SmallStem: t.model.Arch.SmallStem, Classes: t.classes, Preprocess: t.cfg.Eval, Train: raw}
	return modelfile.Write(filepath.Join(t.cfg.Out, name), t.model, meta, extra)
}

// WriteClassIndices writes class_indices.json as the tutorial does:
// {"0": "daisy", "1": "dandelion", ...}, indented by 4.
func WriteClassIndices(path string, classes []string) error {
	var b strings.Builder
	b.WriteString("{\n")
	for i, c := range classes {
		name, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("%s: class %q: %w", path, c, err)
		}
		fmt.Fprintf(&b, "    %s: %s", strconv.Quote(strconv.Itoa(i)), name)
		if i < len(classes)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("}\n")
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := io.WriteString(w, b.String())
		return err
	})
}
