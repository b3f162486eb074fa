//go:build cgo

package dnnl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/backend/backendtest"
	"github.com/resgo/resgo/backend/ref"
	"github.com/resgo/resgo/tensor"
)

// convCase is a convolution's input and weight shapes, with or without a
// bias.
type convCase struct {
	x, w []int
	bias bool
}

// winogradCases are ResNet's 3x3 stride-1 convolutions at small batch:
// the shapes oneDNN has Winograd for.
var winogradCases = []convCase{
	{[]int{1, 64, 56, 56}, []int{64, 64, 3, 3}, false},
	{[]int{2, 128, 28, 28}, []int{128, 128, 3, 3}, true},
	{[]int{1, 512, 7, 7}, []int{512, 512, 3, 3}, false},
}

// TestConvAlgo runs the inference convolutions of winogradCases under each
// RESGO_CONV mode, with and without a fused residual add and ReLU, and
// checks them against the ref backend. Where oneDNN has Winograd (AVX-512),
// or wino.c does (AVX2), "winograd" must use it and "auto" must time both
// forms and keep the faster (its time including the reorders to and from
// its layouts); elsewhere both must stay direct and record nothing. It prints
// Winograd's error, which RESGO_CONV's documentation quotes.
func TestConvAlgo(t *testing.T) {
	r := ref.New(2)
	p := backend.ConvParams{Stride: [2]int{1, 1}, Pad: [2]int{1, 1}, Dilation: [2]int{1, 1}, Groups: 1}
	for _, mode := range []string{ConvDirect, ConvWinograd, ConvAuto} {
		t.Run(mode, func(t *testing.T) {
			b := newWithConv(t, mode)
			defer b.Close()
			worst := 0.0
			for i, c := range winogradCases {
				x := backendtest.Rand(uint64(10+i), c.x...)
				w := backendtest.Rand(uint64(20+i), c.w...)
				var bias *tensor.Tensor
				if c.bias {
					bias = backendtest.Rand(uint64(30+i), c.w[0])
				}
				ys, err := backend.CheckConv(c.x, c.w, p)
				if err != nil {
					t.Fatal(err)
				}
				add := backendtest.Rand(uint64(40+i), ys...)
				for _, fused := range []bool{false, true} {
					ep := backend.Epilogue{Inference: true}
					if fused {
						ep.Add, ep.ReLU = add, true
					}
					var want tensor.Tensor
					r.Conv2D(&want, x, w, bias, p, backend.Epilogue{Add: ep.Add, ReLU: ep.ReLU})
					xb := blocked(t, b, x)
					if fused {
						ep.Add = blocked(t, b, add)
					}
					var y tensor.Tensor
					b.Conv2D(&y, xb, w, bias, p, ep)
					e := backendtest.RelErr(backendtest.Plain(b, &y), want.Values())
					worst = max(worst, e)
					if e > tol {
						t.Errorf("%v * %v fused=%v: relative error %.3g > %.1g", c.x, c.w, fused, e, tol)
					}
				}
			}
			choices := b.ConvChoices()
			t.Logf("RESGO_CONV=%s on %s: worst relative error %.2g; choices %s", mode, ISA(), worst, fmt.Sprint(choices))
			switch {
			case mode == ConvDirect || !hasWinograd() && !ownWinogradCPU():
				if len(choices) != 0 {
					t.Errorf("%d choices recorded, want none", len(choices))
				}
			default:
				// One per shape and epilogue: the fused and the plain forms
				// are different primitives.
				if len(choices) != 2*len(winogradCases) {
					t.Fatalf("%d choices recorded, want %d", len(choices), 2*len(winogradCases))
				}
				for _, c := range choices {
					checkChoice(t, mode, c)
				}
			}
		})
	}
}

// trainingCases are the 3x3 stride-1 convolutions of ResNet-20's three
// stages on 28x28 Fashion-MNIST images and one of resnet18's, at the small
// batches a test affords.
var trainingCases = []convCase{
	{[]int{8, 16, 28, 28}, []int{16, 16, 3, 3}, false},
	{[]int{8, 32, 14, 14}, []int{32, 32, 3, 3}, true},
	{[]int{8, 64, 7, 7}, []int{64, 64, 3, 3}, false},
	{[]int{2, 64, 56, 56}, []int{64, 64, 3, 3}, false},
}

