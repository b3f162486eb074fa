package data

import (
	"bytes"
	"compress/lzw"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// pilRequired reports whether the PIL comparisons must run (in CI) rather
// than skip when Debian's python3-pil is missing.
func pilRequired() bool {
	return os.Getenv("CI") == "true" || os.Getenv("RESGO_REQUIRE_TORCH") == "1"
}

// needPIL skips the test when /usr/bin/python3 cannot import PIL, or fails
// it where PIL is required.
func needPIL(t *testing.T) {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import PIL").Run(); err != nil {
		if pilRequired() {
			t.Fatal("python3-pil is required in CI:", err)
		}
		t.Skip("no python3-pil")
	}
}

// pngChunk appends a PNG chunk with its length and CRC.
func pngChunk(b *bytes.Buffer, typ string, data []byte) {
	binary.Write(b, binary.BigEndian, uint32(len(data)))
	c := crc32.NewIEEE()
	b.WriteString(typ)
	c.Write([]byte(typ))
	b.Write(data)
	c.Write(data)
	binary.Write(b, binary.BigEndian, c.Sum32())
}

// rawPNG writes a PNG of any colour type and bit depth from its packed
// rows (rowBytes each, without filter bytes), with optional PLTE and tRNS
// chunks: Go's encoder writes neither gray with alpha, nor a transparent
// colour, nor 16-bit gray with one.
func rawPNG(w, h int, depth, colorType byte, rowBytes int, rows, plte, trns []byte) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = depth, colorType
	pngChunk(&b, "IHDR", ihdr)
	if plte != nil {
		pngChunk(&b, "PLTE", plte)
	}
	if trns != nil {
		pngChunk(&b, "tRNS", trns)
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	for y := range h {
		zw.Write([]byte{0})
		zw.Write(rows[y*rowBytes : (y+1)*rowBytes])
	}
	zw.Close()
	pngChunk(&b, "IDAT", z.Bytes())
	pngChunk(&b, "IEND", nil)
	return b.Bytes()
}

// rawGIF writes a one-frame GIF: a w x h logical screen with a global
// table, then optionally a graphic control extension with a transparent
// index, then a frame at (fx, fy) of size fw x fh with an optional local
// table; pix are the frame's indexes.
func rawGIF(w, h int, global []byte, trans int, fx, fy, fw, fh int, local, pix []byte) []byte {
	tableBits := func(t []byte) byte { // the size field of a table of len(t)/3 entries
		n := byte(0)
		for 3<<(n+1) < len(t) {
			n++
		}
		return 0x80 | n
	}
	var b bytes.Buffer
	b.WriteString("GIF89a")
	le := binary.LittleEndian
	b.Write(le.AppendUint16(le.AppendUint16(nil, uint16(w)), uint16(h)))
	b.Write([]byte{tableBits(global), 0, 0})
	b.Write(global)
	if trans >= 0 {
		b.Write([]byte{0x21, 0xf9, 4, 1, 0, 0, byte(trans), 0})
	}
	b.WriteByte(0x2c)
	desc := le.AppendUint16(le.AppendUint16(le.AppendUint16(le.AppendUint16(nil, uint16(fx)), uint16(fy)), uint16(fw)), uint16(fh))
	b.Write(desc)
	if local != nil {
		b.WriteByte(tableBits(local))
		b.Write(local)
	} else {
		b.WriteByte(0)
	}
	const litWidth = 8
	b.WriteByte(litWidth)
	var z bytes.Buffer
	lw := lzw.NewWriter(&z, lzw.LSB, litWidth)
	lw.Write(pix)
	lw.Close()
	for data := z.Bytes(); len(data) > 0; {
		n := min(len(data), 255)
		b.WriteByte(byte(n))
		b.Write(data[:n])
		data = data[n:]
	}
	b.Write([]byte{0, 0x3b})
	return b.Bytes()
}

// noise returns n pseudo-random bytes.
func noise(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 5))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.IntN(256))
	}
	return p
}

