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
