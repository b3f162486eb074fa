package resnet

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/internal/randt"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
)

// TestNoBNStateDict checks resnet20_nobn's state: torchvision's names with
// a bias for every convolution and no BN tensor, and InferArch reading it
// back apart from resnet20.
func TestNoBNStateDict(t *testing.T) {
	m, err := New(nil, "resnet20_nobn", Options{IncludeTop: true, NumClasses: 10, InChannels: 1})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	shapes := map[string][]int{}
	for _, v := range nn.State(m) {
		names = append(names, v.Name)
		shapes[v.Name] = v.Value.Shape()
		if strings.Contains(v.Name, "bn") || strings.Contains(v.Name, "running") {
			t.Errorf("a network without BN has %s", v.Name)
		}
	}
	for _, want := range []string{"conv1.weight", "conv1.bias", "layer1.0.conv1.bias", "layer1.0.conv2.bias",
		"layer2.0.downsample.0.weight", "layer2.0.downsample.0.bias", "layer3.2.conv2.bias", "fc.weight", "fc.bias"} {
		if !slices.Contains(names, want) {
			t.Errorf("no %s among %v", want, names)
		}
	}
	// 19 convolutions and 2 downsamples with weight and bias, and fc.
	if len(names) != 2*(19+2)+2 {
		t.Errorf("%d state entries, want %d", len(names), 2*(19+2)+2)
	}
	got, _, err := InferArch(shapes)
	if err != nil || got != "resnet20_nobn" {
		t.Errorf("InferArch = %q, %v; want resnet20_nobn", got, err)
	}
	if _, err := New(nil, "resnet20_nobn", Options{ZeroInitResidual: true}); err == nil {
		t.Error("ZeroInitResidual without BN: no error")
	}
}

// TestNoBNMatchesIdentityBN checks resnet20_nobn's forward and backward
// passes against resnet20 whose BNs are frozen at the identity plus a
// shift (gamma 1, mean 0, variance 1-eps, beta = the conv bias): the same
// function, so the same logits and the same gradients of every weight,
// on the pure-Go backend. (A frozen BN computes no gradient of its beta;
// the convolutions' bias gradients are the backends' own, tested there.)
func TestNoBNMatchesIdentityBN(t *testing.T) {
	b, err := backend.New("ref", 2)
	if err != nil {
		t.Fatal(err)
	}
	opt := Options{IncludeTop: true, NumClasses: 3, InChannels: 1, Seed: 3}
	withBN, err := New(b, "resnet20", opt)
	if err != nil {
		t.Fatal(err)
	}
	noBN, err := New(b, "resnet20_nobn", opt)
	if err != nil {
		t.Fatal(err)
	}
	bnState := map[string]*nn.Var{}
	for _, v := range nn.State(withBN) {
		bnState[v.Name] = v.Var
	}
	for i, v := range nn.State(noBN) {
		name := v.Name
		if strings.HasSuffix(name, ".bias") && name != "fc.bias" {
			// conv1.bias is bn1.bias; layer1.0.conv2.bias layer1.0.bn2.bias;
			// downsample.0.bias downsample.1.bias.
			shift := randt.Range(uint64(i), -0.2, 0.2, v.Value.Len())
			copy(v.Value.Mutable(), shift.Values())
			name = strings.Replace(name, "conv", "bn", 1)
			name = strings.Replace(name, "downsample.0", "downsample.1", 1)
		}
		w, ok := bnState[name]
		if !ok {
			t.Fatalf("resnet20 has no %s (for %s)", name, v.Name)
		}
		copy(w.Value.Mutable(), v.Value.Values())
	}
	for _, c := range nn.Modules(withBN) {
		if bn, ok := c.Module.(*nn.BatchNorm2d); ok {
			bn.RunningVar.Value.Fill(1 - bn.Eps)
			nn.Freeze(bn)
		}
	}
	x := randt.Range(7, -1, 1, 2, 1, 8, 8)
	labels := []int{0, 2}
	var logits [2][]float32
	for i, m := range []*Model{withBN, noBN} {
		var dl tensor.Tensor
		if err := backend.Do(b, func() {
			y := m.Forward(x)
			logits[i] = slices.Clone(backend.Values(b, y))
			b.SoftmaxCrossEntropy(&dl, y, labels, 0)
			m.Backward(&dl, false)
		}); err != nil {
			t.Fatal(err)
		}
	}
	if e := randt.RelErr(logits[1], logits[0]); e > 1e-5 {
		t.Errorf("logits differ by %.2g: %v and %v", e, logits[1], logits[0])
	}
	checked := 0
	for _, v := range nn.Params(noBN, false) {
		if strings.HasSuffix(v.Name, ".bias") && v.Name != "fc.bias" {
			continue
		}
		w := bnState[v.Name]
		if w.Grad == nil || v.Grad == nil {
			t.Fatalf("%s: no gradient", v.Name)
		}
		if e := randt.RelErr(backend.Values(b, v.Grad), backend.Values(b, w.Grad)); e > 1e-4 {
			t.Errorf("%s: gradients differ by %.2g", v.Name, e)
		}
		checked++
	}
	if checked != 19+2+2 {
		t.Errorf("checked %d gradients, want 23", checked)
	}
}