// encoded returns an image encoded by one of Go's encoders.
func encoded(t testing.TB, img image.Image, enc func(*bytes.Buffer, image.Image) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := enc(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// alphaImages returns w x h files of every kind that carries alpha or 16 bits
// that Go decodes, and some plain ones, by name: 8-bit semi-transparent
// RGBA (alpha 0 to 255, so a premultiplication would show), 16-bit RGBA,
// RGB, gray and gray with alpha, transparent colours in RGB, gray and
// 16-bit gray, palettes with transparency, low bit depths, GIFs with a
// transparent index, an offset frame and a local table, and TIFFs.
func alphaImages(t testing.TB, w, h int) map[string][]byte {
	pal := noise(3*200, 9) // 200 entries, fewer than the 256 indexes used
	var palIdx []byte
	for _, v := range noise(w*h, 10) {
		palIdx = append(palIdx, v%200)
	}
	nrgba := image.NewNRGBA(image.Rect(0, 0, w, h))
	copy(nrgba.Pix, noise(len(nrgba.Pix), 11))
	rgba := image.NewRGBA(image.Rect(0, 0, w, h)) // premultiplied, valid: colour <= alpha
	for i, v := range noise(len(rgba.Pix), 12) {
		if i%4 == 3 {
			rgba.Pix[i] = max(v, 1)
			for c := 1; c <= 3; c++ {
				rgba.Pix[i-c] = uint8(int(rgba.Pix[i-c]) * int(rgba.Pix[i]) / 255)
			}
		} else {
			rgba.Pix[i] = v
		}
	}
	gray16 := []byte{0, 0, 0, 1, 0, 100, 0, 254, 0, 255, 1, 0, 1, 1, 2, 3, 128, 0, 255, 255}
	gray16 = append(gray16, noise(2*w*h-len(gray16), 13)...)
	for i := 20; i < len(gray16); i += 4 {
		gray16[i] = 0 // many levels below 256, some above
	}
	nrgba64 := image.NewNRGBA64(image.Rect(0, 0, w, h))
	copy(nrgba64.Pix, noise(len(nrgba64.Pix), 19))
	rgba64 := image.NewRGBA64(image.Rect(0, 0, w, h))
	copy(rgba64.Pix, noise(len(rgba64.Pix), 20))
	for i := 6; i < len(rgba64.Pix); i += 8 {
		rgba64.Pix[i], rgba64.Pix[i+1] = 0xff, 0xff // opaque
	}
	g16 := image.NewGray16(image.Rect(0, 0, w, h))
	copy(g16.Pix, gray16)
	pngEnc := func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) }
	tiffEnc := func(b *bytes.Buffer, m image.Image) error { return tiff.Encode(b, m, nil) }
	bmpEnc := func(b *bytes.Buffer, m image.Image) error { return bmp.Encode(b, m) }
	frame := noise(w*h, 14)
	for i := range frame {
		frame[i] %= 4
	}
	return map[string][]byte{
		"rgba8.png":        rawPNG(w, h, 8, 6, 4*w, noise(4*w*h, 1), nil, nil),
		"rgba8-go.png":     encoded(t, nrgba, pngEnc),
		"rgba16.png":       rawPNG(w, h, 16, 6, 8*w, noise(8*w*h, 2), nil, nil),
		"rgb16.png":        rawPNG(w, h, 16, 2, 6*w, noise(6*w*h, 3), nil, nil),
		"rgb16-trns.png":   rawPNG(w, h, 16, 2, 6*w, noise(6*w*h, 3), nil, []byte{1, 2, 3, 4, 5, 6}),
		"gray-alpha8.png":  rawPNG(w, h, 8, 4, 2*w, noise(2*w*h, 4), nil, nil),
		"gray-alpha16.png": rawPNG(w, h, 16, 4, 4*w, noise(4*w*h, 5), nil, nil),
		"gray16.png":       rawPNG(w, h, 16, 0, 2*w, gray16, nil, nil),
		"gray16-trns.png":  rawPNG(w, h, 16, 0, 2*w, gray16, nil, []byte{0, 100}),
		"rgb8-trns.png":    rawPNG(w, h, 8, 2, 3*w, noise(3*w*h, 6), nil, []byte{0, 7, 0, 8, 0, 9}),
		"gray8-trns.png":   rawPNG(w, h, 8, 0, w, noise(w*h, 7), nil, []byte{0, 77}),
		"gray8.png":        rawPNG(w, h, 8, 0, w, noise(w*h, 8), nil, nil),
		"gray2.png":        rawPNG(w, h, 2, 0, (w+3)/4, noise((w+3)/4*h, 15), nil, nil),
		"gray1.png":        rawPNG(w, h, 1, 0, (w+7)/8, noise((w+7)/8*h, 16), nil, nil),
		"palette-trns.png": rawPNG(w, h, 8, 3, w, palIdx, pal, noise(150, 17)),
		"palette4.png":     rawPNG(w, h, 4, 3, (w+1)/2, noise((w+1)/2*h, 18), pal[:48], []byte{0, 128}),
		"trans.gif":        rawGIF(w, h, pal[:12], 1, 0, 0, w, h, nil, frame),
		"offset.gif":       rawGIF(w+5, h+3, pal[:12], -1, 3, 2, w, h, nil, frame),
		"offset-trans.gif": rawGIF(w+5, h+3, pal[:12], 2, 3, 2, w, h, nil, frame),
		"local-trans.gif":  rawGIF(w+5, h+3, pal[:12], 1, 5, 3, w, h, pal[300:312], frame),
		"go.gif":           encoded(t, nrgba, func(b *bytes.Buffer, m image.Image) error { return gif.Encode(b, m, nil) }),
		"nrgba.tiff":       encoded(t, nrgba, tiffEnc),
		"nrgba64.tiff":     encoded(t, nrgba64, tiffEnc),
		"rgb64.tiff":       encoded(t, rgba64, tiffEnc),
		"gray16.tiff":      encoded(t, g16, tiffEnc),
		"rgba.tiff":        encoded(t, rgba, tiffEnc),
		"rgb.bmp":          encoded(t, photo(w, h, 3), bmpEnc),
		"nrgba.bmp":        encoded(t, nrgba, bmpEnc),
	}
}

