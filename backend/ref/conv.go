package ref

import (
	"sync"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/tensor"
)

// Convolution, as PyTorch's nn.Conv2d defines it, for one image n and output
// channel o of group g (C/groups input channels per group):
//
//	y[n,o,oy,ox] = b[o] + sum_{c,ky,kx} w[o,c,ky,kx] * x[n, g*C/groups+c, iy, ix]
//	iy = oy*strideH - padH + ky*dilationH,  ix = ox*strideW - padW + kx*dilationW
//
// with x = 0 outside the image. im2col lays the receptive fields out as the
// columns of a matrix col[(c*KH+ky)*KW+kx][oy*OW+ox] = x[c, iy, ix], so that
// per image and group the convolution is one matrix product
//
//	Y (O/groups × OH*OW) = W (O/groups × K) · col (K × OH*OW),  K = C/groups*KH*KW
//
// where W is the group's slice of the weight tensor read as a matrix (OIHW is
// exactly that row-major layout). The two backward passes are the two other
// products of the same three matrices:
//
//	dcol = W^T · dY   then dx = col2im(dcol)   (col2im is the adjoint of im2col)
//	dW  += dY · col^T  summed over images,      db[o] = sum dy[n,o,:,:]

// convGeom holds a validated convolution's sizes.
type convGeom struct {
	n, c, h, w     int // input
	o, kh, kw      int // weight
	oh, ow         int // output
	groups, cg, og int // groups; input and output channels per group
	p              backend.ConvParams
}

// newConvGeom validates the input and weight shapes and parameters and
// returns the geometry, failing op with the shapes of all otherwise.
func newConvGeom(op string, xShape, wShape []int, p backend.ConvParams, all ...*tensor.Tensor) convGeom {
	out, err := backend.CheckConv(xShape, wShape, p)
	if err != nil {
		backend.Fail(op, err.Error(), all...)
	}
	p = p.Norm()
	return convGeom{
		n: xShape[0], c: xShape[1], h: xShape[2], w: xShape[3],
		o: wShape[0], kh: wShape[2], kw: wShape[3],
		oh: out[2], ow: out[3],
		groups: p.Groups, cg: xShape[1] / p.Groups, og: wShape[0] / p.Groups,
		p: p,
	}
}

// outShape returns [N, O, OH, OW].
func (g convGeom) outShape() []int { return []int{g.n, g.o, g.oh, g.ow} }

// k returns the rows of the im2col matrix (the reduction length).
func (g convGeom) k() int { return g.cg * g.kh * g.kw }

// spatial returns the columns of the im2col matrix (output pixels).
func (g convGeom) spatial() int { return g.oh * g.ow }

// pointwise reports whether the convolution is a 1x1, stride 1, unpadded
// one, whose input image already is its own im2col matrix.
func (g convGeom) pointwise() bool {
	return g.kh == 1 && g.kw == 1 && g.p.Stride == [2]int{1, 1} && g.p.Pad == [2]int{0, 0}
}

// im2col writes the im2col matrix of one image's group of channels
// x [C/groups, H, W] into col [K, OH*OW].
func (g convGeom) im2col(col, x []float32) {
	sh, sw := g.p.Stride[0], g.p.Stride[1]
	ph, pw := g.p.Pad[0], g.p.Pad[1]
	dh, dw := g.p.Dilation[0], g.p.Dilation[1]
	row := 0
	for c := range g.cg {
		img := x[c*g.h*g.w : (c+1)*g.h*g.w]
		for ky := range g.kh {
			for kx := range g.kw {
				dst := col[row*g.oh*g.ow : (row+1)*g.oh*g.ow]
				row++
				for oy := range g.oh {
					out := dst[oy*g.ow : (oy+1)*g.ow]
					iy := oy*sh - ph + ky*dh
					if iy < 0 || iy >= g.h {
						clear(out)
						continue
					}
					src := img[iy*g.w : (iy+1)*g.w]
					for ox := range out {
						ix := ox*sw - pw + kx*dw
						if ix >= 0 && ix < g.w {
							out[ox] = src[ix]
						} else {
							out[ox] = 0
						}
					}
				}
			}
		}
	}
}

