package checkpoint

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// expected is the side file the fixture script writes next to its .pth files.
type expected struct {
	Keys    []string `json:"keys"`
	Tensors map[string]struct {
		Shape  []int     `json:"shape"`
		DType  string    `json:"dtype"`
		Sum    float64   `json:"sum"`
		First  []float64 `json:"first"`
		SHA256 string    `json:"sha256"`
		Values []float64 `json:"values"`
	} `json:"tensors"`
}

func readExpected(t *testing.T, path string) *expected {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var e expected
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &e
}

// torchDTypes maps torch's dtype names to ours.
var torchDTypes = map[string]string{
	"float32": F32, "float16": F16, "float64": F64, "int64": I64, "int32": I32, "bool": Bool,
}

// rawBytes returns the little-endian bytes of t's values in its own dtype,
// as numpy's tobytes() writes them, to compare with the fixture's SHA-256.
func rawBytes(t *Tensor) []byte {
	var b bytes.Buffer
	for i := range t.F32 {
		switch t.DType {
		case F32:
			binary.Write(&b, binary.LittleEndian, t.F32[i])
		case F64:
			// Exact only for values representable in float32; the fixture's
			// float64 tensor is checked through its values instead.
			binary.Write(&b, binary.LittleEndian, float64(t.F32[i]))
		case I64:
			binary.Write(&b, binary.LittleEndian, t.I64[i])
		case I32:
			binary.Write(&b, binary.LittleEndian, int32(t.I64[i]))
		case Bool:
			b.WriteByte(byte(t.I64[i]))
		}
	}
	return b.Bytes()
}

// checkAgainst verifies every tensor of sd against the fixture's description.
func checkAgainst(t *testing.T, file string, sd *StateDict, want *expected) {
	t.Helper()
	if strings.Join(sd.Keys, ",") != strings.Join(want.Keys, ",") {
		t.Fatalf("%s: keys\n got %v\nwant %v", file, sd.Keys, want.Keys)
	}
	for _, k := range want.Keys {
		w := want.Tensors[k]
		got := sd.Get(k)
		if got == nil || got.Name != k {
			t.Fatalf("%s: %s missing or misnamed", file, k)
		}
		if !equalInts(got.Shape, w.Shape) || got.DType != torchDTypes[w.DType] || len(got.F32) != got.Numel() {
			t.Errorf("%s: %s: got shape %v dtype %s (%d values), want %v %s", file, k, got.Shape, got.DType, len(got.F32), w.Shape, w.DType)
			continue
		}
		if isInteger(got.DType) != (got.I64 != nil) {
			t.Errorf("%s: %s: I64 presence wrong for %s", file, k, got.DType)
		}
		for i, v := range w.First {
			if float64(got.F32[i]) != float64(float32(v)) {
				t.Errorf("%s: %s[%d] = %v, want %v", file, k, i, got.F32[i], v)
			}
		}
		for i, v := range w.Values {
			if float64(got.F32[i]) != float64(float32(v)) {
				t.Errorf("%s: %s[%d] = %v, want %v", file, k, i, got.F32[i], v)
			}
		}
		var sum float64
		for _, v := range got.F32 {
			sum += float64(v)
		}
		if got.DType != F64 && math.Abs(sum-w.Sum) > 1e-9*(1+math.Abs(w.Sum)) {
			t.Errorf("%s: %s: sum %v, want %v", file, k, sum, w.Sum)
		}
		if got.DType != F16 && got.DType != F64 {
			h := sha256.Sum256(rawBytes(got))
			if hex.EncodeToString(h[:]) != w.SHA256 {
				t.Errorf("%s: %s: SHA-256 of the values differs from torch's", file, k)
			}
		}
	}
}

