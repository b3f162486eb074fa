package ref

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/backend/backendtest"
	"github.com/resgo/resgo/tensor"
)

// Forward checks against the float64 definitions of helpers_test.go, the
// GEMM against a naive triple loop, and the input validation.

// fwdTol is the relative error (backendtest.RelErr's measure) accepted for
// float32 forward results against their float64 definitions.
const fwdTol = 1e-5

func TestRegistry(t *testing.T) {
	b, err := backend.New("ref", 3)
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "ref" || b.Threads() != 3 {
		t.Errorf("New(ref, 3): name %q, threads %d", b.Name(), b.Threads())
	}
	b.SetThreads(0)
	if b.Threads() != 1 {
		t.Errorf("SetThreads(0) gives %d threads, want 1", b.Threads())
	}
	src := randT(1, 2, 3)
	dst := dirty(1)
	b.ToPlain(dst, src)
	if !tensor.SameShape(dst.Shape(), src.Shape()) || relErr(dst.Values(), f64(src)) != 0 {
		t.Errorf("ToPlain did not copy")
	}
}

// naiveGemm is C += op(A)·op(B) with a triple loop in float64.
func naiveGemm(m, n, k int, a, b matrix, c []float32, ldc int) []float64 {
	out := make([]float64, len(c))
	for i, v := range c {
		out[i] = float64(v)
	}
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				s += float64(a.at(i, p)) * float64(b.at(p, j))
			}
			out[i*ldc+j] += s
		}
	}
	return out
}

func TestGemm(t *testing.T) {
	sizes := [][3]int{{1, 1, 1}, {5, 3, 7}, {4, 2, 256}, {9, 1030, 3}, {130, 515, 260}, {3, 17, 600}}
	for _, sz := range sizes {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, threads := range []int{1, 3} {
					m, n, k := sz[0], sz[1], sz[2]
					lda, ldb, ldc := k+1, n+2, n+3 // leading dimensions larger than needed
					if ta {
						lda = m + 1
					}
					if tb {
						ldb = k + 2
					}
					rows := func(r, ld int) []float32 { return randT(uint64(r*ld), r*ld).Values() }
					a := matrix{data: rows(max(m, k), lda), ld: lda, trans: ta}
					b := matrix{data: rows(max(n, k), ldb), ld: ldb, trans: tb}
					c := randT(7, m*ldc).Values()
					want := naiveGemm(m, n, k, a, b, c, ldc)
					gemm(m, n, k, a, b, c, ldc, threads)
					if e := relErr(c, want); e > fwdTol {
						t.Errorf("gemm %v transA=%v transB=%v threads=%d: relative error %.3g", sz, ta, tb, threads, e)
					}
				}
			}
		}
	}
}

func TestConvForward(t *testing.T) {
	for i, c := range backendtest.ConvCases {
		t.Run(c.Name, func(t *testing.T) {
			seed := uint64(1000 * i)
			x, w := randT(seed+1, c.XShape()...), randT(seed+2, c.WShape()...)
			var bias *tensor.Tensor
			var b64 []float64
			if c.Bias {
				bias = randT(seed+3, c.O)
				b64 = f64(bias)
			}
			want, out := conv64(f64(x), c.XShape(), f64(w), c.WShape(), b64, c.P)

			var first []float32
			for _, threads := range []int{1, 2, 3} {
				y := dirty(len(want))
				New(threads).Conv2D(y, x, w, bias, c.P, backend.Epilogue{})
				if !tensor.SameShape(y.Shape(), out) {
					t.Fatalf("y shape %v, want %v", y.Shape(), out)
				}
				if e := relErr(y.Values(), want); e > fwdTol {
					t.Errorf("threads %d: relative error %.3g", threads, e)
				}
				// The result does not depend on the number of threads.
				if first == nil {
					first = y.Values()
				} else if relErr(y.Values(), f64(tensor.Wrap(first, len(first)))) != 0 {
					t.Errorf("threads %d: result differs from 1 thread", threads)
				}
			}

			// Epilogue: relu(conv + bias + add), into a fresh y and into add itself.
			add := randT(seed+4, out...)
			want2 := make([]float64, len(want))
			for k, v := range want {
				want2[k] = max(v+float64(add.Values()[k]), 0)
			}
			b := New(2)
			y := dirty(len(want))
			b.Conv2D(y, x, w, bias, c.P, backend.Epilogue{Add: add, ReLU: true})
			if e := relErr(y.Values(), want2); e > fwdTol {
				t.Errorf("epilogue: relative error %.3g", e)
			}
			b.Conv2D(add, x, w, bias, c.P, backend.Epilogue{Add: add, ReLU: true})
			if e := relErr(add.Values(), want2); e > fwdTol {
				t.Errorf("epilogue into Add itself: relative error %.3g", e)
			}
		})
	}
}

