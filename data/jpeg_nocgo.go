//go:build !cgo

package data

import (
	"fmt"
	"image/jpeg"
	"io"

	"github.com/resgo/resgo/transform"
)

// jpegDecoder names the JPEG decoder of this build.
const jpegDecoder = "image/jpeg"

// decodeJPEG decodes the JPEG that is the whole of r (read from its start)
// with Go's image/jpeg, in the build without cgo, and converts it as
// transform.FromImage does. Go's decoder is not libjpeg: its inverse DCT,
// chroma upsampling and colour conversions round differently, so the
// pixels are close to PIL's but not equal (0.2 to 1.6 levels on average
// on the photos of Go's own tests, 7 to 8 on 1-pixel colour stripes with
// subsampled chroma: TestJPEGMatchesPIL), and it refuses some files PIL
// reads (arithmetic coding, 3x1 chroma subsampling, progressive files
// with restart markers). The build with cgo decodes as PIL does
// (jpeg_cgo.go). The frame's size is checked against maxPixels before
// the pixels are decoded.
func decodeJPEG(r io.ReadSeeker, name string, channels int, maxPixels int64) (*transform.Image, error) {
	if err := rewind(r, name); err != nil {
		return nil, err
	}
	cfg, err := jpeg.DecodeConfig(r)
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable image: %w", name, err)
	}
	if err := checkSize(name, cfg.Width, cfg.Height, maxPixels); err != nil {
		return nil, err
	}
	if err := rewind(r, name); err != nil {
		return nil, err
	}
	img, err := jpeg.Decode(r)
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable jpeg image: %w", name, err)
	}
	b := img.Bounds()
	if err := checkSize(name, b.Dx(), b.Dy(), maxPixels); err != nil { // a decoder that disagrees with its header
		return nil, err
	}
	return transform.FromImage(img, channels), nil
}
