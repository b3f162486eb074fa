// Package optim provides the optimizers (SGD, Adam, AdamW) and learning-rate
// schedules used to train a ResNet, defined exactly as PyTorch 1.13 defines
// them (torch.optim with its single-tensor implementation, and the closed
// forms of torch.optim.lr_scheduler).
//
// An optimizer is built over a fixed list of named parameters, normally the
// trainable ones of a model:
//
//	opt, err := optim.NewSGD(nn.Params(model, true), optim.SGDConfig{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4})
//	sched := optim.Cosine{Base: 0.01, TMax: epochs}
//	for epoch := 0; epoch < epochs; epoch++ {
//		opt.SetLR(sched.LR(epoch))
//		for each batch { forward; backward; opt.Step() }
//	}
//
// Step updates, in place, every parameter that has a gradient (Grad not nil)
// and is not Frozen; others are left untouched and their optimizer state does
// not advance, as PyTorch skips parameters whose grad is None. The arithmetic
// is float32, element by element in the order PyTorch's CPU kernels use
// (including their fused multiply-adds), so results agree with PyTorch to
// within rounding (measured: bit-identical on an AVX2 build).
//
// State and LoadState export and restore everything an exact resume needs
// (momentum buffers, moment estimates, per-parameter step counts), keyed by
// parameter name and PyTorch's state field name, such as
// "layer1.0.conv1.weight.exp_avg" or "fc.bias.step". Hyperparameters (the
// configuration, the current learning rate, and the per-parameter factors and
// weight decays of SetLRScale and SetWeightDecay) are not part of the state:
// the caller rebuilds the optimizer with its configuration and sets the
// learning rate from its schedule, a pure function of the step index.
package optim

import (
	"fmt"
	"math"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
)

// Optimizer updates a fixed list of parameters from their gradients.
type Optimizer interface {
	// Step applies one update to every parameter that has a gradient and
	// is not frozen, and bumps the version of each parameter it changes.
	// It panics if a gradient's shape differs from its parameter's.
	Step()
	// LR returns the current learning rate.
	LR() float64
	// SetLR sets the learning rate used by the following steps. It panics
	// if lr is negative or not finite.
	SetLR(lr float64)
	// State returns copies of the optimizer's per-parameter state, keyed
	// "<parameter name>.<field>" with PyTorch's field names. A parameter
	// that has never been updated has no entries.
	State() map[string]*tensor.Tensor
	// SetLRScale multiplies the learning rate of the named parameters by
	// their factor, as a PyTorch parameter group whose lr is the base
	// rate times the factor (the others keep a factor of 1). A later
	// SetLR keeps the factors. It returns an error for a name the
	// optimizer does not have or a factor that is negative or not finite.
	SetLRScale(scales map[string]float64) error
	// SetWeightDecay gives the named parameters their own weight decay,
	// as PyTorch parameter groups with their own weight_decay (the others
	// keep the configured one), applied where the configured one is:
	// added to the gradient (SGD, Adam) or decoupled (AdamW). A later
	// call replaces the earlier one's decays. It returns an error for a
	// name the optimizer does not have or a decay that is negative or
	// not finite.
	SetWeightDecay(decays map[string]float64) error
	// LoadState replaces the optimizer's state with one returned by State
	// (of an optimizer of the same kind and configuration over parameters
	// of the same names and shapes); parameters without entries start
	// afresh. It copies the tensors. On error (an unknown name or field, a
	// wrong shape, a parameter with only some of its fields) the state is
	// left unchanged.
	LoadState(state map[string]*tensor.Tensor) error
}

// StateKey returns the State key of field (such as "exp_avg") of the named
// parameter: name + "." + field.
func StateKey(param, field string) string { return param + "." + field }

// base holds what every optimizer shares: the parameters and the learning
// rate.
type base struct {
	kind   string
	params []nn.NamedVar
	index  map[string]int
	lr     float64
	scale  []float64 // per-parameter factor of lr; nil: all 1
	// wd holds per-parameter weight decays where hasWD is set (nil: the
	// configured weight decay for all).
	wd    []float64
	hasWD []bool
}

