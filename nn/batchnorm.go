package nn

import (
	"math"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/tensor"
)

// BatchNorm2d is PyTorch's nn.BatchNorm2d with affine=True and
// track_running_stats=True.
//
// In training mode it normalizes each channel with the mean and the biased
// variance of the batch (over N, H and W) and then updates its running
// statistics: running = (1-momentum)*running + momentum*batch, where the
// batch variance stored is the unbiased one (times n/(n-1)), and it counts
// num_batches_tracked. In evaluation mode, or when frozen, it normalizes
// with the running statistics and leaves them alone.
type BatchNorm2d struct {
	Channels int
	Eps      float32 // 1e-5
	// Momentum is 0.1 by default. With CumulativeAverage set (PyTorch's
	// momentum=None) the running statistics are a plain average over all
	// batches seen: the factor is 1/num_batches_tracked.
	Momentum          float64
	CumulativeAverage bool

	Weight, Bias            *Var // gamma and beta
	RunningMean, RunningVar *Var
	NumBatchesTracked       *Var

	// Sync, if set, makes the layer a synchronized batch norm (PyTorch's
	// SyncBatchNorm) over the processes of a data-parallel training: the
	// batch statistics are those of all processes' batches together (see
	// nn/syncbn.go). Set it with SetSyncBN.
	Sync  StatsReducer
	syncb *syncBuffers

	b        backend.Backend
	training bool
	frozen   bool
	relu     bool // ReLU fused after the normalization, for this forward pass
	batchRun bool // the last Forward normalized with batch statistics

	numBatches       int64
	x                *tensor.Tensor
	y, dx, masked    tensor.Tensor
	mean, variance   tensor.Tensor  // batch statistics of the last training Forward
	scale, zero, one *tensor.Tensor // for the backward pass of a frozen layer
}

// NewBatchNorm2d returns a batch norm over c channels with gamma 1, beta 0,
// running mean 0 and running variance 1, in training mode.
func NewBatchNorm2d(b backend.Backend, c int) *BatchNorm2d {
	bn := &BatchNorm2d{Channels: c, Eps: 1e-5, Momentum: 0.1, b: b, training: true}
	bn.Weight = &Var{Name: "weight", Value: tensor.New(c)}
	bn.Bias = &Var{Name: "bias", Value: tensor.New(c)}
	bn.RunningMean = &Var{Name: "running_mean", Kind: Buffer, Value: tensor.New(c)}
	bn.RunningVar = &Var{Name: "running_var", Kind: Buffer, Value: tensor.New(c)}
	bn.NumBatchesTracked = &Var{Name: "num_batches_tracked", Kind: Counter, Count: &bn.numBatches}
	bn.Weight.Value.Fill(1)
	bn.RunningVar.Value.Fill(1)
	return bn
}

// Vars returns weight, bias, running_mean, running_var, num_batches_tracked.
func (bn *BatchNorm2d) Vars() []*Var {
	return []*Var{bn.Weight, bn.Bias, bn.RunningMean, bn.RunningVar, bn.NumBatchesTracked}
}

// Children returns nil.
func (bn *BatchNorm2d) Children() []Child { return nil }

// SetTraining switches between batch and running statistics.
func (bn *BatchNorm2d) SetTraining(training bool) { bn.training = training }

// Frozen reports whether the layer is frozen (see Freeze).
func (bn *BatchNorm2d) Frozen() bool { return bn.frozen }

// UsesBatchStats reports whether Forward normalizes with batch statistics:
// in training mode and not frozen.
func (bn *BatchNorm2d) UsesBatchStats() bool { return bn.training && !bn.frozen }

// Forward normalizes x.
func (bn *BatchNorm2d) Forward(x *tensor.Tensor) *tensor.Tensor { return bn.ForwardReLU(x, false) }

