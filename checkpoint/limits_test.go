package checkpoint

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// allocated returns the bytes f allocates (if nothing else runs meanwhile).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// repeat returns prefix, n copies of unit, and suffix.
func repeat(prefix, unit, suffix string, n int) []byte {
	return []byte(prefix + strings.Repeat(unit, n) + suffix)
}

// hostilePickles are pickles that make gopickle allocate the most for
// their size, one opcode kind each.
func hostilePickles() map[string][]byte {
	long4 := string(binary.LittleEndian.AppendUint32([]byte{0x8b}, maxPickleLongBytes)) + strings.Repeat("\x7f", maxPickleLongBytes)
	return map[string][]byte{
		"MARK":        repeat("\x80\x02", "(", "N.", 50000),
		"MARK TUPLE":  repeat("\x80\x02", "(t", "N.", 50000),
		"EMPTY_DICT":  repeat("\x80\x02", "}", ".", 50000),
		"EMPTY_LIST":  repeat("\x80\x02", "]", ".", 50000),
		"EMPTY_SET":   repeat("\x80\x04", "\x8f", ".", 50000),
		"NONE":        repeat("\x80\x02", "N", ".", 100000),
		"DUP":         repeat("\x80\x02N", "2", ".", 100000),
		"MEMOIZE":     repeat("\x80\x04N", "\x94", ".", 100000),
		"LONG_BINPUT": repeat("\x80\x02N", "r\x00\x00\x01\x00", ".", 50000),
		"TUPLE1":      repeat("\x80\x02N", "\x85", ".", 100000),
		"LONG4":       repeat("\x80\x02", long4, ".", 50),
		"LONG1":       repeat("\x80\x02", "\x8a\xff"+strings.Repeat("\x01", 255), ".", 500),
		"GLOBAL":      repeat("\x80\x02", "ca\nb\n", ".", 50000),
		"REDUCE":      repeat("\x80\x02", "ca\nb\n)R", ".", 30000),
		"BUILD":       repeat("\x80\x02ca\nb\n)R", "}b", ".", 30000),
		"OrderedDict": repeat("\x80\x02ccollections\nOrderedDict\n)R(", "K\x01K\x02", "u.", 30000),
		"SETITEMS":    repeat("\x80\x02}(", "J\x01\x02\x03\x04N", "u.", 30000),
		"DICT":        repeat("\x80\x02(", "J\x01\x02\x03\x04N", "d.", 30000),
		"APPENDS":     repeat("\x80\x02](", "N", "e.", 100000),
		"BINUNICODE":  repeat("\x80\x02", "X\x10\x00\x00\x00abcdefghijklmnop", ".", 20000),
		"SHORT_STR":   repeat("\x80\x04", "\x8c\x01a", ".", 50000),
		"INT":         repeat("\x80\x02", "I1234567\n", ".", 30000),
		"LONG":        repeat("\x80\x02", "L"+strings.Repeat("9", maxPickleIntDigits)+"\n", ".", 30),
		"FLOAT":       repeat("\x80\x02", "F1.5\n", ".", 50000),
		"BININT":      repeat("\x80\x02", "J\x01\x02\x03\x04", ".", 50000),
		"FRAME":       repeat("\x80\x04", "\x95\x01\x00\x00\x00\x00\x00\x00\x00N", ".", 30000),
	}
}

