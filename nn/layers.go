package nn

import (
	"fmt"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/tensor"
)

// stateless is embedded by layers without state variables or submodules.
type stateless struct{}

// Vars returns nil.
func (stateless) Vars() []*Var { return nil }

// Children returns nil.
func (stateless) Children() []Child { return nil }

// SetTraining does nothing.
func (stateless) SetTraining(bool) {}

// ReLU is max(x, 0).
type ReLU struct {
	stateless
	b     backend.Backend
	y, dx tensor.Tensor
}

// NewReLU returns a ReLU layer.
func NewReLU(b backend.Backend) *ReLU { return &ReLU{b: b} }

// Forward computes max(x, 0).
func (r *ReLU) Forward(x *tensor.Tensor) *tensor.Tensor {
	r.b.ReLU(&r.y, x)
	return &r.y
}

// Backward passes dy where the output was positive.
func (r *ReLU) Backward(dy *tensor.Tensor, needInput bool) *tensor.Tensor {
	if !needInput {
		return nil
	}
	r.b.ReLUBackward(&r.dx, dy, &r.y)
	return &r.dx
}

// MaxPool2d is PyTorch's nn.MaxPool2d (floor mode, -inf padding).
type MaxPool2d struct {
	stateless
	Params backend.PoolParams
	b      backend.Backend
	x      *tensor.Tensor
	y, dx  tensor.Tensor
}

// NewMaxPool2d returns a max pooling with a k x k window.
func NewMaxPool2d(b backend.Backend, k, stride, pad int) *MaxPool2d {
	return &MaxPool2d{b: b, Params: backend.PoolParams{Kernel: [2]int{k, k}, Stride: [2]int{stride, stride}, Pad: [2]int{pad, pad}}}
}

// Forward pools x.
func (m *MaxPool2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	m.x = x
	m.b.MaxPool2D(&m.y, x, m.Params)
	return &m.y
}

// Backward routes dy to each window's maximum.
func (m *MaxPool2d) Backward(dy *tensor.Tensor, needInput bool) *tensor.Tensor {
	if !needInput {
		return nil
	}
	m.b.MaxPool2DBackward(&m.dx, dy, m.x, &m.y, m.Params)
	return &m.dx
}

// AdaptiveAvgPool2d is nn.AdaptiveAvgPool2d((1, 1)): the mean over H and W,
// giving [N, C, 1, 1].
type AdaptiveAvgPool2d struct {
	stateless
	b     backend.Backend
	x     *tensor.Tensor
	y, dx tensor.Tensor
}

// NewAdaptiveAvgPool2d returns a global average pooling layer.
func NewAdaptiveAvgPool2d(b backend.Backend) *AdaptiveAvgPool2d { return &AdaptiveAvgPool2d{b: b} }

// Forward averages x over its spatial dimensions.
func (a *AdaptiveAvgPool2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	a.x = x
	a.b.GlobalAvgPool(&a.y, x)
	return &a.y
}

// Backward spreads dy evenly over the input positions.
func (a *AdaptiveAvgPool2d) Backward(dy *tensor.Tensor, needInput bool) *tensor.Tensor {
	if !needInput {
		return nil
	}
	a.b.GlobalAvgPoolBackward(&a.dx, dy, a.x)
	return &a.dx
}

// Flatten is torch.flatten(x, 1): [N, C, H, W] to [N, C*H*W]. Its input
// must be Plain (the average pooling's output is).
type Flatten struct {
	stateless
	shape []int
}

// NewFlatten returns a Flatten layer.
func NewFlatten() *Flatten { return &Flatten{} }

// Forward reshapes x to two dimensions, sharing its storage.
func (f *Flatten) Forward(x *tensor.Tensor) *tensor.Tensor {
	f.shape = append(f.shape[:0], x.Shape()...)
	return x.Reshape(x.Dim(0), x.Len()/x.Dim(0))
}

// Backward reshapes dy back to the input's shape.
func (f *Flatten) Backward(dy *tensor.Tensor, needInput bool) *tensor.Tensor {
	if !needInput {
		return nil
	}
	return dy.Reshape(f.shape...)
}

// Linear is nn.Linear: y = x w^T + b with weight [out, in] and bias [out].
type Linear struct {
	In, Out      int
	Weight, Bias *Var
	b            backend.Backend
	x            *tensor.Tensor
	y, dx        tensor.Tensor
}

// NewLinear returns a fully connected layer with zeroed parameters (see
// InitLinear).
func NewLinear(b backend.Backend, in, out int) (*Linear, error) {
	if in < 1 || out < 1 {
		return nil, fmt.Errorf("nn.Linear: sizes %d->%d must be positive", in, out)
	}
	return &Linear{In: in, Out: out, b: b,
		Weight: &Var{Name: "weight", Value: tensor.New(out, in)},
		Bias:   &Var{Name: "bias", Value: tensor.New(out)},
	}, nil
}

