package resnet_test

import (
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/internal/randt"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
)

// TestFeatures checks, on every backend, that Features is the input of
// fc: fc applied to it (in float64) gives Forward's logits; that it is the
// mean of the last stage's output over its positions; and that a model
// built without its top gives the same features.
func TestFeatures(t *testing.T) {
	for _, name := range backend.Names() {
		b, err := backend.New(name, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			arch       string
			channels   int
			size, want int
		}{{"resnet18", 3, 40, 512}, {"resnet20", 1, 28, 64}} {
			opt := resnet.Options{NumClasses: 7, InChannels: c.channels, IncludeTop: true, Seed: 3}
			m, err := resnet.New(b, c.arch, opt)
			if err != nil {
				t.Fatal(err)
			}
			copy(m.FC.Bias.Value.Mutable(), randt.Range(9, -1, 1, 7).Values())
			nn.SetTraining(m, false)
			x := randt.Uniform(5, 2, c.channels, c.size, c.size)
			var logits, feats, pooled []float32
			err = backend.Do(b, func() {
				logits = append(logits, backend.Values(b, m.Forward(x))...)
				last := m.StageOutputs()[len(m.StageOutputs())-1]
				pooled = meanOverPositions(backend.Values(b, last), last.Shape())
				f := m.Features(x)
				if s := f.Shape(); len(s) != 2 || s[0] != 2 || s[1] != m.FeatureChannels() || s[1] != c.want {
					t.Fatalf("%s %s: features of shape %v, want [2 %d]", name, c.arch, s, c.want)
				}
				feats = append(feats, backend.Values(b, f)...)
			})
			if err != nil {
				t.Fatal(err)
			}
			if e := randt.RelErr(feats, pooled); e > 1e-6 {
				t.Errorf("%s %s: features vs the mean of the last stage: relative error %.3g", name, c.arch, e)
			}
			w, bias := m.FC.Weight.Value.Values(), m.FC.Bias.Value.Values()
			k, n := m.FC.Out, m.FC.In
			fc := make([]float32, 2*k)
			for i := range 2 {
				for j := range k {
					s := float64(bias[j])
					for l := range n {
						s += float64(feats[i*n+l]) * float64(w[j*n+l])
					}
					fc[i*k+j] = float32(s)
				}
			}
			if e := randt.RelErr(fc, logits); e > 1e-5 {
				t.Errorf("%s %s: fc(features) %v, logits %v: relative error %.3g", name, c.arch, fc, logits, e)
			}

			opt.IncludeTop = false
			headless, err := resnet.New(b, c.arch, opt)
			if err != nil {
				t.Fatal(err)
			}
			nn.SetTraining(headless, false)
			var got []float32
			if err := backend.Do(b, func() { got = append(got, backend.Values(b, headless.Features(x))...) }); err != nil {
				t.Fatal(err)
			}
			if e := randt.RelErr(got, feats); e > 1e-6 {
				t.Errorf("%s %s: features without the top: relative error %.3g", name, c.arch, e)
			}
		}
	}
}

// meanOverPositions averages an [N, C, H, W] tensor's values over H and W.
func meanOverPositions(v []float32, shape []int) []float32 {
	n, c, hw := shape[0], shape[1], shape[2]*shape[3]
	out := make([]float32, n*c)
	for i := range n * c {
		s := 0.0
		for _, x := range v[i*hw : (i+1)*hw] {
			s += float64(x)
		}
		out[i] = float32(s / float64(hw))
	}
	return out
}