// TestWinogradTraining runs the training passes of trainingCases (forward,
// backward data, backward weights and bias) under RESGO_CONV=winograd and
// auto and checks them against the ref backend. Where oneDNN has Winograd
// (AVX-512), each pass must record its choice: Winograd untimed under
// winograd, the faster of the two timed forms under auto; where wino.c
// stands in (AVX2), every pass but the one to the weights with a bias.
func TestWinogradTraining(t *testing.T) {
	r := ref.New(2)
	p := backend.ConvParams{Stride: [2]int{1, 1}, Pad: [2]int{1, 1}, Dilation: [2]int{1, 1}, Groups: 1}
	for _, mode := range []string{ConvWinograd, ConvAuto} {
		t.Run(mode, func(t *testing.T) {
			b := newWithConv(t, mode)
			defer b.Close()
			worst := map[string]float64{}
			check := func(pass string, c []int, got *tensor.Tensor, want *tensor.Tensor) {
				e := backendtest.RelErr(backendtest.Plain(b, got), want.Values())
				worst[pass] = max(worst[pass], e)
				if e > tol {
					t.Errorf("%s of %v: relative error %.3g > %.1g", pass, c, e, tol)
				}
			}
			for i, c := range trainingCases {
				x := backendtest.Rand(uint64(50+i), c.x...)
				w := backendtest.Rand(uint64(60+i), c.w...)
				var bias *tensor.Tensor
				if c.bias {
					bias = backendtest.Rand(uint64(70+i), c.w[0])
				}
				ys, err := backend.CheckConv(c.x, c.w, p)
				if err != nil {
					t.Fatal(err)
				}
				dy := backendtest.Rand(uint64(80+i), ys...)

				var want, y tensor.Tensor
				r.Conv2D(&want, x, w, bias, p, backend.Epilogue{})
				b.Conv2D(&y, blocked(t, b, x), w, bias, p, backend.Epilogue{})
				check("forward", c.x, &y, &want)

				var wantDx, dx tensor.Tensor
				r.Conv2DBackwardData(&wantDx, dy, w, x, p)
				b.Conv2DBackwardData(&dx, blocked(t, b, dy), w, x, p)
				check("backward data", c.x, &dx, &wantDx)

				var wantDw, dw, wantDb, db tensor.Tensor
				var wantDbp, dbp *tensor.Tensor
				if c.bias {
					wantDbp, dbp = &wantDb, &db
				}
				r.Conv2DBackwardWeights(&wantDw, wantDbp, x, dy, c.w, p)
				b.Conv2DBackwardWeights(&dw, dbp, blocked(t, b, x), blocked(t, b, dy), c.w, p)
				check("backward weights", c.x, &dw, &wantDw)
				if c.bias {
					check("backward bias", c.x, &db, &wantDb)
				}
			}
			choices := b.ConvChoices()
			t.Logf("RESGO_CONV=%s on %s: worst relative errors %v", mode, ISA(), worst)
			for _, c := range choices {
				t.Logf("  %s %s: direct %.3f ms (%s), Winograd %.3f ms (%s): %s", c.Pass, c.Shape, c.Direct, c.DirectImpl, c.Winograd, c.WinImpl, c.Chose)
			}
			n, biased := len(trainingCases), 0
			for _, c := range trainingCases {
				if c.bias {
					biased++
				}
			}
			var want map[string]int
			switch {
			case hasWinograd():
				want = map[string]int{"forward_training": n, "backward_data": n, "backward_weights": n}
			case ownWinogradCPU():
				// wino.c leaves the pass to the weights with a bias to oneDNN.
				want = map[string]int{"forward_training": n, "backward_data": n, "backward_weights": n - biased}
			default:
				if len(choices) != 0 {
					t.Errorf("%d choices recorded without Winograd, want none", len(choices))
				}
				return
			}
			passes := map[string]int{}
			for _, c := range choices {
				passes[c.Pass]++
				checkChoice(t, mode, c)
			}
			if fmt.Sprint(passes) != fmt.Sprint(want) {
				t.Errorf("choices by pass %v, want %v", passes, want)
			}
		})
	}
}

