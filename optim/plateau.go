package optim

import (
	"fmt"
	"math"
	"sort"
)

// MultiStep multiplies the rate by Gamma at each of the Milestones, as
// torch.optim.lr_scheduler.MultiStepLR: Base * Gamma^(the number of
// milestones <= step). A milestone given twice decays twice, as in
// PyTorch.
type MultiStep struct {
	Base       float64 // rate at step 0
	Milestones []int   // steps at which the rate decays (any order)
	Gamma      float64 // multiplicative factor of each decay (PyTorch's default is 0.1)
}

// LR returns Base * Gamma^k, k the number of milestones at or before step.
func (m MultiStep) LR(step int) float64 {
	k := 0
	for _, s := range m.Milestones {
		if s <= step {
			k++
		}
	}
	return m.Base * math.Pow(m.Gamma, float64(k))
}

// SortedMilestones returns the milestones in increasing order.
func (m MultiStep) SortedMilestones() []int {
	s := append([]int(nil), m.Milestones...)
	sort.Ints(s)
	return s
}

// Plateau lowers the rate when a metric stops improving, as
// torch.optim.lr_scheduler.ReduceLROnPlateau in mode "min" with its
// relative threshold: after each epoch, Step(metric) compares the metric
// (normally the validation loss) with the best so far; when it has not
// been below best*(1-Threshold) for more than Patience epochs the rate is
// multiplied by Factor (not below MinLR), and Cooldown epochs follow in
// which bad epochs are not counted.
//
// Unlike a Schedule it has state; its exported fields are all of it, so
// that a checkpoint can save and restore it (as JSON). Start it with
// NewPlateau.
type Plateau struct {
	Factor    float64 `json:"factor"`    // (0, 1); PyTorch's default 0.1
	Patience  int     `json:"patience"`  // bad epochs tolerated; PyTorch's default 10
	Threshold float64 `json:"threshold"` // relative improvement that counts; PyTorch's default 1e-4
	Cooldown  int     `json:"cooldown"`  // epochs after a decay that count no bad epoch
	MinLR     float64 `json:"min_lr"`    // the rate never goes below it

	Rate     float64 `json:"lr"`        // the current rate
	Best     float64 `json:"best"`      // the best metric so far, when HasBest
	HasBest  bool    `json:"has_best"`  // false: PyTorch's best of +Inf
	Bad      int     `json:"bad"`       // PyTorch's num_bad_epochs
	CoolLeft int     `json:"cool_left"` // PyTorch's cooldown_counter
}

// NewPlateau returns a Plateau at rate lr with PyTorch's threshold (1e-4)
// and no cooldown. It returns an error for a factor outside (0, 1) or a
// negative patience.
func NewPlateau(lr, factor float64, patience int, minLR float64) (*Plateau, error) {
	if !(factor > 0 && factor < 1) {
		return nil, fmt.Errorf("optim.NewPlateau: factor %v: want 0 < factor < 1", factor)
	}
	if patience < 0 {
		return nil, fmt.Errorf("optim.NewPlateau: patience %d: want 0 or more", patience)
	}
	return &Plateau{Factor: factor, Patience: patience, Threshold: 1e-4, MinLR: minLR, Rate: lr}, nil
}

// LR returns the current rate.
func (p *Plateau) LR() float64 { return p.Rate }

// Step records the metric of an epoch and lowers the rate if it has not
// improved for more than Patience epochs. It reports whether the rate was
// lowered.
func (p *Plateau) Step(metric float64) bool {
	best := math.Inf(1)
	if p.HasBest {
		best = p.Best
	}
	if metric < best*(1-p.Threshold) {
		p.HasBest = true
		p.Best, p.Bad = metric, 0
	} else {
		p.Bad++
	}
	if p.CoolLeft > 0 {
		p.CoolLeft--
		p.Bad = 0
	}
	if p.Bad <= p.Patience {
		return false
	}
	lowered := false
	if next := math.Max(p.Rate*p.Factor, p.MinLR); p.Rate-next > 1e-8 { // PyTorch's eps
		p.Rate, lowered = next, true
	}
	p.CoolLeft, p.Bad = p.Cooldown, 0
	return lowered
}
