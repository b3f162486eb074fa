package train

import (
	"context"
	"fmt"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
)

// EvalResult is a model's performance on a dataset.
type EvalResult struct {
	Loss     float64 // mean cross-entropy
	Accuracy float64
	// Top5 is the fraction of images whose label is among the 5 largest
	// outputs (all of them with fewer than 5 classes), as timm's
	// accuracy(output, target, topk=(1, 5)).
	Top5   float64
	Images int
	// Confusion[t][p] counts the images of true class t predicted as p.
	Confusion [][]int
}

// Precision returns, per class, the fraction of the images predicted as
// that class that belong to it (0 when none is predicted as it).
func (r *EvalResult) Precision() []float64 {
	out := make([]float64, len(r.Confusion))
	for p := range r.Confusion {
		col := 0
		for t := range r.Confusion {
			col += r.Confusion[t][p]
		}
		if col > 0 {
			out[p] = float64(r.Confusion[p][p]) / float64(col)
		}
	}
	return out
}

// Recall returns, per class, the fraction of its images predicted as it.
func (r *EvalResult) Recall() []float64 {
	out := make([]float64, len(r.Confusion))
	for t, row := range r.Confusion {
		n := 0
		for _, v := range row {
			n += v
		}
		if n > 0 {
			out[t] = float64(row[t]) / float64(n)
		}
	}
	return out
}

// Evaluate runs m in evaluation mode over every batch of loader and returns
// the loss, the accuracy and the confusion matrix. onBatch, if not nil, is
// called after each batch with the number of batches done.
func Evaluate(ctx context.Context, m *resnet.Model, loader *data.Loader, smoothing float64, onBatch func(done int)) (*EvalResult, error) {
	return EvaluateWith(ctx, m, loader, EvalOptions{Smoothing: smoothing, OnBatch: onBatch})
}

// EvalOptions are the settings of EvaluateWith.
type EvalOptions struct {
	Smoothing float64 // label smoothing of the loss
	// FlipTTA averages the softmax probabilities of every image and of
	// its horizontal mirror (test-time augmentation); the loss is then
	// the cross entropy of the averaged probabilities.
	FlipTTA bool
	OnBatch func(done int) // called after each batch, if not nil
}

// EvaluateWith is Evaluate with options, such as test-time augmentation.
func EvaluateWith(ctx context.Context, m *resnet.Model, loader *data.Loader, opt EvalOptions) (*EvalResult, error) {
	smoothing, onBatch := opt.Smoothing, opt.OnBatch
	nn.SetTraining(m, false)
	b := m.Backend()
	k := m.Options.NumClasses
	res := &EvalResult{Confusion: make([][]int, k)}
	for i := range res.Confusion {
		res.Confusion[i] = make([]int, k)
	}
	it := loader.Epoch(0)
	defer it.Close()
	var sum float64
	top5 := 0
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		batch := it.Next()
		if batch == nil {
			break
		}
		var loss float64
		var logits []float32
		err := backend.Do(b, func() {
			y := m.Forward(batch.X)
			if opt.FlipTTA {
				logits, loss = flipAveraged(m, batch.X, backend.Values(b, y), batch.Labels, k, smoothing)
				return
			}
			loss = b.SoftmaxCrossEntropy(nil, y, batch.Labels, float32(smoothing))
			logits = backend.Values(b, y)
		})
		if err != nil {
			return nil, err
		}
		for j, l := range batch.Labels {
			if l < 0 || l >= k {
				return nil, fmt.Errorf("label %d of a %d-class model", l, k)
			}
			res.Confusion[l][argmax(logits[j*k:(j+1)*k])]++
			if inTopK(logits[j*k:(j+1)*k], l, 5) {
				top5++
			}
		}
		sum += loss * float64(len(batch.Labels))
		res.Images += len(batch.Labels)
		batch.Release()
		if onBatch != nil {
			onBatch(batch.Index + 1)
		}
	}
	correct := 0
	for i := range res.Confusion {
		correct += res.Confusion[i][i]
	}
	if res.Images > 0 {
		res.Loss, res.Accuracy = sum/float64(res.Images), float64(correct)/float64(res.Images)
		res.Top5 = float64(top5) / float64(res.Images)
	}
	return res, nil
}
