package transform

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"testing"
)

// TestResizeCropIsResizeThenCrop checks that computing only a crop of a
// resize gives the crop of the whole resize, for crops inside, across and
// outside the resized image, growing and shrinking either side or none.
func TestResizeCropIsResizeThenCrop(t *testing.T) {
	cases := []struct{ w, h, c, rw, rh, x, y, cw, ch int }{
		{50, 30, 3, 80, 48, 10, 5, 40, 30},           // enlarge, crop inside
		{97, 131, 3, 33, 45, 3, 7, 20, 20},           // shrink
		{64, 48, 1, 64, 20, 5, 2, 30, 10},            // height only
		{64, 48, 1, 20, 48, 5, 2, 10, 30},            // width only
		{40, 40, 3, 40, 40, 3, 4, 20, 25},            // no resize
		{30, 20, 3, 45, 30, -6, -5, 57, 40},          // crop larger than the image: black border
		{30, 20, 3, 45, 30, 50, 40, 10, 10},          // crop outside: black
		{1, 300, 3, 256, 76800, 16, 38288, 224, 224}, // a thin image's center
	}
	for _, tc := range cases {
		m := randomImage(tc.w, tc.h, tc.c, uint64(tc.w*tc.h))
		got := m.resizeCrop(tc.rw, tc.rh, tc.x, tc.y, tc.cw, tc.ch)
		want := m.Resize(tc.rw, tc.rh).Crop(tc.x, tc.y, tc.cw, tc.ch)
		if got.W != tc.cw || got.H != tc.ch || !bytes.Equal(got.Pix, want.Pix) {
			t.Errorf("%dx%d -> %dx%d, crop (%d, %d) %dx%d: %d of %d bytes differ", tc.w, tc.h, tc.rw, tc.rh, tc.x, tc.y, tc.cw, tc.ch, countDiff(got.Pix, want.Pix), len(want.Pix))
		}
	}
}

func countDiff(a, b []uint8) int {
	if len(a) != len(b) {
		return max(len(a), len(b))
	}
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

// TestPresetApplyMatchesResizeThenCrop checks that Apply, which computes
// only the crop, writes what resizing the whole image, cropping and
// normalizing writes.
func TestPresetApplyMatchesResizeThenCrop(t *testing.T) {
	for i, size := range [][2]int{{500, 375}, {375, 500}, {224, 224}, {300, 40}, {13, 900}, {256, 256}} {
		m := randomImage(size[0], size[1], 3, uint64(i))
		for _, p := range []Preset{ImageNetV1, ImageNetV2, {ResizeSize: 200, CropSize: 224, Channels: 3, Norm: ImageNet}} {
			h, w := p.OutputSize(m.W, m.H)
			got := make([]float32, 3*h*w)
			p.Apply(m, got)
			want := make([]float32, 3*h*w)
			m.ResizeShorter(p.ResizeSize).CenterCrop(p.CropSize).ToTensor(want, p.Norm)
			for j := range want {
				if got[j] != want[j] {
					t.Errorf("%dx%d, resize %d crop %d: value %d is %v, want %v", m.W, m.H, p.ResizeSize, p.CropSize, j, got[j], want[j])
					break
				}
			}
		}
	}
}

// TestPresetApplyThinImage preprocesses a 1x65536 image (within the pixel
// limit, a 200-byte PNG) with resize 256, crop 224: resizing it whole
// would make 256x16777216 pixels (12 GiB); Apply allocates about what the
// crop needs.
func TestPresetApplyThinImage(t *testing.T) {
	for _, size := range [][2]int{{1, 65536}, {65536, 1}} {
		m := randomImage(size[0], size[1], 3, 1)
		dst := make([]float32, 3*224*224)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		ImageNetV1.Apply(m, dst)
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
			t.Errorf("%dx%d: Apply allocated %d bytes", size[0], size[1], n)
		}
	}
}

// referenceResize is the plain form of PIL's two-pass bilinear resize, one
// output value at a time: the oracle of the fast resizeCrop.
func referenceResize(m *Image, w, h int) *Image {
	mid := NewImage(w, m.H, m.C)
	hs, hw := filterWeights(m.W, w, 0, w)
	for r := range m.H {
		for j := range w {
			for k := range m.C {
				acc := int32(1 << (precisionBits - 1))
				for i, wt := range hw[j] {
					acc += int32(m.Pix[(r*m.W+hs[j]+i)*m.C+k]) * wt
				}
				mid.Pix[(r*w+j)*m.C+k] = clip8(acc)
			}
		}
	}
	out := NewImage(w, h, m.C)
	vs, vw := filterWeights(m.H, h, 0, h)
	for r := range h {
		for j := range w {
			for k := range m.C {
				acc := int32(1 << (precisionBits - 1))
				for i, wt := range vw[r] {
					acc += int32(mid.Pix[((vs[r]+i)*w+j)*m.C+k]) * wt
				}
				out.Pix[(r*w+j)*m.C+k] = clip8(acc)
			}
		}
	}
	return out
}

// referenceCrop is Crop one pixel at a time.
func referenceCrop(m *Image, x, y, w, h int) *Image {
	out := NewImage(w, h, m.C)
	for r := range h {
		for c := range w {
			if sx, sy := x+c, y+r; sx >= 0 && sx < m.W && sy >= 0 && sy < m.H {
				copy(out.Pix[(r*w+c)*m.C:(r*w+c+1)*m.C], m.Pix[(sy*m.W+sx)*m.C:])
			}
		}
	}
	return out
}

// TestFastResizeAndCropMatchReference checks the row-wise resize, the
// row-copying crop and the region resize of RandomResizedCrop against the
// one-value-at-a-time forms, for 1, 3 and 4 channels (4 takes the generic
// path), growing, shrinking and keeping either side.
func TestFastResizeAndCropMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 60 {
		c := []int{1, 3, 4}[i%3]
		w, h := 1+rng.IntN(90), 1+rng.IntN(90)
		m := randomImage(w, h, c, uint64(i))
		rw, rh := 1+rng.IntN(120), 1+rng.IntN(120)
		if i%5 == 0 {
			rw = w
		}
		if got, want := m.Resize(rw, rh), referenceResize(m, rw, rh); !bytes.Equal(got.Pix, want.Pix) {
			t.Fatalf("resize %dx%dx%d to %dx%d: %d of %d bytes differ", w, h, c, rw, rh, countDiff(got.Pix, want.Pix), len(want.Pix))
		}
		x, y, cw, ch := rng.IntN(w+20)-10, rng.IntN(h+20)-10, 1+rng.IntN(w+10), 1+rng.IntN(h+10)
		if got, want := m.Crop(x, y, cw, ch), referenceCrop(m, x, y, cw, ch); !bytes.Equal(got.Pix, want.Pix) {
			t.Fatalf("crop %dx%dx%d at (%d, %d) %dx%d: %d bytes differ", w, h, c, x, y, cw, ch, countDiff(got.Pix, want.Pix))
		}
		sx, sy := rng.IntN(w), rng.IntN(h)
		sw, sh := 1+rng.IntN(w-sx), 1+rng.IntN(h-sy)
		got := m.regionResizeCrop(sx, sy, sw, sh, rw, rh, 0, 0, rw, rh)
		if want := referenceResize(referenceCrop(m, sx, sy, sw, sh), rw, rh); !bytes.Equal(got.Pix, want.Pix) {
			t.Fatalf("region (%d, %d) %dx%d of %dx%dx%d to %dx%d: %d bytes differ", sx, sy, sw, sh, w, h, c, rw, rh, countDiff(got.Pix, want.Pix))
		}
	}
}
