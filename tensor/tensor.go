// Package tensor provides resgo's float32 tensor: a logical shape (NCHW for
// images) and storage whose physical arrangement belongs to the backend that
// wrote it.
//
// A tensor in the Plain layout holds its values in row-major order of its
// logical shape, so Go code can read and write them directly through Values.
// A tensor in the Opaque layout was written by a backend in an arrangement of
// its own choosing (for example oneDNN's blocked nChw16c); its values are
// reached only through that backend's explicit conversion (backend.ToPlain),
// never implicitly.
//
// Operations take their destination tensor as an argument and reset it to the
// shape and layout they produce, reusing its storage when it is large enough.
// A layer that keeps its output tensor from one step to the next therefore
// allocates once.
package tensor

import (
	"fmt"
	"strings"
)

// Layout says how a tensor's elements are arranged in its storage.
type Layout uint8

const (
	// Plain is row-major order of the logical shape (NCHW for 4-D tensors,
	// OIHW for convolution weights).
	Plain Layout = iota
	// Opaque is an arrangement chosen by a backend and described by the
	// tensor's Desc; only that backend can interpret it.
	Opaque
)

// String returns "plain" or "opaque".
func (l Layout) String() string {
	if l == Plain {
		return "plain"
	}
	return "opaque"
}

// Tensor is a float32 tensor. The zero value is an empty tensor ready to be
// used as an operation's destination.
type Tensor struct {
	shape   []int
	layout  Layout
	data    []float32 // physical storage; len(data) >= Len() for Plain
	desc    any       // backend description of an Opaque layout
	aux     any       // backend-private data attached by the op that wrote the tensor
	version uint64    // bumped by Mutable, so backends can cache derived copies
}

// New returns a zeroed tensor of the given shape in the Plain layout.
func New(shape ...int) *Tensor {
	t := &Tensor{}
	t.Reset(Plain, nil, Numel(shape), shape...)
	return t
}

// FromValues returns a Plain tensor of the given shape holding a copy of vals.
// It panics if len(vals) does not equal the number of elements of shape.
func FromValues(vals []float32, shape ...int) *Tensor {
	if len(vals) != Numel(shape) {
		panic(fmt.Sprintf("tensor.FromValues: %d values for shape %v (%d elements)", len(vals), shape, Numel(shape)))
	}
	t := New(shape...)
	copy(t.data, vals)
	return t
}

// Wrap returns a Plain tensor of the given shape that uses vals as its
// storage, without copying. It panics if len(vals) does not match shape.
func Wrap(vals []float32, shape ...int) *Tensor {
	if len(vals) != Numel(shape) {
		panic(fmt.Sprintf("tensor.Wrap: %d values for shape %v (%d elements)", len(vals), shape, Numel(shape)))
	}
	return &Tensor{shape: append([]int(nil), shape...), data: vals}
}

// Numel returns the number of elements of a shape (1 for a scalar shape).
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Shape returns the logical shape. The caller must not modify it.
func (t *Tensor) Shape() []int { return t.shape }

// Dim returns the size of dimension i; a negative i counts from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.shape)
	}
	return t.shape[i]
}

// Rank returns the number of dimensions.
func (t *Tensor) Rank() int { return len(t.shape) }

// Len returns the number of logical elements.
func (t *Tensor) Len() int { return Numel(t.shape) }

// Layout returns the physical layout.
func (t *Tensor) Layout() Layout { return t.layout }

// IsPlain reports whether the tensor is in the Plain layout.
func (t *Tensor) IsPlain() bool { return t.layout == Plain }

// Desc returns the backend's description of an Opaque layout (nil for Plain).
func (t *Tensor) Desc() any { return t.desc }

// Aux returns backend-private data attached by the op that last wrote the
// tensor, such as a max-pooling workspace needed by the backward pass.
func (t *Tensor) Aux() any { return t.aux }

// SetAux attaches backend-private data to the tensor. Only backends call it.
func (t *Tensor) SetAux(a any) { t.aux = a }

// Version returns a counter that changes whenever the tensor's values may
// have changed through Mutable or Reset. Backends use it to know when a cached
// copy (for example weights reordered into a blocked layout) is stale.
func (t *Tensor) Version() uint64 { return t.version }

// Values returns the tensor's values in row-major order for reading. It
// panics if the tensor is not Plain: convert it with the backend first.
func (t *Tensor) Values() []float32 {
	if t.layout != Plain {
		panic(fmt.Sprintf("tensor: Values of a tensor %v in a backend's opaque layout; convert it with backend.ToPlain first", t.shape))
	}
	return t.data[:t.Len()]
}

// Mutable returns the tensor's values in row-major order for writing and
// marks the tensor as modified. It panics if the tensor is not Plain.
func (t *Tensor) Mutable() []float32 {
	v := t.Values()
	t.version++
	return v
}

// Storage returns the physical storage, whatever the layout. Backends use it
// to read and write tensors; other code should use Values or Mutable.
func (t *Tensor) Storage() []float32 { return t.data }

// Reset gives the tensor a new shape and layout with room for size physical
// elements, reusing the existing storage when it is large enough. The values
// are unspecified afterwards (callers overwrite them); new storage is zeroed.
// desc describes an Opaque layout and must be nil for Plain.
func (t *Tensor) Reset(layout Layout, desc any, size int, shape ...int) {
	if layout == Plain && size < Numel(shape) {
		panic(fmt.Sprintf("tensor.Reset: %d elements of storage for plain shape %v", size, shape))
	}
	if cap(t.data) >= size {
		t.data = t.data[:size]
	} else {
		t.data = make([]float32, size)
	}
	t.shape = append(t.shape[:0], shape...)
	t.layout = layout
	t.desc = desc
	t.aux = nil
	t.version++
}

// Reshape returns a Plain tensor sharing t's storage with a new shape of the
// same number of elements. It panics if t is not Plain or the sizes differ.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	if Numel(shape) != t.Len() {
		panic(fmt.Sprintf("tensor.Reshape: %v to %v changes the number of elements", t.shape, shape))
	}
	return Wrap(t.Values(), shape...)
}

// Clone returns a deep copy of the tensor, layout and description included
// (aux data is not copied).
func (t *Tensor) Clone() *Tensor {
	c := &Tensor{
		shape:  append([]int(nil), t.shape...),
		layout: t.layout,
		data:   append([]float32(nil), t.data...),
		desc:   t.desc,
	}
	return c
}

// CopyFrom copies the values of a Plain tensor of the same shape into t and
// marks t as modified.
func (t *Tensor) CopyFrom(src *Tensor) {
	if !SameShape(t.shape, src.shape) {
		panic(fmt.Sprintf("tensor.CopyFrom: shape %v from %v", t.shape, src.shape))
	}
	copy(t.Mutable(), src.Values())
}

// Fill sets every element of a Plain tensor to v.
func (t *Tensor) Fill(v float32) {
	d := t.Mutable()
	for i := range d {
		d[i] = v
	}
}

// String returns a short description such as "Tensor[8 64 56 56 plain]".
func (t *Tensor) String() string {
	var b strings.Builder
	b.WriteString("Tensor[")
	for i, d := range t.shape {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprint(&b, d)
	}
	fmt.Fprintf(&b, " %s]", t.layout)
	return b.String()
}

// SameShape reports whether two shapes are equal.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