// col2im is the adjoint of im2col: it adds each entry of dcol [K, OH*OW]
// back onto the input position it was copied from, dx [C/groups, H, W].
func (g convGeom) col2im(dx, dcol []float32) {
	sh, sw := g.p.Stride[0], g.p.Stride[1]
	ph, pw := g.p.Pad[0], g.p.Pad[1]
	dh, dw := g.p.Dilation[0], g.p.Dilation[1]
	row := 0
	for c := range g.cg {
		img := dx[c*g.h*g.w : (c+1)*g.h*g.w]
		for ky := range g.kh {
			for kx := range g.kw {
				src := dcol[row*g.oh*g.ow : (row+1)*g.oh*g.ow]
				row++
				for oy := range g.oh {
					iy := oy*sh - ph + ky*dh
					if iy < 0 || iy >= g.h {
						continue
					}
					dst := img[iy*g.w : (iy+1)*g.w]
					for ox, v := range src[oy*g.ow : (oy+1)*g.ow] {
						ix := ox*sw - pw + kx*dw
						if ix >= 0 && ix < g.w {
							dst[ix] += v
						}
					}
				}
			}
		}
	}
}

// split divides threads between images (outer: each goroutine convolves
// whole images) and the matrix products of one image (inner). Whole images
// are shared out when that balances (the batch divides evenly or is large);
// otherwise the images go one at a time, each product split among all
// threads.
func split(threads, images int) (outer, inner int) {
	if threads <= 1 {
		return 1, 1
	}
	if images%threads == 0 || images >= 4*threads {
		return min(threads, images), 1
	}
	return 1, threads
}

// scratchPool recycles im2col buffers between calls.
var scratchPool sync.Pool

// getScratch returns a buffer of n float32s with unspecified contents.
func getScratch(n int) *[]float32 {
	if p, ok := scratchPool.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	s := make([]float32, n)
	return &s
}

// putScratch returns a buffer obtained from getScratch.
func putScratch(p *[]float32) { scratchPool.Put(p) }

// Conv2D computes y = relu?(conv(x, w) + b + e.Add): x [N, C, H, W],
// w [O, C/groups, KH, KW], b [O] or nil, e.Add [N, O, OH, OW] or nil;
// y becomes [N, O, OH, OW]. y may be e.Add.
func (b *Backend) Conv2D(y, x, w, bias *tensor.Tensor, p backend.ConvParams, e backend.Epilogue) {
	const op = "ref.Conv2D"
	all := []*tensor.Tensor{x, w, bias, e.Add}
	mustDst(op, y, "y", all...)
	mustPlain(op, x, w)
	g := newConvGeom(op, x.Shape(), w.Shape(), p, all...)
	if bias != nil {
		mustPlain(op, bias)
		mustShape(op, bias, []int{g.o}, "bias", all...)
	}
	if e.Add != nil {
		mustPlain(op, e.Add)
		mustShape(op, e.Add, g.outShape(), "residual Epilogue.Add", all...)
	}
	if y == x || y == w || y == bias {
		backend.Fail(op, "the destination y must not be an input (only Epilogue.Add may alias it)", all...)
	}

	reset(y, g.outShape()...)
	xv, wv, yv := x.Values(), w.Values(), y.Storage()
	K, P := g.k(), g.spatial()
	outer, inner := split(b.threads, g.n)
	parallel(g.n, outer, func(lo, hi int) {
		var col *[]float32
		if !g.pointwise() {
			col = getScratch(K * P)
			defer putScratch(col)
		}
		for n := lo; n < hi; n++ {
			yn := yv[n*g.o*P : (n+1)*g.o*P]
			// Start from the residual and the bias; the products add onto them.
			// (When y is e.Add, the copy is a no-op.)
			if e.Add != nil {
				copy(yn, e.Add.Values()[n*g.o*P:(n+1)*g.o*P])
			} else {
				clear(yn)
			}
			if bias != nil {
				for o, bo := range bias.Values() {
					row := yn[o*P : (o+1)*P]
					for i := range row {
						row[i] += bo
					}
				}
			}
			// Y_g += W_g · col_g for each group.
			for gi := range g.groups {
				xg := xv[(n*g.c+gi*g.cg)*g.h*g.w : (n*g.c+(gi+1)*g.cg)*g.h*g.w]
				src := xg
				if col != nil {
					g.im2col(*col, xg)
					src = *col
				}
				wg := wv[gi*g.og*K : (gi+1)*g.og*K]
				gemm(g.og, P, K, matrix{data: wg, ld: K}, matrix{data: src, ld: P}, yn[gi*g.og*P:], P, inner)
			}
			if e.ReLU {
				for i, v := range yn {
					yn[i] = max(v, 0)
				}
			}
		}
	})
}

