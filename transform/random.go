package transform

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// DefaultScale is RandomResizedCrop's default range of the crop's area as a
// fraction of the image's area, as in torchvision.
var DefaultScale = [2]float64{0.08, 1}

// DefaultRatio is RandomResizedCrop's default range of the crop's aspect
// ratio (width / height), as in torchvision.
var DefaultRatio = [2]float64{3.0 / 4, 4.0 / 3}

// uniform returns a value drawn uniformly from [lo, hi), as torch's
// Tensor.uniform_.
func uniform(rng *rand.Rand, lo, hi float64) float64 {
	return lo + (hi-lo)*rng.Float64()
}

// RandomResizedCropParams chooses the region of a w x h image that
// RandomResizedCrop takes, with torchvision 0.14's algorithm
// (RandomResizedCrop.get_params): up to 10 tries, each drawing the area
// fraction uniformly from scale and the aspect ratio log-uniformly from
// ratio, giving a crop of width round(sqrt(area*ratio)) and height
// round(sqrt(area/ratio)) (Python's round, half to even); the first crop that
// fits is placed at a uniform random offset (top drawn first, then left).
// If none fits, it falls back to a central crop: the whole image, or its
// largest central part whose aspect ratio is clamped to the ratio range.
// It returns the crop's top-left corner (x, y) and size (cw, ch).
func RandomResizedCropParams(w, h int, scale, ratio [2]float64, rng *rand.Rand) (x, y, cw, ch int) {
	area := float64(w * h)
	logLo, logHi := math.Log(ratio[0]), math.Log(ratio[1])
	for range 10 {
		target := area * uniform(rng, scale[0], scale[1])
		aspect := math.Exp(uniform(rng, logLo, logHi))
		cw = int(math.RoundToEven(math.Sqrt(target * aspect)))
		ch = int(math.RoundToEven(math.Sqrt(target / aspect)))
		if 0 < cw && cw <= w && 0 < ch && ch <= h {
			y = rng.IntN(h - ch + 1)
			x = rng.IntN(w - cw + 1)
			return x, y, cw, ch
		}
	}
	// Fallback to a central crop.
	inRatio := float64(w) / float64(h)
	lo, hi := min(ratio[0], ratio[1]), max(ratio[0], ratio[1])
	switch {
	case inRatio < lo:
		cw = w
		ch = int(math.RoundToEven(float64(cw) / lo))
	case inRatio > hi:
		ch = h
		cw = int(math.RoundToEven(float64(ch) * hi))
	default:
		cw, ch = w, h
	}
	return (w - cw) / 2, (h - ch) / 2, cw, ch
}

// RandomResizedCrop crops a random region (see RandomResizedCropParams) and
// resizes it to size x size with the bilinear Resize, as torchvision's
// RandomResizedCrop(size, scale, ratio) on a PIL image. A zero scale or
// ratio means the default (DefaultScale, DefaultRatio). The receiver is not
// modified.
func (m *Image) RandomResizedCrop(size int, scale, ratio [2]float64, rng *rand.Rand) *Image {
	if scale == [2]float64{} {
		scale = DefaultScale
	}
	if ratio == [2]float64{} {
		ratio = DefaultRatio
	}
	x, y, cw, ch := RandomResizedCropParams(m.W, m.H, scale, ratio, rng)
	return m.regionResizeCrop(x, y, cw, ch, size, size, 0, 0, size, size)
}

// RandomHorizontalFlip mirrors the image in place with probability p, as
// torchvision's RandomHorizontalFlip(p): it always draws one number, and
// flips when it is below p. It reports whether it flipped.
func (m *Image) RandomHorizontalFlip(p float64, rng *rand.Rand) bool {
	if rng.Float64() < p {
		m.FlipHorizontal()
		return true
	}
	return false
}

// Pad returns the image with pad black (zero) pixels added on every side,
// as torchvision's Pad(pad) with its default constant fill 0.
func (m *Image) Pad(pad int) *Image {
	return m.Crop(-pad, -pad, m.W+2*pad, m.H+2*pad)
}

// RandomCropParams chooses where RandomCrop takes a size x size crop of a
// w x h image (after any padding), as torchvision's RandomCrop.get_params:
// no draw when the image is exactly size x size, otherwise the top offset,
// then the left one, each uniform. It returns the top-left corner.
func RandomCropParams(w, h, size int, rng *rand.Rand) (x, y int) {
	if w == size && h == size {
		return 0, 0
	}
	y = rng.IntN(h - size + 1)
	x = rng.IntN(w - size + 1)
	return x, y
}

// RandomCrop pads the image with pad black pixels on every side, then takes
// a random size x size crop, as torchvision's RandomCrop(size, padding=pad)
// (the CIFAR recipe is RandomCrop(32, padding=4)). Where the padded image is
// still smaller than size, it is padded further as torchvision does with
// pad_if_needed=True (by the missing amount on both sides of that
// dimension) instead of failing. The receiver is not modified.
func (m *Image) RandomCrop(size, pad int, rng *rand.Rand) *Image {
	if size < 1 || pad < 0 {
		panic(fmt.Sprintf("transform.RandomCrop: size %d, padding %d", size, pad))
	}
	// The padded image, described by its extra margins on the left and top.
	left, top := pad, pad
	w, h := m.W+2*pad, m.H+2*pad
	if w < size {
		left += size - w
		w += 2 * (size - w)
	}
	if h < size {
		top += size - h
		h += 2 * (size - h)
	}
	x, y := RandomCropParams(w, h, size, rng)
	return m.Crop(x-left, y-top, size, size)
}

