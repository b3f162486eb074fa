package transform

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// The operations of torchvision 0.14's TrivialAugmentWide and RandAugment
// on an 8-bit image, each as torchvision's functional op on a uint8 tensor
// computes it (functional_tensor.py: float32 arithmetic, truncation to
// uint8, nearest-neighbour sampling for the geometric ones, zero fill):
// the image augmentation of torchvision's references with --backend
// tensor. They modify the image in place.

// blend sets every value v to uint8(clamp(ratio*v + (1-ratio)*other, 0,
// 255)), as _blend in float32 (each product rounded, then the sum, then
// truncated toward zero).
func (m *Image) blend(ratio float64, other func(i int) float32) {
	r, k := float32(ratio), float32(1-ratio)
	for i, v := range m.Pix {
		x := float32(r*float32(v)) + float32(k*other(i))
		m.Pix[i] = clampTrunc(x)
	}
}

// clampTrunc is clamp(x, 0, 255).to(torch.uint8).
func clampTrunc(x float32) uint8 {
	if !(x > 0) {
		return 0
	}
	if x > 255 {
		return 255
	}
	return uint8(x)
}

// AdjustBrightness blends the image with black: F.adjust_brightness.
func (m *Image) AdjustBrightness(factor float64) {
	m.blend(factor, func(int) float32 { return 0 })
}

// grayscale returns rgb_to_grayscale of an RGB image, one value a pixel:
// uint8(0.2989*r + 0.587*g + 0.114*b) in float32.
func (m *Image) grayscale() []uint8 {
	out := make([]uint8, m.W*m.H)
	for p := range out {
		r, g, b := float32(m.Pix[3*p]), float32(m.Pix[3*p+1]), float32(m.Pix[3*p+2])
		out[p] = clampTrunc(float32(float32(float32(0.2989)*r)+float32(float32(0.587)*g)) + float32(float32(0.114)*b))
	}
	return out
}

// AdjustSaturation blends an RGB image with its grayscale:
// F.adjust_saturation (a grayscale image is left as it is).
func (m *Image) AdjustSaturation(factor float64) {
	if m.C != 3 {
		return
	}
	g := m.grayscale()
	m.blend(factor, func(i int) float32 { return float32(g[i/3]) })
}

// AdjustContrast blends the image with the mean of its grayscale:
// F.adjust_contrast.
func (m *Image) AdjustContrast(factor float64) {
	var sum float32 // whole numbers below 2^24 for images up to 256x256 x 255; exact
	var n int
	if m.C == 3 {
		for _, v := range m.grayscale() {
			sum += float32(v)
		}
		n = m.W * m.H
	} else {
		for _, v := range m.Pix {
			sum += float32(v)
		}
		n = len(m.Pix)
	}
	mean := sum / float32(n)
	m.blend(factor, func(int) float32 { return mean })
}

// AdjustSharpness blends the image with its blur by the kernel
// [[1,1,1],[1,5,1],[1,1,1]]/13 (rounded to whole values, the border kept):
// F.adjust_sharpness.
func (m *Image) AdjustSharpness(factor float64) {
	if m.W <= 2 || m.H <= 2 {
		return
	}
	blur := append([]uint8(nil), m.Pix...)
	c := m.C
	for y := 1; y < m.H-1; y++ {
		for x := 1; x < m.W-1; x++ {
			for ch := range c {
				s := 0
				for dy := -1; dy <= 1; dy++ {
					for dx := -1; dx <= 1; dx++ {
						s += int(m.Pix[((y+dy)*m.W+x+dx)*c+ch])
					}
				}
				s += 4 * int(m.Pix[(y*m.W+x)*c+ch])
				// s/13 is never within 1/26 of a half: exact rounding.
				blur[(y*m.W+x)*c+ch] = uint8(math.RoundToEven(float64(s) / 13))
			}
		}
	}
	m.blend(factor, func(i int) float32 { return float32(blur[i]) })
}

// Posterize keeps the bits high bits of every value: F.posterize.
func (m *Image) Posterize(bits int) {
	mask := uint8(0xff << (8 - bits))
	for i := range m.Pix {
		m.Pix[i] &= mask
	}
}

// Solarize inverts the values at or above threshold: F.solarize.
func (m *Image) Solarize(threshold float64) {
	for i, v := range m.Pix {
		if float64(v) >= threshold {
			m.Pix[i] = 255 - v
		}
	}
}

