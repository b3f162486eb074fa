package train

import (
	"strings"
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/optim"
)

func TestEarlyStoppingCount(t *testing.T) {
	losses := []float64{1.0, 0.8, 0.85, 0.8, 0.79, 0.9, 0.9, 0.9}
	// patience 3: epochs 3 and 4 do not improve on 0.8 (equal is no
	// improvement), epoch 5 does, epochs 6, 7 and 8 do not: stop after 8.
	var s RecipeState
	stopAt := 0
	for i, l := range losses {
		s.observeLoss(l, i == 0, 3)
		if s.StoppedEarly {
			stopAt = i + 1
			break
		}
	}
	if stopAt != 8 || s.BestLoss != 0.79 {
		t.Errorf("stopped after epoch %d with best %v, want 8 and 0.79", stopAt, s.BestLoss)
	}
}

func TestRecipeStateCheck(t *testing.T) {
	good := RecipeState{Plateau: &plateau0}
	if err := good.check(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []RecipeState{
		{BadEpochs: -1},
		{Plateau: &optim.Plateau{Factor: 2, Rate: 0.1}},
		{Plateau: &optim.Plateau{Factor: 0.5, Patience: -1, Rate: 0.1}},
		{Plateau: &optim.Plateau{Factor: 0.5, Rate: -0.1}},
	} {
		if err := bad.check(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// plateau0 is a fresh plateau schedule.
var plateau0 = optim.Plateau{Factor: 0.1, Patience: 10, Threshold: 1e-4, Rate: 0.1}

// TestRecipeWeightDecays: --norm-weight-decay reaches the BN layers'
// gamma and beta, --bias-weight-decay every "bias" (winning for a BN's
// beta, as in torchvision's set_weight_decay), and neither the
// convolutions' or fc's weights; without BN, the convolutions' biases.
func TestRecipeWeightDecays(t *testing.T) {
	b, err := backend.New("ref", 1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := resnet.New(b, "resnet20", resnet.Options{IncludeTop: true, NumClasses: 3})
	if err != nil {
		t.Fatal(err)
	}
	params := nn.Params(m, true)
	if got := weightDecays(m, params, Recipe{}); got != nil {
		t.Errorf("no norm or bias weight decay: %v", got)
	}
	isBN := func(name string) bool {
		return strings.HasPrefix(name, "bn") || strings.Contains(name, ".bn") || strings.Contains(name, ".downsample.1.")
	}
	norm, bias := 1e-5, 0.0
	for _, tc := range []struct {
		r    Recipe
		want func(name string) (float64, bool)
	}{
		{Recipe{NormWeightDecay: &norm}, func(n string) (float64, bool) { return norm, isBN(n) }},
		{Recipe{BiasWeightDecay: &bias}, func(n string) (float64, bool) { return bias, strings.HasSuffix(n, ".bias") }},
		{Recipe{NormWeightDecay: &norm, BiasWeightDecay: &bias}, func(n string) (float64, bool) {
			if strings.HasSuffix(n, ".bias") {
				return bias, true
			}
			return norm, isBN(n)
		}},
	} {
		got := weightDecays(m, params, tc.r)
		nBN := 0
		for _, p := range params {
			wd, ok := got[p.Name]
			want, wantOK := tc.want(p.Name)
			if ok != wantOK || wd != want && ok {
				t.Errorf("%+v: %s: weight decay %v (%v), want %v (%v)", tc.r, p.Name, wd, ok, want, wantOK)
			}
			if isBN(p.Name) {
				nBN++
			}
		}
		if len(got) == 0 || got["fc.weight"] != 0 || nBN < 2*19 {
			t.Errorf("%+v: %d decays, %d BN parameters", tc.r, len(got), nBN)
		}
		if _, ok := got["fc.weight"]; ok {
			t.Errorf("%+v: fc.weight has its own weight decay", tc.r)
		}
	}
	nobn, err := resnet.New(b, "resnet20_nobn", resnet.Options{IncludeTop: true, NumClasses: 3})
	if err != nil {
		t.Fatal(err)
	}
	nobnParams := nn.Params(nobn, true)
	got := weightDecays(nobn, nobnParams, Recipe{NormWeightDecay: &norm, BiasWeightDecay: &bias})
	for _, p := range nobnParams {
		if wd, ok := got[p.Name]; ok != strings.HasSuffix(p.Name, ".bias") || wd != 0 {
			t.Errorf("without BN: %s: weight decay %v (%v)", p.Name, wd, ok)
		}
	}
	if _, ok := got["layer2.0.downsample.0.bias"]; !ok {
		t.Errorf("without BN: %v", got)
	}
}