// TestConvAdjoint checks both convolution backward passes on shapes large
// enough to exercise every GEMM block boundary and several images per
// goroutine, and on non-square kernels, through the identity that defines
// them (no bias):
//
//	sum r*conv(x, w) = sum x*BackwardData(r) = sum w*BackwardWeights(r)
func TestConvAdjoint(t *testing.T) {
	cases := []struct {
		name   string
		xs, ws []int
		p      backend.ConvParams
	}{
		{"1x1 big", []int{3, 300, 24, 24}, []int{136, 300, 1, 1}, backend.ConvParams{}},
		{"3x3 s2 big", []int{5, 40, 25, 23}, []int{12, 40, 3, 3}, backend.ConvParams{Stride: [2]int{2, 2}, Pad: [2]int{1, 1}}},
		{"1x1 groups 2", []int{2, 8, 5, 5}, []int{6, 4, 1, 1}, backend.ConvParams{Groups: 2}},
		{"1x1 stride (1,2) pad (2,0)", []int{2, 6, 11, 9}, []int{4, 3, 1, 1}, backend.ConvParams{Stride: [2]int{1, 2}, Pad: [2]int{2, 0}, Groups: 2}},
		{"3x5 kernel", []int{2, 3, 7, 8}, []int{4, 3, 3, 5}, backend.ConvParams{Stride: [2]int{2, 1}, Pad: [2]int{1, 2}, Dilation: [2]int{1, 2}}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := New(2)
			x, w := randT(uint64(i+1), c.xs...), randT(uint64(i+2), c.ws...)
			y := dirty(1)
			b.Conv2D(y, x, w, nil, c.p, backend.Epilogue{})
			y64, out := conv64(f64(x), c.xs, f64(w), c.ws, nil, c.p)
			if !tensor.SameShape(y.Shape(), out) {
				t.Fatalf("y shape %v, want %v", y.Shape(), out)
			}
			if e := relErr(y.Values(), y64); e > fwdTol {
				t.Errorf("forward relative error %.3g", e)
			}
			r := randT(uint64(i+3), out...)
			dx, dw := dirty(1), dirty(1)
			b.Conv2DBackwardData(dx, r, w, x, c.p)
			b.Conv2DBackwardWeights(dw, nil, x, r, c.ws, c.p)
			L := dot(r.Values(), y64)
			Lx, Lw := dot(dx.Values(), f64(x)), dot(dw.Values(), f64(w))
			if math.Abs(Lx-L) > fwdTol*math.Abs(L) || math.Abs(Lw-L) > fwdTol*math.Abs(L) {
				t.Errorf("<r, conv(x)> = %.9g, <x, dx> = %.9g, <w, dw> = %.9g", L, Lx, Lw)
			}
		})
	}
}

