// Package backend defines the compute interface every resgo layer runs on:
// the forward and backward passes of each operation a ResNet needs.
//
// Two implementations exist. backend/ref is plain, readable Go and the oracle
// in tests. backend/dnnl runs on oneDNN through cgo, keeps activations in
// oneDNN's blocked layouts and caches its primitives per shape.
//
// Conventions shared by every operation:
//   - The destination comes first and is reset by the operation to the shape
//     and layout it produces (tensor.Tensor.Reset), reusing its storage. A
//     caller that keeps its destination tensors from step to step allocates
//     once.
//   - Activations are 4-D NCHW tensors. A backend may write them in an opaque
//     layout of its own; every operation accepts Plain inputs as well as the
//     backend's own opaque ones. ToPlain converts explicitly.
//   - Parameters (convolution weights [O, I/groups, KH, KW], biases, BN gamma
//     and beta, Linear weights [M, K]) and their gradients are Plain, so the
//     optimizer and checkpoints can use them directly. BN statistics are
//     Plain [C]. Linear inputs and outputs are Plain [N, K] and [N, M].
//   - A gradient destination passed as nil is not computed (a frozen weight,
//     or the input image, needs none).
//   - A caller that breaks an invariant (mismatched shapes, a tensor in
//     another backend's layout) gets a panic with an *Error naming the
//     operation and the shapes. Check* functions validate parameters up
//     front and return errors, for layer constructors.
//
// # Errors
//
// Operations report failure by panicking with an *Error, so that a forward
// or backward pass reads as straight-line code. Two kinds of failure take
// this one route:
//   - a broken invariant of the caller's (above);
//   - a failure of the library underneath at run time: a oneDNN call that
//     returns a status other than success (out of memory, a primitive oneDNN
//     does not implement for the shapes and CPU, invalid arguments) panics
//     with an *Error whose Err is backend/dnnl's *StatusError.
//
// On its way up, the model code names the layer that failed: each module's
// Forward and Backward defers InLayer, which prefixes the *Error's Layer
// with the name of the child that was running, so the error reads
// "layer2.0.conv1: dnnl.Conv2D: ...", the path of the state dict. At an API
// boundary (a command, a training or evaluation step, a request handler) Do
// runs the work on the backend's worker and returns the *Error as an
// ordinary error. Panics with other values are bugs and pass through.
package backend

import (
	"fmt"

	"github.com/resgo/resgo/tensor"
)

// ConvParams describes a 2-D convolution as PyTorch's nn.Conv2d does.
type ConvParams struct {
	Stride   [2]int // (height, width); 0 means 1
	Pad      [2]int // zero padding on each side (height, width)
	Dilation [2]int // 1 means none, as in PyTorch; 0 means 1
	Groups   int    // 0 means 1
}

// Norm returns p with zero strides, dilations and groups replaced by 1.
func (p ConvParams) Norm() ConvParams {
	for i := range 2 {
		if p.Stride[i] == 0 {
			p.Stride[i] = 1
		}
		if p.Dilation[i] == 0 {
			p.Dilation[i] = 1
		}
	}
	if p.Groups == 0 {
		p.Groups = 1
	}
	return p
}

// OutSize returns the output height and width of a convolution with kernel
// kh x kw over an h x w input, as PyTorch computes it.
func (p ConvParams) OutSize(h, w, kh, kw int) (int, int) {
	p = p.Norm()
	oh := (h+2*p.Pad[0]-p.Dilation[0]*(kh-1)-1)/p.Stride[0] + 1
	ow := (w+2*p.Pad[1]-p.Dilation[1]*(kw-1)-1)/p.Stride[1] + 1
	return oh, ow
}

// PoolParams describes a 2-D max pooling window.
type PoolParams struct {
	Kernel [2]int // (height, width)
	Stride [2]int // 0 means 1
	Pad    [2]int // implicit -inf padding on each side
}

// OutSize returns the pooled height and width (floor mode, as PyTorch).
func (p PoolParams) OutSize(h, w int) (int, int) {
	s := p.Stride
	for i := range s {
		if s[i] == 0 {
			s[i] = 1
		}
	}
	return (h+2*p.Pad[0]-p.Kernel[0])/s[0] + 1, (w+2*p.Pad[1]-p.Kernel[1])/s[1] + 1
}

// Epilogue is what a convolution may fuse after itself:
// y = relu(conv(x) + bias + Add). It is used in inference, where BN has been
// folded into the convolution.
type Epilogue struct {
	Add  *tensor.Tensor // residual added to the result; same shape as y; may be nil
	ReLU bool           // apply ReLU last
	// Inference says no backward pass will follow, so the backend may use
	// kernels that keep nothing for one.
	Inference bool
}

