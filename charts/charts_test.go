package charts

import (
	"image/png"
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
