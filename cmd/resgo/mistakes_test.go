package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resgo/resgo/backend/ref"
	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/transform"
)

// The common mistakes of a new user (issue 11): each gets a one-line
// answer that says what to do, or just works.

// writeStateDict writes the state dict of a freshly built architecture as
// a torchvision-style .pth file at path.
func writeStateDict(t *testing.T, path, arch string, opt resnet.Options) {
	t.Helper()
	m, err := resnet.New(ref.New(1), arch, opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.WritePTH(path, checkpoint.FromModule(m)); err != nil {
		t.Fatal(err)
	}
}

// TestTrainWithoutData: `resgo train` without --data used to fail with
// "image folder: open : no such file or directory".
func TestTrainWithoutData(t *testing.T) {
	_, err := run(t, trainCmd(), "--arch", "resnet20", "--out", filepath.Join(t.TempDir(), "run"))
	if err == nil || !strings.HasPrefix(err.Error(), "--data is required: a folder of class folders") {
		t.Errorf("error %v", err)
	}
}

// TestTrainReadsArchFromWeights: `train --weights FILE` without --arch
// builds the architecture the weights are (it used to build the default
// resnet34 and fail with a list of missing keys), whatever the file is
// called, and a --arch that disagrees is one line.
func TestTrainReadsArchFromWeights(t *testing.T) {
	photos := shapesFolder(t, 4)
	// resnet20 weights in a file named as if it held resnet50.
	weights := filepath.Join(t.TempDir(), "resnet50.pth")
	writeStateDict(t, weights, "resnet20", resnet.Options{IncludeTop: true, NumClasses: 10, InChannels: 3})
	args := []string{"--data", photos, "--weights", weights, "--size", "16", "--lr", "3e-3", "--batch", "8", "--epochs", "1", "--quiet"}

	out, err := run(t, trainCmd(), append(args, "--out", filepath.Join(t.TempDir(), "run"))...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"architecture resnet20, read from the weights " + weights, "resnet20 on backend", "Finished Training"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	_, err = run(t, trainCmd(), append(args, "--arch", "resnet34", "--out", filepath.Join(t.TempDir(), "run"))...)
	if err == nil || err.Error() != weights+": these weights are resnet20; --arch says resnet34" {
		t.Errorf("--arch resnet34: error %v", err)
	}
}

// TestEvalPyTorchWeights: eval given PyTorch weights (the tutorial's
// resNet34.pth, here a resnet20 exported for PyTorch) used to fail with
// "safetensors: header length 578712552184433488 exceeds the file"; now
// it evaluates them with their architecture read from the tensors, and
// says what it assumed. The confusion matrix goes beside the checkpoint
// or into --out, never into the working directory.
func TestEvalPyTorchWeights(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	photos := shapesFolder(t, 4)
	runDir := filepath.Join(t.TempDir(), "run")
	if out, err := run(t, trainCmd(), trainArgs(photos, runDir)...); err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	best := filepath.Join(runDir, "best.safetensors")
	pth := filepath.Join(t.TempDir(), "resNet20.pth")
	if out, err := run(t, exportCmd(), "--checkpoint", best, "--out", pth); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}

	// The resgo checkpoint: confusion.png beside it.
	out, err := run(t, evalCmd(), "--data", photos, "--checkpoint", best)
	if err != nil || !strings.Contains(out, "12 images, accuracy") {
		t.Fatalf("eval %s: %v\n%s", best, err, out)
	}
	if !exists(filepath.Join(runDir, "confusion.png")) || !strings.Contains(out, "plot: "+filepath.Join(runDir, "confusion.png")) {
		t.Errorf("no confusion.png beside the checkpoint:\n%s", out)
	}

	// The .pth, with --out.
	plots := filepath.Join(t.TempDir(), "plots")
	out, err = run(t, evalCmd(), "--data", photos, "--checkpoint", pth, "--out", plots)
	if err != nil {
		t.Fatalf("eval %s: %v\n%s", pth, err, out)
	}
	for _, want := range []string{
		pth + " is not a resgo checkpoint: resnet20 read from its tensors, 3 classes named as the data's folders in sorted order, preprocessing resize 256, crop 224",
		"12 images, accuracy",
		"plot: " + filepath.Join(plots, "confusion.png"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("eval %s: output lacks %q:\n%s", pth, want, out)
		}
	}
	if !exists(filepath.Join(plots, "confusion.png")) {
		t.Error("no confusion.png in --out")
	}
	// With the run's class_indices.json, and with --confusion none.
	out, err = run(t, evalCmd(), "--data", photos, "--checkpoint", pth, "--classes", filepath.Join(runDir, "class_indices.json"), "--confusion", "none")
	if err != nil || !strings.Contains(out, "named as "+filepath.Join(runDir, "class_indices.json")) || strings.Contains(out, "plot:") {
		t.Errorf("eval with --classes and no plot: %v\n%s", err, out)
	}
	if entries, _ := os.ReadDir(work); len(entries) != 0 {
		t.Errorf("eval wrote into the working directory: %v", entries)
	}

	// Weights whose outputs are not the data's classes, and an --arch
	// that disagrees.
	two := filepath.Join(t.TempDir(), "two")
	for _, c := range []string{"a", "b"} {
		if err := os.MkdirAll(filepath.Join(two, c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(filepath.Join(photos, "disc"), filepath.Join(two, "a", "disc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(photos, "square"), filepath.Join(two, "b", "square")); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, evalCmd(), "--data", two, "--checkpoint", pth); err == nil ||
		!strings.Contains(err.Error(), "resnet20 weights with 3 outputs, and "+two+" has 2 classes") {
		t.Errorf("3 outputs, 2 classes: error %v", err)
	}
	if _, err := run(t, evalCmd(), "--data", two, "--checkpoint", pth, "--arch", "resnet18"); err == nil ||
		err.Error() != pth+": these weights are resnet20; --arch says resnet18" {
		t.Errorf("--arch resnet18: error %v", err)
	}
	// export reads resgo checkpoints, and says so of a .pth.
	if _, err := run(t, exportCmd(), "--checkpoint", pth, "--out", filepath.Join(t.TempDir(), "x.pth")); err == nil ||
		!strings.Contains(err.Error(), pth+": not a resgo checkpoint: a PyTorch .pth file") {
		t.Errorf("export of a .pth: error %v", err)
	}
}

// TestWeightsOffline: a download that cannot reach the server says where
// to put the file fetched by other means: resgo's cache and PyTorch's.
func TestWeightsOffline(t *testing.T) {
	cache, torchHome := t.TempDir(), t.TempDir()
	t.Setenv("TORCH_HOME", torchHome)
	_, err := run(t, weightsCmd(), "download", "resnet34.LEGACY", "--cache", cache, "--base-url", "http://127.0.0.1:1/models/")
	for _, want := range []string{
		"without a network, fetch http://127.0.0.1:1/models/resnet34-333f7ec4.pth by other means",
		filepath.Join(cache, "resnet34-333f7ec4.pth"),
		filepath.Join(torchHome, "hub", "checkpoints", "resnet34-333f7ec4.pth"),
		"SHA-256 must start with 333f7ec4",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("offline download: error %v, want %q", err, want)
		}
	}
}

// TestPredictFileNamedLikeTorchvisions: a local file named as torchvision's
// resnet18 file but holding other weights is taken for what its tensors
// are, not for resnet18 (it used to override --arch and the
// preprocessing).
func TestPredictFileNamedLikeTorchvisions(t *testing.T) {
	dir := t.TempDir()
	weights := filepath.Join(dir, "resnet18-f37072fd.pth")
	writeStateDict(t, weights, "resnet20", resnet.Options{IncludeTop: true, NumClasses: 4, InChannels: 3})
	img := filepath.Join(dir, "a.png")
	writePNG(t, img, 32, 32, 1, false)
	out, err := run(t, predictCmd(), "--weights", weights, "--json", img)
	if err != nil || !strings.Contains(out, `"class 3"`) {
		t.Errorf("predict: %v\n%s", err, out)
	}
	if _, err := run(t, predictCmd(), "--weights", weights, "--arch", "resnet18", img); err == nil ||
		err.Error() != weights+": these weights are resnet20; --arch says resnet18" {
		t.Errorf("--arch resnet18: error %v", err)
	}
}

// TestServeBanner: the banner's curl line is an address that works (it
// read "http://localhost127.0.0.1:18080/predict").
func TestServeBanner(t *testing.T) {
	for _, c := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 18080}, "http://127.0.0.1:18080/predict"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 8080}, "http://localhost:8080/predict"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}, "http://localhost:8080/predict"},
		{&net.TCPAddr{Port: 8080}, "http://localhost:8080/predict"},
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 9000}, "http://[::1]:9000/predict"},
	} {
		if got := predictURL(c.addr); got != c.want {
			t.Errorf("%v: %s, want %s", c.addr, got, c.want)
		}
	}
}