// AutoContrast stretches every channel to [0, 255]: F.autocontrast.
func (m *Image) AutoContrast() {
	for ch := range m.C {
		lo, hi := uint8(255), uint8(0)
		for i := ch; i < len(m.Pix); i += m.C {
			lo, hi = min(lo, m.Pix[i]), max(hi, m.Pix[i])
		}
		if lo == hi {
			continue // the scale is infinite: torchvision keeps the channel
		}
		scale := 255 / (float32(hi) - float32(lo))
		for i := ch; i < len(m.Pix); i += m.C {
			m.Pix[i] = clampTrunc(float32((float32(m.Pix[i]) - float32(lo)) * scale))
		}
	}
}

// Equalize equalizes the histogram of every channel: F.equalize.
func (m *Image) Equalize() {
	for ch := range m.C {
		var hist [256]int
		for i := ch; i < len(m.Pix); i += m.C {
			hist[m.Pix[i]]++
		}
		last, total := -1, 0
		for v, n := range hist {
			if n > 0 {
				last = v
				total += n
			}
		}
		step := (total - hist[last]) / 255 // the nonzero bins but the last
		if step == 0 {
			continue
		}
		var lut [256]uint8
		cum := 0
		for v := range 256 {
			// lut = pad((cumsum + step//2) // step, [1, 0])[:-1].clamp(0, 255)
			lut[v] = uint8(min((cum+step/2)/step, 255))
			cum += hist[v]
		}
		for i := ch; i < len(m.Pix); i += m.C {
			m.Pix[i] = lut[m.Pix[i]]
		}
	}
}

// inverseAffine is torchvision's _get_inverse_affine_matrix (angles in
// degrees, centre relative to the image's centre).
func inverseAffine(cx, cy, angle, tx, ty, scale, shearX, shearY float64) [6]float64 {
	rot := angle * (math.Pi / 180)
	sx, sy := shearX*(math.Pi/180), shearY*(math.Pi/180)
	a := math.Cos(rot-sy) / math.Cos(sy)
	b := -math.Cos(rot-sy)*math.Tan(sx)/math.Cos(sy) - math.Sin(rot)
	c := math.Sin(rot-sy) / math.Cos(sy)
	d := -math.Sin(rot-sy)*math.Tan(sx)/math.Cos(sy) + math.Cos(rot)
	mt := [6]float64{d / scale, -b / scale, 0, -c / scale, a / scale, 0}
	mt[2] += mt[0]*(-cx-tx) + mt[1]*(-cy-ty)
	mt[5] += mt[3]*(-cx-tx) + mt[4]*(-cy-ty)
	mt[2] += cx
	mt[5] += cy
	return mt
}

// warp samples the image through the inverse affine matrix mt as
// torchvision's tensor affine does: _gen_affine_grid and grid_sample
// (nearest, zeros padding, align_corners=False), in float32.
func (m *Image) warp(mt [6]float64) {
	w, h := m.W, m.H
	hw, hh := float32(0.5*float64(w)), float32(0.5*float64(h))
	// theta (float32), transposed and divided by [0.5w, 0.5h].
	r00, r10, r20 := float32(mt[0])/hw, float32(mt[1])/hw, float32(mt[2])/hw
	r01, r11, r21 := float32(mt[3])/hh, float32(mt[4])/hh, float32(mt[5])/hh
	src := append([]uint8(nil), m.Pix...)
	c := m.C
	for i := range h {
		y := float32(-float64(h)*0.5+0.5) + float32(i)
		for j := range w {
			x := float32(-float64(w)*0.5+0.5) + float32(j)
			// base_grid.bmm(rescaled_theta): PyTorch's CPU matrix product
			// accumulates over k = x, y, 1 with fused multiply-adds.
			gx := fma32(y, r10, float32(x*r00)) + r20
			gy := fma32(y, r11, float32(x*r01)) + r21
			ix := float32(float32(gx+1)*hw) - 0.5
			iy := float32(float32(gy+1)*hh) - 0.5
			sx, sy := int(math.RoundToEven(float64(ix))), int(math.RoundToEven(float64(iy)))
			dst := m.Pix[(i*w+j)*c : (i*w+j+1)*c]
			if sx < 0 || sx >= w || sy < 0 || sy >= h || math.IsNaN(float64(ix)) || math.IsNaN(float64(iy)) {
				clear(dst)
				continue
			}
			copy(dst, src[(sy*w+sx)*c:(sy*w+sx+1)*c])
		}
	}
}