// TestPickleCostBoundsAllocation checks that scanPickle's estimate
// (pickleCost) bounds what gopickle really allocates, on the pickles of
// the fixtures and on hostile pickles, so that maxUnpickleBytes bounds the
// memory any pickle takes.
func TestPickleCostBoundsAllocation(t *testing.T) {
	pickles := hostilePickles()
	for _, name := range tinyFiles {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "tiny-zip.pth" {
			zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			rc, err := zr.Open("tiny-zip/data.pkl")
			if err != nil {
				t.Fatal(err)
			}
			pickles[name], _ = io.ReadAll(rc)
		} else if data[0] == 0x80 {
			pickles[name] = data[len(legacyPrefix(t, data, 3)):] // the object pickle
		}
	}
	for name, data := range pickles {
		n, cost, err := scanPickleCost(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f := &pthFile{name: name, storages: make(map[string]*torchStorage)}
		var uerr error
		got := allocated(func() { _, uerr = unpickle(data[:n], f.persistentLoad) })
		if uerr != nil && !strings.Contains(name, "MARK") {
			t.Errorf("%s: %v", name, uerr)
		}
		if got > cost {
			t.Errorf("%s: unpickling %d bytes allocated %d bytes, more than the estimate %d", name, n, got, cost)
		}
	}
}

// TestScanPickleLimits feeds pickles over each of scanPickle's limits: each
// must fail at once, before gopickle spends quadratic time or unbounded
// memory on it.
func TestScanPickleLimits(t *testing.T) {
	long4 := func(n int) string {
		return string(binary.LittleEndian.AppendUint32([]byte{0x8b}, uint32(n))) + strings.Repeat("\x01", n)
	}
	digits := strings.Repeat("7", 1_000_000)
	cases := []struct {
		name, pickle, want string
	}{
		{"INT of a million digits", "\x80\x02I" + digits + "\n.", "integer of 1000000 digits"},
		{"LONG of a million digits", "\x80\x02L" + digits + "L\n.", "integer of 1000001 digits"},
		{"LONG4 of a million bytes", "\x80\x02" + long4(1_000_000) + ".", "integer of 1000000 bytes (LONG4)"},
		{"LONG4 one byte over", "\x80\x02" + long4(maxPickleLongBytes+1) + ".", fmt.Sprintf("integer of %d bytes (LONG4)", maxPickleLongBytes+1)},
		{"LONG4 of no bytes", "\x80\x02" + long4(0) + ".", "integer of 0 bytes (LONG4)"},
		{"LONG1 of no bytes", "\x80\x02\x8a\x00.", "integer of zero bytes (LONG1)"},
		{"MARK spam", string(repeat("\x80\x02", "(", "N.", maxUnpickleBytes/pickleMarkCost+1)), "pickle too complex"},
		{"EMPTY_DICT spam", string(repeat("\x80\x02", "}", ".", maxUnpickleBytes/pickleObjectCost+1)), "pickle too complex"},
	}
	for _, c := range cases {
		start := time.Now()
		_, err := scanPickle([]byte(c.pickle))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
		// The same inside a file: the error names it.
		file := legacyFile(t, c.pickle, "\x80\x02]q\x00.")
		if _, err := decodePTH("x.pth", file, ""); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "x.pth") {
			t.Errorf("%s in a file: error %v, want one naming x.pth and saying %q", c.name, err, c.want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: refused after %v", c.name, d)
		}
	}
	// Integers up to the limits are read.
	for _, p := range []string{"\x80\x02" + long4(maxPickleLongBytes) + ".", "\x80\x02L" + strings.Repeat("7", maxPickleIntDigits) + "L\n."} {
		n, err := scanPickle([]byte(p))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := unpickle([]byte(p)[:n], nil); err != nil {
			t.Error(err)
		}
	}
	// A pickle longer than maxPickleBytes.
	big := append(binary.LittleEndian.AppendUint32([]byte("\x80\x02B"), maxPickleBytes), make([]byte, maxPickleBytes)...)
	if _, err := scanPickle(append(big, '.')); err == nil || !strings.Contains(err.Error(), "pickle longer than 64 MiB") {
		t.Errorf("pickle over 64 MiB: error %v", err)
	}
}

// repackZip rewrites a zip archive with each record compressed by the
// method method returns for its name.
func repackZip(t testing.TB, data []byte, method func(name string) uint16) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, r := range zr.File {
		rc, err := r.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: r.Name, Method: method(r.Name)})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// encodePTH returns sd in the zip format.
func encodePTH(t *testing.T, sd *StateDict) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := EncodePTH(&b, sd, "archive"); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// patchCentralDirectory applies edit to the central directory entry of the
// record named name (at its first byte) in a zip archive.
func patchCentralDirectory(t *testing.T, data []byte, name string, edit func(entry []byte)) {
	t.Helper()
	for i := 0; i+46 <= len(data); i++ {
		if string(data[i:i+4]) != "PK\x01\x02" {
			continue
		}
		n := int(binary.LittleEndian.Uint16(data[i+28:]))
		if i+46+n <= len(data) && string(data[i+46:i+46+n]) == name {
			edit(data[i:])
			return
		}
	}
	t.Fatalf("no central directory entry for %s", name)
}