// TestExportSafetensorsHint: the PyTorch line after an export to
// safetensors loads it with safetensors' load_file; torch.load cannot
// read it.
func TestExportSafetensorsHint(t *testing.T) {
	dir := t.TempDir()
	m, err := resnet.New(ref.New(1), "resnet18", resnet.Options{IncludeTop: true, NumClasses: 2, InChannels: 3})
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "best.safetensors")
	meta := modelfile.Meta{Arch: "resnet18", NumClasses: 2, InChannels: 3, Classes: []string{"a", "b"}, Preprocess: transform.ImageNetV1}
	if err := modelfile.Write(ckpt, m, meta, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ out, want, not string }{
		{filepath.Join(dir, "w.safetensors"), `from safetensors.torch import load_file; net = torchvision.models.resnet18(num_classes=2); net.load_state_dict(load_file("` + filepath.Join(dir, "w.safetensors") + `"))`, "torch.load"},
		{filepath.Join(dir, "w.pth"), `net = torchvision.models.resnet18(num_classes=2); net.load_state_dict(torch.load("` + filepath.Join(dir, "w.pth") + `"))`, "load_file"},
	} {
		out, err := run(t, exportCmd(), "--checkpoint", ckpt, "--out", c.out)
		if err != nil || !strings.Contains(out, c.want) || strings.Contains(out, c.not) {
			t.Errorf("export to %s: %v\n%s", c.out, err, out)
		}
	}
}
