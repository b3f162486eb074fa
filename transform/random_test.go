package transform

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestRandomResizedCropBounds draws many crops and checks that each lies in
// the image, that crops from the random path respect the scale and ratio
// ranges (up to the rounding of width and height), and that the draws cover
// those ranges.
func TestRandomResizedCropBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := [][2]int{{500, 375}, {375, 500}, {224, 224}, {1000, 200}, {31, 47}}
	for _, sz := range sizes {
		w, h := sz[0], sz[1]
		minScale, maxScale := math.Inf(1), 0.0
		minRatio, maxRatio := math.Inf(1), 0.0
		xs := map[int]bool{}
		for range 20000 {
			x, y, cw, ch := RandomResizedCropParams(w, h, DefaultScale, DefaultRatio, rng)
			if cw < 1 || ch < 1 || x < 0 || y < 0 || x+cw > w || y+ch > h {
				t.Fatalf("%dx%d: crop (%d,%d) %dx%d outside the image", w, h, x, y, cw, ch)
			}
			xs[x] = true
			s := float64(cw*ch) / float64(w*h)
			r := float64(cw) / float64(ch)
			minScale, maxScale = min(minScale, s), max(maxScale, s)
			minRatio, maxRatio = min(minRatio, r), max(maxRatio, r)
			// Rounding each side by at most 0.5 pixel changes area and ratio by
			// a bounded factor.
			tolW, tolH := 0.5/float64(cw), 0.5/float64(ch)
			slack := (1 + tolW) * (1 + tolH)
			fallback := (x == (w-cw)/2 && y == (h-ch)/2)
			if !fallback && (s > 1*slack || s < 0.08/slack) {
				t.Fatalf("%dx%d: crop %dx%d has area fraction %v", w, h, cw, ch, s)
			}
			if !fallback && (r > 4.0/3*slack || r < 3.0/4/slack) {
				t.Fatalf("%dx%d: crop %dx%d has ratio %v", w, h, cw, ch, r)
			}
		}
		if w == 500 {
			if minScale > 0.1 || maxScale < 0.9 {
				t.Errorf("%dx%d: area fractions span only [%v, %v]", w, h, minScale, maxScale)
			}
			if minRatio > 0.8 || maxRatio < 1.25 {
				t.Errorf("%dx%d: ratios span only [%v, %v]", w, h, minRatio, maxRatio)
			}
			if len(xs) < w/2 {
				t.Errorf("%dx%d: only %d distinct left offsets", w, h, len(xs))
			}
		}
	}
}

// TestRandomResizedCropLogUniformRatio checks that the ratio is drawn
// log-uniformly: as many crops are wider than tall as taller than wide.
func TestRandomResizedCropLogUniformRatio(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	wide, tall := 0, 0
	for range 20000 {
		_, _, cw, ch := RandomResizedCropParams(1000, 1000, [2]float64{0.5, 0.5}, DefaultRatio, rng)
		if cw > ch {
			wide++
		} else if ch > cw {
			tall++
		}
	}
	if d := math.Abs(float64(wide-tall)) / float64(wide+tall); d > 0.03 {
		t.Errorf("wide %d vs tall %d crops: not log-uniform", wide, tall)
	}
}

// TestRandomResizedCropFallback checks torchvision's central-crop fallback,
// reached when no try fits.
func TestRandomResizedCropFallback(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	// A very wide strip: no crop of area >= 8% with ratio <= 4/3 fits its
	// height, so the fallback clamps the ratio to 4/3: h = 10,
	// w = round(13.33) = 13, centered: left = (1000-13)//2 = 493.
	x, y, cw, ch := RandomResizedCropParams(1000, 10, DefaultScale, DefaultRatio, rng)
	if x != 493 || y != 0 || cw != 13 || ch != 10 {
		t.Errorf("wide strip: crop (%d,%d) %dx%d, want (493,0) 13x10", x, y, cw, ch)
	}
	// A very tall strip: w = 10, h = round(10 / (3/4)) = round(13.33) = 13.
	x, y, cw, ch = RandomResizedCropParams(10, 1000, DefaultScale, DefaultRatio, rng)
	if x != 0 || y != 493 || cw != 10 || ch != 13 {
		t.Errorf("tall strip: crop (%d,%d) %dx%d, want (0,493) 10x13", x, y, cw, ch)
	}
	// Scales above 1 never fit: the image's ratio is within range, so the
	// fallback is the whole image.
	x, y, cw, ch = RandomResizedCropParams(300, 250, [2]float64{1.5, 2}, DefaultRatio, rng)
	if x != 0 || y != 0 || cw != 300 || ch != 250 {
		t.Errorf("whole-image fallback: crop (%d,%d) %dx%d", x, y, cw, ch)
	}
	// Round half to even in the fallback: h = 6, w = round(6 * 1.25) = round(7.5) = 8;
	// h = 10, w = round(12.5) = 12.
	if _, _, cw, _ = RandomResizedCropParams(1000, 6, [2]float64{2, 3}, [2]float64{0.8, 1.25}, rng); cw != 8 {
		t.Errorf("fallback width %d, want round(7.5) = 8", cw)
	}
	if _, _, cw, _ = RandomResizedCropParams(1000, 10, [2]float64{2, 3}, [2]float64{0.8, 1.25}, rng); cw != 12 {
		t.Errorf("fallback width %d, want round(12.5) = 12", cw)
	}
}

