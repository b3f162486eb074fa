package charts

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestCurvesAndConfusion(t *testing.T) {
	dir := t.TempDir()
	curves := filepath.Join(dir, "curves.png")
	err := Curves(curves, "epoch", []Panel{
		{Title: "Loss", YLabel: "loss", Series: []Series{{Name: "train", X: []float64{1, 2, 3}, Y: []float64{1, 0.5, 0.3}}}},
		{Title: "Accuracy", YLabel: "accuracy", Series: []Series{{Name: "val", X: []float64{1, 2, 3}, Y: []float64{0.5, 0.7, 0.8}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cm := filepath.Join(dir, "cm.png")
	if err := Confusion(cm, [][]int{{5, 1}, {0, 7}}, []string{"daisy", "tulips"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{curves, cm} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if b := img.Bounds(); b.Dx() < 200 || b.Dy() < 200 {
			t.Errorf("%s is %v", p, b)
		}
	}
	if err := Confusion(cm, [][]int{{1}}, []string{"a", "b"}); err == nil {
		t.Error("a 1x1 matrix with 2 names accepted")
	}
}

// cellCentroid returns where, as fractions of the heat map's width and
// height from its top left corner, the red (highest) cells of a confusion
// matrix PNG lie: the mean position of their pixels within the box of all
// the heat map's coloured pixels (red and blue).
func cellCentroid(t *testing.T, path string) (x, y float64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	minX, minY, maxX, maxY := b.Max.X, b.Max.Y, b.Min.X, b.Min.Y
	var sx, sy, n float64
	for py := b.Min.Y; py < b.Max.Y; py++ {
		for px := b.Min.X; px < b.Max.X; px++ {
			r, g, bl, _ := img.At(px, py).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			red := r > 150 && g < 60 && bl < 80
			blue := bl > 150 && r < 100
			if !red && !blue {
				continue
			}
			minX, minY, maxX, maxY = min(minX, px), min(minY, py), max(maxX, px), max(maxY, py)
			if red {
				sx, sy, n = sx+float64(px), sy+float64(py), n+1
			}
		}
	}
	if n == 0 || maxX <= minX || maxY <= minY {
		t.Fatalf("%s: no heat map found", path)
	}
	return (sx/n - float64(minX)) / float64(maxX-minX), (sy/n - float64(minY)) / float64(maxY-minY)
}

// TestConfusionOrientation checks the drawing, not just that there is
// one: the first class's row is at the top and its column on the left, as
// in the printed matrix and scikit-learn's plots.
func TestConfusionOrientation(t *testing.T) {
	dir := t.TempDir()
	names := []string{"daisy", "dandelion", "roses"}
	for _, c := range []struct {
		what   string
		m      [][]int
		wx, wy float64 // where the one high count's cell lies
	}{
		{"true daisy predicted daisy", [][]int{{9, 0, 0}, {0, 0, 0}, {0, 0, 0}}, 1.0 / 6, 1.0 / 6},
		{"true daisy predicted roses", [][]int{{0, 0, 9}, {0, 0, 0}, {0, 0, 0}}, 5.0 / 6, 1.0 / 6},
		{"true roses predicted daisy", [][]int{{0, 0, 0}, {0, 0, 0}, {9, 0, 0}}, 1.0 / 6, 5.0 / 6},
	} {
		path := filepath.Join(dir, "cm.png")
		if err := Confusion(path, c.m, names); err != nil {
			t.Fatal(err)
		}
		x, y := cellCentroid(t, path)
		if math.Abs(x-c.wx) > 0.1 || math.Abs(y-c.wy) > 0.1 {
			t.Errorf("%s: the high cell is at (%.2f, %.2f) of the map from its top left, want (%.2f, %.2f)", c.what, x, y, c.wx, c.wy)
		}
	}
	// Written atomically: no temporary file is left.
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("the folder holds %v (%v), want cm.png only", entries, err)
	}
}
