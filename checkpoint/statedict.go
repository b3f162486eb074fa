// Package checkpoint reads and writes model weights: PyTorch .pth state
// dicts (zip, legacy and the early tar format) and safetensors files, and
// loads them into modules.
//
// Every reader returns a StateDict: the tensors of a model by name, in the
// order the file lists them, with their values converted to float32 (and
// kept as int64 too for integer tensors such as BatchNorm's
// num_batches_tracked).
//
// Readers never panic on corrupt input; their errors name the file and the
// problem. Writers write atomically: readers see either the old file or the
// complete new one.
package checkpoint

import (
	"fmt"
	"math"

	"github.com/resgo/resgo/tensor"
)

// Element types, spelled as safetensors spells them. Tensor.DType holds one
// of these.
const (
	F32  = "F32"  // float32
	F16  = "F16"  // IEEE half precision
	BF16 = "BF16" // bfloat16
	F64  = "F64"  // float64
	I64  = "I64"  // int64
	I32  = "I32"  // int32
	I16  = "I16"  // int16
	I8   = "I8"   // int8
	U8   = "U8"   // uint8
	Bool = "BOOL" // bool, one byte per element
)

// maxRank bounds the dimensions of a tensor read from a file: a ResNet's
// tensors have at most 4, and 64 is far more than any state dict's tensors
// have while keeping a corrupt shape's size and strides small.
const maxRank = 64

// dtypeSize returns the size in bytes of one element of dtype, or 0 for an
// unknown dtype.
func dtypeSize(dtype string) int {
	switch dtype {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16, I16:
		return 2
	case I8, U8, Bool:
		return 1
	}
	return 0
}

// isInteger reports whether dtype holds integers (or booleans).
func isInteger(dtype string) bool {
	switch dtype {
	case I64, I32, I16, I8, U8, Bool:
		return true
	}
	return false
}

// Tensor is one named tensor of a state dict. F32 always holds its values in
// row-major order, converted to float32; I64 holds them too, exactly, when
// DType is an integer or bool type, and is nil otherwise.
type Tensor struct {
	Name  string
	Shape []int // empty for a 0-d (scalar) tensor
	DType string
	F32   []float32
	I64   []int64
}

// NewF32 returns a float32 tensor holding vals (not copied). It panics if
// len(vals) does not match shape.
func NewF32(name string, shape []int, vals []float32) *Tensor {
	if len(vals) != tensor.Numel(shape) {
		panic(fmt.Sprintf("checkpoint.NewF32: %s: %d values for shape %v", name, len(vals), shape))
	}
	return &Tensor{Name: name, Shape: append([]int(nil), shape...), DType: F32, F32: vals}
}

// NewI64 returns an int64 tensor holding vals (not copied). It panics if
// len(vals) does not match shape.
func NewI64(name string, shape []int, vals []int64) *Tensor {
	if len(vals) != tensor.Numel(shape) {
		panic(fmt.Sprintf("checkpoint.NewI64: %s: %d values for shape %v", name, len(vals), shape))
	}
	f := make([]float32, len(vals))
	for i, v := range vals {
		f[i] = float32(v)
	}
	return &Tensor{Name: name, Shape: append([]int(nil), shape...), DType: I64, F32: f, I64: vals}
}

// FromTensor returns a float32 tensor holding a copy of t's values. t must be
// in the Plain layout (tensor.Values panics otherwise).
func FromTensor(name string, t *tensor.Tensor) *Tensor {
	vals := append([]float32(nil), t.Values()...)
	return NewF32(name, t.Shape(), vals)
}

// Numel returns the number of elements.
func (t *Tensor) Numel() int { return tensor.Numel(t.Shape) }

// ToTensor returns a new Plain tensor.Tensor holding a copy of the float32
// values.
func (t *Tensor) ToTensor() *tensor.Tensor {
	return tensor.FromValues(t.F32, t.Shape...)
}

// StateDict is an ordered collection of named tensors, like PyTorch's
// state_dict(). Keys lists the names in order; Tensors maps each name to its
// tensor. Metadata holds a safetensors file's "__metadata__" (nil when
// there is none).
type StateDict struct {
	Keys     []string
	Tensors  map[string]*Tensor
	Metadata map[string]string
}

// NewStateDict returns an empty state dict.
func NewStateDict() *StateDict {
	return &StateDict{Tensors: make(map[string]*Tensor)}
}

// Len returns the number of tensors.
func (sd *StateDict) Len() int { return len(sd.Keys) }

// Get returns the tensor named name, or nil if there is none.
func (sd *StateDict) Get(name string) *Tensor { return sd.Tensors[name] }

// Add appends t under t.Name, or replaces the tensor of that name in place if
// there is one already.
func (sd *StateDict) Add(t *Tensor) {
	if sd.Tensors == nil {
		sd.Tensors = make(map[string]*Tensor)
	}
	if _, ok := sd.Tensors[t.Name]; !ok {
		sd.Keys = append(sd.Keys, t.Name)
	}
	sd.Tensors[t.Name] = t
}

// Delete removes the tensor named name, if any.
func (sd *StateDict) Delete(name string) {
	if _, ok := sd.Tensors[name]; !ok {
		return
	}
	delete(sd.Tensors, name)
	for i, k := range sd.Keys {
		if k == name {
			sd.Keys = append(sd.Keys[:i], sd.Keys[i+1:]...)
			break
		}
	}
}

// halfToFloat32 converts an IEEE 754 half-precision value to float32.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0: // signed zero
		return math.Float32frombits(sign)
	default: // subnormal: mant * 2^-24
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
}

// bfloat16ToFloat32 converts a bfloat16 value to float32.
func bfloat16ToFloat32(b uint16) float32 {
	return math.Float32frombits(uint32(b) << 16)
}