// Backend computes the forward and backward passes of a ResNet's operations.
type Backend interface {
	// Name returns the backend's name ("ref" or "dnnl").
	Name() string
	// SetThreads sets how many threads the backend's kernels use (n >= 1).
	SetThreads(n int)
	// Threads returns the number of threads the backend's kernels use.
	Threads() int

	// ToPlain writes src's values into dst in the Plain layout.
	ToPlain(dst, src *tensor.Tensor)

	// Conv2D computes y = epilogue(conv(x, w) + b). x is [N, C, H, W], w is
	// [O, C/groups, KH, KW], b is [O] or nil; y is [N, O, OH, OW].
	Conv2D(y, x, w, b *tensor.Tensor, p ConvParams, e Epilogue)
	// Conv2DBackwardData computes dx, the gradient of the input x of a
	// convolution (x gives the shape), from dy and w.
	Conv2DBackwardData(dx, dy, w, x *tensor.Tensor, p ConvParams)
	// Conv2DBackwardWeights computes dw (Plain, like w, whose shape it takes
	// from wShape) and, if db is not nil, the bias gradient db [O].
	Conv2DBackwardWeights(dw, db, x, dy *tensor.Tensor, wShape []int, p ConvParams)

	// BatchNormTrain normalizes x [N, C, H, W] per channel with the batch
	// mean and the biased batch variance, y = gamma*(x-mean)/sqrt(var+eps)+beta,
	// then applies ReLU if relu is set. It writes the batch mean and biased
	// variance into mean and variance (Plain [C]) so the caller can update
	// its running statistics.
	BatchNormTrain(y, mean, variance, x, gamma, beta *tensor.Tensor, eps float32, relu bool)
	// BatchNormInfer normalizes with given (running) statistics.
	BatchNormInfer(y, x, gamma, beta, mean, variance *tensor.Tensor, eps float32, relu bool)
	// BatchNormBackward computes dx, dgamma and dbeta of BatchNormTrain from
	// dy, the forward input x and output y, gamma and the batch statistics
	// that BatchNormTrain returned. With relu set, dy is first masked by y > 0.
	// dgamma and dbeta may be nil.
	BatchNormBackward(dx, dgamma, dbeta, dy, x, y, gamma, mean, variance *tensor.Tensor, eps float32, relu bool)

	// ReLU computes y = max(x, 0).
	ReLU(y, x *tensor.Tensor)
	// ReLUBackward computes dx = dy where y > 0, else 0.
	ReLUBackward(dx, dy, y *tensor.Tensor)

	// MaxPool2D computes y = max over each window of x.
	MaxPool2D(y, x *tensor.Tensor, p PoolParams)
	// MaxPool2DBackward routes dy to the position of each window's maximum
	// (the first one, in row-major order, on ties); x and y are the forward
	// input and output.
	MaxPool2DBackward(dx, dy, x, y *tensor.Tensor, p PoolParams)

	// GlobalAvgPool averages x [N, C, H, W] over H and W into y, Plain
	// [N, C, 1, 1] (PyTorch's AdaptiveAvgPool2d(1)).
	GlobalAvgPool(y, x *tensor.Tensor)
	// GlobalAvgPoolBackward spreads dy [N, C, 1, 1] (or [N, C]) evenly over
	// dx, which takes x's shape.
	GlobalAvgPoolBackward(dx, dy, x *tensor.Tensor)

	// Add computes y = a + b (then ReLU if relu is set) for tensors of the
	// same shape; their layouts may differ. y may be a or b.
	Add(y, a, b *tensor.Tensor, relu bool)

	// Linear computes y = x w^T + b for x [N, K], w [M, K], b [M] or nil.
	Linear(y, x, w, b *tensor.Tensor)
	// LinearBackward computes dx = dy w, dw = dy^T x and db = sum over N of
	// dy; any of dx, dw, db may be nil.
	LinearBackward(dx, dw, db, dy, x, w *tensor.Tensor)

	// SoftmaxCrossEntropy returns the mean over the batch of the cross
	// entropy between softmax(logits) and the labels, with label smoothing
	// eps as PyTorch's CrossEntropyLoss(label_smoothing=eps) defines it.
	// If dlogits is not nil it receives the gradient of that mean.
	SoftmaxCrossEntropy(dlogits, logits *tensor.Tensor, labels []int, smoothing float32) float64
}

// Error is the panic value of an operation that fails: its inputs break its
// contract, or the library underneath failed (see the package doc).
type Error struct {
	Op     string  // operation, such as "dnnl.Conv2D"
	Shapes [][]int // shapes of the operands involved
	Msg    string  // what is wrong
	Err    error   // underlying error (for example a oneDNN status), if any
	// Layer is the module path of the layer that failed, as in the state
	// dict ("layer2.0.conv1"), filled in by InLayer as the panic unwinds
	// through the model; "" outside a model.
	Layer string
}

