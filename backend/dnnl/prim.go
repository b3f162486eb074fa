//go:build cgo

package dnnl

/*
#include "rg.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
	"weak"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/tensor"
)

// opKind names the primitives this backend creates.
type opKind uint8

const (
	kReorder opKind = iota + 1
	kConvFwd
	kConvBwdData
	kConvBwdWeights
	kBNTrain
	kBNInfer
	kBNBwd
	kReLU
	kReLUBwd
	kPoolFwd
	kPoolBwd
	kAvgFwd
	kAvgBwd
	kAdd
	kLinear
	kLinearBwdData
	kLinearBwdWeights
)

// Flags of opKey.
const (
	fBias = 1 << iota
	fSum
	fReLU
	fWorkspace // BN backward with the fused-ReLU workspace
	fInference // forward only: no backward pass follows
)

// opKey identifies a cached primitive: everything its creation depends on.
type opKey struct {
	kind    opKind
	a, b    shapeKey           // operand shapes
	src     *memDesc           // layout of the input where the primitive keeps it
	dst     *memDesc           // second layout (reorder destination)
	conv    backend.ConvParams // normalized
	pool    backend.PoolParams
	flags   uint32
	eps     float32
	threads int // oneDNN sizes its work partition by the thread count
}

// prim is a created primitive and the layouts of its buffers.
type prim struct {
	op   *C.rg_op
	impl string // oneDNN's implementation name, as "jit:avx512_core"
	// wino, where set, runs the operation instead of op (which is nil).
	wino *winoConv
	// Layouts the primitive chose or was given, by role; nil where unused.
	src, weights, dst, ws *memDesc
}

// arg is one execute argument of a primitive: its kind (DNNL_ARG_*) and
// layout. The pointers passed to exec come in the same order.
type arg struct {
	kind C.int
	md   *memDesc
}

// cached returns the primitive for k, creating it with create on first use.
func (s *state) cached(k opKey, create func() *prim) *prim {
	k.threads = s.threads
	if p := s.prims[k]; p != nil {
		return p
	}
	p := create()
	s.prims[k] = p
	return p
}

// newAttr returns primitive attributes with a user-managed scratchpad and
// the given post-ops: a sum (dst += previous dst) and then a ReLU. The
// caller destroys it.
func (s *state) newAttr(sum, relu bool) C.dnnl_primitive_attr_t {
	var a C.dnnl_primitive_attr_t
	s.check(C.dnnl_primitive_attr_create(&a), "dnnl_primitive_attr_create")
	// By default every primitive owns a scratchpad of its own; in user mode
	// it takes one as an execute argument, so all share one buffer.
	if st := C.dnnl_primitive_attr_set_scratchpad_mode(a, C.dnnl_scratchpad_mode_user); st != C.dnnl_success {
		C.dnnl_primitive_attr_destroy(a)
		s.check(st, "dnnl_primitive_attr_set_scratchpad_mode")
	}
	if !sum && !relu {
		return a
	}
	var po C.dnnl_post_ops_t
	if st := C.dnnl_post_ops_create(&po); st != C.dnnl_success {
		C.dnnl_primitive_attr_destroy(a)
		s.check(st, "dnnl_post_ops_create")
	}
	defer C.dnnl_post_ops_destroy(po)
	st := C.dnnl_status_t(C.dnnl_success)
	if sum {
		st = C.dnnl_post_ops_append_sum(po, 1)
	}
	if relu && st == C.dnnl_success {
		st = C.dnnl_post_ops_append_eltwise(po, 1, C.dnnl_eltwise_relu, 0, 0)
	}
	if st == C.dnnl_success {
		st = C.dnnl_primitive_attr_set_post_ops(a, po)
	}
	if st != C.dnnl_success {
		C.dnnl_primitive_attr_destroy(a)
		s.check(st, "dnnl post-ops")
	}
	return a
}

// primDesc creates a primitive descriptor for an operation descriptor (a
// pointer to a dnnl_*_desc_t), with attributes (nil: a user scratchpad and
// no post-ops) and, for backward primitives, the forward one as hint. The
// caller destroys it.
func (s *state) primDesc(desc unsafe.Pointer, attr C.dnnl_primitive_attr_t, hint C.dnnl_primitive_desc_t) C.dnnl_primitive_desc_t {
	if attr == nil {
		attr = s.newAttr(false, false)
		defer C.dnnl_primitive_attr_destroy(attr)
	}
	var pd C.dnnl_primitive_desc_t
	s.check(C.dnnl_primitive_desc_create(&pd, C.const_dnnl_op_desc_t(desc), attr, s.ctx.engine, hint), "dnnl_primitive_desc_create")
	return pd
}

// query returns the interned descriptor of one of pd's buffers (what is a
// dnnl_query_*_md, i its index), or nil if pd has none.
func query(pd C.dnnl_primitive_desc_t, what C.dnnl_query_t, i int) *memDesc {
	md := C.dnnl_primitive_desc_query_md(C.const_dnnl_primitive_desc_t(pd), what, C.int(i))
	if md == nil || md.ndims == 0 {
		return nil
	}
	return intern(md)
}

// newPrim creates the primitive of pd, taking the arguments args.
func (s *state) newPrim(pd C.dnnl_primitive_desc_t, args ...arg) *prim {
	if len(args) > C.RG_MAX_ARGS {
		panic("dnnl: too many primitive arguments")
	}
	var kinds [C.RG_MAX_ARGS]C.int
	var mds [C.RG_MAX_ARGS]*C.dnnl_memory_desc_t
	for i, a := range args {
		if a.md == nil {
			s.fail(fmt.Sprintf("primitive %s has no memory descriptor for argument %d", C.GoString(C.rg_impl_info(C.const_dnnl_primitive_desc_t(pd))), a.kind), nil)
		}
		kinds[i], mds[i] = a.kind, a.md.c
	}
	p := &prim{impl: C.GoString(C.rg_impl_info(C.const_dnnl_primitive_desc_t(pd)))}
	s.check(C.rg_op_new(&p.op, C.const_dnnl_primitive_desc_t(pd), C.int(len(args)), &kinds[0], &mds[0]), "dnnl_primitive_create")
	return p
}

// exec runs p on the buffers ptrs, in the order of p's arguments.
func (s *state) exec(p *prim, ptrs ...unsafe.Pointer) {
	if p.wino != nil {
		s.execWino(p.wino, ptrs)
		return
	}
	if int(p.op.nargs) != len(ptrs) {
		panic(fmt.Sprintf("dnnl: primitive %s takes %d buffers, got %d", p.impl, p.op.nargs, len(ptrs)))
	}
	if p.op.scratch_size > s.ctx.scratch_size && C.rg_reserve_scratch(s.ctx, p.op.scratch_size) == 0 {
		s.fail(fmt.Sprintf("out of memory for a %d-byte scratchpad", p.op.scratch_size), nil)
	}
	var a [C.RG_MAX_ARGS]unsafe.Pointer
	for i, p := range ptrs {
		if p == nil {
			s.fail("an operand has no elements (a zero dimension)", nil)
		}
		a[i] = p
	}
	s.check(C.rg_exec(s.ctx, p.op, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]), "dnnl_primitive_execute")
}

// reorder copies src, in layout from, into dst in layout to.
func (s *state) reorder(dst []float32, to *memDesc, src []float32, from *memDesc) {
	if from == to {
		copy(dst[:to.size/4], src)
		return
	}
	s.reorders++
	if !from.plain && !to.plain {
		s.blockedReorders++
	}
	p := s.cached(opKey{kind: kReorder, src: from, dst: to}, func() *prim {
		attr := s.newAttr(false, false)
		defer C.dnnl_primitive_attr_destroy(attr)
		var pd C.dnnl_primitive_desc_t
		s.check(C.dnnl_reorder_primitive_desc_create(&pd, from.c, s.ctx.engine, to.c, s.ctx.engine, attr), "dnnl_reorder_primitive_desc_create")
		defer C.dnnl_primitive_desc_destroy(pd)
		return s.newPrim(pd, arg{C.DNNL_ARG_FROM, from}, arg{C.DNNL_ARG_TO, to})
	})
	s.exec(p, ptr(src), ptr(dst))
}

// input returns t's storage in layout want: t's own storage if it is in
// that layout already, else a copy reordered into scratch slot.
func (s *state) input(t *tensor.Tensor, want *memDesc, slot int) []float32 {
	have := s.layout(t)
	if have == want {
		return t.Storage()
	}
	if !tensor.SameShape(have.dims, want.dims) {
		s.fail(fmt.Sprintf("tensor %v where shape %v was expected", t, want.dims), nil)
	}
	buf := s.tmpBuf(slot, want.size/4)
	s.reorder(buf, want, t.Storage(), have)
	return buf
}

// weightsIn returns w's values, whose Plain layout is from (its dims may
// split groups off), in layout want. With cache set (inference: the weights
// do not change) the reordered copy is kept per tensor and layout and redone
// only when w's Version changes. Without it (training: the weights change
// at every step) w is reordered into scratch memory at each use, which
// costs no more time than refreshing a cache at every step and saves a copy
// of the model (87 MB for ResNet-18, twice over).
func (s *state) weightsIn(w *tensor.Tensor, from, want *memDesc, cache bool) []float32 {
	if want == from {
		return w.Values()
	}
	return s.convertedWeights(w, want, cache, func(dst, src []float32) { s.reorder(dst, want, src, from) })
}

// convertedWeights returns w's values converted by convert into the form
// want describes (a layout, or wino.c's transformed weights), cached per
// tensor and form as weightsIn describes.
func (s *state) convertedWeights(w *tensor.Tensor, want *memDesc, cache bool, convert func(dst, src []float32)) []float32 {
	vals := w.Values()
	if !cache {
		buf := s.tmpBuf(tmpWeights, want.size/4)
		convert(buf, vals)
		return buf
	}
	k := weightKey{weak.Make(w), want}
	c := s.weights[k]
	if c != nil && c.version == w.Version() {
		return c.data
	}
	if c == nil {
		s.sweepWeights()
		c = &weightCopy{}
		s.weights[k] = c
	}
	if cap(c.data) < want.size/4 {
		c.data = make([]float32, want.size/4)
	}
	c.data = c.data[:want.size/4]
	convert(c.data, vals)
	c.version = w.Version()
	return c.data
}

// sweepWeights drops cached weight copies whose tensor was collected, once
// the cache has doubled since the last sweep.
func (s *state) sweepWeights() {
	if len(s.weights) < s.sweepAt {
		return
	}
	for k := range s.weights {
		if k.w.Value() == nil {
			delete(s.weights, k)
		}
	}
	s.sweepAt = 2*len(s.weights) + 16
}

// requirePlain fails unless t is a Plain tensor of the given shape.
func (s *state) requirePlain(t *tensor.Tensor, what string, shape ...int) {
	if !t.IsPlain() {
		s.fail(fmt.Sprintf("%s %v must be Plain", what, t), nil)
	}
	if !tensor.SameShape(t.Shape(), shape) {
		s.fail(fmt.Sprintf("%s has shape %v, want %v", what, t.Shape(), shape), nil)
	}
}

// require4D fails unless t is a 4-D tensor.
func (s *state) require4D(t *tensor.Tensor, what string) {
	if t == nil {
		s.fail(what+" is nil", nil)
	}
	if t.Rank() != 4 {
		s.fail(fmt.Sprintf("%s %v must be 4-D (NCHW)", what, t), nil)
	}
}

// requireShape fails unless t has the given shape.
func (s *state) requireShape(t *tensor.Tensor, what string, shape []int) {
	if t == nil {
		s.fail(what+" is nil", nil)
	}
	if !tensor.SameShape(t.Shape(), shape) {
		s.fail(fmt.Sprintf("%s has shape %v, want %v", what, t.Shape(), shape), nil)
	}
}

// dims2 converts a pair of spatial values to a oneDNN dims array.
func dims2(v [2]int, minus int) C.dnnl_dims_t {
	var d C.dnnl_dims_t
	d[0], d[1] = C.dnnl_dim_t(v[0]-minus), C.dnnl_dim_t(v[1]-minus)
	return d
}

// statusInvalidArguments returns dnnl_invalid_arguments, for tests (which
// cannot use cgo).
func statusInvalidArguments() C.dnnl_status_t { return C.dnnl_invalid_arguments }
