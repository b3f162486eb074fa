package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resgo/resgo/tensor"
)

func TestSafetensorsRoundTrip(t *testing.T) {
	sd := NewStateDict()
	sd.Add(FromTensor("fc.weight", tensor.FromValues([]float32{1, -2, 3.5, 4, 5, 6}, 2, 3)))
	sd.Add(NewI64("bn1.num_batches_tracked", nil, []int64{1 << 40}))
	sd.Add(NewF32("bn1.running_mean", []int{3}, []float32{0.5, -0.25, 1e-8}))
	sd.Add(NewF32("empty", []int{0, 4}, []float32{}))
	sd.Metadata = map[string]string{"format": "pt", "arch": "resnet<34>"}

	var buf bytes.Buffer
	if err := EncodeSafetensors(&buf, sd); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	n := binary.LittleEndian.Uint64(data)
	header := string(data[8 : 8+n])
	// The layout of the reference implementation: metadata first, then the
	// tensors by decreasing alignment and by name, header padded with spaces.
	want := `{"__metadata__":{"arch":"resnet<34>","format":"pt"},` +
		`"bn1.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[0,8]},` +
		`"bn1.running_mean":{"dtype":"F32","shape":[3],"data_offsets":[8,20]},` +
		`"empty":{"dtype":"F32","shape":[0,4],"data_offsets":[20,20]},` +
		`"fc.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[20,44]}}`
	if n%8 != 0 || strings.TrimRight(header, " ") != want {
		t.Fatalf("header (%d bytes):\n%s\nwant\n%s", n, header, want)
	}
	if len(data) != 8+int(n)+44 {
		t.Fatalf("file is %d bytes, want %d", len(data), 8+int(n)+44)
	}

	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := WriteSafetensors(path, sd); err != nil {
		t.Fatal(err)
	}
	for _, read := range []func(string) (*StateDict, error){ReadSafetensors, Read} {
		back, err := read(path)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(back.Keys, ",") != "bn1.num_batches_tracked,bn1.running_mean,empty,fc.weight" {
			t.Errorf("keys %v", back.Keys)
		}
		if back.Metadata["arch"] != "resnet<34>" || len(back.Metadata) != 2 {
			t.Errorf("metadata %v", back.Metadata)
		}
		for _, k := range sd.Keys {
			a, b := sd.Get(k), back.Get(k)
			if !equalInts(a.Shape, b.Shape) || a.DType != b.DType || string(rawBytes(a)) != string(rawBytes(b)) {
				t.Errorf("%s: got %+v, want %+v", k, b, a)
			}
		}
		if v := back.Get("bn1.num_batches_tracked").I64[0]; v != 1<<40 {
			t.Errorf("int64 value %d", v)
		}
	}
}

// safetensorsFile builds a safetensors file from a header and data.
func safetensorsFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

func TestSafetensorsReadHalf(t *testing.T) {
	header := `{"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[6,10]}}`
	data := []byte{0x00, 0x3c, 0x00, 0xc1, 0x01, 0x00, 0x80, 0x3f, 0x20, 0xc0}
	sd, err := decodeSafetensors("half", safetensorsFile(header, data))
	if err != nil {
		t.Fatal(err)
	}
	if h := sd.Get("h").F32; h[0] != 1 || h[1] != -2.5 || h[2] != 5.9604645e-08 {
		t.Errorf("F16 values %v", h)
	}
	if b := sd.Get("b").F32; b[0] != 1 || b[1] != -2.5 {
		t.Errorf("BF16 values %v", b)
	}
	if strings.Join(sd.Keys, ",") != "h,b" {
		t.Errorf("keys %v, want data order", sd.Keys)
	}
}

func TestSafetensorsErrors(t *testing.T) {
	good := `{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	cases := []struct {
		msg  string
		file []byte
	}{
		{"too short", []byte{1, 2}},
		{"header length", safetensorsFile(good, nil)[:20]},
		{"not a JSON object", safetensorsFile(`[1]`, nil)},
		{"header", safetensorsFile(`{"x":`, nil)},
		{"unsupported dtype", safetensorsFile(`{"x":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}`, []byte{0})},
		{"outside", safetensorsFile(good, make([]byte, 4))},
		{"needs 8 bytes", safetensorsFile(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 8))},
		{"negative", safetensorsFile(`{"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, make([]byte, 8))},
		{"larger than the file", safetensorsFile(`{"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, nil)},
		{"__metadata__", safetensorsFile(`{"__metadata__":{"a":1}}`, nil)},
	}
	for _, c := range cases {
		_, err := decodeSafetensors("f.safetensors", c.file)
		if err == nil || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "f.safetensors") {
			t.Errorf("error %v, want one saying %q", err, c.msg)
		}
	}
	// Every truncation of a valid file is an error, never a panic.
	var buf bytes.Buffer
	sd := NewStateDict()
	sd.Add(NewF32("a", []int{2, 2}, []float32{1, 2, 3, 4}))
	sd.Add(NewI64("n", nil, []int64{3}))
	if err := EncodeSafetensors(&buf, sd); err != nil {
		t.Fatal(err)
	}
	for n := range buf.Len() {
		if _, err := decodeSafetensors("t", buf.Bytes()[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", n)
		}
	}
}

func TestEncodeSafetensorsInvalid(t *testing.T) {
	sd := NewStateDict()
	sd.Add(&Tensor{Name: "x", Shape: []int{3}, DType: F32, F32: []float32{1}})
	if err := EncodeSafetensors(&bytes.Buffer{}, sd); err == nil || !strings.Contains(err.Error(), "tensor x") {
		t.Errorf("error %v", err)
	}
	// A failed write leaves no file behind.
	path := filepath.Join(t.TempDir(), "bad.safetensors")
	if err := WriteSafetensors(path, sd); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("error %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file left behind: %v", err)
	}
}

func TestStateDictAddDelete(t *testing.T) {
	sd := NewStateDict()
	sd.Add(NewF32("a", []int{1}, []float32{1}))
	sd.Add(NewF32("b", []int{1}, []float32{2}))
	sd.Add(NewF32("a", []int{1}, []float32{3}))
	if strings.Join(sd.Keys, ",") != "a,b" || sd.Get("a").F32[0] != 3 {
		t.Fatalf("after Add: %v", sd.Keys)
	}
	sd.Delete("a")
	sd.Delete("zzz")
	if strings.Join(sd.Keys, ",") != "b" || sd.Get("a") != nil || sd.Len() != 1 {
		t.Fatalf("after Delete: %v", sd.Keys)
	}
}

func TestHalfToFloat32(t *testing.T) {
	for h, want := range map[uint16]float32{
		0x0000: 0, 0x3c00: 1, 0xc000: -2, 0x7bff: 65504, 0x0001: 5.9604645e-08, 0x0400: 6.1035156e-05, 0x3555: 0.33325195,
	} {
		if got := halfToFloat32(h); got != want {
			t.Errorf("halfToFloat32(%#04x) = %v, want %v", h, got, want)
		}
	}
	if got := halfToFloat32(0x7c00); got <= 65504*2 {
		t.Errorf("+Inf: %v", got)
	}
	if got := halfToFloat32(0x7e00); got == got {
		t.Errorf("NaN: %v", got)
	}
	if got := halfToFloat32(0x8000); got != 0 || !math.Signbit(float64(got)) {
		t.Errorf("-0: %v", got)
	}
}
