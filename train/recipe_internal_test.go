package train

import "testing"

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
