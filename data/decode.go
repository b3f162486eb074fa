package data

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"

	"golang.org/x/image/tiff"

	"github.com/resgo/resgo/transform"
)

// DefaultMaxPixels is the default of MaxPixels: 2^26 = 67,108,864 pixels,
// an 8192x8192 image. It admits the photos of today's largest full-frame
// cameras (61 megapixels, 9504x6336) and refuses medium format (100
// megapixels and more) and beyond, for what one image costs on its way to
// a tensor, per pixel: the decoded image 1 to 4 bytes (8 for 16-bit RGBA
// PNGs and TIFFs; progressive JPEGs 2 to 6 more for their coefficients),
// the 8-bit RGB copy 3, and a preprocessing without resizing 12 (float32
// RGB). At the limit that is 0.5 to 1.5 GiB for one image, and training
// decodes several at once; 100 to 180 megapixels would double it. Larger
// images need --max-pixels.
const DefaultMaxPixels = 1 << 26

// MaxPixels is the largest image, in pixels (width x height), that
// DecodeImage and LoadImage decode (and through them predict, train, eval
// and serve): an image whose header declares more is refused before any
// of its pixels is decoded, so a small file declaring a huge image (a
// decompression bomb) costs nothing. The commands' --max-pixels flag sets
// it; set it before decoding starts.
var MaxPixels int64 = DefaultMaxPixels

// DecodeImage decodes the image that is the whole of r (JPEG, PNG, GIF,
// BMP, TIFF or WebP; r is read from its start) into an 8-bit image with
// the given number of channels (3: RGB, 1: grayscale), as PIL opens the
// file and converts it with Image.convert("RGB") or convert("L")
// (transform.FromImage says how; a GIF is the size of its logical screen
// with its first frame in place, as PIL opens it). JPEGs are decoded by
// libjpeg-turbo, PIL's decoder, with PIL's settings, to the same bytes as
// PIL's (a truncated JPEG is an error, as in PIL); a build without cgo
// decodes them with Go's image/jpeg, whose pixels are close to PIL's but
// not equal (see decodeJPEG in jpeg_nocgo.go). name labels the errors:
// the file's path, or where the bytes came from. An image of more than
// MaxPixels pixels is refused from its header, before its pixels are
// decoded.
func DecodeImage(r io.ReadSeeker, name string, channels int) (*transform.Image, error) {
	return decodeImage(r, name, channels, MaxPixels)
}

