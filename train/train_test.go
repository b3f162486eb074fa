package train_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/resgo/resgo/backend"
	_ "github.com/resgo/resgo/backend/dnnl"
	_ "github.com/resgo/resgo/backend/ref"
	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/internal/shapes"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/train"
	"github.com/resgo/resgo/transform"
)

const side = 24

// makeFolder writes n images per class of the given classes into
// root/<name>/.
func makeFolder(t *testing.T, root string, classes []int, n int, seed uint64) {
	t.Helper()
	if err := shapes.WriteFolder(root, classes, n, side, seed); err != nil {
		t.Fatal(err)
	}
}

func smallConfig(out string) train.Config {
	cfg := train.Defaults("resnet20")
	cfg.Epochs, cfg.Batch, cfg.LR, cfg.Seed, cfg.Out = 3, 16, 3e-3, 1, out
	cfg.Optimizer = "adam"
	cfg.Augment = transform.SmallImageTrain(side, 2)
	cfg.Eval = transform.Preset{Channels: 3, Norm: transform.Normalization{Mean: []float32{0.2, 0.2, 0.2}, Std: []float32{0.3, 0.3, 0.3}}}
	return cfg
}

func testBackend(t *testing.T) backend.Backend {
	b, err := backend.Default()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTrainImageFolderEndToEnd(t *testing.T) {
	dir := t.TempDir()
	makeFolder(t, filepath.Join(dir, "train"), []int{0, 1, 2}, 40, 1)
	makeFolder(t, filepath.Join(dir, "val"), []int{0, 1, 2}, 10, 2)
	bad := filepath.Join(dir, "train", "square", "corrupt.png")
	if err := os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\nnot really"), 0o644); err != nil {
		t.Fatal(err)
	}
	trainDS, valDS, err := data.OpenTrainVal(filepath.Join(dir, "train"), filepath.Join(dir, "val"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run")
	var log bytes.Buffer
	cfg := smallConfig(out)
	cfg.Epochs = 6
	rec := newRecorder(t, out)
	cfg.Hooks = rec.hooks()
	tr, err := train.New(testBackend(t), cfg, trainDS, valDS, &log)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := tr.Run(context.Background())
	if err != nil {
		t.Fatalf("%v\nlog:\n%s", err, log.String())
	}
	t.Log(log.String())
	if n := strings.Count(log.String(), "skipping corrupt image: "+bad); n != 1 {
		t.Errorf("the corrupt image was reported %d times, want once", n)
	}
	if len(hist) != 6 || !slices.Equal(rec.epochs, hist) {
		t.Fatalf("history %v, reported to the Epoch hook %v", hist, rec.epochs)
	}
	// 121 training files (one corrupt) in batches of 16, 30 validation
	// images: 8 and 2 batches an epoch.
	if rec.steps[train.Training] != 6*8 || rec.steps[train.Validation] != 6*2 || len(rec.starts) != 12 {
		t.Errorf("%d training and %d validation batches reported in %d passes, want 48 and 12 in 12",
			rec.steps[train.Training], rec.steps[train.Validation], len(rec.starts))
	}
	if last := hist[len(hist)-1]; last.ValAcc < 0.9 {
		t.Errorf("validation accuracy %.3f after 6 epochs, want >= 0.9", last.ValAcc)
	}
	for _, f := range []string{train.BestFile, train.LastFile, train.ClassFile, train.HistoryFile} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(out, train.ClassFile))
	if err != nil {
		t.Fatal(err)
	}
	var classes map[string]string
	if err := json.Unmarshal(raw, &classes); err != nil || classes["0"] != "disc" || classes["2"] != "stripes" {
		t.Errorf("class_indices.json: %s (%v)", raw, err)
	}
	// The best checkpoint rebuilds the model with its classes and
	// preprocessing.
	m, meta, err := modelfile.Load(testBackend(t), filepath.Join(out, train.BestFile))
	if err != nil {
		t.Fatal(err)
	}
	if meta.Arch != "resnet20" || len(meta.Classes) != 3 || m.Options.NumClasses != 3 {
		t.Errorf("checkpoint meta %+v", meta)
	}
	// The best checkpoint holds the model's tensors only, the last one the
	// optimizer's state too (Adam: two moments a parameter, and a step).
	optimTensors := func(name string) (n int, size int64) {
		sd, _, err := modelfile.Read(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range sd.Keys {
			if strings.HasPrefix(k, "optim.") {
				n++
			}
		}
		st, err := os.Stat(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		return n, st.Size()
	}
	bestOptim, bestSize := optimTensors(train.BestFile)
	lastOptim, lastSize := optimTensors(train.LastFile)
	if bestOptim != 0 || lastOptim < 2*len(nn.Params(m, true)) {
		t.Errorf("optimizer tensors: %d in %s, %d in %s", bestOptim, train.BestFile, lastOptim, train.LastFile)
	}
	params := int64(nn.NumParams(m))
	if bestSize > 4*params+256<<10 || lastSize < 3*4*params {
		t.Errorf("%s is %d bytes, %s %d, for %d parameters", train.BestFile, bestSize, train.LastFile, lastSize, params)
	}
}

// stopAfter is a context whose Err reports cancellation after n calls: the
// trainer checks it once per step, so training stops after n-1 steps, as
// after a Ctrl-C.
type stopAfter struct {
	context.Context
	n int
}

func (s *stopAfter) Err() error {
	s.n--
	if s.n < 0 {
		return context.Canceled
	}
	return nil
}

func TestResumeIsExact(t *testing.T) {
	dir := t.TempDir()
	makeFolder(t, filepath.Join(dir, "data"), []int{0, 1, 3}, 20, 5)
	ds, err := data.OpenImageFolder(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	trainDS, valDS, err := data.SplitFraction(ds, 0.2, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := backend.New("ref", 2) // deterministic summation order
	if err != nil {
		t.Fatal(err)
	}
	run := func(out string, ctx context.Context) (*train.Trainer, error) {
		cfg := smallConfig(out)
		cfg.Epochs = 2
		tr, err := train.New(b, cfg, trainDS, valDS, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tr.Run(ctx)
		return tr, err
	}
	straight, err := run(filepath.Join(dir, "a"), context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Interrupted after 2 steps of epoch 2, then resumed. The trainer checks
	// the context before each of epoch 1's 3 steps (48 images in batches of
	// 16) and once more at its end, twice while validating, then twice in
	// epoch 2.
	outB := filepath.Join(dir, "b")
	if _, err := run(outB, &stopAfter{context.Background(), 8}); !errors.Is(err, train.ErrInterrupted) {
		t.Fatalf("interrupted run: %v", err)
	}
	cfg := smallConfig(outB)
	cfg.Epochs = 2
	rec := newRecorder(t, outB)
	cfg.Hooks = rec.hooks()
	resumed, err := train.Resume(b, cfg, trainDS, valDS, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resumed.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The resumed epoch's training pass starts after its first 2 batches.
	if len(rec.starts) != 2 || rec.starts[0].Epoch != 2 || rec.starts[0].Step != 2 || rec.starts[0].Steps != 3 || len(rec.epochs) != 1 {
		t.Errorf("resumed run: passes %+v, epochs %+v", rec.starts, rec.epochs)
	}
	a, c := nn.State(straight.Model()), nn.State(resumed.Model())
	if len(a) != len(c) {
		t.Fatal("different models")
	}
	for i := range a {
		if a[i].Kind == nn.Counter {
			if *a[i].Count != *c[i].Count {
				t.Errorf("%s: %d vs %d", a[i].Name, *a[i].Count, *c[i].Count)
			}
			continue
		}
		if !sameBits(a[i].Value.Values(), c[i].Value.Values()) {
			t.Fatalf("%s differs between the straight and the resumed run", a[i].Name)
		}
	}
	if h1, h2 := straight.History(), resumed.History(); len(h1) != 2 || len(h2) != 2 || h1[1].ValAcc != h2[1].ValAcc || h1[1].TrainLoss != h2[1].TrainLoss {
		t.Errorf("histories differ: %+v vs %+v", h1, h2)
	}
}

// sameBits reports whether two slices hold bit-identical values.
func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func TestTransferModes(t *testing.T) {
	dir := t.TempDir()
	makeFolder(t, filepath.Join(dir, "source"), []int{0, 1, 2}, 16, 7)
	makeFolder(t, filepath.Join(dir, "target"), []int{2, 3}, 16, 8)
	b := testBackend(t)

	// "Pretrained" weights: a short training on the source classes.
	src, err := data.OpenImageFolder(filepath.Join(dir, "source"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := smallConfig(filepath.Join(dir, "pre"))
	cfg.Epochs = 1
	pre, err := train.New(b, cfg, src, src, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pre.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	weights := filepath.Join(dir, "pretrained.safetensors")
	if err := checkpoint.WriteSafetensors(weights, checkpoint.FromModule(pre.Model())); err != nil {
		t.Fatal(err)
	}
	before := map[string][]float32{}
	for _, v := range nn.State(pre.Model()) {
		if v.Kind != nn.Counter {
			before[v.Name] = append([]float32(nil), v.Value.Values()...)
		}
	}

	target, err := data.OpenImageFolder(filepath.Join(dir, "target"))
	if err != nil {
		t.Fatal(err)
	}
	// Which names each mode trains (resnet20 has layer1..layer3).
	trained := map[string]func(name string) bool{
		"head":        func(n string) bool { return strings.HasPrefix(n, "fc.") },
		"from:layer3": func(n string) bool { return strings.HasPrefix(n, "fc.") || strings.HasPrefix(n, "layer3.") },
		"from:layer2": func(n string) bool {
			return strings.HasPrefix(n, "fc.") || strings.HasPrefix(n, "layer3.") || strings.HasPrefix(n, "layer2.")
		},
		"all": func(string) bool { return true },
	}
	for mode, isTrained := range trained {
		tm, err := train.ParseTransfer(mode)
		if err != nil {
			t.Fatal(err)
		}
		cfg := smallConfig(filepath.Join(dir, "run-"+strings.ReplaceAll(mode, ":", "-")))
		cfg.Epochs, cfg.Weights, cfg.Transfer = 1, weights, tm
		tr, err := train.New(b, cfg, target, target, &bytes.Buffer{})
		if err != nil {
			t.Fatal(mode, err)
		}
		if tr.Model().FC.Out != 2 {
			t.Fatalf("%s: the head has %d outputs, want 2", mode, tr.Model().FC.Out)
		}
		if _, err := tr.Run(context.Background()); err != nil {
			t.Fatal(mode, err)
		}
		// Weights that are not torchvision's keep the configured
		// preprocessing.
		_, meta, err := modelfile.Read(filepath.Join(cfg.Out, train.LastFile))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(meta.Preprocess) != fmt.Sprint(cfg.Eval) {
			t.Errorf("%s: preprocessing %+v, configured %+v", mode, meta.Preprocess, cfg.Eval)
		}
		for _, v := range nn.State(tr.Model()) {
			if strings.HasPrefix(v.Name, "fc.") || v.Kind == nn.Counter {
				if v.Kind == nn.Counter && !isTrained(v.Name) && *v.Count != 0 {
					// Pretraining ran 3 steps: the frozen counters keep that.
					if *v.Count != 3 {
						t.Errorf("%s: frozen %s counts %d batches, pretrained 3", mode, v.Name, *v.Count)
					}
				}
				continue
			}
			same := sameBits(v.Value.Values(), before[v.Name])
			switch {
			case isTrained(v.Name) && same && v.Kind == nn.Parameter:
				t.Errorf("%s: trainable %s did not change", mode, v.Name)
			case !isTrained(v.Name) && !same:
				t.Errorf("%s: frozen %s changed", mode, v.Name)
			case !isTrained(v.Name) && v.Kind == nn.Parameter && v.Grad != nil:
				t.Errorf("%s: frozen %s got a gradient", mode, v.Name)
			}
		}
	}
	// A transfer mode without weights, and a stage the model lacks.
	cfg = smallConfig(filepath.Join(dir, "x"))
	if cfg.Transfer, err = train.ParseTransfer("head"); err != nil {
		t.Fatal(err)
	}
	if _, err := train.New(b, cfg, target, target, &bytes.Buffer{}); err == nil {
		t.Error("head mode without weights accepted")
	}
	cfg.Weights, cfg.Transfer = weights, train.Transfer{From: 4}
	if _, err := train.New(b, cfg, target, target, &bytes.Buffer{}); err == nil {
		t.Error("from:layer4 accepted for a 3-stage network")
	}
	if _, err := train.ParseTransfer("from:layer9"); err == nil {
		t.Error("from:layer9 parsed")
	}
}

// TestSameSeedSameWeights: on the default backend (oneDNN where built),
// the same seed gives bit-identical weights, so the demo's tables repeat.
func TestSameSeedSameWeights(t *testing.T) {
	dir := t.TempDir()
	makeFolder(t, filepath.Join(dir, "data"), []int{0, 2}, 24, 9)
	ds, err := data.OpenImageFolder(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	var models []*train.Trainer
	for i := range 2 {
		cfg := smallConfig(filepath.Join(dir, fmt.Sprint("run", i)))
		cfg.Epochs = 2
		tr, err := train.New(testBackend(t), cfg, ds, ds, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		models = append(models, tr)
	}
	a, b := nn.State(models[0].Model()), nn.State(models[1].Model())
	for i := range a {
		if a[i].Kind != nn.Counter && !sameBits(a[i].Value.Values(), b[i].Value.Values()) {
			t.Fatalf("%s differs between two runs with the same seed", a[i].Name)
		}
	}
}
