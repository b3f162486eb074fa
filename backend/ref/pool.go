package ref

import (
	"fmt"
	"math"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/tensor"
)

// Max pooling over windows of KH×KW with stride s and padding p:
//
//	y[n,c,oy,ox] = max_{ky,kx} x[n, c, oy*sH-pH+ky, ox*sW-pW+kx]
//
// where positions outside the image count as -inf (they never win). The
// backward pass sends each dy to the position of its window's maximum, the
// first in row-major window order on ties, and sums where windows overlap.

// poolGeom is a validated max pooling's sizes.
type poolGeom struct {
	planes, h, w, oh, ow   int // planes = N*C
	kh, kw, sh, sw, ph, pw int
}

// newPoolGeom validates x and p for op.
func newPoolGeom(op string, x *tensor.Tensor, p backend.PoolParams, all ...*tensor.Tensor) (poolGeom, []int) {
	mustPlain(op, x)
	out, err := backend.CheckPool(x.Shape(), p)
	if err != nil {
		backend.Fail(op, err.Error(), all...)
	}
	g := poolGeom{
		planes: x.Dim(0) * x.Dim(1), h: x.Dim(2), w: x.Dim(3), oh: out[2], ow: out[3],
		kh: p.Kernel[0], kw: p.Kernel[1], sh: max(p.Stride[0], 1), sw: max(p.Stride[1], 1),
		ph: p.Pad[0], pw: p.Pad[1],
	}
	return g, out
}

// argmax returns the index in the plane x [H, W] of the maximum of the window
// of output (oy, ox), the first one in row-major order on ties (a NaN wins,
// as in PyTorch), or -1 if the window holds no input position.
func (g poolGeom) argmax(x []float32, oy, ox int) int {
	best, at := float32(math.Inf(-1)), -1
	for ky := range g.kh {
		iy := oy*g.sh - g.ph + ky
		if iy < 0 || iy >= g.h {
			continue
		}
		for kx := range g.kw {
			ix := ox*g.sw - g.pw + kx
			if ix < 0 || ix >= g.w {
				continue
			}
			v := x[iy*g.w+ix]
			if at < 0 || v > best || v != v {
				best, at = v, iy*g.w+ix
			}
		}
	}
	return at
}

// MaxPool2D computes y = the maximum of each pooling window of x.
func (b *Backend) MaxPool2D(y, x *tensor.Tensor, p backend.PoolParams) {
	const op = "ref.MaxPool2D"
	mustDst(op, y, "y", x)
	g, out := newPoolGeom(op, x, p, x)
	if y == x {
		backend.Fail(op, "the destination y must not be the input", x)
	}
	reset(y, out...)
	xv, yv := x.Values(), y.Storage()
	parallel(g.planes, b.threads, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			xp := xv[pl*g.h*g.w : (pl+1)*g.h*g.w]
			yp := yv[pl*g.oh*g.ow : (pl+1)*g.oh*g.ow]
			for oy := range g.oh {
				for ox := range g.ow {
					v := float32(math.Inf(-1))
					if at := g.argmax(xp, oy, ox); at >= 0 {
						v = xp[at]
					}
					yp[oy*g.ow+ox] = v
				}
			}
		}
	})
}

// MaxPool2DBackward computes dx (x's shape): each dy goes to the position of
// its window's maximum in x, recomputed exactly as MaxPool2D chose it; y, the
// forward output, is only checked for its shape.
func (b *Backend) MaxPool2DBackward(dx, dy, x, y *tensor.Tensor, p backend.PoolParams) {
	const op = "ref.MaxPool2DBackward"
	all := []*tensor.Tensor{dy, x, y}
	mustDst(op, dx, "dx", all...)
	mustPlain(op, dy, x)
	g, out := newPoolGeom(op, x, p, all...)
	mustShape(op, dy, out, "dy", all...)
	if y != nil {
		mustPlain(op, y)
		mustShape(op, y, out, "forward output y", all...)
	}
	if dx == dy || dx == x {
		backend.Fail(op, "the destination dx must not be an input", all...)
	}
	reset(dx, x.Shape()...)
	xv, dyv, dxv := x.Values(), dy.Values(), dx.Storage()
	parallel(g.planes, b.threads, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			xp := xv[pl*g.h*g.w : (pl+1)*g.h*g.w]
			dxp := dxv[pl*g.h*g.w : (pl+1)*g.h*g.w]
			dyp := dyv[pl*g.oh*g.ow : (pl+1)*g.oh*g.ow]
			clear(dxp)
			for oy := range g.oh {
				for ox := range g.ow {
					if at := g.argmax(xp, oy, ox); at >= 0 {
						dxp[at] += dyp[oy*g.ow+ox]
					}
				}
			}
		}
	})
}

// GlobalAvgPool computes y[n,c,0,0] = (1/(H*W)) sum x[n,c,:,:] (summed in
// float64); y is [N, C, 1, 1].
func (b *Backend) GlobalAvgPool(y, x *tensor.Tensor) {
	const op = "ref.GlobalAvgPool"
	mustDst(op, y, "y", x)
	mustPlain(op, x)
	mustRank(op, x, 4, "input x", x)
	if y == x {
		backend.Fail(op, "the destination y must not be the input", x)
	}
	planes, hw := x.Dim(0)*x.Dim(1), x.Dim(2)*x.Dim(3)
	reset(y, x.Dim(0), x.Dim(1), 1, 1)
	xv, yv := x.Values(), y.Storage()
	for pl := range planes {
		var s float64
		for _, v := range xv[pl*hw : (pl+1)*hw] {
			s += float64(v)
		}
		yv[pl] = float32(s / float64(hw))
	}
}

// GlobalAvgPoolBackward computes dx[n,c,h,w] = dy[n,c] / (H*W), dx taking
// x's shape; dy is [N, C, 1, 1] or [N, C].
func (b *Backend) GlobalAvgPoolBackward(dx, dy, x *tensor.Tensor) {
	const op = "ref.GlobalAvgPoolBackward"
	all := []*tensor.Tensor{dy, x}
	mustDst(op, dx, "dx", all...)
	mustPlain(op, dy, x)
	mustRank(op, x, 4, "input x", all...)
	n, c := x.Dim(0), x.Dim(1)
	if !tensor.SameShape(dy.Shape(), []int{n, c, 1, 1}) && !tensor.SameShape(dy.Shape(), []int{n, c}) {
		backend.Fail(op, fmt.Sprintf("dy has shape %v, want [%d %d 1 1] or [%d %d]", dy.Shape(), n, c, n, c), all...)
	}
	if dx == dy {
		backend.Fail(op, "the destination dx must not be dy", all...)
	}
	hw := x.Dim(2) * x.Dim(3)
	reset(dx, x.Shape()...)
	dyv, dxv := dy.Values(), dx.Storage()
	for pl := range n * c {
		v := dyv[pl] / float32(hw)
		plane := dxv[pl*hw : (pl+1)*hw]
		for i := range plane {
			plane[i] = v
		}
	}
}