func newBase(kind string, params []nn.NamedVar, lr float64) (base, error) {
	b := base{kind: kind, params: append([]nn.NamedVar(nil), params...), index: make(map[string]int, len(params)), lr: lr}
	if err := checkLR(lr); err != nil {
		return b, fmt.Errorf("optim.New%s: %v", kind, err)
	}
	for i, p := range params {
		switch {
		case p.Var == nil:
			return b, fmt.Errorf("optim.New%s: parameter %d (%q) has no variable", kind, i, p.Name)
		case p.Name == "":
			return b, fmt.Errorf("optim.New%s: parameter %d has no name", kind, i)
		case p.Kind != nn.Parameter:
			return b, fmt.Errorf("optim.New%s: %q is a buffer, not a parameter", kind, p.Name)
		case p.Value == nil || !p.Value.IsPlain():
			return b, fmt.Errorf("optim.New%s: parameter %q has no plain value", kind, p.Name)
		}
		if _, dup := b.index[p.Name]; dup {
			return b, fmt.Errorf("optim.New%s: parameter %q given twice", kind, p.Name)
		}
		b.index[p.Name] = i
	}
	return b, nil
}

func checkLR(lr float64) error {
	if !(lr >= 0) || math.IsInf(lr, 1) {
		return fmt.Errorf("invalid learning rate %v", lr)
	}
	return nil
}

// LR returns the current learning rate.
func (b *base) LR() float64 { return b.lr }

// SetLR sets the learning rate used by the following steps. It panics if lr
// is negative or not finite.
func (b *base) SetLR(lr float64) {
	if err := checkLR(lr); err != nil {
		panic("optim.SetLR: " + err.Error())
	}
	b.lr = lr
}

// SetLRScale sets per-parameter factors of the learning rate (see
// Optimizer).
func (b *base) SetLRScale(scales map[string]float64) error {
	next := make([]float64, len(b.params))
	for i := range next {
		next[i] = 1
	}
	if err := b.perParam("SetLRScale", "factor", scales, func(i int, v float64) { next[i] = v }); err != nil {
		return err
	}
	b.scale = next
	return nil
}

// perParam checks a map of per-parameter values for method (every name a
// parameter of the optimizer, every value finite and 0 or more) and calls
// set with each parameter's index and value, in the order of the names.
// On error it has called set for none of them.
func (b *base) perParam(method, what string, values map[string]float64, set func(i int, v float64)) error {
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	sort.Strings(names)
	idx := make([]int, len(names))
	for k, n := range names {
		i, ok := b.index[n]
		if !ok {
			return fmt.Errorf("optim.%s.%s: %q is not a parameter of this optimizer", b.kind, method, n)
		}
		if v := values[n]; !(v >= 0) || math.IsInf(v, 1) {
			return fmt.Errorf("optim.%s.%s: %s %v of %q: want a finite %s of 0 or more", b.kind, method, what, v, n, what)
		}
		idx[k] = i
	}
	for k, n := range names {
		set(idx[k], values[n])
	}
	return nil
}

// lrOf returns the learning rate of parameter i: the rate times its
// factor, computed in float64 as a parameter group's lr is.
func (b *base) lrOf(i int) float64 {
	if b.scale == nil || b.scale[i] == 1 {
		return b.lr
	}
	return b.lr * b.scale[i]
}

// SetWeightDecay sets per-parameter weight decays (see Optimizer).
func (b *base) SetWeightDecay(decays map[string]float64) error {
	wd := make([]float64, len(b.params))
	has := make([]bool, len(b.params))
	if err := b.perParam("SetWeightDecay", "weight decay", decays, func(i int, v float64) { wd[i], has[i] = v, true }); err != nil {
		return err
	}
	b.wd, b.hasWD = wd, has
	return nil
}

// wdOf returns the weight decay of parameter i: its own if SetWeightDecay
// gave it one, else configured.
func (b *base) wdOf(i int, configured float64) float64 {
	if b.hasWD != nil && b.hasWD[i] {
		return b.wd[i]
	}
	return configured
}

// Params returns the parameters the optimizer was built over, in order.
func (b *base) Params() []nn.NamedVar { return b.params }

