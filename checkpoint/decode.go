package checkpoint

import (
	"encoding/binary"
	"fmt"
	"math"
)

// decodeRaw converts little-endian elements of dtype to float32 values, and
// to int64 values too for integer types. len(raw) must be a multiple of the
// element size.
func decodeRaw(dtype string, raw []byte) (f32 []float32, i64 []int64, err error) {
	size := dtypeSize(dtype)
	if size == 0 {
		return nil, nil, fmt.Errorf("unsupported dtype %q", dtype)
	}
	if len(raw)%size != 0 {
		return nil, nil, fmt.Errorf("%d bytes is not a whole number of %s elements", len(raw), dtype)
	}
	n := len(raw) / size
	f32 = make([]float32, n)
	le := binary.LittleEndian
	switch dtype {
	case F32:
		for i := range f32 {
			f32[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
		return f32, nil, nil
	case F64:
		for i := range f32 {
			f32[i] = float32(math.Float64frombits(le.Uint64(raw[8*i:])))
		}
		return f32, nil, nil
	case F16:
		for i := range f32 {
			f32[i] = halfToFloat32(le.Uint16(raw[2*i:]))
		}
		return f32, nil, nil
	case BF16:
		for i := range f32 {
			f32[i] = bfloat16ToFloat32(le.Uint16(raw[2*i:]))
		}
		return f32, nil, nil
	}
	i64 = make([]int64, n)
	for i := range i64 {
		switch dtype {
		case I64:
			i64[i] = int64(le.Uint64(raw[8*i:]))
		case I32:
			i64[i] = int64(int32(le.Uint32(raw[4*i:])))
		case I16:
			i64[i] = int64(int16(le.Uint16(raw[2*i:])))
		case I8:
			i64[i] = int64(int8(raw[i]))
		case U8:
			i64[i] = int64(raw[i])
		case Bool:
			if raw[i] != 0 {
				i64[i] = 1
			}
		}
		f32[i] = float32(i64[i])
	}
	return f32, i64, nil
}
