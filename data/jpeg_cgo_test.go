//go:build cgo

package data

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The tests of what libjpeg-turbo (the build with cgo) does beyond
// decoding as PIL does: damaged files as PIL treats them, and resgo's own
// bounds.

// pilAccepts reports, for each file in dir, whether PIL opens and
// converts it to RGB without an error.
func pilAccepts(t *testing.T, dir string) map[string]bool {
	t.Helper()
	script := `
import os, sys
from PIL import Image
for name in sorted(os.listdir(sys.argv[1])):
    try:
        Image.open(os.path.join(sys.argv[1], name)).convert("RGB")
        print(name, "ok")
    except Exception as e:
        print(name, "error")
`
	out, err := exec.Command("/usr/bin/python3", "-c", script, dir).Output()
	if err != nil {
		t.Fatalf("PIL: %v", err)
	}
	ok := make(map[string]bool)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		ok[f[0]] = f[1] == "ok"
	}
	return ok
}

// TestJPEGDamagedAsPIL feeds damaged JPEGs, baseline and progressive:
// files cut short (by 2 bytes, its end marker only; by 3; at 99% and at
// 60%), with junk or zeros after the end, with stray bytes before the
// end marker, with a flipped byte and with a stray marker in the middle.
// Each is refused exactly where PIL refuses it, with a one-line error
// naming the file (PIL refuses truncated files: LOAD_TRUNCATED_IMAGES is
// False), and decoded to PIL's pixels where PIL decodes it (libjpeg's
// warnings about corrupt data are ignored, as PIL ignores them).
func TestJPEGDamagedAsPIL(t *testing.T) {
	src := jpegTestFiles(t)
	dir := t.TempDir()
	for _, base := range []string{"rgb-sub2-prog0-q75", "rgb-sub0-prog1-q95", "gray", "cmyk"} {
		raw, err := os.ReadFile(filepath.Join(src, base+".jpg"))
		if err != nil {
			t.Fatal(err)
		}
		n, mid := len(raw), len(raw)/2
		flipped := bytes.Clone(raw)
		flipped[mid] ^= 0x55
		cases := map[string][]byte{
			"cut2":      raw[:n-2],
			"cut3":      raw[:n-3],
			"cut99":     raw[:n*99/100],
			"cut60":     raw[:n*60/100],
			"junk":      append(bytes.Clone(raw), "junk after the end"...),
			"zeros":     append(bytes.Clone(raw), make([]byte, 1000)...),
			"stray":     append(append(bytes.Clone(raw[:n-2]), 0, 1, 2), raw[n-2:]...),
			"flipped":   flipped,
			"rstmarker": append(append(bytes.Clone(raw[:mid]), 0xff, 0xd3), raw[mid:]...),
		}
		for c, b := range cases {
			writeFile(t, filepath.Join(dir, base+"-"+c+".jpg"), b)
		}
	}
	accepts := pilAccepts(t, dir)
	want := pilConvert(t, dirOf(t, dir, accepts))
	refused := 0
	for name, ok := range accepts {
		path := filepath.Join(dir, name)
		got, err := LoadImage(path, 3)
		switch {
		case !ok && err == nil:
			t.Errorf("%s: decoded, PIL refuses it", name)
		case !ok:
			refused++
			if msg := err.Error(); !strings.HasPrefix(msg, path+": not a readable jpeg image: ") || strings.Contains(msg, "\n") {
				t.Errorf("%s: error %q is not one line naming the file", name, msg)
			}
		case err != nil:
			t.Errorf("%s: %v; PIL decodes it", name, err)
		case !bytes.Equal(got.Pix, want[name][0]):
			t.Errorf("%s: %d bytes differ from PIL's", name, countDiff(got.Pix, want[name][0]))
		}
	}
	t.Logf("%d damaged files, %d refused by PIL and by resgo", len(accepts), refused)
	if refused == 0 || refused == len(accepts) {
		t.Errorf("PIL refuses %d of %d damaged files: the cases do not test both outcomes", refused, len(accepts))
	}
}

// dirOf copies the files of dir that keep reports true for into a new
// folder.
func dirOf(t *testing.T, dir string, keep map[string]bool) string {
	t.Helper()
	out := t.TempDir()
	for name, ok := range keep {
		if ok {
			raw, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(out, name), raw)
		}
	}
	return out
}

// TestJPEGMarkerLimit feeds a JPEG with 17 MiB of markers before its
// frame header: refused, naming the bound.
func TestJPEGMarkerLimit(t *testing.T) {
	small := encoded(t, photo(40, 30, 5), func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, nil) })
	_, err := DecodeImage(bytes.NewReader(withMarkers(small, 17<<20)), "toofar.jpg", 3)
	want := fmt.Sprintf("toofar.jpg: not a readable jpeg image: no frame header in its first %d bytes", jpegMarkerBytes)
	if fmt.Sprint(err) != want {
		t.Errorf("17 MiB of markers before the frame: %v, want %s", err, want)
	}
}

// TestJPEGScanLimit repeats the last scan of a progressive JPEG (libjpeg
// warns and goes on, as PIL does): a file of jpegMaxScans scans decodes to
// PIL's pixels, one of a scan more is refused, naming the limit.
func TestJPEGScanLimit(t *testing.T) {
	src := jpegTestFiles(t)
	raw, err := os.ReadFile(filepath.Join(src, "gray-prog.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	scans := bytes.Count(raw, []byte{0xff, 0xda}) // 0xff in scan data is followed by 0
	last := bytes.LastIndex(raw, []byte{0xff, 0xda})
	withScans := func(n int) []byte { // the file with its last scan repeated up to n scans
		out := bytes.Clone(raw[:last])
		for range n - scans + 1 {
			out = append(out, raw[last:len(raw)-2]...)
		}
		return append(out, 0xff, 0xd9)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "at-limit.jpg"), withScans(jpegMaxScans))
	want := pilConvert(t, dir)["at-limit.jpg"][0]
	got, err := LoadImage(filepath.Join(dir, "at-limit.jpg"), 3)
	if err != nil || !bytes.Equal(got.Pix, want) {
		t.Errorf("%d scans (%d in the file as written): %v, or pixels unlike PIL's", jpegMaxScans, scans, err)
	}
	_, err = DecodeImage(bytes.NewReader(withScans(jpegMaxScans+1)), "over.jpg", 3)
	if msg := fmt.Sprint(err); msg != fmt.Sprintf("over.jpg: not a readable jpeg image: more than %d scans", jpegMaxScans) {
		t.Errorf("%d scans: %s", jpegMaxScans+1, msg)
	}
}