// TestBranchProbe checks that the probe sees every block's branch output
// in evaluation mode, that a block's output is relu(F(x) + x) with the F
// it showed, that probing leaves the logits as the fused path gives them,
// and that training mode calls no probe.
func TestBranchProbe(t *testing.T) {
	b, err := backend.New("ref", 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"resnet20", "plain20", "resnet20_nobn"} {
		m, err := New(b, arch, Options{IncludeTop: true, NumClasses: 3, InChannels: 1, Seed: 5})
		if err != nil {
			t.Fatal(err)
		}
		x := randt.Range(9, -1, 1, 2, 1, 8, 8)
		// Running statistics other than 0 and 1.
		if err := backend.Do(b, func() { m.Forward(x) }); err != nil {
			t.Fatal(err)
		}
		nn.SetTraining(m, false)
		var plainLogits []float32
		if err := backend.Do(b, func() { plainLogits = slices.Clone(backend.Values(b, m.Forward(x))) }); err != nil {
			t.Fatal(err)
		}
		var seen []string
		m.SetBranchProbe(func(index int, name string, f *tensor.Tensor) {
			if index != len(seen) {
				t.Errorf("%s: block %s has index %d, want %d", arch, name, index, len(seen))
			}
			seen = append(seen, name)
		})
		var probed []float32
		if err := backend.Do(b, func() { probed = slices.Clone(backend.Values(b, m.Forward(x))) }); err != nil {
			t.Fatal(err)
		}
		want := []string{"layer1.0", "layer1.1", "layer1.2", "layer2.0", "layer2.1", "layer2.2", "layer3.0", "layer3.1", "layer3.2"}
		if !slices.Equal(seen, want) {
			t.Errorf("%s: probed %v, want %v", arch, seen, want)
		}
		if e := randt.RelErr(probed, plainLogits); e > 1e-5 {
			t.Errorf("%s: logits with a probe differ by %.2g", arch, e)
		}

		// layer1.1 keeps the size: its output is relu(F(x) + x), or relu(F(x)) when plain.
		blkMod, err := nn.Find(m, "layer1.1")
		if err != nil {
			t.Fatal(err)
		}
		blk := blkMod.(*BasicBlock)
		in := randt.Range(11, -1, 1, 2, 16, 8, 8)
		var f, out []float32
		m.SetBranchProbe(func(_ int, _ string, ft *tensor.Tensor) { f = slices.Clone(backend.Values(b, ft)) })
		if err := backend.Do(b, func() { out = slices.Clone(backend.Values(b, blk.Forward(in))) }); err != nil {
			t.Fatal(err)
		}
		if f == nil {
			t.Fatalf("%s: no probe call from layer1.1", arch)
		}
		xs := in.Values()
		for i := range out {
			s := f[i]
			if !blk.Plain {
				s += xs[i]
			}
			if w := max(s, 0); math.Abs(float64(out[i]-w)) > 1e-5 {
				t.Fatalf("%s: layer1.1 output[%d] = %v, relu(F + x) = %v", arch, i, out[i], w)
			}
		}

		nn.SetTraining(m, true)
		f = nil
		if err := backend.Do(b, func() { m.Forward(x) }); err != nil {
			t.Fatal(err)
		}
		if f != nil {
			t.Errorf("%s: the probe was called in training mode", arch)
		}
		m.SetBranchProbe(nil)
	}
}
