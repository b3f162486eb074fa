package data

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/resgo/resgo/transform"
)

// pilJPEGs is a Python script that writes JPEGs with PIL's encoder into
// the folder sys.argv[1]: a 203x141 image (partial blocks and MCUs at the
// right and bottom edges) of smooth gradients, 1-pixel stripes and noise
// (where decoders differ most), saved with every chroma subsampling PIL
// offers (0: 4:4:4, 1: 4:2:2, 2: 4:2:0), baseline and progressive, at
// two qualities; grayscale (L) baseline and progressive; CMYK from random
// values and from the RGB image (PIL writes Adobe's inverted CMYK); and a
// YCCK file: PIL does not write one, so it is the random CMYK file with
// its Adobe marker's transform flag set to 2 (YCCK), which makes any
// decoder read the same 4 components as Y, Cb, Cr and K.
const pilJPEGs = `
import os, sys
import numpy as np
from PIL import Image, ImageFile
ImageFile.MAXBLOCK = 1 << 26  # whole progressive files in one buffer: PIL's encoder cannot suspend there
d = sys.argv[1]
rng = np.random.default_rng(0)
H, W = 141, 203
yy, xx = np.mgrid[0:H, 0:W]
smooth = np.stack([xx * 255 // W, yy * 255 // H, (xx + yy) % 256], axis=2)
stripes = np.stack([(xx % 2) * 255, (yy % 2) * 255, ((xx + yy) % 3) * 120], axis=2)
noise = rng.integers(0, 256, size=(H, W, 3))
region = ((xx // 40 + yy // 40) % 3)[..., None]
rgb = Image.fromarray(np.where(region == 0, stripes, np.where(region == 1, noise, smooth)).astype(np.uint8))
for ss in (0, 1, 2):
    for prog in (0, 1):
        for q in (75, 95):
            rgb.save("%s/rgb-sub%d-prog%d-q%d.jpg" % (d, ss, prog, q), quality=q, subsampling=ss, progressive=bool(prog))
rgb.convert("L").save(d + "/gray.jpg", quality=90)
rgb.convert("L").save(d + "/gray-prog.jpg", quality=90, progressive=True)
Image.fromarray(rng.integers(0, 256, size=(H, W, 4)).astype(np.uint8), "CMYK").save(d + "/cmyk.jpg", quality=90)
rgb.convert("CMYK").save(d + "/cmyk-photo.jpg", quality=90)
raw = bytearray(open(d + "/cmyk.jpg", "rb").read())
i = raw.find(b"Adobe")  # "Adobe", version (2), flags0 (2), flags1 (2), transform (1)
assert i > 0 and raw[i + 11] == 0
raw[i + 11] = 2
open(d + "/ycck.jpg", "wb").write(raw)
`

// cjpegJPEGs are JPEGs PIL cannot write, made with libjpeg-turbo's cjpeg
// (Debian's libjpeg-turbo-progs) from a PPM, by name: the remaining
// subsamplings (4:4:0, 4:1:1, and 3x1, which TurboJPEG's API refuses),
// RGB without YCbCr conversion, arithmetic coding, restart markers.
var cjpegJPEGs = map[string][]string{
	"cjpeg-440.jpg":     {"-sample", "1x2"},
	"cjpeg-411.jpg":     {"-sample", "4x1"},
	"cjpeg-3x1.jpg":     {"-sample", "3x1"},
	"cjpeg-rgb.jpg":     {"-rgb"},
	"cjpeg-arith.jpg":   {"-arithmetic", "-sample", "2x2"},
	"cjpeg-restart.jpg": {"-restart", "1", "-progressive"},
}

// goCannot are the test files Go's image/jpeg refuses, and why.
var goCannot = map[string]string{
	"cjpeg-3x1.jpg":     "3x1 chroma subsampling",
	"cjpeg-arith.jpg":   "arithmetic coding",
	"cjpeg-restart.jpg": "restart markers in a progressive JPEG",
}

// goTestdataJPEGs returns the JPEGs of Go's own image tests (4:1:0 to
// 4:4:4, CMYK, RGB, restart intervals, progressive with separate DC
// scans, gray), where Go's source tree is installed.
func goTestdataJPEGs(t *testing.T) []string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Logf("no GOROOT: %v", err)
		return nil
	}
	files, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "src", "image", "testdata", "video-00*.jpeg"))
	var keep []string
	for _, f := range files {
		if !strings.Contains(f, "truncated") {
			keep = append(keep, f)
		}
	}
	return keep
}

