package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/internal/shapes"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/predict"
)

// run executes a resgo command line in-process and returns its output.
func run(t *testing.T, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// TestTrainPredictEval is the tutorial's workflow from the command line:
// split a folder, train on it, evaluate, predict one image and a folder.
func TestTrainPredictEval(t *testing.T) {
	dir := t.TempDir()
	photos := filepath.Join(dir, "photos")
	if err := shapes.WriteFolder(photos, []int{0, 1, 2}, 30, 32, 1); err != nil {
		t.Fatal(err)
	}
	flowerData := filepath.Join(dir, "split")
	out, err := run(t, splitCmd(), "--src", photos, "--dst", flowerData, "--val-rate", "0.2")
	if err != nil || !strings.Contains(out, "[disc] 24 train, 6 val") {
		t.Fatalf("split: %v\n%s", err, out)
	}
	runDir := filepath.Join(dir, "run")
	out, err = run(t, trainCmd(), "--data", flowerData, "--arch", "resnet20", "--size", "24", "--epochs", "6",
		"--lr", "3e-3", "--batch", "16", "--out", runDir, "--quiet")
	if err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	for _, want := range []string{"using 72 images for training, 18 images for validation", "[epoch 6] train_loss:", "Finished Training"} {
		if !strings.Contains(out, want) {
			t.Errorf("train output lacks %q:\n%s", want, out)
		}
	}
	best := filepath.Join(runDir, "best.safetensors")

	out, err = run(t, evalCmd(), "--data", flowerData, "--checkpoint", best, "--confusion", filepath.Join(dir, "cm.png"))
	if err != nil || !strings.Contains(out, "18 images, accuracy") || !strings.Contains(out, "confusion matrix") {
		t.Fatalf("eval: %v\n%s", err, out)
	}
	var accuracy float64
	fmt.Sscanf(out[strings.Index(out, "accuracy ")+len("accuracy "):], "%f", &accuracy)
	if st, err := os.Stat(filepath.Join(dir, "cm.png")); err != nil || st.Size() == 0 {
		t.Errorf("no confusion matrix PNG: %v", err)
	}

	// Export for PyTorch, read back.
	pth := filepath.Join(dir, "resNet20.pth")
	out, err = run(t, exportCmd(), "--checkpoint", best, "--out", pth)
	if err != nil || !strings.Contains(out, "resnet20 with 3 classes") {
		t.Fatalf("export: %v\n%s", err, out)
	}
	if sd, err := checkpoint.ReadPTH(pth); err != nil || sd.Get("fc.weight") == nil || sd.Get("optim.fc.weight.exp_avg") != nil {
		t.Errorf("exported .pth: %v", err)
	}

	// One image: the tutorial's lines, one per class.
	img := filepath.Join(flowerData, "val", "square")
	entries, _ := os.ReadDir(img)
	one := filepath.Join(img, entries[0].Name())
	out, err = run(t, predictCmd(), "--weights", best, "--topk", "3", one)
	if err != nil || strings.Count(out, "class: ") != 3 || !strings.Contains(out, "prob: ") {
		t.Fatalf("predict one: %v\n%s", err, out)
	}

	// A folder of 18 images with a batch of 8: the last partial batch too,
	// and a corrupt file reported and skipped.
	valDir := filepath.Join(flowerData, "val")
	os.WriteFile(filepath.Join(valDir, "disc", "broken.jpg"), []byte("not a jpeg"), 0o644)
	out, err = run(t, predictCmd(), "--weights", best, "--json", "--batch", "8", valDir)
	if err != nil {
		t.Fatalf("predict folder: %v\n%s", err, out)
	}
	var results []predict.Result
	correct := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r predict.Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if len(r.Logits) != 3 || len(r.Top) != 3 {
			t.Errorf("%s: %d logits, %d top classes", r.Image, len(r.Logits), len(r.Top))
		}
		if strings.Contains(r.Image, string(filepath.Separator)+r.Top[0].Name+string(filepath.Separator)) {
			correct++
		}
		results = append(results, r)
	}
	if len(results) != 18 {
		t.Errorf("%d predictions for 18 readable images", len(results))
	}
	// predict and eval preprocess and classify alike.
	if want := int(math.Round(accuracy * 18)); correct != want {
		t.Errorf("predict got %d of 18 validation images right, eval reports accuracy %.4f (%d)", correct, accuracy, want)
	}
	if !strings.Contains(out, "broken.jpg") {
		t.Errorf("the corrupt file was not reported:\n%s", out)
	}
}

