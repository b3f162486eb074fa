// Package transform prepares images for a ResNet as torchvision's
// transforms do on PIL images: Resize (bilinear, antialiased, in PIL's 8-bit
// fixed point, so the pixels match PIL's), CenterCrop, RandomResizedCrop,
// RandomHorizontalFlip, padding and random crops for small images, then
// ToTensor and Normalize.
package transform

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
)

// Image is an 8-bit image with C channels (3 for RGB, 1 for grayscale) in
// interleaved height x width x channel order, as PIL holds it.
type Image struct {
	W, H, C int
	Pix     []uint8
}

// NewImage returns a black image.
func NewImage(w, h, c int) *Image {
	return &Image{W: w, H: h, C: c, Pix: make([]uint8, w*h*c)}
}

// FromImage converts a decoded image to RGB (channels 3) or grayscale
// (channels 1), as PIL's Image.convert("RGB") or convert("L").
func FromImage(img image.Image, channels int) *Image {
	b := img.Bounds()
	out := NewImage(b.Dx(), b.Dy(), channels)
	if channels == 1 {
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				out.Pix[i] = color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y
				i++
			}
		}
		return out
	}
	rgba, ok := img.(*image.RGBA)
	if !ok || rgba.Rect.Min != (image.Point{}) {
		rgba = image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(rgba, rgba.Rect, img, b.Min, draw.Src)
	}
	for i, j := 0, 0; i < len(out.Pix); i, j = i+3, j+4 {
		out.Pix[i], out.Pix[i+1], out.Pix[i+2] = rgba.Pix[j], rgba.Pix[j+1], rgba.Pix[j+2]
	}
	return out
}

// Crop returns the w x h region whose top-left corner is (x, y). Parts
// outside the image are black, as PIL's crop.
func (m *Image) Crop(x, y, w, h int) *Image {
	out := NewImage(w, h, m.C)
	for r := range h {
		sy := y + r
		if sy < 0 || sy >= m.H {
			continue
		}
		for c := range w {
			sx := x + c
			if sx < 0 || sx >= m.W {
				continue
			}
			copy(out.Pix[(r*w+c)*m.C:(r*w+c+1)*m.C], m.Pix[(sy*m.W+sx)*m.C:])
		}
	}
	return out
}

// FlipHorizontal mirrors the image left to right in place.
func (m *Image) FlipHorizontal() {
	for y := range m.H {
		row := m.Pix[y*m.W*m.C : (y+1)*m.W*m.C]
		for l, r := 0, m.W-1; l < r; l, r = l+1, r-1 {
			for c := range m.C {
				row[l*m.C+c], row[r*m.C+c] = row[r*m.C+c], row[l*m.C+c]
			}
		}
	}
}

// ResizeShorter resizes so that the shorter side is size, keeping the
// aspect ratio as torchvision's Resize(size) does: the longer side becomes
// int(size * long / short).
func (m *Image) ResizeShorter(size int) *Image {
	s := m.shorterSize(size)
	if s.W == m.W && s.H == m.H {
		return m
	}
	return m.Resize(s.W, s.H)
}

// shorterSize returns the size ResizeShorter gives (only W and H are set).
func (m *Image) shorterSize(size int) *Image {
	if m.W <= m.H {
		return &Image{W: size, H: int(float64(size) * float64(m.H) / float64(m.W))}
	}
	return &Image{W: int(float64(size) * float64(m.W) / float64(m.H)), H: size}
}

// CenterCrop crops the central size x size square as torchvision's
// CenterCrop: the offsets are rounded half to even, like Python's round.
func (m *Image) CenterCrop(size int) *Image {
	top := int(math.RoundToEven(float64(m.H-size) / 2))
	left := int(math.RoundToEven(float64(m.W-size) / 2))
	return m.Crop(left, top, size, size)
}

// Resize scales the image to w x h with PIL's bilinear filter, which
// widens its support when shrinking (antialiasing), computed in PIL's
// 8-bit fixed point: a horizontal pass, then a vertical one, each rounded
// to 8 bits, so the result equals PIL's Image.resize(..., BILINEAR).
func (m *Image) Resize(w, h int) *Image {
	if w < 1 || h < 1 {
		panic(fmt.Sprintf("transform.Resize: size %dx%d", w, h))
	}
	out := m
	if w != m.W {
		out = resampleRows(out, w)
	}
	if h != m.H {
		out = resampleCols(out, h)
	}
	if out == m {
		out = &Image{W: m.W, H: m.H, C: m.C, Pix: append([]uint8(nil), m.Pix...)}
	}
	return out
}

// PIL's fixed point for 8-bit images: coefficients carry 22 fraction bits.
const precisionBits = 32 - 8 - 2

