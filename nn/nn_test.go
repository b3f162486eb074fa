package nn_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/backend/backendtest"
	"github.com/resgo/resgo/backend/ref"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
)

// channelStats returns the mean and the biased variance of channel c of an
// NCHW tensor, in float64.
func channelStats(x *tensor.Tensor, c int) (mean, variance float64) {
	n, ch, hw := x.Dim(0), x.Dim(1), x.Dim(2)*x.Dim(3)
	v := x.Values()
	for i := range n {
		for j := range hw {
			mean += float64(v[(i*ch+c)*hw+j])
		}
	}
	mean /= float64(n * hw)
	for i := range n {
		for j := range hw {
			d := float64(v[(i*ch+c)*hw+j]) - mean
			variance += d * d
		}
	}
	return mean, variance / float64(n*hw)
}

func close(a, b, tol float64) bool { return math.Abs(a-b) <= tol*max(1, math.Abs(b)) }

func TestBatchNormRunningStatistics(t *testing.T) {
	b := ref.New(2)
	bn := nn.NewBatchNorm2d(b, 3)
	x1 := backendtest.Rand(1, 4, 3, 5, 5)
	x2 := backendtest.RandPositive(2, 1, 3, 4, 3, 5, 5)
	bn.Forward(x1)
	bn.Forward(x2)
	if *bn.NumBatchesTracked.Count != 2 {
		t.Errorf("num_batches_tracked %d, want 2", *bn.NumBatchesTracked.Count)
	}
	n := 4.0 * 25
	for c := range 3 {
		m1, v1 := channelStats(x1, c)
		m2, v2 := channelStats(x2, c)
		// running = (1-0.1)*running + 0.1*batch, the variance unbiased.
		wantMean := 0.9*(0.9*0+0.1*m1) + 0.1*m2
		wantVar := 0.9*(0.9*1+0.1*v1*n/(n-1)) + 0.1*v2*n/(n-1)
		if got := float64(bn.RunningMean.Value.Values()[c]); !close(got, wantMean, 1e-5) {
			t.Errorf("channel %d running_mean %v, want %v", c, got, wantMean)
		}
		if got := float64(bn.RunningVar.Value.Values()[c]); !close(got, wantVar, 1e-5) {
			t.Errorf("channel %d running_var %v, want %v", c, got, wantVar)
		}
	}

	// momentum=None: the cumulative average of the batch statistics.
	cum := nn.NewBatchNorm2d(b, 3)
	cum.CumulativeAverage = true
	cum.Forward(x1)
	cum.Forward(x2)
	for c := range 3 {
		m1, v1 := channelStats(x1, c)
		m2, v2 := channelStats(x2, c)
		if got := float64(cum.RunningMean.Value.Values()[c]); !close(got, (m1+m2)/2, 1e-5) {
			t.Errorf("cumulative running_mean %v, want %v", got, (m1+m2)/2)
		}
		if got, want := float64(cum.RunningVar.Value.Values()[c]), (v1+v2)/2*n/(n-1); !close(got, want, 1e-5) {
			t.Errorf("cumulative running_var %v, want %v", got, want)
		}
	}
}

func TestBatchNormTrainNormalizesWithBatchStatistics(t *testing.T) {
	b := ref.New(2)
	bn := nn.NewBatchNorm2d(b, 2)
	x := backendtest.RandPositive(3, -2, 5, 3, 2, 4, 4)
	y := bn.Forward(x)
	for c := range 2 {
		m, v := channelStats(y, c)
		if math.Abs(m) > 1e-5 || math.Abs(v-1) > 1e-3 {
			t.Errorf("channel %d of the output: mean %v variance %v, want 0 and 1", c, m, v)
		}
	}
}

func TestBatchNormEvalUsesRunningStatistics(t *testing.T) {
	b := ref.New(2)
	bn := nn.NewBatchNorm2d(b, 2)
	copy(bn.RunningMean.Value.Mutable(), []float32{0.5, -1})
	copy(bn.RunningVar.Value.Mutable(), []float32{4, 0.25})
	copy(bn.Weight.Value.Mutable(), []float32{2, 3})
	copy(bn.Bias.Value.Mutable(), []float32{0.1, -0.2})
	bn.SetTraining(false)
	x := backendtest.Rand(4, 2, 2, 3, 3)
	y := bn.Forward(x).Values()
	rm, rv := []float64{0.5, -1}, []float64{4, 0.25}
	g, be := []float64{2, 3}, []float64{0.1, -0.2}
	for i, v := range x.Values() {
		c := (i / 9) % 2
		want := g[c]*(float64(v)-rm[c])/math.Sqrt(rv[c]+1e-5) + be[c]
		if !close(float64(y[i]), want, 1e-5) {
			t.Fatalf("element %d: %v, want %v", i, y[i], want)
		}
	}
	if *bn.NumBatchesTracked.Count != 0 {
		t.Error("evaluation counted a batch")
	}
}

func TestBatchNormOneValuePerChannelIsAnError(t *testing.T) {
	bn := nn.NewBatchNorm2d(ref.New(1), 4)
	err := backend.Catch(func() { bn.Forward(backendtest.Rand(1, 1, 4, 1, 1)) })
	if err == nil || !strings.Contains(err.Error(), "expected more than 1 value per channel when training") {
		t.Errorf("batch of 1x1x1 in training: %v", err)
	}
	bn.SetTraining(false)
	if err := backend.Catch(func() { bn.Forward(backendtest.Rand(1, 1, 4, 1, 1)) }); err != nil {
		t.Errorf("the same batch in evaluation mode: %v", err)
	}
}