func TestRandomResizedCropImage(t *testing.T) {
	m := randomImage(120, 90, 3, 1)
	orig := append([]uint8(nil), m.Pix...)
	rng := rand.New(rand.NewPCG(7, 8))
	out := m.RandomResizedCrop(64, [2]float64{}, [2]float64{}, rng)
	if out.W != 64 || out.H != 64 || out.C != 3 {
		t.Fatalf("output %dx%dx%d", out.W, out.H, out.C)
	}
	if string(orig) != string(m.Pix) {
		t.Error("RandomResizedCrop modified its input")
	}
	// The same draws give the same crop and resize.
	rng2 := rand.New(rand.NewPCG(7, 8))
	x, y, cw, ch := RandomResizedCropParams(120, 90, DefaultScale, DefaultRatio, rng2)
	want := m.Crop(x, y, cw, ch).Resize(64, 64)
	if string(want.Pix) != string(out.Pix) {
		t.Error("RandomResizedCrop differs from Crop + Resize with the same draws")
	}
}

func TestRandomHorizontalFlip(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	m := randomImage(5, 3, 3, 2)
	flips := 0
	for range 10000 {
		if m.RandomHorizontalFlip(0.5, rng) {
			flips++
		}
	}
	if flips < 4700 || flips > 5300 {
		t.Errorf("%d flips in 10000 draws with p=0.5", flips)
	}
	for range 100 {
		if m.RandomHorizontalFlip(0, rng) {
			t.Fatal("flipped with p=0")
		}
		if !m.RandomHorizontalFlip(1, rng) {
			t.Fatal("did not flip with p=1")
		}
	}
}

func TestRandomCropPadding(t *testing.T) {
	m := NewImage(28, 28, 1)
	for i := range m.Pix {
		m.Pix[i] = 200
	}
	if p := m.Pad(4); p.W != 36 || p.H != 36 || p.Pix[0] != 0 || p.Pix[4*36+4] != 200 {
		t.Fatalf("Pad(4): %dx%d", p.W, p.H)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	replay := rand.New(rand.NewPCG(11, 12))
	padded := m.Pad(4)
	seen := map[[2]int]bool{}
	for range 2000 {
		out := m.RandomCrop(28, 4, rng)
		x, y := RandomCropParams(36, 36, 28, replay)
		if x < 0 || y < 0 || x > 8 || y > 8 {
			t.Fatalf("offset (%d,%d) outside 0..8", x, y)
		}
		if string(out.Pix) != string(padded.Crop(x, y, 28, 28).Pix) {
			t.Fatalf("RandomCrop differs from Pad + Crop at (%d,%d)", x, y)
		}
		seen[[2]int{x, y}] = true
	}
	if len(seen) != 81 {
		t.Errorf("%d of the 81 offsets drawn", len(seen))
	}
	// No draw when the image is already the crop size without padding.
	a, b := rand.New(rand.NewPCG(1, 1)), rand.New(rand.NewPCG(1, 1))
	m.RandomCrop(28, 0, a)
	if a.Uint64() != b.Uint64() {
		t.Error("RandomCrop drew a number for an image of the crop's size")
	}
	// An image smaller than the crop is padded as pad_if_needed does.
	small := NewImage(10, 20, 3)
	if out := small.RandomCrop(24, 0, rng); out.W != 24 || out.H != 24 {
		t.Errorf("crop of a small image: %dx%d", out.W, out.H)
	}
}

func TestAugmentRecipes(t *testing.T) {
	m := randomImage(500, 375, 3, 3)
	orig := append([]uint8(nil), m.Pix...)
	h, w := ImageNetTrain.OutputSize(500, 375)
	if h != 224 || w != 224 {
		t.Fatalf("ImageNetTrain output %dx%d", h, w)
	}
	dst := make([]float32, 3*224*224)
	ImageNetTrain.Apply(m, rand.New(rand.NewPCG(1, 2)), dst, ImageNet)
	// Replay the draws: RRC, then one flip draw.
	rng := rand.New(rand.NewPCG(1, 2))
	want := m.RandomResizedCrop(224, DefaultScale, DefaultRatio, rng)
	want.RandomHorizontalFlip(0.5, rng)
	ref := make([]float32, len(dst))
	want.ToTensor(ref, ImageNet)
	for i := range ref {
		if ref[i] != dst[i] {
			t.Fatalf("Apply differs from RRC+flip+ToTensor at %d", i)
		}
	}
	if string(orig) != string(m.Pix) {
		t.Error("Apply modified its input")
	}

	small := randomImage(28, 28, 1, 4)
	aug := SmallImageTrain(28, 4)
	if h, w := aug.OutputSize(28, 28); h != 28 || w != 28 {
		t.Fatalf("SmallImageTrain output %dx%d", h, w)
	}
	out := make([]float32, 28*28)
	fn := aug.Func(Normalization{})
	fn(small, rand.New(rand.NewPCG(3, 3)), out)
	for _, v := range out {
		if v < 0 || v > 1 {
			t.Fatalf("unnormalized value %v outside [0,1]", v)
		}
	}
	// Flip only, no geometric step: the input must stay untouched.
	cp := append([]uint8(nil), small.Pix...)
	Augment{FlipProb: 1}.Apply(small, rand.New(rand.NewPCG(1, 1)), out, Normalization{})
	if string(cp) != string(small.Pix) {
		t.Error("flip-only Apply modified its input")
	}
	if out[0] != float32(small.Pix[27])/255 {
		t.Error("flip-only Apply did not flip")
	}
}

// BenchmarkTrainTransform measures the tutorial's training transform on
// one 500x375 RGB image (the size of a typical flower_photos photo):
// RandomResizedCrop(224), RandomHorizontalFlip, ToTensor and Normalize.
func BenchmarkTrainTransform(b *testing.B) {
	m := randomImage(500, 375, 3, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	dst := make([]float32, 3*224*224)
	for b.Loop() {
		out := m.RandomResizedCrop(224, DefaultScale, DefaultRatio, rng)
		out.RandomHorizontalFlip(0.5, rng)
		out.ToTensor(dst, ImageNet)
	}
}
