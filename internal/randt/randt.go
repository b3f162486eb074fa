// Package randt makes seeded random tensors and measures how far computed
// values are from expected ones: the inputs and the yardstick of resgo's
// numerical checks.
package randt

import (
	"math"
	"math/rand/v2"

	"github.com/resgo/resgo/tensor"
)

// Uniform returns a Plain tensor of the given shape with values uniform in
// [-1, 1), from a deterministic seed.
func Uniform(seed uint64, shape ...int) *tensor.Tensor {
	return fill(rand.New(rand.NewPCG(seed, 0x5eed)), -1, 1, shape)
}

// Range returns a Plain tensor of the given shape with values uniform in
// [lo, hi), from a deterministic seed. Its stream differs from Uniform's:
// Range(s, -1, 1, shape...) is not Uniform(s, shape...).
func Range(seed uint64, lo, hi float32, shape ...int) *tensor.Tensor {
	return fill(rand.New(rand.NewPCG(seed, 0xbee)), lo, hi, shape)
}

// fill returns a new Plain tensor with values lo + u*(hi-lo), u drawn from
// r uniformly in [0, 1).
func fill(r *rand.Rand, lo, hi float32, shape []int) *tensor.Tensor {
	t := tensor.New(shape...)
	d := t.Mutable()
	for i := range d {
		d[i] = lo + r.Float32()*(hi-lo)
	}
	return t
}

// RelErr returns max|got-want| / max(max|want|, 1e-6): the error relative
// to the largest magnitude of the expected values. It is +Inf when the
// lengths differ or a difference is NaN.
func RelErr(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var maxDiff, maxWant float64
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		maxDiff = max(maxDiff, d)
		maxWant = max(maxWant, math.Abs(float64(want[i])))
	}
	return maxDiff / max(maxWant, 1e-6)
}
