package optim

import (
	"fmt"
	"math"

	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
)

// SGDConfig holds the hyperparameters of SGD, with torch.optim.SGD's meaning.
// The zero value of every field but LR means "off", as in PyTorch.
type SGDConfig struct {
	LR          float64 // learning rate (required, >= 0)
	Momentum    float64 // momentum factor (0: none)
	Dampening   float64 // dampening of the momentum
	WeightDecay float64 // L2 penalty added to the gradient
	Nesterov    bool    // Nesterov momentum (needs Momentum > 0 and Dampening 0)
}

// SGD is stochastic gradient descent with optional momentum, dampening,
// weight decay and Nesterov momentum, as torch.optim.SGD computes it. For
// each parameter p with gradient g:
//
//	g = g + weight_decay*p
//	buf = g                                  on the first step
//	buf = momentum*buf + (1-dampening)*g     afterwards
//	g = g + momentum*buf  (Nesterov)  or  g = buf
//	p = p - lr*g
//
// SetWeightDecay and SetLRScale give parameters their own weight_decay and
// lr, as parameter groups do. Its state is one "momentum_buffer" per
// parameter when Momentum is not 0.
type SGD struct {
	base
	cfg  SGDConfig
	bufs []*tensor.Tensor // momentum buffers, nil until a parameter's first step
}

// NewSGD returns an SGD optimizer over params (normally nn.Params(model,
// true)). It returns an error for invalid hyperparameters, as PyTorch does,
// and for parameters without a name, duplicated or not plain.
func NewSGD(params []nn.NamedVar, cfg SGDConfig) (*SGD, error) {
	b, err := newBase("SGD", params, cfg.LR)
	if err != nil {
		return nil, err
	}
	for _, h := range []struct {
		name string
		v    float64
	}{{"momentum", cfg.Momentum}, {"dampening", cfg.Dampening}, {"weight decay", cfg.WeightDecay}} {
		if !(h.v >= 0) || math.IsInf(h.v, 1) {
			return nil, fmt.Errorf("optim.NewSGD: invalid %s %v", h.name, h.v)
		}
	}
	if cfg.Nesterov && (cfg.Momentum <= 0 || cfg.Dampening != 0) {
		return nil, fmt.Errorf("optim.NewSGD: Nesterov momentum requires a momentum and zero dampening")
	}
	return &SGD{base: b, cfg: cfg, bufs: make([]*tensor.Tensor, len(params))}, nil
}

// Config returns the optimizer's hyperparameters, with LR the current
// learning rate.
func (o *SGD) Config() SGDConfig {
	c := o.cfg
	c.LR = o.lr
	return c
}

// Step applies one SGD update to every parameter that has a gradient and is
// not frozen.
func (o *SGD) Step() {
	mom := float32(o.cfg.Momentum)
	keep := float32(1 - o.cfg.Dampening)
	useMom, nesterov := o.cfg.Momentum != 0, o.cfg.Nesterov
	for i := range o.params {
		p, g, ok := o.active(i)
		if !ok {
			continue
		}
		negLR := float32(-o.lrOf(i))
		wdi := o.wdOf(i, o.cfg.WeightDecay) // the parameter group's weight_decay
		wd, useWD := float32(wdi), wdi != 0
		var buf []float32
		first := false
		if useMom {
			if o.bufs[i] == nil {
				o.bufs[i] = tensor.New(o.params[i].Value.Shape()...)
				first = true
			}
			buf = o.bufs[i].Mutable()
		}
		parallel(len(p), func(lo, hi int) {
			for j := lo; j < hi; j++ {
				d := g[j]
				if useWD {
					d = fma32(p[j], wd, d) // d_p.add(param, alpha=weight_decay)
				}
				if useMom {
					if first {
						buf[j] = d // torch.clone(d_p)
					} else {
						buf[j] = fma32(d, keep, buf[j]*mom) // buf.mul_(momentum).add_(d_p, alpha=1-dampening)
					}
					if nesterov {
						d = fma32(buf[j], mom, d) // d_p.add(buf, alpha=momentum)
					} else {
						d = buf[j]
					}
				}
				p[j] = fma32(d, negLR, p[j]) // param.add_(d_p, alpha=-lr)
			}
		})
	}
}

// State returns copies of the momentum buffers, keyed
// "<parameter>.momentum_buffer", for the parameters that have one.
func (o *SGD) State() map[string]*tensor.Tensor {
	st := make(map[string]*tensor.Tensor)
	for i, b := range o.bufs {
		if b != nil {
			st[StateKey(o.params[i].Name, "momentum_buffer")] = b.Clone()
		}
	}
	return st
}

// LoadState replaces the momentum buffers with copies of those in state. A
// parameter without a buffer in state starts afresh (its next step sets the
// buffer to its gradient). An SGD without momentum accepts only an empty
// state.
func (o *SGD) LoadState(state map[string]*tensor.Tensor) error {
	var fields []string
	if o.cfg.Momentum != 0 {
		fields = []string{"momentum_buffer"}
	}
	parsed, err := o.parseState(state, fields, func(i int, _ string) []int { return o.params[i].Value.Shape() })
	if err != nil {
		return err
	}
	for i := range o.bufs {
		o.bufs[i] = nil
		if t := parsed[i]["momentum_buffer"]; t != nil {
			o.bufs[i] = tensor.FromValues(t.Values(), o.params[i].Value.Shape()...)
		}
	}
	return nil
}
