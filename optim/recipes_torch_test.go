package optim

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
)

// fixtureParams returns the fixture's parameters at their initial values.
func fixtureParams(f *fixture) []nn.NamedVar {
	params := make([]nn.NamedVar, len(f.Names))
	for i, name := range f.Names {
		params[i] = nn.NamedVar{Name: name, Var: &nn.Var{Name: name, Kind: nn.Parameter, Value: tensor.FromValues(f32s(f.Init[i]), f.Shapes[i]...)}}
	}
	return params
}

// setFixtureGrads gives the parameters the fixture's gradients of one step.
func setFixtureGrads(f *fixture, params []nn.NamedVar, step int) {
	for i, g := range f.Grads[step] {
		params[i].Grad = nil
		if g != nil {
			params[i].Grad = tensor.FromValues(f32s(g), f.Shapes[i]...)
		}
	}
}

// TestTorchParamGroups: SetLRScale is a second parameter group whose lr is
// the base rate times the factor.
func TestTorchParamGroups(t *testing.T) {
	f := loadFixture(t)
	params := fixtureParams(f)
	opt, err := NewSGD(params, SGDConfig{LR: 0.1, Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4})
	if err != nil {
		t.Fatal(err)
	}
	if err := opt.SetLRScale(map[string]float64{"b.bias": f.Groups.Scale, "c.weight": f.Groups.Scale}); err != nil {
		t.Fatal(err)
	}
	var st errStats
	for step := range f.Grads {
		setFixtureGrads(f, params, step)
		opt.Step()
		st.params(t, step, params, f.Groups.Params[step])
	}
	t.Logf("%d values, %d bit-identical, max error %.3g", st.n, st.exact, st.maxRel)
	if err := opt.SetLRScale(map[string]float64{"nope": 1}); err == nil {
		t.Error("SetLRScale accepted an unknown parameter")
	}
	if err := opt.SetLRScale(map[string]float64{"a.weight": math.NaN()}); err == nil {
		t.Error("SetLRScale accepted a NaN factor")
	}
}

// TestTorchWeightDecayGroups: SetWeightDecay is a second parameter group
// with its own weight_decay (0: no decay on biases, and another decay), for
// SGD (added to the gradient before the momentum), Adam (L2) and AdamW
// (decoupled).
func TestTorchWeightDecayGroups(t *testing.T) {
	f := loadFixture(t)
	if len(f.WDGroups) == 0 {
		t.Fatal("the fixtures have no weight-decay groups")
	}
	var total errStats
	for _, wf := range f.WDGroups {
		t.Run(wf.Name, func(t *testing.T) {
			params := fixtureParams(f)
			opt := newFromFixture(t, wf.optimFixture, params)
			if err := opt.SetWeightDecay(map[string]float64{"b.bias": wf.Decay, "c.weight": wf.Decay}); err != nil {
				t.Fatal(err)
			}
			// The same optimizer without the group, which the fixture
			// must tell apart.
			plain := fixtureParams(f)
			ref := newFromFixture(t, wf.optimFixture, plain)
			var st errStats
			differs := false
			for step := range f.Grads {
				setFixtureGrads(f, params, step)
				setFixtureGrads(f, plain, step)
				opt.Step()
				ref.Step()
				st.params(t, step, params, wf.Params[step])
				for i, p := range plain {
					differs = differs || !slices.Equal(p.Value.Values(), f32s(wf.Params[step][i]))
				}
			}
			if !differs {
				t.Error("the weight decay of the second group makes no difference in this fixture")
			}
			t.Logf("%d values, %d bit-identical, max error %.3g", st.n, st.exact, st.maxRel)
			total.n += st.n
			total.exact += st.exact
			total.maxRel = math.Max(total.maxRel, st.maxRel)
			for _, bad := range []map[string]float64{{"nope": 0}, {"a.weight": -1e-4}, {"a.weight": math.NaN()}, {"b.bias": math.Inf(1)}} {
				if err := opt.SetWeightDecay(bad); err == nil || strings.Contains(err.Error(), "\n") {
					t.Errorf("SetWeightDecay(%v): %v, want a one-line error", bad, err)
				}
			}
		})
	}
	t.Logf("all: %d values, %d bit-identical, max error %.3g (tolerance %g)", total.n, total.exact, total.maxRel, parityRTol)
}

// TestTorchClipGradNorm compares ClipGradNorm with
// torch.nn.utils.clip_grad_norm_: the total norms and the clipped
// gradients, for a max norm below, near and far above the norms.
func TestTorchClipGradNorm(t *testing.T) {
	f := loadFixture(t)
	var st errStats
	for _, cf := range f.Clip {
		for step := range f.Grads {
			params := fixtureParams(f)
			setFixtureGrads(f, params, step)
			norm, err := ClipGradNorm(params, cf.MaxNorm)
			if err != nil {
				t.Fatal(err)
			}
			if rel := math.Abs(norm-cf.Norms[step]) / cf.Norms[step]; rel > 1e-6 {
				t.Errorf("max norm %g, step %d: total norm %.9g, torch %.9g", cf.MaxNorm, step, norm, cf.Norms[step])
			}
			for i, p := range params {
				want := cf.Clipped[step][i]
				if (want == nil) != (p.Grad == nil) {
					t.Fatalf("step %d %s: gradient presence differs from torch's", step, p.Name)
				}
				if want == nil {
					continue
				}
				w := f32s(want)
				scale := maxAbs(w)
				for j, got := range p.Grad.Values() {
					if !st.add(got, w[j], scale, parityRTol) {
						t.Errorf("max norm %g, step %d %s[%d] = %v, torch %v", cf.MaxNorm, step, p.Name, j, got, w[j])
					}
				}
			}
		}
	}
	t.Logf("%d gradient values, %d bit-identical, max error %.3g", st.n, st.exact, st.maxRel)
	if _, err := ClipGradNorm(nil, 0); err == nil {
		t.Error("ClipGradNorm accepted a max norm of 0")
	}
}