func TestBatchNormForward(t *testing.T) {
	b := New(2)
	const eps = 1e-5
	for i, c := range backendtest.ActCases {
		t.Run(c.Name, func(t *testing.T) {
			// A shifted, scaled input: the statistics are not trivially 0 and 1.
			x := randT(uint64(1100*i), c.Shape()...)
			for k, v := range x.Values() {
				x.Mutable()[k] = 3 + 2*v
			}
			ones, zeros := tensor.New(c.C), tensor.New(c.C)
			ones.Fill(1)
			y, mean, variance := dirty(x.Len()), dirty(c.C), dirty(c.C)
			b.BatchNormTrain(y, mean, variance, x, ones, zeros, eps, false)
			want, wm, wv := bn64(f64(x), c.Shape(), f64(ones), f64(zeros), eps, false)
			if relErr(mean.Values(), wm) > 1e-6 || relErr(variance.Values(), wv) > 1e-6 {
				t.Errorf("batch mean %v / biased variance %v, want %v / %v", mean.Values(), variance.Values(), wm, wv)
			}
			if e := relErr(y.Values(), want); e > fwdTol {
				t.Errorf("y relative error %.3g", e)
			}
			// With gamma 1 and beta 0, every channel of y has mean 0 and
			// (biased) variance var/(var+eps), i.e. 1 up to eps.
			if c.N*c.H*c.W > 1 {
				_, ym, yv := bn64(f64(y), c.Shape(), f64(ones), f64(zeros), 0, false)
				for ch := range c.C {
					if math.Abs(ym[ch]) > 1e-6 || math.Abs(yv[ch]-1) > 1e-3 {
						t.Errorf("channel %d of y: mean %.3g, variance %.6g", ch, ym[ch], yv[ch])
					}
				}
			}

			// Infer with the batch statistics gives the Train output; with
			// ReLU, its max(., 0). In place (y = x) too.
			gamma := backendtest.RandPositive(uint64(1100*i+1), 0.5, 1.5, c.C)
			beta := randT(uint64(1100*i+2), c.C)
			b.BatchNormTrain(y, mean, variance, x, gamma, beta, eps, true)
			want, _, _ = bn64(f64(x), c.Shape(), f64(gamma), f64(beta), eps, true)
			if e := relErr(y.Values(), want); e > fwdTol {
				t.Errorf("train relu: relative error %.3g", e)
			}
			yi := dirty(1)
			b.BatchNormInfer(yi, x, gamma, beta, mean, variance, eps, true)
			if e := relErr(yi.Values(), want); e > fwdTol {
				t.Errorf("infer relu: relative error %.3g", e)
			}
			xc := x.Clone()
			b.BatchNormInfer(xc, xc, gamma, beta, mean, variance, eps, true)
			if e := relErr(xc.Values(), want); e > fwdTol {
				t.Errorf("infer in place: relative error %.3g", e)
			}
		})
	}
}

func TestPoolForward(t *testing.T) {
	b := New(2)
	for i, c := range backendtest.ActCases {
		for j, p := range backendtest.PoolCases {
			if _, err := backend.CheckPool(c.Shape(), p); err != nil {
				continue
			}
			x := randT(uint64(1200*i+j), c.Shape()...)
			want, out := pool64(f64(x), c.Shape(), p)
			y := dirty(1)
			b.MaxPool2D(y, x, p)
			if !tensor.SameShape(y.Shape(), out) || relErr(y.Values(), want) != 0 {
				t.Errorf("%s pool%d: got %v %v, want %v", c.Name, j, y.Shape(), y.Values(), want)
			}
		}
	}

	// Padding is -inf, not 0: an all-negative input pools to its own values.
	stem := backendtest.PoolCases[0]
	x := tensor.New(1, 1, 4, 4)
	x.Fill(-5)
	y := dirty(1)
	b.MaxPool2D(y, x, stem)
	for _, v := range y.Values() {
		if v != -5 {
			t.Fatalf("pooling -5s with padding gives %v", y.Values())
		}
	}

	// Ties go to the first maximum in row-major window order: with every
	// value equal, the 2x2/2 windows of a 4x4 image each send their
	// gradient to their top-left corner.
	x.Fill(1)
	p := backend.PoolParams{Kernel: [2]int{2, 2}, Stride: [2]int{2, 2}}
	b.MaxPool2D(y, x, p)
	dy := tensor.FromValues([]float32{1, 2, 3, 4}, 1, 1, 2, 2)
	dx := dirty(1)
	b.MaxPool2DBackward(dx, dy, x, y, p)
	want := []float32{1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0}
	if fmt.Sprint(dx.Values()) != fmt.Sprint(want) {
		t.Errorf("ties: dx %v, want %v", dx.Values(), want)
	}
	// Overlapping windows (3x3 stride 1) with ties accumulate at the first.
	x3 := tensor.New(1, 1, 3, 3)
	x3.Fill(2)
	p3 := backend.PoolParams{Kernel: [2]int{3, 3}, Stride: [2]int{1, 1}, Pad: [2]int{1, 1}}
	y3, dx3 := dirty(1), dirty(1)
	b.MaxPool2D(y3, x3, p3)
	dy3 := tensor.New(1, 1, 3, 3)
	dy3.Fill(1)
	b.MaxPool2DBackward(dx3, dy3, x3, y3, p3)
	// Window (oy, ox) starts at (oy-1, ox-1); its first valid element is
	// (max(oy-1, 0), max(ox-1, 0)).
	want3 := []float32{4, 2, 0, 2, 1, 0, 0, 0, 0}
	if fmt.Sprint(dx3.Values()) != fmt.Sprint(want3) {
		t.Errorf("overlapping ties: dx %v, want %v", dx3.Values(), want3)
	}
}

