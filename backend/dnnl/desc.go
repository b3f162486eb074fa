//go:build cgo

package dnnl

/*
#include <stdlib.h>
#include "rg.h"
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/tensor"
)

// memDesc is an interned oneDNN memory descriptor: one value per distinct
// layout, so layouts compare by pointer. It is the Desc of the Opaque
// tensors this backend writes. Interning is process-wide, so tensors can
// pass between Backend instances.
type memDesc struct {
	c     *C.dnnl_memory_desc_t // copy in C memory, never freed
	dims  []int                 // logical dimensions
	size  int                   // bytes of storage, padding included
	plain bool                  // dense row-major: the Plain layout of dims
	name  string                // short description for messages
}

// String describes the layout, as "[8 64 56 56] blocked".
func (d *memDesc) String() string { return d.name }

// maxDims is the highest rank this backend handles (5 for grouped weights).
const maxDims = 5

// shapeKey is a comparable form of a shape of rank <= maxDims: the rank
// first, then the dimensions.
type shapeKey [maxDims + 1]int

func keyOf(shape []int) shapeKey {
	if len(shape) > maxDims {
		panic(fmt.Sprintf("dnnl: shape %v has rank above %d", shape, maxDims))
	}
	var k shapeKey
	k[0] = len(shape)
	copy(k[1:], shape)
	return k
}

var interned struct {
	sync.Mutex
	byBytes map[string]*memDesc // raw descriptor bytes -> interned copy
	byDims  map[string][]*memDesc
	plain   map[shapeKey]*memDesc
}

// plainTags are oneDNN's row-major format tags by rank.
var plainTags = [maxDims + 1]C.dnnl_format_tag_t{0, C.dnnl_a, C.dnnl_ab, C.dnnl_abc, C.dnnl_abcd, C.dnnl_abcde}

// cdims converts a Go shape to oneDNN's dims array.
func cdims(shape []int) C.dnnl_dims_t {
	var d C.dnnl_dims_t
	for i, v := range shape {
		d[i] = C.dnnl_dim_t(v)
	}
	return d
}

// initMD returns a descriptor of an f32 tensor with the given format tag
// (dnnl_format_tag_any lets a primitive choose the layout).
func initMD(shape []int, tag C.dnnl_format_tag_t) (C.dnnl_memory_desc_t, error) {
	var md C.dnnl_memory_desc_t
	if len(shape) < 1 || len(shape) > maxDims {
		return md, fmt.Errorf("rank %d is not supported", len(shape))
	}
	dims := cdims(shape)
	if st := C.dnnl_memory_desc_init_by_tag(&md, C.int(len(shape)), &dims[0], C.dnnl_f32, tag); st != C.dnnl_success {
		return md, statusError("dnnl_memory_desc_init_by_tag", st)
	}
	return md, nil
}

// plainDesc returns the interned Plain (row-major) descriptor of shape.
func plainDesc(shape []int) (*memDesc, error) {
	if len(shape) < 1 || len(shape) > maxDims {
		return nil, fmt.Errorf("rank %d is not supported (1 to %d)", len(shape), maxDims)
	}
	k := keyOf(shape)
	interned.Lock()
	d := interned.plain[k]
	interned.Unlock()
	if d != nil {
		return d, nil
	}
	md, err := initMD(shape, plainTags[len(shape)])
	if err != nil {
		return nil, err
	}
	return intern(&md), nil
}

// intern returns the interned descriptor equal to md.
func intern(md *C.dnnl_memory_desc_t) *memDesc {
	raw := C.GoStringN((*C.char)(unsafe.Pointer(md)), C.int(unsafe.Sizeof(*md)))
	interned.Lock()
	defer interned.Unlock()
	if d := interned.byBytes[raw]; d != nil {
		return d
	}
	n := int(md.ndims)
	dims := make([]int, n)
	for i := range dims {
		dims[i] = int(md.dims[i])
	}
	// A descriptor equal to the row-major one of its dims is Plain, whatever
	// its bytes: map it onto the canonical plain descriptor.
	if n >= 1 && n <= maxDims {
		k := keyOf(dims)
		p := interned.plain[k]
		if p == nil {
			if pm, err := initMD(dims, plainTags[n]); err == nil {
				p = newMemDesc(&pm, dims, true)
				interned.plain[k] = p
				interned.byBytes[C.GoStringN((*C.char)(unsafe.Pointer(&pm)), C.int(unsafe.Sizeof(pm)))] = p
			}
		}
		if p != nil && C.dnnl_memory_desc_equal(md, p.c) != 0 {
			interned.byBytes[raw] = p
			return p
		}
	}
	// Equal descriptors may differ in bytes oneDNN leaves unset; compare
	// with those of the same dims so that equal layouts stay one pointer.
	for _, d := range interned.byDims[keyOfAny(dims)] {
		if C.dnnl_memory_desc_equal(md, d.c) != 0 {
			interned.byBytes[raw] = d
			return d
		}
	}
	d := newMemDesc(md, dims, false)
	interned.byBytes[raw] = d
	interned.byDims[keyOfAny(dims)] = append(interned.byDims[keyOfAny(dims)], d)
	return d
}

// keyOfAny is a map key for dims of any rank.
func keyOfAny(dims []int) string { return fmt.Sprint(dims) }

func newMemDesc(md *C.dnnl_memory_desc_t, dims []int, plain bool) *memDesc {
	c := C.rg_md_copy(md)
	if c == nil {
		// A run-time failure like a oneDNN status: an *Error, which the
		// caller of backend.Do gets (the operation is not known here).
		panic(&backend.Error{Op: "dnnl", Msg: "out of C memory for a memory descriptor"})
	}
	kind := "blocked"
	if plain {
		kind = "plain"
	}
	return &memDesc{
		c:     c,
		dims:  dims,
		size:  int(C.dnnl_memory_desc_get_size(md)),
		plain: plain,
		name:  fmt.Sprintf("%v %s", dims, kind),
	}
}

func init() {
	interned.byBytes = map[string]*memDesc{}
	interned.byDims = map[string][]*memDesc{}
	interned.plain = map[shapeKey]*memDesc{}
}

// anyDesc returns a descriptor with format_tag_any: the primitive chooses.
func (s *state) anyDesc(shape []int) C.dnnl_memory_desc_t {
	md, err := initMD(shape, C.dnnl_format_tag_any)
	if err != nil {
		s.fail("bad shape", err)
	}
	return md
}

// plain returns the Plain descriptor of shape, failing the current
// operation if the shape is not supported.
func (s *state) plain(shape []int) *memDesc {
	d, err := plainDesc(shape)
	if err != nil {
		s.fail("bad shape", err)
	}
	return d
}

// layout returns the descriptor of t's current layout: the Plain one for a
// Plain tensor, its Desc for an Opaque tensor written by this backend. A
// tensor in another backend's layout, or with too little storage, fails.
func (s *state) layout(t *tensor.Tensor) *memDesc {
	if t.IsPlain() {
		if len(t.Storage()) < t.Len() {
			s.fail(fmt.Sprintf("tensor %v has %d elements of storage", t, len(t.Storage())), nil)
		}
		return s.plain(t.Shape())
	}
	d, ok := t.Desc().(*memDesc)
	if !ok {
		s.fail(fmt.Sprintf("tensor %v is in an opaque layout of another backend (%T)", t, t.Desc()), nil)
	}
	if !tensor.SameShape(d.dims, t.Shape()) {
		s.fail(fmt.Sprintf("tensor %v has a layout for shape %v", t, d.dims), nil)
	}
	if len(t.Storage())*4 < d.size {
		s.fail(fmt.Sprintf("tensor %v has %d elements of storage, its layout needs %d", t, len(t.Storage()), d.size/4), nil)
	}
	return d
}

// setOut makes t an output of shape in layout d. A tensor that already has
// that shape and layout keeps its storage and values (so an operation can
// run in place on an operand); otherwise it is Reset. Plain outputs get
// their Version bumped either way, Opaque ones their Aux cleared.
func (s *state) setOut(t *tensor.Tensor, d *memDesc, shape []int) {
	if tensor.SameShape(t.Shape(), shape) && len(t.Storage())*4 >= d.size {
		if d.plain && t.IsPlain() {
			t.Mutable()
			t.SetAux(nil)
			return
		}
		if !t.IsPlain() && t.Desc() == any(d) {
			t.SetAux(nil)
			return
		}
	}
	if d.plain {
		t.Reset(tensor.Plain, nil, tensor.Numel(shape), shape...)
	} else {
		t.Reset(tensor.Opaque, d, d.size/4, shape...)
	}
}

// numTmp is the number of scratch tensors; tmpWeights is the one that
// holds weights being trained, reordered for the operation at hand.
const (
	numTmp     = 5
	tmpWeights = 4
)

// tmpBuf returns scratch slot i with room for n elements. Its contents are
// unspecified; it stays valid until the slot is requested again.
func (s *state) tmpBuf(i, n int) []float32 {
	if cap(s.tmp[i]) < n {
		s.tmp[i] = make([]float32, n)
	}
	return s.tmp[i][:n]
}

// ptr returns the address of a buffer's first element for C.
func ptr[T any](b []T) unsafe.Pointer {
	return unsafe.Pointer(unsafe.SliceData(b))
}

// blockedCopy returns a copy of the Plain 4-D tensor x in the blocked
// nChw16c layout (dnnl_aBcd16b): the layout the backend's convolutions
// write on AVX-512 machines. Tests use it to feed ops blocked inputs.
func (b *Backend) blockedCopy(x *tensor.Tensor) *tensor.Tensor {
	return b.blockedCopyTag(x, C.dnnl_aBcd16b)
}

// blocked8Copy is blockedCopy in nChw8c (dnnl_aBcd8b), the layout of the
// convolutions on AVX2, AVX and SSE4.1.
func (b *Backend) blocked8Copy(x *tensor.Tensor) *tensor.Tensor {
	return b.blockedCopyTag(x, C.dnnl_aBcd8b)
}

func (b *Backend) blockedCopyTag(x *tensor.Tensor, tag C.dnnl_format_tag_t) *tensor.Tensor {
	out := &tensor.Tensor{}
	b.s.do(func(s *state) {
		s.begin("dnnl.blockedCopy", x)
		md, err := initMD(x.Shape(), tag)
		if err != nil {
			s.fail("bad shape", err)
		}
		d := intern(&md)
		s.setOut(out, d, x.Shape())
		s.reorder(out.Storage(), d, x.Values(), s.plain(x.Shape()))
	})
	return out
}