// Conv2DBackwardData computes dx [N, C, H, W] (x's shape) from dy
// [N, O, OH, OW] and w: per image and group, dcol = W^T·dY, dx = col2im(dcol).
func (b *Backend) Conv2DBackwardData(dx, dy, w, x *tensor.Tensor, p backend.ConvParams) {
	const op = "ref.Conv2DBackwardData"
	all := []*tensor.Tensor{dy, w, x}
	mustDst(op, dx, "dx", all...)
	mustPlain(op, dy, w, x)
	g := newConvGeom(op, x.Shape(), w.Shape(), p, all...)
	mustShape(op, dy, g.outShape(), "dy", all...)
	if dx == dy || dx == w {
		backend.Fail(op, "the destination dx must not be an input", all...)
	}

	reset(dx, x.Shape()...)
	dyv, wv, dxv := dy.Values(), w.Values(), dx.Storage()
	K, P, HW := g.k(), g.spatial(), g.h*g.w
	outer, inner := split(b.threads, g.n)
	parallel(g.n, outer, func(lo, hi int) {
		var dcol *[]float32
		if !g.pointwise() {
			dcol = getScratch(K * P)
			defer putScratch(dcol)
		}
		for n := lo; n < hi; n++ {
			dxn := dxv[n*g.c*HW : (n+1)*g.c*HW]
			clear(dxn)
			for gi := range g.groups {
				dyg := dyv[(n*g.o+gi*g.og)*P : (n*g.o+(gi+1)*g.og)*P]
				wg := wv[gi*g.og*K : (gi+1)*g.og*K]
				dxg := dxn[gi*g.cg*HW : (gi+1)*g.cg*HW]
				wT := matrix{data: wg, ld: K, trans: true} // K × O/groups
				if dcol == nil {
					// 1x1 stride 1: dx_g is dcol itself.
					gemm(K, P, g.og, wT, matrix{data: dyg, ld: P}, dxg, P, inner)
					continue
				}
				clear(*dcol)
				gemm(K, P, g.og, wT, matrix{data: dyg, ld: P}, *dcol, P, inner)
				g.col2im(dxg, *dcol)
			}
		}
	})
}

// Conv2DBackwardWeights computes dw (shape wShape) = sum over images of
// dY·col^T, and, if db is not nil, db[o] = sum of dy[:, o, :, :].
// Each image's product is computed in float32 and summed over images in
// float64; db is summed in float64.
func (b *Backend) Conv2DBackwardWeights(dw, db, x, dy *tensor.Tensor, wShape []int, p backend.ConvParams) {
	const op = "ref.Conv2DBackwardWeights"
	all := []*tensor.Tensor{x, dy}
	mustDst(op, dw, "dw", all...)
	mustPlain(op, x, dy)
	g := newConvGeom(op, x.Shape(), wShape, p, all...)
	mustShape(op, dy, g.outShape(), "dy", all...)
	if dw == x || dw == dy || db == x || db == dy || (db != nil && db == dw) {
		backend.Fail(op, "the destinations dw and db must not be inputs", all...)
	}

	xv, dyv := x.Values(), dy.Values()
	K, P := g.k(), g.spatial()
	outer, inner := split(b.threads, g.n)
	// sums[lo] is the float64 sum over the images [lo, hi) of one goroutine.
	sums := make([][]float64, g.n)
	parallel(g.n, outer, func(lo, hi int) {
		var col *[]float32
		if !g.pointwise() {
			col = getScratch(K * P)
			defer putScratch(col)
		}
		part := getScratch(g.o * K) // this image's dW, all groups
		defer putScratch(part)
		sum := make([]float64, g.o*K)
		for n := lo; n < hi; n++ {
			clear(*part)
			for gi := range g.groups {
				xg := xv[(n*g.c+gi*g.cg)*g.h*g.w : (n*g.c+(gi+1)*g.cg)*g.h*g.w]
				src := xg
				if col != nil {
					g.im2col(*col, xg)
					src = *col
				}
				dyg := dyv[(n*g.o+gi*g.og)*P : (n*g.o+(gi+1)*g.og)*P]
				// dW_g (O/groups × K) = dY_g (O/groups × P) · col^T (P × K)
				gemm(g.og, K, P, matrix{data: dyg, ld: P}, matrix{data: src, ld: P, trans: true}, (*part)[gi*g.og*K:], K, inner)
			}
			for i, v := range *part {
				sum[i] += float64(v)
			}
		}
		sums[lo] = sum
	})
	reset(dw, wShape...)
	dwv := dw.Storage()
	for i := range dwv {
		var s float64
		for _, sum := range sums {
			if sum != nil {
				s += sum[i]
			}
		}
		dwv[i] = float32(s)
	}

	if db != nil {
		// db[o] = sum_{n, oy, ox} dy[n, o, oy, ox]
		reset(db, g.o)
		dbv := db.Storage()
		for o := range g.o {
			var s float64
			for n := range g.n {
				for _, v := range dyv[(n*g.o+o)*P : (n*g.o+o+1)*P] {
					s += float64(v)
				}
			}
			dbv[o] = float32(s)
		}
	}
}