// pilConvert returns PIL's Image.convert("RGB") and convert("L") of each
// file in dir, by name.
func pilConvert(t *testing.T, dir string) map[string][2][]byte {
	t.Helper()
	script := `
import json, os, sys, warnings
from PIL import Image
warnings.simplefilter("ignore")
out = {}
for name in sorted(os.listdir(sys.argv[1])):
    im = Image.open(os.path.join(sys.argv[1], name))
    out[name] = [im.mode, im.size, im.convert("RGB").tobytes().hex(), im.convert("L").tobytes().hex()]
print(json.dumps(out))
`
	raw, err := exec.Command("/usr/bin/python3", "-c", script, dir).Output()
	if err != nil {
		t.Fatalf("PIL: %v", err)
	}
	var res map[string][4]any
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	out := make(map[string][2][]byte)
	for name, r := range res {
		var conv [2][]byte
		for i := range 2 {
			var b []byte
			fmt.Sscanf(r[2+i].(string), "%x", &b)
			conv[i] = b
		}
		out[name] = conv
		t.Logf("%s: PIL mode %v, size %v", name, r[0], r[1])
	}
	return out
}

// TestDecodeMatchesPIL decodes images with alpha, transparent colours,
// palettes and 16-bit channels and compares their RGB and grayscale
// pixels with PIL's convert("RGB") and convert("L") of the same files,
// byte for byte.
func TestDecodeMatchesPIL(t *testing.T) {
	needPIL(t)
	dir := t.TempDir()
	files := alphaImages(t, 37, 23)
	for name, raw := range files {
		writeFile(t, filepath.Join(dir, name), raw)
	}
	want := pilConvert(t, dir)
	for name := range files {
		for i, ch := range []int{3, 1} {
			got, err := LoadImage(filepath.Join(dir, name), ch)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			w := want[name][i]
			if len(got.Pix) != len(w) {
				t.Errorf("%s, %d channels: %dx%d (%d bytes), PIL %d bytes", name, ch, got.W, got.H, len(got.Pix), len(w))
				continue
			}
			if diff := countDiff(got.Pix, w); diff > 0 {
				at := firstDiff(got.Pix, w)
				t.Errorf("%s, %d channels: %d of %d bytes differ from PIL (first at %d: %d, PIL %d)", name, ch, diff, len(w), at, got.Pix[at], w[at])
			}
		}
	}
}

func countDiff(a, b []byte) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// TestAlphaIgnored checks that alpha changes no pixel: a semi-transparent
// image decodes to the same RGB and gray pixels as its opaque twin with
// the same stored colours, whatever its alpha.
func TestAlphaIgnored(t *testing.T) {
	const w, h = 40, 30
	seeThrough := image.NewNRGBA(image.Rect(0, 0, w, h))
	copy(seeThrough.Pix, noise(len(seeThrough.Pix), 21))
	opaque := image.NewNRGBA(seeThrough.Rect)
	copy(opaque.Pix, seeThrough.Pix)
	for i := 3; i < len(opaque.Pix); i += 4 {
		opaque.Pix[i] = 255
	}
	for _, ch := range []int{3, 1} {
		a, err := DecodeImage(bytes.NewReader(encoded(t, seeThrough, func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) })), "alpha.png", ch)
		if err != nil {
			t.Fatal(err)
		}
		b, err := DecodeImage(bytes.NewReader(encoded(t, opaque, func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) })), "opaque.png", ch)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Pix, b.Pix) {
			t.Errorf("%d channels: alpha changes %d of %d bytes", ch, countDiff(a.Pix, b.Pix), len(a.Pix))
		}
	}
}

