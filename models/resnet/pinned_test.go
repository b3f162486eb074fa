package resnet_test

import (
	"fmt"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/tensor"
)

// pinned wraps a backend so that every ReLU and max pooling of a training
// step takes the decisions PyTorch's float64 run took (relu64.* and
// maxpool64.* of the fixtures) instead of its own.
//
// Why: a gradient is a piecewise smooth function of the weights, and the
// pieces meet where a pre-activation is exactly zero. A float32 forward pass
// computes each pre-activation to about 1e-6, so the few elements (a few
// dozen in resnet50 at batch 2) that lie closer than that to zero fall on
// either side by chance, differently in every implementation: resgo's
// backends, and PyTorch's own float32 run on each CPU. Each such decision
// moves a deep network's gradients by up to 1% (max-norm), which would hide
// any real error of that size. With the decisions replayed, the gradients
// are those of the same piece as the float64 reference, and they agree with
// it to float32 accuracy.
//
// The wrapped ops compute without their fused ReLU and apply the recorded
// mask in Go on Plain values; the fused paths themselves are checked op by
// op against backend/ref in backend/dnnl's tests.
type pinned struct {
	backend.Backend
	relus [][]bool  // recorded decisions, in the order the ReLUs run
	pools [][]int64 // recorded argmax (flat H*W index) of each max pooling
	next  int       // ReLUs used so far
	pool  int       // max poolings used so far
	mask  map[*tensor.Tensor][]bool
	err   error
}

// newPinned reads the decisions from the fixture exp for a wrapper over b.
func newPinned(b backend.Backend, exp *checkpoint.StateDict) (*pinned, error) {
	p := &pinned{Backend: b, mask: map[*tensor.Tensor][]bool{}}
	for i := 0; ; i++ {
		t := exp.Get(fmt.Sprintf("relu64.%d", i))
		if t == nil {
			break
		}
		bits := make([]bool, 8*len(t.I64))
		for j, v := range t.I64 {
			for k := range 8 {
				bits[8*j+k] = v&(0x80>>k) != 0
			}
		}
		p.relus = append(p.relus, bits)
	}
	for i := 0; ; i++ {
		t := exp.Get(fmt.Sprintf("maxpool64.%d", i))
		if t == nil {
			break
		}
		p.pools = append(p.pools, t.I64)
	}
	if len(p.relus) == 0 {
		return nil, fmt.Errorf("the fixture has no relu64 decisions")
	}
	return p, nil
}

// check reports an error if not every recorded decision was used.
func (p *pinned) check() error {
	if p.err != nil {
		return p.err
	}
	if p.next != len(p.relus) || p.pool != len(p.pools) {
		return fmt.Errorf("the step ran %d ReLUs and %d max poolings, PyTorch %d and %d", p.next, p.pool, len(p.relus), len(p.pools))
	}
	return nil
}

// applyReLU makes y Plain and zeroes it where the next recorded ReLU
// decision is "not positive".
func (p *pinned) applyReLU(y *tensor.Tensor) {
	if p.next >= len(p.relus) {
		p.fail(fmt.Errorf("ReLU %d: PyTorch ran only %d", p.next+1, len(p.relus)))
		return
	}
	m := p.relus[p.next]
	p.next++
	if len(m) < y.Len() || len(m) >= y.Len()+8 {
		p.fail(fmt.Errorf("ReLU %d: %d recorded decisions for %v", p.next, len(m), y.Shape()))
		return
	}
	m = m[:y.Len()]
	p.Backend.ToPlain(y, y)
	v := y.Mutable()
	for i := range v {
		if !m[i] {
			v[i] = 0
		}
	}
	p.mask[y] = m
}

func (p *pinned) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

// maskGrad returns dy masked by the decisions recorded for y, as a new
// Plain tensor.
func (p *pinned) maskGrad(dy, y *tensor.Tensor) *tensor.Tensor {
	m, ok := p.mask[y]
	if !ok {
		p.fail(fmt.Errorf("a ReLU backward on %v without a recorded forward", y.Shape()))
		m = make([]bool, y.Len())
	}
	out := tensor.New(dy.Shape()...)
	v := out.Mutable()
	copy(v, backend.Values(p.Backend, dy))
	for i := range v {
		if !m[i] {
			v[i] = 0
		}
	}
	return out
}

func (p *pinned) BatchNormTrain(y, mean, variance, x, gamma, beta *tensor.Tensor, eps float32, relu bool) {
	p.Backend.BatchNormTrain(y, mean, variance, x, gamma, beta, eps, false)
	if relu {
		p.applyReLU(y)
	}
}

func (p *pinned) BatchNormBackward(dx, dgamma, dbeta, dy, x, y, gamma, mean, variance *tensor.Tensor, eps float32, relu bool) {
	if relu {
		dy = p.maskGrad(dy, y)
	}
	p.Backend.BatchNormBackward(dx, dgamma, dbeta, dy, x, y, gamma, mean, variance, eps, false)
}

func (p *pinned) Add(y, a, b *tensor.Tensor, relu bool) {
	p.Backend.Add(y, a, b, false)
	if relu {
		p.applyReLU(y)
	}
}

func (p *pinned) ReLU(y, x *tensor.Tensor) {
	if y != x {
		p.Backend.ToPlain(y, x)
	}
	p.applyReLU(y)
}

func (p *pinned) ReLUBackward(dx, dy, y *tensor.Tensor) {
	g := p.maskGrad(dy, y)
	if dx == y {
		p.fail(fmt.Errorf("ReLUBackward writing over y"))
	}
	dx.Reset(tensor.Plain, nil, g.Len(), g.Shape()...)
	copy(dx.Mutable(), g.Values())
}

// MaxPool2DBackward routes each dy to the input PyTorch's float64 run
// took the maximum from.
func (p *pinned) MaxPool2DBackward(dx, dy, x, y *tensor.Tensor, pp backend.PoolParams) {
	if p.pool >= len(p.pools) {
		p.fail(fmt.Errorf("max pooling %d: PyTorch ran only %d", p.pool+1, len(p.pools)))
		p.Backend.MaxPool2DBackward(dx, dy, x, y, pp)
		return
	}
	idx := p.pools[p.pool]
	p.pool++
	g := backend.Values(p.Backend, dy)
	if len(idx) != len(g) {
		p.fail(fmt.Errorf("max pooling %d: %d recorded choices for %d outputs", p.pool, len(idx), len(g)))
		return
	}
	n, c, h, w := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	out := make([]float32, n*c*h*w)
	per := len(g) / (n * c) // outputs per plane
	for i, v := range g {
		out[(i/per)*h*w+int(idx[i])] += v
	}
	dx.Reset(tensor.Plain, nil, len(out), n, c, h, w)
	copy(dx.Mutable(), out)
}
