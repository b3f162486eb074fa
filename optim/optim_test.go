package optim

import (
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
)

// configs are optimizer constructors covering every code path, for the
// tests that need no PyTorch.
var configs = []struct {
	name string
	new  func([]nn.NamedVar) (Optimizer, error)
}{
	{"sgd", func(p []nn.NamedVar) (Optimizer, error) { return NewSGD(p, SGDConfig{LR: 0.1}) }},
	{"sgd_momentum_wd", func(p []nn.NamedVar) (Optimizer, error) {
		return NewSGD(p, SGDConfig{LR: 0.1, Momentum: 0.9, WeightDecay: 5e-4})
	}},
	{"sgd_dampening", func(p []nn.NamedVar) (Optimizer, error) {
		return NewSGD(p, SGDConfig{LR: 0.1, Momentum: 0.9, Dampening: 0.2})
	}},
	{"sgd_nesterov", func(p []nn.NamedVar) (Optimizer, error) {
		return NewSGD(p, SGDConfig{LR: 0.05, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-4})
	}},
	{"adam", func(p []nn.NamedVar) (Optimizer, error) { return NewAdam(p, DefaultAdam()) }},
	{"adam_wd_amsgrad", func(p []nn.NamedVar) (Optimizer, error) {
		c := DefaultAdam()
		c.WeightDecay, c.AMSGrad = 0.01, true
		return NewAdam(p, c)
	}},
	{"adamw", func(p []nn.NamedVar) (Optimizer, error) { return NewAdamW(p, DefaultAdamW()) }},
	{"adamw_amsgrad", func(p []nn.NamedVar) (Optimizer, error) {
		c := DefaultAdamW()
		c.AMSGrad = true
		return NewAdamW(p, c)
	}},
}

var testShapes = map[string][]int{"a.weight": {4, 5}, "b.bias": {7}, "c.weight": {2, 3}}

// makeParams returns parameters a.weight, b.bias and c.weight with
// deterministic values.
func makeParams() []nn.NamedVar {
	var out []nn.NamedVar
	for k, name := range []string{"a.weight", "b.bias", "c.weight"} {
		t := tensor.New(testShapes[name]...)
		v := t.Mutable()
		for i := range v {
			v[i] = float32(math.Sin(float64(7*i+k+1))) * 0.5
		}
		out = append(out, nn.NamedVar{Name: name, Var: &nn.Var{Name: name, Kind: nn.Parameter, Value: t}})
	}
	return out
}

// setGrads gives each parameter a deterministic gradient for step, except
// b.bias at step 3, which gets none.
func setGrads(params []nn.NamedVar, step int) {
	for k, p := range params {
		if p.Name == "b.bias" && step == 3 {
			p.Grad = nil
			continue
		}
		g := tensor.New(p.Value.Shape()...)
		v := g.Mutable()
		scale := []float64{1, 0.3, 2, 0.05, 0.5, 1.5}[step%6]
		for i := range v {
			v[i] = float32(scale * math.Cos(float64(3*i+5*step+k)))
		}
		p.Grad = g
	}
}

func values(params []nn.NamedVar) [][]float32 {
	var out [][]float32
	for _, p := range params {
		out = append(out, append([]float32(nil), p.Value.Values()...))
	}
	return out
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestResume checks that saving the state after 3 steps and loading it into
// a new optimizer continues bit-identically to 5 steps straight.
func TestResume(t *testing.T) {
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			straight := makeParams()
			opt, err := c.new(straight)
			if err != nil {
				t.Fatal(err)
			}
			for s := 0; s < 5; s++ {
				setGrads(straight, s)
				opt.Step()
			}

			resumed := makeParams()
			first, _ := c.new(resumed)
			for s := 0; s < 3; s++ {
				setGrads(resumed, s)
				first.Step()
			}
			saved := first.State()
			snapshot := values(resumed)
			// The saved state is a copy: stepping on does not change it.
			setGrads(resumed, 3)
			first.Step()
			for i, p := range resumed {
				copy(p.Value.Mutable(), snapshot[i])
			}
			second, _ := c.new(resumed)
			if err := second.LoadState(saved); err != nil {
				t.Fatal(err)
			}
			for s := 3; s < 5; s++ {
				setGrads(resumed, s)
				second.Step()
			}
			for i, p := range straight {
				if !sameBits(p.Value.Values(), resumed[i].Value.Values()) {
					t.Errorf("%s differs after resuming", p.Name)
				}
			}
			want, got := opt.State(), second.State()
			if len(want) != len(got) {
				t.Fatalf("state has %d entries after resuming, %d straight", len(got), len(want))
			}
			for k, w := range want {
				if g := got[k]; g == nil || !sameBits(g.Values(), w.Values()) {
					t.Errorf("state %s differs after resuming", k)
				}
			}
		})
	}
}

