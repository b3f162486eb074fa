package ref

import (
	"fmt"
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/backend/backendtest"
	"github.com/resgo/resgo/tensor"
)

// Gradient checks of every backward op: for a fixed random projection r,
// L = sum r * forward(inputs); the backward op run with dy = r must give the
// gradient of L, compared with central differences of the float64
// definitions in helpers_test.go (see gradCheck for the tolerance).

func TestConvGrad(t *testing.T) {
	b := New(2)
	for i, c := range backendtest.ConvCases {
		t.Run(c.Name, func(t *testing.T) {
			seed := uint64(100 * i)
			x, w := randT(seed+1, c.XShape()...), randT(seed+2, c.WShape()...)
			bias := randT(seed+3, c.O)
			out, err := backend.CheckConv(c.XShape(), c.WShape(), c.P)
			if err != nil {
				t.Fatal(err)
			}
			r := randT(seed+4, out...)

			dx, dw, db := dirty(x.Len()), dirty(w.Len()), dirty(c.O)
			b.Conv2DBackwardData(dx, r, w, x, c.P)
			if c.Bias {
				b.Conv2DBackwardWeights(dw, db, x, r, c.WShape(), c.P)
			} else {
				b.Conv2DBackwardWeights(dw, nil, x, r, c.WShape(), c.P)
			}

			// L reads x64, w64 and b64, which gradCheck perturbs in place.
			x64, w64, b64 := f64(x), f64(w), f64(bias)
			L := func([]float64) float64 {
				y, _ := conv64(x64, c.XShape(), w64, c.WShape(), b64, c.P)
				return dot(r.Values(), y)
			}
			gradCheck(t, "dx", dx, x64, 0, L)
			gradCheck(t, "dw", dw, w64, 0, L)
			if c.Bias {
				gradCheck(t, "db", db, b64, 0, L)
			} else if db.Rank() != 1 || db.Len() < 1<<15 {
				t.Errorf("db was written although nil was passed for it")
			}
			if !tensor.SameShape(dx.Shape(), c.XShape()) || !tensor.SameShape(dw.Shape(), c.WShape()) {
				t.Errorf("gradient shapes %v %v, want %v %v", dx.Shape(), dw.Shape(), c.XShape(), c.WShape())
			}
		})
	}
}

func TestBatchNormGrad(t *testing.T) {
	b := New(2)
	const eps = 1e-5
	for i, c := range backendtest.ActCases {
		for _, relu := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s relu=%v", c.Name, relu), func(t *testing.T) {
				seed := uint64(200 * i)
				x := randT(seed+1, c.Shape()...)
				gamma := backendtest.RandPositive(seed+2, 0.5, 1.5, c.C)
				beta := randT(seed+3, c.C)
				r := randT(seed+4, c.Shape()...)

				y, mean, variance := dirty(x.Len()), dirty(c.C), dirty(c.C)
				b.BatchNormTrain(y, mean, variance, x, gamma, beta, eps, relu)
				dx, dgamma, dbeta := dirty(x.Len()), dirty(c.C), dirty(c.C)
				b.BatchNormBackward(dx, dgamma, dbeta, r, x, y, gamma, mean, variance, eps, relu)

				// L reads x64, g64 and b64, which gradCheck perturbs in place.
				x64, g64, b64 := f64(x), f64(gamma), f64(beta)
				L := func([]float64) float64 {
					y, _, _ := bn64(x64, c.Shape(), g64, b64, eps, relu)
					return dot(r.Values(), y)
				}
				skips := 0
				if relu {
					skips = 4
				}
				gradCheck(t, "dx", dx, x64, skips, L)
				gradCheck(t, "dgamma", dgamma, g64, skips, L)
				gradCheck(t, "dbeta", dbeta, b64, skips, L)

				// nil dgamma and dbeta are skipped, dx unchanged.
				dx2 := dirty(x.Len())
				b.BatchNormBackward(dx2, nil, nil, r, x, y, gamma, mean, variance, eps, relu)
				if e := relErr(dx2.Values(), f64(dx)); e != 0 {
					t.Errorf("dx with nil dgamma, dbeta differs by %g", e)
				}
			})
		}
	}
}

func TestReLUGrad(t *testing.T) {
	b := New(2)
	for i, c := range backendtest.ActCases {
		t.Run(c.Name, func(t *testing.T) {
			x := awayFromZero(uint64(300*i), c.Shape()...)
			r := randT(uint64(300*i+1), c.Shape()...)
			y, dx := dirty(x.Len()), dirty(x.Len())
			b.ReLU(y, x)
			b.ReLUBackward(dx, r, y)
			x64 := f64(x)
			gradCheck(t, "dx", dx, x64, 0, func(x []float64) float64 {
				var s float64
				for i, v := range x {
					s += float64(r.Values()[i]) * max(v, 0)
				}
				return s
			})
		})
	}
}

func TestMaxPoolGrad(t *testing.T) {
	b := New(2)
	for i, c := range backendtest.ActCases {
		for j, p := range backendtest.PoolCases {
			out, err := backend.CheckPool(c.Shape(), p)
			if err != nil {
				continue // the window does not fit this shape
			}
			t.Run(fmt.Sprintf("%s pool%d", c.Name, j), func(t *testing.T) {
				seed := uint64(400*i + 10*j)
				x := distinct(seed, c.Shape()...)
				r := randT(seed+1, out...)
				y, dx := dirty(tensor.Numel(out)), dirty(x.Len())
				b.MaxPool2D(y, x, p)
				b.MaxPool2DBackward(dx, r, x, y, p)
				x64 := f64(x)
				gradCheck(t, "dx", dx, x64, 0, func(x []float64) float64 {
					y, _ := pool64(x, c.Shape(), p)
					return dot(r.Values(), y)
				})
			})
		}
	}
}