func equalInts(a, b []int) bool {
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

var tinyFiles = []string{"tiny-zip.pth", "tiny-legacy.pth", "tiny-v1-legacy.pth", "tiny-tar.pth", "tiny-nested.pth"}

// TestReadPTHTestdata reads the committed fixtures, which need no torch.
func TestReadPTHTestdata(t *testing.T) {
	want := readExpected(t, "testdata/tiny-expected.json")
	for _, name := range tinyFiles {
		path := filepath.Join("testdata", name)
		sd, err := ReadPTH(path)
		if err != nil {
			t.Fatal(err)
		}
		checkAgainst(t, name, sd, want)
		checkTinyByHand(t, name, sd)
		// Read detects the format too.
		if sd2, err := Read(path); err != nil || sd2.Len() != sd.Len() {
			t.Errorf("Read(%s): %v", name, err)
		}
	}
}

// checkTinyByHand checks the tricky entries of the tiny state dict without
// the side file.
func checkTinyByHand(t *testing.T, file string, sd *StateDict) {
	t.Helper()
	w, wt := sd.Get("fc.weight"), sd.Get("fc.weight_t")
	for i := range 3 {
		for j := range 4 {
			if w.F32[i*4+j] != wt.F32[j*3+i] {
				t.Fatalf("%s: fc.weight_t is not the transpose of fc.weight", file)
			}
		}
	}
	checkVals := func(name string, want ...float32) {
		got := sd.Get(name).F32
		if len(got) != len(want) {
			t.Errorf("%s: %s = %v, want %v", file, name, got, want)
			return
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: %s = %v, want %v", file, name, got, want)
				return
			}
		}
	}
	checkVals("slice", 0, 0.5, 1, 1.5, 2)
	checkVals("strided", -0.5, 1, 2.5)
	checkVals("half", 1, -2.5, 0.099975586, 65504)
	checkVals("mask", 1, 0, 1)
	n := sd.Get("bn.num_batches_tracked")
	if n.DType != I64 || len(n.Shape) != 0 || len(n.I64) != 1 || n.I64[0] != 7 {
		t.Errorf("%s: num_batches_tracked = %+v", file, n)
	}
	if i := sd.Get("int32"); i.I64[2] != math.MaxInt32 {
		t.Errorf("%s: int32 = %v", file, i.I64)
	}
	if e := sd.Get("empty"); !equalInts(e.Shape, []int{0, 5}) || len(e.F32) != 0 {
		t.Errorf("%s: empty = %+v", file, e)
	}
	if tt := n.ToTensor(); tt.Len() != 1 || tt.Values()[0] != 7 {
		t.Errorf("%s: num_batches_tracked ToTensor = %v", file, tt)
	}
	if tt := w.ToTensor(); !equalInts(tt.Shape(), []int{3, 4}) || tt.Values()[5] != w.F32[5] {
		t.Errorf("%s: ToTensor = %v", file, tt)
	}
}

func TestReadPTHEntry(t *testing.T) {
	path := "testdata/tiny-nested.pth"
	if sd, err := ReadPTHEntry(path, "state_dict"); err != nil || sd.Len() != 12 {
		t.Fatalf("state_dict: %v", err)
	}
	for key, msg := range map[string]string{
		"epoch": `"epoch" holds an int, not a state dict`,
		"args":  "argparse.Namespace, not a state dict",
		"nope":  `no key "nope"`,
	} {
		_, err := ReadPTHEntry(path, key)
		if err == nil || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), path) {
			t.Errorf("ReadPTHEntry(%q) error %v, want one naming the file and saying %q", key, err, msg)
		}
	}
}

// legacyFile builds a legacy-format file from the header pickles of
// testdata/tiny-legacy.pth and the given object and key-list pickles.
func legacyFile(t *testing.T, obj, keys string) []byte {
	data, err := os.ReadFile("testdata/tiny-legacy.pth")
	if err != nil {
		t.Fatal(err)
	}
	header := legacyPrefix(t, data, 3)
	return append(append(append([]byte(nil), header...), obj...), keys...)
}

// legacyPrefix returns the first pickles of a legacy file.
func legacyPrefix(t *testing.T, data []byte, pickles int) []byte {
	pos := 0
	for range pickles {
		n, err := scanPickle(data[pos:])
		if err != nil {
			t.Fatal(err)
		}
		pos += n
	}
	return data[:pos]
}

func TestReadPTHErrors(t *testing.T) {
	dir := t.TempDir()
	legacy, err := os.ReadFile("testdata/tiny-legacy.pth")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, msg string
		data      []byte
	}{
		{"text.pth", "not a PyTorch file", []byte("hello, world\n")},
		{"empty.pth", "not a PyTorch file", nil},
		{"list.pth", "not a state dict: the file holds a list", legacyFile(t, "\x80\x02]q\x00.", "\x80\x02]q\x00.")},
		{"unknown-storage.pth", "unknown storage type torch.FlaatStorage", bytes.Replace(legacy, []byte("FloatStorage"), []byte("FlaatStorage"), 1)},
		{"truncated.pth", "truncated", legacy[:len(legacy)-20]},
		{"no-keys.pth", "storage key list", legacyPrefix(t, legacy, 4)},
		{"bad-magic.pth", "bad magic number", append([]byte{0x80, 0x02, 'K', 0x01, '.'}, legacy[15:]...)},
		{"zip-no-pkl.pth", "without a data.pkl", zipWith(t, map[string]string{"a/version": "3"})},
		{"tar-no-storages.pth", `without a "storages" record`, tarWith(t, map[string]string{"pickle": "\x80\x02}q\x00.", "tensors": "\x80\x02K\x00."})},
	}
	for _, c := range cases {
		path := filepath.Join(dir, c.name)
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadPTH(path)
		if err == nil || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming the file and saying %q", c.name, err, c.msg)
		}
	}
	if _, err := ReadPTH(filepath.Join(dir, "missing.pth")); err == nil {
		t.Error("missing file: no error")
	}
}

