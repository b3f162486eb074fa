//go:build cgo

package dnnl

/*
#cgo CFLAGS: -fopenmp
#include "rg.h"
#include "wino.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/tensor"
)

// winoImpl names resgo's own Winograd convolution (wino.c) where oneDNN's
// names go: in ConvChoice.WinImpl and prim.impl.
const winoImpl = "resgo_wino_4x4_3x3:avx2"

// winoConv is a convolution run by wino.c rather than oneDNN: the
// Winograd F(4x4, 3x3) form, for AVX2 machines, where oneDNN 2.6 has no
// Winograd. It takes and writes the direct AVX2 kernels' layout (nChw8c).
// A backward pass to the data is such a convolution too, of dy with the
// weights turned by 180 degrees (flip), input and output channels swapped.
type winoConv struct {
	n, ic, oc, h, w, pad int // of the convolution wino.c computes
	bias, sum, relu      bool
	flip                 bool // the weights are [ic][oc][3][3], turned
	grad                 bool // the backward pass to the weights instead
}

// winoForward returns the wino.c form of a forward convolution of p on x
// of shape xs with weights of shape ws.
func winoForward(xs, ws []int, p backend.ConvParams, bias bool, e backend.Epilogue) *winoConv {
	return &winoConv{n: xs[0], ic: xs[1], oc: ws[0], h: xs[2], w: xs[3], pad: p.Pad[0], bias: bias, sum: e.Add != nil, relu: e.ReLU}
}

// winoBackwardData returns the wino.c form of the backward pass to the
// data of a convolution of p with weights of shape ws and output of shape
// ys: dx is dy convolved with the turned weights, padded by 2 - pad.
func winoBackwardData(ws, ys []int, p backend.ConvParams) *winoConv {
	return &winoConv{n: ys[0], ic: ws[0], oc: ws[1], h: ys[2], w: ys[3], pad: 2 - p.Pad[0], flip: true}
}

// winoBackwardWeights returns the wino.c form of the backward pass to the
// weights (without bias) of a convolution of p on x of shape xs with
// weights of shape ws.
func winoBackwardWeights(xs, ws []int, p backend.ConvParams) *winoConv {
	return &winoConv{n: xs[0], ic: xs[1], oc: ws[0], h: xs[2], w: xs[3], pad: p.Pad[0], grad: true}
}

// ownWinograd reports whether wino.c can compute c, a convolution of p
// with weights of shape ws, where a direct primitive takes its input in
// layout in and writes its output in layout out: RESGO_CONV asks for
// Winograd, wino.c runs here (ownWinogradCPU), the convolution is 3x3,
// stride 1, with the same padding (at most 2) on every side, the channels
// come in blocks (input 8, output 16; the other way round for the pass to
// the weights), and the direct primitive keeps both in nChw8c.
func (s *state) ownWinograd(ws []int, p backend.ConvParams, c *winoConv, in, out *memDesc) bool {
	if s.convAlgo == ConvDirect || !winogradShape(ws, p) || !ownWinogradCPU() {
		return false
	}
	inBlock, outBlock := 8, 16
	if c.grad {
		inBlock, outBlock = 16, 8
	}
	if p.Pad[0] != p.Pad[1] || p.Pad[0] > 2 || c.ic%inBlock != 0 || c.oc%outBlock != 0 {
		return false
	}
	oh, ow := c.h+2*c.pad-2, c.w+2*c.pad-2
	return in == s.tagged([]int{c.n, c.ic, c.h, c.w}, C.dnnl_aBcd8b) && out == s.tagged([]int{c.n, c.oc, oh, ow}, C.dnnl_aBcd8b)
}

// ownWinogradCPU reports whether wino.c runs here: oneDNN has no Winograd
// (below AVX-512, or capped there) but runs its AVX2 kernels, and the CPU
// has FMA.
func ownWinogradCPU() bool {
	return !hasWinograd() && hasAVX2() && C.rg_wino_cpu_ok() != 0
}

// tagged returns the interned descriptor of shape in the layout tag.
func (s *state) tagged(shape []int, tag C.dnnl_format_tag_t) *memDesc {
	md, err := initMD(shape, tag)
	if err != nil {
		s.fail("bad shape", err)
	}
	return intern(&md)
}

// newWino returns the prim running c, in place of the direct prim dir whose
// arguments are dargs: the same layouts and argument order (input,
// weights, bias if any, output), with c's transformed weights; for the
// pass to the weights (input, output gradient, weight gradient) the
// weight gradient is Plain.
func (s *state) newWino(dir *prim, dargs []arg, c *winoConv) (*prim, []arg) {
	if c.grad {
		args := append([]arg(nil), dargs...)
		args[2].md = s.plain([]int{c.oc, c.ic, 3, 3})
		return &prim{wino: c, impl: winoImpl, src: dir.src, weights: args[2].md, dst: dir.dst}, args
	}
	u := int(C.rg_wino_weights_size(C.int(c.oc), C.int(c.ic)))
	wmd := &memDesc{dims: []int{u}, size: 4 * u, name: fmt.Sprintf("[%d %d] Winograd F(4x4,3x3) weights", c.oc, c.ic)}
	args := append([]arg(nil), dargs...)
	args[1].md = wmd
	return &prim{wino: c, impl: winoImpl, src: dir.src, weights: wmd, dst: dir.dst}, args
}

// execWino runs a wino.c convolution on src, transformed weights u, bias
// (nil without one) and dst, in that order as exec receives them; for the
// pass to the weights on src, dy and dw.
func (s *state) execWino(c *winoConv, ptrs []unsafe.Pointer) {
	want := 3
	if c.bias && !c.grad {
		want = 4
	}
	if len(ptrs) != want {
		panic(fmt.Sprintf("dnnl: %s takes %d buffers, got %d", winoImpl, want, len(ptrs)))
	}
	for _, p := range ptrs {
		if p == nil {
			s.fail("an operand has no elements (a zero dimension)", nil)
		}
	}
	// The size depends on the thread count, which RESGO_THREADS=auto changes.
	var scratch C.size_t
	if c.grad {
		scratch = C.rg_wino_grad_scratch_size(C.int(c.n), C.int(c.ic), C.int(c.oc), C.int(c.h), C.int(c.w), C.int(c.pad))
	} else {
		scratch = C.rg_wino_scratch_size(C.int(c.n), C.int(c.ic), C.int(c.oc), C.int(c.h), C.int(c.w), C.int(c.pad))
	}
	if scratch > s.ctx.scratch_size && C.rg_reserve_scratch(s.ctx, scratch) == 0 {
		s.fail(fmt.Sprintf("out of memory for a %d-byte scratchpad", scratch), nil)
	}
	if c.grad {
		C.rg_wino_conv_grad((*C.float)(ptrs[2]), (*C.float)(ptrs[0]), (*C.float)(ptrs[1]), (*C.float)(s.ctx.scratch),
			C.int(c.n), C.int(c.ic), C.int(c.oc), C.int(c.h), C.int(c.w), C.int(c.pad))
		return
	}
	var b unsafe.Pointer
	if c.bias {
		b = ptrs[2]
	}
	C.rg_wino_conv((*C.float)(ptrs[len(ptrs)-1]), (*C.float)(ptrs[0]), (*C.float)(ptrs[1]), (*C.float)(b), (*C.float)(s.ctx.scratch),
		C.int(c.n), C.int(c.ic), C.int(c.oc), C.int(c.h), C.int(c.w), C.int(c.pad), cbool(c.sum), cbool(c.relu))
}

// winoWeights returns w's values transformed for the wino.c prim pr,
// cached per tensor as weightsIn caches reorders (cache: inference).
func (s *state) winoWeights(w *tensor.Tensor, pr *prim, cache bool) []float32 {
	c := pr.wino
	return s.convertedWeights(w, pr.weights, cache, func(dst, src []float32) {
		C.rg_wino_weights((*C.float)(ptr(dst)), (*C.float)(ptr(src)), C.int(c.oc), C.int(c.ic), cbool(c.flip))
	})
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