// active returns the parameter's values (marked modified) and gradient, or
// ok false when Step must skip it.
func (b *base) active(i int) (p, g []float32, ok bool) {
	v := b.params[i]
	if v.Grad == nil || v.Frozen {
		return nil, nil, false
	}
	g = v.Grad.Values()
	if !tensor.SameShape(v.Grad.Shape(), v.Value.Shape()) {
		panic(fmt.Sprintf("optim.%s.Step: gradient of %q has shape %v, the parameter %v", b.kind, v.Name, v.Grad.Shape(), v.Value.Shape()))
	}
	return v.Value.Mutable(), g, true
}

// parseState splits and validates the keys of a state map: every key must be
// "<parameter>.<field>" with a known parameter, a field in fields, and a
// plain tensor of the shape shapeOf gives. It returns the tensors by
// parameter index and field.
func (b *base) parseState(state map[string]*tensor.Tensor, fields []string, shapeOf func(param int, field string) []int) ([]map[string]*tensor.Tensor, error) {
	out := make([]map[string]*tensor.Tensor, len(b.params))
	keys := make([]string, 0, len(state))
	for k := range state {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the first bad key deterministically
	for _, k := range keys {
		t := state[k]
		dot := strings.LastIndexByte(k, '.')
		if dot < 0 {
			return nil, fmt.Errorf("optim.%s.LoadState: key %q is not <parameter>.<field>", b.kind, k)
		}
		name, field := k[:dot], k[dot+1:]
		i, ok := b.index[name]
		if !ok {
			return nil, fmt.Errorf("optim.%s.LoadState: key %q names no parameter of this optimizer", b.kind, k)
		}
		known := false
		for _, f := range fields {
			known = known || f == field
		}
		if !known {
			return nil, fmt.Errorf("optim.%s.LoadState: key %q: field %q is not one this optimizer keeps (%s)", b.kind, k, field, strings.Join(fields, ", "))
		}
		if t == nil || !t.IsPlain() {
			return nil, fmt.Errorf("optim.%s.LoadState: key %q: no plain tensor", b.kind, k)
		}
		want := shapeOf(i, field)
		if !sameShapeLoose(t.Shape(), want) {
			return nil, fmt.Errorf("optim.%s.LoadState: key %q has shape %v, want %v", b.kind, k, t.Shape(), want)
		}
		if out[i] == nil {
			out[i] = make(map[string]*tensor.Tensor, len(fields))
		}
		out[i][field] = t
	}
	return out, nil
}

// sameShapeLoose compares shapes, letting a scalar shape [] and [1] match.
func sameShapeLoose(got, want []int) bool {
	if len(want) == 0 {
		return tensor.Numel(got) == 1 && len(got) <= 1
	}
	return tensor.SameShape(got, want)
}

// scalar returns a rank-0 float32 tensor holding v, as PyTorch stores an
// optimizer's step count.
func scalar(v float32) *tensor.Tensor {
	t := tensor.New()
	t.Mutable()[0] = v
	return t
}

// stepCount reads a step count tensor: a non-negative whole number.
func stepCount(kind, key string, t *tensor.Tensor) (int64, error) {
	v := float64(t.Values()[0])
	if !(v >= 0) || v != math.Trunc(v) || v > 1<<24 {
		return 0, fmt.Errorf("optim.%s.LoadState: key %q: step count %v is not a whole number in [0, 2^24]", kind, key, v)
	}
	return int64(v), nil
}

// fma32 returns a*b+c rounded once to float32, as PyTorch's vectorized CPU
// kernels compute add(x, y, alpha) and addcmul with a fused multiply-add.
// The exact product of two float32 fits a float64, so the float64 FMA rounds
// only the sum (and a second rounding to float32 differs from a single one
// only in vanishingly rare ties).
func fma32(a, b, c float32) float32 {
	return float32(math.FMA(float64(a), float64(b), float64(c)))
}

// sqrt32 is the correctly rounded float32 square root.
func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// parallelMin is the number of elements below which a tensor is updated on
// the calling goroutine.
const parallelMin = 1 << 15

// parallel calls fn over [0, n) split into contiguous chunks, on several
// goroutines when n is large. Updates are element-wise, so the result does
// not depend on the split.
func parallel(n int, fn func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if n < 2*parallelMin || workers < 2 {
		fn(0, n)
		return
	}
	if w := n / parallelMin; w < workers {
		workers = w
	}
	chunk := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}
