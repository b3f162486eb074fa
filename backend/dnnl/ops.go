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

// toPlain implements Backend.ToPlain.
func (s *state) toPlain(dst, src *tensor.Tensor) {
	s.begin("dnnl.ToPlain", dst, src)
	if dst == nil || src == nil {
		s.fail("dst and src must not be nil", nil)
	}
	have := s.layout(src)
	shape := append([]int(nil), src.Shape()...)
	want := s.plain(shape)
	if dst == src {
		if !src.IsPlain() {
			tmp := s.input(src, want, 0)
			s.setOut(dst, want, shape)
			copy(dst.Storage(), tmp)
		}
		return
	}
	s.setOut(dst, want, shape)
	s.reorder(dst.Storage(), want, src.Storage(), have)
}

// reluPrim returns the forward ReLU primitive on data in layout md.
// The algorithm is relu_use_dst_for_bwd, whose backward reads the output.
func (s *state) reluPrim(md *memDesc) *prim {
	return s.cached(opKey{kind: kReLU, src: md}, func() *prim {
		pd := s.reluFwdPD(md)
		defer C.dnnl_primitive_desc_destroy(pd)
		dst := query(pd, C.dnnl_query_dst_md, 0)
		pr := s.newPrim(pd, arg{C.DNNL_ARG_SRC, md}, arg{C.DNNL_ARG_DST, dst})
		pr.src, pr.dst = md, dst
		return pr
	})
}

// reluFwdPD creates the forward ReLU primitive descriptor on layout md:
// output layout = input layout, in place allowed.
func (s *state) reluFwdPD(md *memDesc) C.dnnl_primitive_desc_t {
	var d C.dnnl_eltwise_desc_t
	s.check(C.dnnl_eltwise_forward_desc_init(&d, C.dnnl_forward_training, C.dnnl_eltwise_relu_use_dst_for_bwd, md.c, 0, 0),
		"dnnl_eltwise_forward_desc_init")
	return s.primDesc(unsafe.Pointer(&d), nil, nil)
}

// relu implements Backend.ReLU.
func (s *state) relu(y, x *tensor.Tensor) {
	s.begin("dnnl.ReLU", y, x)
	if y == nil || x == nil {
		s.fail("y and x must not be nil", nil)
	}
	md := s.layout(x)
	pr := s.reluPrim(md)
	xd := x.Storage()
	s.setOut(y, pr.dst, md.dims) // in place when y is x
	s.exec(pr, ptr(xd), ptr(y.Storage()))
}

// reluBackwardRaw computes dx = dy where y > 0, else 0, on buffers in
// layout md.
func (s *state) reluBackwardRaw(dx, y, dy []float32, md *memDesc) {
	pr := s.cached(opKey{kind: kReLUBwd, src: md}, func() *prim {
		hint := s.reluFwdPD(md)
		defer C.dnnl_primitive_desc_destroy(hint)
		var d C.dnnl_eltwise_desc_t
		s.check(C.dnnl_eltwise_backward_desc_init(&d, C.dnnl_eltwise_relu_use_dst_for_bwd, md.c, md.c, 0, 0),
			"dnnl_eltwise_backward_desc_init")
		pd := s.primDesc(unsafe.Pointer(&d), nil, hint)
		defer C.dnnl_primitive_desc_destroy(pd)
		pr := s.newPrim(pd,
			arg{C.DNNL_ARG_DST, md},
			arg{C.DNNL_ARG_DIFF_DST, query(pd, C.dnnl_query_diff_dst_md, 0)},
			arg{C.DNNL_ARG_DIFF_SRC, query(pd, C.dnnl_query_diff_src_md, 0)})
		pr.src, pr.dst = md, md
		return pr
	})
	s.exec(pr, ptr(y), ptr(dy), ptr(dx))
}

// reluBackward implements Backend.ReLUBackward.
func (s *state) reluBackward(dx, dy, y *tensor.Tensor) {
	s.begin("dnnl.ReLUBackward", dx, dy, y)
	if dx == nil || y == nil {
		s.fail("dx and y must not be nil", nil)
	}
	s.requireShape(dy, "dy", y.Shape())
	md := s.layout(y)
	dyd := s.input(dy, md, 0)
	yd := y.Storage()
	s.setOut(dx, md, md.dims) // in place when dx is dy (or y)
	s.reluBackwardRaw(dx.Storage(), yd, dyd, md)
}

// poolWorkspace is the Aux of a MaxPool2D output: oneDNN's record of where
// each window's maximum was, which the backward pass routes dy to.
type poolWorkspace struct {
	md  *memDesc
	buf []byte
}

