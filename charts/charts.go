// Package charts draws resgo's PNG figures with gonum/plot: learning curves
// (loss and accuracy per epoch) and confusion matrices.
package charts

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/resgo/resgo/internal/atomicfile"
)

// Series is one named curve: Y[i] at X[i].
type Series struct {
	Name string
	X, Y []float64
}

// Curves draws each panel (a title, a y-axis label and its series) side by
// side, with a shared x-axis label, into a PNG file.
func Curves(path, xLabel string, panels []Panel) error {
	if len(panels) == 0 {
		return fmt.Errorf("charts: %s: nothing to draw", path)
	}
	const w, h = 6 * vg.Inch, 4 * vg.Inch
	img := vgimg.New(w*vg.Length(len(panels)), h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2}
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.Title
		p.X.Label.Text = xLabel
		p.Y.Label.Text = pn.YLabel
		p.Legend.Top = !pn.LegendBottom
		for j, s := range pn.Series {
			if len(s.X) == 0 {
				continue
			}
			pts := make(plotter.XYs, len(s.X))
			for k := range s.X {
				pts[k] = plotter.XY{X: s.X[k], Y: s.Y[k]}
			}
			line, points, err := plotter.NewLinePoints(pts)
			if err != nil {
				return fmt.Errorf("charts: %s: %w", path, err)
			}
			c := palette[j%len(palette)]
			line.Color, points.Color = c, c
			line.Width = vg.Points(1.5)
			p.Add(line, points)
			p.Legend.Add(s.Name, line, points)
		}
		p.Draw(tiles.At(dc, i, 0))
	}
	return savePNG(path, img)
}

// Panel is one plot of Curves.
type Panel struct {
	Title, YLabel string
	Series        []Series
	LegendBottom  bool // legend in the bottom right corner (for rising curves)
}

var palette = []color.Color{
	color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255}, color.RGBA{44, 160, 44, 255},
	color.RGBA{214, 39, 40, 255}, color.RGBA{148, 103, 189, 255}, color.RGBA{140, 86, 75, 255},
}

// Confusion draws a confusion matrix (rows: true class, columns: predicted
// class, counts) as a heat map with the counts written in the cells, as
// the printed matrix and scikit-learn's ConfusionMatrixDisplay lay it
// out: the first class's row at the top, its column on the left.
func Confusion(path string, m [][]int, classes []string) error {
	n := len(m)
	if n == 0 || len(classes) != n {
		return fmt.Errorf("charts: %s: a %dx%d matrix with %d class names", path, n, n, len(classes))
	}
	grid := confusionGrid{m}
	maxCount := 1.0
	for _, row := range m {
		for _, v := range row {
			maxCount = math.Max(maxCount, float64(v))
		}
	}
	cm := moreland.SmoothBlueRed()
	cm.SetMin(0)
	cm.SetMax(maxCount)
	pal := cm.Palette(64)
	hm := plotter.NewHeatMap(grid, pal)
	hm.Min, hm.Max = 0, maxCount

	p := plot.New()
	p.Title.Text = "Confusion matrix"
	p.X.Label.Text = "predicted"
	p.Y.Label.Text = "true"
	p.Add(hm)
	labels := make([]plotter.XY, 0, n*n)
	texts := make([]string, 0, n*n)
	for r := range n {
		for c := range n {
			labels = append(labels, plotter.XY{X: float64(c), Y: rowY(r, n)})
			texts = append(texts, fmt.Sprint(m[r][c]))
		}
	}
	lab, err := plotter.NewLabels(plotter.XYLabels{XYs: labels, Labels: texts})
	if err != nil {
		return fmt.Errorf("charts: %s: %w", path, err)
	}
	for i := range lab.TextStyle {
		lab.TextStyle[i].XAlign = draw.XCenter
		lab.TextStyle[i].YAlign = draw.YCenter
	}
	p.Add(lab)
	xTicks, yTicks := make([]plot.Tick, n), make([]plot.Tick, n)
	for i, c := range classes {
		xTicks[i] = plot.Tick{Value: float64(i), Label: c}
		yTicks[i] = plot.Tick{Value: rowY(i, n), Label: c}
	}
	p.X.Tick.Marker = plot.ConstantTicks(xTicks)
	p.Y.Tick.Marker = plot.ConstantTicks(yTicks)
	p.X.Tick.Label.Rotation = math.Pi / 4
	p.X.Tick.Label.XAlign = draw.XRight
	side := vg.Length(max(5, n)) * vg.Centimeter * 1.2
	img := vgimg.New(side+4*vg.Centimeter, side+3*vg.Centimeter)
	p.Draw(draw.New(img))
	return savePNG(path, img)
}

// rowY returns the y coordinate of row r of an n-row matrix in the plot:
// row 0 at the top (y grows upwards).
func rowY(r, n int) float64 { return float64(n - 1 - r) }

// confusionGrid adapts a matrix to plotter.GridXYZ, whose rows go up from
// the bottom: grid row j is the matrix's row n-1-j (see rowY).
type confusionGrid struct{ m [][]int }

func (g confusionGrid) Dims() (c, r int)   { return len(g.m), len(g.m) }
func (g confusionGrid) Z(c, j int) float64 { return float64(g.m[len(g.m)-1-j][c]) }
func (g confusionGrid) X(c int) float64    { return float64(c) }
func (g confusionGrid) Y(j int) float64    { return float64(j) }

// savePNG writes a canvas to a PNG file atomically: a reader (an image
// viewer refreshing curves.png during training, say) sees the old figure
// or the new one, never half of one.
func savePNG(path string, img *vgimg.Canvas) error {
	err := atomicfile.Write(path, func(w io.Writer) error {
		if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("charts: %w", err)
	}
	return nil
}
