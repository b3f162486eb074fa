package transform

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func randomImage(w, h, c int, seed uint64) *Image {
	r := rand.New(rand.NewPCG(seed, 1))
	m := NewImage(w, h, c)
	for i := range m.Pix {
		// Smooth-ish content with noise, so that rounding matters.
		m.Pix[i] = uint8((i/c)%w*3 + r.IntN(40))
	}
	return m
}

// TestResizeMatchesPIL compares Resize, ResizeShorter and CenterCrop with
// PIL (Debian's python3-pil, installed with python3-torchvision) pixel for
// pixel, for shrinking and enlarging, RGB and grayscale.
func TestResizeMatchesPIL(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import PIL").Run(); err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("RESGO_REQUIRE_TORCH") == "1" {
			t.Fatal("python3-pil is required in CI:", err)
		}
		t.Skip("no python3-pil")
	}
	dir := t.TempDir()
	cases := []struct{ w, h, c, ow, oh int }{
		{500, 375, 3, 341, 256}, {97, 131, 3, 224, 300}, {64, 48, 1, 20, 15}, {300, 200, 3, 300, 101}, {33, 33, 3, 224, 224},
	}
	for i, tc := range cases {
		m := randomImage(tc.w, tc.h, tc.c, uint64(i))
		raw := filepath.Join(dir, fmt.Sprintf("%d.raw", i))
		if err := os.WriteFile(raw, m.Pix, 0o644); err != nil {
			t.Fatal(err)
		}
		mode := "RGB"
		if tc.c == 1 {
			mode = "L"
		}
		script := fmt.Sprintf(`
import sys
from PIL import Image
im = Image.frombytes(%q, (%d, %d), open(%q, "rb").read())
sys.stdout.buffer.write(im.resize((%d, %d), Image.BILINEAR).tobytes())
`, mode, tc.w, tc.h, raw, tc.ow, tc.oh)
		want, err := exec.Command("/usr/bin/python3", "-c", script).Output()
		if err != nil {
			t.Fatal(err)
		}
		got := m.Resize(tc.ow, tc.oh)
		if !bytes.Equal(got.Pix, want) {
			diff := 0
			for j := range want {
				if got.Pix[j] != want[j] {
					diff++
				}
			}
			t.Errorf("%dx%d -> %dx%d: %d of %d bytes differ from PIL", tc.w, tc.h, tc.ow, tc.oh, diff, len(want))
		}
	}
}

func TestShorterSideAndCenterCrop(t *testing.T) {
	m := randomImage(500, 375, 3, 7)
	r := m.ResizeShorter(256)
	if r.W != 341 || r.H != 256 {
		t.Errorf("ResizeShorter(256) of 500x375 gives %dx%d, torchvision 341x256", r.W, r.H)
	}
	c := r.CenterCrop(224)
	if c.W != 224 || c.H != 224 {
		t.Fatalf("crop %dx%d", c.W, c.H)
	}
	// torchvision: top = round((256-224)/2) = 16, left = round((341-224)/2) = round(58.5) = 58.
	if c.Pix[0] != r.Pix[(16*r.W+58)*3] {
		t.Error("center crop offset differs from torchvision's (round half to even)")
	}
	f := c.Crop(0, 0, 224, 224)
	f.FlipHorizontal()
	if f.Pix[0] != c.Pix[223*3] || f.Pix[223*3+2] != c.Pix[2] {
		t.Error("FlipHorizontal does not mirror")
	}
}

func TestToTensorNormalize(t *testing.T) {
	m := NewImage(2, 1, 3)
	copy(m.Pix, []uint8{255, 0, 128, 0, 255, 64})
	out := make([]float32, 6)
	m.ToTensor(out, ImageNet)
	want := (float32(255)/255 - 0.485) / 0.229
	if out[0] != want {
		t.Errorf("R of pixel 0: %v, want %v", out[0], want)
	}
	if w := (float32(255)/255 - 0.456) / 0.224; out[3] != w { // G plane, pixel 1
		t.Errorf("G of pixel 1: %v, want %v", out[3], w)
	}
}