// decodeImage is DecodeImage with the pixel limit given.
func decodeImage(r io.ReadSeeker, name string, channels int, maxPixels int64) (*transform.Image, error) {
	if channels != 1 && channels != 3 {
		return nil, fmt.Errorf("%s: cannot convert an image to %d channels (1 or 3)", name, channels)
	}
	if err := rewind(r, name); err != nil {
		return nil, err
	}
	var head [26]byte // a PNG's signature and IHDR up to its colour type
	n, err := io.ReadFull(r, head[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if n >= 2 && string(head[:2]) == "\xff\xd8" { // a JPEG, as image.Decode recognizes one
		return decodeJPEG(r, name, channels, maxPixels)
	}
	// TIFFs go straight to their decoder, which reads an io.ReaderAt (a
	// file, bytes) where it is one: through image.Decode's buffering it
	// would hold the file in memory up to the furthest offset it reads,
	// which the file chooses (its directory may come after gigabytes).
	isTIFF := n >= 4 && (string(head[:4]) == "II*\x00" || string(head[:4]) == "MM\x00*")
	if err := rewind(r, name); err != nil {
		return nil, err
	}
	var cfg image.Config
	format := "tiff"
	if isTIFF {
		cfg, err = tiff.DecodeConfig(r)
	} else {
		cfg, format, err = image.DecodeConfig(r)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable image: %w", name, err)
	}
	if err := checkSize(name, cfg.Width, cfg.Height, maxPixels); err != nil {
		return nil, err
	}
	if err := rewind(r, name); err != nil {
		return nil, err
	}
	var img image.Image
	if isTIFF {
		img, err = tiff.Decode(r)
	} else {
		img, _, err = image.Decode(r)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable %s image: %w", name, format, err)
	}
	if format == "gif" {
		if img, err = gifAsPIL(r, img, cfg); err != nil {
			return nil, fmt.Errorf("%s: not a readable gif image: %w", name, err)
		}
	}
	b := img.Bounds()
	if err := checkSize(name, b.Dx(), b.Dy(), maxPixels); err != nil { // a decoder that disagrees with its header
		return nil, err
	}
	if format == "png" && n == len(head) && head[24] == 16 && head[25] == 0 {
		// 16-bit grayscale: PIL's mode I clips the levels where it
		// truncates other 16-bit PNGs; Go decodes one with a transparent
		// level as NRGBA64, like gray with alpha.
		return transform.FromGray16(img, channels), nil
	}
	return transform.FromImage(img, channels), nil
}

// checkSize refuses an empty image or one of more than maxPixels pixels.
func checkSize(name string, w, h int, maxPixels int64) error {
	if w < 1 || h < 1 {
		return fmt.Errorf("%s: empty image (%dx%d)", name, w, h)
	}
	if px := int64(w) * int64(h); px > maxPixels {
		return fmt.Errorf("%s: image of %dx%d = %d pixels, more than the limit of %d (--max-pixels)", name, w, h, px, maxPixels)
	}
	return nil
}

// rewind seeks r back to its start.
func rewind(r io.Seeker, name string) error {
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// gifAsPIL returns the first frame of a GIF as PIL 9.4 opens it: the size
// of the logical screen, the area outside the frame filled with the
// transparent index (index 0 when there is none), and the transparent
// index keeping the colour of its colour table entry, which Go's decoder
// replaces with transparent black. frame is what image.Decode returned
// from r, cfg what image.DecodeConfig did.
func gifAsPIL(r io.ReadSeeker, frame image.Image, cfg image.Config) (image.Image, error) {
	m, ok := frame.(*image.Paletted)
	if !ok {
		return frame, nil
	}
	if err := rewind(r, "gif"); err != nil {
		return nil, err
	}
	table, trans, err := gifFirstTable(bufio.NewReader(r))
	if err != nil {
		return nil, err
	}
	if trans >= 0 && trans < len(m.Palette) && 3*trans+2 < len(table) {
		m.Palette[trans] = color.RGBA{table[3*trans], table[3*trans+1], table[3*trans+2], 0xff}
	}
	screen := image.Rect(0, 0, cfg.Width, cfg.Height)
	if m.Rect == screen {
		return m, nil
	}
	full := image.NewPaletted(screen, m.Palette)
	if trans > 0 { // index 0 needs no filling
		for i := range full.Pix {
			full.Pix[i] = uint8(trans)
		}
	}
	part := m.Rect.Intersect(screen)
	for y := part.Min.Y; y < part.Max.Y; y++ {
		copy(full.Pix[full.PixOffset(part.Min.X, y):full.PixOffset(part.Max.X, y)], m.Pix[m.PixOffset(part.Min.X, y):])
	}
	return full, nil
}

// gifFirstTable reads a GIF up to its first image and returns the colour
// table that image uses (its local table, or the global one; RGB triples)
// and the transparent index that Go's decoder gives it (the last graphic
// control extension before it that sets one; -1 for none).
func gifFirstTable(r *bufio.Reader) (table []byte, trans int, err error) {
	var hdr [13]byte // signature, version, logical screen descriptor
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, -1, err
	}
	readTable := func(flags byte) ([]byte, error) {
		if flags&0x80 == 0 {
			return nil, nil
		}
		t := make([]byte, 3<<(flags&7+1)) // at most 768 bytes
		_, err := io.ReadFull(r, t)
		return t, err
	}
	global, err := readTable(hdr[10])
	if err != nil {
		return nil, -1, err
	}
	trans = -1
	for {
		c, err := r.ReadByte()
		if err != nil {
			return nil, -1, err
		}
		switch c {
		case 0x21: // extension: a label, then data sub-blocks
			label, err := r.ReadByte()
			if err != nil {
				return nil, -1, err
			}
			first := true
			var block [255]byte
			for {
				size, err := r.ReadByte()
				if err != nil {
					return nil, -1, err
				}
				if size == 0 {
					break
				}
				if _, err := io.ReadFull(r, block[:size]); err != nil {
					return nil, -1, err
				}
				if label == 0xf9 && first && size >= 4 && block[0]&1 != 0 {
					trans = int(block[3])
				}
				first = false
			}
		case 0x2c: // image descriptor
			var desc [9]byte
			if _, err := io.ReadFull(r, desc[:]); err != nil {
				return nil, -1, err
			}
			local, err := readTable(desc[8])
			if err != nil {
				return nil, -1, err
			}
			if local != nil {
				return local, trans, nil
			}
			return global, trans, nil
		default:
			return nil, -1, fmt.Errorf("no image before byte %#x", c)
		}
	}
}
