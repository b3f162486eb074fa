package ref

import "github.com/resgo/resgo/tensor"

// ReLU computes y = max(x, 0) elementwise. y may be x.
func (b *Backend) ReLU(y, x *tensor.Tensor) {
	const op = "ref.ReLU"
	mustDst(op, y, "y", x)
	mustPlain(op, x)
	reset(y, x.Shape()...)
	xv, yv := x.Values(), y.Storage()
	for i, v := range xv {
		yv[i] = max(v, 0)
	}
}

// ReLUBackward computes dx = dy where y > 0, else 0 (y is the forward
// output; the derivative at 0 is taken as 0). dx may be dy.
func (b *Backend) ReLUBackward(dx, dy, y *tensor.Tensor) {
	const op = "ref.ReLUBackward"
	mustDst(op, dx, "dx", dy, y)
	mustPlain(op, dy, y)
	mustShape(op, dy, y.Shape(), "dy", dy, y)
	reset(dx, y.Shape()...)
	dyv, yv, dxv := dy.Values(), y.Values(), dx.Storage()
	for i, v := range yv {
		if v > 0 {
			dxv[i] = dyv[i]
		} else {
			dxv[i] = 0
		}
	}
}

// Add computes y = a + c elementwise (the interface's a + b; the receiver
// already is b), then max(y, 0) if relu is set. y may be a or c.
func (b *Backend) Add(y, a, c *tensor.Tensor, relu bool) {
	const op = "ref.Add"
	mustDst(op, y, "y", a, c)
	mustPlain(op, a, c)
	mustShape(op, c, a.Shape(), "second operand", a, c)
	reset(y, a.Shape()...) // keeps the values when y is a or c
	av, cv, yv := a.Values(), c.Values(), y.Storage()
	for i := range yv {
		v := av[i] + cv[i]
		if relu {
			v = max(v, 0)
		}
		yv[i] = v
	}
}
