package train

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/tensor"
)

// BalancedWeights returns scikit-learn's "balanced" class weights of a
// dataset, n / (k * count_c) for each of its k classes (0 for a class
// without samples): rare classes weigh more in the loss.
func BalancedWeights(ds data.Dataset) []float64 {
	counts := data.LabelCounts(ds)
	w := make([]float64, len(counts))
	for c, n := range counts {
		if n > 0 {
			w[c] = float64(ds.Len()) / float64(len(counts)*n)
		}
	}
	return w
}

// ParseClassWeights parses --class-weights: "balanced" (nil weights, to be
// computed by BalancedWeights) or one weight per class, comma-separated.
func ParseClassWeights(s string) (balanced bool, w []float64, err error) {
	if s == "balanced" {
		return true, nil, nil
	}
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || !(v >= 0) || math.IsInf(v, 1) {
			return false, nil, fmt.Errorf("class weight %q: want a finite number of 0 or more", f)
		}
		w = append(w, v)
	}
	return false, w, nil
}

// WeightedCrossEntropy returns the loss of
// torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=eps) (mean
// reduction, PyTorch 1.13) and its gradient in dlogits:
//
//	W = sum_i w[y_i]
//	nll = sum_i w[y_i] * -log p[i, y_i] / W
//	smooth = sum_i sum_j w[j] * -log p[i, j] / W
//	loss = (1-eps)*nll + eps/C*smooth
//
// with p the softmax of each row of logits, in float64. Call it inside
// backend.Do.
func WeightedCrossEntropy(b backend.Backend, dlogits, logits *tensor.Tensor, labels []int, weights []float64, eps float32) float64 {
	// The backend's loss checks the operands and gives dlogits its
	// shape; its values are replaced below.
	b.SoftmaxCrossEntropy(dlogits, logits, labels, 0)
	x := backend.Values(b, logits)
	k := len(weights)
	e := float64(eps)
	var sumW, sumAll float64
	for _, l := range labels {
		sumW += weights[l]
	}
	for _, v := range weights {
		sumAll += v
	}
	g := dlogits.Mutable()
	var nll, smooth float64
	p := make([]float64, k)
	for i, l := range labels {
		row := x[i*k : (i+1)*k]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v))
		}
		var s float64
		for j, v := range row {
			p[j] = math.Exp(float64(v) - mx)
			s += p[j]
		}
		lse := mx + math.Log(s)
		for j := range p {
			p[j] /= s
			smooth += weights[j] * (lse - float64(row[j]))
		}
		nll += weights[l] * (lse - float64(row[l]))
		for j := range p {
			d := (1 - e) * weights[l] * p[j]
			if j == l {
				d -= (1 - e) * weights[l]
			}
			d += e / float64(k) * (sumAll*p[j] - weights[j])
			g[i*k+j] = float32(d / sumW)
		}
	}
	return ((1-e)*nll + e/float64(k)*smooth) / sumW
}
