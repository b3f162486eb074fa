package train_test

import (
	"context"
	"math"
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
	"github.com/resgo/resgo/train"
)

// TestFlipTTA: with FlipTTA the predictions are the argmax of the mean of
// the softmax of the outputs for each image and for its mirror, computed
// here by hand, and the loss the cross entropy of that mean.
func TestFlipTTA(t *testing.T) {
	dir := t.TempDir()
	_, ds := tinyFolder(t, dir, 5)
	b, err := backend.New("ref", 1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := resnet.New(b, "resnet20", resnet.Options{IncludeTop: true, NumClasses: 3, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	pre := smallConfig("").Eval
	loader, err := train.EvalLoader(ds, pre, 4, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := train.EvaluateWith(context.Background(), m, loader, train.EvalOptions{FlipTTA: true})
	if err != nil {
		t.Fatal(err)
	}
	nn.SetTraining(m, false)
	it := loader.Epoch(0)
	defer it.Close()
	var loss float64
	conf := make([][]int, 3)
	for i := range conf {
		conf[i] = make([]int, 3)
	}
	n := 0
	for batch := it.Next(); batch != nil; batch = it.Next() {
		s := batch.X.Shape()
		flipped := tensor.New(s...)
		w := s[3]
		for r := 0; r < batch.X.Len()/w; r++ {
			for c := range w {
				flipped.Mutable()[r*w+c] = batch.X.Values()[r*w+w-1-c]
			}
		}
		var a, bb []float32
		if err := backend.Do(b, func() {
			a = append([]float32(nil), backend.Values(b, m.Forward(batch.X))...)
			bb = append([]float32(nil), backend.Values(b, m.Forward(flipped))...)
		}); err != nil {
			t.Fatal(err)
		}
		for i, l := range batch.Labels {
			p, q := softmax(a[i*3:(i+1)*3]), softmax(bb[i*3:(i+1)*3])
			best := 0
			for j := range p {
				p[j] = (p[j] + q[j]) / 2
				if p[j] > p[best] {
					best = j
				}
			}
			conf[l][best]++
			loss -= math.Log(p[l])
			n++
		}
		batch.Release()
	}
	loss /= float64(n)
	if math.Abs(loss-res.Loss) > 1e-6*loss {
		t.Errorf("TTA loss %v, by hand %v", res.Loss, loss)
	}
	for i := range conf {
		for j := range conf[i] {
			if conf[i][j] != res.Confusion[i][j] {
				t.Fatalf("TTA confusion %v, by hand %v", res.Confusion, conf)
			}
		}
	}
	plain, err := train.Evaluate(context.Background(), m, loader, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if plain.Loss == res.Loss {
		t.Error("the loss with TTA equals the loss without")
	}
	if res.Top5 != 1 {
		t.Errorf("top-5 of 3 classes: %v, want 1", res.Top5)
	}
}

func softmax(v []float32) []float64 {
	mx := math.Inf(-1)
	for _, x := range v {
		mx = math.Max(mx, float64(x))
	}
	out := make([]float64, len(v))
	var s float64
	for i, x := range v {
		out[i] = math.Exp(float64(x) - mx)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}