func TestElementwiseForward(t *testing.T) {
	b := New(2)
	c := backendtest.ActCases[1]
	x1, x2 := randT(1, c.Shape()...), randT(2, c.Shape()...)
	sum := make([]float64, x1.Len())
	relu := make([]float64, x1.Len())
	for k := range sum {
		sum[k] = float64(x1.Values()[k] + x2.Values()[k])
		relu[k] = max(float64(x1.Values()[k]), 0)
	}
	y := dirty(1)
	b.ReLU(y, x1)
	if relErr(y.Values(), relu) != 0 {
		t.Errorf("ReLU")
	}
	b.Add(y, x1, x2, false)
	if relErr(y.Values(), sum) != 0 {
		t.Errorf("Add")
	}
	// y may be a or b.
	a1, a2 := x1.Clone(), x2.Clone()
	b.Add(a1, a1, x2, true)
	b.Add(a2, x1, a2, true)
	for k, v := range sum {
		if float64(a1.Values()[k]) != max(v, 0) || float64(a2.Values()[k]) != max(v, 0) {
			t.Fatalf("Add in place: element %d: %v %v, want %v", k, a1.Values()[k], a2.Values()[k], max(v, 0))
		}
	}
	// In-place ReLU.
	r := x1.Clone()
	b.ReLU(r, r)
	if relErr(r.Values(), relu) != 0 {
		t.Errorf("ReLU in place")
	}

	b.GlobalAvgPool(y, x1)
	if !tensor.SameShape(y.Shape(), []int{c.N, c.C, 1, 1}) || relErr(y.Values(), gap64(f64(x1), c.Shape())) > 1e-6 {
		t.Errorf("GlobalAvgPool: %v %v", y.Shape(), y.Values())
	}
}

func TestLinearForward(t *testing.T) {
	b := New(2)
	for i, c := range backendtest.LinearCases {
		x, w := randT(uint64(1300*i), c.N, c.K), randT(uint64(1300*i+1), c.M, c.K)
		var bias *tensor.Tensor
		var b64 []float64
		if c.Bias {
			bias = randT(uint64(1300*i+2), c.M)
			b64 = f64(bias)
		}
		y := dirty(1)
		b.Linear(y, x, w, bias)
		if !tensor.SameShape(y.Shape(), []int{c.N, c.M}) {
			t.Errorf("shape %v", y.Shape())
		}
		if e := relErr(y.Values(), linear64(f64(x), f64(w), b64, c.N, c.K, c.M)); e > fwdTol {
			t.Errorf("%v: relative error %.3g", c, e)
		}
	}
}

func TestSoftmaxCrossEntropyValues(t *testing.T) {
	b := New(1)
	// Huge logits stay finite: loss = logsumexp - l_label, computed stably.
	l := tensor.FromValues([]float32{1000, 0, -1000, 1000}, 2, 2)
	for _, tc := range []struct {
		labels []int
		eps    float32
		want   float64
	}{
		{[]int{0, 1}, 0, 0},                          // both confident and right
		{[]int{1, 0}, 0, (1000 + 2000) / 2},          // 1000 and 2000 nats, averaged
		{[]int{0, 1}, 0.1, (0.1*500 + 0.1*1000) / 2}, // eps*mean_j(-log p_j) only
	} {
		got := b.SoftmaxCrossEntropy(nil, l, tc.labels, tc.eps)
		// (eps is a float32, 0.1 only to 1.5e-9.)
		if math.Abs(got-tc.want) > 1e-7*max(1, tc.want) {
			t.Errorf("labels %v eps %g: loss %v, want %v", tc.labels, tc.eps, got, tc.want)
		}
	}
	// PyTorch: F.cross_entropy(torch.tensor([[1., 2., 3.]]), torch.tensor([0]),
	// label_smoothing=0.1) = 2.3076059...; from the definition:
	// lse = 3.4076059644, -log p = (2.4076, 1.4076, 0.4076);
	// 0.9*2.4076059644 + 0.1*mean = 2.1668453680 + 0.1407605964 = 2.3076059644.
	got := b.SoftmaxCrossEntropy(nil, tensor.FromValues([]float32{1, 2, 3}, 1, 3), []int{0}, 0.1)
	if math.Abs(got-2.3076059644) > 1e-8 {
		t.Errorf("loss %.10f, want 2.3076059644", got)
	}
	// The gradient may be written over the logits.
	lg := tensor.FromValues([]float32{1, 2, 3}, 1, 3)
	want := dirty(1)
	b.SoftmaxCrossEntropy(want, lg, []int{2}, 0.1)
	b.SoftmaxCrossEntropy(lg, lg, []int{2}, 0.1)
	if relErr(lg.Values(), f64(want)) != 0 {
		t.Errorf("in-place gradient %v, want %v", lg.Values(), want.Values())
	}
}