// jpegTestFiles writes the test JPEGs into a new folder and returns it:
// PIL's (pilJPEGs), cjpeg's (cjpegJPEGs; skipped without cjpeg, except in
// CI) and Go's test images.
func jpegTestFiles(t *testing.T) string {
	t.Helper()
	needPIL(t)
	dir := t.TempDir()
	if out, err := exec.Command("/usr/bin/python3", "-c", pilJPEGs, dir).CombinedOutput(); err != nil {
		t.Fatalf("writing JPEGs with PIL: %v\n%s", err, out)
	}
	if _, err := exec.LookPath("cjpeg"); err == nil {
		ppm := filepath.Join(dir, "source.ppm")
		script := `import sys; from PIL import Image; Image.open(sys.argv[1]).save(sys.argv[2])`
		if out, err := exec.Command("/usr/bin/python3", "-c", script, filepath.Join(dir, "rgb-sub0-prog0-q95.jpg"), ppm).CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for name, args := range cjpegJPEGs {
			out, err := exec.Command("cjpeg", append(append(args, "-outfile", filepath.Join(dir, name)), ppm)...).CombinedOutput()
			if err != nil {
				t.Fatalf("cjpeg %v: %v\n%s", args, err, out)
			}
		}
		os.Remove(ppm)
	} else if pilRequired() {
		t.Fatal("cjpeg (libjpeg-turbo-progs) is required in CI:", err)
	} else {
		t.Log("no cjpeg (libjpeg-turbo-progs): 4:4:0, 4:1:1, 3x1, RGB, arithmetic and restart JPEGs not tested")
	}
	for _, f := range goTestdataJPEGs(t) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "go-"+filepath.Base(f)), raw)
	}
	return dir
}

// pixelDiff returns the mean and largest absolute difference of two
// equally long pixel arrays.
func pixelDiff(a, b []byte) (mean float64, largest int) {
	sum := 0
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		sum += d
		largest = max(largest, d)
	}
	return float64(sum) / float64(len(a)), largest
}

// TestJPEGMatchesPIL decodes JPEGs of every kind (subsamplings 4:4:4,
// 4:2:2, 4:2:0, 4:4:0, 4:1:1, 3x1; baseline, progressive, arithmetic;
// gray, YCbCr, RGB, CMYK, YCCK) to RGB and to gray, and compares the
// pixels with PIL's convert("RGB") and convert("L") of the same files:
// byte for byte with libjpeg-turbo (the cgo build). Go's image/jpeg (the
// build without cgo) is only close: its differences are logged (0.2 to
// 1.6 levels on average on Go's test photos; 7 to 8, and up to 96, on
// 1-pixel colour stripes with subsampled chroma), and checked to be those
// of the same image.
func TestJPEGMatchesPIL(t *testing.T) {
	dir := jpegTestFiles(t)
	want := pilConvert(t, dir)
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) < 20 {
		t.Fatalf("%d test files", len(names))
	}
	exact := jpegDecoder == "libjpeg-turbo"
	for _, name := range names {
		for i, ch := range []int{3, 1} {
			got, err := LoadImage(filepath.Join(dir, name), ch)
			if err != nil {
				if why := goCannot[name]; !exact && why != "" {
					t.Logf("%s: Go's decoder cannot (%s): %v", name, why, err)
					continue
				}
				t.Errorf("%s: %v", name, err)
				continue
			}
			w := want[name][i]
			if len(got.Pix) != len(w) {
				t.Errorf("%s, %d channels: %dx%d (%d bytes), PIL %d bytes", name, ch, got.W, got.H, len(got.Pix), len(w))
				continue
			}
			mean, largest := pixelDiff(got.Pix, w)
			switch {
			case exact && largest > 0:
				at := firstDiff(got.Pix, w)
				t.Errorf("%s, %d channels: %d of %d bytes differ from PIL (first at %d: %d, PIL %d)", name, ch, countDiff(got.Pix, w), len(w), at, got.Pix[at], w[at])
			case !exact:
				t.Logf("%s, %d channels: Go's decoder differs from PIL by %.2f levels on average, %d at most", name, ch, mean, largest)
				if mean > 10 { // the same image; a wrong one differs by tens
					t.Errorf("%s, %d channels: Go's decoder differs from PIL by %.2f levels on average", name, ch, mean)
				}
			}
		}
	}
}

// withMarkers returns a JPEG with n bytes of comment markers (COM, of at
// most 65533 bytes each) inserted after its start marker.
func withMarkers(raw []byte, n int) []byte {
	out := bytes.Clone(raw[:2])
	for n > 0 {
		size := min(n, 65533)
		out = append(out, 0xff, 0xfe, byte((size+2)>>8), byte(size+2))
		out = append(out, bytes.Repeat([]byte{'c'}, size)...)
		n -= size
	}
	return append(out, raw[2:]...)
}

