// Package shapes draws a synthetic image classification dataset: colored
// shapes on dark backgrounds, one class per shape. Tests and examples use it
// where a real folder of images (flower_photos, say) is not at hand.
package shapes

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// Names are the class folder names, by class.
var Names = []string{"disc", "square", "stripes", "cross"}

// Draw returns one size x size image of class c (0..3): a disc, a square,
// horizontal stripes or a cross, with random colors and position.
func Draw(c, size int, r *rand.Rand) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	bg := color.RGBA{uint8(r.IntN(60)), uint8(r.IntN(60)), uint8(r.IntN(60)), 255}
	fg := color.RGBA{uint8(150 + r.IntN(100)), uint8(150 + r.IntN(100)), uint8(150 + r.IntN(100)), 255}
	q := size / 3
	cx, cy := q+r.IntN(q), q+r.IntN(q)
	rad := size / 5
	for y := range size {
		for x := range size {
			dx, dy := x-cx, y-cy
			in := false
			switch c {
			case 0:
				in = dx*dx+dy*dy <= rad*rad
			case 1:
				in = dx >= -rad && dx <= rad && dy >= -rad && dy <= rad
			case 2:
				in = (y*8/size)%2 == 0
			case 3:
				in = (dx >= -size/16 && dx <= size/16) || (dy >= -size/16 && dy <= size/16)
			}
			if in {
				img.Set(x, y, fg)
			} else {
				img.Set(x, y, bg)
			}
		}
	}
	return img
}

// WriteFolder writes n PNG images of each of the given classes into
// root/<name>/NNN.png.
func WriteFolder(root string, classes []int, n, size int, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 3))
	for _, c := range classes {
		dir := filepath.Join(root, Names[c])
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for i := range n {
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%03d.png", i)))
			if err != nil {
				return err
			}
			err = png.Encode(f, Draw(c, size, r))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}
