// Package train trains a ResNet on a dataset the way the tutorial's
// train.py does, and more: the three transfer-learning modes, validation
// after every epoch, the best checkpoint (weights and metadata) and the
// last one (with the optimizer's state, to resume) written atomically,
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
	"maps"
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
	// Recipe: clipping, EMA, more schedules, early stopping (recipe.go).
	Recipe

	// Augment is the training augmentation; Eval the evaluation
	// preprocessing, also stored in the checkpoint for prediction. With
	// pretrained torchvision weights, Eval's sizes and normalization come
	// from the weights.
	Augment transform.Augment `json:"augment"`
	Eval    transform.Preset  `json:"eval"`

	// Data records how the caller opened the datasets, for a resumed run
	// to reopen them the same way; train itself does not read it.
	Data DataSource `json:"data,omitzero"`

	Workers int    `json:"-"` // loader goroutines (0: one per CPU)
	Out     string `json:"-"` // output folder
	// Overwrite lets New start a run in an output folder that is not
	// empty: Run then removes the files of the run there before (RunFiles)
	// and leaves anything else. Without it New refuses such a folder.
	Overwrite bool  `json:"-"`
	Hooks     Hooks `json:"-"` // how the caller follows the training
	// Dist trains on several processes (see Distributed, train/dist.go).
	Dist Distributed `json:"-"`
}

// DataSource is how a training's data was opened, as the command line's
// --data, --val and --val-split say it (with Config.Seed, the split's
// seed).
type DataSource struct {
	Spec   string `json:"spec,omitempty"`
	ValDir string `json:"val_dir,omitempty"`
	// Split says that Spec, a single folder of class folders, was split
	// by ValSplit.
	Split    bool    `json:"split,omitempty"`
	ValSplit float64 `json:"val_split,omitempty"`
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
	// TrainData and ValData identify the data the run started with, so
	// that a resume refuses data that changed since (nil in checkpoints of
	// earlier versions).
	TrainData *DataPrint `json:"train_data,omitempty"`
	ValData   *DataPrint `json:"val_data,omitempty"`
	// RecipeState: the plateau schedule, early stopping (recipe.go).
	RecipeState
}

// ErrInterrupted is returned by Run when its context is cancelled: the last
// checkpoint has been written and Resume continues from it.
var ErrInterrupted = errors.New("training interrupted; the last checkpoint is saved, resume to continue")

// ErrFinished is wrapped by the error of Resume, and of Run, for a run that
// has already trained all its epochs: there is nothing to do unless more
// epochs are asked for.
var ErrFinished = errors.New("the run has finished")

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
	fresh   bool          // a new run (New), whose output folder Run has not prepared yet
	ema     *EMA          // the model EMA (Recipe.ModelEMA), or nil
	dp      *dataParallel // data-parallel training (train/dist.go); nil in one process

	dlogits  tensor.Tensor
	dlogits2 tensor.Tensor // the reversed labels' gradient, when mixing (mix.go)
}

// Files written in the output folder.
const (
	BestFile    = "best.safetensors"
	LastFile    = "last.safetensors"
	ClassFile   = "class_indices.json"
	HistoryFile = "history.csv"
)

// RunFiles are the files Run writes into the output folder (its Hooks may
// write more).
var RunFiles = []string{BestFile, LastFile, ClassFile, HistoryFile, EMAFile}

// New prepares a training of a new model (random or pretrained weights).
// log receives a line for each unreadable image the training skips. valDS
// may be nil or empty: the run then has no validation (and no best
// checkpoint). New refuses invalid settings (see Config.Validate), an empty
// training set, and an output folder that is not empty unless
// cfg.Overwrite is set.
func New(b backend.Backend, cfg Config, trainDS, valDS data.Dataset, log io.Writer) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if trainDS == nil || trainDS.Len() == 0 {
		return nil, errors.New("train: no training images")
	}
	if valDS != nil && valDS.Len() > 0 && !slices.Equal(valDS.Classes(), trainDS.Classes()) {
		return nil, fmt.Errorf("train: the validation data has classes %v, the training data %v", valDS.Classes(), trainDS.Classes())
	}
	if err := CheckOut(cfg.Out, cfg.Overwrite || cfg.Dist.notRoot()); err != nil {
		return nil, err
	}
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
			InChannels: cfg.Eval.Channels, SmallStem: cfg.SmallStem, Seed: cfg.Seed, ZeroInitResidual: cfg.ZeroInitResidual})
		if err != nil {
			return nil, err
		}
	}
	if err := cfg.Transfer.Apply(m); err != nil {
		return nil, err
	}
	t := &Trainer{cfg: cfg, b: b, model: m, trainDS: trainDS, valDS: valDS, classes: classes, log: log, fresh: true}
	t.state.Config = cfg
	tp := Fingerprint(trainDS)
	t.state.TrainData = &tp
	if t.hasVal() {
		vp := Fingerprint(valDS)
		t.state.ValData = &vp
	}
	if err := t.setup(); err != nil {
		return nil, err
	}
	if err := t.setupRecipe(); err != nil {
		return nil, err
	}
	return t, nil
}

