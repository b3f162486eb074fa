package optim

import (
	"fmt"
	"math"

	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
)

// AdamConfig holds the hyperparameters of Adam and AdamW, with
// torch.optim.Adam's meaning. Start from DefaultAdam or DefaultAdamW: every
// field is used as given, zeros included.
type AdamConfig struct {
	LR          float64 // learning rate
	Beta1       float64 // decay of the first moment estimate, in [0, 1)
	Beta2       float64 // decay of the second moment estimate, in [0, 1)
	Eps         float64 // added to the denominator
	WeightDecay float64 // Adam: L2 penalty added to the gradient; AdamW: decoupled decay
	AMSGrad     bool    // use the maximum of the second moment estimates so far
}

// DefaultAdam returns PyTorch's defaults for Adam: lr 1e-3, betas (0.9,
// 0.999), eps 1e-8, no weight decay.
func DefaultAdam() AdamConfig {
	return AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
}

// DefaultAdamW returns PyTorch's defaults for AdamW: those of Adam with
// weight decay 0.01.
func DefaultAdamW() AdamConfig {
	c := DefaultAdam()
	c.WeightDecay = 0.01
	return c
}

// Adam is the Adam optimizer (NewAdam) or AdamW (NewAdamW), as
// torch.optim.Adam and torch.optim.AdamW compute them in their single-tensor
// implementation. For each parameter p with gradient g, at its step t:
//
//	p = p * (1 - lr*weight_decay)            AdamW
//	g = g + weight_decay*p                   Adam
//	m = beta1*m + (1-beta1)*g
//	v = beta2*v + (1-beta2)*g*g
//	vmax = max(vmax, v); v' = vmax (AMSGrad)  or  v' = v
//	denom = sqrt(v') / sqrt(1 - beta2^t) + eps
//	p = p - (lr / (1 - beta1^t)) * m / denom
//
// SetWeightDecay and SetLRScale give parameters their own weight_decay and
// lr, as parameter groups do. Its state per parameter is "step" (a rank-0
// float32 tensor, as PyTorch keeps it), "exp_avg" (m), "exp_avg_sq" (v) and,
// with AMSGrad, "max_exp_avg_sq" (vmax).
type Adam struct {
	base
	cfg       AdamConfig
	decoupled bool // AdamW
	st        []adamState
}

type adamState struct {
	step       int64
	m, v, vmax *tensor.Tensor // nil before the parameter's first step
}

// NewAdam returns an Adam optimizer over params (normally nn.Params(model,
// true)). It returns an error for invalid hyperparameters, as PyTorch does,
// and for parameters without a name, duplicated or not plain.
func NewAdam(params []nn.NamedVar, cfg AdamConfig) (*Adam, error) {
	return newAdam("Adam", params, cfg, false)
}

// NewAdamW returns an AdamW optimizer (Adam with decoupled weight decay)
// over params. Use DefaultAdamW for PyTorch's defaults.
func NewAdamW(params []nn.NamedVar, cfg AdamConfig) (*Adam, error) {
	return newAdam("AdamW", params, cfg, true)
}

func newAdam(kind string, params []nn.NamedVar, cfg AdamConfig, decoupled bool) (*Adam, error) {
	b, err := newBase(kind, params, cfg.LR)
	if err != nil {
		return nil, err
	}
	switch {
	case !(cfg.Beta1 >= 0 && cfg.Beta1 < 1):
		return nil, fmt.Errorf("optim.New%s: invalid beta1 %v", kind, cfg.Beta1)
	case !(cfg.Beta2 >= 0 && cfg.Beta2 < 1):
		return nil, fmt.Errorf("optim.New%s: invalid beta2 %v", kind, cfg.Beta2)
	case !(cfg.Eps >= 0) || math.IsInf(cfg.Eps, 1):
		return nil, fmt.Errorf("optim.New%s: invalid eps %v", kind, cfg.Eps)
	case !(cfg.WeightDecay >= 0) || math.IsInf(cfg.WeightDecay, 1):
		return nil, fmt.Errorf("optim.New%s: invalid weight decay %v", kind, cfg.WeightDecay)
	}
	return &Adam{base: b, cfg: cfg, decoupled: decoupled, st: make([]adamState, len(params))}, nil
}

// Config returns the optimizer's hyperparameters, with LR the current
// learning rate.
func (o *Adam) Config() AdamConfig {
	c := o.cfg
	c.LR = o.lr
	return c
}

// Decoupled reports whether the optimizer is AdamW.
func (o *Adam) Decoupled() bool { return o.decoupled }

