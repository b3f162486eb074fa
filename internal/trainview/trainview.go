// Package trainview shows a training run to people: its progress (a
// progress bar per pass on a terminal, a line at every tenth of a pass
// otherwise), the tutorial's line after each epoch, and the learning
// curves, redrawn after each epoch as a PNG in the run's folder. resgo
// train and the demo give its Hooks to the training loop.
package trainview

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/schollz/progressbar/v3"

	"github.com/resgo/resgo/charts"
	"github.com/resgo/resgo/train"
)

// CurvesFile is the learning curves' PNG that Hooks draws in the run's
// folder.
const CurvesFile = "curves.png"

// Hooks returns the hooks that show a training on w and draw its learning
// curves into dir's CurvesFile after each epoch. Quiet leaves out the
// progress bars and lines, not the epoch lines.
func Hooks(w io.Writer, quiet bool, dir string) train.Hooks {
	f, ok := w.(*os.File)
	v := &view{w: w, quiet: quiet, bars: ok && isTerminal(f)}
	return train.Hooks{
		PassStart: v.passStart,
		Batch:     v.batch,
		PassEnd:   v.passEnd,
		Epoch: func(rec train.EpochStats, history []train.EpochStats) error {
			fmt.Fprintln(w, EpochLine(rec))
			return PlotHistory(filepath.Join(dir, CurvesFile), history)
		},
	}
}

// EpochLine returns the tutorial's summary line of an epoch, "[epoch N]
// train_loss: ...  val_accuracy: ..." and the speed; without validation
// data it says so in place of an accuracy.
func EpochLine(rec train.EpochStats) string {
	val := fmt.Sprintf("val_accuracy: %.3f", rec.ValAcc)
	if rec.NoVal {
		val = "val_accuracy: none (no validation set)"
	}
	return fmt.Sprintf("[epoch %d] train_loss: %.3f  %s  (%.1f images/s, %.0f s)",
		rec.Epoch, rec.TrainLoss, val, rec.ImagesPerSec, rec.Seconds)
}

// view shows the progress of one pass at a time: a progress bar on a
// terminal, plain lines (at every tenth of the pass) otherwise, nothing
// when quiet. A pass that ends before its last step was interrupted, and
// is shown so: not as done, its bar not filled.
type view struct {
	w     io.Writer
	quiet bool
	bars  bool // w is a terminal: progress bars

	bar        *progressbar.ProgressBar // nil unless on a terminal
	lines      bool                     // plain lines
	desc       string
	total      int
	lastTenth  int
	lastDetail string
}

// label names a pass's phase in the display.
func label(p train.Phase) string {
	if p == train.Validation {
		return "valid"
	}
	return "train"
}

// passStart starts the display of a pass. The progress bar library's write
// errors are not reported: the display would have nowhere to report them.
func (v *view) passStart(p train.Progress) {
	v.desc = fmt.Sprintf("%s epoch[%d/%d]", label(p.Phase), p.Epoch, p.Epochs)
	v.total, v.lastTenth, v.lastDetail = p.Steps, p.Step*10/max(p.Steps, 1), ""
	v.bar, v.lines = nil, false
	if v.quiet {
		return
	}
	if !v.bars {
		v.lines = true
		return
	}
	v.bar = progressbar.NewOptions(p.Steps,
		progressbar.OptionSetWriter(v.w),
		progressbar.OptionSetDescription(v.desc),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(v.w) }),
	)
	if p.Phase == train.Training {
		// A resumed epoch's bar starts where the epoch stopped.
		_ = v.bar.Set(p.Step)
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// batch shows that p.Step batches of the pass are done.
func (v *view) batch(p train.Progress) {
	detail := ""
	if p.Phase == train.Training {
		detail = fmt.Sprintf("loss:%.3f acc:%.3f %.1f img/s", p.Loss, p.Accuracy, p.ImagesPerSec)
	}
	v.lastDetail = detail
	switch {
	case v.bar != nil:
		v.bar.Describe(v.desc + " " + detail)
		_ = v.bar.Set(p.Step)
	case v.lines:
		if tenth := p.Step * 10 / max(v.total, 1); tenth > v.lastTenth && p.Step < v.total {
			v.lastTenth = tenth
			fmt.Fprintf(v.w, "%s %d/%d %s\n", v.desc, p.Step, v.total, detail)
		}
	}
}

// passEnd ends the display of a pass: done, or interrupted where it
// stopped (before its last step: Run's context was cancelled).
func (v *view) passEnd(p train.Progress) {
	interrupted := p.Step < p.Steps
	stopped := strings.TrimSpace(fmt.Sprintf("%s interrupted at %d/%d %s", v.desc, p.Step, p.Steps, v.lastDetail))
	switch {
	case v.bar != nil && interrupted:
		// The bar stays where the pass stopped.
		v.bar.Describe(stopped)
		_ = v.bar.Exit()
	case v.bar != nil:
		_ = v.bar.Finish()
	case v.lines && interrupted:
		fmt.Fprintln(v.w, stopped)
	case v.lines && v.lastDetail != "":
		fmt.Fprintf(v.w, "%s done %s\n", v.desc, v.lastDetail)
	}
}

// PlotHistory draws loss and accuracy per epoch, training and validation
// (only the epochs that had validation data), into a PNG file.
func PlotHistory(path string, hist []train.EpochStats) error {
	var ep, vep, tl, vl, ta, va []float64
	for _, h := range hist {
		ep = append(ep, float64(h.Epoch))
		tl, ta = append(tl, h.TrainLoss), append(ta, h.TrainAcc)
		if !h.NoVal {
			vep = append(vep, float64(h.Epoch))
			vl, va = append(vl, h.ValLoss), append(va, h.ValAcc)
		}
	}
	return charts.Curves(path, "epoch", []charts.Panel{
		{Title: "Loss", YLabel: "cross-entropy", Series: []charts.Series{{Name: "train", X: ep, Y: tl}, {Name: "validation", X: vep, Y: vl}}},
		{Title: "Accuracy", YLabel: "accuracy", Series: []charts.Series{{Name: "train", X: ep, Y: ta}, {Name: "validation", X: vep, Y: va}}, LegendBottom: true},
	})
}