// TestBadInputs checks that broken invariants panic with a *backend.Error
// naming the op and the shapes involved.
func TestBadInputs(t *testing.T) {
	b := New(2)
	opaque := tensor.New(1, 4, 5, 5)
	opaque.Reset(tensor.Opaque, "another backend's blocked layout", 200, 1, 4, 5, 5)
	x := randT(1, 1, 6, 5, 5)
	g4 := backend.ConvParams{Groups: 4}
	y := &tensor.Tensor{}
	cases := []struct {
		name, op string
		want     []string // substrings of the message
		f        func()
	}{
		{"groups do not divide channels", "ref.Conv2D", []string{"groups 4", "[1 6 5 5]", "[4 2 3 3]"},
			func() { b.Conv2D(y, x, randT(2, 4, 2, 3, 3), nil, g4, backend.Epilogue{}) }},
		{"weight channels mismatch", "ref.Conv2D", []string{"[4 3 3 3]"},
			func() { b.Conv2D(y, x, randT(2, 4, 3, 3, 3), nil, backend.ConvParams{}, backend.Epilogue{}) }},
		{"kernel larger than image", "ref.Conv2D", []string{"too small"},
			func() { b.Conv2D(y, x, randT(2, 4, 6, 7, 7), nil, backend.ConvParams{}, backend.Epilogue{}) }},
		{"bias size", "ref.Conv2D", []string{"bias", "[5]"},
			func() { b.Conv2D(y, x, randT(2, 4, 6, 3, 3), randT(3, 5), backend.ConvParams{}, backend.Epilogue{}) }},
		{"residual shape", "ref.Conv2D", []string{"Add", "[1 4 5 5]"},
			func() {
				b.Conv2D(y, x, randT(2, 4, 6, 3, 3), nil, backend.ConvParams{}, backend.Epilogue{Add: randT(3, 1, 4, 5, 5)})
			}},
		{"opaque input", "ref.Conv2D", []string{"opaque"},
			func() { b.Conv2D(y, opaque, randT(2, 4, 4, 1, 1), nil, backend.ConvParams{}, backend.Epilogue{}) }},
		{"dy shape", "ref.Conv2DBackwardData", []string{"dy", "[1 4 3 3]"},
			func() { b.Conv2DBackwardData(y, randT(3, 1, 4, 5, 5), randT(2, 4, 6, 3, 3), x, backend.ConvParams{}) }},
		{"wShape groups", "ref.Conv2DBackwardWeights", []string{"groups 4"},
			func() { b.Conv2DBackwardWeights(y, nil, x, randT(3, 1, 4, 3, 3), []int{4, 2, 3, 3}, g4) }},
		{"BN gamma size", "ref.BatchNormTrain", []string{"[5]", "[6]"},
			func() {
				b.BatchNormTrain(y, &tensor.Tensor{}, &tensor.Tensor{}, x, randT(1, 5), randT(1, 6), 1e-5, false)
			}},
		{"BN 2-D input", "ref.BatchNormInfer", []string{"4-D"},
			func() {
				c := randT(1, 6)
				b.BatchNormInfer(y, randT(1, 2, 6), c, c, c, c, 1e-5, false)
			}},
		{"BN backward relu without y", "ref.BatchNormBackward", []string{"nil"},
			func() {
				c := randT(1, 6)
				b.BatchNormBackward(y, nil, nil, x, x, nil, c, c, c, 1e-5, true)
			}},
		{"ReLU opaque", "ref.ReLU", []string{"opaque", "ToPlain"}, func() { b.ReLU(y, opaque) }},
		{"ToPlain opaque", "ref.ToPlain", []string{"opaque"}, func() { b.ToPlain(y, opaque) }},
		{"ReLUBackward shapes", "ref.ReLUBackward", []string{"[1 6 5 5]", "[1 6 5 4]"},
			func() { b.ReLUBackward(y, x, randT(1, 1, 6, 5, 4)) }},
		{"pool padding", "ref.MaxPool2D", []string{"padding"},
			func() { b.MaxPool2D(y, x, backend.PoolParams{Kernel: [2]int{2, 2}, Pad: [2]int{2, 2}}) }},
		{"pool dy", "ref.MaxPool2DBackward", []string{"dy"},
			func() {
				b.MaxPool2DBackward(y, x, x, nil, backend.PoolParams{Kernel: [2]int{2, 2}, Stride: [2]int{2, 2}})
			}},
		{"GAP dy", "ref.GlobalAvgPoolBackward", []string{"[1 6 1 1]"},
			func() { b.GlobalAvgPoolBackward(y, randT(1, 1, 5), x) }},
		{"Add shapes", "ref.Add", []string{"[1 6 5 5]", "[1 6 5 4]"},
			func() { b.Add(y, x, randT(1, 1, 6, 5, 4), false) }},
		{"Linear K", "ref.Linear", []string{"[3 8]", "[2 7]"},
			func() { b.Linear(y, randT(1, 2, 7), randT(2, 3, 8), nil) }},
		{"LinearBackward dy", "ref.LinearBackward", []string{"[2 4]", "[3 8]"},
			func() { b.LinearBackward(y, nil, nil, randT(1, 2, 4), nil, randT(2, 3, 8)) }},
		{"label range", "ref.SoftmaxCrossEntropy", []string{"label 3", "[2 3]"},
			func() { b.SoftmaxCrossEntropy(nil, randT(1, 2, 3), []int{0, 3}, 0) }},
		{"label count", "ref.SoftmaxCrossEntropy", []string{"1 labels"},
			func() { b.SoftmaxCrossEntropy(nil, randT(1, 2, 3), []int{0}, 0) }},
		{"nil weight", "ref.Conv2D", []string{"nil"},
			func() { b.Conv2D(y, x, nil, nil, backend.ConvParams{}, backend.Epilogue{}) }},
	}
	for _, tc := range cases {
		err := backend.Catch(tc.f)
		var be *backend.Error
		if !errors.As(err, &be) {
			t.Errorf("%s: no *backend.Error (got %v)", tc.name, err)
			continue
		}
		if be.Op != tc.op {
			t.Errorf("%s: op %q, want %q", tc.name, be.Op, tc.op)
		}
		for _, s := range tc.want {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: message %q does not mention %q", tc.name, err.Error(), s)
			}
		}
	}
}

