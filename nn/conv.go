package nn

import (
	"fmt"
	"math"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/tensor"
)

// Conv2d is PyTorch's nn.Conv2d: weight [out, in/groups, k, k] and an
// optional bias [out].
type Conv2d struct {
	InChannels, OutChannels int
	Kernel                  int
	Params                  backend.ConvParams
	Weight                  *Var
	Bias                    *Var // nil when bias=False, as everywhere in a ResNet

	b     backend.Backend
	x     *tensor.Tensor // input of the last Forward, for Backward
	y, dx tensor.Tensor

	folded foldedConv // BN folded into the weights, for evaluation
}

// NewConv2d returns a convolution with a k x k kernel and zeroed weights
// (see InitKaimingNormal). It checks that groups divide both channel counts.
func NewConv2d(b backend.Backend, in, out, k, stride, pad, groups int, bias bool) (*Conv2d, error) {
	p := backend.ConvParams{Stride: [2]int{stride, stride}, Pad: [2]int{pad, pad}, Groups: groups}.Norm()
	if in < 1 || out < 1 || k < 1 {
		return nil, fmt.Errorf("nn.Conv2d: channels %d->%d and kernel %d must be positive", in, out, k)
	}
	if in%p.Groups != 0 || out%p.Groups != 0 {
		return nil, fmt.Errorf("nn.Conv2d: groups %d must divide the input channels %d and output channels %d", p.Groups, in, out)
	}
	c := &Conv2d{InChannels: in, OutChannels: out, Kernel: k, Params: p, b: b}
	c.Weight = &Var{Name: "weight", Value: tensor.New(out, in/p.Groups, k, k)}
	if bias {
		c.Bias = &Var{Name: "bias", Value: tensor.New(out)}
	}
	return c, nil
}

// Vars returns weight (and bias).
func (c *Conv2d) Vars() []*Var {
	if c.Bias != nil {
		return []*Var{c.Weight, c.Bias}
	}
	return []*Var{c.Weight}
}

// Children returns nil: a convolution has no submodules.
func (c *Conv2d) Children() []Child { return nil }

// SetTraining does nothing: a convolution behaves the same in both modes.
func (c *Conv2d) SetTraining(bool) {}

// Forward computes conv(x) + bias.
func (c *Conv2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	c.x = x
	c.b.Conv2D(&c.y, x, c.Weight.Value, biasValue(c.Bias), c.Params, backend.Epilogue{})
	return &c.y
}

// Backward computes the weight (and bias) gradients unless frozen, and the
// input gradient when needInput is set.
func (c *Conv2d) Backward(dy *tensor.Tensor, needInput bool) *tensor.Tensor {
	if !c.Weight.Frozen {
		c.Weight.Grad = ensure(c.Weight.Grad)
		var db *tensor.Tensor
		if c.Bias != nil && !c.Bias.Frozen {
			c.Bias.Grad = ensure(c.Bias.Grad)
			db = c.Bias.Grad
		}
		c.b.Conv2DBackwardWeights(c.Weight.Grad, db, c.x, dy, c.Weight.Value.Shape(), c.Params)
		c.Weight.gradDone()
		if db != nil {
			c.Bias.gradDone()
		}
	}
	if !needInput {
		return nil
	}
	c.b.Conv2DBackwardData(&c.dx, dy, c.Weight.Value, c.x, c.Params)
	return &c.dx
}

// foldedConv caches a convolution's weights with a following batch norm
// folded in, and the versions of the tensors it was computed from.
type foldedConv struct {
	w, b     *tensor.Tensor
	versions [6]uint64
	from     *BatchNorm2d
}

// ForwardFolded computes relu(bn(conv(x)) + add) for evaluation, with the
// batch norm bn (in evaluation mode: running statistics) folded into the
// convolution: w' = w * gamma/sqrt(var+eps), b' = beta - mean*gamma/sqrt(var+eps).
// add may be nil. The folded weights are computed once and recomputed only
// when a weight or statistic changes.
func (c *Conv2d) ForwardFolded(x *tensor.Tensor, bn *BatchNorm2d, add *tensor.Tensor, relu bool) *tensor.Tensor {
	return c.ForwardFoldedInto(&c.y, x, bn, add, relu)
}

// ForwardFoldedInto is ForwardFolded writing into dst, which may be add
// itself: the residual sum computed in place, without copying the shortcut
// into the output first. A nil dst means the layer's own output.
func (c *Conv2d) ForwardFoldedInto(dst, x *tensor.Tensor, bn *BatchNorm2d, add *tensor.Tensor, relu bool) *tensor.Tensor {
	if dst == nil {
		dst = &c.y
	}
	c.fold(bn)
	c.x = x
	c.b.Conv2D(dst, x, c.folded.w, c.folded.b, c.Params, backend.Epilogue{Add: add, ReLU: relu, Inference: true})
	return dst
}

func (c *Conv2d) fold(bn *BatchNorm2d) {
	v := [6]uint64{c.Weight.Value.Version(), bn.Weight.Value.Version(), bn.Bias.Value.Version(),
		bn.RunningMean.Value.Version(), bn.RunningVar.Value.Version()}
	if c.Bias != nil {
		v[5] = c.Bias.Value.Version()
	}
	f := &c.folded
	if f.w != nil && f.from == bn && f.versions == v {
		return
	}
	if f.w == nil {
		f.w = tensor.New(c.Weight.Value.Shape()...)
		f.b = tensor.New(c.OutChannels)
	}
	w, fw, fb := c.Weight.Value.Values(), f.w.Mutable(), f.b.Mutable()
	gamma, beta := bn.Weight.Value.Values(), bn.Bias.Value.Values()
	mean, variance := bn.RunningMean.Value.Values(), bn.RunningVar.Value.Values()
	per := len(w) / c.OutChannels
	for o := range c.OutChannels {
		scale := float64(gamma[o]) / math.Sqrt(float64(variance[o])+float64(bn.Eps))
		for i := o * per; i < (o+1)*per; i++ {
			fw[i] = float32(float64(w[i]) * scale)
		}
		bias := 0.0
		if c.Bias != nil {
			bias = float64(c.Bias.Value.Values()[o])
		}
		fb[o] = float32(float64(beta[o]) + (bias-float64(mean[o]))*scale)
	}
	f.versions, f.from = v, bn
}

func biasValue(v *Var) *tensor.Tensor {
	if v == nil {
		return nil
	}
	return v.Value
}

// ensure returns t, or a new empty tensor when t is nil.
func ensure(t *tensor.Tensor) *tensor.Tensor {
	if t == nil {
		return &tensor.Tensor{}
	}
	return t
}
