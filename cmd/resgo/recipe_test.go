package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestRecipeFlagsAndMetrics: a training with the recipe flags runs and
// writes ema.safetensors; --resume refuses another weight decay of the
// biases; eval --tta --metrics-json writes the metrics that it prints.
func TestRecipeFlagsAndMetrics(t *testing.T) {
	photos := shapesFolder(t, 4)
	runDir := filepath.Join(t.TempDir(), "run")
	out, err := run(t, trainCmd(), trainArgs(photos, runDir, "--optimizer", "sgd", "--schedule", "multistep", "--decay-milestones", "1",
		"--clip-grad", "1", "--model-ema", "--model-ema-decay", "0.9", "--reprob", "0.25", "--mixup", "0.2", "--cutmix", "1",
		"--label-smoothing", "0.1", "--nesterov=false", "--epochs", "2", "--patience", "5",
		"--weight-decay", "5e-4", "--norm-weight-decay", "0", "--bias-weight-decay", "0")...)
	if err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	if !exists(filepath.Join(runDir, "ema.safetensors")) {
		t.Fatal("no ema.safetensors")
	}
	want := "--bias-weight-decay 0.0001 (the run's: 0)"
	if _, err := run(t, trainCmd(), "--resume", "--out", runDir, "--quiet", "--epochs", "3", "--bias-weight-decay", "1e-4"); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("--resume --bias-weight-decay 1e-4: %v, want %q", err, want)
	}
	metrics := filepath.Join(t.TempDir(), "metrics.json")
	out, err = run(t, evalCmd(), "--data", photos, "--checkpoint", filepath.Join(runDir, "ema.safetensors"), "--tta",
		"--metrics-json", metrics, "--confusion", "none")
	if err != nil || !strings.Contains(out, "(flip TTA): 12 images, accuracy") || !strings.Contains(out, "top-5 1.0000") {
		t.Fatalf("eval: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(metrics)
	if err != nil {
		t.Fatal(err)
	}
	var m metricsFile
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	sup, correct := 0, 0
	for i, c := range m.Classes {
		sup += c.Support
		correct += m.Confusion[i][i]
	}
	if !m.TTA || m.Images != 12 || sup != 12 || len(m.Classes) != 3 || m.Top5 != 1 || m.Top1 != float64(correct)/12 {
		t.Errorf("metrics: %+v", m)
	}
}

// TestRecipePreset: --recipe sets its flags, those given explicitly win,
// an unknown recipe is refused naming the known ones.
func TestRecipePreset(t *testing.T) {
	cmd := trainCmd()
	if err := cmd.ParseFlags([]string{"--epochs", "3", "--reprob", "0"}); err != nil {
		t.Fatal(err)
	}
	if err := applyRecipe(cmd.Flags(), "fmnist-best"); err != nil {
		t.Fatal(err)
	}
	for flag, want := range map[string]string{"epochs": "3", "reprob": "0", "lr": "0.1", "optimizer": "sgd", "schedule": "cosine",
		"tta": "true", "batch": "64", "conv": "auto", "label-smoothing": "0.1", "data": "fashion-mnist", "arch": "resnet20"} {
		if got := cmd.Flags().Lookup(flag).Value.String(); got != want {
			t.Errorf("--%s %s, want %s", flag, got, want)
		}
	}
	if _, err := run(t, trainCmd(), "--recipe", "imagenet-best", "--out", t.TempDir()); err == nil || !strings.Contains(err.Error(), "no such recipe (known: fmnist-best)") {
		t.Errorf("unknown recipe: %v", err)
	}
}

// TestTrainTTAAndConv: train --tta validates with flip TTA, so the
// validation accuracy and loss in history.csv are what eval --tta reports
// for the epoch's checkpoint (the loss differs without TTA); --conv takes
// the algorithms RESGO_CONV takes and refuses others in one line.
func TestTrainTTAAndConv(t *testing.T) {
	t.Setenv("RESGO_CONV", os.Getenv("RESGO_CONV")) // --conv sets it; restored after the test
	photos, val := shapesFolder(t, 4), shapesFolder(t, 3)
	runDir := filepath.Join(t.TempDir(), "run")
	out, err := run(t, trainCmd(), trainArgs(photos, runDir, "--val", val, "--tta", "--conv", "direct")...)
	if err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	hist, err := os.ReadFile(filepath.Join(runDir, "history.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(string(hist)), "\n")
	if len(rows) != 2 {
		t.Fatalf("history.csv:\n%s", hist)
	}
	header, cells := strings.Split(rows[0], ","), strings.Split(rows[1], ",")
	field := func(name string) float64 {
		i := slices.Index(header, name)
		if i < 0 {
			t.Fatalf("history.csv has no %s:\n%s", name, hist)
		}
		v, err := strconv.ParseFloat(cells[i], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	valAcc, valLoss := field("val_acc"), field("val_loss")
	checkpoint := filepath.Join(runDir, "best.safetensors")
	evalLoss := func(tta bool) (acc, loss float64) {
		args := []string{"--data", val, "--checkpoint", checkpoint, "--confusion", "none"}
		if tta {
			args = append(args, "--tta")
		}
		out, err := run(t, evalCmd(), args...)
		if err != nil {
			t.Fatalf("eval: %v\n%s", err, out)
		}
		// "... 9 images, accuracy 0.3333, top-5 1.0000, loss 1.0986"
		if _, err := fmt.Sscanf(out[strings.Index(out, "9 images, "):], "9 images, accuracy %g, top-5 %g, loss %g", &acc, new(float64), &loss); err != nil {
			t.Fatalf("eval output %q: %v", out, err)
		}
		return acc, loss
	}
	acc, loss := evalLoss(true)
	_, plainLoss := evalLoss(false)
	if math.Abs(acc-valAcc) > 1e-4 || math.Abs(loss-valLoss) > 1e-4*max(1, valLoss) || math.Abs(plainLoss-valLoss) <= 1e-4*max(1, valLoss) {
		t.Errorf("history val_acc %v val_loss %v; eval --tta accuracy %v loss %v; eval without TTA loss %v", valAcc, valLoss, acc, loss, plainLoss)
	}
	if _, err := run(t, trainCmd(), trainArgs(photos, filepath.Join(t.TempDir(), "bad"), "--conv", "fft")...); err == nil || err.Error() != "--conv fft: want direct, auto or winograd" {
		t.Errorf("--conv fft: %v", err)
	}
}
