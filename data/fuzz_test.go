package data

import (
	"bytes"
	"image"
	"image/jpeg"
	"strings"
	"testing"

	"github.com/resgo/resgo/transform"
)

// fuzzMaxPixels is the pixel limit of FuzzDecodeImage: 256x256, small so
// that each input decodes fast and an allocation beyond the limit's worth
// stands out.
const fuzzMaxPixels = 1 << 16

// fuzzMaxAlloc bounds what decoding one input may allocate under
// fuzzMaxPixels: the decoders' fixed buffers (bufio, zlib and LZW
// windows, Huffman tables: well under 4 MiB) plus 128 bytes a pixel,
// which covers the worst per-pixel costs (a 16-bit RGBA PNG's 8 bytes, a
// progressive JPEG's coefficients for a frame rounded up to whole
// macroblocks, WebP's alpha and transform planes) many times over, and is
// a tiny fraction of what a header declaring beyond the limit would cost.
const fuzzMaxAlloc = 4<<20 + 128*fuzzMaxPixels

// FuzzDecodeImage feeds arbitrary bytes to the decoding path of predict,
// train, eval and serve (format sniffing, the pixel limit, the decoder,
// the conversion to RGB and grayscale): it must never panic, must return
// an image within the limit or a one-line error naming the input, and
// must never allocate beyond the limit's worth.
func FuzzDecodeImage(f *testing.F) {
	for _, raw := range alphaImages(f, 6, 4) { // small: fast to mutate and minimize
		f.Add(raw)
	}
	for _, format := range []string{"png", "gif", "bmp", "jpeg", "tiff"} {
		f.Add(withSize(f, format, 300, 300)) // beyond the limit, pixels of a 16x16
		f.Add(withSize(f, format, 16, 16))
	}
	f.Add(encoded(f, photo(33, 17, 1), func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, nil) }))
	gray := image.NewGray(image.Rect(0, 0, 19, 9))
	f.Add(encoded(f, gray, func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, nil) }))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, ch := range []int{3, 1} {
			var err error
			n := allocated(func() {
				var m *transform.Image
				m, err = decodeImage(bytes.NewReader(raw), "input", ch, fuzzMaxPixels)
				if err == nil {
					if m.W < 1 || m.H < 1 || int64(m.W)*int64(m.H) > fuzzMaxPixels || m.C != ch || len(m.Pix) != m.W*m.H*ch {
						t.Errorf("decoded %dx%dx%d with %d bytes (limit %d pixels)", m.W, m.H, m.C, len(m.Pix), fuzzMaxPixels)
					}
				}
			})
			if err != nil && (!strings.HasPrefix(err.Error(), "input: ") || strings.Contains(err.Error(), "\n")) {
				t.Errorf("error %q is not one line naming the input", err)
			}
			if n > fuzzMaxAlloc {
				// Measure again: the count is the whole process's, and the
				// fuzzing engine's own goroutines allocate now and then.
				n = min(n, allocated(func() { decodeImage(bytes.NewReader(raw), "input", ch, fuzzMaxPixels) }))
			}
			if n > fuzzMaxAlloc {
				t.Errorf("%d channels: decoding %d bytes allocated %d bytes, more than %d (error: %v)", ch, len(raw), n, fuzzMaxAlloc, err)
			}
		}
	})
}