// poolGeom returns a pooling's parameters as oneDNN takes them.
func poolGeom(p backend.PoolParams) (strides, kernel, pad C.dnnl_dims_t) {
	st := p.Stride
	for i := range st {
		if st[i] == 0 {
			st[i] = 1
		}
	}
	return dims2(st, 0), dims2(p.Kernel, 0), dims2(p.Pad, 0)
}

// poolFwdPD creates a pooling forward primitive descriptor over x in
// layout xmd with output shape ys.
func (s *state) poolFwdPD(alg C.dnnl_alg_kind_t, xmd *memDesc, ys []int, p backend.PoolParams) C.dnnl_primitive_desc_t {
	strides, kernel, pad := poolGeom(p)
	dst := s.anyDesc(ys)
	var d C.dnnl_pooling_desc_t
	// Max pooling ignores the padding, like PyTorch's -inf padding.
	s.check(C.dnnl_pooling_forward_desc_init(&d, C.dnnl_forward_training, alg, xmd.c, &dst, &strides[0], &kernel[0], &pad[0], &pad[0]),
		"dnnl_pooling_forward_desc_init")
	return s.primDesc(unsafe.Pointer(&d), nil, nil)
}

// maxPoolPrim returns the training max-pooling primitive for x in layout
// xmd; it writes a workspace for the backward pass.
func (s *state) maxPoolPrim(xmd *memDesc, ys []int, p backend.PoolParams) *prim {
	return s.cached(opKey{kind: kPoolFwd, src: xmd, pool: p}, func() *prim {
		pd := s.poolFwdPD(C.dnnl_pooling_max, xmd, ys, p)
		defer C.dnnl_primitive_desc_destroy(pd)
		dst, ws := query(pd, C.dnnl_query_dst_md, 0), query(pd, C.dnnl_query_workspace_md, 0)
		pr := s.newPrim(pd, arg{C.DNNL_ARG_SRC, xmd}, arg{C.DNNL_ARG_DST, dst}, arg{C.DNNL_ARG_WORKSPACE, ws})
		pr.src, pr.dst, pr.ws = xmd, dst, ws
		return pr
	})
}

// checkPool validates a max pooling and returns the output shape.
func (s *state) checkPool(x *tensor.Tensor, p backend.PoolParams) []int {
	s.require4D(x, "x")
	ys, err := backend.CheckPool(x.Shape(), p)
	if err != nil {
		s.fail(err.Error(), nil)
	}
	return ys
}

// maxPool2D implements Backend.MaxPool2D.
func (s *state) maxPool2D(y, x *tensor.Tensor, p backend.PoolParams) {
	s.begin("dnnl.MaxPool2D", y, x)
	ys := s.checkPool(x, p)
	if y == nil || y == x {
		s.fail("y must be a tensor distinct from x", nil)
	}
	xmd := s.layout(x)
	pr := s.maxPoolPrim(xmd, ys, p)
	ws, _ := y.Aux().(*poolWorkspace)
	if ws == nil || cap(ws.buf) < pr.ws.size {
		ws = &poolWorkspace{buf: make([]byte, pr.ws.size)}
	}
	ws.md, ws.buf = pr.ws, ws.buf[:pr.ws.size]
	s.setOut(y, pr.dst, ys)
	y.SetAux(ws)
	s.exec(pr, ptr(x.Storage()), ptr(y.Storage()), ptr(ws.buf))
}

