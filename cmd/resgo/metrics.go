package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/resgo/resgo/internal/atomicfile"
	"github.com/resgo/resgo/train"
)

// classMetrics is one class's line of the metrics file.
type classMetrics struct {
	Name      string  `json:"name"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"`
}

// metricsFile is what eval --metrics-json writes.
type metricsFile struct {
	Checkpoint string         `json:"checkpoint"`
	Data       string         `json:"data"`
	TTA        bool           `json:"tta"`
	Images     int            `json:"images"`
	Top1       float64        `json:"top1"`
	Top5       float64        `json:"top5"`
	Loss       float64        `json:"loss"`
	MacroF1    float64        `json:"macro_f1"`
	Classes    []classMetrics `json:"classes"`
	// Confusion[t][p] counts the images of true class t predicted as p.
	Confusion [][]int `json:"confusion"`
}

// writeMetrics writes the evaluation's metrics as JSON, atomically.
func writeMetrics(path, ckpt, data string, tta bool, classes []string, res *train.EvalResult) error {
	m := metricsFile{Checkpoint: ckpt, Data: data, TTA: tta, Images: res.Images, Top1: res.Accuracy, Top5: res.Top5,
		Loss: res.Loss, Confusion: res.Confusion}
	prec, rec, f1, sup := res.Precision(), res.Recall(), res.F1(), res.Support()
	for i, c := range classes {
		m.Classes = append(m.Classes, classMetrics{Name: c, Precision: prec[i], Recall: rec[i], F1: f1[i], Support: sup[i]})
		m.MacroF1 += f1[i] / float64(len(classes))
	}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("--metrics-json %s: %w", path, err)
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		if _, err := w.Write(append(raw, '\n')); err != nil {
			return fmt.Errorf("--metrics-json %s: %w", path, err)
		}
		return nil
	})
}
