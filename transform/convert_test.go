package transform

import (
	"bytes"
	"image"
	"image/color"
	"math/rand/v2"
	"runtime"
	"testing"
)

// fill sets every byte of pix pseudo-randomly.
func fill(pix []uint8, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 3))
	for i := range pix {
		pix[i] = uint8(r.IntN(256))
	}
}

// decodedKinds returns a w x h image of each type Go's decoders return.
func decodedKinds(w, h int) map[string]image.Image {
	rect := image.Rect(0, 0, w, h)
	nrgba := image.NewNRGBA(rect)
	fill(nrgba.Pix, 1)
	rgba := image.NewRGBA(rect)
	fill(rgba.Pix, 2)
	for i := 3; i < len(rgba.Pix); i += 4 {
		rgba.Pix[i] = 255
	}
	nrgba64 := image.NewNRGBA64(rect)
	fill(nrgba64.Pix, 3)
	rgba64 := image.NewRGBA64(rect)
	fill(rgba64.Pix, 4)
	for i := 6; i < len(rgba64.Pix); i += 8 {
		rgba64.Pix[i], rgba64.Pix[i+1] = 255, 255
	}
	gray := image.NewGray(rect)
	fill(gray.Pix, 5)
	gray16 := image.NewGray16(rect)
	fill(gray16.Pix, 6)
	pal := image.NewPaletted(rect, color.Palette{color.NRGBA{1, 2, 3, 0}, color.RGBA{40, 50, 60, 255}, color.NRGBA{200, 100, 0, 77}})
	fill(pal.Pix, 7)
	for i := range pal.Pix {
		pal.Pix[i] %= 4 // index 3 is beyond the palette: black
	}
	ycc := image.NewYCbCr(rect, image.YCbCrSubsampleRatio420)
	fill(ycc.Y, 8)
	fill(ycc.Cb, 9)
	fill(ycc.Cr, 10)
	cmyk := image.NewCMYK(rect)
	fill(cmyk.Pix, 11)
	return map[string]image.Image{
		"NRGBA": nrgba, "RGBA": rgba, "NRGBA64": nrgba64, "RGBA64": rgba64, "Gray": gray,
		"Gray16": gray16, "Paletted": pal, "YCbCr": ycc, "CMYK": cmyk,
	}
}

// hidden hides an image's type, so that FromImage reads it through At.
type hidden struct{ image.Image }

// TestFromImageFastPaths checks that the conversions read from the pixel
// arrays give what the colours' own values give through At, and that a
// sub-image (bounds not at the origin) converts as its pixels.
func TestFromImageFastPaths(t *testing.T) {
	for name, img := range decodedKinds(13, 7) {
		for _, ch := range []int{3, 1} {
			got := FromImage(img, ch)
			var want *Image
			switch name {
			case "Gray16": // levels clipped, not truncated to the high byte
				want = NewImage(13, 7, ch)
				g := img.(*image.Gray16)
				for i := range 13 * 7 {
					v := clip16(uint16(g.Pix[2*i])<<8 | uint16(g.Pix[2*i+1]))
					for c := range ch {
						want.Pix[i*ch+c] = v
					}
				}
			case "YCbCr", "CMYK": // Go's 8-bit conversions
				want = NewImage(13, 7, ch)
				for y := range 7 {
					for x := range 13 {
						var r, g, b uint8
						if m, ok := img.(*image.YCbCr); ok {
							c := m.YCbCrAt(x, y)
							r, g, b = color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
						} else {
							c := img.(*image.CMYK).CMYKAt(x, y)
							r, g, b = color.CMYKToRGB(c.C, c.M, c.Y, c.K)
						}
						i := (y*13 + x) * ch
						if ch == 1 {
							want.Pix[i] = Luma(r, g, b)
						} else {
							want.Pix[i], want.Pix[i+1], want.Pix[i+2] = r, g, b
						}
					}
				}
			case "Paletted": // the entries' stored colours; beyond the palette black
				want = NewImage(13, 7, ch)
				colours := [][3]uint8{{1, 2, 3}, {40, 50, 60}, {200, 100, 0}, {0, 0, 0}}
				for i, idx := range img.(*image.Paletted).Pix {
					c := colours[idx]
					if ch == 1 {
						want.Pix[i] = Luma(c[0], c[1], c[2])
					} else {
						copy(want.Pix[3*i:], c[:])
					}
				}
			default:
				want = FromImage(hidden{img}, ch)
			}
			if !bytes.Equal(got.Pix, want.Pix) {
				t.Errorf("%s, %d channels: %v, want %v", name, ch, got.Pix[:12], want.Pix[:12])
			}

			sub := img.(interface {
				SubImage(image.Rectangle) image.Image
			}).SubImage(image.Rect(3, 2, 10, 6))
			gotSub := FromImage(sub, ch)
			if wantSub := got.Crop(3, 2, 7, 4); gotSub.W != 7 || gotSub.H != 4 || !bytes.Equal(gotSub.Pix, wantSub.Pix) {
				t.Errorf("%s, %d channels: a sub-image converts to %dx%d %v, want its pixels %v", name, ch, gotSub.W, gotSub.H, gotSub.Pix[:6], wantSub.Pix[:6])
			}
		}
	}
}

// TestFromImageLuma checks the grayscale of RGB colours against PIL's
// formula, (19595 R + 38470 G + 7471 B + 0x8000) >> 16, on colours where
// Go's color.GrayModel (on 16-bit values, >> 24) rounds differently.
func TestFromImageLuma(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 256, 3))
	fill(img.Pix, 12)
	got := FromImage(img, 1).Pix
	differ := 0
	for i := range got {
		r, g, b := img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2]
		pil := uint8((uint32(r)*19595 + uint32(g)*38470 + uint32(b)*7471 + 0x8000) >> 16)
		if got[i] != pil {
			t.Errorf("pixel %d (%d, %d, %d): L %d, PIL %d", i, r, g, b, got[i], pil)
		}
		if color.GrayModel.Convert(color.RGBA{r, g, b, 255}).(color.Gray).Y != pil {
			differ++
		}
	}
	if differ == 0 {
		t.Error("no colour where color.GrayModel differs from PIL: the test shows nothing")
	}
}

// TestFromImageAllocatesOnlyItsResult converts a 1500x1000 image of every
// decoded type and checks that the conversion allocates the result and
// hardly more: no intermediate full-size RGBA copy.
func TestFromImageAllocatesOnlyItsResult(t *testing.T) {
	const w, h = 1500, 1000
	for name, img := range decodedKinds(w, h) {
		for _, ch := range []int{3, 1} {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			out := FromImage(img, ch)
			runtime.ReadMemStats(&after)
			n := after.TotalAlloc - before.TotalAlloc
			if limit := uint64(w*h*ch + 64<<10); n > limit {
				t.Errorf("%s, %d channels: FromImage allocated %d bytes for a %d-byte result (limit %d)", name, ch, n, len(out.Pix), limit)
			}
		}
	}
}

// BenchmarkFromImage converts a 12-megapixel (4000x3000) NRGBA image, a
// PNG photo with alpha, to RGB; B/op is the memory it takes beside the
// decoded image.
func BenchmarkFromImage(b *testing.B) {
	img := image.NewNRGBA(image.Rect(0, 0, 4000, 3000))
	fill(img.Pix, 1)
	b.ReportAllocs()
	for b.Loop() {
		FromImage(img, 3)
	}
}