// Step applies one Adam (or AdamW) update to every parameter that has a
// gradient and is not frozen, and advances those parameters' step counts.
func (o *Adam) Step() {
	c := o.cfg
	b1, keep1 := float32(c.Beta1), float32(1-c.Beta1)
	b2, keep2 := float32(c.Beta2), float32(1-c.Beta2)
	eps := float32(c.Eps)
	ams := c.AMSGrad
	for i := range o.params {
		p, g, ok := o.active(i)
		if !ok {
			continue
		}
		lr := o.lrOf(i)
		wdi := o.wdOf(i, c.WeightDecay) // the parameter group's weight_decay
		wd := float32(wdi)
		l2 := !o.decoupled && wdi != 0
		decay := float32(1 - lr*wdi) // AdamW: param.mul_(1 - lr*weight_decay)
		s := &o.st[i]
		if s.m == nil {
			shape := o.params[i].Value.Shape()
			s.m, s.v = tensor.New(shape...), tensor.New(shape...)
			if ams {
				s.vmax = tensor.New(shape...)
			}
		}
		s.step++
		// The step size and bias corrections are computed in float64 and
		// passed to the float32 kernels as scalars, as in PyTorch.
		t := float64(s.step)
		bc1 := 1 - math.Pow(c.Beta1, t)
		bc2 := 1 - math.Pow(c.Beta2, t)
		negStep := float32(-(lr / bc1))
		bc2Sqrt := float32(math.Sqrt(bc2))
		m, v := s.m.Mutable(), s.v.Mutable()
		var vmax []float32
		if ams {
			vmax = s.vmax.Mutable()
		}
		decoupled := o.decoupled
		parallel(len(p), func(lo, hi int) {
			for j := lo; j < hi; j++ {
				gj := g[j]
				if decoupled {
					p[j] *= decay
				} else if l2 {
					gj = fma32(p[j], wd, gj) // grad.add(param, alpha=weight_decay)
				}
				m[j] = fma32(gj, keep1, m[j]*b1)    // exp_avg.mul_(beta1).add_(grad, alpha=1-beta1)
				v[j] = fma32(keep2*gj, gj, v[j]*b2) // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1-beta2)
				vv := v[j]
				if ams {
					if !(vmax[j] >= vv) { // torch.maximum, NaN propagating
						vmax[j] = vv
					}
					vv = vmax[j]
				}
				denom := sqrt32(vv)/bc2Sqrt + eps
				p[j] += (negStep * m[j]) / denom // param.addcdiv_(exp_avg, denom, value=-step_size)
			}
		})
	}
}

// fields returns the state fields the optimizer keeps per parameter.
func (o *Adam) fields() []string {
	if o.cfg.AMSGrad {
		return []string{"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
	}
	return []string{"step", "exp_avg", "exp_avg_sq"}
}

// State returns copies of the step counts and moment estimates of the
// parameters updated at least once, keyed "<parameter>.step",
// "<parameter>.exp_avg", "<parameter>.exp_avg_sq" and, with AMSGrad,
// "<parameter>.max_exp_avg_sq".
func (o *Adam) State() map[string]*tensor.Tensor {
	out := make(map[string]*tensor.Tensor)
	for i, s := range o.st {
		if s.m == nil {
			continue
		}
		name := o.params[i].Name
		out[StateKey(name, "step")] = scalar(float32(s.step))
		out[StateKey(name, "exp_avg")] = s.m.Clone()
		out[StateKey(name, "exp_avg_sq")] = s.v.Clone()
		if s.vmax != nil {
			out[StateKey(name, "max_exp_avg_sq")] = s.vmax.Clone()
		}
	}
	return out
}

// LoadState replaces the step counts and moment estimates with copies of
// those in state. Each parameter must have all of its fields or none; one
// with none starts afresh.
func (o *Adam) LoadState(state map[string]*tensor.Tensor) error {
	fields := o.fields()
	parsed, err := o.parseState(state, fields, func(i int, f string) []int {
		if f == "step" {
			return nil
		}
		return o.params[i].Value.Shape()
	})
	if err != nil {
		return err
	}
	next := make([]adamState, len(o.st))
	for i, ts := range parsed {
		if ts == nil {
			continue
		}
		name := o.params[i].Name
		for _, f := range fields {
			if ts[f] == nil {
				return fmt.Errorf("optim.%s.LoadState: parameter %q has some state but no %q", o.kind, name, StateKey(name, f))
			}
		}
		step, err := stepCount(o.kind, StateKey(name, "step"), ts["step"])
		if err != nil {
			return err
		}
		shape := o.params[i].Value.Shape()
		next[i] = adamState{
			step: step,
			m:    tensor.FromValues(ts["exp_avg"].Values(), shape...),
			v:    tensor.FromValues(ts["exp_avg_sq"].Values(), shape...),
		}
		if o.cfg.AMSGrad {
			next[i].vmax = tensor.FromValues(ts["max_exp_avg_sq"].Values(), shape...)
		}
	}
	o.st = next
	return nil
}