func TestGlobalAvgPoolGrad(t *testing.T) {
	b := New(2)
	for i, c := range backendtest.ActCases {
		t.Run(c.Name, func(t *testing.T) {
			x := randT(uint64(500*i), c.Shape()...)
			r := randT(uint64(500*i+1), c.N, c.C, 1, 1)
			dx := dirty(x.Len())
			b.GlobalAvgPoolBackward(dx, r, x)
			gradCheck(t, "dx", dx, f64(x), 0, func(x []float64) float64 {
				return dot(r.Values(), gap64(x, c.Shape()))
			})
			// dy may also be [N, C].
			dx2 := dirty(x.Len())
			b.GlobalAvgPoolBackward(dx2, r.Reshape(c.N, c.C), x)
			if e := relErr(dx2.Values(), f64(dx)); e != 0 {
				t.Errorf("dy [N, C] gives a different dx (%g)", e)
			}
		})
	}
}

// TestAddGrad checks Add with ReLU: its backward is ReLUBackward of the sum,
// applied to both inputs.
func TestAddGrad(t *testing.T) {
	b := New(2)
	for i, c := range backendtest.ActCases {
		t.Run(c.Name, func(t *testing.T) {
			seed := uint64(600 * i)
			x1, x2 := randT(seed, c.Shape()...), randT(seed+1, c.Shape()...)
			// Keep every sum away from 0, the ReLU's kink.
			d2 := x2.Mutable()
			for k, v := range x1.Values() {
				if s := v + d2[k]; s > -0.05 && s < 0.05 {
					d2[k] += 0.1
				}
			}
			r := randT(seed+2, c.Shape()...)
			y, dsum := dirty(x1.Len()), dirty(x1.Len())
			b.Add(y, x1, x2, true)
			b.ReLUBackward(dsum, r, y)
			a64, b64 := f64(x1), f64(x2) // perturbed in place by gradCheck
			L := func([]float64) float64 {
				var s float64
				for k := range a64 {
					s += float64(r.Values()[k]) * max(a64[k]+b64[k], 0)
				}
				return s
			}
			gradCheck(t, "da", dsum, a64, 0, L)
			gradCheck(t, "db", dsum, b64, 0, L)
		})
	}
}

func TestLinearGrad(t *testing.T) {
	b := New(2)
	for i, c := range backendtest.LinearCases {
		t.Run(fmt.Sprintf("%dx%dx%d", c.N, c.K, c.M), func(t *testing.T) {
			seed := uint64(700 * i)
			x, w, bias := randT(seed, c.N, c.K), randT(seed+1, c.M, c.K), randT(seed+2, c.M)
			r := randT(seed+3, c.N, c.M)
			dx, dw, db := dirty(x.Len()), dirty(w.Len()), dirty(c.M)
			b.LinearBackward(dx, dw, db, r, x, w)
			x64, w64, b64 := f64(x), f64(w), f64(bias) // perturbed in place by gradCheck
			L := func([]float64) float64 { return dot(r.Values(), linear64(x64, w64, b64, c.N, c.K, c.M)) }
			gradCheck(t, "dx", dx, x64, 0, L)
			gradCheck(t, "dw", dw, w64, 0, L)
			gradCheck(t, "db", db, b64, 0, L)

			// Any of dx, dw, db may be nil; the others are unchanged.
			dx2, dw2 := dirty(x.Len()), dirty(w.Len())
			b.LinearBackward(dx2, nil, nil, r, nil, w) // x unused
			b.LinearBackward(nil, dw2, nil, r, x, nil) // w unused
			if relErr(dx2.Values(), f64(dx)) != 0 || relErr(dw2.Values(), f64(dw)) != 0 {
				t.Errorf("LinearBackward with nil destinations gives different gradients")
			}
		})
	}
}

func TestSoftmaxCrossEntropyGrad(t *testing.T) {
	b := New(2)
	for i, c := range backendtest.LinearCases {
		for _, eps := range []float32{0, 0.1} {
			t.Run(fmt.Sprintf("%dx%d eps=%g", c.N, c.M, eps), func(t *testing.T) {
				N, C := c.N, c.M
				logits := randT(uint64(800*i), N, C)
				// Spread the logits so the probabilities are far from uniform.
				for k, v := range logits.Values() {
					logits.Mutable()[k] = 3 * v
				}
				labels := make([]int, N)
				for n := range labels {
					labels[n] = (7*n + i) % C
				}
				d := dirty(logits.Len())
				loss := b.SoftmaxCrossEntropy(d, logits, labels, eps)
				l64 := f64(logits)
				want := sce64(l64, N, C, labels, float64(eps))
				if diff := loss - want; diff > 1e-6*want || diff < -1e-6*want {
					t.Errorf("loss %.9g, want %.9g", loss, want)
				}
				gradCheck(t, "dlogits", d, l64, 0, func(l []float64) float64 {
					return sce64(l, N, C, labels, float64(eps))
				})
				if b.SoftmaxCrossEntropy(nil, logits, labels, eps) != loss {
					t.Errorf("loss without a gradient differs")
				}
			})
		}
	}
}
