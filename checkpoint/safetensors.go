package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/resgo/resgo/internal/atomicfile"
)

// maxSafetensorsHeader is the largest header the reference implementation
// accepts (100 MB).
const maxSafetensorsHeader = 100_000_000

// safetensorsInfo is one tensor's entry in a safetensors header.
type safetensorsInfo struct {
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// Read reads a state dict from a .pth file or a safetensors file, telling
// them apart by their first bytes, not by their names.
func Read(path string) (*StateDict, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if len(data) > 8 && data[8] == '{' {
		return decodeSafetensors(path, data)
	}
	return decodePTH(path, data, "")
}

// ReadSafetensors reads a safetensors file. It accepts F32, F16, BF16, F64
// and integer tensors (converted to float32, integers kept as int64 too);
// Keys lists the tensors in the order of their data in the file.
func ReadSafetensors(path string) (*StateDict, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return decodeSafetensors(path, data)
}

// decodeSafetensors decodes the contents of a safetensors file; name is used
// in errors.
func decodeSafetensors(name string, data []byte) (*StateDict, error) {
	fail := func(format string, args ...any) (*StateDict, error) {
		return nil, fmt.Errorf("checkpoint: %s: safetensors: %s", name, fmt.Sprintf(format, args...))
	}
	if len(data) < 8 {
		return fail("file of %d bytes is too short for a header", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > maxSafetensorsHeader || n > uint64(len(data)-8) {
		return fail("header length %d exceeds the file (%d bytes) or the 100 MB limit", n, len(data))
	}
	header, body := data[8:8+n], data[8+n:]
	if len(header) == 0 || header[0] != '{' {
		return fail("header is not a JSON object")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		return fail("header: %v", err)
	}
	sd := NewStateDict()
	if m, ok := raw["__metadata__"]; ok {
		if err := json.Unmarshal(m, &sd.Metadata); err != nil {
			return fail("__metadata__ must map strings to strings: %v", err)
		}
		delete(raw, "__metadata__")
	}
	type entry struct {
		name       string
		info       safetensorsInfo
		begin, end uint64
	}
	entries := make([]entry, 0, len(raw))
	for k, v := range raw {
		var info safetensorsInfo
		if err := json.Unmarshal(v, &info); err != nil {
			return fail("tensor %s: %v", k, err)
		}
		size := dtypeSize(info.DType)
		if size == 0 {
			return fail("tensor %s: unsupported dtype %q", k, info.DType)
		}
		if len(info.DataOffsets) != 2 {
			return fail("tensor %s: data_offsets must hold two numbers", k)
		}
		begin, end := info.DataOffsets[0], info.DataOffsets[1]
		if begin > end || end > uint64(len(body)) {
			return fail("tensor %s: data_offsets [%d, %d] outside the %d bytes of data (truncated file?)", k, begin, end, len(body))
		}
		if len(info.Shape) > maxRank {
			return fail("tensor %s: %d dimensions, more than %d", k, len(info.Shape), maxRank)
		}
		numel := uint64(1)
		for _, d := range info.Shape {
			if d < 0 {
				return fail("tensor %s: negative dimension in shape %v", k, info.Shape)
			}
			if d > 0 && numel > uint64(len(body))/uint64(d) {
				return fail("tensor %s: shape %v larger than the file", k, info.Shape)
			}
			numel *= uint64(d)
		}
		if numel*uint64(size) != end-begin {
			return fail("tensor %s: shape %v of %s needs %d bytes, data_offsets give %d", k, info.Shape, info.DType, numel*uint64(size), end-begin)
		}
		entries = append(entries, entry{k, info, begin, end})
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].begin != entries[j].begin {
			return entries[i].begin < entries[j].begin
		}
		return entries[i].name < entries[j].name
	})
	// Tensors may leave gaps between them but not share bytes: each byte
	// of data belongs to one tensor, so that the tensors never take more
	// memory than the file holds.
	var last *entry
	for i := range entries {
		e := &entries[i]
		if e.begin == e.end {
			continue
		}
		if last != nil && e.begin < last.end {
			return fail("tensors %s [%d, %d] and %s [%d, %d] overlap", last.name, last.begin, last.end, e.name, e.begin, e.end)
		}
		last = e
	}
	for _, e := range entries {
		f32, i64, err := decodeRaw(e.info.DType, body[e.begin:e.end])
		if err != nil {
			return fail("tensor %s: %v", e.name, err)
		}
		shape := e.info.Shape
		if shape == nil {
			shape = []int{}
		}
		sd.Add(&Tensor{Name: e.name, Shape: shape, DType: e.info.DType, F32: f32, I64: i64})
	}
	return sd, nil
}

// WriteSafetensors writes sd to a safetensors file, atomically (readers see
// either the old file or the complete new one). See EncodeSafetensors for
// the layout.
func WriteSafetensors(path string, sd *StateDict) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		if err := encodeSafetensors(w, sd); err != nil {
			return fmt.Errorf("checkpoint: %s: safetensors: %w", path, err)
		}
		return nil
	})
}

