package checkpoint

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"

	"github.com/resgo/resgo/internal/atomicfile"
)

// WritePTH writes a state dict as PyTorch's torch.save does (the zip
// format, pickle protocol 2): an OrderedDict of tensors that torch.load
// reads and torchvision's models accept with load_state_dict. Float
// tensors are saved as float32, integer ones as int64. The file is written
// atomically.
func WritePTH(path string, sd *StateDict) error {
	top := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	if top == "" {
		top = "archive"
	}
	return atomicfile.Write(path, func(w io.Writer) error { return EncodePTH(w, sd, top) })
}

// EncodePTH writes sd in torch.save's zip format with the given top folder
// name.
func EncodePTH(w io.Writer, sd *StateDict, top string) error {
	zw := zip.NewWriter(w)
	var pkl pickler
	pkl.proto()
	pkl.global("collections", "OrderedDict")
	pkl.op(opEmptyTuple)
	pkl.op(opReduce)
	pkl.op(opMark)
	for i, name := range sd.Keys {
		t := sd.Tensors[name]
		pkl.str(name)
		storage := "FloatStorage"
		if t.I64 != nil {
			storage = "LongStorage"
		}
		// torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
		// requires_grad, backward_hooks)
		pkl.global("torch._utils", "_rebuild_tensor_v2")
		pkl.op(opMark)
		pkl.op(opMark)
		pkl.str("storage")
		pkl.global("torch", storage)
		pkl.str(fmt.Sprint(i))
		pkl.str("cpu")
		pkl.int(t.Numel())
		pkl.op(opTuple)
		pkl.op(opBinPersID)
		pkl.int(0)
		pkl.ints(t.Shape)
		pkl.ints(contiguousStrides(t.Shape))
		pkl.op(opNewFalse)
		pkl.global("collections", "OrderedDict")
		pkl.op(opEmptyTuple)
		pkl.op(opReduce)
		pkl.op(opTuple)
		pkl.op(opReduce)

		raw, err := storageBytes(t)
		if err != nil {
			return fmt.Errorf("checkpoint: %s: %w", name, err)
		}
		if err := writeStored(zw, top+"/data/"+fmt.Sprint(i), raw); err != nil {
			return err
		}
	}
	pkl.op(opSetItems)
	pkl.op(opStop)
	if err := writeStored(zw, top+"/data.pkl", pkl.buf.Bytes()); err != nil {
		return err
	}
	if err := writeStored(zw, top+"/version", []byte("3\n")); err != nil {
		return err
	}
	return zw.Close()
}

func writeStored(zw *zip.Writer, name string, data []byte) error {
	f, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	return err
}

// storageBytes returns a tensor's values as little-endian float32 or int64.
func storageBytes(t *Tensor) ([]byte, error) {
	if t.I64 != nil {
		out := make([]byte, 8*len(t.I64))
		for i, v := range t.I64 {
			binary.LittleEndian.PutUint64(out[8*i:], uint64(v))
		}
		return out, nil
	}
	if len(t.F32) != t.Numel() {
		return nil, fmt.Errorf("%d values for shape %v", len(t.F32), t.Shape)
	}
	out := make([]byte, 4*len(t.F32))
	for i, v := range t.F32 {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
	}
	return out, nil
}

func contiguousStrides(shape []int) []int {
	s := make([]int, len(shape))
	n := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = n
		n *= shape[i]
	}
	return s
}

// Pickle opcodes of protocol 2 that a state dict needs.
const (
	opProto      = 0x80
	opGlobal     = 'c'
	opEmptyTuple = ')'
	opReduce     = 'R'
	opMark       = '('
	opTuple      = 't'
	opSetItems   = 'u'
	opBinUnicode = 'X'
	opBinInt     = 'J'
	opLong1      = 0x8a
	opNewFalse   = 0x89
	opBinPersID  = 'Q'
	opStop       = '.'
)

// pickler writes the few pickle opcodes a state dict needs.
type pickler struct{ buf bytes.Buffer }

func (p *pickler) op(b byte) { p.buf.WriteByte(b) }

func (p *pickler) proto() { p.buf.Write([]byte{opProto, 2}) }

// global pushes module.name.
func (p *pickler) global(module, name string) {
	p.op(opGlobal)
	p.buf.WriteString(module + "\n" + name + "\n")
}

// str pushes a Python str.
func (p *pickler) str(s string) {
	p.op(opBinUnicode)
	binary.Write(&p.buf, binary.LittleEndian, uint32(len(s)))
	p.buf.WriteString(s)
}

// int pushes a Python int.
func (p *pickler) int(v int) {
	if v >= math.MinInt32 && v <= math.MaxInt32 {
		p.op(opBinInt)
		binary.Write(&p.buf, binary.LittleEndian, int32(v))
		return
	}
	p.op(opLong1)
	p.op(8)
	binary.Write(&p.buf, binary.LittleEndian, int64(v))
}

// ints pushes a tuple of ints.
func (p *pickler) ints(vs []int) {
	p.op(opMark)
	for _, v := range vs {
		p.int(v)
	}
	p.op(opTuple)
}
