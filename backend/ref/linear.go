package ref

import (
	"fmt"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/tensor"
)

// Linear computes y = x w^T + b: y[n,m] = b[m] + sum_k x[n,k]*w[m,k], for
// x [N, K], w [M, K] and b [M] or nil; y becomes [N, M].
func (b *Backend) Linear(y, x, w, bias *tensor.Tensor) {
	const op = "ref.Linear"
	all := []*tensor.Tensor{x, w, bias}
	mustDst(op, y, "y", all...)
	mustPlain(op, x, w)
	mustRank(op, x, 2, "input x", all...)
	mustRank(op, w, 2, "weight w", all...)
	N, K, M := x.Dim(0), x.Dim(1), w.Dim(0)
	if w.Dim(1) != K {
		backend.Fail(op, fmt.Sprintf("weight %v does not take %d inputs", w.Shape(), K), all...)
	}
	if bias != nil {
		mustPlain(op, bias)
		mustShape(op, bias, []int{M}, "bias", all...)
	}
	if y == x || y == w || y == bias {
		backend.Fail(op, "the destination y must not be an input", all...)
	}
	reset(y, N, M)
	yv := y.Storage()
	for n := range N {
		row := yv[n*M : (n+1)*M]
		if bias != nil {
			copy(row, bias.Values())
		} else {
			clear(row)
		}
	}
	// Y (N×M) += X (N×K) · W^T (K×M)
	gemm(N, M, K, matrix{data: x.Values(), ld: K}, matrix{data: w.Values(), ld: K, trans: true}, yv, M, b.threads)
}

// LinearBackward computes, from dy [N, M]:
//
//	dx = dy w        [N, K]
//	dw = dy^T x      [M, K]
//	db = sum_n dy    [M]   (in float64)
//
// skipping any of dx, dw, db that is nil.
func (b *Backend) LinearBackward(dx, dw, db, dy, x, w *tensor.Tensor) {
	const op = "ref.LinearBackward"
	all := []*tensor.Tensor{dy, x, w}
	mustPlain(op, dy)
	mustRank(op, dy, 2, "dy", all...)
	N, M := dy.Dim(0), dy.Dim(1)
	var K int
	if dx != nil {
		mustPlain(op, w)
		mustRank(op, w, 2, "weight w", all...)
		K = w.Dim(1)
		mustShape(op, w, []int{M, K}, "weight w", all...)
	}
	if dw != nil {
		mustPlain(op, x)
		mustRank(op, x, 2, "input x", all...)
		K = x.Dim(1)
		mustShape(op, x, []int{N, K}, "input x", all...)
	}
	if dx != nil && dw != nil && w.Dim(1) != x.Dim(1) {
		backend.Fail(op, "input x and weight w disagree on the number of inputs", all...)
	}
	for _, d := range []*tensor.Tensor{dx, dw, db} {
		if d != nil && (d == dy || d == x || d == w) {
			backend.Fail(op, "a destination must not be an input", all...)
		}
	}
	dyv := dy.Values()
	if dx != nil {
		// dX (N×K) = dY (N×M) · W (M×K)
		reset(dx, N, K)
		clear(dx.Storage())
		gemm(N, K, M, matrix{data: dyv, ld: M}, matrix{data: w.Values(), ld: K}, dx.Storage(), K, b.threads)
	}
	if dw != nil {
		// dW (M×K) = dY^T (M×N) · X (N×K)
		reset(dw, M, K)
		clear(dw.Storage())
		gemm(M, K, N, matrix{data: dyv, ld: M, trans: true}, matrix{data: x.Values(), ld: K}, dw.Storage(), K, b.threads)
	}
	if db != nil {
		reset(db, M)
		dbv := db.Storage()
		for m := range M {
			var s float64
			for n := range N {
				s += float64(dyv[n*M+m])
			}
			dbv[m] = float32(s)
		}
	}
}

// SoftmaxCrossEntropy returns the mean over the batch of the cross entropy
// between softmax(logits) (logits [N, C]) and the labels, smoothed as
// PyTorch's CrossEntropyLoss(label_smoothing=eps) does, and its gradient in
// dlogits if not nil (dlogits may be logits). The arithmetic, written out
// there, is backend.CrossEntropy, shared with the dnnl backend.
func (b *Backend) SoftmaxCrossEntropy(dlogits, logits *tensor.Tensor, labels []int, smoothing float32) float64 {
	const op = "ref.SoftmaxCrossEntropy"
	mustPlain(op, logits)
	mustRank(op, logits, 2, "logits", logits)
	N, C := logits.Dim(0), logits.Dim(1)
	if N == 0 || C == 0 {
		backend.Fail(op, "empty batch or no classes", logits)
	}
	if len(labels) != N {
		backend.Fail(op, fmt.Sprintf("%d labels for a batch of %d", len(labels), N), logits)
	}
	for i, l := range labels {
		if l < 0 || l >= C {
			backend.Fail(op, fmt.Sprintf("label %d of example %d is not a class in [0, %d)", l, i, C), logits)
		}
	}
	if !(smoothing >= 0 && smoothing <= 1) {
		backend.Fail(op, fmt.Sprintf("label smoothing %g is not in [0, 1]", smoothing), logits)
	}
	var dv []float32
	if dlogits != nil {
		reset(dlogits, N, C) // keeps the values when dlogits is logits
		dv = dlogits.Storage()
	}
	return backend.CrossEntropy(dv, logits.Values(), N, C, labels, float64(smoothing))
}
