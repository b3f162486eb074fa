package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecipeFlagsAndMetrics: a training with the recipe flags runs and
// writes ema.safetensors; eval --tta --metrics-json writes the metrics
// that it prints.
func TestRecipeFlagsAndMetrics(t *testing.T) {
	photos := shapesFolder(t, 4)
	runDir := filepath.Join(t.TempDir(), "run")
	out, err := run(t, trainCmd(), trainArgs(photos, runDir, "--optimizer", "sgd", "--schedule", "multistep", "--decay-milestones", "1",
		"--clip-grad", "1", "--model-ema", "--model-ema-decay", "0.9", "--reprob", "0.25", "--mixup", "0.2", "--cutmix", "1",
		"--label-smoothing", "0.1", "--nesterov=false", "--epochs", "2", "--patience", "5")...)
	if err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	if !exists(filepath.Join(runDir, "ema.safetensors")) {
		t.Fatal("no ema.safetensors")
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
		"model-ema": "true", "label-smoothing": "0.1", "data": "fashion-mnist", "arch": "resnet20"} {
		if got := cmd.Flags().Lookup(flag).Value.String(); got != want {
			t.Errorf("--%s %s, want %s", flag, got, want)
		}
	}
	if _, err := run(t, trainCmd(), "--recipe", "imagenet-best", "--out", t.TempDir()); err == nil || !strings.Contains(err.Error(), "no such recipe (known: fmnist-best)") {
		t.Errorf("unknown recipe: %v", err)
	}
}
