package data

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestFashionMNISTGenerated(t *testing.T) {
	for _, gz := range []bool{true, false} {
		dir := t.TempDir()
		writeFashion(t, dir, "train", 30, gz)
		writeFashion(t, dir, "t10k", 12, gz)
		tr, err := FashionMNIST(dir, true)
		if err != nil {
			t.Fatal(err)
		}
		te, err := FashionMNIST(dir, false)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Len() != 30 || te.Len() != 12 || tr.W != 28 || tr.H != 28 || tr.C != 1 {
			t.Fatalf("gz %v: %d train, %d test, %dx%dx%d", gz, tr.Len(), te.Len(), tr.W, tr.H, tr.C)
		}
		if !slices.Equal(tr.Classes(), FashionMNISTClasses) || tr.Classes()[9] != "Ankle boot" {
			t.Error("class names")
		}
		img, err := tr.Image(17)
		if err != nil || img.W != 28 || img.H != 28 || img.C != 1 || img.Pix[0] != 255 || img.Pix[1] != 17 || tr.Label(17) != 7 {
			t.Fatalf("image 17: %v", err)
		}
		img.Pix[1] = 0 // the copy is the caller's
		if again, _ := tr.Image(17); again.Pix[1] != 17 {
			t.Error("Image returned shared memory")
		}
	}
}

func TestIDXErrors(t *testing.T) {
	dir := t.TempDir()
	good := idxBytes([]int{2, 3, 3}, make([]uint8, 18))
	cases := []struct {
		name, want string
		data       []byte
	}{
		{"short", "header", []byte{0, 0}},
		{"magic", "magic number", []byte{1, 2, 8, 3, 0, 0, 0, 0}},
		{"type", "element type 0x0d", []byte{0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0}},
		{"dims", "0 dimensions", []byte{0, 0, 8, 0}},
		{"truncated", "truncated: 17 of 18", good[:len(good)-1]},
		{"trailing", "longer", append(slices.Clone(good), 0)},
		{"gztruncated", "truncated", gzipBytes(good)[:30]},
	}
	for _, c := range cases {
		p := filepath.Join(dir, c.name)
		writeFile(t, p, c.data)
		_, err := ReadIDX(p)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want the file and %q", c.name, err, c.want)
		}
	}
	// Wrong kinds and mismatched counts.
	writeFile(t, filepath.Join(dir, "im"), good)
	writeFile(t, filepath.Join(dir, "lb"), idxBytes([]int{3}, []uint8{1, 2, 3}))
	writeFile(t, filepath.Join(dir, "lb2"), idxBytes([]int{2}, []uint8{1, 10}))
	if _, err := ReadIDXDataset(filepath.Join(dir, "lb"), filepath.Join(dir, "im"), FashionMNISTClasses); err == nil || !strings.Contains(err.Error(), "0x803") {
		t.Errorf("labels as images: %v", err)
	}
	if _, err := ReadIDXDataset(filepath.Join(dir, "im"), filepath.Join(dir, "im"), FashionMNISTClasses); err == nil || !strings.Contains(err.Error(), "0x801") {
		t.Errorf("images as labels: %v", err)
	}
	if _, err := ReadIDXDataset(filepath.Join(dir, "im"), filepath.Join(dir, "lb"), FashionMNISTClasses); err == nil || !strings.Contains(err.Error(), "3 labels but") {
		t.Errorf("count mismatch: %v", err)
	}
	if _, err := ReadIDXDataset(filepath.Join(dir, "im"), filepath.Join(dir, "lb2"), FashionMNISTClasses); err == nil || !strings.Contains(err.Error(), "label 10 of item 1") {
		t.Errorf("label out of range: %v", err)
	}
	if _, err := FashionMNIST(dir, true); err == nil || !strings.Contains(err.Error(), "train-images-idx3-ubyte.gz") {
		t.Errorf("missing files: %v", err)
	}
}

