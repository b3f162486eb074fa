// Package backendtest holds the table of operation shapes that every backend
// is tested on, and helpers to make inputs and compare results.
//
// backend/ref checks each backward operation against finite differences over
// this table; backend/dnnl checks every operation against backend/ref over
// the same table.
package backendtest

import (
	"fmt"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/internal/randt"
	"github.com/resgo/resgo/tensor"
)

// ConvCase is one convolution shape.
type ConvCase struct {
	Name       string
	N, C, H, W int // input
	O, K       int // output channels, square kernel size
	P          backend.ConvParams
	Bias       bool
}

// ConvCases covers stride 2, padding, 1x1, 3x3, 7x7, groups > 1, dilation,
// batch 1, odd spatial sizes, and channel counts that are not multiples of 16.
var ConvCases = []ConvCase{
	{"3x3 s1 p1", 2, 16, 8, 8, 16, 3, cp(1, 1, 1, 1), false},
	{"3x3 s2 p1 odd", 2, 8, 9, 7, 12, 3, cp(2, 1, 1, 1), false},
	{"1x1 s1", 3, 32, 5, 5, 64, 1, cp(1, 0, 1, 1), false},
	{"1x1 s2 downsample", 2, 24, 7, 7, 48, 1, cp(2, 0, 1, 1), false},
	{"7x7 s2 p3 stem", 1, 3, 15, 13, 16, 7, cp(2, 3, 1, 1), false},
	{"3x3 groups 4", 2, 16, 6, 6, 32, 3, cp(1, 1, 1, 4), false},
	{"3x3 groups 32 s2", 1, 64, 7, 7, 64, 3, cp(2, 1, 1, 32), false},
	{"3x3 dilation 2", 2, 8, 9, 9, 8, 3, cp(1, 2, 2, 1), false},
	{"3x3 bias batch1", 1, 5, 6, 5, 7, 3, cp(1, 1, 1, 1), true},
	{"1x1 bias 17ch", 2, 17, 3, 3, 33, 1, cp(1, 0, 1, 1), true},
	{"3x3 no pad", 2, 4, 6, 6, 6, 3, cp(1, 0, 1, 1), false},
	{"3x3 1ch small image", 4, 1, 7, 7, 16, 3, cp(1, 1, 1, 1), false},
}

func cp(stride, pad, dil, groups int) backend.ConvParams {
	return backend.ConvParams{Stride: [2]int{stride, stride}, Pad: [2]int{pad, pad}, Dilation: [2]int{dil, dil}, Groups: groups}
}

// XShape returns the input shape.
func (c ConvCase) XShape() []int { return []int{c.N, c.C, c.H, c.W} }

// WShape returns the weight shape.
func (c ConvCase) WShape() []int { return []int{c.O, c.C / c.P.Norm().Groups, c.K, c.K} }

// ActCase is an activation shape for BN, ReLU, pooling and Add.
type ActCase struct {
	Name       string
	N, C, H, W int
}

// ActCases covers batch 1, odd sizes and channels not a multiple of 16.
var ActCases = []ActCase{
	{"16ch", 2, 16, 6, 6},
	{"odd 5ch", 3, 5, 7, 5},
	{"batch1 32ch", 1, 32, 4, 4},
	{"33ch", 2, 33, 3, 5},
	{"1x1 spatial", 4, 8, 1, 1},
}

// Shape returns the activation shape.
func (c ActCase) Shape() []int { return []int{c.N, c.C, c.H, c.W} }

// PoolCases are max pooling windows, tried on every ActCase they fit.
var PoolCases = []backend.PoolParams{
	{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}, Pad: [2]int{1, 1}}, // the ResNet stem
	{Kernel: [2]int{2, 2}, Stride: [2]int{2, 2}},
	{Kernel: [2]int{3, 2}, Stride: [2]int{1, 2}, Pad: [2]int{1, 0}},
}

// LinearCase is a fully connected shape.
type LinearCase struct {
	N, K, M int
	Bias    bool
}

// LinearCases include batch 1 and sizes not a multiple of 16.
var LinearCases = []LinearCase{{4, 16, 10, true}, {1, 7, 3, true}, {3, 33, 5, false}}

// Rand returns a Plain tensor of the given shape with values uniform in
// [-1, 1), from a deterministic seed.
func Rand(seed uint64, shape ...int) *tensor.Tensor { return randt.Uniform(seed, shape...) }

// RandPositive returns a Plain tensor with values uniform in [lo, hi).
func RandPositive(seed uint64, lo, hi float32, shape ...int) *tensor.Tensor {
	return randt.Range(seed, lo, hi, shape...)
}

// RelErr returns max|got-want| / max(max|want|, 1e-6): the error relative
// to the largest magnitude of the expected values. This is the measure of
// "within 1e-4 relative error" in the backend tests.
func RelErr(got, want []float32) float64 { return randt.RelErr(got, want) }

// Plain returns t's values in row-major order, converting with b if needed.
func Plain(b backend.Backend, t *tensor.Tensor) []float32 { return backend.Values(b, t) }

// Compare returns an error if got (written by backend b) differs from want
// by more than tol in RelErr, or if the shapes differ.
func Compare(b backend.Backend, what string, got, want *tensor.Tensor, tol float64) error {
	if !tensor.SameShape(got.Shape(), want.Shape()) {
		return fmt.Errorf("%s: shape %v, want %v", what, got.Shape(), want.Shape())
	}
	if e := RelErr(Plain(b, got), want.Values()); e > tol {
		return fmt.Errorf("%s: relative error %.3g > %.1g", what, e, tol)
	}
	return nil
}
