package train_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/train"
)

// recipeConfig is smallConfig with every recipe option on: SGD without
// Nesterov, clipping, the EMA, warmup, the plateau schedule, mixup and
// cutmix, RandAugment, random erasing, weight decays of their own for the
// BN parameters and the biases.
func recipeConfig(out string) train.Config {
	cfg := smallConfig(out)
	cfg.Epochs, cfg.Optimizer, cfg.LR, cfg.Schedule, cfg.Gamma = 2, "sgd", 0.05, "plateau", 0.5
	normWD, biasWD := 0.0, 1e-3
	cfg.WeightDecay, cfg.NormWeightDecay, cfg.BiasWeightDecay = 5e-4, &normWD, &biasWD
	cfg.ClipGrad, cfg.ModelEMA, cfg.ModelEMADecay = 0.5, true, 0.9
	cfg.WarmupEpochs, cfg.PlateauPatience, cfg.NoNesterov = 1, 0, true
	cfg.Mix = train.Mix{MixupAlpha: 0.8, CutmixAlpha: 1}
	cfg.Augment.ReProb, cfg.Augment.AutoAugment = 0.5, "rand-m9-n2"
	return cfg
}

// TestRecipeResumeIsExact: a run with clipping, the EMA and the plateau
// schedule, interrupted and resumed, ends with the same weights, EMA and
// history as a straight one; ema.safetensors and the EMA columns of
// history.csv are written.
func TestRecipeResumeIsExact(t *testing.T) {
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
	b, err := backend.New("ref", 2)
	if err != nil {
		t.Fatal(err)
	}
	run := func(out string, ctx context.Context) (*train.Trainer, error) {
		tr, err := train.New(b, recipeConfig(out), trainDS, valDS, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tr.Run(ctx)
		return tr, err
	}
	outA := filepath.Join(dir, "a")
	straight, err := run(outA, context.Background())
	if err != nil {
		t.Fatal(err)
	}
	outB := filepath.Join(dir, "b")
	// Interrupted in epoch 2, after the first epoch's plateau step.
	if _, err := run(outB, &stopAfter{context.Background(), 9}); !errors.Is(err, train.ErrInterrupted) {
		t.Fatalf("interrupted run: %v", err)
	}
	resumed, err := train.Resume(b, recipeConfig(outB), trainDS, valDS, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resumed.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{train.LastFile, train.EMAFile} {
		ma, _, err := modelfile.Load(b, filepath.Join(outA, name))
		if err != nil {
			t.Fatal(err)
		}
		mb, _, err := modelfile.Load(b, filepath.Join(outB, name))
		if err != nil {
			t.Fatal(err)
		}
		sa, sb := nn.State(ma), nn.State(mb)
		for i := range sa {
			if sa[i].Kind != nn.Counter && !sameBits(sa[i].Value.Values(), sb[i].Value.Values()) {
				t.Errorf("%s: %s differs between the straight and the resumed run", name, sa[i].Name)
			}
		}
	}
	// The EMA is not the model: it lags it.
	ema, _, err := modelfile.Load(b, filepath.Join(outA, train.EMAFile))
	if err != nil {
		t.Fatal(err)
	}
	if sameBits(nn.State(ema)[0].Value.Values(), nn.State(straight.Model())[0].Value.Values()) {
		t.Error("the EMA's conv1.weight equals the model's")
	}
	h1, h2 := straight.History(), resumed.History()
	if len(h1) != 2 || len(h2) != 2 {
		t.Fatalf("histories of %d and %d epochs", len(h1), len(h2))
	}
	for i := range h1 {
		if h1[i].ValLoss != h2[i].ValLoss || h1[i].EMAValAcc != h2[i].EMAValAcc || h1[i].LR != h2[i].LR || !h1[i].HasEMA {
			t.Errorf("epoch %d: %+v vs %+v", i+1, h1[i], h2[i])
		}
	}
	f, err := os.Open(filepath.Join(outA, train.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || !strings.HasSuffix(strings.Join(rows[0], ","), "ema_val_loss,ema_val_acc") || rows[1][9] == "" {
		t.Errorf("history.csv: %v", rows)
	}
}

func TestRecipeValidate(t *testing.T) {
	for _, tc := range []struct {
		edit  func(c *train.Config)
		field string
	}{
		{func(c *train.Config) { c.ClipGrad = -1 }, "ClipGrad"},
		{func(c *train.Config) { c.ModelEMADecay = 1 }, "ModelEMADecay"},
		{func(c *train.Config) { c.Schedule = "multistep" }, "Milestones"},
		{func(c *train.Config) { c.Schedule, c.Milestones = "multistep", []int{0} }, "Milestones"},
		{func(c *train.Config) { c.Schedule, c.Gamma = "plateau", 1 }, "Gamma"},
		{func(c *train.Config) { c.MinLR = 1 }, "MinLR"},
		{func(c *train.Config) { c.WarmupEpochs = 100 }, "WarmupEpochs"},
		{func(c *train.Config) { c.BackboneLRScale = -0.1 }, "BackboneLRScale"},
		{func(c *train.Config) { c.Patience = -1 }, "Patience"},
		{func(c *train.Config) { c.NormWeightDecay = new(-1e-4) }, "NormWeightDecay"},
		{func(c *train.Config) { c.BiasWeightDecay = new(math.NaN()) }, "BiasWeightDecay"},
		{func(c *train.Config) { c.BiasWeightDecay = new(math.Inf(1)) }, "BiasWeightDecay"},
		{func(c *train.Config) { c.Schedule = "linear" }, "Schedule"},
	} {
		cfg := smallConfig(t.TempDir())
		tc.edit(&cfg)
		var ce *train.ConfigError
		if err := cfg.Validate(); !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%s: Validate() = %v", tc.field, err)
		}
	}
}

// TestBackboneLRScale: with a vanishing backbone factor only the fc head
// learns (the factor's arithmetic is checked against torch's parameter
// groups in optim).
func TestBackboneLRScale(t *testing.T) {
	dir := t.TempDir()
	_, ds := tinyFolder(t, dir, 4)
	cfg := tinyConfig(filepath.Join(dir, "run"))
	cfg.Optimizer, cfg.LR, cfg.BackboneLRScale = "sgd", 0.1, 1e-30
	tr, err := train.New(testBackend(t), cfg, ds, nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	before := map[string][]float32{}
	for _, p := range nn.Params(tr.Model(), true) {
		before[p.Name] = append([]float32(nil), p.Value.Values()...)
	}
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range nn.Params(tr.Model(), true) {
		moved := 0.0
		for i, v := range p.Value.Values() {
			moved = max(moved, math.Abs(float64(v-before[p.Name][i])))
		}
		// A backbone parameter moves by lr*1e-30*gradient at most.
		if head := strings.HasPrefix(p.Name, "fc."); head != (moved > 1e-20) {
			t.Errorf("%s moved by %g in an epoch", p.Name, moved)
		}
	}
}

// TestBalancedClassWeights: "balanced" weights are computed from the
// training data (n / (classes x count)) and kept in the run's settings; a
// run with them and class-balanced sampling trains.
func TestBalancedClassWeights(t *testing.T) {
	dir := t.TempDir()
	_, ds := tinyFolder(t, dir, 4)
	sub := data.Subset(ds, []int{0, 1, 2, 3, 4, 8}) // 4, 1 and 1 images
	cfg := tinyConfig(filepath.Join(dir, "run"))
	cfg.BalancedWeights, cfg.Balanced = true, true
	tr, err := train.New(testBackend(t), cfg, sub, nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	w := tr.Config().ClassWeights
	if len(w) != 3 || w[0] != 0.5 || w[1] != 2 || w[2] != 2 {
		t.Errorf("balanced weights %v, want [0.5 2 2]", w)
	}
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg.ClassWeights, cfg.BalancedWeights, cfg.Out = []float64{1, 2}, false, filepath.Join(dir, "run2")
	if _, err := train.New(testBackend(t), cfg, sub, nil, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "2 weights for 3 classes") {
		t.Errorf("two weights for three classes: %v", err)
	}
}
