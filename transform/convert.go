package transform

import (
	"fmt"
	"image"
	"image/color"
)

// FromImage converts a decoded image to RGB (channels 3) or grayscale
// (channels 1) as PIL's Image.convert("RGB") and convert("L") do on the
// image PIL opens from the same file:
//
//   - alpha is dropped, never multiplied into the colours: an NRGBA or
//     NRGBA64 pixel (PNG with alpha or with a transparent colour, gray with
//     alpha, lossless WebP, BMP) keeps its stored colour, a paletted pixel
//     the colour of its palette entry; a premultiplied RGBA pixel that is
//     not opaque (a TIFF with associated alpha) is divided by its alpha as
//     PIL does (c*255/a, truncated; 16-bit ones as Go's NRGBA64 model);
//   - 16-bit colour channels keep their high byte (PIL reads 16-bit RGB,
//     RGBA and gray-with-alpha PNGs that way), but 16-bit grayscale levels
//     (image.Gray16) are clipped to 255, as PIL converts its modes I and
//     I;16: a level of 256 or more becomes white;
//   - grayscale is ITU-R 601-2 luma in PIL's fixed point:
//     L = (19595 R + 38470 G + 7471 B + 32768) >> 16 on the 8-bit RGB
//     values, and a gray image keeps its levels.
//
// Lossy WebP colours, and JPEG colours where Go's image/jpeg decoded them
// (package data uses libjpeg-turbo, exact, in builds with cgo), come from
// Go's decoders, which round differently from libwebp and libjpeg (their
// inverse DCT and chroma upsampling), so those pixels are close to PIL's
// but not equal.
//
// The only full-size allocation is the result's (W*H*channels bytes). It
// panics unless channels is 1 or 3; data.DecodeImage checks that first.
func FromImage(img image.Image, channels int) *Image {
	return convert(img, channels, false)
}

// FromGray16 converts an image whose colours are 16-bit gray levels as PIL
// converts its mode I (a 16-bit grayscale PNG): each level above 255 is
// clipped to 255, alpha is dropped. It is for 16-bit grayscale PNGs with a
// transparent level, which Go decodes as an image.NRGBA64 that FromImage
// cannot tell from a 16-bit gray-with-alpha PNG (whose levels PIL
// truncates to their high byte instead). channels is 3 or 1, as for
// FromImage.
func FromGray16(img image.Image, channels int) *Image {
	return convert(img, channels, true)
}

