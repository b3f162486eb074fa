package train

import (
	"encoding/csv"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/resgo/resgo/internal/atomicfile"
)

// EpochStats is one row of the history.
type EpochStats struct {
	Epoch        int     `json:"epoch"`
	LR           float64 `json:"lr"`
	TrainLoss    float64 `json:"train_loss"`
	TrainAcc     float64 `json:"train_acc"`
	ValLoss      float64 `json:"val_loss"`
	ValAcc       float64 `json:"val_acc"`
	Seconds      float64 `json:"seconds"`
	ImagesPerSec float64 `json:"images_per_sec"`
	// NoVal says that the run has no validation data: ValLoss and ValAcc
	// are then meaningless (zero), and history.csv leaves them empty.
	NoVal bool `json:"no_val,omitempty"`
	// EMAValLoss and EMAValAcc are the validation loss and accuracy of
	// the model EMA (Recipe.ModelEMA), when HasEMA; history.csv then has
	// the columns ema_val_loss and ema_val_acc.
	EMAValLoss float64 `json:"ema_val_loss,omitempty"`
	EMAValAcc  float64 `json:"ema_val_acc,omitempty"`
	HasEMA     bool    `json:"has_ema,omitempty"`
}

// historyHeader is the first row of history.csv.
var historyHeader = []string{"epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "images_per_sec"}

// writeHistory writes the history so far into the output folder.
func (t *Trainer) writeHistory() error {
	if !t.root() {
		return nil // rank 0 writes the output folder
	}
	return WriteHistory(filepath.Join(t.cfg.Out, HistoryFile), t.state.History)
}

// WriteHistory writes the per-epoch statistics as CSV, atomically.
func WriteHistory(path string, hist []EpochStats) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		if err := writeCSV(w, hist); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		return nil
	})
}

// writeCSV writes the history as CSV: a header, then one row per epoch
// (the validation columns empty without validation data).
func writeCSV(w io.Writer, hist []EpochStats) error {
	cw := csv.NewWriter(w)
	ema := slices.ContainsFunc(hist, func(h EpochStats) bool { return h.HasEMA })
	header := historyHeader
	if ema {
		header = append(slices.Clone(header), "ema_val_loss", "ema_val_acc")
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, h := range hist {
		vl, va := f(h.ValLoss), f(h.ValAcc)
		if h.NoVal {
			vl, va = "", ""
		}
		row := []string{strconv.Itoa(h.Epoch), f(h.LR), f(h.TrainLoss), f(h.TrainAcc), vl, va, f(h.Seconds), f(h.ImagesPerSec)}
		if ema {
			el, ea := "", ""
			if h.HasEMA {
				el, ea = f(h.EMAValLoss), f(h.EMAValAcc)
			}
			row = append(row, el, ea)
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