// filterWeights returns, for each of out output positions over in input
// positions, the first input index and the fixed-point weights of PIL's
// bilinear (triangle) filter.
func filterWeights(in, out int) (starts []int, weights [][]int32) {
	scale := float64(in) / float64(out)
	filterScale := max(scale, 1)
	support := 1.0 * filterScale // the bilinear filter's support is 1
	starts = make([]int, out)
	weights = make([][]int32, out)
	for i := range out {
		center := (float64(i) + 0.5) * scale
		lo := max(int(center-support+0.5), 0)
		hi := min(int(center+support+0.5), in)
		k := make([]float64, hi-lo)
		total := 0.0
		for x := lo; x < hi; x++ {
			v := 1 - math.Abs((float64(x)-center+0.5)/filterScale)
			if v < 0 {
				v = 0
			}
			k[x-lo] = v
			total += v
		}
		fixed := make([]int32, len(k))
		for j, v := range k {
			if total != 0 {
				v /= total
			}
			if v < 0 {
				fixed[j] = int32(-0.5 + v*(1<<precisionBits))
			} else {
				fixed[j] = int32(0.5 + v*(1<<precisionBits))
			}
		}
		starts[i], weights[i] = lo, fixed
	}
	return starts, weights
}

func clip8(v int32) uint8 {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// resampleRows resizes horizontally to width w.
func resampleRows(m *Image, w int) *Image {
	starts, weights := filterWeights(m.W, w)
	out := NewImage(w, m.H, m.C)
	for y := range m.H {
		src := m.Pix[y*m.W*m.C:]
		dst := out.Pix[y*w*m.C:]
		for x := range w {
			for c := range m.C {
				acc := int32(1 << (precisionBits - 1))
				for j, k := range weights[x] {
					acc += int32(src[(starts[x]+j)*m.C+c]) * k
				}
				dst[x*m.C+c] = clip8(acc)
			}
		}
	}
	return out
}

// resampleCols resizes vertically to height h.
func resampleCols(m *Image, h int) *Image {
	starts, weights := filterWeights(m.H, h)
	out := NewImage(m.W, h, m.C)
	stride := m.W * m.C
	for y := range h {
		dst := out.Pix[y*stride:]
		for i := range stride {
			acc := int32(1 << (precisionBits - 1))
			for j, k := range weights[y] {
				acc += int32(m.Pix[(starts[y]+j)*stride+i]) * k
			}
			dst[i] = clip8(acc)
		}
	}
	return out
}

// Normalization is a per-channel mean and standard deviation applied after
// scaling pixels to [0, 1].
type Normalization struct {
	Mean, Std []float32
}

// ImageNet is the normalization of torchvision's ImageNet weights.
var ImageNet = Normalization{Mean: []float32{0.485, 0.456, 0.406}, Std: []float32{0.229, 0.224, 0.225}}

// ToTensor writes the image into dst (C*H*W values, channel-major) as
// torchvision's ToTensor then Normalize: (pixel/255 - mean) / std. An
// empty Normalization leaves the values in [0, 1].
func (m *Image) ToTensor(dst []float32, n Normalization) {
	if len(dst) != m.C*m.H*m.W {
		panic(fmt.Sprintf("transform.ToTensor: %d values for a %dx%dx%d image", len(dst), m.C, m.H, m.W))
	}
	plane := m.H * m.W
	for c := range m.C {
		mean, std := float32(0), float32(1)
		if len(n.Mean) > 0 {
			mean, std = n.Mean[c%len(n.Mean)], n.Std[c%len(n.Std)]
		}
		out := dst[c*plane : (c+1)*plane]
		for i := range plane {
			v := float32(m.Pix[i*m.C+c]) / 255
			out[i] = (v - mean) / std
		}
	}
}

// Preset is the evaluation preprocessing that belongs to a set of weights:
// resize the shorter side, center crop, scale to [0, 1] and normalize.
type Preset struct {
	ResizeSize int // shorter side after resizing; 0: no resizing
	CropSize   int // side of the center crop; 0: no cropping
	Channels   int // 3 for RGB, 1 for grayscale
	Norm       Normalization
}

// ImageNetV1 is the preprocessing of torchvision's IMAGENET1K_V1 weights:
// resize to 256, center crop 224, ImageNet mean and std.
var ImageNetV1 = Preset{ResizeSize: 256, CropSize: 224, Channels: 3, Norm: ImageNet}

// ImageNetV2 is the preprocessing of torchvision's IMAGENET1K_V2 weights
// (and of resnext101_64x4d): resize to 232, center crop 224.
var ImageNetV2 = Preset{ResizeSize: 232, CropSize: 224, Channels: 3, Norm: ImageNet}

// OutputSize returns the height and width of the tensor Apply writes for an
// image of size w x h.
func (p Preset) OutputSize(w, h int) (int, int) {
	if p.CropSize > 0 {
		return p.CropSize, p.CropSize
	}
	if p.ResizeSize > 0 {
		r := (&Image{W: w, H: h}).shorterSize(p.ResizeSize)
		return r.H, r.W
	}
	return h, w
}

// Apply preprocesses an image into dst (Channels*H*W values).
func (p Preset) Apply(m *Image, dst []float32) {
	if p.ResizeSize > 0 {
		m = m.ResizeShorter(p.ResizeSize)
	}
	if p.CropSize > 0 {
		m = m.CenterCrop(p.CropSize)
	}
	m.ToTensor(dst, p.Norm)
}
