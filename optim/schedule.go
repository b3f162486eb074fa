package optim

import "math"

// Schedule maps a step index to a learning rate. Index 0 is the first step.
// A schedule is a pure function of the index, so resuming training needs
// only the index. What a step is (an optimizer step or an epoch) is the
// caller's choice: PyTorch's schedulers advance once per scheduler.step()
// call, and the index here counts those calls. PerEpoch adapts an
// epoch-indexed schedule to a global optimizer-step index.
//
// Typical use, before each optimizer step or at the start of each epoch:
//
//	opt.SetLR(sched.LR(i))
type Schedule interface {
	LR(step int) float64
}

// ScheduleFunc adapts a function to the Schedule interface.
type ScheduleFunc func(step int) float64

// LR returns f(step).
func (f ScheduleFunc) LR(step int) float64 { return f(step) }

// Constant is a fixed learning rate.
type Constant float64

// LR returns the constant rate, whatever the step.
func (c Constant) LR(int) float64 { return float64(c) }

// StepDecay multiplies the rate by Gamma every StepSize steps, as
// torch.optim.lr_scheduler.StepLR: Base * Gamma^floor(step/StepSize).
type StepDecay struct {
	Base     float64 // rate at step 0
	StepSize int     // steps between decays (> 0)
	Gamma    float64 // multiplicative factor of each decay (PyTorch's default is 0.1)
}

// LR returns Base * Gamma^floor(step/StepSize). It panics if StepSize is
// not positive.
func (s StepDecay) LR(step int) float64 {
	if s.StepSize <= 0 {
		panic("optim.StepDecay: StepSize must be positive")
	}
	return s.Base * math.Pow(s.Gamma, float64(floorDiv(step, s.StepSize)))
}

// Cosine anneals the rate from Base to Min over TMax steps along half a
// cosine, as torch.optim.lr_scheduler.CosineAnnealingLR's closed form:
//
//	Min + (Base - Min) * (1 + cos(pi * step / TMax)) / 2
//
// It reaches Min at step TMax. Like PyTorch's scheduler it does not stop
// there: past TMax the rate rises again along the cosine, so set TMax to the
// length of training (in the units of the step index).
type Cosine struct {
	Base float64 // rate at step 0
	Min  float64 // rate at step TMax (PyTorch's eta_min)
	TMax int     // steps from Base to Min (> 0)
}

// LR returns the annealed rate at step. It panics if TMax is not positive.
func (c Cosine) LR(step int) float64 {
	if c.TMax <= 0 {
		panic("optim.Cosine: TMax must be positive")
	}
	return c.Min + (c.Base-c.Min)*(1+math.Cos(math.Pi*float64(step)/float64(c.TMax)))/2
}

// Warmup ramps the rate linearly from Factor times Then's first rate up to
// that rate over Steps steps, then follows Then, started afresh:
//
//	step < Steps:   Then.LR(0) * (Factor + (1-Factor) * step/Steps)
//	step >= Steps:  Then.LR(step - Steps)
//
// This is torchvision's recipe, SequentialLR([LinearLR(start_factor=Factor,
// total_iters=Steps), then], milestones=[Steps]); give Then the length of
// training minus Steps (for example Cosine's TMax).
type Warmup struct {
	Steps  int      // length of the warmup (0: none)
	Factor float64  // fraction of the rate at step 0, in [0, 1]
	Then   Schedule // the schedule after the warmup
}

// LR returns the warmed-up rate at step.
func (w Warmup) LR(step int) float64 {
	if step >= w.Steps {
		return w.Then.LR(step - w.Steps)
	}
	return w.Then.LR(0) * (w.Factor + (1-w.Factor)*float64(step)/float64(w.Steps))
}

// PerEpoch drives an epoch-indexed schedule from a global optimizer-step
// index: LR(step) = Epochs.LR(step / StepsPerEpoch), so the rate changes at
// epoch boundaries only, as when PyTorch's scheduler.step() is called once
// per epoch. (For a rate that changes every optimizer step, index the
// schedule by optimizer steps directly, with TMax and StepSize in steps.)
type PerEpoch struct {
	StepsPerEpoch int      // optimizer steps in an epoch (> 0)
	Epochs        Schedule // the schedule indexed by epoch
}

// LR returns the rate of the epoch that step falls in. It panics if
// StepsPerEpoch is not positive.
func (p PerEpoch) LR(step int) float64 {
	if p.StepsPerEpoch <= 0 {
		panic("optim.PerEpoch: StepsPerEpoch must be positive")
	}
	return p.Epochs.LR(floorDiv(step, p.StepsPerEpoch))
}

// floorDiv is Python's a // b for b > 0.
func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
