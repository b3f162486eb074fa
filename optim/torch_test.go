package optim

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"sort"
	"sync"
	"testing"

	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
)

// Parity with PyTorch: fixtures made by Debian's python3-torch 1.13
// (scripts/make_optim_fixtures.py) at test time.

type fixture struct {
	Torch      string         `json:"torch"`
	Names      []string       `json:"names"`
	Shapes     [][]int        `json:"shapes"`
	Init       [][]float64    `json:"init"`
	Grads      [][][]float64  `json:"grads"` // [step][param], nil: no gradient
	Optimizers []optimFixture `json:"optimizers"`
	Schedules  []schedFixture `json:"schedules"`
	Groups     groupsFixture  `json:"groups"`
	WDGroups   []wdFixture    `json:"wd_groups"`
	Clip       []clipFixture  `json:"clip"`
}

type groupsFixture struct {
	Scale  float64       `json:"scale"`
	Params [][][]float64 `json:"params"`
}

// wdFixture is an optimizer over two parameter groups: a.weight with the
// configured weight_decay, b.bias and c.weight with Decay.
type wdFixture struct {
	optimFixture
	Decay float64 `json:"decay"`
}

type clipFixture struct {
	MaxNorm float64       `json:"max_norm"`
	Clipped [][][]float64 `json:"clipped"` // [step][param], nil: no gradient
	Norms   []float64     `json:"norms"`
}

type optimFixture struct {
	Name   string                `json:"name"`
	Kind   string                `json:"kind"`
	Config map[string]any        `json:"config"`
	Params [][][]float64         `json:"params"` // [step][param] after the step
	State  map[string]stateEntry `json:"state"`
}

type stateEntry struct {
	Shape  []int     `json:"shape"`
	Values []float64 `json:"values"`
}

type schedFixture struct {
	Name string             `json:"name"`
	Kind string             `json:"kind"`
	Args map[string]float64 `json:"args"`
	LRs  []float64          `json:"lrs"`
	// Metrics are the values passed to ReduceLROnPlateau.step.
	Metrics []float64 `json:"metrics"`
}

var (
	fixtureOnce sync.Once
	fixtureData *fixture
	fixtureErr  error
	noTorch     bool // fixtureErr says torch is missing (a skip outside CI)
)

// torchRequired reports whether the parity tests must run (in CI) rather
// than be skipped when torch is missing.
func torchRequired() bool {
	return os.Getenv("CI") == "true" || os.Getenv("RESGO_REQUIRE_TORCH") == "1"
}

// loadFixture runs scripts/make_optim_fixtures.py once; it skips the test
// when /usr/bin/python3 cannot import torch, unless torch is required.
func loadFixture(t *testing.T) *fixture {
	t.Helper()
	fixtureOnce.Do(func() {
		if err := exec.Command("/usr/bin/python3", "-c", "import torch").Run(); err != nil {
			fixtureErr = fmt.Errorf("/usr/bin/python3 cannot import torch (Debian's python3-torch): %v", err)
			noTorch = true
			return
		}
		cmd := exec.Command("/usr/bin/python3", "../scripts/make_optim_fixtures.py")
		out, err := cmd.Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				err = fmt.Errorf("%v\n%s", err, ee.Stderr)
			}
			fixtureErr = fmt.Errorf("make_optim_fixtures.py failed: %v", err)
			return
		}
		var f fixture
		if err := json.Unmarshal(out, &f); err != nil {
			fixtureErr = fmt.Errorf("make_optim_fixtures.py output: %v", err)
			return
		}
		fixtureData = &f
	})
	if fixtureErr != nil {
		if !noTorch {
			t.Fatal(fixtureErr) // a failing script is never a skip
		}
		if torchRequired() {
			t.Fatal(fixtureErr, "; CI=true or RESGO_REQUIRE_TORCH=1 forbids skipping")
		}
		t.Skip(fixtureErr)
	}
	return fixtureData
}

func f32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func maxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(float64(x)))
	}
	return m
}

