package trainview

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/resgo/resgo/train"
)

// run feeds hooks an epoch of 20 training batches (from batch `from`, as
// after a resume) and 5 validation batches.
func run(t *testing.T, h train.Hooks, from int) {
	t.Helper()
	p := train.Progress{Phase: train.Training, Epoch: 1, Epochs: 3, Step: from, Steps: 20}
	h.PassStart(p)
	for p.Step < p.Steps {
		p.Step++
		p.Loss, p.Accuracy, p.ImagesPerSec = 0.5, 0.25, 10
		h.Batch(p)
	}
	h.PassEnd(p)
	v := train.Progress{Phase: train.Validation, Epoch: 1, Epochs: 3, Steps: 5}
	h.PassStart(v)
	for v.Step < v.Steps {
		v.Step++
		h.Batch(v)
	}
	h.PassEnd(v)
	rec := train.EpochStats{Epoch: 1, LR: 0.1, TrainLoss: 0.5, TrainAcc: 0.25, ValLoss: 0.6, ValAcc: 0.75, Seconds: 2, ImagesPerSec: 10}
	if err := h.Epoch(rec, []train.EpochStats{rec}); err != nil {
		t.Fatal(err)
	}
}

func TestHooksLines(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	run(t, Hooks(&out, false, dir), 0)
	var want []string
	for step := 2; step < 20; step += 2 { // every tenth but the last
		want = append(want, "train epoch[1/3] "+strconv.Itoa(step)+"/20 loss:0.500 acc:0.250 10.0 img/s")
	}
	want = append(want, "train epoch[1/3] done loss:0.500 acc:0.250 10.0 img/s")
	for step := 1; step < 5; step++ {
		want = append(want, "valid epoch[1/3] "+strconv.Itoa(step)+"/5 ")
	}
	want = append(want, "[epoch 1] train_loss: 0.500  val_accuracy: 0.750  (10.0 images/s, 2 s)")
	if got := strings.Join(want, "\n") + "\n"; out.String() != got {
		t.Errorf("output\n%s\nwant\n%s", out.String(), got)
	}
	if st, err := os.Stat(filepath.Join(dir, CurvesFile)); err != nil || st.Size() == 0 {
		t.Errorf("curves: %v", err)
	}

	// A resumed epoch continues from its tenth; quiet keeps the epoch line.
	out.Reset()
	run(t, Hooks(&out, false, dir), 10)
	if got := out.String(); strings.Contains(got, " 10/20 ") || !strings.HasPrefix(got, "train epoch[1/3] 12/20 ") {
		t.Errorf("resumed output\n%s", got)
	}
	out.Reset()
	run(t, Hooks(&out, true, dir), 0)
	if got := out.String(); got != "[epoch 1] train_loss: 0.500  val_accuracy: 0.750  (10.0 images/s, 2 s)\n" {
		t.Errorf("quiet output\n%s", got)
	}
}

// TestNoValidationSet: without validation data the epoch line says there
// is none instead of an accuracy of 0.000, and the curves have no
// validation points.
func TestNoValidationSet(t *testing.T) {
	rec := train.EpochStats{Epoch: 2, LR: 0.1, TrainLoss: 0.5, TrainAcc: 0.25, Seconds: 2, ImagesPerSec: 10, NoVal: true}
	line := EpochLine(rec)
	if line != "[epoch 2] train_loss: 0.500  val_accuracy: none (no validation set)  (10.0 images/s, 2 s)" {
		t.Errorf("epoch line %q", line)
	}
	rec.NoVal, rec.ValAcc = false, 0
	if line := EpochLine(rec); !strings.Contains(line, "val_accuracy: 0.000") {
		t.Errorf("with validation: %q", line)
	}
	dir := t.TempDir()
	var out bytes.Buffer
	h := Hooks(&out, true, dir)
	first := train.EpochStats{Epoch: 1, TrainLoss: 0.7, TrainAcc: 0.2, NoVal: true}
	second := train.EpochStats{Epoch: 2, TrainLoss: 0.5, TrainAcc: 0.3, NoVal: true}
	if err := h.Epoch(second, []train.EpochStats{first, second}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "0.000") || !strings.Contains(out.String(), "none (no validation set)") {
		t.Errorf("output %q", out.String())
	}
	if st, err := os.Stat(filepath.Join(dir, CurvesFile)); err != nil || st.Size() == 0 {
		t.Errorf("curves: %v", err)
	}
}

// interrupted feeds hooks a training pass of 20 batches stopped after
// `stop`, as Run does when its context is cancelled.
func interrupted(h train.Hooks, stop int) {
	p := train.Progress{Phase: train.Training, Epoch: 2, Epochs: 3, Steps: 20}
	h.PassStart(p)
	for p.Step < stop {
		p.Step++
		p.Loss, p.Accuracy, p.ImagesPerSec = 0.5, 0.25, 10
		h.Batch(p)
	}
	h.PassEnd(p)
}

// TestInterruptedPass: a pass stopped before its end is shown where it
// stopped, never as done, as a line or as a progress bar; a finished
// pass's bar is full.
func TestInterruptedPass(t *testing.T) {
	var out bytes.Buffer
	interrupted(Hooks(&out, false, t.TempDir()), 7)
	if got, want := out.String(), "train epoch[2/3] 2/20 loss:0.500 acc:0.250 10.0 img/s\n"+
		"train epoch[2/3] 4/20 loss:0.500 acc:0.250 10.0 img/s\n"+
		"train epoch[2/3] 6/20 loss:0.500 acc:0.250 10.0 img/s\n"+
		"train epoch[2/3] interrupted at 7/20 loss:0.500 acc:0.250 10.0 img/s\n"; got != want {
		t.Errorf("lines:\n%s\nwant\n%s", got, want)
	}
	out.Reset()
	interrupted(Hooks(&out, false, t.TempDir()), 0)
	if got := out.String(); got != "train epoch[2/3] interrupted at 0/20\n" {
		t.Errorf("interrupted before the first batch: %q", got)
	}

	// Progress bars, as on a terminal.
	bars := func(stop int) string {
		var out bytes.Buffer
		v := &view{w: &out, bars: true}
		interrupted(train.Hooks{PassStart: v.passStart, Batch: v.batch, PassEnd: v.passEnd}, stop)
		return out.String()
	}
	if got := bars(7); strings.Contains(got, "100%") || strings.Contains(got, "20/20") || !strings.Contains(got, "interrupted at 7/20") ||
		!strings.Contains(got, "(7/20") || !strings.HasSuffix(got, "\n") {
		t.Errorf("interrupted bar: %q", got)
	}
	if got := bars(20); !strings.Contains(got, "100%") || !strings.Contains(got, "(20/20") || strings.Contains(got, "interrupted") {
		t.Errorf("finished bar: %q", got)
	}
}
