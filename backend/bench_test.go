package backend_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/backend/backendtest"
	_ "github.com/resgo/resgo/backend/dnnl" // registers "dnnl" where cgo is on
	_ "github.com/resgo/resgo/backend/ref"
	"github.com/resgo/resgo/tensor"
)

// resnet18Convs are the distinct convolutions of ResNet-18 on a 224x224
// image: name, input channels, input size, output channels, kernel, stride.
var resnet18Convs = []struct {
	name           string
	c, hw, o, k, s int
}{
	{"stem7x7_3-64_224_s2", 3, 224, 64, 7, 2},
	{"3x3_64-64_56", 64, 56, 64, 3, 1},
	{"3x3_64-128_56_s2", 64, 56, 128, 3, 2},
	{"1x1_64-128_56_s2", 64, 56, 128, 1, 2},
	{"3x3_128-128_28", 128, 28, 128, 3, 1},
	{"3x3_128-256_28_s2", 128, 28, 256, 3, 2},
	{"1x1_128-256_28_s2", 128, 28, 256, 1, 2},
	{"3x3_256-256_14", 256, 14, 256, 3, 1},
	{"3x3_256-512_14_s2", 256, 14, 512, 3, 2},
	{"1x1_256-512_14_s2", 256, 14, 512, 1, 2},
	{"3x3_512-512_7", 512, 7, 512, 3, 1},
}

// BenchmarkConvResNet18 times the forward, backward-data and
// backward-weights convolutions of ResNet-18 on every registered backend
// and reports GFLOP/s (2 * multiply-adds per second). Activations are
// handed over in the backend's own layout, as they come from the layer
// before, so the time is the convolution's alone. ref runs batch 1 only.
func BenchmarkConvResNet18(b *testing.B) {
	for _, name := range backend.Names() {
		be, err := backend.New(name, 0)
		if err != nil {
			b.Fatal(err)
		}
		for _, batch := range []int{1, 8} {
			if name == "ref" && batch > 1 {
				continue
			}
			for _, c := range resnet18Convs {
				p := backend.ConvParams{Stride: [2]int{c.s, c.s}, Pad: [2]int{c.k / 2, c.k / 2}}
				xs := []int{batch, c.c, c.hw, c.hw}
				ws := []int{c.o, c.c, c.k, c.k}
				ys, err := backend.CheckConv(xs, ws, p)
				if err != nil {
					b.Fatal(err)
				}
				flops := 2 * float64(tensor.Numel(ys)) * float64(c.c*c.k*c.k)
				x := backendtest.Rand(1, xs...)
				if c.c > 3 {
					x = native(be, x) // the stem reads the Plain image
				}
				w := backendtest.Rand(2, ws...)
				dy := native(be, backendtest.Rand(3, ys...))
				var y, dx, dw tensor.Tensor
				run := func(pass string, f func()) {
					b.Run(fmt.Sprintf("%s/b%d/%s/%s", name, batch, c.name, pass), func(b *testing.B) {
						f() // primitives, weight reorders, destinations
						b.ResetTimer()
						start := time.Now()
						for range b.N {
							f()
						}
						b.ReportMetric(flops*float64(b.N)/time.Since(start).Seconds()/1e9, "GFLOP/s")
					})
				}
				run("fwd", func() { be.Conv2D(&y, x, w, nil, p, backend.Epilogue{}) })
				run("bwd_data", func() { be.Conv2DBackwardData(&dx, dy, w, x, p) })
				run("bwd_weights", func() { be.Conv2DBackwardWeights(&dw, nil, x, dy, ws, p) })
			}
		}
	}
}

// native returns x in the layout b's convolutions write, by passing it
// through a 1x1 identity convolution.
func native(b backend.Backend, x *tensor.Tensor) *tensor.Tensor {
	c := x.Dim(1)
	id := tensor.New(c, c, 1, 1)
	v := id.Mutable()
	for i := range c {
		v[i*c+i] = 1
	}
	var y tensor.Tensor
	b.Conv2D(&y, x, id, nil, backend.ConvParams{}, backend.Epilogue{})
	return &y
}