func cfgFloat(c map[string]any, key string, def float64) float64 {
	if v, ok := c[key]; ok {
		return v.(float64)
	}
	return def
}

func cfgBool(c map[string]any, key string) bool {
	v, ok := c[key]
	return ok && v.(bool)
}

// newFromFixture builds the Go optimizer for a fixture configuration, with
// torch's defaults for what the configuration leaves out.
func newFromFixture(t *testing.T, of optimFixture, params []nn.NamedVar) Optimizer {
	t.Helper()
	c := of.Config
	var (
		opt Optimizer
		err error
	)
	switch of.Kind {
	case "sgd":
		opt, err = NewSGD(params, SGDConfig{
			LR: cfgFloat(c, "lr", 0), Momentum: cfgFloat(c, "momentum", 0), Dampening: cfgFloat(c, "dampening", 0),
			WeightDecay: cfgFloat(c, "weight_decay", 0), Nesterov: cfgBool(c, "nesterov"),
		})
	case "adam", "adamw":
		cfg := DefaultAdam()
		if of.Kind == "adamw" {
			cfg = DefaultAdamW()
		}
		cfg.LR = cfgFloat(c, "lr", cfg.LR)
		if b, ok := c["betas"]; ok {
			cfg.Beta1, cfg.Beta2 = b.([]any)[0].(float64), b.([]any)[1].(float64)
		}
		cfg.Eps = cfgFloat(c, "eps", cfg.Eps)
		cfg.WeightDecay = cfgFloat(c, "weight_decay", cfg.WeightDecay)
		cfg.AMSGrad = cfgBool(c, "amsgrad")
		if of.Kind == "adam" {
			opt, err = NewAdam(params, cfg)
		} else {
			opt, err = NewAdamW(params, cfg)
		}
	default:
		t.Fatalf("unknown optimizer kind %q", of.Kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return opt
}

// errStats accumulates the comparison of float32 results with torch's.
type errStats struct {
	n, exact int
	maxRel   float64
}

// add compares got with want, an element of a tensor whose largest
// magnitude is scale; it reports false beyond rtol relative to the larger of
// |want| and scale. (An update p - lr*g that nearly cancels has a small
// result whose relative error is that of its operands times their ratio to
// it: PyTorch built without fused multiply-adds, ATEN_CPU_CAPABILITY=default,
// differs from an FMA build by about 6e-6 of such a result, but by less than
// 1e-6 of the tensor's scale.)
func (s *errStats) add(got, want float32, scale, rtol float64) bool {
	s.n++
	if got == want {
		s.exact++
		return true
	}
	d := math.Abs(float64(got) - float64(want))
	rel := d / math.Max(math.Max(math.Abs(float64(want)), scale), 1e-30)
	s.maxRel = math.Max(s.maxRel, rel)
	return rel <= rtol
}

const parityRTol = 1e-6

// params compares the values of params after step with torch's, want (one
// row per parameter), to parityRTol of each tensor's scale.
func (s *errStats) params(t *testing.T, step int, params []nn.NamedVar, want [][]float64) {
	t.Helper()
	for i, p := range params {
		w := f32s(want[i])
		scale := maxAbs(w)
		for j, got := range p.Value.Values() {
			if !s.add(got, w[j], scale, parityRTol) {
				t.Errorf("step %d %s[%d] = %v, torch %v", step, p.Name, j, got, w[j])
			}
		}
	}
}

func TestTorchOptimizers(t *testing.T) {
	f := loadFixture(t)
	t.Logf("fixtures from torch %s", f.Torch)
	var total errStats
	for _, of := range f.Optimizers {
		t.Run(of.Name, func(t *testing.T) {
			params := make([]nn.NamedVar, len(f.Names))
			for i, name := range f.Names {
				params[i] = nn.NamedVar{Name: name, Var: &nn.Var{Name: name, Kind: nn.Parameter, Value: tensor.FromValues(f32s(f.Init[i]), f.Shapes[i]...)}}
			}
			opt := newFromFixture(t, of, params)
			var st errStats
			for step, row := range f.Grads {
				for i, g := range row {
					params[i].Grad = nil
					if g != nil {
						params[i].Grad = tensor.FromValues(f32s(g), f.Shapes[i]...)
					}
				}
				opt.Step()
				st.params(t, step, params, of.Params[step])
			}
			// The state after the last step: same keys, shapes and values.
			state := opt.State()
			var gotKeys, wantKeys []string
			for k := range state {
				gotKeys = append(gotKeys, k)
			}
			for k := range of.State {
				wantKeys = append(wantKeys, k)
			}
			sort.Strings(gotKeys)
			sort.Strings(wantKeys)
			if fmt.Sprint(gotKeys) != fmt.Sprint(wantKeys) {
				t.Fatalf("state keys %v, torch %v", gotKeys, wantKeys)
			}
			for k, e := range of.State {
				g := state[k]
				if !tensor.SameShape(g.Shape(), e.Shape) {
					t.Errorf("state %s shape %v, torch %v", k, g.Shape(), e.Shape)
					continue
				}
				want := f32s(e.Values)
				scale := maxAbs(want)
				for j, want := range want {
					if !st.add(g.Values()[j], want, scale, parityRTol) {
						t.Errorf("state %s[%d] = %v, torch %v", k, j, g.Values()[j], want)
					}
				}
			}
			t.Logf("%d values, %d bit-identical, max error %.3g relative to scale", st.n, st.exact, st.maxRel)
			total.n += st.n
			total.exact += st.exact
			total.maxRel = math.Max(total.maxRel, st.maxRel)
		})
	}
	t.Logf("all optimizers: %d values, %d bit-identical, max error %.3g relative to the tensor's scale (tolerance %g)", total.n, total.exact, total.maxRel, parityRTol)
}

func TestTorchSchedules(t *testing.T) {
	f := loadFixture(t)
	for _, sf := range f.Schedules {
		t.Run(sf.Name, func(t *testing.T) {
			a := sf.Args
			var s Schedule
			switch sf.Kind {
			case "step":
				s = StepDecay{Base: a["base"], StepSize: int(a["step_size"]), Gamma: a["gamma"]}
			case "cosine":
				s = Cosine{Base: a["base"], Min: a["eta_min"], TMax: int(a["t_max"])}
			case "warmup_constant":
				s = Warmup{Steps: int(a["steps"]), Factor: a["factor"], Then: Constant(a["base"])}
			case "warmup_cosine":
				s = Warmup{Steps: int(a["steps"]), Factor: a["factor"], Then: Cosine{Base: a["base"], Min: a["eta_min"], TMax: int(a["t_max"])}}
			case "multistep":
				s = MultiStep{Base: a["base"], Milestones: []int{int(a["m0"]), int(a["m1"]), int(a["m2"])}, Gamma: a["gamma"]}
			case "plateau":
				p, err := NewPlateau(a["base"], a["factor"], int(a["patience"]), a["min_lr"])
				if err != nil {
					t.Fatal(err)
				}
				p.Cooldown = int(a["cooldown"])
				lrs := []float64{p.LR()}
				for _, m := range sf.Metrics {
					p.Step(m)
					lrs = append(lrs, p.LR())
				}
				s = ScheduleFunc(func(i int) float64 { return lrs[i] })
			case "warmup_step":
				s = Warmup{Steps: int(a["steps"]), Factor: a["factor"], Then: StepDecay{Base: a["base"], StepSize: int(a["step_size"]), Gamma: a["gamma"]}}
			default:
				t.Fatalf("unknown schedule kind %q", sf.Kind)
			}
			maxRel := 0.0
			for i, want := range sf.LRs {
				got := s.LR(i)
				rel := math.Abs(got-want) / math.Max(math.Abs(want), 1e-12)
				maxRel = math.Max(maxRel, rel)
				if rel > 1e-12 {
					t.Errorf("LR(%d) = %.17g, torch %.17g", i, got, want)
				}
			}
			t.Logf("%d rates, max relative error %.3g", len(sf.LRs), maxRel)
		})
	}
}
