package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// BalancedWeights returns per-sample weights that draw every class equally
// often: 1 / (the number of samples of the sample's class), the weights
// of the usual class-balanced WeightedRandomSampler.
func BalancedWeights(ds Dataset) []float64 {
	counts := LabelCounts(ds)
	w := make([]float64, ds.Len())
	for i := range w {
		w[i] = 1 / float64(counts[ds.Label(i)])
	}
	return w
}

// checkSampleWeights checks Options.SampleWeights: nil, or one finite
// weight of 0 or more per sample with a positive sum.
func checkSampleWeights(w []float64, n int) error {
	if w == nil {
		return nil
	}
	if len(w) != n {
		return fmt.Errorf("data.NewLoader: %d sample weights for %d samples", len(w), n)
	}
	sum := 0.0
	for i, v := range w {
		if !(v >= 0) || math.IsInf(v, 1) {
			return fmt.Errorf("data.NewLoader: sample weight %d is %v, want a finite weight of 0 or more", i, v)
		}
		sum += v
	}
	if !(sum > 0) || math.IsInf(sum, 1) {
		return fmt.Errorf("data.NewLoader: the sample weights sum to %v", sum)
	}
	return nil
}

// weightedOrder draws len(w) sample indices with replacement, index i with
// probability w[i] / sum(w) (inverse transform sampling on the cumulative
// weights).
func weightedOrder(w []float64, src *rand.PCG) []int {
	cum := make([]float64, len(w))
	sum := 0.0
	for i, v := range w {
		sum += v
		cum[i] = sum
	}
	rng := rand.New(src)
	out := make([]int, len(w))
	for k := range out {
		u := rng.Float64() * sum
		i := sort.SearchFloat64s(cum, u)
		// SearchFloat64s finds the first cum >= u; a u on a boundary
		// belongs to the next sample with weight (cum strictly above u).
		for i < len(cum)-1 && cum[i] <= u {
			i++
		}
		out[k] = i
	}
	return out
}