// ReadState reads the training state of the run whose last checkpoint is
// in dir: its settings, position and history.
func ReadState(dir string) (*State, error) {
	path := filepath.Join(dir, LastFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no run to resume in %s: %s does not exist", dir, path)
	}
	_, meta, err := modelfile.Read(path)
	if err != nil {
		return nil, err
	}
	return stateOf(path, meta)
}

// stateOf decodes the training state of a checkpoint's metadata.
func stateOf(path string, meta *modelfile.Meta) (*State, error) {
	if len(meta.Train) == 0 {
		return nil, fmt.Errorf("%s: no training state to resume (an exported model?)", path)
	}
	var st State
	if err := json.Unmarshal(meta.Train, &st); err != nil {
		return nil, fmt.Errorf("%s: unreadable training state: %w", path, err)
	}
	return &st, nil
}

// Resume prepares to continue the training whose last checkpoint is in
// cfg.Out, with the settings it was started with: only cfg's Epochs may
// extend it (fewer are ignored), and Out, Workers and Hooks are taken from
// cfg. The datasets must be those the run started with (the same split):
// Resume fails, naming what changed, if they differ. It fails with
// ErrFinished if the run has trained all its epochs and cfg asks for no
// more.
func Resume(b backend.Backend, cfg Config, trainDS, valDS data.Dataset, log io.Writer) (*Trainer, error) {
	path := filepath.Join(cfg.Out, LastFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no run to resume in %s: %s does not exist", cfg.Out, path)
	}
	m, meta, err := modelfile.Load(b, path)
	if err != nil {
		return nil, err
	}
	stp, err := stateOf(path, meta)
	if err != nil {
		return nil, err
	}
	st := *stp
	saved := st.Config
	saved.Out, saved.Workers, saved.Hooks, saved.Dist = cfg.Out, cfg.Workers, cfg.Hooks, cfg.Dist
	if cfg.Epochs > saved.Epochs {
		saved.Epochs = cfg.Epochs
	}
	if err := saved.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st.Cursor.Epoch >= saved.Epochs {
		return nil, fmt.Errorf("%s: %w: it trained all its %d epochs; ask for more epochs to continue it", path, ErrFinished, saved.Epochs)
	}
	if trainDS == nil || trainDS.Len() == 0 {
		return nil, errors.New("train: no training images")
	}
	if !slices.Equal(meta.Classes, trainDS.Classes()) {
		return nil, fmt.Errorf("%s was trained on classes %v, the data has %v", path, meta.Classes, trainDS.Classes())
	}
	if st.TrainData != nil {
		if err := diffData("training", *st.TrainData, Fingerprint(trainDS), meta.Classes); err != nil {
			return nil, fmt.Errorf("cannot resume %s: %w", path, err)
		}
	}
	hasVal := valDS != nil && valDS.Len() > 0
	switch {
	case st.ValData != nil && hasVal:
		if err := diffData("validation", *st.ValData, Fingerprint(valDS), meta.Classes); err != nil {
			return nil, fmt.Errorf("cannot resume %s: %w", path, err)
		}
	case st.TrainData != nil && (st.ValData != nil) != hasVal:
		was, now := "no validation data", "has validation data"
		if st.ValData != nil {
			was, now = "validation data", "has none"
		}
		return nil, fmt.Errorf("cannot resume %s: the run started with %s, the data now %s", path, was, now)
	}
	if err := st.check(trainDS.Len()); err != nil {
		return nil, fmt.Errorf("cannot resume %s: %w", path, err)
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
	if err := t.setupRecipe(); err != nil {
		return nil, fmt.Errorf("cannot resume %s: %w", path, err)
	}
	if t.ema != nil {
		if err := t.ema.load(path, sd); err != nil {
			return nil, err
		}
	}
	if err := checkFinite(b, m, optState); err != nil {
		return nil, fmt.Errorf("cannot resume %s: %w: %w", path, ErrNonFinite, err)
	}
	return t, nil
}

// check refuses a saved state that cannot be resumed on a training set of
// n images: a position outside the data, negative or inconsistent counts,
// sums that are not finite.
func (s *State) check(n int) error {
	c := s.Cursor
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case c.Epoch < 0 || c.Batch < 0 || c.Pos < 0:
		return fmt.Errorf("a negative position in the training state (epoch %d, batch %d, image %d)", c.Epoch, c.Batch, c.Pos)
	case c.Pos > n:
		return fmt.Errorf("it stopped at image %d of an epoch, the training data has %d images: the data changed since the run started", c.Pos, n)
	case c.Batch > c.Pos:
		return fmt.Errorf("the training state is at batch %d after %d images", c.Batch, c.Pos)
	case len(s.History) != c.Epoch:
		return fmt.Errorf("the training state has a history of %d epochs at epoch %d", len(s.History), c.Epoch+1)
	case s.Step < 0 || s.Seen < 0 || s.Correct < 0 || s.Correct > s.Seen:
		return fmt.Errorf("the training state counts %d steps, %d images seen, %d correct", s.Step, s.Seen, s.Correct)
	case !finite(s.LossSum) || s.LossSum < 0 || !finite(s.Elapsed) || s.Elapsed < 0 || !finite(s.BestAcc):
		return fmt.Errorf("the training state has a loss sum of %v, %v seconds, a best accuracy of %v", s.LossSum, s.Elapsed, s.BestAcc)
	}
	return nil
}