// TestReadPTHZipBombs feeds zip-format files built to inflate or repeat
// their data: each must fail with an error naming the file, having
// allocated little, while the same tensors compressed modestly still read.
func TestReadPTHZipBombs(t *testing.T) {
	deflate := func(string) uint16 { return zip.Deflate }

	// Modestly compressed records read as stored ones do.
	tiny, err := os.ReadFile("testdata/tiny-zip.pth")
	if err != nil {
		t.Fatal(err)
	}
	sd, err := decodePTH("deflated.pth", repackZip(t, tiny, deflate), "")
	if err != nil {
		t.Fatal(err)
	}
	checkAgainst(t, "deflated.pth", sd, readExpected(t, "testdata/tiny-expected.json"))

	// 16 MiB of zeros deflate to 16 KB: over 1000 times.
	zeros := NewStateDict()
	zeros.Add(NewF32("w", []int{4 << 20}, make([]float32, 4<<20)))
	bomb := repackZip(t, encodePTH(t, zeros), deflate)

	// Two tensors whose records share the same bytes: data/1's directory
	// entry points at data/0's record.
	pair := NewStateDict()
	pair.Add(NewF32("a", []int{1024}, make([]float32, 1024)))
	pair.Add(NewF32("b", []int{1024}, make([]float32, 1024)))
	overlap := encodePTH(t, pair)
	var first []byte
	patchCentralDirectory(t, overlap, "archive/data/0", func(e []byte) { first = append(first, e[42:46]...) })
	patchCentralDirectory(t, overlap, "archive/data/1", func(e []byte) { copy(e[42:46], first) })

	// A stored data.pkl whose header claims more than it holds (and more
	// than any state dict's pickle).
	lying := encodePTH(t, pair)
	patchCentralDirectory(t, lying, "archive/data.pkl", func(e []byte) {
		binary.LittleEndian.PutUint32(e[24:], maxPickleBytes+1)
	})

	for _, c := range []struct {
		name, want string
		data       []byte
	}{
		{"bomb.pth", "zip record archive/data/0 inflates", bomb},
		{"overlap.pth", "zip records archive/data/0 and archive/data/1 overlap", overlap},
		{"lying.pth", "its header says 67108865: a corrupt file", lying},
	} {
		var err error
		n := allocated(func() { _, err = decodePTH(c.name, c.data, "") })
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s: error %v, want one naming the file and saying %q", c.name, err, c.want)
		}
		if n > 1<<20 {
			t.Errorf("%s (%d bytes): refusing it allocated %d bytes", c.name, len(c.data), n)
		}
	}
}