// Vars returns weight and bias.
func (l *Linear) Vars() []*Var { return []*Var{l.Weight, l.Bias} }

// Children returns nil.
func (l *Linear) Children() []Child { return nil }

// SetTraining does nothing.
func (l *Linear) SetTraining(bool) {}

// Forward computes x w^T + b.
func (l *Linear) Forward(x *tensor.Tensor) *tensor.Tensor {
	l.x = x
	l.b.Linear(&l.y, x, l.Weight.Value, l.Bias.Value)
	return &l.y
}

// Backward computes the gradients that are needed.
func (l *Linear) Backward(dy *tensor.Tensor, needInput bool) *tensor.Tensor {
	var dx, dw, db *tensor.Tensor
	if needInput {
		dx = &l.dx
	}
	if !l.Weight.Frozen {
		l.Weight.Grad = ensure(l.Weight.Grad)
		dw = l.Weight.Grad
	}
	if !l.Bias.Frozen {
		l.Bias.Grad = ensure(l.Bias.Grad)
		db = l.Bias.Grad
	}
	if dx != nil || dw != nil || db != nil {
		l.b.LinearBackward(dx, dw, db, dy, l.x, l.Weight.Value)
	}
	if dw != nil {
		l.Weight.gradDone()
	}
	if db != nil {
		l.Bias.gradDone()
	}
	return dx
}

// Sequential runs its children in order; they are named "0", "1", ... as
// in PyTorch unless given names.
type Sequential struct {
	Layers []Child
}

// NewSequential returns a Sequential of the given modules named "0", "1", ...
func NewSequential(mods ...Module) *Sequential {
	s := &Sequential{}
	for i, m := range mods {
		s.Layers = append(s.Layers, Child{fmt.Sprint(i), m})
	}
	return s
}

// Vars returns nil: a Sequential's state belongs to its children.
func (s *Sequential) Vars() []*Var { return nil }

// Children returns the layers.
func (s *Sequential) Children() []Child { return s.Layers }

// SetTraining does nothing by itself (SetTraining(m) reaches the children).
func (s *Sequential) SetTraining(bool) {}

// Forward runs the layers in order.
func (s *Sequential) Forward(x *tensor.Tensor) *tensor.Tensor {
	var at string // the layer running, to name it in an error
	defer backend.InLayer(&at)
	for _, l := range s.Layers {
		at = l.Name
		x = l.Module.Forward(x)
	}
	return x
}

// Backward runs the layers' backward passes in reverse order. A layer's
// input gradient is computed only when some earlier layer has trainable
// parameters or the caller needs it, so a frozen prefix costs nothing.
func (s *Sequential) Backward(dy *tensor.Tensor, needInput bool) *tensor.Tensor {
	return BackwardChain(s.Layers, dy, needInput)
}

// BackwardChain runs the backward pass of the named modules that were
// applied in order, from the last to the first, as a Backprop does: the
// input gradient of module i is computed only if needInput is set or a
// module before i is trainable; once neither holds, the remaining (frozen)
// modules are skipped. An *Error panicking through it names the module.
func BackwardChain(mods []Child, dy *tensor.Tensor, needInput bool) *tensor.Tensor {
	var at string // the module running, to name it in an error
	defer backend.InLayer(&at)
	bp := Backprop{needInput: needInput}
	for _, c := range mods {
		bp.left += trainableParams(c.Module)
	}
	for i := len(mods) - 1; i >= 0; i-- {
		at = mods[i].Name
		dy = bp.Step(mods[i].Module, dy)
	}
	return dy
}

// Backprop is a backward pass in progress through modules that ran one
// after the other in the forward pass, stepped through from the last to the
// first. It asks a module for its input gradient only when the caller needs
// the input gradient of the whole or a module before it has trainable
// parameters; once neither holds, the remaining (frozen) modules are
// skipped: Step runs nothing and returns nil.
type Backprop struct {
	needInput bool
	left      int  // trainable parameters of the modules not stepped through yet
	done      bool // the remaining modules need no backward pass
}

// NewBackprop starts the backward pass of mods, whose trainable parameters
// must together be those of the modules that Step will be given: a whole
// model that is then walked part by part, say. needInput says whether the
// caller needs the gradient with respect to the first module's input.
func NewBackprop(needInput bool, mods ...Module) Backprop {
	bp := Backprop{needInput: needInput}
	for _, m := range mods {
		bp.left += trainableParams(m)
	}
	return bp
}

// Step runs mod's backward pass on dy, the gradient with respect to its
// output, and returns the gradient with respect to its input: nil when no
// module before mod (nor the caller) needs it.
func (bp *Backprop) Step(mod Module, dy *tensor.Tensor) *tensor.Tensor {
	if bp.done {
		return nil
	}
	n := trainableParams(mod)
	bp.left -= n
	need := bp.needInput || bp.left > 0
	bp.done = !need
	if !need && n == 0 {
		return nil
	}
	return mod.Backward(dy, need)
}