// EncodeSafetensors writes sd in the safetensors format: integer and bool
// tensors as I64, all others as F32, and sd.Metadata as "__metadata__".
// Like the reference implementation, it lays out the tensors by decreasing
// alignment (I64 before F32), then by name, and pads the JSON header with
// spaces to a multiple of 8 bytes, so that every tensor's data is aligned.
func EncodeSafetensors(w io.Writer, sd *StateDict) error {
	if err := encodeSafetensors(w, sd); err != nil {
		return fmt.Errorf("checkpoint: safetensors: %w", err)
	}
	return nil
}

func encodeSafetensors(w io.Writer, sd *StateDict) error {
	tensors := make([]*Tensor, 0, len(sd.Keys))
	for _, k := range sd.Keys {
		t := sd.Tensors[k]
		if t == nil {
			return fmt.Errorf("key %s has no tensor", k)
		}
		if t.Name != k {
			return fmt.Errorf("key %s holds a tensor named %s", k, t.Name)
		}
		n := t.Numel()
		if isInteger(t.DType) {
			if len(t.I64) != n {
				return fmt.Errorf("tensor %s: %d int64 values for shape %v", k, len(t.I64), t.Shape)
			}
		} else if len(t.F32) != n {
			return fmt.Errorf("tensor %s: %d float32 values for shape %v", k, len(t.F32), t.Shape)
		}
		tensors = append(tensors, t)
	}
	sort.Slice(tensors, func(i, j int) bool {
		ii, ij := isInteger(tensors[i].DType), isInteger(tensors[j].DType)
		if ii != ij {
			return ii // I64 (8-byte alignment) before F32
		}
		return tensors[i].Name < tensors[j].Name
	})

	// The JSON header, written by hand to keep the order: metadata first,
	// then the tensors in data order.
	var h bytes.Buffer
	h.WriteByte('{')
	if len(sd.Metadata) > 0 {
		h.WriteString(`"__metadata__":`)
		writeJSON(&h, sd.Metadata) // encoding/json sorts map keys
	}
	offset := 0
	for i, t := range tensors {
		if i > 0 || len(sd.Metadata) > 0 {
			h.WriteByte(',')
		}
		dtype, size := F32, 4*len(t.F32)
		if isInteger(t.DType) {
			dtype, size = I64, 8*len(t.I64)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		writeJSON(&h, t.Name)
		h.WriteByte(':')
		writeJSON(&h, safetensorsInfo{DType: dtype, Shape: shape, DataOffsets: []uint64{uint64(offset), uint64(offset + size)}})
		offset += size
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}

	bw := bufio.NewWriterSize(w, 1<<16)
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], uint64(h.Len()))
	bw.Write(buf[:])
	bw.Write(h.Bytes())
	for _, t := range tensors {
		if isInteger(t.DType) {
			for _, v := range t.I64 {
				binary.LittleEndian.PutUint64(buf[:], uint64(v))
				bw.Write(buf[:8])
			}
			continue
		}
		for _, v := range t.F32 {
			binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
			bw.Write(buf[:4])
		}
	}
	return bw.Flush() // bufio.Writer keeps the first write error
}

// writeJSON appends v as compact JSON without HTML escaping, as the
// reference implementation (serde_json) writes it.
func writeJSON(b *bytes.Buffer, v any) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)           // cannot fail for these types
	b.Truncate(b.Len() - 1) // drop the newline Encode adds
}

// DecodeSafetensors decodes a safetensors file held in memory, as
// ReadSafetensors reads one from disk; name is the file's name for errors.
func DecodeSafetensors(name string, data []byte) (*StateDict, error) {
	return decodeSafetensors(name, data)
}
