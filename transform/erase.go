package transform

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// DefaultEraseScale and DefaultEraseRatio are torchvision's RandomErasing
// defaults: the erased area, as a fraction of the image's, in [0.02, 0.33],
// its aspect ratio (height / width) log-uniform in [0.3, 3.3].
var (
	DefaultEraseScale = [2]float64{0.02, 0.33}
	DefaultEraseRatio = [2]float64{0.3, 3.3}
)

// RandomErasingParams chooses the rectangle RandomErasing erases in an
// h x w image, with torchvision 0.14's algorithm
// (RandomErasing.get_params): up to 10 tries, each drawing the area
// fraction uniformly from scale and the aspect ratio log-uniformly from
// ratio (in float32, as torch draws them), giving a rectangle of height
// round(sqrt(area*ratio)) and width round(sqrt(area/ratio)); the first
// one smaller than the image in both sides is placed at a uniform random
// offset (top drawn first, then left). It returns the top-left corner
// (top, left), the size, and ok false when no try fits (torchvision then
// leaves the image as it is).
func RandomErasingParams(h, w int, scale, ratio [2]float64, rng *rand.Rand) (top, left, eh, ew int, ok bool) {
	area := float64(h * w)
	logLo := float32(math.Log(float64(float32(ratio[0])))) // torch.log(torch.tensor(ratio)), float32
	logHi := float32(math.Log(float64(float32(ratio[1]))))
	for range 10 {
		frac := float32(uniform(rng, float64(float32(scale[0])), float64(float32(scale[1]))))
		target := area * float64(frac)
		aspect := float32(math.Exp(float64(float32(uniform(rng, float64(logLo), float64(logHi))))))
		eh = int(math.RoundToEven(math.Sqrt(target * float64(aspect))))
		ew = int(math.RoundToEven(math.Sqrt(target / float64(aspect))))
		if !(eh < h && ew < w) {
			continue
		}
		top = rng.IntN(h - eh + 1)
		left = rng.IntN(w - ew + 1)
		return top, left, eh, ew, true
	}
	return 0, 0, h, w, false
}

// Erase sets the eh x ew rectangle at (top, left) of every channel of a
// C x H x W tensor (channel-major, as ToTensor writes it) to value, as
// torchvision.transforms.functional.erase. It panics if the rectangle is
// not inside the image or x is not c*h*w values.
func Erase(x []float32, c, h, w, top, left, eh, ew int, value float32) {
	if len(x) != c*h*w || top < 0 || left < 0 || eh < 0 || ew < 0 || top+eh > h || left+ew > w {
		panic(fmt.Sprintf("transform.Erase: a %dx%d rectangle at (%d, %d) of a %dx%dx%d tensor of %d values", eh, ew, top, left, c, h, w, len(x)))
	}
	for ch := range c {
		for y := top; y < top+eh; y++ {
			row := x[(ch*h+y)*w:]
			for xx := left; xx < left+ew; xx++ {
				row[xx] = value
			}
		}
	}
}

// RandomErasing erases, with probability p, a random rectangle (see
// RandomErasingParams with the default scale and ratio) of the C x H x W
// tensor x, setting it to 0, as torchvision's RandomErasing(p) after
// Normalize (timm's --reprob with its "const" mode). It always draws one
// number, as torch.rand(1), and erases when it is below p. It reports
// whether it erased.
func RandomErasing(x []float32, c, h, w int, p float64, rng *rand.Rand) bool {
	if rng.Float64() >= p {
		return false
	}
	top, left, eh, ew, ok := RandomErasingParams(h, w, DefaultEraseScale, DefaultEraseRatio, rng)
	if !ok {
		return false
	}
	Erase(x, c, h, w, top, left, eh, ew, 0)
	return true
}