// convert is FromImage, with 16-bit levels clipped when gray16 is set.
func convert(img image.Image, channels int, gray16 bool) *Image {
	if channels != 1 && channels != 3 {
		panic(fmt.Sprintf("transform.FromImage: %d channels (1 or 3)", channels))
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := NewImage(w, h, channels)
	if w == 0 || h == 0 {
		return out
	}
	if channels == 1 {
		if gray := grayRows(img, gray16); gray != nil {
			for y := range h {
				gray(b.Min.Y+y, out.Pix[y*w:(y+1)*w])
			}
			return out
		}
	}
	rgb := rgbRows(img, gray16)
	if channels == 3 {
		for y := range h {
			rgb(b.Min.Y+y, out.Pix[y*w*3:(y+1)*w*3])
		}
		return out
	}
	row := make([]uint8, 3*w)
	for y := range h {
		rgb(b.Min.Y+y, row)
		dst := out.Pix[y*w : (y+1)*w]
		for x := range dst {
			dst[x] = Luma(row[3*x], row[3*x+1], row[3*x+2])
		}
	}
	return out
}

// Luma is PIL's ITU-R 601-2 luma of an 8-bit RGB colour, in its fixed
// point (the L24 macro of Pillow's Convert.c): R*299/1000 + G*587/1000 +
// B*114/1000, rounded.
func Luma(r, g, b uint8) uint8 {
	return uint8((uint32(r)*19595 + uint32(g)*38470 + uint32(b)*7471 + 0x8000) >> 16)
}

// clip16 is PIL's conversion of a 16-bit gray level to 8 bits (modes I and
// I;16 to L or RGB): levels above 255 become 255.
func clip16(v uint16) uint8 {
	return uint8(min(v, 255))
}

// grayRows returns a function that writes the 8-bit gray levels of row y
// of a gray image (image.Gray, image.Gray16, or any image with gray16)
// into dst, or nil when img is not gray.
func grayRows(img image.Image, gray16 bool) func(y int, dst []uint8) {
	b := img.Bounds()
	switch m := img.(type) {
	case *image.Gray:
		return func(y int, dst []uint8) {
			i := m.PixOffset(b.Min.X, y)
			copy(dst, m.Pix[i:i+len(dst)])
		}
	case *image.Gray16:
		return func(y int, dst []uint8) {
			i := m.PixOffset(b.Min.X, y)
			for x := range dst {
				dst[x] = clip16(uint16(m.Pix[i+2*x])<<8 | uint16(m.Pix[i+2*x+1]))
			}
		}
	}
	if !gray16 {
		return nil
	}
	rgb := rgbRows(img, true) // levels clipped, replicated into R, G and B
	var row []uint8
	return func(y int, dst []uint8) {
		if len(row) < 3*len(dst) {
			row = make([]uint8, 3*len(dst))
		}
		rgb(y, row)
		for x := range dst {
			dst[x] = row[3*x]
		}
	}
}

// rgbRows returns a function that writes the 8-bit RGB colours of row y of
// img (3 bytes a pixel, alpha dropped) into dst. Common image types are
// read from their pixel arrays; others through At.
func rgbRows(img image.Image, gray16 bool) func(y int, dst []uint8) {
	b := img.Bounds()
	x0 := b.Min.X
	switch m := img.(type) {
	case *image.NRGBA:
		return func(y int, dst []uint8) {
			src := m.Pix[m.PixOffset(x0, y):]
			for x := 0; x < len(dst); x += 3 {
				dst[x], dst[x+1], dst[x+2] = src[0], src[1], src[2]
				src = src[4:]
			}
		}
	case *image.RGBA:
		return func(y int, dst []uint8) {
			src := m.Pix[m.PixOffset(x0, y):]
			for x := 0; x < len(dst); x += 3 {
				switch a := int(src[3]); a {
				case 0xff:
					dst[x], dst[x+1], dst[x+2] = src[0], src[1], src[2]
				case 0:
					dst[x], dst[x+1], dst[x+2] = 0, 0, 0
				default:
					dst[x], dst[x+1], dst[x+2] = unpremultiply(src[0], a), unpremultiply(src[1], a), unpremultiply(src[2], a)
				}
				src = src[4:]
			}
		}
	case *image.NRGBA64:
		return func(y int, dst []uint8) {
			src := m.Pix[m.PixOffset(x0, y):]
			for x := 0; x < len(dst); x += 3 {
				if gray16 {
					v := clip16(uint16(src[0])<<8 | uint16(src[1]))
					dst[x], dst[x+1], dst[x+2] = v, v, v
				} else {
					dst[x], dst[x+1], dst[x+2] = src[0], src[2], src[4] // the high bytes
				}
				src = src[8:]
			}
		}
	case *image.RGBA64:
		return func(y int, dst []uint8) {
			src := m.Pix[m.PixOffset(x0, y):]
			for x := 0; x < len(dst); x += 3 {
				c := color.RGBA64{
					R: uint16(src[0])<<8 | uint16(src[1]), G: uint16(src[2])<<8 | uint16(src[3]),
					B: uint16(src[4])<<8 | uint16(src[5]), A: uint16(src[6])<<8 | uint16(src[7]),
				}
				if c.A != 0xffff {
					n := color.NRGBA64Model.Convert(c).(color.NRGBA64)
					c.R, c.G, c.B = n.R, n.G, n.B
				}
				if gray16 {
					v := clip16(c.R)
					dst[x], dst[x+1], dst[x+2] = v, v, v
				} else {
					dst[x], dst[x+1], dst[x+2] = uint8(c.R>>8), uint8(c.G>>8), uint8(c.B>>8)
				}
				src = src[8:]
			}
		}
	case *image.Gray:
		return func(y int, dst []uint8) {
			src := m.Pix[m.PixOffset(x0, y):]
			for x := 0; x < len(dst); x += 3 {
				dst[x], dst[x+1], dst[x+2] = src[0], src[0], src[0]
				src = src[1:]
			}
		}
	case *image.Gray16:
		return func(y int, dst []uint8) {
			src := m.Pix[m.PixOffset(x0, y):]
			for x := 0; x < len(dst); x += 3 {
				v := clip16(uint16(src[0])<<8 | uint16(src[1]))
				dst[x], dst[x+1], dst[x+2] = v, v, v
				src = src[2:]
			}
		}
	case *image.Paletted:
		var table [256][3]uint8 // indexes beyond the palette are black, as in PIL's padded palette
		for i, c := range m.Palette {
			if i == len(table) {
				break
			}
			table[i] = storedRGB(c)
		}
		return func(y int, dst []uint8) {
			src := m.Pix[m.PixOffset(x0, y):]
			for x := 0; x < len(dst); x += 3 {
				c := &table[src[0]]
				dst[x], dst[x+1], dst[x+2] = c[0], c[1], c[2]
				src = src[1:]
			}
		}
	case *image.YCbCr:
		return yCbCrRows(m, x0)
	case *image.NYCbCrA:
		return yCbCrRows(&m.YCbCr, x0) // alpha dropped: the colours are not premultiplied
	case *image.CMYK:
		return func(y int, dst []uint8) {
			src := m.Pix[m.PixOffset(x0, y):]
			for x := 0; x < len(dst); x += 3 {
				dst[x], dst[x+1], dst[x+2] = color.CMYKToRGB(src[0], src[1], src[2], src[3])
				src = src[4:]
			}
		}
	}
	// Any other image: through At.
	return func(y int, dst []uint8) {
		for i := 0; i < len(dst); i += 3 {
			c := img.At(x0+i/3, y)
			if gray16 {
				v := clip16(color.NRGBA64Model.Convert(c).(color.NRGBA64).R)
				dst[i], dst[i+1], dst[i+2] = v, v, v
			} else {
				rgb := storedRGB(c)
				dst[i], dst[i+1], dst[i+2] = rgb[0], rgb[1], rgb[2]
			}
		}
	}
}

// unpremultiply divides an 8-bit colour channel premultiplied by alpha a
// (1 to 254) as PIL unpacks premultiplied RGBa (TIFF's associated alpha):
// c*255/a, truncated, at most 255.
func unpremultiply(c uint8, a int) uint8 {
	return uint8(min(int(c)*255/a, 255))
}

// storedRGB returns the 8-bit colour of c without its alpha: the stored
// values of a non-premultiplied colour, the high bytes of a 16-bit one,
// and a premultiplied colour divided by its alpha.
func storedRGB(c color.Color) [3]uint8 {
	switch c := c.(type) {
	case color.NRGBA:
		return [3]uint8{c.R, c.G, c.B}
	case color.Gray:
		return [3]uint8{c.Y, c.Y, c.Y}
	case color.RGBA:
		switch a := int(c.A); a {
		case 0xff:
			return [3]uint8{c.R, c.G, c.B}
		case 0:
			return [3]uint8{}
		default:
			return [3]uint8{unpremultiply(c.R, a), unpremultiply(c.G, a), unpremultiply(c.B, a)}
		}
	}
	n := color.NRGBA64Model.Convert(c).(color.NRGBA64)
	return [3]uint8{uint8(n.R >> 8), uint8(n.G >> 8), uint8(n.B >> 8)}
}

// yCbCrRows converts rows of a JPEG or lossy WebP image with Go's
// YCbCr-to-RGB conversion.
func yCbCrRows(m *image.YCbCr, x0 int) func(y int, dst []uint8) {
	return func(y int, dst []uint8) {
		for i := 0; i < len(dst); i += 3 {
			x := x0 + i/3
			yi, ci := m.YOffset(x, y), m.COffset(x, y)
			dst[i], dst[i+1], dst[i+2] = color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
		}
	}
}
