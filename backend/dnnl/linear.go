//go:build cgo

package dnnl

/*
#include "rg.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/tensor"
)

// checkLinear validates a fully connected layer's operands.
func (s *state) checkLinear(x, w *tensor.Tensor) (n, k, m int) {
	if x == nil || w == nil {
		s.fail("x and w must not be nil", nil)
	}
	if x.Rank() != 2 || w.Rank() != 2 || x.Dim(1) != w.Dim(1) {
		s.fail("x must be [N, K] and w [M, K]", nil)
	}
	if !w.IsPlain() {
		s.fail("w must be Plain", nil)
	}
	return x.Dim(0), x.Dim(1), w.Dim(0)
}

// ipFwdDesc initializes an inner product descriptor on Plain operands.
func (s *state) ipFwdDesc(n, k, m int, bias bool) C.dnnl_inner_product_desc_t {
	var bmd *C.dnnl_memory_desc_t
	if bias {
		bmd = s.plain([]int{m}).c
	}
	var d C.dnnl_inner_product_desc_t
	s.check(C.dnnl_inner_product_forward_desc_init(&d, C.dnnl_forward_training, s.plain([]int{n, k}).c, s.plain([]int{m, k}).c, bmd, s.plain([]int{n, m}).c),
		"dnnl_inner_product_forward_desc_init")
	return d
}

// linear implements Backend.Linear.
func (s *state) linear(y, x, w, b *tensor.Tensor) {
	s.begin("dnnl.Linear", y, x, w, b)
	n, k, m := s.checkLinear(x, w)
	var flags uint32
	if b != nil {
		s.requirePlain(b, "b", m)
		flags |= fBias
	}
	if y == nil || y == x || y == w || y == b {
		s.fail("y must be a tensor distinct from x, w and b", nil)
	}
	pr := s.cached(opKey{kind: kLinear, a: keyOf(x.Shape()), b: keyOf(w.Shape()), flags: flags}, func() *prim {
		d := s.ipFwdDesc(n, k, m, b != nil)
		pd := s.primDesc(unsafe.Pointer(&d), nil, nil)
		defer C.dnnl_primitive_desc_destroy(pd)
		args := []arg{{C.DNNL_ARG_SRC, s.plain([]int{n, k})}, {C.DNNL_ARG_WEIGHTS, s.plain([]int{m, k})}}
		if b != nil {
			args = append(args, arg{C.DNNL_ARG_BIAS, s.plain([]int{m})})
		}
		args = append(args, arg{C.DNNL_ARG_DST, s.plain([]int{n, m})})
		return s.newPrim(pd, args...)
	})
	xd := s.input(x, s.plain([]int{n, k}), 0)
	s.setOut(y, s.plain([]int{n, m}), []int{n, m})
	if b != nil {
		s.exec(pr, ptr(xd), ptr(w.Values()), ptr(b.Values()), ptr(y.Storage()))
	} else {
		s.exec(pr, ptr(xd), ptr(w.Values()), ptr(y.Storage()))
	}
}

// linearBackward implements Backend.LinearBackward.
func (s *state) linearBackward(dx, dw, db, dy, x, w *tensor.Tensor) {
	s.begin("dnnl.LinearBackward", dx, dw, db, dy, x, w)
	n, k, m := s.checkLinear(x, w)
	s.requireShape(dy, "dy", []int{n, m})
	for _, t := range []*tensor.Tensor{dx, dw, db} {
		if t != nil && (t == dy || t == x || t == w) {
			s.fail("gradients must be distinct from dy, x and w", nil)
		}
	}
	xmd, wmd, ymd := s.plain([]int{n, k}), s.plain([]int{m, k}), s.plain([]int{n, m})
	dyd := s.input(dy, ymd, 0)
	if dx != nil {
		pr := s.cached(opKey{kind: kLinearBwdData, a: keyOf(x.Shape()), b: keyOf(w.Shape())}, func() *prim {
			fd := s.ipFwdDesc(n, k, m, false)
			hint := s.primDesc(unsafe.Pointer(&fd), nil, nil)
			defer C.dnnl_primitive_desc_destroy(hint)
			var d C.dnnl_inner_product_desc_t
			s.check(C.dnnl_inner_product_backward_data_desc_init(&d, xmd.c, wmd.c, ymd.c), "dnnl_inner_product_backward_data_desc_init")
			pd := s.primDesc(unsafe.Pointer(&d), nil, hint)
			defer C.dnnl_primitive_desc_destroy(pd)
			return s.newPrim(pd, arg{C.DNNL_ARG_DIFF_DST, ymd}, arg{C.DNNL_ARG_WEIGHTS, wmd}, arg{C.DNNL_ARG_DIFF_SRC, xmd})
		})
		s.setOut(dx, xmd, []int{n, k})
		s.exec(pr, ptr(dyd), ptr(w.Values()), ptr(dx.Storage()))
	}
	if dw != nil {
		var flags uint32
		if db != nil {
			flags |= fBias
		}
		pr := s.cached(opKey{kind: kLinearBwdWeights, a: keyOf(x.Shape()), b: keyOf(w.Shape()), flags: flags}, func() *prim {
			fd := s.ipFwdDesc(n, k, m, db != nil)
			hint := s.primDesc(unsafe.Pointer(&fd), nil, nil)
			defer C.dnnl_primitive_desc_destroy(hint)
			var bmd *C.dnnl_memory_desc_t
			if db != nil {
				bmd = s.plain([]int{m}).c
			}
			var d C.dnnl_inner_product_desc_t
			s.check(C.dnnl_inner_product_backward_weights_desc_init(&d, xmd.c, wmd.c, bmd, ymd.c), "dnnl_inner_product_backward_weights_desc_init")
			pd := s.primDesc(unsafe.Pointer(&d), nil, hint)
			defer C.dnnl_primitive_desc_destroy(pd)
			args := []arg{{C.DNNL_ARG_SRC, xmd}, {C.DNNL_ARG_DIFF_DST, ymd}, {C.DNNL_ARG_DIFF_WEIGHTS, wmd}}
			if db != nil {
				args = append(args, arg{C.DNNL_ARG_DIFF_BIAS, s.plain([]int{m})})
			}
			return s.newPrim(pd, args...)
		})
		xd := s.input(x, xmd, 1)
		s.setOut(dw, wmd, []int{m, k})
		if db != nil {
			s.setOut(db, s.plain([]int{m}), []int{m})
			s.exec(pr, ptr(xd), ptr(dyd), ptr(dw.Storage()), ptr(db.Storage()))
		} else {
			s.exec(pr, ptr(xd), ptr(dyd), ptr(dw.Storage()))
		}
		return
	}
	if db != nil {
		// Only the bias gradient: a column sum, in Go.
		s.setOut(db, s.plain([]int{m}), []int{m})
		out := db.Values()
		for j := range out {
			var sum float64
			for i := range n {
				sum += float64(dyd[i*m+j])
			}
			out[j] = float32(sum)
		}
	}
}

// softmaxCrossEntropy implements Backend.SoftmaxCrossEntropy in Go: it is
// tiny next to the network.
func (s *state) softmaxCrossEntropy(dlogits, logits *tensor.Tensor, labels []int, smoothing float32) float64 {
	s.begin("dnnl.SoftmaxCrossEntropy", dlogits, logits)
	if logits == nil || logits.Rank() != 2 {
		s.fail("logits must be [N, M]", nil)
	}
	n, m := logits.Dim(0), logits.Dim(1)
	if n == 0 || m == 0 {
		s.fail("empty batch or no classes", nil)
	}
	if len(labels) != n {
		s.fail(fmt.Sprintf("%d labels for a batch of %d", len(labels), n), nil)
	}
	if smoothing < 0 || smoothing > 1 {
		s.fail(fmt.Sprintf("label smoothing %g must be in [0, 1]", smoothing), nil)
	}
	// dlogits may be logits: each gradient element is written after the
	// last read of its logit.
	z := s.input(logits, s.plain([]int{n, m}), 0)
	var grad []float32
	if dlogits != nil {
		s.setOut(dlogits, s.plain([]int{n, m}), []int{n, m})
		grad = dlogits.Values()
	}
	for i, l := range labels {
		if l < 0 || l >= m {
			s.fail(fmt.Sprintf("label %d of sample %d is not in [0, %d)", l, i, m), nil)
		}
	}
	return backend.CrossEntropy(grad, z, n, m, labels, float64(smoothing))
}
