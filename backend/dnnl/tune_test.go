//go:build cgo

package dnnl

import (
	"fmt"
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/backend/backendtest"
	"github.com/resgo/resgo/backend/ref"
	"github.com/resgo/resgo/tensor"
)

// winogradCases are ResNet's 3x3 stride-1 convolutions at small batch:
// the shapes oneDNN has Winograd for.
var winogradCases = []struct {
	x, w []int
	bias bool
}{
	{[]int{1, 64, 56, 56}, []int{64, 64, 3, 3}, false},
	{[]int{2, 128, 28, 28}, []int{128, 128, 3, 3}, true},
	{[]int{1, 512, 7, 7}, []int{512, 512, 3, 3}, false},
}

// TestConvAlgo runs the inference convolutions of winogradCases under each
// RESGO_CONV mode, with and without a fused residual add and ReLU, and
// checks them against the ref backend. Where oneDNN has Winograd (AVX-512),
// "winograd" must use it and "auto" must time both forms and keep the
// faster (its time including the reorders to and from its layouts);
// elsewhere both must stay direct and record nothing. It prints
// Winograd's error, which RESGO_CONV's documentation quotes.
func TestConvAlgo(t *testing.T) {
	r := ref.New(2)
	p := backend.ConvParams{Stride: [2]int{1, 1}, Pad: [2]int{1, 1}, Dilation: [2]int{1, 1}, Groups: 1}
	for _, mode := range []string{ConvDirect, ConvWinograd, ConvAuto} {
		t.Run(mode, func(t *testing.T) {
			t.Setenv("RESGO_CONV", mode)
			b, err := New(2)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			worst := 0.0
			for i, c := range winogradCases {
				x := backendtest.Rand(uint64(10+i), c.x...)
				w := backendtest.Rand(uint64(20+i), c.w...)
				var bias *tensor.Tensor
				if c.bias {
					bias = backendtest.Rand(uint64(30+i), c.w[0])
				}
				ys, err := backend.CheckConv(c.x, c.w, p)
				if err != nil {
					t.Fatal(err)
				}
				add := backendtest.Rand(uint64(40+i), ys...)
				for _, fused := range []bool{false, true} {
					ep := backend.Epilogue{Inference: true}
					if fused {
						ep.Add, ep.ReLU = add, true
					}
					var want tensor.Tensor
					r.Conv2D(&want, x, w, bias, p, backend.Epilogue{Add: ep.Add, ReLU: ep.ReLU})
					xb := blocked(t, b, x)
					if fused {
						ep.Add = blocked(t, b, add)
					}
					var y tensor.Tensor
					b.Conv2D(&y, xb, w, bias, p, ep)
					e := backendtest.RelErr(backendtest.Plain(b, &y), want.Values())
					worst = max(worst, e)
					if e > tol {
						t.Errorf("%v * %v fused=%v: relative error %.3g > %.1g", c.x, c.w, fused, e, tol)
					}
				}
			}
			choices := b.ConvChoices()
			t.Logf("RESGO_CONV=%s on %s: worst relative error %.2g; choices %s", mode, ISA(), worst, fmt.Sprint(choices))
			switch {
			case mode == ConvDirect || !hasWinograd():
				if len(choices) != 0 {
					t.Errorf("%d choices recorded, want none", len(choices))
				}
			default:
				// One per shape and epilogue: the fused and the plain forms
				// are different primitives.
				if len(choices) != 2*len(winogradCases) {
					t.Fatalf("%d choices recorded, want %d", len(choices), 2*len(winogradCases))
				}
				for _, c := range choices {
					timed := c.Direct > 0 && c.Winograd > 0
					if mode == ConvAuto && (!timed || (c.Chose == ConvWinograd) != (c.Winograd < c.Direct)) {
						t.Errorf("auto: %+v: not timed, or not the faster kept", c)
					}
					if mode == ConvWinograd && (timed || c.Chose != ConvWinograd) {
						t.Errorf("winograd: %+v", c)
					}
				}
			}
		})
	}
}
