package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resgo/resgo/internal/shapes"
)

// shapesFolder writes n 24x24 images of each of three classes into a new
// folder and returns it.
func shapesFolder(t *testing.T, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "photos")
	if err := shapes.WriteFolder(dir, []int{0, 1, 2}, n, 24, 3); err != nil {
		t.Fatal(err)
	}
	return dir
}

// trainArgs are the settings of the small trainings of these tests.
func trainArgs(data, out string, more ...string) []string {
	return append([]string{"--data", data, "--arch", "resnet20", "--size", "16", "--lr", "3e-3", "--batch", "8",
		"--epochs", "1", "--out", out, "--quiet"}, more...)
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestTrainRefusesBadFlags: flags that cannot train are refused before
// any work, in one line naming the flag (--batch 0 used to panic with an
// integer division by zero, --epochs 0 to claim a best checkpoint it never
// wrote).
func TestTrainRefusesBadFlags(t *testing.T) {
	photos := shapesFolder(t, 2)
	out := filepath.Join(t.TempDir(), "run")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--batch", "0"}, "--batch 0: want a batch of at least 1"},
		{[]string{"--batch", "-3"}, "--batch -3: want a batch of at least 1"},
		{[]string{"--batch", "100000000"}, "--batch 100000000: 100000000 samples of 3x16x16 values exceed the limit"},
		{[]string{"--epochs", "0"}, "--epochs 0: want 1 to"},
		{[]string{"--lr", "0"}, "--lr 0: want a finite learning rate above 0"},
		{[]string{"--lr", "NaN"}, "--lr NaN: want a finite learning rate above 0"},
		{[]string{"--momentum", "1.5", "--optimizer", "sgd"}, "--momentum 1.5: want 0 <= momentum < 1"},
		{[]string{"--size", "0"}, "--size 0: want a crop side of 1 to 4096 pixels"},
		{[]string{"--val-split", "1"}, "--val-split 1: want a fraction with 0 <= fraction < 1"},
		{[]string{"--workers", "-1"}, "--workers -1: want 0 (one per CPU) to"},
		{[]string{"--schedule", "linear"}, `--schedule linear: want constant, step, multistep, cosine or plateau`},
		{[]string{"--clip-grad", "-1"}, "--clip-grad -1: want a finite max norm above 0"},
		{[]string{"--model-ema-decay", "1"}, "--model-ema-decay 1: want 0 <= decay < 1"},
		{[]string{"--schedule", "multistep"}, "--decay-milestones []: the multistep schedule needs its milestones"},
		{[]string{"--schedule", "plateau", "--decay-rate", "2"}, "--decay-rate 2: want a finite decay factor above 0"},
		{[]string{"--min-lr", "1"}, "--min-lr 1: want 0 <= min lr < lr"},
		{[]string{"--warmup-epochs", "5"}, "--warmup-epochs 5: want 0 to the number of epochs"},
		{[]string{"--backbone-lr-scale", "-1"}, "--backbone-lr-scale -1: want a finite factor"},
		{[]string{"--norm-weight-decay", "-1"}, "--norm-weight-decay -1: want a finite weight decay of 0 or more"},
		{[]string{"--bias-weight-decay", "-1e-4"}, "--bias-weight-decay -0.0001: want a finite weight decay of 0 or more"},
		{[]string{"--bias-weight-decay", "x"}, `invalid argument "x" for "--bias-weight-decay" flag`},
		{[]string{"--patience", "-2"}, "--patience -2: want 0 (no early stopping)"},
		{[]string{"--reprob", "1.5"}, "--reprob 1.5: want a probability in [0, 1]"},
		{[]string{"--aa", "rand-m99-n2"}, `--aa rand-m99-n2: auto-augment policy "rand-m99-n2": want a magnitude 0 to 30`},
		{[]string{"--color-jitter", "2"}, "--color-jitter 2: want 0 to 1"},
		{[]string{"--mixup", "-1"}, "--mixup -1: want 0 to 1000"},
		{[]string{"--mixup-prob", "2"}, "--mixup-prob 2: want 0 to 1"},
		{[]string{"--class-weights", "1,x"}, `--class-weights 1,x: class weight "x": want a finite number`},
		{[]string{"--class-weights", "balanced", "--mixup", "0.2"}, "--class-weights balanced: class weights and mixup or cutmix cannot be combined"},
		{[]string{"--label-smoothing", "1"}, "--label-smoothing 1: want 0 <= label smoothing < 1"},
		{[]string{"--validation-batch-size", "-1"}, "--validation-batch-size -1: want 0 (the training batch) or more"},
		{[]string{"--zero-init-residual", "--weights", "resnet18.IMAGENET1K_V1"}, "--zero-init-residual true: zero_init_residual starts a model from scratch"},
		{[]string{"--resume", "--overwrite"}, "give one of them"},
	} {
		_, err := run(t, trainCmd(), trainArgs(photos, out, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want one line with %q", c.args, err, c.want)
		}
	}
	if exists(out) {
		t.Errorf("refused flags created %s", out)
	}
}

// TestTrainDiverges: --lr 1e30 used to exit 0 and write checkpoints full of
// NaN and infinities; now it fails naming the epoch, the step and what
// went wrong, and writes no checkpoint.
func TestTrainDiverges(t *testing.T) {
	photos := shapesFolder(t, 6)
	out := filepath.Join(t.TempDir(), "run")
	_, err := run(t, trainCmd(), trainArgs(photos, out, "--lr", "1e30", "--epochs", "2")...)
	if err == nil || !strings.Contains(err.Error(), "training diverged") || !strings.HasPrefix(err.Error(), "epoch 1, ") {
		t.Fatalf("--lr 1e30: %v", err)
	}
	for _, f := range []string{"best.safetensors", "last.safetensors"} {
		if exists(filepath.Join(out, f)) {
			t.Errorf("a diverged run wrote %s", f)
		}
	}
}

// TestTrainNoValidationOrData: --val-split 0 trains without validation
// and says so (it used to report val_accuracy 0.000 and name a best
// checkpoint); a folder whose every image is corrupt fails (it used to
// "train" on nothing and exit 0).
func TestTrainNoValidationOrData(t *testing.T) {
	photos := shapesFolder(t, 3)
	out := filepath.Join(t.TempDir(), "run")
	o, err := run(t, trainCmd(), trainArgs(photos, out, "--val-split", "0")...)
	if err != nil {
		t.Fatalf("--val-split 0: %v\n%s", err, o)
	}
	for _, want := range []string{"using 9 images for training, no validation set", "val_accuracy: none (no validation set)", "no best checkpoint: the model is in " + filepath.Join(out, "last.safetensors")} {
		if !strings.Contains(o, want) {
			t.Errorf("output lacks %q:\n%s", want, o)
		}
	}
	if strings.Contains(o, "val_accuracy: 0.000") || exists(filepath.Join(out, "best.safetensors")) {
		t.Errorf("a validation accuracy or a best checkpoint without validation:\n%s", o)
	}

	corrupt := filepath.Join(t.TempDir(), "corrupt")
	for _, c := range []string{"disc", "square", "stripes"} {
		for _, f := range []string{"1.png", "2.jpg", "3.png"} {
			p := filepath.Join(corrupt, c, f)
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte("not an image at all"), 0o644)
		}
	}
	out2 := filepath.Join(t.TempDir(), "run")
	o, err = run(t, trainCmd(), trainArgs(corrupt, out2, "--val-split", "0")...)
	if err == nil || !strings.Contains(err.Error(), "none of the 9 training images could be read") {
		t.Errorf("every image corrupt: %v\n%s", err, o)
	}
	if exists(filepath.Join(out2, "last.safetensors")) {
		t.Error("a checkpoint of a run that trained on nothing")
	}
	// Evaluating on it: an error, not an accuracy of 0 on 0 images.
	o, err = run(t, evalCmd(), "--data", corrupt, "--checkpoint", filepath.Join(out, "last.safetensors"), "--confusion", "")
	if err == nil || !strings.Contains(err.Error(), "none of its 9 images could be read") {
		t.Errorf("eval of corrupt images: %v\n%s", err, o)
	}
	if _, err := run(t, evalCmd(), "--data", photos, "--checkpoint", filepath.Join(out, "last.safetensors"), "--batch", "0"); err == nil || !strings.Contains(err.Error(), "--batch 0") {
		t.Errorf("eval --batch 0: %v", err)
	}
}

