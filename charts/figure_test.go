package charts

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestFigure draws two panels, one on logarithmic axes with points that
// cannot be drawn there (zero, negative, NaN), and checks the PNG.
func TestFigure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "figure.png")
	err := Figure(path, []Plot{
		{Title: "Errors", XLabel: "epoch", YLabel: "error (%)", Lines: []Line{
			{Series: Series{Name: "train", X: []float64{1, 2, 3}, Y: []float64{30, 20, 15}}, Width: 1},
			{Series: Series{Name: "test", X: []float64{1, 2, 3}, Y: []float64{32, 24, 20}}, Width: 3, Points: true},
		}},
		{Title: "Loss", XLabel: "images", YLabel: "loss", LogX: true, LogY: true, YMin: 0.1, YMax: 100, Lines: []Line{
			{Series: Series{Name: "a", X: []float64{0, 10, 100, 1000}, Y: []float64{1, 2, -1, math.NaN()}}, Dashed: true, Color: 7},
			{Series: Series{Name: "nothing drawable", X: []float64{-1}, Y: []float64{1}}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 2*400 || b.Dy() < 300 {
		t.Errorf("two panels in %v", b)
	}
	if err := Figure(path, nil); err == nil {
		t.Error("an empty figure: no error")
	}
}
