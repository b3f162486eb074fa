package transform

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// fromCHW converts a uint8 tensor [C, H, W] to an Image.
func fromCHW(pix []uint8, c, h, w int) *Image {
	m := NewImage(w, h, c)
	for ch := range c {
		for p := range h * w {
			m.Pix[p*c+ch] = pix[ch*h*w+p]
		}
	}
	return m
}

// TestTorchAugmentOps: every operation of TrivialAugmentWide and
// RandAugment, for the same magnitude, gives torchvision 0.14's _apply_op
// on a uint8 tensor (nearest interpolation, no fill), value for value.
func TestTorchAugmentOps(t *testing.T) {
	f := loadAugmentFixture(t)
	total, diff := 0, 0
	for _, img := range f.Ops {
		c, h, w := img.Shape[0], img.Shape[1], img.Shape[2]
		for _, tc := range img.Cases {
			m := fromCHW(img.Pix, c, h, w)
			m.ApplyOp(tc.Op, tc.Magnitude)
			want := fromCHW(tc.Out, c, h, w)
			n := 0
			for i := range m.Pix {
				if m.Pix[i] != want.Pix[i] {
					n++
				}
			}
			total += len(m.Pix)
			diff += n
			if n > 0 {
				t.Errorf("%dx%dx%d %s(%v): %d of %d values differ from torchvision's", c, h, w, tc.Op, tc.Magnitude, n, len(m.Pix))
			}
		}
	}
	t.Logf("%d values from torchvision %s, %d differ", total, f.TorchVision, diff)
}

// TestTorchAugmentBins: the magnitude bins and signs of both policies are
// torchvision's, in its order of operations.
func TestTorchAugmentBins(t *testing.T) {
	f := loadAugmentFixture(t)
	if !slices.Equal(f.Bins.Order, AugmentOps) {
		t.Fatalf("operations %v, torchvision %v", AugmentOps, f.Bins.Order)
	}
	for _, op := range AugmentOps {
		for _, wide := range []bool{true, false} {
			want := f.Bins.RA[op]
			if wide {
				want = f.Bins.TA[op]
			}
			got, signed := OpMagnitudes(op, augmentBins, wide, 19, 23)
			if len(want.Values) == 1 && want.Values[0] == 0 && got == nil {
				continue // no magnitude
			}
			if signed != want.Signed || len(got) != len(want.Values) {
				t.Errorf("%s (wide %v): %d bins signed %v, torchvision %d signed %v", op, wide, len(got), signed, len(want.Values), want.Signed)
				continue
			}
			for i, v := range got {
				// torch.linspace's vectorized kernel computes the bins of
				// each vector from its first (start + step*idx, then +
				// step*j), so its values depend on the CPU's vector width:
				// 1 float32 ulp apart from the scalar formula here.
				w := float32(want.Values[i])
				if v != w && math.Nextafter32(v, w) != w {
					t.Errorf("%s (wide %v) bin %d: %v, torchvision %v", op, wide, i, v, want.Values[i])
				}
			}
		}
	}
}

func TestParseAutoAugment(t *testing.T) {
	a, err := ParseAutoAugment("rand-m9-n2")
	if err != nil || a.Wide || a.Mag != 9 || a.Ops != 2 {
		t.Errorf("rand-m9-n2: %+v %v", a, err)
	}
	if a, err := ParseAutoAugment("trivialaugment"); err != nil || !a.Wide {
		t.Errorf("trivialaugment: %+v %v", a, err)
	}
	for _, bad := range []string{"rand-m40-n2", "rand-x3", "autoaug", "rand-m9-n0"} {
		if _, err := ParseAutoAugment(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	// Apply runs every operation on a small image without failing.
	img := NewImage(9, 7, 3)
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 37)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for range 200 {
		a.Apply(img, rng)
		ColorJitter{0.4, 0.4, 0.4}.Apply(img, rng)
	}
}