// hasVal reports whether the run has validation data.
func (t *Trainer) hasVal() bool { return t.valDS != nil && t.valDS.Len() > 0 }

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
		t.opt, err = optim.NewSGD(params, optim.SGDConfig{LR: c.LR, Momentum: c.Momentum, WeightDecay: c.WeightDecay, Nesterov: c.Momentum > 0 && !c.NoNesterov})
	default:
		err = fmt.Errorf("optimizer %q: want adam, adamw or sgd", c.Optimizer)
	}
	if err != nil {
		return err
	}
	if err := t.applyRecipeOptim(params); err != nil {
		return err
	}
	if err := t.setupDist(); err != nil {
		return err
	}
	t.sched, err = schedule(c, stepsPerEpoch(t.trainLen(), c.Batch))
	return err
}

// schedule returns the learning-rate schedule of c for epochs of steps
// optimizer steps.
func schedule(c Config, steps int) (optim.Schedule, error) {
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
		s = optim.Cosine{Base: c.LR, Min: c.MinLR, TMax: max(1, c.Epochs*steps-c.warmupSteps(steps))}
	default:
		var ok bool
		if s, ok = recipeSchedule(c, steps); !ok {
			return nil, fmt.Errorf("schedule %q: want constant, step, multistep, cosine or plateau", c.Schedule)
		}
	}
	if w := c.warmupSteps(steps); w > 0 {
		s = optim.Warmup{Steps: w, Factor: 0.01, Then: s}
	}
	return s, nil
}

func stepsPerEpoch(n, batch int) int { return (n + batch - 1) / batch }