// fma32 returns a*b+c rounded once to float32.
func fma32(a, b, c float32) float32 { return float32(math.FMA(float64(a), float64(b), float64(c))) }

// ShearX shears along x by magnitude (the tangent): the ShearX of
// torchvision's augmentations, F.affine(shear=[degrees(atan(magnitude)),
// 0], center=[0, 0]).
func (m *Image) ShearX(magnitude float64) {
	m.warp(inverseAffine(-0.5*float64(m.W), -0.5*float64(m.H), 0, 0, 0, 1, math.Atan(magnitude)*(180/math.Pi), 0))
}

// ShearY shears along y: F.affine(shear=[0, degrees(atan(magnitude))],
// center=[0, 0]).
func (m *Image) ShearY(magnitude float64) {
	m.warp(inverseAffine(-0.5*float64(m.W), -0.5*float64(m.H), 0, 0, 0, 1, 0, math.Atan(magnitude)*(180/math.Pi)))
}

// Translate shifts the image by (dx, dy) pixels: F.affine(translate=[dx,
// dy]).
func (m *Image) Translate(dx, dy int) {
	m.warp(inverseAffine(0, 0, 0, float64(dx), float64(dy), 1, 0, 0))
}

// Rotate rotates the image by angle degrees counter-clockwise about its
// centre: F.rotate(angle).
func (m *Image) Rotate(angle float64) {
	m.warp(inverseAffine(0, 0, -angle, 0, 0, 1, 0, 0))
}

// AugmentOps names the operations of TrivialAugmentWide and RandAugment,
// in torchvision's order (the index a draw picks).
var AugmentOps = []string{"Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness",
	"Color", "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize"}

// linspace32 is torch.linspace(start, end, steps) in float32: the first
// half counted from start, the second from end.
func linspace32(start, end float64, steps int) []float32 {
	s, e := float32(start), float32(end)
	out := make([]float32, steps)
	if steps == 1 {
		out[0] = s
		return out
	}
	step := (e - s) / float32(steps-1)
	for i := range out {
		if i < steps/2 {
			out[i] = s + step*float32(i)
		} else {
			out[i] = e - step*float32(steps-i-1)
		}
	}
	return out
}

// OpMagnitudes returns the magnitude bins of op (nil for the operations
// without one) and whether it is signed: TrivialAugmentWide's when wide,
// else RandAugment's for an h x w image, as torchvision 0.14's
// _augmentation_space with bins bins.
func OpMagnitudes(op string, bins int, wide bool, h, w int) ([]float32, bool) {
	shear, rot, enh, post := 0.3, 30.0, 0.9, 4.0
	tx, ty := 150.0/331.0*float64(w), 150.0/331.0*float64(h)
	if wide {
		shear, rot, enh, post, tx, ty = 0.99, 135, 0.99, 6, 32, 32
	}
	switch op {
	case "ShearX", "ShearY":
		return linspace32(0, shear, bins), true
	case "TranslateX":
		return linspace32(0, tx, bins), true
	case "TranslateY":
		return linspace32(0, ty, bins), true
	case "Rotate":
		return linspace32(0, rot, bins), true
	case "Brightness", "Color", "Contrast", "Sharpness":
		return linspace32(0, enh, bins), true
	case "Posterize":
		out := make([]float32, bins)
		div := float32(float64(bins-1) / post)
		for i := range out {
			out[i] = float32(8 - int32(math.RoundToEven(float64(float32(i)/div))))
		}
		return out, false
	case "Solarize":
		return linspace32(255, 0, bins), false
	}
	return nil, false
}

// ApplyOp applies one named operation with its magnitude, as
// torchvision's _apply_op.
func (m *Image) ApplyOp(op string, magnitude float64) {
	switch op {
	case "Identity":
	case "ShearX":
		m.ShearX(magnitude)
	case "ShearY":
		m.ShearY(magnitude)
	case "TranslateX":
		m.Translate(int(magnitude), 0)
	case "TranslateY":
		m.Translate(0, int(magnitude))
	case "Rotate":
		m.Rotate(magnitude)
	case "Brightness":
		m.AdjustBrightness(1 + magnitude)
	case "Color":
		m.AdjustSaturation(1 + magnitude)
	case "Contrast":
		m.AdjustContrast(1 + magnitude)
	case "Sharpness":
		m.AdjustSharpness(1 + magnitude)
	case "Posterize":
		m.Posterize(int(magnitude))
	case "Solarize":
		m.Solarize(magnitude)
	case "AutoContrast":
		m.AutoContrast()
	case "Equalize":
		m.Equalize()
	default:
		panic("transform.ApplyOp: unknown operation " + op)
	}
}

