//go:build cgo

package dnnl

import (
	"fmt"
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/backend/backendtest"
	"github.com/resgo/resgo/tensor"
)

func TestConvAgreesWithRef(t *testing.T) {
	b, r := newBackends(t)
	for ci, c := range backendtest.ConvCases {
		x := backendtest.Rand(uint64(100+ci), c.XShape()...)
		w := backendtest.Rand(uint64(200+ci), c.WShape()...)
		var bias *tensor.Tensor
		if c.Bias {
			bias = backendtest.Rand(uint64(300+ci), c.O)
		}
		ys, err := backend.CheckConv(c.XShape(), c.WShape(), c.P)
		if err != nil {
			t.Fatal(err)
		}
		add := backendtest.Rand(uint64(400+ci), ys...)
		dy := backendtest.Rand(uint64(500+ci), ys...)

		for _, e := range []struct {
			name string
			add  bool
			relu bool
		}{{"", false, false}, {"relu", false, true}, {"add", true, false}, {"add relu", true, true}} {
			var want tensor.Tensor
			ep := backend.Epilogue{ReLU: e.relu}
			if e.add {
				ep.Add = add
			}
			r.Conv2D(&want, x, w, bias, c.P, ep)
			for _, lay := range variants {
				ep := ep
				if e.add {
					ep.Add = as(t, b, lay, add)
				}
				y := dirty(want.Len())
				b.Conv2D(y, as(t, b, lay, x), w, bias, c.P, ep)
				compare(t, b, fmt.Sprintf("%s %s %s forward", c.Name, e.name, lay), y, &want)
			}
			if e.add {
				// In place: y holds the residual already.
				y := blocked(t, b, add)
				b.Conv2D(y, x, w, bias, c.P, backend.Epilogue{Add: y, ReLU: e.relu})
				compare(t, b, c.Name+" "+e.name+" y==Add blocked", y, &want)
				y = add.Clone()
				b.Conv2D(y, x, w, bias, c.P, backend.Epilogue{Add: y, ReLU: e.relu})
				compare(t, b, c.Name+" "+e.name+" y==Add plain", y, &want)
			}
		}

		var wantDx, wantDw, wantDb tensor.Tensor
		r.Conv2DBackwardData(&wantDx, dy, w, x, c.P)
		dbRef := &wantDb
		if !c.Bias {
			dbRef = nil
		}
		r.Conv2DBackwardWeights(&wantDw, dbRef, x, dy, c.WShape(), c.P)
		for _, lay := range variants {
			dx := dirty(x.Len())
			b.Conv2DBackwardData(dx, as(t, b, lay, dy), w, as(t, b, lay, x), c.P)
			compare(t, b, c.Name+" "+lay+" dx", dx, &wantDx)
			dw := dirty(w.Len())
			var db *tensor.Tensor
			if c.Bias {
				db = dirty(c.O)
			}
			b.Conv2DBackwardWeights(dw, db, as(t, b, lay, x), as(t, b, lay, dy), c.WShape(), c.P)
			if !dw.IsPlain() {
				t.Errorf("%s: dw is not Plain", c.Name)
			}
			compare(t, b, c.Name+" "+lay+" dw", dw, &wantDw)
			if c.Bias {
				compare(t, b, c.Name+" "+lay+" db", db, &wantDb)
			}
		}
	}
}

