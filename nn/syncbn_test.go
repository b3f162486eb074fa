package nn_test

import (
	"sync"
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/backend/backendtest"
	_ "github.com/resgo/resgo/backend/dnnl"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
)

// group sums the buffers of n goroutines that call AllreduceFloat64 in
// step, as the ranks of an MPI job do.
type group struct {
	n       int
	mu      sync.Mutex
	cond    *sync.Cond
	arrived int
	gen     int
	sum     []float64
	results map[int][]float64 // the sum of each round
}

func newGroup(n int) *group {
	g := &group{n: n, results: map[int][]float64{}}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (g *group) AllreduceFloat64(buf []float64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.arrived == 0 {
		g.sum = make([]float64, len(buf))
	}
	for i, v := range buf {
		g.sum[i] += v
	}
	g.arrived++
	gen := g.gen
	if g.arrived == g.n {
		g.results[gen] = g.sum
		g.arrived = 0
		g.gen++
		g.cond.Broadcast()
	}
	for gen == g.gen {
		g.cond.Wait()
	}
	copy(buf, g.results[gen])
	return nil
}

// Two synchronized batch norms, each on half a batch, compute what one
// computes on the whole batch: the output, the running statistics, the
// input gradient, and gamma and beta gradients that sum to the whole's.
func TestSyncBatchNormMatchesWholeBatch(t *testing.T) {
	for _, name := range backend.Names() {
		t.Run(name, func(t *testing.T) {
			const ranks, n, c, h, w = 2, 3, 4, 5, 5
			x := backendtest.Rand(1, ranks*n, c, h, w)
			dy := backendtest.Rand(2, ranks*n, c, h, w)
			xv := x.Values()
			for i := range xv {
				xv[i] = 3*xv[i] + 2 // a mean far from 0
			}
			gamma, beta := backendtest.Rand(3, c), backendtest.Rand(4, c)
			for _, relu := range []bool{false, true} {
				b, err := backend.New(name, 1)
				if err != nil {
					t.Fatal(err)
				}
				whole := nn.NewBatchNorm2d(b, c)
				whole.Weight.Value.CopyFrom(gamma)
				whole.Bias.Value.CopyFrom(beta)
				var y, dx []float32
				err = backend.Do(b, func() {
					y = backend.Values(b, whole.ForwardReLU(x, relu))
					dx = backend.Values(b, whole.Backward(dy, true))
				})
				if err != nil {
					t.Fatal(err)
				}
				g := newGroup(ranks)
				part := n * c * h * w
				ys, dxs := make([][]float32, ranks), make([][]float32, ranks)
				bns := make([]*nn.BatchNorm2d, ranks)
				errs := make([]error, ranks)
				var wg sync.WaitGroup
				for r := range ranks {
					wg.Go(func() {
						br, err := backend.New(name, 1)
						if err != nil {
							errs[r] = err
							return
						}
						bn := nn.NewBatchNorm2d(br, c)
						bn.Weight.Value.CopyFrom(gamma)
						bn.Bias.Value.CopyFrom(beta)
						nn.SetSyncBN(bn, g)
						bns[r] = bn
						xr := tensor.FromValues(xv[r*part:(r+1)*part], n, c, h, w)
						dyr := tensor.FromValues(dy.Values()[r*part:(r+1)*part], n, c, h, w)
						errs[r] = backend.Do(br, func() {
							ys[r] = backend.Values(br, bn.ForwardReLU(xr, relu))
							dxs[r] = backend.Values(br, bn.Backward(dyr, true))
						})
					})
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
				check := func(what string, got, want []float32) {
					t.Helper()
					if e := backendtest.RelErr(got, want); e > 1e-5 {
						t.Errorf("relu %v: %s: relative error %.2g", relu, what, e)
					}
				}
				var dgamma, dbeta []float32
				for r := range ranks {
					check("y", ys[r], y[r*part:(r+1)*part])
					check("dx", dxs[r], dx[r*part:(r+1)*part])
					check("running mean", bns[r].RunningMean.Value.Values(), whole.RunningMean.Value.Values())
					check("running var", bns[r].RunningVar.Value.Values(), whole.RunningVar.Value.Values())
					dg, db := bns[r].Weight.Grad.Values(), bns[r].Bias.Grad.Values()
					if r == 0 {
						dgamma, dbeta = append([]float32(nil), dg...), append([]float32(nil), db...)
						continue
					}
					for i := range dgamma {
						dgamma[i] += dg[i]
						dbeta[i] += db[i]
					}
				}
				check("dgamma summed", dgamma, whole.Weight.Grad.Values())
				check("dbeta summed", dbeta, whole.Bias.Grad.Values())
			}
		})
	}
}