// ForwardReLU normalizes x and, with relu set, applies ReLU in the same
// pass (the "BN, then ReLU" of every ResNet block).
func (bn *BatchNorm2d) ForwardReLU(x *tensor.Tensor, relu bool) *tensor.Tensor {
	bn.x, bn.relu = x, relu
	gamma, beta := bn.Weight.Value, bn.Bias.Value
	bn.batchRun = bn.UsesBatchStats()
	if !bn.batchRun {
		bn.b.BatchNormInfer(&bn.y, x, gamma, beta, bn.RunningMean.Value, bn.RunningVar.Value, bn.Eps, relu)
		return &bn.y
	}
	n := x.Dim(0) * x.Dim(2) * x.Dim(3)
	if n <= 1 {
		backend.Fail("nn.BatchNorm2d", "expected more than 1 value per channel when training", x)
	}
	if bn.Sync != nil {
		n = bn.trainSync(x, relu) // the statistics of all processes' batches
	} else {
		bn.b.BatchNormTrain(&bn.y, &bn.mean, &bn.variance, x, gamma, beta, bn.Eps, relu)
	}

	// Update the running statistics as PyTorch does.
	bn.numBatches++
	m := bn.Momentum
	if bn.CumulativeAverage {
		m = 1 / float64(bn.numBatches)
	}
	unbias := float64(n) / float64(n-1)
	rm, rv := bn.RunningMean.Value.Mutable(), bn.RunningVar.Value.Mutable()
	mean, variance := bn.mean.Values(), bn.variance.Values()
	for c := range rm {
		rm[c] = float32((1-m)*float64(rm[c]) + m*float64(mean[c]))
		rv[c] = float32((1-m)*float64(rv[c]) + m*float64(variance[c])*unbias)
	}
	return &bn.y
}

// Backward computes the gamma and beta gradients (unless frozen) and the
// input gradient when needInput is set.
func (bn *BatchNorm2d) Backward(dy *tensor.Tensor, needInput bool) *tensor.Tensor {
	if !bn.batchRun {
		return bn.backwardRunning(dy, needInput)
	}
	if bn.Sync != nil {
		return bn.backwardSync(dy, needInput)
	}
	var dgamma, dbeta *tensor.Tensor
	if !bn.Weight.Frozen {
		bn.Weight.Grad = ensure(bn.Weight.Grad)
		dgamma = bn.Weight.Grad
	}
	if !bn.Bias.Frozen {
		bn.Bias.Grad = ensure(bn.Bias.Grad)
		dbeta = bn.Bias.Grad
	}
	// The batch statistics depend on every input, so dx is needed for the
	// gamma and beta gradients' formula anyway; the backend computes all
	// three in one pass.
	bn.b.BatchNormBackward(&bn.dx, dgamma, dbeta, dy, bn.x, &bn.y, bn.Weight.Value, &bn.mean, &bn.variance, bn.Eps, bn.relu)
	bn.gradsDone(dgamma, dbeta)
	if !needInput {
		return nil
	}
	return &bn.dx
}

// backwardRunning is the backward pass of a normalization with fixed
// (running) statistics: y = gamma*(x-mean)/sqrt(var+eps) + beta is affine
// in x, so dx = dy * gamma/sqrt(var+eps) (after the ReLU mask), and
// dgamma = sum(dy * xhat), dbeta = sum(dy). Only the input gradient is
// computed here: a layer on running statistics is frozen or evaluating.
func (bn *BatchNorm2d) backwardRunning(dy *tensor.Tensor, needInput bool) *tensor.Tensor {
	if !needInput {
		return nil
	}
	if bn.relu {
		bn.b.ReLUBackward(&bn.masked, dy, &bn.y)
		dy = &bn.masked
	}
	// dx = dy * s per channel with s = gamma/sqrt(var+eps), written as a
	// normalization with gamma s, mean 0 and variance 1-eps.
	if bn.scale == nil {
		bn.scale, bn.zero, bn.one = tensor.New(bn.Channels), tensor.New(bn.Channels), tensor.New(bn.Channels)
	}
	s, one := bn.scale.Mutable(), bn.one.Mutable()
	gamma, rv := bn.Weight.Value.Values(), bn.RunningVar.Value.Values()
	for c := range s {
		s[c] = float32(float64(gamma[c]) / math.Sqrt(float64(rv[c])+float64(bn.Eps)))
		one[c] = 1 - bn.Eps
	}
	bn.b.BatchNormInfer(&bn.dx, dy, bn.scale, bn.zero, bn.zero, bn.one, bn.Eps, false)
	return &bn.dx
}
