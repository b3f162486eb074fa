package optim

import (
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }

func TestSchedules(t *testing.T) {
	cases := []struct {
		name string
		s    Schedule
		want map[int]float64
	}{
		{"constant", Constant(0.01), map[int]float64{0: 0.01, 1000: 0.01}},
		{"func", ScheduleFunc(func(i int) float64 { return float64(i) }), map[int]float64{3: 3}},
		{"step", StepDecay{Base: 0.1, StepSize: 7, Gamma: 0.1}, map[int]float64{0: 0.1, 6: 0.1, 7: 0.01, 13: 0.01, 14: 0.001}},
		{"cosine", Cosine{Base: 0.1, Min: 0.001, TMax: 10}, map[int]float64{0: 0.1, 5: 0.0505, 10: 0.001, 20: 0.1}},
		{"warmup", Warmup{Steps: 4, Factor: 0.2, Then: Constant(1)}, map[int]float64{0: 0.2, 1: 0.4, 2: 0.6, 3: 0.8, 4: 1, 9: 1}},
		{"warmup none", Warmup{Steps: 0, Factor: 0.2, Then: Constant(1)}, map[int]float64{0: 1}},
		{"warmup cosine", Warmup{Steps: 2, Factor: 0, Then: Cosine{Base: 1, TMax: 4}}, map[int]float64{0: 0, 1: 0.5, 2: 1, 4: 0.5, 6: 0}},
		{"per epoch", PerEpoch{StepsPerEpoch: 100, Epochs: StepDecay{Base: 1, StepSize: 2, Gamma: 0.5}}, map[int]float64{0: 1, 199: 1, 200: 0.5, 399: 0.5, 400: 0.25}},
		{"per epoch cosine", PerEpoch{StepsPerEpoch: 10, Epochs: Cosine{Base: 1, TMax: 2}}, map[int]float64{9: 1, 10: 0.5, 25: 0}},
	}
	for _, c := range cases {
		for step, want := range c.want {
			if got := c.s.LR(step); !near(got, want) {
				t.Errorf("%s: LR(%d) = %v, want %v", c.name, step, got, want)
			}
		}
	}
	if floorDiv(-1, 3) != -1 || floorDiv(-3, 3) != -1 || floorDiv(4, 3) != 1 {
		t.Error("floorDiv is not Python's //")
	}
	for name, s := range map[string]Schedule{
		"step":      StepDecay{Base: 1},
		"cosine":    Cosine{Base: 1},
		"per epoch": PerEpoch{Epochs: Constant(1)},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s with a zero period did not panic", name)
				}
			}()
			s.LR(1)
		}()
	}
}
