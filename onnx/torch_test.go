//go:build cgo

package onnx_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/internal/randt"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/onnx"
	"github.com/resgo/resgo/transform"
)

// TestTorchONNXRuntimeParity closes the loop with PyTorch: torchvision
// weights (scripts/make_onnx_fixtures.py, Debian's python3-torch 1.13 and
// python3-torchvision 0.14), loaded into resgo and exported, give in ONNX
// Runtime the logits torchvision computes, for a batch of 3 at 64x64.
func TestTorchONNXRuntimeParity(t *testing.T) {
	startORT(t)
	archs := []string{"resnet18", "resnext50_32x4d"}
	if err := exec.Command("/usr/bin/python3", "-c", "import torch, torchvision").Run(); err != nil {
		skipOrFail(t, fmt.Errorf("Debian's python3-torch and python3-torchvision are not installed: %v", err))
	}
	dir := t.TempDir()
	if out, err := exec.Command("/usr/bin/python3", append([]string{"../scripts/make_onnx_fixtures.py", dir}, archs...)...).CombinedOutput(); err != nil {
		t.Fatalf("make_onnx_fixtures.py: %v\n%s", err, out)
	}
	b, err := backend.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range archs {
		sd, err := checkpoint.ReadPTH(filepath.Join(dir, arch+".pth"))
		if err != nil {
			t.Fatal(err)
		}
		expect, err := checkpoint.ReadPTH(filepath.Join(dir, arch+"_expect.pth"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := resnet.New(b, arch, resnet.Options{IncludeTop: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := checkpoint.Load(m, sd, checkpoint.LoadOptions{}); err != nil {
			t.Fatal(err)
		}
		nn.SetTraining(m, false)
		var buf bytes.Buffer
		if err := onnx.Write(&buf, m, onnx.Meta{Classes: resnet.ImageNetClasses(), Preprocess: transform.ImageNetV1}); err != nil {
			t.Fatal(err)
		}
		x, want := expect.Get("input"), expect.Get("logits")
		got := runORT(t, buf.Bytes(), x.F32, x.Shape, len(want.F32))
		var resgo []float32
		if err := backend.Do(b, func() { resgo = append(resgo, backend.Values(b, m.Forward(x.ToTensor()))...) }); err != nil {
			t.Fatal(err)
		}
		eOrt, eResgo := randt.RelErr(got, want.F32), randt.RelErr(resgo, want.F32)
		t.Logf("%s: ONNX Runtime vs torchvision: relative error %.2g; resgo (%s) vs torchvision %.2g", arch, eOrt, backend.Describe(b), eResgo)
		if eOrt > ortTol {
			t.Errorf("%s: ONNX Runtime's logits differ from torchvision's: relative error %.3g > %g", arch, eOrt, ortTol)
		}
	}
}

// runORT runs an ONNX model in ONNX Runtime on input x of the given shape
// and returns its n logits.
func runORT(t *testing.T, model []byte, x []float32, shape []int, n int) []float32 {
	t.Helper()
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(model, []string{onnx.InputName}, []string{onnx.OutputName}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Destroy()
	dims := make([]int64, len(shape))
	for i, d := range shape {
		dims[i] = int64(d)
	}
	in, err := ort.NewTensor(ort.NewShape(dims...), x)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Destroy()
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(shape[0]), int64(n/shape[0])))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Destroy()
	if err := sess.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), out.GetData()...)
}