func TestFrozenBatchNormDoesNotDrift(t *testing.T) {
	b := ref.New(2)
	bn := nn.NewBatchNorm2d(b, 3)
	bn.Forward(backendtest.Rand(5, 4, 3, 3, 3)) // some statistics to keep
	nn.Freeze(bn)
	before := append([]float32(nil), bn.RunningMean.Value.Values()...)
	beforeVar := append([]float32(nil), bn.RunningVar.Value.Values()...)
	count := *bn.NumBatchesTracked.Count

	x := backendtest.Rand(6, 4, 3, 3, 3)
	y := bn.Forward(x) // training mode, but frozen
	for i := range before {
		if bn.RunningMean.Value.Values()[i] != before[i] || bn.RunningVar.Value.Values()[i] != beforeVar[i] {
			t.Fatal("a frozen BN changed its running statistics")
		}
	}
	if *bn.NumBatchesTracked.Count != count {
		t.Error("a frozen BN counted a batch")
	}
	// It normalized with the running statistics, like evaluation mode.
	ev := nn.NewBatchNorm2d(b, 3)
	ev.RunningMean.Value.CopyFrom(bn.RunningMean.Value)
	ev.RunningVar.Value.CopyFrom(bn.RunningVar.Value)
	ev.SetTraining(false)
	if e := backendtest.RelErr(y.Values(), ev.Forward(x).Values()); e != 0 {
		t.Errorf("frozen BN output differs from evaluation mode by %g", e)
	}

	// Backward: no parameter gradients; the input gradient is
	// dy*gamma/sqrt(running_var+eps).
	dy := backendtest.Rand(7, 4, 3, 3, 3)
	dx := bn.Backward(dy, true)
	if bn.Weight.Grad != nil || bn.Bias.Grad != nil {
		t.Error("a frozen BN computed parameter gradients")
	}
	rv := bn.RunningVar.Value.Values()
	for i, v := range dy.Values() {
		c := (i / 9) % 3
		want := float64(v) / math.Sqrt(float64(rv[c])+1e-5)
		if !close(float64(dx.Values()[i]), want, 1e-5) {
			t.Fatalf("dx[%d] = %v, want %v", i, dx.Values()[i], want)
		}
	}
}

func TestSequentialSkipsFrozenPrefix(t *testing.T) {
	b := ref.New(2)
	conv1, _ := nn.NewConv2d(b, 2, 4, 3, 1, 1, 1, false)
	conv2, _ := nn.NewConv2d(b, 4, 4, 3, 1, 1, 1, false)
	bn := nn.NewBatchNorm2d(b, 4)
	for _, c := range []*nn.Conv2d{conv1, conv2} {
		c.Weight.Value.CopyFrom(backendtest.Rand(uint64(c.OutChannels+c.InChannels), c.Weight.Value.Shape()...))
	}
	seq := nn.NewSequential(conv1, nn.NewReLU(b), conv2, bn)
	nn.Freeze(seq.Layers[0].Module)
	y := seq.Forward(backendtest.Rand(9, 2, 2, 5, 5))
	if dx := seq.Backward(y, false); dx != nil {
		t.Error("input gradient computed though nobody needs it")
	}
	if conv1.Weight.Grad != nil {
		t.Error("frozen conv1 got a gradient")
	}
	if conv2.Weight.Grad == nil || bn.Weight.Grad == nil {
		t.Error("trainable layers got no gradient")
	}
	if got := len(nn.Params(seq, true)); got != 3 {
		t.Errorf("%d trainable parameters, want conv2.weight, 3.weight, 3.bias", got)
	}
	names := []string{}
	for _, v := range nn.State(seq) {
		names = append(names, v.Name)
	}
	if strings.Join(names, ",") != "0.weight,2.weight,3.weight,3.bias,3.running_mean,3.running_var,3.num_batches_tracked" {
		t.Errorf("state names %v", names)
	}
}

func TestErrorsNameTheLayer(t *testing.T) {
	b := ref.New(1)
	conv, _ := nn.NewConv2d(b, 2, 4, 3, 1, 1, 1, false)
	seq := nn.NewSequential(conv, nn.NewSequential(nn.NewReLU(b), nn.NewBatchNorm2d(b, 4)))
	check := func(what string, err error, op string) {
		t.Helper()
		var e *backend.Error
		if !errors.As(err, &e) || e.Layer != "1.1" || e.Op != op || !strings.HasPrefix(err.Error(), "1.1: "+op+": ") {
			t.Errorf("%s: %v; want an *Error of %s in layer 1.1", what, err, op)
		}
	}
	// One value per channel: the batch norm fails in training.
	err := backend.Catch(func() { seq.Forward(backendtest.Rand(1, 1, 2, 1, 1)) })
	check("forward", err, "nn.BatchNorm2d")
	// A gradient of the wrong shape: the last layer's backward pass fails.
	err = backend.Catch(func() {
		seq.Forward(backendtest.Rand(2, 2, 2, 3, 3))
		seq.Backward(backendtest.Rand(3, 2, 4, 2, 2), false)
	})
	check("backward", err, "ref.BatchNormBackward")
}