// AutoAugment is a policy of --aa: "trivialaugment" (torchvision's
// TrivialAugmentWide, 31 bins) or "rand-mM-nN" (torchvision's
// RandAugment(num_ops=N, magnitude=M), 31 bins; timm's name for it).
type AutoAugment struct {
	Policy string // as given
	Wide   bool   // TrivialAugmentWide; else RandAugment
	Ops    int    // RandAugment's num_ops
	Mag    int    // RandAugment's magnitude bin
}

// augmentBins is the number of magnitude bins of both policies
// (torchvision's num_magnitude_bins default).
const augmentBins = 31

// ParseAutoAugment parses an --aa policy ("" for none).
func ParseAutoAugment(s string) (*AutoAugment, error) {
	switch {
	case s == "":
		return nil, nil
	case s == "trivialaugment":
		return &AutoAugment{Wide: true, Policy: s}, nil
	case strings.HasPrefix(s, "rand-"):
		a := &AutoAugment{Ops: 2, Mag: 9, Policy: s}
		for _, part := range strings.Split(s, "-")[1:] {
			var v int
			var err error
			switch {
			case strings.HasPrefix(part, "m"):
				_, err = fmt.Sscanf(part, "m%d", &v)
				a.Mag = v
			case strings.HasPrefix(part, "n"):
				_, err = fmt.Sscanf(part, "n%d", &v)
				a.Ops = v
			default:
				err = fmt.Errorf("unknown part %q", part)
			}
			if err != nil {
				return nil, fmt.Errorf("auto-augment policy %q: %v (want rand-mM-nN)", s, err)
			}
		}
		if a.Mag < 0 || a.Mag >= augmentBins || a.Ops < 1 || a.Ops > 10 {
			return nil, fmt.Errorf("auto-augment policy %q: want a magnitude 0 to %d and 1 to 10 operations", s, augmentBins-1)
		}
		return a, nil
	}
	return nil, fmt.Errorf("auto-augment policy %q: want trivialaugment or rand-mM-nN (such as rand-m9-n2)", s)
}

// Apply augments the image in place with draws from rng in torchvision's
// order: per operation, its index, then (TrivialAugmentWide) the magnitude
// bin, then for a signed operation the sign.
func (a *AutoAugment) Apply(m *Image, rng *rand.Rand) {
	n := a.Ops
	if a.Wide {
		n = 1
	}
	for range n {
		op := AugmentOps[rng.IntN(len(AugmentOps))]
		mags, signed := OpMagnitudes(op, augmentBins, a.Wide, m.H, m.W)
		mag := 0.0
		if mags != nil {
			if a.Wide {
				mag = float64(mags[rng.IntN(len(mags))])
			} else {
				mag = float64(mags[a.Mag])
			}
		}
		if signed && rng.IntN(2) == 1 {
			mag = -mag
		}
		m.ApplyOp(op, mag)
	}
}

// ColorJitter is torchvision's ColorJitter(brightness, contrast,
// saturation) (no hue, as timm's --color-jitter): each factor drawn
// uniformly from [max(0, 1-v), 1+v] (float32), applied in a random order.
type ColorJitter struct {
	Brightness, Contrast, Saturation float64
}

// Apply jitters the image in place: a random permutation of the four
// adjustments (hue never set), then the factors of the set ones in the
// order brightness, contrast, saturation, as ColorJitter.get_params draws
// them.
func (j ColorJitter) Apply(m *Image, rng *rand.Rand) {
	order := rng.Perm(4)
	factor := func(v float64) float64 {
		if v == 0 {
			return -1
		}
		return float64(float32(uniform(rng, max(0, 1-v), 1+v)))
	}
	f := [3]float64{factor(j.Brightness), factor(j.Contrast), factor(j.Saturation)}
	for _, k := range order {
		if k == 3 || f[k] < 0 {
			continue
		}
		switch k {
		case 0:
			m.AdjustBrightness(f[k])
		case 1:
			m.AdjustContrast(f[k])
		case 2:
			m.AdjustSaturation(f[k])
		}
	}
}
