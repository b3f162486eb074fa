package ref

import (
	"math"

	"github.com/resgo/resgo/tensor"
)

// Batch normalization over x [N, C, H, W], per channel c, with M = N*H*W:
//
//	mean[c] = (1/M) sum x[:,c,:,:]
//	var[c]  = (1/M) sum (x[:,c,:,:] - mean[c])^2          (biased)
//	xhat    = (x - mean[c]) / sqrt(var[c] + eps)
//	y       = gamma[c]*xhat + beta[c]    (then relu(y) if fused)
//
// Backward, with g = dy (masked by y > 0 when ReLU is fused):
//
//	dbeta[c]  = sum g
//	dgamma[c] = sum g*xhat
//	dx        = gamma[c]/sqrt(var[c]+eps) * (g - dbeta[c]/M - xhat*dgamma[c]/M)
//
// All per-channel sums are float64. Every output element depends only on its
// own input element and its channel's sums, so y, dx may alias x, dy.

// bnCheck validates x [N, C, H, W] and the per-channel tensors [C].
func bnCheck(op string, x *tensor.Tensor, perChannel []*tensor.Tensor, all ...*tensor.Tensor) (n, c, hw int) {
	mustPlain(op, x)
	mustRank(op, x, 4, "input x", all...)
	n, c, hw = x.Dim(0), x.Dim(1), x.Dim(2)*x.Dim(3)
	for _, t := range perChannel {
		mustPlain(op, t)
		mustShape(op, t, []int{c}, "per-channel parameter", all...)
	}
	return n, c, hw
}

// channel calls f(i) for every index i of channel c in an [N, C, HW] tensor.
// (Written as a helper because BN walks each channel several times.)
func channel(n, c, C, hw int, f func(i int)) {
	for b := range n {
		base := (b*C + c) * hw
		for i := base; i < base+hw; i++ {
			f(i)
		}
	}
}

// BatchNormTrain normalizes x with its batch statistics, writes them into
// mean and variance [C] (variance biased) and y = relu?(gamma*xhat + beta).
func (b *Backend) BatchNormTrain(y, mean, variance, x, gamma, beta *tensor.Tensor, eps float32, relu bool) {
	const op = "ref.BatchNormTrain"
	all := []*tensor.Tensor{x, gamma, beta}
	mustDst(op, y, "y", all...)
	mustDst(op, mean, "mean", all...)
	mustDst(op, variance, "variance", all...)
	N, C, HW := bnCheck(op, x, []*tensor.Tensor{gamma, beta}, all...)
	M := float64(N * HW)

	reset(y, x.Shape()...)
	reset(mean, C)
	reset(variance, C)
	xv, yv := x.Values(), y.Storage()
	gv, bv, mv, vv := gamma.Values(), beta.Values(), mean.Storage(), variance.Storage()
	parallel(C, b.threads, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			// Two passes in float64: the mean, then the squared deviations.
			var s float64
			channel(N, c, C, HW, func(i int) { s += float64(xv[i]) })
			mu := s / M
			var ss float64
			channel(N, c, C, HW, func(i int) {
				d := float64(xv[i]) - mu
				ss += d * d
			})
			va := ss / M
			mv[c], vv[c] = float32(mu), float32(va)

			scale := float64(gv[c]) / math.Sqrt(va+float64(eps))
			shift := float64(bv[c])
			channel(N, c, C, HW, func(i int) {
				v := float32((float64(xv[i])-mu)*scale + shift)
				if relu {
					v = max(v, 0)
				}
				yv[i] = v
			})
		}
	})
}

// BatchNormInfer computes y = relu?(gamma*(x-mean)/sqrt(variance+eps) + beta)
// with given statistics mean and variance [C].
func (b *Backend) BatchNormInfer(y, x, gamma, beta, mean, variance *tensor.Tensor, eps float32, relu bool) {
	const op = "ref.BatchNormInfer"
	all := []*tensor.Tensor{x, gamma, beta, mean, variance}
	mustDst(op, y, "y", all...)
	N, C, HW := bnCheck(op, x, []*tensor.Tensor{gamma, beta, mean, variance}, all...)

	reset(y, x.Shape()...)
	xv, yv := x.Values(), y.Storage()
	gv, bv, mv, vv := gamma.Values(), beta.Values(), mean.Values(), variance.Values()
	parallel(C, b.threads, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			mu := float64(mv[c])
			scale := float64(gv[c]) / math.Sqrt(float64(vv[c])+float64(eps))
			shift := float64(bv[c])
			channel(N, c, C, HW, func(i int) {
				v := float32((float64(xv[i])-mu)*scale + shift)
				if relu {
					v = max(v, 0)
				}
				yv[i] = v
			})
		}
	})
}

// BatchNormBackward computes dx (and dgamma, dbeta [C] unless nil) of
// BatchNormTrain from dy, the forward input x, gamma, and the batch mean and
// variance it returned. With relu set, dy is first masked by y > 0, y being
// the forward output (y is only read then, and may be nil otherwise).
func (b *Backend) BatchNormBackward(dx, dgamma, dbeta, dy, x, y, gamma, mean, variance *tensor.Tensor, eps float32, relu bool) {
	const op = "ref.BatchNormBackward"
	all := []*tensor.Tensor{dy, x, y, gamma, mean, variance}
	mustDst(op, dx, "dx", all...)
	N, C, HW := bnCheck(op, x, []*tensor.Tensor{gamma, mean, variance}, all...)
	mustPlain(op, dy)
	mustShape(op, dy, x.Shape(), "dy", all...)
	if relu || y != nil {
		mustPlain(op, y)
		mustShape(op, y, x.Shape(), "forward output y", all...)
	}
	M := float64(N * HW)

	reset(dx, x.Shape()...)
	if dgamma != nil {
		reset(dgamma, C)
	}
	if dbeta != nil {
		reset(dbeta, C)
	}
	xv, dyv, dxv := x.Values(), dy.Values(), dx.Storage()
	gv, mv, vv := gamma.Values(), mean.Values(), variance.Values()
	var yv []float32
	if relu {
		yv = y.Values()
	}
	// grad is dy, masked by the fused ReLU.
	grad := func(i int) float64 {
		if relu && yv[i] <= 0 {
			return 0
		}
		return float64(dyv[i])
	}
	parallel(C, b.threads, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			mu := float64(mv[c])
			invstd := 1 / math.Sqrt(float64(vv[c])+float64(eps))
			var sg, sgx float64 // dbeta, dgamma
			channel(N, c, C, HW, func(i int) {
				g := grad(i)
				sg += g
				sgx += g * (float64(xv[i]) - mu) * invstd
			})
			k := float64(gv[c]) * invstd
			channel(N, c, C, HW, func(i int) {
				xhat := (float64(xv[i]) - mu) * invstd
				dxv[i] = float32(k * (grad(i) - sg/M - xhat*sgx/M))
			})
			if dgamma != nil {
				dgamma.Storage()[c] = float32(sgx)
			}
			if dbeta != nil {
				dbeta.Storage()[c] = float32(sg)
			}
		}
	})
}
