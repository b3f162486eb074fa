package transform

import (
	"bytes"
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