func TestBatchNormAgreesWithRef(t *testing.T) {
	b, r := newBackends(t)
	const eps = 1e-5
	for ci, c := range backendtest.ActCases {
		x := backendtest.Rand(uint64(10+ci), c.Shape()...)
		gamma := backendtest.RandPositive(uint64(20+ci), 0.5, 1.5, c.C)
		beta := backendtest.Rand(uint64(30+ci), c.C)
		dy := backendtest.Rand(uint64(40+ci), c.Shape()...)
		rmean := backendtest.Rand(uint64(50+ci), c.C)
		rvar := backendtest.RandPositive(uint64(60+ci), 0.5, 2, c.C)
		for _, relu := range []bool{false, true} {
			name := fmt.Sprintf("%s relu=%v", c.Name, relu)
			var wy, wm, wv, wdx, wdg, wdb, wi tensor.Tensor
			r.BatchNormTrain(&wy, &wm, &wv, x, gamma, beta, eps, relu)
			r.BatchNormBackward(&wdx, &wdg, &wdb, dy, x, &wy, gamma, &wm, &wv, eps, relu)
			r.BatchNormInfer(&wi, x, gamma, beta, rmean, rvar, eps, relu)
			for _, lay := range variants {
				xl, dyl := as(t, b, lay, x), as(t, b, lay, dy)
				y, m, v := dirty(x.Len()), dirty(c.C), dirty(c.C)
				b.BatchNormTrain(y, m, v, xl, gamma, beta, eps, relu)
				compare(t, b, name+" "+lay+" y", y, &wy)
				compare(t, b, name+" "+lay+" mean", m, &wm)
				compare(t, b, name+" "+lay+" variance (biased)", v, &wv)

				dx, dg, db := dirty(x.Len()), dirty(c.C), dirty(c.C)
				b.BatchNormBackward(dx, dg, db, dyl, xl, y, gamma, m, v, eps, relu)
				compare(t, b, name+" "+lay+" dx", dx, &wdx)
				compare(t, b, name+" "+lay+" dgamma", dg, &wdg)
				compare(t, b, name+" "+lay+" dbeta", db, &wdb)

				// Without the workspace (y not written by BatchNormTrain) and
				// without parameter gradients.
				dx2 := dirty(x.Len())
				b.BatchNormBackward(dx2, nil, nil, dyl, xl, y.Clone(), gamma, m, v, eps, relu)
				compare(t, b, name+" "+lay+" dx (no workspace, no dgamma)", dx2, &wdx)
				dx3, db3 := dirty(x.Len()), dirty(c.C)
				b.BatchNormBackward(dx3, nil, db3, dyl, xl, y, gamma, m, v, eps, relu)
				compare(t, b, name+" "+lay+" dx (dbeta only)", dx3, &wdx)
				compare(t, b, name+" "+lay+" dbeta only", db3, &wdb)

				yi := dirty(x.Len())
				b.BatchNormInfer(yi, xl, gamma, beta, rmean, rvar, eps, relu)
				compare(t, b, name+" "+lay+" infer", yi, &wi)
			}
			// In place: y is x, dx is dy.
			xin := blocked(t, b, x)
			m, v := &tensor.Tensor{}, &tensor.Tensor{}
			b.BatchNormTrain(xin, m, v, xin, gamma, beta, eps, relu)
			compare(t, b, name+" in place y", xin, &wy)
		}
	}
}

func TestActivationsAgreeWithRef(t *testing.T) {
	b, r := newBackends(t)
	for ci, c := range backendtest.ActCases {
		x := backendtest.Rand(uint64(70+ci), c.Shape()...)
		x2 := backendtest.Rand(uint64(80+ci), c.Shape()...)
		dy := backendtest.Rand(uint64(90+ci), c.Shape()...)
		var wy, wdx tensor.Tensor
		r.ReLU(&wy, x)
		r.ReLUBackward(&wdx, dy, &wy)
		for _, lay := range variants {
			y := dirty(x.Len())
			b.ReLU(y, as(t, b, lay, x))
			compare(t, b, c.Name+" "+lay+" relu", y, &wy)
			dx := dirty(x.Len())
			b.ReLUBackward(dx, as(t, b, lay, dy), y)
			compare(t, b, c.Name+" "+lay+" relu backward", dx, &wdx)
			// In place.
			xi := as(t, b, lay, x.Clone())
			b.ReLU(xi, xi)
			compare(t, b, c.Name+" "+lay+" relu in place", xi, &wy)
			dyi := as(t, b, lay, dy.Clone())
			b.ReLUBackward(dyi, dyi, xi)
			compare(t, b, c.Name+" "+lay+" relu backward in place", dyi, &wdx)
		}
		// Add, with every mix of layouts, ReLU, and y aliasing an operand.
		for _, relu := range []bool{false, true} {
			var want tensor.Tensor
			r.Add(&want, x, x2, relu)
			for _, la := range variants {
				for _, lb := range variants {
					name := fmt.Sprintf("%s add %s+%s relu=%v", c.Name, la, lb, relu)
					y := dirty(x.Len())
					b.Add(y, as(t, b, la, x), as(t, b, lb, x2), relu)
					compare(t, b, name, y, &want)
					a := as(t, b, la, x.Clone())
					b.Add(a, a, as(t, b, lb, x2), relu)
					compare(t, b, name+" y==a", a, &want)
					bb := as(t, b, lb, x2.Clone())
					b.Add(bb, as(t, b, la, x), bb, relu)
					compare(t, b, name+" y==b", bb, &want)
				}
			}
		}
		// Global average pooling.
		var wg, wgd tensor.Tensor
		r.GlobalAvgPool(&wg, x)
		gdy := backendtest.Rand(uint64(95+ci), c.N, c.C, 1, 1)
		r.GlobalAvgPoolBackward(&wgd, gdy, x)
		for _, lay := range variants {
			y := dirty(c.N * c.C)
			b.GlobalAvgPool(y, as(t, b, lay, x))
			if !y.IsPlain() {
				t.Errorf("%s: GlobalAvgPool output is not Plain", c.Name)
			}
			compare(t, b, c.Name+" "+lay+" gap", y, &wg)
			dx := dirty(x.Len())
			b.GlobalAvgPoolBackward(dx, gdy, as(t, b, lay, x))
			compare(t, b, c.Name+" "+lay+" gap backward", dx, &wgd)
			dx2 := dirty(x.Len())
			b.GlobalAvgPoolBackward(dx2, gdy.Reshape(c.N, c.C), as(t, b, lay, x))
			compare(t, b, c.Name+" "+lay+" gap backward 2-D dy", dx2, &wgd)
		}
	}
}