// Augment describes a random training transform: one geometric step
// (RandomResizedCrop when ResizedCrop > 0, else a padded RandomCrop when
// Crop > 0, else none), then a random horizontal flip, then ToTensor and
// normalization, then RandomErasing when ReProb > 0. An AutoAugment policy
// or a ColorJitter comes between the flip and ToTensor. Two recipes cover the usual cases: ImageNetTrain (the
// tutorial's RandomResizedCrop(224) + RandomHorizontalFlip()) and
// SmallImageTrain (pad, random crop and flip for CIFAR-style images).
// Evaluation uses a Preset instead.
type Augment struct {
	// ResizedCrop is the output side of RandomResizedCrop; 0: not used.
	ResizedCrop int
	// Scale and Ratio are RandomResizedCrop's ranges; zero: DefaultScale,
	// DefaultRatio.
	Scale, Ratio [2]float64
	// Crop is the side of the random crop taken after padding by Pad,
	// used when ResizedCrop is 0; 0: not used.
	Crop, Pad int
	// FlipProb is the probability of a horizontal flip (0.5 in both
	// recipes; 0: never).
	FlipProb float64
	// ReProb is the probability of RandomErasing after normalization
	// (timm's --reprob; 0: never).
	ReProb float64 `json:",omitempty"`
	// AutoAugment is a policy applied after the flip (see
	// ParseAutoAugment): "trivialaugment" or "rand-mM-nN"; "": none.
	AutoAugment string `json:",omitempty"`
	// ColorJitter is ColorJitter(v, v, v) after the flip when there is no
	// AutoAugment, as timm's --color-jitter; 0: none.
	ColorJitter float64 `json:",omitempty"`
}

// ImageNetTrain is the tutorial's training transform: RandomResizedCrop(224)
// with the default scale and ratio, then RandomHorizontalFlip(0.5).
var ImageNetTrain = Augment{ResizedCrop: 224, FlipProb: 0.5}

// SmallImageTrain returns the small-image recipe: pad pad black pixels on
// every side, take a random size x size crop, flip with probability 0.5
// (for example SmallImageTrain(28, 4) for Fashion-MNIST, (32, 4) for CIFAR).
func SmallImageTrain(size, pad int) Augment {
	return Augment{Crop: size, Pad: pad, FlipProb: 0.5}
}

// OutputSize returns the height and width of the tensor Apply writes for a
// w x h image.
func (a Augment) OutputSize(w, h int) (int, int) {
	switch {
	case a.ResizedCrop > 0:
		return a.ResizedCrop, a.ResizedCrop
	case a.Crop > 0:
		return a.Crop, a.Crop
	}
	return h, w
}

// Apply transforms the image with random draws from rng (always in the same
// order, so a given rng state gives a given result) and writes it into dst
// (C*H*W values, channel-major, see OutputSize) as ToTensor with the
// normalization norm. The image is not modified. It panics if both
// ResizedCrop and Crop are set or dst has the wrong length.
func (a Augment) Apply(m *Image, rng *rand.Rand, dst []float32, norm Normalization) {
	switch {
	case a.ResizedCrop > 0 && a.Crop > 0:
		panic(fmt.Sprintf("transform.Augment: both ResizedCrop (%d) and Crop (%d) are set", a.ResizedCrop, a.Crop))
	case a.ResizedCrop > 0:
		m = m.RandomResizedCrop(a.ResizedCrop, a.Scale, a.Ratio, rng)
	case a.Crop > 0:
		m = m.RandomCrop(a.Crop, a.Pad, rng)
	default:
		if a.FlipProb > 0 || a.AutoAugment != "" || a.ColorJitter > 0 {
			m = &Image{W: m.W, H: m.H, C: m.C, Pix: append([]uint8(nil), m.Pix...)}
		}
	}
	if a.FlipProb > 0 {
		m.RandomHorizontalFlip(a.FlipProb, rng)
	}
	switch {
	case a.AutoAugment != "":
		aa, err := ParseAutoAugment(a.AutoAugment)
		if err != nil {
			panic("transform.Augment: " + err.Error())
		}
		aa.Apply(m, rng)
	case a.ColorJitter > 0:
		ColorJitter{a.ColorJitter, a.ColorJitter, a.ColorJitter}.Apply(m, rng)
	}
	m.ToTensor(dst, norm)
	if a.ReProb > 0 {
		RandomErasing(dst, m.C, m.H, m.W, a.ReProb, rng)
	}
}

// Func returns Apply with the normalization norm bound, in the form a data
// loader's per-sample transform takes.
func (a Augment) Func(norm Normalization) func(m *Image, rng *rand.Rand, dst []float32) {
	return func(m *Image, rng *rand.Rand, dst []float32) { a.Apply(m, rng, dst, norm) }
}