// newWithConv returns a 2-thread backend created under RESGO_CONV=mode,
// without the tuning cache (both restored after the test).
func newWithConv(t *testing.T, mode string) *Backend {
	t.Helper()
	t.Setenv("RESGO_CONV", mode)
	t.Setenv("RESGO_TUNE_CACHE", "off") // time every choice
	b, err := New(2)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkChoice checks one recorded choice of RESGO_CONV=mode: under auto
// both forms timed and the faster kept, under winograd Winograd untimed.
func checkChoice(t *testing.T, mode string, c ConvChoice) {
	t.Helper()
	timed := c.Direct > 0 && c.Winograd > 0
	if mode == ConvAuto && (!timed || (c.Chose == ConvWinograd) != (c.Winograd < c.Direct)) {
		t.Errorf("auto: %+v: not timed, or not the faster kept", c)
	}
	if mode == ConvWinograd && (timed || c.Chose != ConvWinograd) {
		t.Errorf("winograd: %+v", c)
	}
}

// TestTuneCache: under RESGO_CONV=auto a backend times a convolution's two
// forms and writes its choice to RESGO_TUNE_CACHE; the next backend takes
// the same choice from the file without timing; a file larger than the
// bound, or that is not a cache, is taken as empty and replaced.
func TestTuneCache(t *testing.T) {
	if !hasWinograd() && !ownWinogradCPU() {
		t.Skip("no Winograd convolution on " + ISA())
	}
	path := filepath.Join(t.TempDir(), "sub", "tune.json")
	t.Setenv("RESGO_CONV", ConvAuto)
	t.Setenv("RESGO_TUNE_CACHE", path)
	p := backend.ConvParams{Stride: [2]int{1, 1}, Pad: [2]int{1, 1}, Dilation: [2]int{1, 1}, Groups: 1}
	x := backendtest.Rand(1, 1, 64, 28, 28)
	w := backendtest.Rand(2, 64, 64, 3, 3)
	choose := func() ConvChoice {
		t.Helper()
		b, err := New(2)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		var y tensor.Tensor
		b.Conv2D(&y, x, w, nil, p, backend.Epilogue{Inference: true})
		cs := b.ConvChoices()
		if len(cs) != 1 {
			t.Fatalf("choices %+v, want one", cs)
		}
		return cs[0]
	}
	first := choose()
	if first.Cached || first.Direct <= 0 || first.Winograd <= 0 {
		t.Fatalf("first choice %+v: want timed", first)
	}
	entries := func() int {
		t.Helper()
		data, err := os.ReadFile(path)
		var f tuneFile
		if err != nil || json.Unmarshal(data, &f) != nil {
			t.Fatalf("cache %s: %v\n%s", path, err, data)
		}
		return len(f.Entries)
	}
	if n := entries(); n != 1 {
		t.Errorf("cache has %d entries, want 1", n)
	}
	second := choose()
	if !second.Cached || second.Chose != first.Chose || second.Direct != first.Direct || second.Winograd != first.Winograd {
		t.Errorf("second choice %+v, want %+v from the cache", second, first)
	}
	// The same cache padded past maxTuneCacheBytes is not read.
	valid, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(valid, bytes.Repeat([]byte(" "), maxTuneCacheBytes)...), 0o644); err != nil {
		t.Fatal(err)
	}
	if big := choose(); big.Cached {
		t.Errorf("choice %+v taken from a cache file of more than %d bytes", big, maxTuneCacheBytes)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if third := choose(); third.Cached {
		t.Errorf("choice %+v taken from a broken cache", third)
	}
	if n := entries(); n != 1 {
		t.Errorf("broken cache replaced by %d entries, want 1", n)
	}
}