// TestThreadsDeterministic runs the backward passes with different thread
// counts, splitting the batch of 5 among goroutines (5 threads) or each
// image's products (2, 4, 7 threads).
func TestThreadsDeterministic(t *testing.T) {
	c := backendtest.ConvCase{N: 5, C: 8, H: 9, W: 9, O: 8, K: 3, P: backend.ConvParams{Pad: [2]int{1, 1}}}
	x, w := randT(1, c.XShape()...), randT(2, c.WShape()...)
	r := randT(3, c.N, c.O, c.H, c.W)
	var dx1, dw1, db1 []float64
	for _, threads := range []int{1, 2, 4, 5, 7} {
		b := New(threads)
		dx, dw, db := dirty(1), dirty(1), dirty(1)
		b.Conv2DBackwardData(dx, r, w, x, c.P)
		b.Conv2DBackwardWeights(dw, db, x, r, c.WShape(), c.P)
		if dx1 == nil {
			dx1, dw1, db1 = f64(dx), f64(dw), f64(db)
			continue
		}
		if relErr(dx.Values(), dx1) != 0 || relErr(dw.Values(), dw1) > 1e-7 || relErr(db.Values(), db1) != 0 {
			t.Errorf("threads %d: gradients differ from 1 thread", threads)
		}
	}
}
