//go:build cgo

package dnnl

/*
#include "rg.h"
*/
import "C"

import (
	"unsafe"

	"github.com/resgo/resgo/tensor"
)

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