func TestInfoAndBadInput(t *testing.T) {
	out, err := run(t, infoCmd(), "--arch", "resnet18")
	if err != nil || !strings.Contains(out, "11,689,512 parameters, 1.814 GMACs") || !strings.Contains(out, "layer4.1.bn2") {
		t.Errorf("info: %v\n%s", err, out)
	}
	if _, err := run(t, infoCmd(), "--arch", "resnet19"); err == nil || !strings.Contains(err.Error(), "unknown architecture") {
		t.Errorf("unknown architecture: %v", err)
	}
	if _, err := run(t, trainCmd(), "--data", t.TempDir(), "--out", t.TempDir()); err == nil {
		t.Error("training on an empty folder succeeded")
	}
	if _, err := run(t, trainCmd(), "--data", "x", "--transfer", "from:layer7", "--out", t.TempDir()); err == nil || !strings.Contains(err.Error(), "from:layer7") {
		t.Errorf("bad transfer mode: %v", err)
	}
	if _, err := run(t, predictCmd(), "--weights", filepath.Join(t.TempDir(), "missing.pth"), "--arch", "resnet18", "x.jpg"); err == nil {
		t.Error("missing weights accepted")
	}
	// torchvision's weights for another architecture than --arch.
	cache := t.TempDir()
	t.Setenv("RESGO_CACHE", cache)
	os.WriteFile(filepath.Join(cache, "resnet18-f37072fd.pth"), []byte("x"), 0o644)
	photos := t.TempDir()
	if err := shapes.WriteFolder(photos, []int{0, 1}, 4, 16, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, trainCmd(), "--data", photos, "--arch", "resnet50", "--weights", "resnet18", "--out", t.TempDir()); err == nil ||
		!strings.Contains(err.Error(), "weights resnet18.IMAGENET1K_V1 are resnet18; --arch says resnet50") {
		t.Errorf("mismatched weights: %v", err)
	}
}

// TestWeightsDownload fetches a file named as torchvision names it from a
// local server (nothing outside is reachable here) and checks the hash
// verification end to end.
func TestWeightsDownload(t *testing.T) {
	payload := []byte("not really a resnet, but hashed like one")
	sum := sha256.Sum256(payload)
	w, err := resnet.LookupWeights("resnet18")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/"+w.File {
			http.NotFound(rw, r)
			return
		}
		rw.Write(payload)
	}))
	defer srv.Close()
	cache := t.TempDir()
	_, err = run(t, weightsCmd(), "download", "resnet18", "--cache", cache, "--base-url", srv.URL+"/")
	// The payload's hash is not f37072fd...: the download must be refused
	// and nothing kept.
	if err == nil || !strings.Contains(err.Error(), w.SHA256Prefix) || !strings.Contains(err.Error(), hex.EncodeToString(sum[:])) {
		t.Errorf("a file with the wrong hash: %v", err)
	}
	if entries, _ := os.ReadDir(cache); len(entries) != 0 {
		t.Errorf("the cache keeps %d files after a failed download", len(entries))
	}
	out, err := run(t, weightsCmd(), "list")
	if err != nil || !strings.Contains(out, "resnet34.LEGACY") || !strings.Contains(out, "resnet34-333f7ec4.pth") {
		t.Errorf("weights list: %v\n%s", err, out)
	}
}
