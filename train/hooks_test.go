package train_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resgo/resgo/train"
)

// recorder checks, as a training goes, that Run calls its hooks in order
// and with sane values, and keeps what they reported.
type recorder struct {
	t      *testing.T
	out    string           // the run's output folder
	open   bool             // a pass is under way
	last   train.Progress   // the last progress reported
	starts []train.Progress // every PassStart
	steps  map[train.Phase]int
	epochs []train.EpochStats
}

func newRecorder(t *testing.T, out string) *recorder {
	return &recorder{t: t, out: out, steps: map[train.Phase]int{}}
}

func (r *recorder) hooks() train.Hooks {
	t := r.t
	return train.Hooks{
		PassStart: func(p train.Progress) {
			if r.open {
				t.Errorf("pass %+v started while %+v is under way", p, r.last)
			}
			// Training then validation, epoch by epoch.
			if len(r.starts) > 0 {
				prev := r.starts[len(r.starts)-1]
				ok := prev.Phase == train.Training && p.Phase == train.Validation && p.Epoch == prev.Epoch ||
					prev.Phase == train.Validation && p.Phase == train.Training && p.Epoch == prev.Epoch+1
				if !ok {
					t.Errorf("pass %+v after %+v", p, prev)
				}
			}
			if p.Epoch < 1 || p.Epoch > p.Epochs || p.Steps < 1 || p.Step < 0 || p.Step > p.Steps {
				t.Errorf("pass start %+v", p)
			}
			r.open, r.last = true, p
			r.starts = append(r.starts, p)
		},
		Batch: func(p train.Progress) {
			prev := r.last
			if !r.open || p.Phase != prev.Phase || p.Epoch != prev.Epoch || p.Epochs != prev.Epochs ||
				p.Steps != prev.Steps || p.Step != prev.Step+1 || p.Step > p.Steps {
				t.Errorf("batch %+v after %+v", p, prev)
			}
			switch p.Phase {
			case train.Training:
				if !(p.Loss > 0) || math.IsInf(p.Loss, 0) || p.Accuracy < 0 || p.Accuracy > 1 || !(p.ImagesPerSec > 0) {
					t.Errorf("training batch %+v", p)
				}
				// The epoch's mean loss starts as its first batch's.
				if !(p.BatchLoss > 0) || math.IsInf(p.BatchLoss, 0) || p.Step == 1 && math.Abs(p.BatchLoss-p.Loss) > 1e-9*p.Loss {
					t.Errorf("training batch %+v: batch loss %v", p, p.BatchLoss)
				}
			case train.Validation:
				if p.Loss != 0 || p.Accuracy != 0 || p.ImagesPerSec != 0 || p.BatchLoss != 0 {
					t.Errorf("validation batch %+v reports training figures", p)
				}
			}
			r.last = p
			r.steps[p.Phase]++
		},
		PassEnd: func(p train.Progress) {
			if !r.open || p != r.last {
				t.Errorf("pass end %+v, last progress %+v", p, r.last)
			}
			r.open = false
		},
		Epoch: func(rec train.EpochStats, hist []train.EpochStats) error {
			if r.open || r.last.Phase != train.Validation || rec.Epoch != r.last.Epoch {
				t.Errorf("epoch %d ended after %+v", rec.Epoch, r.last)
			}
			if len(hist) != rec.Epoch || hist[len(hist)-1] != rec {
				t.Errorf("epoch %+v with a history of %d epochs", rec, len(hist))
			}
			if !(rec.TrainLoss > 0) || rec.ValAcc < 0 || rec.ValAcc > 1 || !(rec.Seconds > 0) || !(rec.ImagesPerSec > 0) || !(rec.LR > 0) {
				t.Errorf("epoch record %+v", rec)
			}
			// The files are written when the hook runs.
			csv, err := os.ReadFile(filepath.Join(r.out, train.HistoryFile))
			if err != nil || strings.Count(string(csv), "\n") != rec.Epoch+1 {
				t.Errorf("epoch %d: history.csv: %v\n%s", rec.Epoch, err, csv)
			}
			if _, err := os.Stat(filepath.Join(r.out, train.LastFile)); err != nil {
				t.Errorf("epoch %d: %v", rec.Epoch, err)
			}
			r.epochs = append(r.epochs, rec)
			return nil
		},
	}
}