// maxPool2DBackward implements Backend.MaxPool2DBackward.
func (s *state) maxPool2DBackward(dx, dy, x, y *tensor.Tensor, p backend.PoolParams) {
	s.begin("dnnl.MaxPool2DBackward", dx, dy, x, y)
	ys := s.checkPool(x, p)
	s.requireShape(dy, "dy", ys)
	if dx == nil || dx == dy {
		s.fail("dx must be a tensor distinct from dy", nil)
	}
	xmd := s.layout(x)
	fwd := s.maxPoolPrim(xmd, ys, p)
	// The workspace comes from y's Aux when MaxPool2D wrote y; otherwise the
	// forward pass runs again to make one.
	var wsBuf []byte
	if ws, ok := y.Aux().(*poolWorkspace); ok && ws.md == fwd.ws && len(ws.buf) >= ws.md.size {
		wsBuf = ws.buf
	} else {
		wsBuf = make([]byte, fwd.ws.size)
		s.exec(fwd, ptr(x.Storage()), ptr(s.tmpBuf(1, fwd.dst.size/4)), ptr(wsBuf))
	}
	pr := s.cached(opKey{kind: kPoolBwd, src: xmd, pool: p}, func() *prim {
		hint := s.poolFwdPD(C.dnnl_pooling_max, xmd, ys, p)
		defer C.dnnl_primitive_desc_destroy(hint)
		strides, kernel, pad := poolGeom(p)
		var d C.dnnl_pooling_desc_t
		s.check(C.dnnl_pooling_backward_desc_init(&d, C.dnnl_pooling_max, xmd.c, fwd.dst.c, &strides[0], &kernel[0], &pad[0], &pad[0]),
			"dnnl_pooling_backward_desc_init")
		pd := s.primDesc(unsafe.Pointer(&d), nil, hint)
		defer C.dnnl_primitive_desc_destroy(pd)
		diffSrc := query(pd, C.dnnl_query_diff_src_md, 0)
		pr := s.newPrim(pd,
			arg{C.DNNL_ARG_DIFF_DST, fwd.dst},
			arg{C.DNNL_ARG_WORKSPACE, fwd.ws},
			arg{C.DNNL_ARG_DIFF_SRC, diffSrc})
		pr.src, pr.dst = diffSrc, fwd.dst
		return pr
	})
	dyd := s.input(dy, pr.dst, 0)
	s.setOut(dx, pr.src, x.Shape())
	s.exec(pr, ptr(dyd), ptr(wsBuf), ptr(dx.Storage()))
}

// avgPoolPrim returns the primitive averaging x (layout xmd) over H x W.
func (s *state) avgPoolPrim(xmd *memDesc) *prim {
	return s.cached(opKey{kind: kAvgFwd, src: xmd}, func() *prim {
		d := xmd.dims
		pd := s.poolFwdPD(C.dnnl_pooling_avg_exclude_padding, xmd, []int{d[0], d[1], 1, 1}, globalPool(d))
		defer C.dnnl_primitive_desc_destroy(pd)
		dst := query(pd, C.dnnl_query_dst_md, 0)
		pr := s.newPrim(pd, arg{C.DNNL_ARG_SRC, xmd}, arg{C.DNNL_ARG_DST, dst})
		pr.src, pr.dst = xmd, dst
		return pr
	})
}

// globalPool is the pooling window covering the whole H x W of shape d.
func globalPool(d []int) backend.PoolParams {
	return backend.PoolParams{Kernel: [2]int{d[2], d[3]}, Stride: [2]int{1, 1}}
}

// globalAvgPool implements Backend.GlobalAvgPool.
func (s *state) globalAvgPool(y, x *tensor.Tensor) {
	s.begin("dnnl.GlobalAvgPool", y, x)
	s.require4D(x, "x")
	if y == nil || y == x {
		s.fail("y must be a tensor distinct from x", nil)
	}
	xmd := s.layout(x)
	pr := s.avgPoolPrim(xmd)
	ys := []int{x.Dim(0), x.Dim(1), 1, 1}
	want := s.plain(ys)
	if pr.dst == want {
		s.setOut(y, want, ys)
		s.exec(pr, ptr(x.Storage()), ptr(y.Storage()))
		return
	}
	tmp := s.tmpBuf(0, pr.dst.size/4)
	s.exec(pr, ptr(x.Storage()), ptr(tmp))
	s.setOut(y, want, ys)
	s.reorder(y.Storage(), want, tmp, pr.dst)
}

