package train

import (
	"math"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/tensor"
)

// inTopK reports whether label is among the k largest entries of row, as
// torch.topk(row, k) with ties broken towards the lower index (an entry
// ranks above label's when it is larger, or equal at a lower index).
func inTopK(row []float32, label, k int) bool {
	above := 0
	v := row[label]
	for i, x := range row {
		if x > v || (x == v && i < label) {
			above++
		}
	}
	return above < k
}

// F1 returns, per class, the harmonic mean of its precision and recall (0
// when both are 0), as scikit-learn's f1_score(average=None,
// zero_division=0).
func (r *EvalResult) F1() []float64 {
	p, rc := r.Precision(), r.Recall()
	out := make([]float64, len(p))
	for i := range p {
		if p[i]+rc[i] > 0 {
			out[i] = 2 * p[i] * rc[i] / (p[i] + rc[i])
		}
	}
	return out
}

// Support returns, per class, the number of its images.
func (r *EvalResult) Support() []int {
	out := make([]int, len(r.Confusion))
	for t, row := range r.Confusion {
		for _, v := range row {
			out[t] += v
		}
	}
	return out
}

// flipAveraged runs m on the horizontal mirror of the batch x (plain [B,
// C, H, W]) and returns, per image, the mean of the softmax probabilities
// of logits (the outputs for x, read before the second forward pass
// overwrites them) and of the mirror's outputs, with the mean over the
// images of the cross entropy of these probabilities with the labels
// smoothed by eps: (1-eps)*(-log p_label) + eps*mean_j(-log p_j). Call
// it inside backend.Do.
func flipAveraged(m *resnet.Model, x *tensor.Tensor, logits []float32, labels []int, k int, eps float64) ([]float32, float64) {
	w := x.Shape()[3]
	flipped := tensor.New(x.Shape()...)
	src, dst := x.Values(), flipped.Mutable()
	for row := 0; row < len(src)/w; row++ {
		for c := range w {
			dst[row*w+c] = src[row*w+w-1-c]
		}
	}
	p := softmaxRows(logits, k)
	q := softmaxRows(backend.Values(m.Backend(), m.Forward(flipped)), k)
	out := make([]float32, len(p))
	var total float64
	for i, l := range labels {
		if l < 0 || l >= k {
			continue // refused by the caller
		}
		var all float64
		for j := i * k; j < (i+1)*k; j++ {
			p[j] = (p[j] + q[j]) / 2
			out[j] = float32(p[j])
			all -= math.Log(p[j])
		}
		total += (1-eps)*-math.Log(p[i*k+l]) + eps*all/float64(k)
	}
	return out, total / float64(len(labels))
}

// softmaxRows returns the softmax of every row of k values, in float64.
func softmaxRows(v []float32, k int) []float64 {
	out := make([]float64, len(v))
	for r := 0; r < len(v); r += k {
		row := v[r : r+k]
		mx := math.Inf(-1)
		for _, x := range row {
			mx = math.Max(mx, float64(x))
		}
		var sum float64
		for _, x := range row {
			sum += math.Exp(float64(x) - mx)
		}
		for j, x := range row {
			out[r+j] = math.Exp(float64(x)-mx) / sum
		}
	}
	return out
}
