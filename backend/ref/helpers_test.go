package ref

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/tensor"
)

// This file holds the float64 definitions the tests check the backend
// against, written as directly as possible from each operation's formula,
// and the finite-difference gradient checker.

// ---- conversions and inputs ----

// f64 returns t's values as float64.
func f64(t *tensor.Tensor) []float64 {
	v := t.Values()
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// to32 converts float64 values to a Plain tensor of the given shape.
func to32(v []float64, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	d := t.Mutable()
	for i, x := range v {
		d[i] = float32(x)
	}
	return t
}

// dirty returns a destination tensor whose storage, of at least n and at
// least 32768 elements, is full of NaN, so that an op that reuses it and
// leaves an element unwritten is caught.
func dirty(n int) *tensor.Tensor {
	t := tensor.New(max(n, 1<<15) + 7)
	t.Fill(float32(math.NaN()))
	return t
}

// awayFromZero returns a random tensor whose values are in ±[0.05, 1.05),
// away from ReLU's kink.
func awayFromZero(seed uint64, shape ...int) *tensor.Tensor {
	t := randT(seed, shape...)
	d := t.Mutable()
	for i, v := range d {
		if v < 0 {
			d[i] = v - 0.05
		} else {
			d[i] = v + 0.05
		}
	}
	return t
}

// distinct returns a tensor holding a random permutation of evenly spaced
// values in [-1, 1): no two are closer than 2/n, so max pooling has no ties
// for a finite difference to cross.
func distinct(seed uint64, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	d := t.Mutable()
	r := rand.New(rand.NewPCG(seed, 7))
	for i, j := range r.Perm(len(d)) {
		d[i] = float32(j)*2/float32(len(d)) - 1
	}
	return t
}

// randT is backendtest.Rand, uniform in [-1, 1).
func randT(seed uint64, shape ...int) *tensor.Tensor {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	t := tensor.New(shape...)
	d := t.Mutable()
	for i := range d {
		d[i] = r.Float32()*2 - 1
	}
	return t
}

// relErr is max|got-want| / max(max|want|, 1e-6).
func relErr(got []float32, want []float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var d, m float64
	for i := range want {
		e := math.Abs(float64(got[i]) - want[i])
		if math.IsNaN(e) {
			return math.Inf(1)
		}
		d = max(d, e)
		m = max(m, math.Abs(want[i]))
	}
	return d / max(m, 1e-6)
}

// dot returns sum r*y: the scalar L whose gradient the checks compare.
func dot(r []float32, y []float64) float64 {
	var s float64
	for i, v := range y {
		s += float64(r[i]) * v
	}
	return s
}

// ---- float64 definitions ----

// conv64 is the direct 7-loop convolution: for each output element, the sum
// over its receptive field, zero outside the image.
func conv64(x []float64, xs []int, w []float64, ws []int, b []float64, p backend.ConvParams) ([]float64, []int) {
	p = p.Norm()
	N, C, H, W := xs[0], xs[1], xs[2], xs[3]
	O, KH, KW := ws[0], ws[2], ws[3]
	OH, OW := p.OutSize(H, W, KH, KW)
	cg, og := C/p.Groups, O/p.Groups
	y := make([]float64, N*O*OH*OW)
	for n := range N {
		for o := range O {
			g := o / og
			for oy := range OH {
				for ox := range OW {
					var s float64
					if b != nil {
						s = b[o]
					}
					for c := range cg {
						for ky := range KH {
							for kx := range KW {
								iy := oy*p.Stride[0] - p.Pad[0] + ky*p.Dilation[0]
								ix := ox*p.Stride[1] - p.Pad[1] + kx*p.Dilation[1]
								if iy < 0 || iy >= H || ix < 0 || ix >= W {
									continue
								}
								s += w[((o*cg+c)*KH+ky)*KW+kx] * x[((n*C+g*cg+c)*H+iy)*W+ix]
							}
						}
					}
					y[((n*O+o)*OH+oy)*OW+ox] = s
				}
			}
		}
	}
	return y, []int{N, O, OH, OW}
}

// bn64 is batch normalization with batch statistics, then an optional ReLU.
func bn64(x []float64, xs []int, gamma, beta []float64, eps float64, relu bool) (y, mean, variance []float64) {
	N, C, HW := xs[0], xs[1], xs[2]*xs[3]
	M := float64(N * HW)
	y = make([]float64, len(x))
	mean, variance = make([]float64, C), make([]float64, C)
	for c := range C {
		for n := range N {
			for i := range HW {
				mean[c] += x[(n*C+c)*HW+i] / M
			}
		}
		for n := range N {
			for i := range HW {
				d := x[(n*C+c)*HW+i] - mean[c]
				variance[c] += d * d / M
			}
		}
		for n := range N {
			for i := range HW {
				j := (n*C+c)*HW + i
				v := gamma[c]*(x[j]-mean[c])/math.Sqrt(variance[c]+eps) + beta[c]
				if relu {
					v = max(v, 0)
				}
				y[j] = v
			}
		}
	}
	return y, mean, variance
}

// pool64 is max pooling with -inf padding.
func pool64(x []float64, xs []int, p backend.PoolParams) ([]float64, []int) {
	H, W := xs[2], xs[3]
	OH, OW := p.OutSize(H, W)
	s := [2]int{max(p.Stride[0], 1), max(p.Stride[1], 1)}
	y := make([]float64, xs[0]*xs[1]*OH*OW)
	for pl := range xs[0] * xs[1] {
		for oy := range OH {
			for ox := range OW {
				m := math.Inf(-1)
				for ky := range p.Kernel[0] {
					for kx := range p.Kernel[1] {
						iy, ix := oy*s[0]-p.Pad[0]+ky, ox*s[1]-p.Pad[1]+kx
						if iy >= 0 && iy < H && ix >= 0 && ix < W {
							m = max(m, x[(pl*H+iy)*W+ix])
						}
					}
				}
				y[(pl*OH+oy)*OW+ox] = m
			}
		}
	}
	return y, []int{xs[0], xs[1], OH, OW}
}

// gap64 is the global average pool.
func gap64(x []float64, xs []int) []float64 {
	HW := xs[2] * xs[3]
	y := make([]float64, xs[0]*xs[1])
	for pl := range y {
		for i := range HW {
			y[pl] += x[pl*HW+i] / float64(HW)
		}
	}
	return y
}

// linear64 is y[n,m] = b[m] + sum_k x[n,k] w[m,k].
func linear64(x, w, b []float64, N, K, M int) []float64 {
	y := make([]float64, N*M)
	for n := range N {
		for m := range M {
			var s float64
			if b != nil {
				s = b[m]
			}
			for k := range K {
				s += x[n*K+k] * w[m*K+k]
			}
			y[n*M+m] = s
		}
	}
	return y
}

// sce64 is the mean cross entropy between softmax(logits) and the smoothed
// target q = (1-eps)*onehot + eps/C, written as -sum_j q_j log p_j with the
// probabilities computed explicitly (shifted by the max, for the exps).
func sce64(l []float64, N, C int, labels []int, eps float64) float64 {
	var total float64
	for n := range N {
		row := l[n*C : (n+1)*C]
		m := math.Inf(-1)
		for _, v := range row {
			m = max(m, v)
		}
		var z float64
		for _, v := range row {
			z += math.Exp(v - m)
		}
		for j, v := range row {
			q := eps / float64(C)
			if j == labels[n] {
				q += 1 - eps
			}
			total -= q * math.Log(math.Exp(v-m)/z)
		}
	}
	return total / float64(N)
}

// ---- finite differences ----

// gradTol is the largest relative error (max |analytic - numeric| over the
// sampled coordinates, divided by the largest |numeric|) a gradient check
// accepts. The analytic gradients are float32; the numeric ones are central
// differences of float64 forward definitions, accurate to ~1e-9.
const gradTol = 1e-5

// fdStep is the finite-difference step (in float64).
const fdStep = 1e-6

// sample returns the coordinates of an n-element tensor to check: all of
// them when n <= 40, else the first, the last and 30 others drawn from a
// fixed seed.
func sample(n int) []int {
	if n <= 40 {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	r := rand.New(rand.NewPCG(uint64(n), 11))
	idx := []int{0, n - 1}
	for _, i := range r.Perm(n - 2)[:30] {
		idx = append(idx, i+1)
	}
	return idx
}

// gradCheck compares got, the analytic gradient of the scalar f(x) with
// respect to x, with central differences on a sample of coordinates.
//
// For piecewise-linear ops (ReLU, max pooling) a step may cross a kink; a
// coordinate whose one-sided differences disagree is then skipped, at most
// maxSkip of them (0 for smooth ops: any disagreement there is a failure).
func gradCheck(t *testing.T, name string, got *tensor.Tensor, x []float64, maxSkip int, f func([]float64) float64) {
	t.Helper()
	g := got.Values()
	if len(g) != len(x) {
		t.Fatalf("%s: gradient has %d elements, input %d", name, len(g), len(x))
	}
	idx := sample(len(x))
	f0 := f(x)
	type diff struct{ fwd, bwd, central float64 }
	d := make([]diff, len(idx))
	var scale float64
	for k, i := range idx {
		x0 := x[i]
		x[i] = x0 + fdStep
		fp := f(x)
		x[i] = x0 - fdStep
		fm := f(x)
		x[i] = x0
		d[k] = diff{(fp - f0) / fdStep, (f0 - fm) / fdStep, (fp - fm) / (2 * fdStep)}
		scale = max(scale, math.Abs(d[k].central))
	}
	var maxDiff float64
	skipped := 0
	for k, i := range idx {
		if math.Abs(d[k].fwd-d[k].bwd) > 1e-4*max(scale, 1e-3) {
			skipped++
			continue
		}
		maxDiff = max(maxDiff, math.Abs(float64(g[i])-d[k].central))
	}
	if skipped > maxSkip {
		t.Errorf("%s: %d of %d sampled coordinates sit on a kink (at most %d allowed)", name, skipped, len(idx), maxSkip)
	}
	rel := maxDiff / max(scale, 1e-6)
	t.Logf("%s: %d coordinates, relative error %.2g, %d skipped at kinks", name, len(idx)-skipped, rel, skipped)
	if rel > gradTol || math.IsNaN(rel) {
		t.Errorf("%s: gradient relative error %.3g > %g (max |numeric| %.3g)", name, rel, gradTol, scale)
	}
}