// TestSkipped checks that frozen parameters and parameters without a
// gradient are not touched (values and versions), that parameters left out
// of the optimizer are not either, and that updated parameters get a new
// version.
func TestSkipped(t *testing.T) {
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			params := makeParams()
			outside := makeParams()[2] // a parameter the optimizer does not own
			opt, err := c.new(params[:2])
			if err != nil {
				t.Fatal(err)
			}
			before := values(params)
			setGrads(params, 0)
			params[1].Frozen = true // has a gradient, but frozen
			outside.Grad = params[0].Grad
			outsideBefore := append([]float32(nil), outside.Value.Values()...)
			versions := []uint64{params[0].Value.Version(), params[1].Value.Version(), outside.Value.Version()}
			opt.Step()
			if sameBits(params[0].Value.Values(), before[0]) || params[0].Value.Version() == versions[0] {
				t.Error("a.weight was not updated or its version not bumped")
			}
			if !sameBits(params[1].Value.Values(), before[1]) || params[1].Value.Version() != versions[1] {
				t.Error("frozen b.bias was modified")
			}
			if !sameBits(outside.Value.Values(), outsideBefore) || outside.Value.Version() != versions[2] {
				t.Error("a parameter outside the optimizer was modified")
			}
			if _, ok := opt.State()["b.bias.exp_avg"]; ok {
				t.Error("frozen b.bias has state")
			}

			params[1].Frozen = false
			params[0].Grad = nil
			setGrads(params[1:2], 1)
			a := append([]float32(nil), params[0].Value.Values()...)
			v := params[0].Value.Version()
			opt.Step()
			if !sameBits(params[0].Value.Values(), a) || params[0].Value.Version() != v {
				t.Error("a.weight without a gradient was modified")
			}
			if st := opt.State(); st["a.weight.step"] != nil && st["a.weight.step"].Values()[0] != 1 {
				t.Errorf("a.weight's step count advanced without a gradient: %v", st["a.weight.step"].Values()[0])
			}
		})
	}
}

// TestClosedForms checks simple closed forms: plain SGD is p - lr*g, Adam's
// first step is lr*sign(g), and a zero learning rate changes nothing.
func TestClosedForms(t *testing.T) {
	params := makeParams()
	before := values(params)
	opt, _ := NewSGD(params, SGDConfig{LR: 0.5})
	setGrads(params, 0)
	opt.Step()
	for i, p := range params {
		for j, got := range p.Value.Values() {
			want := before[i][j] - 0.5*p.Grad.Values()[j]
			if math.Abs(float64(got-want)) > 1e-7 {
				t.Fatalf("%s[%d] = %v, want %v", p.Name, j, got, want)
			}
		}
	}
	// Adam's first step moves each element by lr*sign(g) (up to eps).
	params = makeParams()
	before = values(params)
	adam, _ := NewAdam(params, DefaultAdam())
	setGrads(params, 0)
	adam.Step()
	for i, p := range params {
		for j, got := range p.Value.Values() {
			g := p.Grad.Values()[j]
			if math.Abs(float64(g)) < 1e-3 {
				continue
			}
			want := float64(before[i][j]) - 1e-3*math.Copysign(1, float64(g))
			if math.Abs(float64(got)-want) > 1e-6 {
				t.Fatalf("Adam %s[%d] = %v, want %v", p.Name, j, got, want)
			}
		}
	}
	if adam.LR() != 1e-3 {
		t.Errorf("LR() = %v", adam.LR())
	}
	adam.SetLR(0)
	before = values(params)
	setGrads(params, 1)
	adam.Step()
	for i, p := range params {
		if !sameBits(p.Value.Values(), before[i]) {
			t.Errorf("%s changed with a zero learning rate", p.Name)
		}
	}
}

