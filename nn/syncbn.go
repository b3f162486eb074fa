package nn

import (
	"math"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/tensor"
)

// StatsReducer sums values over the processes of a data-parallel training
// (dist.Comm is one): every process calls it in the same order, and each
// gets the sums.
type StatsReducer interface {
	AllreduceFloat64(buf []float64) error
}

// SetSyncBN makes every batch norm layer of m synchronized over r (nil:
// each process normalizes with its own batch's statistics again).
//
// A synchronized layer in training mode normalizes with the mean and
// variance of the batches of all processes together, and its backward pass
// sums the two per-channel sums the input gradient needs (of dy and of
// dy*xhat) over them too: N processes with a batch of B each compute what
// one process computes with the batch of N*B. The running statistics are
// updated from these statistics (the unbiased variance over all N*B*H*W
// values), so they are the same in every process. Its gamma and beta
// gradients are its own batch's, which the gradient averaging of
// data-parallel training then averages, as PyTorch's SyncBatchNorm does.
func SetSyncBN(m Module, r StatsReducer) {
	walk(m, "", func(_ string, m Module) {
		if bn, ok := m.(*BatchNorm2d); ok {
			bn.Sync = r
		}
	})
}

// syncBuffers are a synchronized layer's scratch tensors.
type syncBuffers struct {
	y, mean, variance tensor.Tensor // this process's normalization, unused but for its statistics
	dgamma, dbeta     tensor.Tensor // this process's sums of dy*xhat and dy
	corr, g, b        tensor.Tensor // the input gradient's correction, an affine map of x
	sums              []float64
	count             float64 // values per channel over all processes
}

// fail panics with the *backend.Error of a failed sum over the processes.
func (bn *BatchNorm2d) fail(what string, err error) {
	panic(&backend.Error{Op: "nn.BatchNorm2d", Msg: "synchronized batch norm: summing " + what + " over the processes", Err: err})
}

// trainSync normalizes x with the batch statistics of all processes into
// bn.y and leaves them in bn.mean and bn.variance; it returns the number of
// values per channel they are over.
//
// The backend computes this process's mean and biased variance; the sums
// n*mean and n*(variance+mean^2) and n, in float64, are summed over the
// processes, which gives the overall mean and E[x^2] - mean^2; x is then
// normalized with those by the backend's BatchNormInfer (the same formula
// as in training).
func (bn *BatchNorm2d) trainSync(x *tensor.Tensor, relu bool) int {
	if bn.syncb == nil {
		bn.syncb = &syncBuffers{}
	}
	s, C := bn.syncb, bn.Channels
	gamma, beta := bn.Weight.Value, bn.Bias.Value
	bn.b.BatchNormTrain(&s.y, &s.mean, &s.variance, x, gamma, beta, bn.Eps, false)
	n := float64(x.Dim(0) * x.Dim(2) * x.Dim(3))
	s.sums = append(s.sums[:0], make([]float64, 2*C+1)...)
	lm, lv := s.mean.Values(), s.variance.Values()
	for c := range C {
		m := float64(lm[c])
		s.sums[c] = n * m
		s.sums[C+c] = n * (float64(lv[c]) + m*m)
	}
	s.sums[2*C] = n
	if err := bn.Sync.AllreduceFloat64(s.sums); err != nil {
		bn.fail("the batch statistics", err)
	}
	s.count = s.sums[2*C]
	bn.mean.Reset(tensor.Plain, nil, C, C)
	bn.variance.Reset(tensor.Plain, nil, C, C)
	mean, variance := bn.mean.Mutable(), bn.variance.Mutable()
	for c := range C {
		m := s.sums[c] / s.count
		mean[c] = float32(m)
		variance[c] = float32(max(0, s.sums[C+c]/s.count-m*m))
	}
	bn.b.BatchNormInfer(&bn.y, x, gamma, beta, &bn.mean, &bn.variance, bn.Eps, relu)
	return int(s.count)
}

// backwardSync is the backward pass of a synchronized layer.
//
// With xhat = (x-mean)*invstd over the statistics of all M values of all
// processes, the input gradient is
//
//	dx = gamma*invstd * (dy - sum(dy)/M - xhat*sum(dy*xhat)/M)
//
// with the sums over all processes. The backend's BatchNormBackward, given
// these statistics, computes the same with this process's m values and
// sums, and those two sums (dbeta and dgamma). The difference,
//
//	gamma*invstd * ((S/m - S_all/M) + xhat*(T/m - T_all/M))
//
// for S = sum(dy), T = sum(dy*xhat), is an affine map of x per channel,
// which the backend's BatchNormInfer computes; Add adds it to dx.
func (bn *BatchNorm2d) backwardSync(dy *tensor.Tensor, needInput bool) *tensor.Tensor {
	s, C := bn.syncb, bn.Channels
	bn.b.BatchNormBackward(&bn.dx, &s.dgamma, &s.dbeta, dy, bn.x, &bn.y, bn.Weight.Value, &bn.mean, &bn.variance, bn.Eps, bn.relu)
	var dgamma, dbeta *tensor.Tensor
	if !bn.Weight.Frozen {
		bn.Weight.Grad = ensure(bn.Weight.Grad)
		bn.Weight.Grad.Reset(tensor.Plain, nil, C, C)
		copy(bn.Weight.Grad.Mutable(), s.dgamma.Values())
		dgamma = bn.Weight.Grad
	}
	if !bn.Bias.Frozen {
		bn.Bias.Grad = ensure(bn.Bias.Grad)
		bn.Bias.Grad.Reset(tensor.Plain, nil, C, C)
		copy(bn.Bias.Grad.Mutable(), s.dbeta.Values())
		dbeta = bn.Bias.Grad
	}
	bn.gradsDone(dgamma, dbeta)
	if !needInput {
		return nil
	}
	sg, sgx := s.dbeta.Values(), s.dgamma.Values()
	s.sums = append(s.sums[:0], make([]float64, 2*C)...)
	for c := range C {
		s.sums[c], s.sums[C+c] = float64(sg[c]), float64(sgx[c])
	}
	if err := bn.Sync.AllreduceFloat64(s.sums); err != nil {
		bn.fail("the gradient sums", err)
	}
	m, M := float64(bn.x.Dim(0)*bn.x.Dim(2)*bn.x.Dim(3)), s.count
	s.g.Reset(tensor.Plain, nil, C, C)
	s.b.Reset(tensor.Plain, nil, C, C)
	g, b := s.g.Mutable(), s.b.Mutable()
	gamma, variance := bn.Weight.Value.Values(), bn.variance.Values()
	for c := range C {
		k := float64(gamma[c]) / math.Sqrt(float64(variance[c])+float64(bn.Eps))
		g[c] = float32(k * (float64(sgx[c])/m - s.sums[C+c]/M))
		b[c] = float32(k * (float64(sg[c])/m - s.sums[c]/M))
	}
	bn.b.BatchNormInfer(&s.corr, bn.x, &s.g, &s.b, &bn.mean, &bn.variance, bn.Eps, false)
	bn.b.Add(&bn.dx, &bn.dx, &s.corr, false)
	return &bn.dx
}

// gradsDone calls the GradReady hooks of the gradients computed.
func (bn *BatchNorm2d) gradsDone(dgamma, dbeta *tensor.Tensor) {
	if dgamma != nil {
		bn.Weight.gradDone()
	}
	if dbeta != nil {
		bn.Bias.gradDone()
	}
}
