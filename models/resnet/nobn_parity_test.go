package resnet_test

import (
	"math"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/backend/backendtest"
	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
)

// TestParityNoBN loads PyTorch's ResNet-20 without BN
// (scripts/make_nobn_fixtures.py: torchvision's names, a bias in every
// convolution) into resnet20_nobn and compares, on every backend, the
// logits, the loss and every parameter's gradient with PyTorch's float64
// ones: within 1e-4 relative to their largest magnitude (gradTol). Its
// 290,000 ReLU inputs at batch 2 leave few within float32 rounding of
// zero, so no decision is replayed (see TestParityTrainStep).
func TestParityNoBN(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import torch").Run(); err != nil {
		if torchRequired() {
			t.Fatal("Debian's python3-torch is not installed:", err)
		}
		t.Skip("Debian's python3-torch is not installed:", err)
	}
	dir := t.TempDir()
	if out, err := exec.Command("/usr/bin/python3", "../../scripts/make_nobn_fixtures.py", dir).CombinedOutput(); err != nil {
		t.Fatalf("make_nobn_fixtures.py: %v\n%s", err, out)
	}
	sd := readPTH(t, filepath.Join(dir, "resnet20_nobn.pth"))
	exp := readPTH(t, filepath.Join(dir, "resnet20_nobn_expect.pth"))
	shapes := map[string][]int{}
	for _, k := range sd.Keys {
		shapes[k] = sd.Get(k).Shape
	}
	if arch, _, err := resnet.InferArch(shapes); err != nil || arch != "resnet20_nobn" {
		t.Fatalf("InferArch of PyTorch's weights: %q, %v", arch, err)
	}
	x := exp.Get("input").ToTensor()
	var labels []int
	for _, l := range exp.Get("labels").I64 {
		labels = append(labels, int(l))
	}
	for _, name := range backend.Names() {
		t.Run(name, func(t *testing.T) {
			b, err := backend.New(name, 0)
			if err != nil {
				t.Fatal(err)
			}
			m, err := resnet.New(b, "resnet20_nobn", resnet.Options{IncludeTop: true, NumClasses: 10, InChannels: 1})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := checkpoint.Load(m, sd, checkpoint.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Loaded != len(nn.State(m)) || len(sd.Keys) != len(nn.State(m)) {
				t.Errorf("loaded %d of %d entries from PyTorch's %d", rep.Loaded, len(nn.State(m)), len(sd.Keys))
			}
			var loss float64
			err = backend.Do(b, func() {
				logits := m.Forward(x)
				if err := backendtest.Compare(b, "logits", logits, exp.Get("logits64").ToTensor(), 1e-4); err != nil {
					t.Error(err)
				}
				var dlogits tensor.Tensor
				loss = b.SoftmaxCrossEntropy(&dlogits, logits, labels, 0)
				m.Backward(&dlogits, false)
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := float64(exp.Get("loss64").F32[0]); math.Abs(loss-want) > 1e-4*math.Abs(want) {
				t.Errorf("loss %.6f, PyTorch %.6f", loss, want)
			}
			checked := 0
			for _, v := range nn.Params(m, false) {
				want := exp.Get("grad64." + v.Name)
				if want == nil {
					t.Errorf("no PyTorch gradient of %s", v.Name)
					continue
				}
				if err := backendtest.Compare(b, "gradient of "+v.Name, v.Grad, want.ToTensor(), gradTol); err != nil {
					t.Error(err)
				}
				checked++
			}
			if checked != 44 {
				t.Errorf("%d gradients checked, want all 44", checked)
			}
		})
	}
}
