package resnet

import (
	"errors"
	"strings"
	"testing"

	"github.com/resgo/resgo/backend"
	_ "github.com/resgo/resgo/backend/dnnl" // registers "dnnl" where cgo is on
	_ "github.com/resgo/resgo/backend/ref"
	"github.com/resgo/resgo/internal/randt"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
)

// conv returns the named convolution of m.
func conv(t *testing.T, m *Model, name string) *nn.Conv2d {
	t.Helper()
	mod, err := nn.Find(m, name)
	if err != nil {
		t.Fatal(err)
	}
	return mod.(*nn.Conv2d)
}

// breakWeight gives the named convolution a weight with one input channel
// too few.
func breakWeight(t *testing.T, m *Model, name string) {
	t.Helper()
	c := conv(t, m, name)
	s := c.Weight.Value.Shape()
	c.Weight.Value = tensor.New(s[0], s[1]-1, s[2], s[3])
}

// TestErrorsNameTheLayer checks that an operation failing inside a model,
// forward or backward, fused or not, returns through backend.Do an error
// naming the layer by its state-dict path. Each case breaks a fresh model
// (the folded weights of the fused path are cached per weight tensor).
func TestErrorsNameTheLayer(t *testing.T) {
	for _, name := range backend.Names() {
		t.Run(name, func(t *testing.T) {
			b, err := backend.New(name, 2)
			if err != nil {
				t.Fatal(err)
			}
			x := tensor.New(2, 1, 12, 12)
			x.Fill(0.5)
			labels := []int{0, 2}
			var dlogits tensor.Tensor
			newModel := func() *Model {
				m, err := New(b, "resnet20", Options{IncludeTop: true, NumClasses: 3, InChannels: 1, Seed: 1})
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			check := func(what, layer, op string, err error) {
				t.Helper()
				var e *backend.Error
				if !errors.As(err, &e) {
					t.Errorf("%s: got %v, want a *backend.Error", what, err)
					return
				}
				if e.Layer != layer || !strings.HasPrefix(e.Op, name+"."+op) || !strings.HasPrefix(err.Error(), layer+": ") {
					t.Errorf("%s: error %q names layer %q and op %q, want %s and %s.%s", what, err, e.Layer, e.Op, layer, name, op)
				}
			}

			for _, train := range []bool{false, true} {
				mode := map[bool]string{false: "eval (fused)", true: "train"}[train]
				for _, layer := range []string{"conv1", "layer2.0.conv1", "layer3.0.downsample.0", "layer3.2.conv2"} {
					m := newModel()
					nn.SetTraining(m, train)
					breakWeight(t, m, layer)
					check(mode+" forward, broken "+layer, layer, "Conv2D", backend.Do(b, func() { m.Forward(x) }))
				}
			}

			// Backward: the weight breaks between the forward pass and the
			// backward pass, whose weight gradient fails first.
			for _, layer := range []string{"layer3.1.conv2", "layer2.0.downsample.0", "conv1"} {
				m := newModel()
				err := backend.Do(b, func() {
					logits := m.Forward(x)
					b.SoftmaxCrossEntropy(&dlogits, logits, labels, 0)
					breakWeight(t, m, layer)
					m.Backward(&dlogits, false)
				})
				check("backward, broken "+layer, layer, "Conv2DBackwardWeights", err)
			}
			m := newModel()
			err = backend.Do(b, func() {
				m.Forward(x)
				m.Backward(tensor.New(2, 4), false)
			})
			check("backward, wrong logits gradient", "fc", "LinearBackward", err)

			// Input with the wrong number of channels: the stem names it.
			err = backend.Do(b, func() { m.Forward(tensor.New(2, 3, 12, 12)) })
			check("forward, 3-channel input", "conv1", "Conv2D", err)

			// The model still works after its errors.
			err = backend.Do(b, func() {
				logits := m.Forward(x)
				b.SoftmaxCrossEntropy(&dlogits, logits, labels, 0)
				m.Backward(&dlogits, false)
			})
			if err != nil {
				t.Errorf("training step after the errors: %v", err)
			}
		})
	}
}

// TestFrozenPrefix checks the transfer-learning path: with the stem and
// layer1 frozen, training runs them fused (BN folded, running statistics)
// and Backward leaves them alone, computing the same gradients for the rest
// as a model that runs everything unfused with the same statistics.
func TestFrozenPrefix(t *testing.T) {
	b, err := backend.New("ref", 2)
	if err != nil {
		t.Fatal(err)
	}
	opt := Options{IncludeTop: true, NumClasses: 3, InChannels: 1, Seed: 1}
	frozen, err := New(b, "resnet20", opt)
	if err != nil {
		t.Fatal(err)
	}
	unfused, _ := New(b, "resnet20", opt)
	x := tensor.New(2, 1, 10, 10)
	xs := x.Mutable()
	for i := range xs {
		xs[i] = float32(i%7)/7 - 0.4
	}
	labels := []int{1, 2}

	// Give the running statistics something other than 0 and 1.
	nn.SetTraining(frozen, true)
	if err := backend.Do(b, func() { frozen.Forward(x) }); err != nil {
		t.Fatal(err)
	}
	dst := nn.State(unfused)
	for i, v := range nn.State(frozen) {
		if v.Value != nil {
			copy(dst[i].Value.Mutable(), v.Value.Values())
		}
	}

	for _, name := range []string{"conv1", "bn1", "layer1"} {
		mod, _ := nn.Find(frozen, name)
		nn.Freeze(mod)
		// The same function, trainable: BN on running statistics in
		// evaluation mode, run unfused because it is trainable.
		mod, _ = nn.Find(unfused, name)
		nn.SetTraining(mod, false)
	}
	nn.SetTraining(frozen, true)
	for _, m := range []*Model{frozen, unfused} {
		err := backend.Do(b, func() {
			var dlogits tensor.Tensor
			logits := m.Forward(x)
			b.SoftmaxCrossEntropy(&dlogits, logits, labels, 0)
			if dx := m.Backward(&dlogits, false); dx != nil {
				t.Errorf("Backward(dy, false) returned an input gradient")
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	for i, blk := range frozen.Layers[0].Layers {
		if !blk.Module.(*BasicBlock).fused {
			t.Errorf("frozen layer1.%d does not run fused", i)
		}
	}
	if frozen.Layers[1].Layers[0].Module.(*BasicBlock).fused {
		t.Error("trainable layer2.0 runs fused")
	}
	want := map[string]nn.NamedVar{}
	for _, v := range nn.State(unfused) {
		want[v.Name] = v
	}
	for _, v := range nn.State(frozen) {
		if v.Kind != nn.Parameter {
			continue
		}
		prefix := strings.HasPrefix(v.Name, "conv1.") || strings.HasPrefix(v.Name, "bn1.") || strings.HasPrefix(v.Name, "layer1.")
		switch {
		case prefix && v.Grad != nil:
			t.Errorf("frozen %s has a gradient", v.Name)
		case !prefix && v.Grad == nil:
			t.Errorf("%s has no gradient", v.Name)
		case !prefix:
			if d := randt.RelErr(v.Grad.Values(), want[v.Name].Grad.Values()); d > 1e-4 {
				t.Errorf("gradient of %s: relative difference %.3g between the fused and the unfused prefix", v.Name, d)
			}
		}
	}
}