// TestJPEGSizes checks how much of a JPEG file is read: a header beyond
// the first 64 KiB is still found, and junk after a small image is not
// read into memory (the file is read up to what its pixels can need).
func TestJPEGSizes(t *testing.T) {
	small := encoded(t, photo(40, 30, 5), func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, nil) })
	want, err := DecodeImage(bytes.NewReader(small), "small.jpg", 3)
	if err != nil {
		t.Fatal(err)
	}
	far := withMarkers(small, 200<<10)
	got, err := DecodeImage(bytes.NewReader(far), "far.jpg", 3)
	if err != nil || !bytes.Equal(got.Pix, want.Pix) {
		t.Errorf("a frame header after 200 KiB of markers: %v", err)
	}

	junk := append(bytes.Clone(small), make([]byte, 64<<20)...)
	var n uint64
	n = allocated(func() { got, err = DecodeImage(bytes.NewReader(junk), "junk.jpg", 3) })
	if err != nil || !bytes.Equal(got.Pix, want.Pix) {
		t.Errorf("64 MiB of junk after the image: %v", err)
	}
	if limit := uint64(20 << 20); n > limit {
		t.Errorf("64 MiB of junk after a 40x30 image: %d bytes allocated, more than %d", n, limit)
	}
}

// TestJPEGErrors checks broken JPEGs: each error is one line that names
// the file.
func TestJPEGErrors(t *testing.T) {
	good := encoded(t, photo(20, 10, 4), func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, nil) })
	for name, raw := range map[string][]byte{
		"start only":  []byte("\xff\xd8"),
		"not a jpeg":  []byte("\xff\xd8hello, world"),
		"no frame":    []byte("\xff\xd8\xff\xd9"),
		"truncated":   good[:len(good)/2],
		"zero height": withSize(t, "jpeg", 16, 0),
	} {
		for _, ch := range []int{3, 1} {
			m, err := DecodeImage(bytes.NewReader(raw), name, ch)
			if err == nil {
				t.Errorf("%s: decoded %dx%d", name, m.W, m.H)
				continue
			}
			if msg := err.Error(); !strings.HasPrefix(msg, name+": ") || strings.Contains(msg, "\n") {
				t.Errorf("%s: error %q is not one line naming the input", name, msg)
			}
		}
	}
}

// BenchmarkDecodeJPEG decodes JPEGs to RGB as the loader does, with Go's
// image/jpeg and transform.FromImage ("image-jpeg"), and with resgo's
// decoding path (DecodeImage: libjpeg-turbo with cgo, image/jpeg
// without), in one run: generated photos of 500x375 (the size of a
// typical flower_photos image) and 1920x1080 encoded by PIL's libjpeg at
// quality 90 with 4:2:0 chroma, baseline and progressive; Go's test
// photo; and any files listed in RESGO_BENCH_JPEGS (separated by spaces).
func BenchmarkDecodeJPEG(b *testing.B) {
	files := map[string][]byte{}
	dir := b.TempDir()
	script := `
import sys
import numpy as np
from PIL import Image, ImageFile
ImageFile.MAXBLOCK = 1 << 26  # whole progressive files in one buffer: PIL's encoder cannot suspend there
rng = np.random.default_rng(0)
for w, h in ((500, 375), (1920, 1080)):
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) % 256], axis=2) // 2 + rng.integers(0, 60, size=(h, w, 3))
    for prog in (0, 1):
        Image.fromarray(rgb.astype(np.uint8)).save("%s/photo-%dx%d-prog%d.jpg" % (sys.argv[1], w, h, prog), quality=90, progressive=bool(prog))
`
	if out, err := exec.Command("/usr/bin/python3", "-c", script, dir).CombinedOutput(); err != nil {
		b.Logf("no PIL, Go's encoder instead: %v\n%s", err, out)
		files["go-photo-500x375.jpg"] = encoded(b, photo(500, 375, 1), func(w *bytes.Buffer, m image.Image) error {
			return jpeg.Encode(w, m, &jpeg.Options{Quality: 90})
		})
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	paths = append(paths, strings.Fields(os.Getenv("RESGO_BENCH_JPEGS"))...)
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		paths = append(paths, filepath.Join(strings.TrimSpace(string(out)), "src", "image", "testdata", "video-001.jpeg"))
	}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		files[filepath.Base(p)] = raw
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	resgo := "resgo-" + strings.ReplaceAll(jpegDecoder, "/", "-")
	decoders := map[string]func(raw []byte) (*transform.Image, error){
		"image-jpeg": func(raw []byte) (*transform.Image, error) {
			img, err := jpeg.Decode(bytes.NewReader(raw))
			if err != nil {
				return nil, err
			}
			return transform.FromImage(img, 3), nil
		},
		resgo: func(raw []byte) (*transform.Image, error) {
			return DecodeImage(bytes.NewReader(raw), "bench.jpg", 3)
		},
	}
	for _, name := range names {
		raw := files[name]
		for _, dec := range []string{"image-jpeg", resgo} {
			b.Run(fmt.Sprintf("%s/%s", name, dec), func(b *testing.B) {
				m, err := decoders[dec](raw)
				if err != nil {
					b.Skip(err)
				}
				b.SetBytes(int64(m.W * m.H * 3))
				for b.Loop() {
					if _, err := decoders[dec](raw); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
			})
		}
	}
}