// TestTrainOutAndResume: a non-empty --out is refused without --resume or
// --overwrite; --resume keeps the run's split and settings (it used to
// redraw the split from the command line's --seed and --val-split, leaking
// validation images into training), refuses flags that change them and
// data that changed, and extends a finished run only when asked.
func TestTrainOutAndResume(t *testing.T) {
	photos := shapesFolder(t, 10)
	out := filepath.Join(t.TempDir(), "run")
	o, err := run(t, trainCmd(), trainArgs(photos, out, "--val-split", "0.3", "--seed", "5")...)
	if err != nil || !strings.Contains(o, "using 21 images for training, 9 images for validation") {
		t.Fatalf("first run: %v\n%s", err, o)
	}
	if _, err := run(t, trainCmd(), trainArgs(photos, out)...); err == nil || !strings.Contains(err.Error(), "--overwrite") || !strings.Contains(err.Error(), "is not empty") {
		t.Errorf("a non-empty --out: %v", err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--lr", "0.1", "--epochs", "2"}, "--lr 0.1 (the run's: 0.003)"},
		{[]string{"--val-split", "0.5", "--epochs", "2"}, "--val-split 0.5 (the run's: 0.3)"},
		{[]string{"--seed", "6", "--batch", "4", "--epochs", "2"}, "--batch 4 (the run's: 8), --seed 6 (the run's: 5)"},
		{[]string{"--arch", "resnet32", "--epochs", "2"}, "--arch resnet32 (the run's: resnet20)"},
		{[]string{"--norm-weight-decay", "0", "--epochs", "2"}, "--norm-weight-decay 0 (the run's: not given)"},
		{nil, "the run has finished its 1 epochs"},
		{[]string{"--epochs", "1"}, "the run has finished its 1 epochs"},
	} {
		args := append([]string{"--resume", "--out", out, "--quiet"}, c.args...)
		if _, err := run(t, trainCmd(), args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--resume %v: %v, want %q", c.args, err, c.want)
		}
	}
	// A stale temporary file of the curves, as a killed write leaves it.
	stale := filepath.Join(out, ".curves.png.tmp-4242")
	os.WriteFile(stale, []byte("half a png"), 0o644)
	// The command line's defaults (--seed 0, --val-split 0.1) do not
	// redraw the split: the run's 21/9 split is kept.
	o, err = run(t, trainCmd(), "--resume", "--out", out, "--epochs", "2", "--quiet")
	if err != nil {
		t.Fatalf("--resume --epochs 2: %v\n%s", err, o)
	}
	for _, want := range []string{"notice: training to epoch 2; the run was started for 1 epochs", "using 21 images for training, 9 images for validation", "[epoch 2]", "removed " + stale} {
		if !strings.Contains(o, want) {
			t.Errorf("resumed output lacks %q:\n%s", want, o)
		}
	}
	if exists(stale) {
		t.Error("the stale temporary file survived")
	}
	// Images deleted since: refused, naming the change.
	entries, _ := os.ReadDir(filepath.Join(photos, "disc"))
	for _, e := range entries[:4] {
		os.Remove(filepath.Join(photos, "disc", e.Name()))
	}
	if _, err := run(t, trainCmd(), "--resume", "--out", out, "--epochs", "3", "--quiet"); err == nil || !strings.Contains(err.Error(), "data changed since the run started") || !strings.Contains(err.Error(), "disc") {
		t.Errorf("resuming on changed data: %v", err)
	}
	// --overwrite starts afresh.
	if o, err := run(t, trainCmd(), trainArgs(photos, out, "--overwrite")...); err != nil || !strings.Contains(o, "[epoch 1]") {
		t.Errorf("--overwrite: %v\n%s", err, o)
	}
}

// TestSplitRefusesLinkedDestination: a --dst that is a symbolic link to a
// class folder of --src used to receive the copies, adding them to that
// class; now it is refused and the class folder is untouched.
func TestSplitRefusesLinkedDestination(t *testing.T) {
	photos := shapesFolder(t, 4)
	dst := filepath.Join(t.TempDir(), "flower_data")
	if err := os.Symlink(filepath.Join(photos, "disc"), dst); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(filepath.Join(photos, "disc"))
	_, err := run(t, splitCmd(), "--src", photos, "--dst", dst, "--overwrite")
	if err == nil || !strings.Contains(err.Error(), "is inside the source") {
		t.Errorf("a destination linking into the source: %v", err)
	}
	if after, _ := os.ReadDir(filepath.Join(photos, "disc")); len(after) != len(before) {
		t.Errorf("the class folder went from %d to %d entries", len(before), len(after))
	}
}
