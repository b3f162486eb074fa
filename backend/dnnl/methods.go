//go:build cgo

package dnnl

import (
	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/tensor"
)

// The Backend methods send the work to the worker thread; see state.

var _ backend.Backend = (*Backend)(nil)

// ToPlain writes src's values into dst in the Plain layout.
func (b *Backend) ToPlain(dst, src *tensor.Tensor) {
	b.s.do(func(s *state) { s.toPlain(dst, src) })
}

// Conv2D computes y = epilogue(conv(x, w) + b); y is written in oneDNN's
// preferred layout.
func (b *Backend) Conv2D(y, x, w, bias *tensor.Tensor, p backend.ConvParams, e backend.Epilogue) {
	b.s.do(func(s *state) { s.conv2D(y, x, w, bias, p, e) })
}

// Conv2DBackwardData computes dx, the gradient of a convolution's input.
func (b *Backend) Conv2DBackwardData(dx, dy, w, x *tensor.Tensor, p backend.ConvParams) {
	b.s.do(func(s *state) { s.conv2DBackwardData(dx, dy, w, x, p) })
}

// Conv2DBackwardWeights computes the Plain weight gradient dw and, if db is
// not nil, the bias gradient.
func (b *Backend) Conv2DBackwardWeights(dw, db, x, dy *tensor.Tensor, wShape []int, p backend.ConvParams) {
	b.s.do(func(s *state) { s.conv2DBackwardWeights(dw, db, x, dy, wShape, p) })
}

// BatchNormTrain normalizes with batch statistics; with relu, y's Aux keeps
// oneDNN's ReLU mask for BatchNormBackward.
func (b *Backend) BatchNormTrain(y, mean, variance, x, gamma, beta *tensor.Tensor, eps float32, relu bool) {
	b.s.do(func(s *state) { s.batchNormTrain(y, mean, variance, x, gamma, beta, eps, relu) })
}

// BatchNormInfer normalizes with given statistics.
func (b *Backend) BatchNormInfer(y, x, gamma, beta, mean, variance *tensor.Tensor, eps float32, relu bool) {
	b.s.do(func(s *state) { s.batchNormInfer(y, x, gamma, beta, mean, variance, eps, relu) })
}

// BatchNormBackward computes dx, dgamma and dbeta of BatchNormTrain.
func (b *Backend) BatchNormBackward(dx, dgamma, dbeta, dy, x, y, gamma, mean, variance *tensor.Tensor, eps float32, relu bool) {
	b.s.do(func(s *state) { s.batchNormBackward(dx, dgamma, dbeta, dy, x, y, gamma, mean, variance, eps, relu) })
}

// ReLU computes y = max(x, 0) in x's layout; y may be x.
func (b *Backend) ReLU(y, x *tensor.Tensor) {
	b.s.do(func(s *state) { s.relu(y, x) })
}

// ReLUBackward computes dx = dy where y > 0, else 0.
func (b *Backend) ReLUBackward(dx, dy, y *tensor.Tensor) {
	b.s.do(func(s *state) { s.reluBackward(dx, dy, y) })
}

// MaxPool2D computes the window maxima; y's Aux keeps where they were.
func (b *Backend) MaxPool2D(y, x *tensor.Tensor, p backend.PoolParams) {
	b.s.do(func(s *state) { s.maxPool2D(y, x, p) })
}

// MaxPool2DBackward routes dy to each window's maximum.
func (b *Backend) MaxPool2DBackward(dx, dy, x, y *tensor.Tensor, p backend.PoolParams) {
	b.s.do(func(s *state) { s.maxPool2DBackward(dx, dy, x, y, p) })
}

// GlobalAvgPool averages over H and W into a Plain [N, C, 1, 1] tensor.
func (b *Backend) GlobalAvgPool(y, x *tensor.Tensor) {
	b.s.do(func(s *state) { s.globalAvgPool(y, x) })
}

// GlobalAvgPoolBackward spreads dy evenly over dx, in x's layout.
func (b *Backend) GlobalAvgPoolBackward(dx, dy, x *tensor.Tensor) {
	b.s.do(func(s *state) { s.globalAvgPoolBackward(dx, dy, x) })
}

// Add computes y = a + b, then ReLU if relu is set; y may be a or b.
func (b *Backend) Add(y, a, c *tensor.Tensor, relu bool) {
	b.s.do(func(s *state) { s.add(y, a, c, relu) })
}

// Linear computes y = x w^T + b.
func (b *Backend) Linear(y, x, w, bias *tensor.Tensor) {
	b.s.do(func(s *state) { s.linear(y, x, w, bias) })
}

// LinearBackward computes dx, dw and db of Linear; any may be nil.
func (b *Backend) LinearBackward(dx, dw, db, dy, x, w *tensor.Tensor) {
	b.s.do(func(s *state) { s.linearBackward(dx, dw, db, dy, x, w) })
}

// SoftmaxCrossEntropy returns the mean cross entropy with label smoothing
// and, if dlogits is not nil, its gradient.
func (b *Backend) SoftmaxCrossEntropy(dlogits, logits *tensor.Tensor, labels []int, smoothing float32) float64 {
	var loss float64
	b.s.do(func(s *state) { loss = s.softmaxCrossEntropy(dlogits, logits, labels, smoothing) })
	return loss
}