// globalAvgPoolBackward implements Backend.GlobalAvgPoolBackward.
func (s *state) globalAvgPoolBackward(dx, dy, x *tensor.Tensor) {
	s.begin("dnnl.GlobalAvgPoolBackward", dx, dy, x)
	s.require4D(x, "x")
	n, c := x.Dim(0), x.Dim(1)
	if dy == nil || !(tensor.SameShape(dy.Shape(), []int{n, c, 1, 1}) || tensor.SameShape(dy.Shape(), []int{n, c})) {
		s.fail(fmt.Sprintf("dy must be [%d %d 1 1] or [%d %d]", n, c, n, c), nil)
	}
	if dx == nil || dx == dy {
		s.fail("dx must be a tensor distinct from dy", nil)
	}
	xs := append([]int(nil), x.Shape()...) // dx may be x
	xmd := s.layout(x)
	fwd := s.avgPoolPrim(xmd)
	pr := s.cached(opKey{kind: kAvgBwd, src: xmd}, func() *prim {
		hint := s.poolFwdPD(C.dnnl_pooling_avg_exclude_padding, xmd, []int{n, c, 1, 1}, globalPool(xs))
		defer C.dnnl_primitive_desc_destroy(hint)
		strides, kernel, pad := poolGeom(globalPool(xs))
		var d C.dnnl_pooling_desc_t
		s.check(C.dnnl_pooling_backward_desc_init(&d, C.dnnl_pooling_avg_exclude_padding, xmd.c, fwd.dst.c, &strides[0], &kernel[0], &pad[0], &pad[0]),
			"dnnl_pooling_backward_desc_init")
		pd := s.primDesc(unsafe.Pointer(&d), nil, hint)
		defer C.dnnl_primitive_desc_destroy(pd)
		diffSrc := query(pd, C.dnnl_query_diff_src_md, 0)
		pr := s.newPrim(pd, arg{C.DNNL_ARG_DIFF_DST, fwd.dst}, arg{C.DNNL_ARG_DIFF_SRC, diffSrc})
		pr.src, pr.dst = diffSrc, fwd.dst
		return pr
	})
	// dy [N, C] has the memory of [N, C, 1, 1].
	var dyd []float32
	if dy.Rank() == 2 {
		if !dy.IsPlain() {
			s.fail("a 2-D dy must be Plain", nil)
		}
		dyd = dy.Values()
		if pr.dst != s.plain([]int{n, c, 1, 1}) {
			buf := s.tmpBuf(0, pr.dst.size/4)
			s.reorder(buf, pr.dst, dyd, s.plain([]int{n, c, 1, 1}))
			dyd = buf
		}
	} else {
		dyd = s.input(dy, pr.dst, 0)
	}
	s.setOut(dx, pr.src, xs)
	s.exec(pr, ptr(dyd), ptr(dx.Storage()))
}

// add implements Backend.Add.
func (s *state) add(y, a, b *tensor.Tensor, relu bool) {
	s.begin("dnnl.Add", y, a, b)
	if y == nil || a == nil || b == nil {
		s.fail("y, a and b must not be nil", nil)
	}
	s.requireShape(b, "b", a.Shape())
	amd, bmd := s.layout(a), s.layout(b)
	// Compute in a's layout unless only b is blocked. oneDNN's binary add
	// can write in place over its first source only, so put y's operand
	// first.
	md := amd
	if amd.plain && !bmd.plain {
		md = bmd
	}
	src0, src1 := a, b
	if y == b {
		src0, src1 = b, a
	}
	// oneDNN 2.6's binary kernel (jit:uni) gets an eltwise post-op wrong on
	// a blocked layout whose channel count is not a multiple of the block,
	// so that the last block is padded: on AVX2, AVX and SSE4.1 it writes
	// wrong values over part of the output (relative error 0.2 to 0.9
	// against ref, in place or not); on AVX-512 it leaves the padded tail
	// unwritten when it runs in place. There, the sum runs without the
	// post-op and a ReLU primitive follows in place. ResNets' channel
	// counts are multiples of 16, so their sums keep the fused ReLU.
	padded := md.size > 4*tensor.Numel(md.dims)
	fused := relu && !padded
	pr := s.addPrim(md, fused)
	d0 := s.input(src0, md, 0)
	d1 := s.input(src1, md, 1)
	s.setOut(y, md, md.dims) // in place when y is src0 in layout md
	yd := y.Storage()
	s.exec(pr, ptr(d0), ptr(d1), ptr(yd))
	if relu && !fused {
		s.exec(s.reluPrim(md), ptr(yd), ptr(yd))
	}
}

// addPrim returns the binary add primitive on operands and output in
// layout md, with a ReLU post-op if relu is set.
func (s *state) addPrim(md *memDesc, relu bool) *prim {
	var flags uint32
	if relu {
		flags |= fReLU
	}
	return s.cached(opKey{kind: kAdd, src: md, flags: flags}, func() *prim {
		var d C.dnnl_binary_desc_t
		s.check(C.dnnl_binary_desc_init(&d, C.dnnl_binary_add, md.c, md.c, md.c), "dnnl_binary_desc_init")
		attr := s.newAttr(false, relu)
		defer C.dnnl_primitive_attr_destroy(attr)
		pd := s.primDesc(unsafe.Pointer(&d), attr, nil)
		defer C.dnnl_primitive_desc_destroy(pd)
		pr := s.newPrim(pd, arg{C.DNNL_ARG_SRC_0, md}, arg{C.DNNL_ARG_SRC_1, md}, arg{C.DNNL_ARG_DST, md})
		pr.src, pr.dst = md, md
		return pr
	})
}

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
