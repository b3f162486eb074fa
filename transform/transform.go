// Package transform prepares images for a ResNet as torchvision's
// transforms do on PIL images: Resize (bilinear, antialiased, in PIL's 8-bit
// fixed point, so the pixels match PIL's), CenterCrop, RandomResizedCrop,
// RandomHorizontalFlip, padding and random crops for small images, then
// ToTensor and Normalize.
package transform

import (
	"fmt"
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

// Crop returns the w x h region whose top-left corner is (x, y). Parts
// outside the image are black, as PIL's crop.
func (m *Image) Crop(x, y, w, h int) *Image {
	out := NewImage(w, h, m.C)
	// Columns [x0, x1) of the crop lie inside the image.
	x0, x1 := max(0, -x), min(w, m.W-x)
	if x0 >= x1 {
		return out
	}
	c := m.C
	for r := range h {
		sy := y + r
		if sy < 0 || sy >= m.H {
			continue
		}
		copy(out.Pix[(r*w+x0)*c:(r*w+x1)*c], m.Pix[(sy*m.W+x+x0)*c:])
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
	left, top := centerOffsets(m.W, m.H, size)
	return m.Crop(left, top, size, size)
}

// centerOffsets returns the top-left corner of CenterCrop's square of side
// size in a w x h image.
func centerOffsets(w, h, size int) (left, top int) {
	return int(math.RoundToEven(float64(w-size) / 2)), int(math.RoundToEven(float64(h-size) / 2))
}

// Resize scales the image to w x h with PIL's bilinear filter, which
// widens its support when shrinking (antialiasing), computed in PIL's
// 8-bit fixed point: a horizontal pass, then a vertical one, each rounded
// to 8 bits, so the result equals PIL's Image.resize(..., BILINEAR).
func (m *Image) Resize(w, h int) *Image {
	if w < 1 || h < 1 {
		panic(fmt.Sprintf("transform.Resize: size %dx%d", w, h))
	}
	return m.resizeCrop(w, h, 0, 0, w, h)
}

// resizeCrop returns m.Resize(w, h).Crop(x, y, cw, ch), pixel for pixel,
// computing only the pixels of the crop: every output pixel of PIL's
// two passes depends on its own window of input pixels alone, so the
// horizontal pass runs on the input rows the crop's rows need and on the
// crop's columns only. A resize that the crop mostly discards (the shorter
// side of a 1x60000 image enlarged to 256 makes 256x15360000 pixels) then
// costs what the crop does, not gigabytes.
func (m *Image) resizeCrop(w, h, x, y, cw, ch int) *Image {
	return m.regionResizeCrop(0, 0, m.W, m.H, w, h, x, y, cw, ch)
}

// regionResizeCrop is resizeCrop of the sw x sh region of m at (sx, sy),
// which must lie inside m: m.Crop(sx, sy, sw, sh).resizeCrop(w, h, x, y,
// cw, ch) without copying the region first (RandomResizedCrop's crop then
// resize).
func (m *Image) regionResizeCrop(sx, sy, sw, sh, w, h, x, y, cw, ch int) *Image {
	out := NewImage(cw, ch, m.C)
	// The part of the crop inside the resized image; the rest stays black.
	x0, x1 := max(x, 0), min(x+cw, w)
	y0, y1 := max(y, 0), min(y+ch, h)
	if x0 >= x1 || y0 >= y1 {
		return out
	}
	c := m.C
	// srcRow returns row r of the region, from its first column.
	srcRow := func(r int) []uint8 { return m.Pix[((sy+r)*m.W+sx)*c : ((sy+r)*m.W+sx+sw)*c] }
	// Input rows [r0, r1) feed output rows [y0, y1).
	r0, r1 := y0, y1
	var vStarts []int
	var vWeights [][]int32
	if h != sh {
		vStarts, vWeights = filterWeights(sh, h, y0, y1)
		r0, r1 = vStarts[0], 0
		for i, s := range vStarts {
			r0, r1 = min(r0, s), max(r1, s+len(vWeights[i]))
		}
	}
	// mid: rows [r0, r1) after the horizontal pass, columns [x0, x1).
	stride := (x1 - x0) * c
	mid := make([]uint8, (r1-r0)*stride)
	if w != sw {
		hStarts, hWeights := filterWeights(sw, w, x0, x1)
		for r := r0; r < r1; r++ {
			resampleRow(mid[(r-r0)*stride:(r-r0+1)*stride], srcRow(r), hStarts, hWeights, c)
		}
	} else {
		for r := r0; r < r1; r++ {
			copy(mid[(r-r0)*stride:(r-r0+1)*stride], srcRow(r)[x0*c:])
		}
	}
	// The vertical pass adds whole weighted rows into acc, reading mid
	// in order.
	acc := make([]int32, stride)
	for oy := y0; oy < y1; oy++ {
		dst := out.Pix[((oy-y)*cw+(x0-x))*c:][:stride]
		if h == sh {
			copy(dst, mid[(oy-r0)*stride:])
			continue
		}
		for i := range acc {
			acc[i] = 1 << (precisionBits - 1)
		}
		start := vStarts[oy-y0]
		for j, wt := range vWeights[oy-y0] {
			row := mid[(start-r0+j)*stride:][:len(acc)]
			for i, v := range row {
				acc[i] += int32(v) * wt
			}
		}
		for i, a := range acc {
			dst[i] = clip8(a)
		}
	}
	return out
}

// resampleRow writes into dst the horizontal pass of PIL's filter over one
// row of c-channel pixels: output pixel j is the weights[j]-weighted sum
// of the input pixels from starts[j] on, each channel on its own.
func resampleRow(dst, src []uint8, starts []int, weights [][]int32, c int) {
	const half = 1 << (precisionBits - 1)
	switch c {
	case 1:
		for j, ws := range weights {
			s := src[starts[j]:][:len(ws)]
			acc := int32(half)
			for i, wt := range ws {
				acc += int32(s[i]) * wt
			}
			dst[j] = clip8(acc)
		}
	case 3:
		for j, ws := range weights {
			s := src[starts[j]*3:][:3*len(ws)]
			a0, a1, a2 := int32(half), int32(half), int32(half)
			for i, wt := range ws {
				p := s[3*i : 3*i+3]
				a0 += int32(p[0]) * wt
				a1 += int32(p[1]) * wt
				a2 += int32(p[2]) * wt
			}
			d := dst[3*j : 3*j+3]
			d[0], d[1], d[2] = clip8(a0), clip8(a1), clip8(a2)
		}
	default:
		for j, ws := range weights {
			for k := range c {
				acc := int32(half)
				for i, wt := range ws {
					acc += int32(src[(starts[j]+i)*c+k]) * wt
				}
				dst[j*c+k] = clip8(acc)
			}
		}
	}
}

// PIL's fixed point for 8-bit images: coefficients carry 22 fraction bits.
const precisionBits = 32 - 8 - 2

// filterWeights returns, for the output positions lo to hi-1 of out
// positions over in input positions, the first input index and the
// fixed-point weights of PIL's bilinear (triangle) filter.
func filterWeights(in, out, lo, hi int) (starts []int, weights [][]int32) {
	scale := float64(in) / float64(out)
	filterScale := max(scale, 1)
	support := 1.0 * filterScale // the bilinear filter's support is 1
	starts = make([]int, hi-lo)
	weights = make([][]int32, hi-lo)
	for i := lo; i < hi; i++ {
		center := (float64(i) + 0.5) * scale
		first := max(int(center-support+0.5), 0)
		last := min(int(center+support+0.5), in)
		k := make([]float64, last-first)
		total := 0.0
		for x := first; x < last; x++ {
			v := 1 - math.Abs((float64(x)-center+0.5)/filterScale)
			if v < 0 {
				v = 0
			}
			k[x-first] = v
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
		starts[i-lo], weights[i-lo] = first, fixed
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
	var lut [256]float32
	for c := range m.C {
		mean, std := float32(0), float32(1)
		if len(n.Mean) > 0 {
			mean, std = n.Mean[c%len(n.Mean)], n.Std[c%len(n.Std)]
		}
		// Each of the 256 pixel values maps to one float: computing them
		// once gives the same values as computing them per pixel.
		for v := range lut {
			lut[v] = (float32(v)/255 - mean) / std
		}
		out := dst[c*plane : (c+1)*plane]
		if m.C == 1 {
			for i, p := range m.Pix[:plane] {
				out[i] = lut[p]
			}
			continue
		}
		for i := range out {
			out[i] = lut[m.Pix[i*m.C+c]]
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

// Apply preprocesses an image into dst (Channels*H*W values). With a
// crop, only the cropped pixels of the resized image are computed (see
// OutputSize for the size without one).
func (p Preset) Apply(m *Image, dst []float32) {
	switch {
	case p.ResizeSize > 0 && p.CropSize > 0:
		s := m.shorterSize(p.ResizeSize)
		left, top := centerOffsets(s.W, s.H, p.CropSize)
		m = m.resizeCrop(s.W, s.H, left, top, p.CropSize, p.CropSize)
	case p.ResizeSize > 0:
		m = m.ResizeShorter(p.ResizeSize)
	case p.CropSize > 0:
		m = m.CenterCrop(p.CropSize)
	}
	m.ToTensor(dst, p.Norm)
}