// Config returns the run's settings: for a resumed run, those it was
// started with (see Resume).
func (t *Trainer) Config() Config { return t.cfg }

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
// (when there is validation data) and writing the checkpoints,
// class_indices.json and the history into the output folder, and calls the
// configured Hooks as it goes. It first removes the temporary files that
// interrupted writes of RunFiles left in the folder. When ctx is cancelled
// it stops after the current step, writes the last checkpoint and returns
// ErrInterrupted.
//
// Run fails, writing no checkpoint, when the training diverges (an error
// wrapping ErrNonFinite that names the epoch, the step and, for a
// parameter, a running statistic or the optimizer's state, the tensor),
// and when an epoch has no readable training image or no readable
// validation image.
func (t *Trainer) Run(ctx context.Context) ([]EpochStats, error) {
	c := t.cfg
	if t.state.Cursor.Epoch >= c.Epochs {
		return t.state.History, fmt.Errorf("%w: it trained all its %d epochs", ErrFinished, c.Epochs)
	}
	if err := t.startDist(); err != nil {
		return nil, err
	}
	if err := t.prepareOut(); err != nil {
		return nil, err
	}
	if err := t.writeClassIndices(); err != nil {
		return nil, err
	}
	h, w := c.Augment.OutputSize(0, 0)
	if h == 0 {
		return nil, fmt.Errorf("the training augmentation must give a fixed size (a crop)")
	}
	train, err := data.NewLoader(t.trainDS, data.Options{BatchSize: c.Batch, Channels: c.Eval.Channels, Height: h, Width: w,
		Shuffle: true, Seed: c.Seed, Sampler: t.sampler(), Transform: c.Augment.Func(c.Eval.Norm), Workers: c.Workers, Log: t.log,
		SampleWeights: t.sampleWeights()})
	if err != nil {
		return nil, err
	}
	var val *data.Loader
	if t.hasVal() {
		if val, err = t.evalLoader(t.valShard()); err != nil {
			return nil, fmt.Errorf("validation data: %w", err)
		}
	}
	for t.state.Cursor.Epoch < c.Epochs && !t.state.StoppedEarly {
		epoch := t.state.Cursor.Epoch
		interrupted, err := t.trainEpoch(ctx, train)
		if err == nil {
			err = t.gatherEpoch() // the sums of all ranks
		}
		if err != nil {
			return t.state.History, err
		}
		if interrupted {
			if err := t.save(LastFile); err != nil {
				return t.state.History, err
			}
			return t.state.History, ErrInterrupted
		}
		if t.state.Seen == 0 {
			return t.state.History, fmt.Errorf("epoch %d: none of the %d training images could be read (each is reported above); nothing was trained",
				epoch+1, t.trainDS.Len())
		}
		st := EpochStats{Epoch: epoch + 1, LR: t.opt.LR(), TrainLoss: t.state.LossSum / float64(max(1, t.state.Seen)),
			TrainAcc: float64(t.state.Correct) / float64(max(1, t.state.Seen)), Seconds: t.state.Elapsed, NoVal: val == nil}
		st.ImagesPerSec = float64(t.state.Seen) / max(st.Seconds, 1e-9)
		if val != nil {
			vp := Progress{Phase: Validation, Epoch: epoch + 1, Epochs: c.Epochs, Steps: val.Len()}
			c.Hooks.passStart(vp)
			res, err := EvaluateWith(ctx, t.model, val, EvalOptions{Smoothing: c.LabelSmoothing, FlipTTA: c.ValTTA, OnBatch: func(done int) {
				vp.Step = done
				c.Hooks.batch(vp)
			}})
			if err == nil {
				err = t.gatherEval(res) // the results of all ranks' shares
			}
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
			if res.Images == 0 {
				return t.state.History, fmt.Errorf("epoch %d: none of the %d validation images could be read (each is reported above)",
					epoch+1, t.valDS.Len())
			}
			if math.IsNaN(res.Loss) || math.IsInf(res.Loss, 0) {
				return t.state.History, fmt.Errorf("epoch %d, after step %d: %w: the validation loss is %v; the checkpoints are left as they were (lower the learning rate)",
					epoch+1, t.state.Step, ErrNonFinite, res.Loss)
			}
			st.ValLoss, st.ValAcc = res.Loss, res.Accuracy
		}
		if err := t.endEpoch(ctx, val, &st); errors.Is(err, context.Canceled) {
			if err := t.save(LastFile); err != nil { // as when validating
				return t.state.History, err
			}
			return t.state.History, ErrInterrupted
		} else if err != nil {
			return t.state.History, err
		}
		// Nothing poisoned goes into a checkpoint: check before writing.
		opt, err := t.checkState()
		if err != nil {
			return t.state.History, err
		}
		best := val != nil && (st.ValAcc > t.state.BestAcc || t.state.bestUnset())
		t.state.History = append(t.state.History, st)

		t.state.Cursor = data.Cursor{Epoch: epoch + 1}
		t.state.LossSum, t.state.Correct, t.state.Seen, t.state.Elapsed = 0, 0, 0, 0
		if best {
			t.state.BestAcc = st.ValAcc
		}
		t.state.Finished = t.state.Cursor.Epoch >= c.Epochs || t.state.StoppedEarly
		if best {
			// The best model is for using: its weights and metadata, not
			// the optimizer's state (the last checkpoint has it).
			if err := t.write(BestFile, nil); err != nil {
				return t.state.History, err
			}
		}
		if err := t.write(LastFile, opt); err != nil {
			return t.state.History, err
		}
		if err := t.writeEMA(); err != nil {
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

// bestUnset reports whether no epoch of the history has been validated,
// so that the first validated one is the best so far.
func (s *State) bestUnset() bool {
	for _, h := range s.History {
		if !h.NoVal {
			return false
		}
	}
	return true
}

// checkState checks that the model's parameters and running statistics
// and the optimizer's state are finite, and returns the optimizer's state
// to save. The error names the epoch, the step and the tensor.
func (t *Trainer) checkState() (map[string]*tensor.Tensor, error) {
	opt := t.opt.State()
	if err := checkFinite(t.b, t.model, opt); err != nil {
		s := t.state
		return nil, fmt.Errorf("epoch %d, after step %d (batch %d of the epoch): %w: %w; the checkpoints are left as they were (lower the learning rate)",
			s.Cursor.Epoch+1, s.Step, s.Cursor.Batch, ErrNonFinite, err)
	}
	return opt, nil
}

// prepareOut makes the output folder, removes the temporary files that
// interrupted writes left there and, for a new run with Overwrite, the
// files of the run there before.
func (t *Trainer) prepareOut() error {
	dir := t.cfg.Out
	if !t.root() {
		return nil // rank 0 writes the output folder
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	removed, err := atomicfile.CleanStale(dir, RunFiles...)
	for _, p := range removed {
		if t.log != nil {
			fmt.Fprintf(t.log, "removed %s, left by an interrupted write\n", p)
		}
	}
	if err != nil {
		return err
	}
	if t.fresh && t.cfg.Overwrite {
		for _, name := range RunFiles {
			p := filepath.Join(dir, name)
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("overwriting the run in %s: %w", dir, err)
			}
		}
	}
	t.fresh = false
	return nil
}

// CheckOut refuses, with an error wrapping ErrOutNotEmpty, an output
// folder that exists and is not empty, unless overwrite is set. The
// temporary files of interrupted writes of RunFiles do not count: Run
// removes them. New calls it; a caller may call it before opening data.
func CheckOut(dir string, overwrite bool) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !slices.ContainsFunc(RunFiles, func(n string) bool { return atomicfile.IsTemp(e.Name(), n) }) {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 || overwrite {
		return nil
	}
	list := strings.Join(names[:min(len(names), 4)], ", ")
	if len(names) > 4 {
		list += fmt.Sprintf(" and %d more", len(names)-4)
	}
	return fmt.Errorf("%w: %s holds %s", ErrOutNotEmpty, dir, list)
}

// ErrOutNotEmpty is wrapped by New's error for an output folder that is
// not empty when Config.Overwrite is not set.
var ErrOutNotEmpty = errors.New("the output folder is not empty")

// trainEpoch trains from the state's cursor to the end of its epoch. It
// reports whether ctx was cancelled before the end.
func (t *Trainer) trainEpoch(ctx context.Context, loader *data.Loader) (interrupted bool, err error) {
	c := t.cfg
	epoch := t.state.Cursor.Epoch
	nn.SetTraining(t.model, true)
	it := t.resumeIter(loader)
	defer it.Close()
	start := time.Now()
	defer func() { t.state.Elapsed += time.Since(start).Seconds() }()
	p := t.trainProgress(t.state.Cursor.Batch, loader.Len(), t.state.Elapsed)
	c.Hooks.passStart(p)
	for {
		if stop, err := t.stopAll(ctx); err != nil || stop {
			c.Hooks.passEnd(p)
			return err == nil, err
		}
		batch := it.Next()
		if batch == nil {
			break
		}
		lr := t.stepLR()
		if math.IsNaN(lr) || math.IsInf(lr, 0) || lr < 0 {
			return false, fmt.Errorf("epoch %d, step %d: %w: the %s learning-rate schedule gives %v",
				epoch+1, t.state.Step+1, ErrNonFinite, c.Schedule, lr)
		}
		t.opt.SetLR(lr)
		if err := t.syncBuffers(); err != nil {
			return false, err
		}
		var loss float64
		var correct int
		err := backend.Do(t.b, func() {
			mix := t.mixBatch(batch)
			logits := t.model.Forward(batch.X)
			loss = t.mixedLoss(&t.dlogits, logits, batch.Labels, mix.Lam, float32(c.LabelSmoothing))
			correct = countCorrect(backend.Values(t.b, logits), batch.Labels)
			t.model.Backward(&t.dlogits, false)
		})
		if err == nil {
			err = t.averageGrads() // over the ranks
		}
		if err != nil {
			return false, err
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return false, fmt.Errorf("epoch %d, step %d (batch %d of %d): %w: the loss is %v; the checkpoints are left as they were (lower the learning rate)",
				epoch+1, t.state.Step+1, batch.Index+1, loader.Len(), ErrNonFinite, loss)
		}
		if err := t.clipGrads(); err != nil {
			return false, err
		}
		t.opt.Step()
		if err := t.afterStep(); err != nil {
			return false, err
		}
		n := len(batch.Labels)
		t.state.Step++
		t.state.LossSum += loss * float64(n)
		t.state.Correct += correct
		t.state.Seen += n
		t.state.Cursor = batch.Next
		batch.Release()
		p = t.trainProgress(batch.Index+1, loader.Len(), t.state.Elapsed+time.Since(start).Seconds())
		p.BatchLoss = loss
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
	batch := t.cfg.Batch
	if t.cfg.ValBatch > 0 {
		batch = t.cfg.ValBatch
	}
	return EvalLoader(ds, t.cfg.Eval, batch, t.cfg.Workers, t.log)
}

// EvalLoader returns a loader of ds with the evaluation preprocessing pre,
// in dataset order. Images smaller than pre's crop are enlarged by its
// resize first; without a crop, images must all have one size, that of the
// first readable image. It refuses a batch of more than MaxBatchValues
// values and more than MaxWorkers workers.
func EvalLoader(ds data.Dataset, pre transform.Preset, batch, workers int, log io.Writer) (*data.Loader, error) {
	if err := checkWorkers(workers); err != nil {
		return nil, err
	}
	if pre.CropSize < 0 || pre.CropSize > MaxSide || pre.ResizeSize < 0 || pre.ResizeSize > MaxSide {
		return nil, fmt.Errorf("preprocessing: resize %d, crop %d: want sides of 0 (none) to %d pixels", pre.ResizeSize, pre.CropSize, MaxSide)
	}
	h, w := pre.CropSize, pre.CropSize
	if h == 0 {
		if ds.Len() == 0 {
			return nil, fmt.Errorf("empty dataset")
		}
		var first error
		for i := range ds.Len() {
			img, err := ds.Image(i)
			if err == nil {
				h, w = pre.OutputSize(img.W, img.H)
				break
			}
			if first == nil {
				first = err
			}
		}
		if h == 0 {
			return nil, fmt.Errorf("none of the %d images could be read (the first error: %w)", ds.Len(), first)
		}
	}
	if err := CheckBatch(batch, pre.Channels, h, w); err != nil {
		return nil, fmt.Errorf("batch %d: %w", batch, err)
	}
	return data.NewLoader(ds, data.Options{BatchSize: batch, Channels: pre.Channels, Height: h, Width: w,
		Seed: 0, Workers: workers, Log: log,
		Transform: func(img *transform.Image, _ *rand.Rand, dst []float32) { pre.Apply(img, dst) }})
}

// save checks that the model and the optimizer's state are finite (see
// checkState) and writes a checkpoint of them.
func (t *Trainer) save(name string) error {
	opt, err := t.checkState()
	if err != nil {
		return err
	}
	return t.write(name, opt)
}

// write writes a checkpoint (model, optimizer state opt, metadata)
// atomically; without opt (nil) the checkpoint holds the model only, as
// BestFile does.
func (t *Trainer) write(name string, opt map[string]*tensor.Tensor) error {
	if !t.root() {
		return nil // rank 0 writes the output folder
	}
	raw, err := json.Marshal(t.state)
	if err != nil {
		return fmt.Errorf("checkpoint %s: training state: %w", name, err)
	}
	extra := map[string]*checkpoint.Tensor{}
	for k, v := range opt {
		extra[optimPrefix+k] = checkpoint.FromTensor(optimPrefix+k, v)
	}
	if t.ema != nil && opt != nil {
		maps.Copy(extra, t.ema.extras())
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