// TestReadPTHCorrupt feeds truncated and garbled fixtures to the reader:
// it must return errors, never panic, and never fail by hitting its own
// last-resort recover (which would hide a bug in this package).
func TestReadPTHCorrupt(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, name := range tinyFiles {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(data) {
			_, err := decodePTH(name, data[:n], "")
			if err == nil && !(name == "tiny-tar.pth" && allZero(data[n:])) {
				// A tar archive may lose its zero padding and end blocks.
				t.Fatalf("%s truncated to %d bytes: no error", name, n)
			} else if err != nil && strings.Contains(err.Error(), "malformed file") {
				t.Fatalf("%s truncated to %d bytes: %v", name, n, err)
			}
		}
		for range 3000 {
			garbled := append([]byte(nil), data...)
			for range 1 + rng.Intn(4) {
				garbled[rng.Intn(len(garbled))] = byte(rng.Intn(256))
			}
			if _, err := decodePTH(name, garbled, ""); err != nil && strings.Contains(err.Error(), "malformed file") {
				t.Fatalf("%s garbled: %v", name, err)
			}
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// FuzzDecodePTH runs the reader on arbitrary input (go test -fuzz=FuzzDecodePTH).
func FuzzDecodePTH(f *testing.F) {
	for _, name := range tinyFiles {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sd, err := decodePTH("fuzz", data, "")
		if err != nil && strings.Contains(err.Error(), "malformed file") {
			t.Fatal(err)
		}
		if err == nil {
			for _, k := range sd.Keys {
				if x := sd.Get(k); len(x.F32) != x.Numel() {
					t.Fatalf("%s: %d values for shape %v", k, len(x.F32), x.Shape)
				}
			}
		}
	})
}

func TestScanPickle(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		fail string
	}{
		{"\x80\x02K\x05.", 5, ""},
		{"\x80\x02X\x03\x00\x00\x00abc.rest", 11, ""},
		{"\x80\x02X\xff\xff\xff\x7fabc.", 0, "truncated"},
		{"\x80\x02\xff.", 0, "unknown pickle opcode 0xff"},
		{"\x80\x02K\x05", 0, "no STOP"},
		{"cfoo\nbar\n.", 10, ""},
		{"cfoo\nbar", 0, "unterminated"},
		{"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01K\x02.", 16, ""},
		{"\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00K\x01.", 0, "truncated"},
	} {
		n, err := scanPickle([]byte(c.in))
		if c.fail == "" && (err != nil || n != c.n) {
			t.Errorf("scanPickle(%q) = %d, %v; want %d", c.in, n, err, c.n)
		}
		if c.fail != "" && (err == nil || !strings.Contains(err.Error(), c.fail)) {
			t.Errorf("scanPickle(%q) error %v, want %q", c.in, err, c.fail)
		}
	}
}

// torchAvailable reports whether /usr/bin/python3 can import torch.
func torchAvailable() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "/usr/bin/python3", "-c", "import torch, torchvision").Run() == nil
}

// requireTorch skips the test when torch is missing, except in CI (CI=true)
// or with RESGO_REQUIRE_TORCH=1, where a missing torch is a failure.
func requireTorch(t *testing.T) {
	t.Helper()
	if torchAvailable() {
		return
	}
	if os.Getenv("CI") == "true" || os.Getenv("RESGO_REQUIRE_TORCH") == "1" {
		t.Fatal("/usr/bin/python3 cannot import torch and torchvision, and CI=true or RESGO_REQUIRE_TORCH=1 forbids skipping")
	}
	t.Skip("/usr/bin/python3 cannot import torch and torchvision")
}

// TestReadPTHTorch generates fresh fixtures with torch, including a seeded
// torchvision resnet18 in both formats, and checks every tensor exactly.
func TestReadPTHTorch(t *testing.T) {
	requireTorch(t)
	dir := t.TempDir()
	cmd := exec.Command("/usr/bin/python3", "../scripts/make_pth_fixtures.py", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make_pth_fixtures.py: %v\n%s", err, out)
	}
	tiny := readExpected(t, filepath.Join(dir, "tiny-expected.json"))
	for _, name := range tinyFiles {
		sd, err := ReadPTH(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		checkAgainst(t, name, sd, tiny)
		checkTinyByHand(t, name, sd)
	}
	resnet := readExpected(t, filepath.Join(dir, "resnet18-expected.json"))
	if len(resnet.Keys) != 122 {
		t.Fatalf("resnet18 has %d keys, want 122", len(resnet.Keys))
	}
	for _, name := range []string{"resnet18-zip.pth", "resnet18-legacy.pth", "resnet18-tar.pth"} {
		sd, err := ReadPTH(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		checkAgainst(t, name, sd, resnet)
		// A safetensors round trip keeps every value.
		st := filepath.Join(dir, name+".safetensors")
		if err := WriteSafetensors(st, sd); err != nil {
			t.Fatal(err)
		}
		back, err := ReadSafetensors(st)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range sd.Keys {
			a, b := sd.Get(k), back.Get(k)
			if b == nil || !equalInts(a.Shape, b.Shape) || a.DType != b.DType || string(rawBytes(a)) != string(rawBytes(b)) {
				t.Fatalf("%s: %s changed in the safetensors round trip", name, k)
			}
		}
	}
}

// tarWith returns a tar archive holding the given files.
func tarWith(t *testing.T, files map[string]string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// zipWith returns a zip archive holding the given files.
func zipWith(t *testing.T, files map[string]string) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, content := range files {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(content))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
