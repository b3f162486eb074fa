package charts

import (
	"fmt"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Line is a curve of a Plot, with its style: the papers' figures tell
// training from test curves by width (thin and bold) and nets by colour.
type Line struct {
	Series
	Color  int     // index into the palette; lines of one colour belong together
	Width  float64 // in points; 0 means 1.5
	Dashed bool
	Points bool // mark each point, for curves of a few points
}

// Plot is one panel of a Figure: a title, labelled axes and lines.
type Plot struct {
	Title, XLabel, YLabel string
	Lines                 []Line
	LogX, LogY            bool // logarithmic axes (the values must be positive)
	// LegendBottom puts the legend in the bottom right corner (for rising
	// curves) instead of the top right.
	LegendBottom bool
	// LegendLeft puts the legend on the left (for falling curves that
	// start high: with LegendBottom, the bottom left corner).
	LegendLeft bool
	// YMin and YMax fix the y range when YMax > YMin.
	YMin, YMax float64
}

// Figure draws plots side by side into a PNG file. Points that are not
// finite, and points at or below zero on a logarithmic axis, are left out
// of their line.
func Figure(path string, plots []Plot) error {
	if len(plots) == 0 {
		return fmt.Errorf("charts: %s: nothing to draw", path)
	}
	const w, h = 6 * vg.Inch, 4.5 * vg.Inch
	img := vgimg.New(w*vg.Length(len(plots)), h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2}
	for i, pl := range plots {
		p, err := pl.plot()
		if err != nil {
			return fmt.Errorf("charts: %s: %w", path, err)
		}
		p.Draw(tiles.At(dc, i, 0))
	}
	return savePNG(path, img)
}

// plot builds the gonum plot of pl.
func (pl Plot) plot() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = pl.Title
	p.X.Label.Text = pl.XLabel
	p.Y.Label.Text = pl.YLabel
	p.Legend.Top = !pl.LegendBottom
	p.Legend.Left = pl.LegendLeft
	if pl.LogX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	if pl.LogY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	for _, l := range pl.Lines {
		var pts plotter.XYs
		for k := range l.X {
			x, y := l.X[k], l.Y[k]
			if !finite(x) || !finite(y) || pl.LogX && x <= 0 || pl.LogY && y <= 0 {
				continue
			}
			pts = append(pts, plotter.XY{X: x, Y: y})
		}
		if len(pts) == 0 {
			continue
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return nil, err
		}
		c := palette[l.Color%len(palette)]
		line.Color = c
		line.Width = vg.Points(1.5)
		if l.Width > 0 {
			line.Width = vg.Points(l.Width)
		}
		if l.Dashed {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(line)
		if l.Points {
			sc, err := plotter.NewScatter(pts)
			if err != nil {
				return nil, err
			}
			sc.Color = c
			p.Add(sc)
			p.Legend.Add(l.Name, line, sc)
		} else {
			p.Legend.Add(l.Name, line)
		}
	}
	if pl.YMax > pl.YMin {
		p.Y.Min, p.Y.Max = pl.YMin, pl.YMax
	}
	return p, nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