// Error returns a message naming the layer (when known), the operation, the
// problem and the shapes.
func (e *Error) Error() string {
	s := e.Op + ": " + e.Msg
	if e.Layer != "" {
		s = e.Layer + ": " + s
	}
	if len(e.Shapes) > 0 {
		s += fmt.Sprintf(" (shapes %v)", e.Shapes)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Fail panics with an *Error for op; shapes are taken from the tensors given.
func Fail(op, msg string, ts ...*tensor.Tensor) {
	e := &Error{Op: op, Msg: msg}
	for _, t := range ts {
		if t == nil {
			e.Shapes = append(e.Shapes, nil)
			continue
		}
		e.Shapes = append(e.Shapes, append([]int(nil), t.Shape()...))
	}
	panic(e)
}

// InLayer names the child that was running when an *Error panicked through
// a module: deferred by the module's Forward or Backward, it prefixes the
// error's Layer with *child (and a dot) and lets the panic go on. As each
// container on the way up adds its own child's name, the path ends up as in
// the state dict: "layer2", "0", "conv1" give "layer2.0.conv1". *child is
// read only when a panic passes; "" adds nothing. Other panics pass through
// unchanged.
//
//	var at string
//	defer backend.InLayer(&at)
//	at = "conv1"
//	x = m.Conv1.Forward(x)
func InLayer(child *string) {
	r := recover()
	if r == nil {
		return
	}
	if e, ok := r.(*Error); ok && *child != "" {
		if e.Layer == "" {
			e.Layer = *child
		} else {
			e.Layer = *child + "." + e.Layer
		}
	}
	panic(r)
}

// Do runs f on b's worker (see Run) and returns the *Error that f panicked
// with, if any; other panics pass through. It is the boundary between the
// code that panics with *Error (backends, layers, models) and code that
// returns errors: wrap a whole forward pass or training step in one Do.
func Do(b Backend, f func()) error {
	return Catch(func() { Run(b, f) })
}

// Catch runs f on the calling goroutine and returns the *Error it panicked
// with, if any; other panics pass through. At an API boundary use Do, which
// also runs f on the backend's worker; Catch serves where no backend is at
// hand, such as a test of one operation.
func Catch(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(*Error); ok {
				err = e
				return
			}
			panic(r)
		}
	}()
	f()
	return nil
}

// CheckConv validates a convolution's input shape, weight shape and
// parameters, and returns the output shape.
func CheckConv(xShape, wShape []int, p ConvParams) ([]int, error) {
	p = p.Norm()
	if len(xShape) != 4 || len(wShape) != 4 {
		return nil, fmt.Errorf("conv2d: input %v and weight %v must both be 4-D", xShape, wShape)
	}
	for i := range 2 {
		if p.Stride[i] < 1 || p.Dilation[i] < 1 || p.Pad[i] < 0 {
			return nil, fmt.Errorf("conv2d: stride %v, dilation %v and padding %v must be positive", p.Stride, p.Dilation, p.Pad)
		}
	}
	c, o, g := xShape[1], wShape[0], p.Groups
	if g < 1 || c%g != 0 || o%g != 0 {
		return nil, fmt.Errorf("conv2d: groups %d must divide the input channels %d and output channels %d", g, c, o)
	}
	if wShape[1]*g != c {
		return nil, fmt.Errorf("conv2d: weight %v expects %d input channels per group, input %v with groups %d has %d", wShape, wShape[1], xShape, g, c/g)
	}
	oh, ow := p.OutSize(xShape[2], xShape[3], wShape[2], wShape[3])
	if oh < 1 || ow < 1 {
		return nil, fmt.Errorf("conv2d: input %v too small for kernel %dx%d with padding %v and dilation %v", xShape, wShape[2], wShape[3], p.Pad, p.Dilation)
	}
	return []int{xShape[0], o, oh, ow}, nil
}

// CheckPool validates a max pooling over an input shape and returns the
// output shape.
func CheckPool(xShape []int, p PoolParams) ([]int, error) {
	if len(xShape) != 4 {
		return nil, fmt.Errorf("maxpool2d: input %v must be 4-D", xShape)
	}
	for i := range 2 {
		if p.Kernel[i] < 1 || p.Stride[i] < 0 || p.Pad[i] < 0 || 2*p.Pad[i] > p.Kernel[i] {
			return nil, fmt.Errorf("maxpool2d: kernel %v, stride %v, padding %v: padding must be at most half the kernel", p.Kernel, p.Stride, p.Pad)
		}
	}
	oh, ow := p.OutSize(xShape[2], xShape[3])
	if oh < 1 || ow < 1 {
		return nil, fmt.Errorf("maxpool2d: input %v too small for kernel %v", xShape, p.Kernel)
	}
	return []int{xShape[0], xShape[1], oh, ow}, nil
}

// Values returns t's values in row-major (NCHW) order: t's own values when
// it is Plain, else a converted copy made by b, the backend that wrote it.
func Values(b Backend, t *tensor.Tensor) []float32 {
	if t.IsPlain() {
		return t.Values()
	}
	var p tensor.Tensor
	b.ToPlain(&p, t)
	return p.Values()
}