// TestFashionMNISTReal checks Debian's dataset-fashion-mnist files when
// they are installed (CI installs them, so there their absence fails).
func TestFashionMNISTReal(t *testing.T) {
	if _, err := os.Stat(filepath.Join(FashionMNISTDir, "train-images-idx3-ubyte.gz")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Fashion-MNIST is required in CI (apt-get install dataset-fashion-mnist): %v", err)
		}
		t.Skip("Fashion-MNIST not installed:", err)
	}
	tr, err := FashionMNIST(FashionMNISTDir, true)
	if err != nil {
		t.Fatal(err)
	}
	te, err := FashionMNIST(FashionMNISTDir, false)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Len() != 60000 || te.Len() != 10000 || tr.W != 28 || tr.H != 28 {
		t.Fatalf("%d training and %d test images of %dx%d", tr.Len(), te.Len(), tr.W, tr.H)
	}
	for _, c := range LabelCounts(tr) {
		if c != 6000 {
			t.Fatalf("training label counts %v, want 6000 each", LabelCounts(tr))
		}
	}
	for _, c := range LabelCounts(te) {
		if c != 1000 {
			t.Fatalf("test label counts %v, want 1000 each", LabelCounts(te))
		}
	}
	sum := 0
	for _, p := range tr.Pix {
		sum += int(p)
	}
	mean := float64(sum) / float64(len(tr.Pix)) / 255
	if mean < 0.2855 || mean > 0.2865 {
		t.Errorf("mean pixel %.4f, want 0.2860", mean)
	}
}

// idxAllocated returns the bytes f allocates (if nothing else runs
// meanwhile).
func idxAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestIDXHeaderLies feeds IDX files whose headers announce far more data
// than they hold, or more than any dataset needs: each must fail naming
// the file, without allocating what the header announces (1 GiB used to be
// allocated before the first byte of data was read).
func TestIDXHeaderLies(t *testing.T) {
	dir := t.TempDir()
	huge := idxBytes([]int{16384, 256, 256}, make([]uint8, 100)) // announces 1 GiB
	cases := []struct {
		name, want string
		data       []byte
	}{
		{"huge", "truncated: 100 of 1073741824 bytes", huge},
		{"huge.gz", "truncated: 100 of 1073741824 bytes", gzipBytes(huge)},
		{"over-limit", "announce more than 1024 MiB", idxBytes([]int{32768, 256, 256}, nil)},
		{"over-limit-dims", "announce more than 1024 MiB", idxBytes([]int{65536, 65536}, nil)},
	}
	for _, c := range cases {
		p := filepath.Join(dir, c.name)
		writeFile(t, p, c.data)
		var err error
		n := idxAllocated(func() { _, err = ReadIDX(p) })
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want the file and %q", c.name, err, c.want)
		}
		if n > 4<<20 {
			t.Errorf("%s: %d bytes allocated for a %d-byte file", c.name, n, len(c.data))
		}
	}
	// Images wider than any image set's.
	writeFile(t, filepath.Join(dir, "wide"), idxBytes([]int{1, 1, 5000}, make([]uint8, 5000)))
	writeFile(t, filepath.Join(dir, "lb"), idxBytes([]int{1}, []uint8{0}))
	if _, err := ReadIDXDataset(filepath.Join(dir, "wide"), filepath.Join(dir, "lb"), FashionMNISTClasses); err == nil ||
		!strings.Contains(err.Error(), "images of 5000x1 pixels: want 1 to 4096 pixels a side") {
		t.Errorf("wide images: %v", err)
	}
}

// FuzzReadIDX decodes arbitrary IDX data, as from an uncompressed file
// (size known) and from a gzip'd one (size unknown): no panic, the data
// matches the dimensions, and no more is allocated than 3 bytes a byte of
// input plus 2 MiB (one idxChunk, and the buffer's doubling).
func FuzzReadIDX(f *testing.F) {
	f.Add(idxBytes([]int{2, 3, 3}, make([]uint8, 18)))
	f.Add(idxBytes([]int{4}, []uint8{0, 1, 9, 3}))
	f.Add(idxBytes([]int{1, 1, 2, 2}, []uint8{1, 2, 3, 4}))
	f.Add(idxBytes([]int{16384, 256, 256}, make([]uint8, 16)))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, size := range []int64{int64(len(data)), -1} {
			var idx *IDX
			var err error
			n := idxAllocated(func() { idx, err = readIDX(bytes.NewReader(data), size) })
			if limit := 3*uint64(len(data)) + 2<<20; n > limit {
				t.Fatalf("size %d: decoding %d bytes allocated %d bytes", size, len(data), n)
			}
			if err != nil {
				continue
			}
			want := 1
			for _, d := range idx.Dims {
				want *= d
			}
			if len(idx.Data) != want {
				t.Fatalf("%d bytes of data for dimensions %v", len(idx.Data), idx.Dims)
			}
		}
	})
}