// withSize returns an encoded image with the width and height in its
// header replaced, its pixel data left as it was: a small file that
// declares a huge image.
func withSize(t testing.TB, format string, w, h int) []byte {
	t.Helper()
	return withSizeFrom(t, format, photo(16, 16, 1), w, h)
}

// withSizeFrom is withSize on the encoding of small.
func withSizeFrom(t testing.TB, format string, small image.Image, w, h int) []byte {
	t.Helper()
	switch format {
	case "png":
		raw := encoded(t, small, func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) })
		binary.BigEndian.PutUint32(raw[16:], uint32(w))
		binary.BigEndian.PutUint32(raw[20:], uint32(h))
		binary.BigEndian.PutUint32(raw[29:], crc32.ChecksumIEEE(raw[12:29]))
		return raw
	case "gif":
		raw := encoded(t, small, func(b *bytes.Buffer, m image.Image) error { return gif.Encode(b, m, nil) })
		binary.LittleEndian.PutUint16(raw[6:], uint16(w))
		binary.LittleEndian.PutUint16(raw[8:], uint16(h))
		return raw
	case "bmp":
		raw := encoded(t, small, func(b *bytes.Buffer, m image.Image) error { return bmp.Encode(b, m) })
		binary.LittleEndian.PutUint32(raw[18:], uint32(w))
		binary.LittleEndian.PutUint32(raw[22:], uint32(h))
		return raw
	case "jpeg":
		raw := encoded(t, small, func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, nil) })
		sof := bytes.Index(raw, []byte{0xff, 0xc0})
		binary.BigEndian.PutUint16(raw[sof+5:], uint16(h))
		binary.BigEndian.PutUint16(raw[sof+7:], uint16(w))
		return raw
	case "tiff":
		raw := encoded(t, small, func(b *bytes.Buffer, m image.Image) error { return tiff.Encode(b, m, nil) })
		// Go writes ImageWidth (256) and ImageLength (257) as SHORTs (3):
		// tag, type, count, value, little-endian.
		le := binary.LittleEndian
		for i := 8; i+12 <= len(raw); i += 2 {
			if tag := le.Uint16(raw[i:]); (tag == 256 || tag == 257) && le.Uint16(raw[i+2:]) == 3 && le.Uint32(raw[i+4:]) == 1 {
				le.PutUint16(raw[i+8:], uint16(map[uint16]int{256: w, 257: h}[tag]))
			}
		}
		return raw
	}
	t.Fatalf("format %s", format)
	return nil
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestDecompressionBomb feeds files whose headers declare 60000x60000 (and
// other sizes over the limit) and checks that they are refused from their
// header, with an error that names the file, the declared size and the
// limit, having allocated next to nothing.
func TestDecompressionBomb(t *testing.T) {
	for _, format := range []string{"png", "gif", "bmp", "jpeg", "tiff"} {
		w, h := 60000, 60000
		if format == "gif" {
			w, h = 65535, 2000 // GIF sizes are 16-bit
		}
		raw := withSize(t, format, w, h)
		name := "bomb." + format
		var err error
		n := allocated(func() { _, err = DecodeImage(bytes.NewReader(raw), name, 3) })
		if err == nil {
			t.Errorf("%s declaring %dx%d decoded", format, w, h)
			continue
		}
		msg := err.Error()
		size := fmt.Sprintf("%dx%d", w, h)
		if !strings.HasPrefix(msg, name+": ") || !strings.Contains(msg, size) || !strings.Contains(msg, fmt.Sprint(DefaultMaxPixels)) || strings.Contains(msg, "\n") {
			t.Errorf("%s: error %q does not name the file, the size %s and the limit %d on one line", format, msg, size, DefaultMaxPixels)
		}
		if n > 1<<20 {
			t.Errorf("%s: refusing a %s image allocated %d bytes", format, size, n)
		}
	}

	// A whole image over a lower limit is refused; one at the limit is not.
	raw := encoded(t, photo(300, 200, 2), func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) })
	if _, err := decodeImage(bytes.NewReader(raw), "big.png", 3, 300*200-1); err == nil || !strings.Contains(err.Error(), "300x200 = 60000 pixels, more than the limit of 59999") {
		t.Errorf("300x200 over a limit of 59999: %v", err)
	}
	if m, err := decodeImage(bytes.NewReader(raw), "big.png", 3, 300*200); err != nil || m.W != 300 || m.H != 200 {
		t.Errorf("300x200 at a limit of 60000: %v", err)
	}
}

