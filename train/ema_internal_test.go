package train

import (
	"encoding/json"

	"fmt"
	"github.com/resgo/resgo/backend"
	_ "github.com/resgo/resgo/backend/ref"
	"github.com/resgo/resgo/tensor"
	"math"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// Parity with timm's ModelEmaV2 update as torch 1.13 computes it: fixtures
// made by scripts/make_recipe_fixtures.py at test time.

type recipeFixture struct {
	Torch string `json:"torch"`
	EMA   []struct {
		Decay  float64     `json:"decay"`
		EMA0   []float64   `json:"ema0"`
		Models [][]float64 `json:"models"`
		Steps  [][]float64 `json:"steps"`
	} `json:"ema"`
	EMACounter []struct {
		Decay  float64 `json:"decay"`
		Start  int64   `json:"start"`
		Models []int64 `json:"models"`
		Steps  []int64 `json:"steps"`
	} `json:"ema_counter"`
	Metrics struct {
		Logits    []float64 `json:"logits"`
		Labels    []int     `json:"labels"`
		Classes   int       `json:"classes"`
		Top1      int       `json:"top1"`
		Top5      int       `json:"top5"`
		Precision []float64 `json:"precision"`
		Recall    []float64 `json:"recall"`
		F1        []float64 `json:"f1"`
	} `json:"metrics"`
	Weighted struct {
		Logits  []float64 `json:"logits"`
		Labels  []int     `json:"labels"`
		Weights []float64 `json:"weights"`
		Cases   []struct {
			Smoothing float64   `json:"smoothing"`
			Loss      float64   `json:"loss"`
			Grad      []float64 `json:"grad"`
		} `json:"cases"`
	} `json:"weighted"`
}

var (
	recipeOnce sync.Once
	recipeData *recipeFixture
	recipeErr  error
	recipeSkip bool
)

// loadRecipeFixture runs the fixture script once; it skips the test when
// /usr/bin/python3 cannot import torch, unless CI=true or
// RESGO_REQUIRE_TORCH=1.
func loadRecipeFixture(t *testing.T) *recipeFixture {
	t.Helper()
	recipeOnce.Do(func() {
		if err := exec.Command("/usr/bin/python3", "-c", "import torch").Run(); err != nil {
			recipeErr, recipeSkip = fmt.Errorf("/usr/bin/python3 cannot import torch (Debian's python3-torch): %v", err), true
			return
		}
		out, err := exec.Command("/usr/bin/python3", "../scripts/make_recipe_fixtures.py").Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				err = fmt.Errorf("%v\n%s", err, ee.Stderr)
			}
			recipeErr = fmt.Errorf("make_recipe_fixtures.py failed: %v", err)
			return
		}
		var f recipeFixture
		if err := json.Unmarshal(out, &f); err != nil {
			recipeErr = fmt.Errorf("make_recipe_fixtures.py output: %v", err)
			return
		}
		recipeData = &f
	})
	if recipeErr != nil {
		if !recipeSkip || os.Getenv("CI") == "true" || os.Getenv("RESGO_REQUIRE_TORCH") == "1" {
			t.Fatal(recipeErr)
		}
		t.Skip(recipeErr)
	}
	return recipeData
}

func TestTorchEMAUpdate(t *testing.T) {
	f := loadRecipeFixture(t)
	n, exact := 0, 0
	for _, c := range f.EMA {
		ema := make([]float32, len(c.EMA0))
		for i, v := range c.EMA0 {
			ema[i] = float32(v)
		}
		for step, m := range c.Models {
			src := make([]float32, len(m))
			for i, v := range m {
				src[i] = float32(v)
			}
			emaBlend(ema, src, c.Decay)
			for i, got := range ema {
				want := float32(c.Steps[step][i])
				n++
				if got == want {
					exact++
				} else if math.Abs(float64(got-want)) > 1e-6*math.Abs(float64(want)) {
					t.Errorf("decay %v, step %d, [%d]: %v, torch %v", c.Decay, step, i, got, want)
				}
			}
		}
	}
	t.Logf("%d values from torch %s, %d bit-identical", n, f.Torch, exact)
	if exact != n {
		t.Errorf("%d of %d values differ from torch's in the last bit", n-exact, n)
	}
	for _, c := range f.EMACounter {
		v := c.Start
		for step, m := range c.Models {
			v = emaCount(v, m, c.Decay)
			if v != c.Steps[step] {
				t.Errorf("num_batches_tracked, decay %v, step %d: %d, timm/torch %d", c.Decay, step, v, c.Steps[step])
			}
		}
	}
}

// TestTorchMetrics: top-1 and top-5 counts as timm's accuracy() with
// torch.topk, per-class precision, recall and F1 as written out with torch
// ops in the fixture script.
func TestTorchMetrics(t *testing.T) {
	f := loadRecipeFixture(t).Metrics
	k := f.Classes
	logits := make([]float32, len(f.Logits))
	for i, v := range f.Logits {
		logits[i] = float32(v)
	}
	r := &EvalResult{Confusion: make([][]int, k)}
	for i := range r.Confusion {
		r.Confusion[i] = make([]int, k)
	}
	top1, top5 := 0, 0
	for i, l := range f.Labels {
		row := logits[i*k : (i+1)*k]
		r.Confusion[l][argmax(row)]++
		if inTopK(row, l, 1) {
			top1++
		}
		if inTopK(row, l, 5) {
			top5++
		}
	}
	if top1 != f.Top1 || top5 != f.Top5 {
		t.Errorf("top-1 %d, top-5 %d; torch %d, %d", top1, top5, f.Top1, f.Top5)
	}
	for name, got := range map[string][]float64{"precision": r.Precision(), "recall": r.Recall(), "f1": r.F1()} {
		want := map[string][]float64{"precision": f.Precision, "recall": f.Recall, "f1": f.F1}[name]
		for c := range got {
			if math.Abs(got[c]-want[c]) > 1e-12 {
				t.Errorf("%s of class %d: %v, torch %v", name, c, got[c], want[c])
			}
		}
	}
}

// TestTorchWeightedCrossEntropy: the loss and gradient of
// CrossEntropyLoss(weight=, label_smoothing=) as torch 1.13 computes them.
func TestTorchWeightedCrossEntropy(t *testing.T) {
	f := loadRecipeFixture(t).Weighted
	b, err := backend.New("ref", 1)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, len(f.Logits))
	for i, v := range f.Logits {
		x[i] = float32(v)
	}
	logits := tensor.FromValues(x, len(f.Labels), len(f.Weights))
	for _, c := range f.Cases {
		var d tensor.Tensor
		var loss float64
		if err := backend.Do(b, func() {
			loss = WeightedCrossEntropy(b, &d, logits, f.Labels, f.Weights, float32(c.Smoothing))
		}); err != nil {
			t.Fatal(err)
		}
		if math.Abs(loss-c.Loss) > 1e-6*math.Abs(c.Loss) {
			t.Errorf("smoothing %v: loss %.9g, torch %.9g", c.Smoothing, loss, c.Loss)
		}
		for i, g := range d.Values() {
			if math.Abs(float64(g)-c.Grad[i]) > 1e-6 {
				t.Errorf("smoothing %v: grad[%d] = %v, torch %v", c.Smoothing, i, g, c.Grad[i])
			}
		}
	}
}
