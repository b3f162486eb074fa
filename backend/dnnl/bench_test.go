//go:build cgo

package dnnl

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/backend/backendtest"
	"github.com/resgo/resgo/tensor"
)

// BenchmarkOverhead measures the fixed cost of one backend call: an
// operation on a tensor too small for its computation to matter (the trip
// to the worker thread, the cache look-up, the memory objects and an
// OpenMP parallel region).
func BenchmarkOverhead(b *testing.B) {
	be, err := New(2)
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	x := be.blockedCopy(backendtest.Rand(1, 1, 16, 1, 1))
	var y tensor.Tensor
	b.Run("ReLU_1x16x1x1", func(b *testing.B) {
		for range b.N {
			be.ReLU(&y, x)
		}
	})
	b.Run("RoundTrip", func(b *testing.B) {
		for range b.N {
			be.s.do(func(*state) {})
		}
	})
	w := backendtest.Rand(2, 16, 16, 1, 1)
	b.Run("Conv1x1_1x16x1x1", func(b *testing.B) {
		for range b.N {
			be.Conv2D(&y, x, w, nil, backend.ConvParams{}, backend.Epilogue{})
		}
	})
}

// BenchmarkConvThreads runs one convolution with 1 and 2 OpenMP threads:
// the ratio shows that SetThreads takes effect.
func BenchmarkConvThreads(b *testing.B) {
	be, err := New(2)
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	p := backend.ConvParams{Pad: [2]int{1, 1}}
	x := be.blockedCopy(backendtest.Rand(1, 4, 64, 56, 56))
	w := backendtest.Rand(2, 64, 64, 3, 3)
	flops := 2.0 * 4 * 64 * 56 * 56 * 64 * 9
	var y tensor.Tensor
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", n), func(b *testing.B) {
			be.SetThreads(n)
			be.Conv2D(&y, x, w, nil, p, backend.Epilogue{})
			b.ResetTimer()
			for range b.N {
				be.Conv2D(&y, x, w, nil, p, backend.Epilogue{})
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkBlock runs a ResNet basic block's worth of training work,
// conv -> BN+ReLU -> conv -> BN -> Add+ReLU and its backward pass, on
// blocked activations: many operations of every size, so the per-call
// overheads and OpenMP's thread wake-ups show next to the convolutions.
//
// The go_work variants run a CPU-bound goroutine alongside (as a data
// loader would) and report its throughput in Mops/s: OpenMP threads that
// spin after their parallel regions take CPU from it.
func BenchmarkBlock(b *testing.B) {
	for _, sh := range []struct {
		n, c, hw int
		goWork   bool
	}{{8, 64, 56, false}, {1, 64, 56, false}, {8, 512, 7, false}, {1, 512, 7, false}, {8, 64, 56, true}, {1, 512, 7, true}} {
		name := fmt.Sprintf("%dx%dx%d", sh.n, sh.c, sh.hw)
		if sh.goWork {
			name += "_go_work"
		}
		b.Run(name, func(b *testing.B) {
			be, err := New(2)
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			const eps = 1e-5
			p := backend.ConvParams{Pad: [2]int{1, 1}}
			x := be.blockedCopy(backendtest.Rand(1, sh.n, sh.c, sh.hw, sh.hw))
			w1 := backendtest.Rand(2, sh.c, sh.c, 3, 3)
			w2 := backendtest.Rand(3, sh.c, sh.c, 3, 3)
			g, bt := backendtest.RandPositive(4, 0.5, 1.5, sh.c), backendtest.Rand(5, sh.c)
			var c1, n1, m1, v1, c2, n2, m2, v2, s tensor.Tensor
			var ds, dn2, dg2, db2, dc2, dw2, dn1, dg1, db1, dw1, dx tensor.Tensor
			step := func() {
				be.Conv2D(&c1, x, w1, nil, p, backend.Epilogue{})
				be.BatchNormTrain(&n1, &m1, &v1, &c1, g, bt, eps, true)
				be.Conv2D(&c2, &n1, w2, nil, p, backend.Epilogue{})
				be.BatchNormTrain(&n2, &m2, &v2, &c2, g, bt, eps, false)
				be.Add(&s, &n2, x, true)
				be.ReLUBackward(&ds, &s, &s)
				be.BatchNormBackward(&dn2, &dg2, &db2, &ds, &c2, &n2, g, &m2, &v2, eps, false)
				be.Conv2DBackwardData(&dc2, &dn2, w2, &n1, p)
				be.Conv2DBackwardWeights(&dw2, nil, &n1, &dn2, w2.Shape(), p)
				be.BatchNormBackward(&dn1, &dg1, &db1, &dc2, &c1, &n1, g, &m1, &v1, eps, true)
				be.Conv2DBackwardData(&dx, &dn1, w1, x, p)
				be.Conv2DBackwardWeights(&dw1, nil, x, &dn1, w1.Shape(), p)
			}
			step()
			var ops atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if sh.goWork {
				wg.Go(func() {
					x := uint64(1)
					for {
						select {
						case <-stop:
							return
						default:
						}
						for range 1000 {
							x = x*6364136223846793005 + 1442695040888963407
						}
						ops.Add(1000)
						if x == 0 {
							fmt.Print()
						}
					}
				})
			}
			b.ResetTimer()
			for range b.N {
				step()
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
			flops := 6 * 2.0 * float64(sh.n*sh.c*sh.hw*sh.hw*sh.c*9)
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			if sh.goWork {
				b.ReportMetric(float64(ops.Load())/b.Elapsed().Seconds()/1e6, "go-Mops/s")
			}
		})
	}
}
