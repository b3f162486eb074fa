// Package nn provides the layers a ResNet is built from (Conv2d,
// BatchNorm2d, ReLU, MaxPool2d, AdaptiveAvgPool2d, Flatten, Linear,
// Sequential), each with a forward pass in training or evaluation mode and a
// backward pass, on a backend.Backend.
//
// Parameters and buffers carry PyTorch's names, so a model's state is named
// exactly as torchvision's state_dict ("layer1.0.conv1.weight",
// "layer2.0.downsample.1.running_var", "fc.bias").
//
// A layer keeps what its backward pass needs from the last forward pass in
// training mode, and keeps its output and gradient tensors from one step to
// the next, so a training loop allocates once.
package nn

import (
	"fmt"
	"strings"

	"github.com/resgo/resgo/tensor"
)

// Kind says what a state variable is.
type Kind uint8

const (
	// Parameter is a learned tensor (weights, biases, BN gamma and beta).
	Parameter Kind = iota
	// Buffer is a tensor of state that is not learned (BN running statistics).
	Buffer
	// Counter is an integer buffer (BN's num_batches_tracked).
	Counter
)

// Var is one named piece of a module's state, as it appears in a PyTorch
// state_dict.
type Var struct {
	Name  string         // local name, such as "weight" or "running_mean"
	Kind  Kind           // Parameter, Buffer or Counter
	Value *tensor.Tensor // Plain values; nil for a Counter
	Count *int64         // the counter's value, for a Counter
	Grad  *tensor.Tensor // gradient of a Parameter after Backward; nil when frozen
	// Frozen marks a Parameter the optimizer must not update and whose
	// gradient is not computed.
	Frozen bool
	// GradReady, if set, is called by the layer's Backward as soon as Grad
	// holds this step's gradient, before the rest of the backward pass:
	// data-parallel training starts summing the gradients there (as
	// PyTorch's DDP does from its autograd hooks).
	GradReady func(v *Var)
}

// gradDone calls v's GradReady hook, if any.
func (v *Var) gradDone() {
	if v.GradReady != nil {
		v.GradReady(v)
	}
}

// Child is a named submodule.
type Child struct {
	Name   string
	Module Module
}

// Module is a layer or a container of layers.
type Module interface {
	// Forward computes the module's output for input x. In training mode
	// it keeps what Backward needs. The returned tensor belongs to the
	// module and is overwritten by its next Forward.
	Forward(x *tensor.Tensor) *tensor.Tensor
	// Backward takes the gradient of the loss with respect to the last
	// output and computes parameter gradients (those not frozen). It
	// returns the gradient with respect to the input when needInput is
	// set, and nil otherwise.
	Backward(dy *tensor.Tensor, needInput bool) *tensor.Tensor
	// Vars returns the module's own state variables (not its children's).
	Vars() []*Var
	// Children returns the named submodules, in order.
	Children() []Child
	// SetTraining switches the module (not its children) between training
	// and evaluation mode.
	SetTraining(training bool)
}

// NamedVar is a state variable with its full dotted name.
type NamedVar struct {
	Name string
	*Var
}

// State returns every variable of m and its descendants with full dotted
// names, in torchvision's state_dict order.
func State(m Module) []NamedVar {
	var out []NamedVar
	walk(m, "", func(prefix string, m Module) {
		for _, v := range m.Vars() {
			out = append(out, NamedVar{prefix + v.Name, v})
		}
	})
	return out
}

// walk calls fn for m and every descendant, depth first, with the dotted
// prefix ("layer1.0.") of each.
func walk(m Module, prefix string, fn func(prefix string, m Module)) {
	fn(prefix, m)
	for _, c := range m.Children() {
		walk(c.Module, prefix+c.Name+".", fn)
	}
}

// Modules returns m and its descendants with their full names ("" for m).
func Modules(m Module) []Child {
	var out []Child
	walk(m, "", func(prefix string, m Module) {
		out = append(out, Child{strings.TrimSuffix(prefix, "."), m})
	})
	return out
}

// Find returns the descendant of m with the given dotted name.
func Find(m Module, name string) (Module, error) {
	for _, c := range Modules(m) {
		if c.Name == name {
			return c.Module, nil
		}
	}
	return nil, fmt.Errorf("nn: no module named %q", name)
}

// Params returns the Parameters of m and its descendants with full names;
// with trainableOnly set, the frozen ones are left out.
func Params(m Module, trainableOnly bool) []NamedVar {
	var out []NamedVar
	for _, v := range State(m) {
		if v.Kind == Parameter && !(trainableOnly && v.Frozen) {
			out = append(out, v)
		}
	}
	return out
}

// NumParams returns the number of parameter elements of m.
func NumParams(m Module) int {
	n := 0
	for _, v := range Params(m, false) {
		n += v.Value.Len()
	}
	return n
}

// SetTraining switches m and all its descendants to training or evaluation
// mode (PyTorch's model.train() and model.eval()). Frozen batch norm layers
// stay in evaluation mode.
func SetTraining(m Module, training bool) {
	walk(m, "", func(_ string, m Module) { m.SetTraining(training) })
}

// Freeze freezes m and all its descendants: their parameters get no
// gradient and no update, and their batch norm layers run on their running
// statistics without updating them, in training mode too. Unfreeze undoes it.
func Freeze(m Module) { setFrozen(m, true) }

// Unfreeze makes m and all its descendants trainable again.
func Unfreeze(m Module) { setFrozen(m, false) }

func setFrozen(m Module, frozen bool) {
	walk(m, "", func(_ string, m Module) {
		for _, v := range m.Vars() {
			if v.Kind == Parameter {
				v.Frozen = frozen
				if frozen {
					v.Grad = nil
				}
			}
		}
		if bn, ok := m.(*BatchNorm2d); ok {
			bn.frozen = frozen
		}
	})
}

// Trainable reports whether m or a descendant has a parameter that is not
// frozen.
func Trainable(m Module) bool {
	return trainableParams(m) > 0
}

// trainableParams counts the parameters of m and its descendants that are
// not frozen.
func trainableParams(m Module) int {
	n := 0
	for _, v := range m.Vars() {
		if v.Kind == Parameter && !v.Frozen {
			n++
		}
	}
	for _, c := range m.Children() {
		n += trainableParams(c.Module)
	}
	return n
}