func TestMaxPoolAgreesWithRef(t *testing.T) {
	b, r := newBackends(t)
	for ci, c := range backendtest.ActCases {
		for pi, p := range backendtest.PoolCases {
			ys, err := backend.CheckPool(c.Shape(), p)
			if err != nil {
				continue
			}
			for _, ties := range []bool{false, true} {
				x := backendtest.Rand(uint64(10*ci+pi), c.Shape()...)
				if ties {
					// Few distinct values: windows with several maxima, where
					// the first in row-major order must win.
					d := x.Mutable()
					for i := range d {
						d[i] = float32(int(d[i] * 2))
					}
				}
				dy := backendtest.Rand(uint64(10*ci+pi+500), ys...)
				var wy, wdx tensor.Tensor
				r.MaxPool2D(&wy, x, p)
				r.MaxPool2DBackward(&wdx, dy, x, &wy, p)
				name := fmt.Sprintf("%s pool %v ties=%v", c.Name, p, ties)
				for _, lay := range variants {
					xl := as(t, b, lay, x)
					y := dirty(tensor.Numel(ys))
					b.MaxPool2D(y, xl, p)
					compare(t, b, name+" "+lay+" y", y, &wy)
					dx := dirty(x.Len())
					b.MaxPool2DBackward(dx, as(t, b, lay, dy), xl, y, p)
					compare(t, b, name+" "+lay+" dx", dx, &wdx)
					// Without the workspace: y did not come from MaxPool2D.
					dx2 := dirty(x.Len())
					b.MaxPool2DBackward(dx2, as(t, b, lay, dy), xl, y.Clone(), p)
					compare(t, b, name+" "+lay+" dx (no workspace)", dx2, &wdx)
				}
			}
		}
	}
}

func TestLinearAndLossAgreeWithRef(t *testing.T) {
	b, r := newBackends(t)
	for ci, c := range backendtest.LinearCases {
		x := backendtest.Rand(uint64(ci+1), c.N, c.K)
		w := backendtest.Rand(uint64(ci+11), c.M, c.K)
		var bias *tensor.Tensor
		if c.Bias {
			bias = backendtest.Rand(uint64(ci+21), c.M)
		}
		dy := backendtest.Rand(uint64(ci+31), c.N, c.M)
		name := fmt.Sprintf("linear %v", c)
		var wy, wdx, wdw, wdb tensor.Tensor
		r.Linear(&wy, x, w, bias)
		r.LinearBackward(&wdx, &wdw, &wdb, dy, x, w)
		y := dirty(c.N * c.M)
		b.Linear(y, x, w, bias)
		compare(t, b, name+" y", y, &wy)
		dx, dw, db := dirty(x.Len()), dirty(w.Len()), dirty(c.M)
		b.LinearBackward(dx, dw, db, dy, x, w)
		compare(t, b, name+" dx", dx, &wdx)
		compare(t, b, name+" dw", dw, &wdw)
		compare(t, b, name+" db", db, &wdb)
		dw2 := dirty(w.Len())
		b.LinearBackward(nil, dw2, nil, dy, x, w)
		compare(t, b, name+" dw alone", dw2, &wdw)
		db2 := dirty(c.M)
		b.LinearBackward(nil, nil, db2, dy, x, w)
		compare(t, b, name+" db alone", db2, &wdb)

		labels := make([]int, c.N)
		for i := range labels {
			labels[i] = (i * 7) % c.M
		}
		for _, smooth := range []float32{0, 0.1} {
			var wg tensor.Tensor
			wl := r.SoftmaxCrossEntropy(&wg, &wy, labels, smooth)
			g := dirty(c.N * c.M)
			l := b.SoftmaxCrossEntropy(g, y, labels, smooth)
			if d := abs(l - wl); d > 1e-5*max(1, abs(wl)) {
				t.Errorf("%s loss smoothing %g: %v, ref %v", name, smooth, l, wl)
			}
			compare(t, b, fmt.Sprintf("%s dlogits smoothing %g", name, smooth), g, &wg)
			// dlogits may be logits.
			yc := y.Clone()
			l2 := b.SoftmaxCrossEntropy(yc, yc, labels, smooth)
			if l2 != l {
				t.Errorf("%s: in-place loss %v != %v", name, l2, l)
			}
			compare(t, b, name+" dlogits in place", yc, &wg)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestToPlainRoundTrip(t *testing.T) {
	b, _ := newBackends(t)
	for ci, c := range backendtest.ActCases {
		x := backendtest.Rand(uint64(ci), c.Shape()...)
		bx := blocked(t, b, x)
		p := dirty(x.Len())
		b.ToPlain(p, bx)
		compare(t, b, c.Name+" to plain", p, x)
		b.ToPlain(bx, bx)
		if !bx.IsPlain() {
			t.Errorf("%s: ToPlain in place left the tensor opaque", c.Name)
		}
		compare(t, b, c.Name+" to plain in place", bx, x)
	}
}