// sharedStoragePTH returns a zip-format file whose state dict has n
// tensors of the given size and stride, all views of one float32 storage
// of numel elements.
func sharedStoragePTH(t *testing.T, n, numel int, size, stride []int) []byte {
	t.Helper()
	var pkl pickler
	pkl.proto()
	pkl.global("collections", "OrderedDict")
	pkl.op(opEmptyTuple)
	pkl.op(opReduce)
	pkl.op(opMark)
	for i := range n {
		pkl.str(fmt.Sprint("t", i))
		pkl.global("torch._utils", "_rebuild_tensor_v2")
		pkl.op(opMark)
		pkl.op(opMark)
		pkl.str("storage")
		pkl.global("torch", "FloatStorage")
		pkl.str("0")
		pkl.str("cpu")
		pkl.int(numel)
		pkl.op(opTuple)
		pkl.op(opBinPersID)
		pkl.int(0)
		pkl.ints(size)
		pkl.ints(stride)
		pkl.op(opNewFalse)
		pkl.global("collections", "OrderedDict")
		pkl.op(opEmptyTuple)
		pkl.op(opReduce)
		pkl.op(opTuple)
		pkl.op(opReduce)
	}
	pkl.op(opSetItems)
	pkl.op(opStop)
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, data := range map[string][]byte{"archive/data.pkl": pkl.buf.Bytes(), "archive/data/0": make([]byte, 4*numel)} {
		if err := writeStored(zw, name, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestReadPTHRepeatedViews feeds files whose tensors view the same storage
// over and over: decoding them would take far more memory than the file
// (a 256 KiB storage viewed by 2000 tensors is 500 MiB), so they fail once
// their tensors take maxDecodeRatio times the file's size.
func TestReadPTHRepeatedViews(t *testing.T) {
	// Weights tied under two names, and a broadcast view, are fine.
	for _, data := range [][]byte{sharedStoragePTH(t, 2, 1000, []int{1000}, []int{1}), sharedStoragePTH(t, 1, 1, []int{1000, 1000}, []int{0, 0})} {
		if _, err := decodePTH("ok.pth", data, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"views.pth", sharedStoragePTH(t, 2000, 64<<10, []int{64 << 10}, []int{1})},
		{"strided.pth", sharedStoragePTH(t, 2000, 64<<10, []int{256, 128}, []int{1, 256})},
		{"expanded.pth", sharedStoragePTH(t, 20, 1, []int{maxExpandedNumel}, []int{0})},
	} {
		var err error
		n := allocated(func() { _, err = decodePTH(c.name, c.data, "") })
		if err == nil || !strings.Contains(err.Error(), "decode to more than 32 times the file's size") || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s: error %v", c.name, err)
		}
		if limit := uint64(maxDecodeRatio*len(c.data) + maxDecodeSlack + 8<<20); n > limit {
			t.Errorf("%s (%d bytes): allocated %d bytes, more than %d", c.name, len(c.data), n, limit)
		}
	}
}

// TestReadPTHTarDuplicateRecords feeds a tar-format file with its pickle
// record twice.
func TestReadPTHTarDuplicateRecords(t *testing.T) {
	data, err := os.ReadFile("testdata/tiny-tar.pth")
	if err != nil {
		t.Fatal(err)
	}
	// The tar format's records are 512-byte aligned; appending an archive
	// holding a second "pickle" record (after dropping the end blocks)
	// makes one archive with two.
	end := bytes.LastIndex(data, []byte("pickle"))
	if end < 0 {
		t.Fatal("no pickle record in the fixture")
	}
	trimmed := bytes.TrimRight(data, "\x00")
	trimmed = trimmed[:(len(trimmed)+511)/512*512]
	dup := append(append([]byte(nil), trimmed...), tarWith(t, map[string]string{"pickle": "\x80\x02}q\x00."})...)
	if _, err := decodePTH("dup.pth", dup, ""); err == nil || !strings.Contains(err.Error(), `two "pickle" records`) || !strings.Contains(err.Error(), "dup.pth") {
		t.Errorf("error %v", err)
	}
}

// TestSafetensorsOverlaps checks that tensors whose data overlap, or lie
// outside the data, are refused, while gaps between tensors, in any order
// of the header, are fine.
func TestSafetensorsOverlaps(t *testing.T) {
	body := make([]byte, 32)
	for i := range body {
		body[i] = byte(i)
	}
	gap := `{"b":{"dtype":"U8","shape":[4],"data_offsets":[20,24]},"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"e":{"dtype":"U8","shape":[0],"data_offsets":[4,4]}}`
	sd, err := decodeSafetensors("gap.safetensors", safetensorsFile(gap, body))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(sd.Keys, ",") != "a,e,b" || sd.Get("b").I64[0] != 20 || sd.Get("a").I64[7] != 7 {
		t.Errorf("keys %v, b %v", sd.Keys, sd.Get("b").I64)
	}
	for _, c := range []struct{ header, want string }{
		{`{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}}`, "tensors a [0, 8] and b [4, 12] overlap"},
		{`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, "overlap"},
		{`{"a":{"dtype":"U8","shape":[4],"data_offsets":[30,34]}}`, "data_offsets [30, 34] outside the 32 bytes"},
		{`{"a":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551615,0]}}`, "outside the 32 bytes"},
		{`{"a":{"dtype":"U8","shape":[` + strings.Repeat("1,", 64) + `1],"data_offsets":[0,1]}}`, "65 dimensions, more than 64"},
	} {
		_, err := decodeSafetensors("bad.safetensors", safetensorsFile(c.header, body))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.safetensors") {
			t.Errorf("%s: error %v, want %q", c.header, err, c.want)
		}
	}
	// A thousand names for the same 1 MiB: refused, not decoded 1000 times.
	var h strings.Builder
	h.WriteString("{")
	for i := range 1000 {
		fmt.Fprintf(&h, `%s"t%d":{"dtype":"F32","shape":[262144],"data_offsets":[0,1048576]}`, map[bool]string{true: ",", false: ""}[i > 0], i)
	}
	h.WriteString("}")
	file := safetensorsFile(h.String(), make([]byte, 1<<20))
	var derr error
	if n := allocated(func() { _, derr = decodeSafetensors("many.safetensors", file) }); derr == nil || n > 16<<20 {
		t.Errorf("1000 tensors on the same data: error %v, %d bytes allocated", derr, n)
	}
}

// pthAllocLimit is what decoding a .pth file of n bytes may allocate: the
// unpickler's (at most 512 times the pickle, which inflates to at most
// maxInflateRatio times the file plus inflateSlack), the inflated records
// and their decompressors, and the decoded tensors (maxDecodeRatio times
// the file plus maxDecodeSlack): under 20000 bytes a byte plus 32 MiB.
func pthAllocLimit(n int) uint64 { return 20000*uint64(n) + 32<<20 }

// fuzzPTH is the body of the .pth fuzz targets: decodePTH must never panic
// (nor fail through its last-resort recover), never allocate more than
// pthAllocLimit, and return tensors whose values match their shapes.
func fuzzPTH(t *testing.T, data []byte) {
	var sd *StateDict
	var err error
	n := allocated(func() { sd, err = decodePTH("fuzz.pth", data, "") })
	if n > pthAllocLimit(len(data)) {
		t.Fatalf("decoding %d bytes allocated %d bytes", len(data), n)
	}
	if err != nil {
		if strings.Contains(err.Error(), "malformed file") || !strings.Contains(err.Error(), "fuzz.pth") {
			t.Fatal(err)
		}
		return
	}
	for _, k := range sd.Keys {
		if x := sd.Get(k); len(x.F32) != x.Numel() {
			t.Fatalf("%s: %d values for shape %v", k, len(x.F32), x.Shape)
		}
	}
}

// addFiles adds the named fixtures to a fuzz target's seed corpus.
func addFiles(f *testing.F, names ...string) {
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzDecodePTHZip runs the reader on mutations of zip-format files.
func FuzzDecodePTHZip(f *testing.F) {
	addFiles(f, "tiny-zip.pth", "tiny-nested.pth")
	tiny, err := os.ReadFile("testdata/tiny-zip.pth")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(repackZip(f, tiny, func(string) uint16 { return zip.Deflate }))
	sd := NewStateDict()
	sd.Add(NewF32("w", []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}))
	sd.Add(NewI64("n", nil, []int64{7}))
	var b bytes.Buffer
	if err := EncodePTH(&b, sd, "archive"); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Fuzz(fuzzPTH)
}

// FuzzDecodePTHLegacy runs the reader on mutations of legacy-format files.
func FuzzDecodePTHLegacy(f *testing.F) {
	addFiles(f, "tiny-legacy.pth", "tiny-v1-legacy.pth")
	f.Fuzz(fuzzPTH)
}

// FuzzDecodePTHTar runs the reader on mutations of tar-format files.
func FuzzDecodePTHTar(f *testing.F) {
	addFiles(f, "tiny-tar.pth")
	f.Fuzz(fuzzPTH)
}

// FuzzUnpickle runs scanPickle and the unpickler on arbitrary pickles: no
// panic escapes, and what scanPickle lets through allocates no more than
// its estimate.
func FuzzUnpickle(f *testing.F) {
	tiny, err := os.ReadFile("testdata/tiny-legacy.pth")
	if err != nil {
		f.Fatal(err)
	}
	for pos := 0; pos < len(tiny); {
		n, err := scanPickle(tiny[pos:])
		if err != nil {
			break
		}
		f.Add(tiny[pos : pos+n])
		pos += n
	}
	for _, p := range hostilePickles() {
		if len(p) > 4096 {
			p = append(p[:4096:4096], '.')
		}
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, cost, err := scanPickleCost(data)
		if err != nil {
			return
		}
		p := &pthFile{name: "fuzz", storages: make(map[string]*torchStorage)}
		if got := allocated(func() { unpickle(data[:n], p.persistentLoad) }); got > cost {
			t.Fatalf("unpickling %d bytes allocated %d bytes, more than the estimate %d", n, got, cost)
		}
	})
}

// FuzzDecodeSafetensors runs the safetensors reader on arbitrary input: no
// panic, errors naming the file, and no more allocated than 64 bytes a
// byte of input (the JSON header parsed, at most 12 bytes a byte of data
// for uint8 tensors decoded to float32 and int64) plus 1 MiB.
func FuzzDecodeSafetensors(f *testing.F) {
	sd := NewStateDict()
	sd.Add(NewF32("fc.weight", []int{2, 3}, []float32{1, -2, 3.5, 4, 5, 6}))
	sd.Add(NewI64("bn1.num_batches_tracked", nil, []int64{1 << 40}))
	sd.Add(NewF32("empty", []int{0, 4}, []float32{}))
	sd.Metadata = map[string]string{"format": "pt"}
	var b bytes.Buffer
	if err := EncodeSafetensors(&b, sd); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add(safetensorsFile(`{"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]}}`, make([]byte, 12)))
	f.Add(safetensorsFile(`{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"b":{"dtype":"BOOL","shape":[8],"data_offsets":[4,12]}}`, make([]byte, 12)))
	f.Fuzz(func(t *testing.T, data []byte) {
		var sd *StateDict
		var err error
		n := allocated(func() { sd, err = decodeSafetensors("fuzz.safetensors", data) })
		if limit := 64*uint64(len(data)) + 1<<20; n > limit {
			t.Fatalf("decoding %d bytes allocated %d bytes", len(data), n)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.safetensors") {
				t.Fatal(err)
			}
			return
		}
		for _, k := range sd.Keys {
			if x := sd.Get(k); len(x.F32) != x.Numel() {
				t.Fatalf("%s: %d values for shape %v", k, len(x.F32), x.Shape)
			}
		}
	})
}
