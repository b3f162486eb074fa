package train

import (
	"testing"

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