// TestParallel checks that a tensor large enough to be split across
// goroutines gets the same update as on one goroutine.
func TestParallel(t *testing.T) {
	run := func() []float32 {
		n := 3*parallelMin + 123
		p := tensor.New(n)
		g := tensor.New(n)
		pv, gv := p.Mutable(), g.Mutable()
		for i := range pv {
			pv[i] = float32(math.Sin(float64(i)))
			gv[i] = float32(math.Cos(float64(i) * 0.7))
		}
		params := []nn.NamedVar{{Name: "w", Var: &nn.Var{Name: "w", Kind: nn.Parameter, Value: p, Grad: g}}}
		opt, _ := NewAdamW(params, DefaultAdamW())
		for s := 0; s < 3; s++ {
			opt.Step()
		}
		return p.Values()
	}
	prev := runtime.GOMAXPROCS(4)
	par := run()
	runtime.GOMAXPROCS(1)
	ser := run()
	runtime.GOMAXPROCS(prev)
	if !sameBits(par, ser) {
		t.Error("parallel and serial updates differ")
	}
}

func TestLoadStateErrors(t *testing.T) {
	params := makeParams()
	adam, _ := NewAdam(params, DefaultAdam())
	setGrads(params, 0)
	adam.Step()
	good := adam.State()
	with := func(edit func(map[string]*tensor.Tensor)) map[string]*tensor.Tensor {
		m := make(map[string]*tensor.Tensor, len(good))
		for k, v := range good {
			m[k] = v
		}
		edit(m)
		return m
	}
	cases := []struct {
		name  string
		state map[string]*tensor.Tensor
		want  string
	}{
		{"unknown parameter", with(func(m map[string]*tensor.Tensor) { m["d.weight.exp_avg"] = tensor.New(3) }), `"d.weight.exp_avg" names no parameter`},
		{"renamed parameter", with(func(m map[string]*tensor.Tensor) {
			m["layer1.a.weight.exp_avg"] = m["a.weight.exp_avg"]
			delete(m, "a.weight.exp_avg")
		}), "names no parameter"},
		{"unknown field", with(func(m map[string]*tensor.Tensor) { m["a.weight.momentum_buffer"] = tensor.New(4, 5) }), `field "momentum_buffer" is not one`},
		{"amsgrad field without amsgrad", with(func(m map[string]*tensor.Tensor) { m["a.weight.max_exp_avg_sq"] = tensor.New(4, 5) }), `field "max_exp_avg_sq"`},
		{"no field", with(func(m map[string]*tensor.Tensor) { m["nodot"] = tensor.New(1) }), "not <parameter>.<field>"},
		{"wrong shape", with(func(m map[string]*tensor.Tensor) { m["a.weight.exp_avg"] = tensor.New(5, 4) }), "has shape [5 4], want [4 5]"},
		{"wrong step shape", with(func(m map[string]*tensor.Tensor) { m["a.weight.step"] = tensor.New(2) }), "has shape [2], want []"},
		{"missing field", with(func(m map[string]*tensor.Tensor) { delete(m, "b.bias.exp_avg_sq") }), `no "b.bias.exp_avg_sq"`},
		{"fractional step", with(func(m map[string]*tensor.Tensor) { m["a.weight.step"] = scalar(1.5) }), "not a whole number"},
		{"negative step", with(func(m map[string]*tensor.Tensor) { m["a.weight.step"] = scalar(-1) }), "not a whole number"},
		{"nil tensor", with(func(m map[string]*tensor.Tensor) { m["a.weight.exp_avg"] = nil }), "no plain tensor"},
	}
	for _, c := range cases {
		err := adam.LoadState(c.state)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	// A failed load leaves the state as it was.
	after := adam.State()
	for k, v := range good {
		if !sameBits(after[k].Values(), v.Values()) {
			t.Errorf("state %s changed by a failed load", k)
		}
	}
	// A step count of shape [1] is accepted, as is an empty state.
	if err := adam.LoadState(with(func(m map[string]*tensor.Tensor) { m["a.weight.step"] = tensor.FromValues([]float32{1}, 1) })); err != nil {
		t.Error(err)
	}
	if err := adam.LoadState(nil); err != nil || len(adam.State()) != 0 {
		t.Errorf("empty state: %v, %d entries", err, len(adam.State()))
	}

	sgd, _ := NewSGD(params, SGDConfig{LR: 0.1, Momentum: 0.9})
	if err := sgd.LoadState(map[string]*tensor.Tensor{"a.weight.momentum_buffer": tensor.New(20)}); err == nil || !strings.Contains(err.Error(), "has shape [20], want [4 5]") {
		t.Errorf("SGD wrong shape: %v", err)
	}
	if err := sgd.LoadState(map[string]*tensor.Tensor{"a.weight.exp_avg": tensor.New(4, 5)}); err == nil {
		t.Error("SGD accepted an exp_avg")
	}
	plain, _ := NewSGD(params, SGDConfig{LR: 0.1})
	if err := plain.LoadState(map[string]*tensor.Tensor{"a.weight.momentum_buffer": tensor.New(4, 5)}); err == nil {
		t.Error("SGD without momentum accepted a momentum buffer")
	}
}

func TestConstructorErrors(t *testing.T) {
	params := makeParams()
	dup := append(makeParams(), params[0])
	buf := nn.NamedVar{Name: "bn.running_mean", Var: &nn.Var{Name: "running_mean", Kind: nn.Buffer, Value: tensor.New(3)}}
	bad := func(c AdamConfig, f func(*AdamConfig)) AdamConfig { f(&c); return c }
	for name, err := range map[string]error{
		"duplicate":          second(NewSGD(dup, SGDConfig{LR: 0.1})),
		"buffer":             second(NewSGD([]nn.NamedVar{buf}, SGDConfig{LR: 0.1})),
		"nil var":            second(NewSGD([]nn.NamedVar{{Name: "x"}}, SGDConfig{LR: 0.1})),
		"negative lr":        second(NewSGD(params, SGDConfig{LR: -1})),
		"NaN lr":             second(NewAdam(params, bad(DefaultAdam(), func(c *AdamConfig) { c.LR = math.NaN() }))),
		"negative momentum":  second(NewSGD(params, SGDConfig{LR: 0.1, Momentum: -0.5})),
		"nesterov":           second(NewSGD(params, SGDConfig{LR: 0.1, Nesterov: true})),
		"nesterov dampening": second(NewSGD(params, SGDConfig{LR: 0.1, Momentum: 0.9, Dampening: 0.1, Nesterov: true})),
		"beta1":              second(NewAdam(params, bad(DefaultAdam(), func(c *AdamConfig) { c.Beta1 = 1 }))),
		"beta2":              second(NewAdamW(params, bad(DefaultAdamW(), func(c *AdamConfig) { c.Beta2 = -0.1 }))),
		"eps":                second(NewAdam(params, bad(DefaultAdam(), func(c *AdamConfig) { c.Eps = -1 }))),
		"weight decay":       second(NewAdamW(params, bad(DefaultAdamW(), func(c *AdamConfig) { c.WeightDecay = -1 }))),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("SetLR(-1) did not panic")
		}
	}()
	opt, _ := NewSGD(params, SGDConfig{LR: 0.1})
	opt.SetLR(-1)
}

func second[T any](_ T, err error) error { return err }

func TestGradShapeMismatchPanics(t *testing.T) {
	params := makeParams()
	opt, _ := NewSGD(params, SGDConfig{LR: 0.1})
	params[0].Grad = tensor.New(5, 4)
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), `gradient of "a.weight" has shape [5 4]`) {
			t.Errorf("panic %v", r)
		}
	}()
	opt.Step()
}