// TestLoadImageBomb is the bomb through a file and LoadImage, as predict,
// train and eval read it, in every format with 16 MiB of junk after it:
// refused from its header, without reading the rest of the file. The
// TIFF has its directory (the header that gives the size) after 12 MiB of
// pixels, as Go writes TIFFs: it is read at its offset, not by reading
// the file up to it.
func TestLoadImageBomb(t *testing.T) {
	dir := t.TempDir()
	for _, format := range []string{"png", "gif", "bmp", "jpeg", "tiff"} {
		w, h := 60000, 60000
		if format == "gif" {
			w, h = 65535, 2000
		}
		raw := withSize(t, format, w, h)
		if format == "tiff" {
			raw = withSizeFrom(t, format, image.NewRGBA(image.Rect(0, 0, 2048, 1536)), w, h)
		}
		path := filepath.Join(dir, "bomb."+format)
		writeFile(t, path, append(raw, make([]byte, 16<<20)...))
		var err error
		n := allocated(func() { _, err = LoadImage(path, 3) })
		want := fmt.Sprintf("%s: image of %dx%d = %d pixels, more than the limit of %d (--max-pixels)", path, w, h, w*h, DefaultMaxPixels)
		if err == nil || err.Error() != want {
			t.Errorf("LoadImage of a %dx%d %s header: %v, want %s", w, h, format, err, want)
		}
		if n > 1<<20 {
			t.Errorf("%s: refusing it allocated %d bytes", format, n)
		}
	}
}

// TestDecodeErrors checks broken input: each error is one line that names
// the file.
func TestDecodeErrors(t *testing.T) {
	good := encoded(t, photo(20, 10, 4), func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) })
	cases := map[string]struct {
		raw      []byte
		channels int
		want     string
	}{
		"empty":      {nil, 3, "not a readable image"},
		"text":       {[]byte("hello, world"), 3, "not a readable image"},
		"truncated":  {good[:len(good)/2], 3, "not a readable png image"},
		"zero width": {withSize(t, "gif", 0, 10), 3, "empty image (0x10)"},
		"channels":   {good, 2, "cannot convert an image to 2 channels"},
	}
	for name, tc := range cases {
		_, err := DecodeImage(bytes.NewReader(tc.raw), name, tc.channels)
		if err == nil || !strings.HasPrefix(err.Error(), name+": ") || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v, want one line with %q", name, err, tc.want)
		}
	}
}

// TestDecodeGIFFrame checks a GIF whose first frame is smaller than its
// screen without PIL: the image is the screen's size, the frame in place,
// the rest the transparent index's stored colour.
func TestDecodeGIFFrame(t *testing.T) {
	global := []byte{10, 20, 30, 200, 100, 50, 7, 8, 9, 255, 0, 128}
	raw := rawGIF(5, 3, global, 1, 1, 1, 4, 2, nil, []byte{0, 1, 2, 3, 3, 2, 1, 0})
	m, err := DecodeImage(bytes.NewReader(raw), "t.gif", 3)
	if err != nil {
		t.Fatal(err)
	}
	c := func(i int) []byte { return global[3*i : 3*i+3] }
	var want []byte
	for _, i := range []int{1, 1, 1, 1, 1, 1, 0, 1, 2, 3, 1, 3, 2, 1, 0} {
		want = append(want, c(i)...)
	}
	if m.W != 5 || m.H != 3 || !bytes.Equal(m.Pix, want) {
		t.Errorf("got %dx%d %v, want 5x3 %v", m.W, m.H, m.Pix, want)
	}
}

// TestDecodeUsesStoredColours checks FromImage on a paletted image and a
// premultiplied one, without PIL.
func TestDecodeUsesStoredColours(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	copy(img.Pix, []uint8{200, 100, 50, 0, 10, 20, 30, 128})
	m, err := DecodeImage(bytes.NewReader(encoded(t, img, func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) })), "x.png", 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint8{200, 100, 50, 10, 20, 30}; !bytes.Equal(m.Pix, want) {
		t.Errorf("RGB %v, want the stored colours %v", m.Pix, want)
	}
	g, err := DecodeImage(bytes.NewReader(encoded(t, img, func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) })), "x.png", 1)
	if err != nil {
		t.Fatal(err)
	}
	// (19595*200 + 38470*100 + 7471*50 + 32768) >> 16 = 124; (..10, 20, 30..) = 18.
	if want := []uint8{124, 18}; !bytes.Equal(g.Pix, want) {
		t.Errorf("L %v, want %v", g.Pix, want)
	}
}
