//go:build cgo

package data

/*
#cgo LDFLAGS: -ljpeg
#include "jpeg.h"
*/
import "C"

import (
	"fmt"
	"io"
	"unsafe"

	"github.com/resgo/resgo/transform"
)

// jpegDecoder names the JPEG decoder of this build.
const jpegDecoder = "libjpeg-turbo"

// A JPEG file is read into memory, at most as much as its image can
// need: libjpeg decodes from bytes in memory, and a file's declared size
// is checked before its pixel data is read.
const (
	// jpegHeadBytes is how much of a file is read for its header first:
	// the markers before the frame header (Exif with its thumbnail, ICC
	// profiles, XMP) nearly always fit.
	jpegHeadBytes = 64 << 10
	// jpegMarkerBytes bounds the markers before the frame header, and is
	// part of the bound on the whole file.
	jpegMarkerBytes = 16 << 20
	// jpegBytesPerPixel bounds the rest of the file: random noise at
	// quality 100 without chroma subsampling takes 4.1 bytes a pixel in
	// RGB, 6.3 in CMYK (PIL's encoder). Whatever follows is never read.
	jpegBytesPerPixel = 16
)

// jpegMaxScans is the most scans a JPEG may have. A progressive JPEG is
// written in scans, each of which goes over the whole image again: PIL's
// libjpeg writes 10 (6 for gray). But a file can repeat a scan many times
// at a few bytes each (libjpeg warns and goes on), and every one costs a
// pass over all the pixels: PIL took 21 s, and Go's image/jpeg 48 s, on a
// 99 KB file of a 4096x4096 image with 1,000 copies of its last scan.
// PIL reads any number.
const jpegMaxScans = 100

// decodeJPEG decodes the JPEG that is the whole of r (read from its start)
// exactly as PIL 9.4 opens it and converts it with convert("RGB") or
// convert("L"), with the same library (Debian's libjpeg62-turbo, PIL's
// libjpeg) and the same settings: the accurate integer inverse DCT, fancy
// chroma upsampling, libjpeg's YCbCr-to-RGB conversion, gray files as L,
// 4-component files (CMYK, YCCK) as Adobe's inverted CMYK converted with
// PIL's formulas. Unlike libjpeg by default, and as PIL, a file that ends
// before its image does (a truncated file) is an error, while libjpeg's
// warnings about corrupt data are not. The frame's size is checked
// against maxPixels before anything but the header is read, and a file of
// more than jpegMaxScans scans is refused.
func decodeJPEG(r io.ReadSeeker, name string, channels int, maxPixels int64) (*transform.Image, error) {
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := rewind(r, name); err != nil {
		return nil, err
	}
	var raw []byte
	readTo := func(n int64) error { // the file's first n bytes in raw
		n = min(n, size)
		if int64(len(raw)) >= n {
			return nil
		}
		more := make([]byte, n)
		copy(more, raw)
		if _, err := io.ReadFull(r, more[len(raw):]); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		raw = more
		return nil
	}

	// The header, from the file's first 64 KiB, else its first 16 MiB.
	var res C.resgo_jpeg_result
	for _, n := range []int64{jpegHeadBytes, jpegMarkerBytes} {
		if err := readTo(n); err != nil {
			return nil, err
		}
		res = C.resgo_jpeg_result{}
		if C.resgo_jpeg_header(bytesPtr(raw), C.size_t(len(raw)), &res) == 0 || res.ended == 0 || int64(len(raw)) == size {
			break
		}
	}
	if res.ended != 0 && int64(len(raw)) < size {
		return nil, fmt.Errorf("%s: not a readable jpeg image: no frame header in its first %d bytes", name, len(raw))
	}
	if res.message[0] != 0 {
		return nil, fmt.Errorf("%s: not a readable jpeg image: %s", name, C.GoString(&res.message[0]))
	}
	w, h := int(res.width), int(res.height)
	if err := checkSize(name, w, h, maxPixels); err != nil {
		return nil, err
	}

	// The pixels.
	limit := jpegMarkerBytes + jpegBytesPerPixel*int64(w)*int64(h)
	if err := readTo(limit); err != nil {
		return nil, err
	}
	out := transform.NewImage(w, h, channels)
	res = C.resgo_jpeg_result{}
	if C.resgo_jpeg_decode(bytesPtr(raw), C.size_t(len(raw)), C.int(w), C.int(h), C.int(channels), jpegMaxScans, bytesPtr(out.Pix), &res) != 0 {
		if res.ended != 0 && int64(len(raw)) < size {
			return nil, fmt.Errorf("%s: not a readable jpeg image: more than %d bytes for a %dx%d image (16 MiB and %d a pixel)", name, len(raw), w, h, jpegBytesPerPixel)
		}
		return nil, fmt.Errorf("%s: not a readable jpeg image: %s", name, C.GoString(&res.message[0]))
	}
	return out, nil
}

// bytesPtr returns the address of b's first byte, for C.
func bytesPtr(b []byte) *C.uchar {
	return (*C.uchar)(unsafe.Pointer(unsafe.SliceData(b)))
}
