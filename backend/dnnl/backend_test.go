//go:build cgo

package dnnl

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/backend/backendtest"
	"github.com/resgo/resgo/tensor"
)

// TestChainBlocked runs conv -> BN+ReLU -> conv -> BN -> Add+ReLU ->
// max-pool -> global average pool -> linear -> loss, and back, on blocked
// activations throughout, and checks every output and gradient against
// ref. No activation is converted between layers.
func TestChainBlocked(t *testing.T) {
	b, r := newBackends(t)
	const eps = 1e-5
	x := backendtest.Rand(1, 2, 3, 17, 15) // a Plain image, odd sizes
	w1 := backendtest.Rand(2, 24, 3, 3, 3)
	w2 := backendtest.Rand(3, 24, 24, 3, 3)
	g1, b1 := backendtest.RandPositive(4, 0.5, 1.5, 24), backendtest.Rand(5, 24)
	g2, b2 := backendtest.RandPositive(6, 0.5, 1.5, 24), backendtest.Rand(7, 24)
	fc := backendtest.Rand(8, 5, 24)
	fb := backendtest.Rand(9, 5)
	labels := []int{3, 1}
	p1 := backend.ConvParams{Stride: [2]int{2, 2}, Pad: [2]int{1, 1}}
	p2 := backend.ConvParams{Pad: [2]int{1, 1}}
	pool := backend.PoolParams{Kernel: [2]int{3, 3}, Stride: [2]int{2, 2}, Pad: [2]int{1, 1}}

	type net struct {
		c1, n1, m1, v1, c2, n2, m2, v2, s, mp, gap, logits tensor.Tensor
		loss                                               float64
		dlogits, dgap, dmp, ds, dn2, dg2, db2, dc2, dw2    tensor.Tensor
		dn1, dg1, db1, dc1, dw1, dfc, dfb, dgapFlat        tensor.Tensor
	}
	run := func(be backend.Backend, n *net) {
		be.Conv2D(&n.c1, x, w1, nil, p1, backend.Epilogue{})
		be.BatchNormTrain(&n.n1, &n.m1, &n.v1, &n.c1, g1, b1, eps, true)
		be.Conv2D(&n.c2, &n.n1, w2, nil, p2, backend.Epilogue{})
		be.BatchNormTrain(&n.n2, &n.m2, &n.v2, &n.c2, g2, b2, eps, false)
		be.Add(&n.s, &n.n2, &n.n1, true)
		be.MaxPool2D(&n.mp, &n.s, pool)
		be.GlobalAvgPool(&n.gap, &n.mp)
		flat := n.gap.Reshape(2, 24)
		be.Linear(&n.logits, flat, fc, fb)
		n.loss = be.SoftmaxCrossEntropy(&n.dlogits, &n.logits, labels, 0.1)

		be.LinearBackward(&n.dgapFlat, &n.dfc, &n.dfb, &n.dlogits, flat, fc)
		be.GlobalAvgPoolBackward(&n.dmp, &n.dgapFlat, &n.mp)
		be.MaxPool2DBackward(&n.ds, &n.dmp, &n.s, &n.mp, pool)
		be.ReLUBackward(&n.ds, &n.ds, &n.s)
		be.BatchNormBackward(&n.dn2, &n.dg2, &n.db2, &n.ds, &n.c2, &n.n2, g2, &n.m2, &n.v2, eps, false)
		be.Conv2DBackwardData(&n.dc2, &n.dn2, w2, &n.n1, p2)
		be.Conv2DBackwardWeights(&n.dw2, nil, &n.n1, &n.dn2, w2.Shape(), p2)
		// The residual branch: n1 feeds both conv2 and the Add.
		be.Add(&n.dc2, &n.dc2, &n.ds, false)
		be.BatchNormBackward(&n.dn1, &n.dg1, &n.db1, &n.dc2, &n.c1, &n.n1, g1, &n.m1, &n.v1, eps, true)
		be.Conv2DBackwardWeights(&n.dw1, nil, x, &n.dn1, w1.Shape(), p1)
	}
	var got, want net
	run(r, &want)
	run(b, &got)
	// A second step reuses everything: the only reorders left are the
	// pooled features to Plain and back, the two weight gradients to
	// Plain, and the weights into the training convolutions' layouts (the
	// second conv's forward and backward-data; the first conv's forward
	// reads the Plain image and keeps Plain weights), none between blocked
	// layouts.
	//
	// Below AVX2 (AVX, SSE4.1) oneDNN 2.6 has no blocked backward
	// convolution: backward-data and backward-weights run its gemm kernel
	// on Plain layouts, which costs two reorders more per step (the
	// second conv's dy to Plain, and its input gradient back).
	maxReorders := 7
	if !hasAVX2() {
		maxReorders = 9
	}
	before, beforeBlocked := b.reorderCount()
	var again net
	run(b, &again)
	after, afterBlocked := b.reorderCount()
	if after-before > maxReorders || afterBlocked != beforeBlocked {
		t.Errorf("second step on %s: %d reorders (%d blocked to blocked), want at most %d (0)", ISA(), after-before, afterBlocked-beforeBlocked, maxReorders)
	}
	for _, a := range []*tensor.Tensor{&got.c1, &got.n1, &got.c2, &got.n2, &got.s, &got.mp, &got.ds, &got.dn2, &got.dc2, &got.dn1} {
		if a.IsPlain() {
			t.Errorf("an activation %v is Plain: the chain should stay blocked", a)
		}
	}
	if d := abs(got.loss - want.loss); d > 1e-5 {
		t.Errorf("loss %v, ref %v", got.loss, want.loss)
	}
	for _, c := range []struct {
		name      string
		got, want *tensor.Tensor
	}{
		{"conv1", &got.c1, &want.c1}, {"bn1", &got.n1, &want.n1}, {"mean1", &got.m1, &want.m1}, {"var1", &got.v1, &want.v1},
		{"conv2", &got.c2, &want.c2}, {"bn2", &got.n2, &want.n2}, {"sum", &got.s, &want.s}, {"maxpool", &got.mp, &want.mp},
		{"gap", &got.gap, &want.gap}, {"logits", &got.logits, &want.logits}, {"dlogits", &got.dlogits, &want.dlogits},
		{"dfc", &got.dfc, &want.dfc}, {"dfb", &got.dfb, &want.dfb}, {"dmaxpool", &got.dmp, &want.dmp}, {"dsum", &got.ds, &want.ds},
		{"dbn2", &got.dn2, &want.dn2}, {"dgamma2", &got.dg2, &want.dg2}, {"dbeta2", &got.db2, &want.db2},
		{"dw2", &got.dw2, &want.dw2}, {"dconv2 input", &got.dc2, &want.dc2}, {"dbn1", &got.dn1, &want.dn1},
		{"dgamma1", &got.dg1, &want.dg1}, {"dbeta1", &got.db1, &want.db1}, {"dw1", &got.dw1, &want.dw1},
	} {
		compare(t, b, c.name, c.got, c.want)
	}
}

func TestPrimitivesAreCached(t *testing.T) {
	b, r := newBackends(t)
	c := backendtest.ConvCases[0]
	x := blocked(t, b, backendtest.Rand(1, c.XShape()...))
	w := backendtest.Rand(2, c.WShape()...)
	var y tensor.Tensor
	step := func() {
		// Inference: the reordered weights are cached (training
		// convolutions reorder them at each use).
		b.Conv2D(&y, x, w, nil, c.P, backend.Epilogue{ReLU: true, Inference: true})
		b.ReLU(&y, &y)
	}
	step()
	prims, weights := b.primCount(), b.weightCount()
	if prims == 0 || weights != 1 {
		t.Fatalf("after one step: %d primitives, %d weight copies; want some and 1", prims, weights)
	}
	for range 3 {
		step()
	}
	if n := b.primCount(); n != prims {
		t.Errorf("identical calls created primitives: %d, then %d", prims, n)
	}
	if n := b.weightCount(); n != weights {
		t.Errorf("identical calls added weight copies: %d, then %d", weights, n)
	}

	// Changing the weights through Mutable invalidates the reordered copy.
	v := w.Mutable()
	for i := range v {
		v[i] = -2 * v[i]
	}
	b.Conv2D(&y, x, w, nil, c.P, backend.Epilogue{})
	var want tensor.Tensor
	r.Conv2D(&want, plainOf(b, x), w, nil, c.P, backend.Epilogue{})
	compare(t, b, "conv after the weights changed", &y, &want)
	if n := b.weightCount(); n != weights {
		t.Errorf("re-reordering added a weight copy: %d, then %d", weights, n)
	}

	// A new thread count makes new primitives (oneDNN sizes its work split
	// by it); going back reuses the old ones.
	b.SetThreads(1)
	step()
	if n := b.primCount(); n <= prims {
		t.Errorf("1 thread: %d primitives, want more than %d", n, prims)
	}
	all := b.primCount()
	b.SetThreads(2)
	step()
	if n := b.primCount(); n != all {
		t.Errorf("back to 2 threads: %d primitives, want %d", n, all)
	}
}

func TestWeightCacheForgetsDeadTensors(t *testing.T) {
	b, _ := newBackends(t)
	c := backendtest.ConvCases[0]
	x := blocked(t, b, backendtest.Rand(1, c.XShape()...))
	var y tensor.Tensor
	for i := range 200 {
		w := backendtest.Rand(uint64(i), c.WShape()...)
		b.Conv2D(&y, x, w, nil, c.P, backend.Epilogue{})
		if i%20 == 0 {
			runtimeGC()
		}
	}
	if n := b.weightCount(); n > 100 {
		t.Errorf("%d weight copies cached for 200 dead weight tensors", n)
	}
}

func TestThreads(t *testing.T) {
	b, _ := newBackends(t)
	if n := b.ompMaxThreads(); n != 2 || b.Threads() != 2 {
		t.Errorf("New(2): omp_get_max_threads %d, Threads %d", n, b.Threads())
	}
	for _, n := range []int{1, 3, 2} {
		b.SetThreads(n)
		if got := b.ompMaxThreads(); got != n || b.Threads() != n {
			t.Errorf("SetThreads(%d): omp_get_max_threads %d, Threads %d", n, got, b.Threads())
		}
	}
	// Each backend has its own worker thread and setting.
	b2, err := New(1)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if b2.ompMaxThreads() != 1 || b.ompMaxThreads() != 2 {
		t.Errorf("two backends: %d and %d threads, want 1 and 2", b2.ompMaxThreads(), b.ompMaxThreads())
	}
	if err := backend.Catch(func() { b.SetThreads(0) }); err == nil {
		t.Error("SetThreads(0) did not fail")
	}
}

func TestRegistered(t *testing.T) {
	names := backend.Names()
	if len(names) == 0 || names[0] != "dnnl" {
		t.Fatalf("backend.Names() = %v, want dnnl first", names)
	}
	be, err := backend.New("dnnl", 2)
	if err != nil {
		t.Fatal(err)
	}
	if be.Name() != "dnnl" || be.Threads() != 2 {
		t.Errorf("backend.New: %s with %d threads", be.Name(), be.Threads())
	}
}

func TestErrors(t *testing.T) {
	b, _ := newBackends(t)
	x := backendtest.Rand(1, 2, 6, 5, 5)
	foreign := &tensor.Tensor{}
	foreign.Reset(tensor.Opaque, "someone else's", 150, 2, 6, 5, 5)
	cases := []struct {
		name, op, msg string
		f             func()
	}{
		{"groups not dividing", "dnnl.Conv2D", "groups 4", func() {
			b.Conv2D(&tensor.Tensor{}, x, backendtest.Rand(2, 8, 1, 3, 3), nil, backend.ConvParams{Groups: 4}, backend.Epilogue{})
		}},
		{"weight channels", "dnnl.Conv2D", "input channels", func() {
			b.Conv2D(&tensor.Tensor{}, x, backendtest.Rand(2, 8, 5, 3, 3), nil, backend.ConvParams{}, backend.Epilogue{})
		}},
		{"epilogue shape", "dnnl.Conv2D", "epilogue Add", func() {
			b.Conv2D(&tensor.Tensor{}, x, backendtest.Rand(2, 8, 6, 3, 3), nil, backend.ConvParams{}, backend.Epilogue{Add: x})
		}},
		{"dy shape", "dnnl.Conv2DBackwardData", "dy", func() {
			b.Conv2DBackwardData(&tensor.Tensor{}, x, backendtest.Rand(2, 8, 6, 3, 3), x, backend.ConvParams{})
		}},
		{"add shapes", "dnnl.Add", "shape", func() {
			b.Add(&tensor.Tensor{}, x, backendtest.Rand(2, 2, 6, 5, 4), false)
		}},
		{"foreign layout", "dnnl.ReLU", "another backend", func() {
			b.ReLU(&tensor.Tensor{}, foreign)
		}},
		{"bn gamma", "dnnl.BatchNormTrain", "gamma", func() {
			b.BatchNormTrain(&tensor.Tensor{}, &tensor.Tensor{}, &tensor.Tensor{}, x, tensor.New(5), tensor.New(6), 1e-5, false)
		}},
		{"pool too big", "dnnl.MaxPool2D", "too small", func() {
			b.MaxPool2D(&tensor.Tensor{}, x, backend.PoolParams{Kernel: [2]int{7, 7}})
		}},
		{"linear shapes", "dnnl.Linear", "[N, K]", func() {
			b.Linear(&tensor.Tensor{}, tensor.New(2, 3), tensor.New(4, 5), nil)
		}},
		{"label range", "dnnl.SoftmaxCrossEntropy", "label 7", func() {
			b.SoftmaxCrossEntropy(nil, tensor.New(2, 3), []int{0, 7}, 0)
		}},
		{"3-D conv input", "dnnl.Conv2D", "4-D", func() {
			b.Conv2D(&tensor.Tensor{}, tensor.New(6, 5, 5), backendtest.Rand(2, 8, 6, 3, 3), nil, backend.ConvParams{}, backend.Epilogue{})
		}},
	}
	for _, c := range cases {
		err := backend.Catch(c.f)
		var e *backend.Error
		if !errors.As(err, &e) {
			t.Errorf("%s: got %v, want a *backend.Error", c.name, err)
			continue
		}
		if e.Op != c.op || !strings.Contains(e.Error(), c.msg) || len(e.Shapes) == 0 {
			t.Errorf("%s: %v; want op %s, shapes and %q", c.name, e, c.op, c.msg)
		}
	}
	// The backend still works after failures.
	var y tensor.Tensor
	b.ReLU(&y, x)
	if fmt.Sprint(y.Shape()) != "[2 6 5 5]" {
		t.Errorf("ReLU after errors: shape %v", y.Shape())
	}
}

func TestUnsupportedRank(t *testing.T) {
	b, _ := newBackends(t)
	err := backend.Catch(func() { b.ReLU(&tensor.Tensor{}, tensor.New(1, 1, 1, 1, 1, 1)) })
	var e *backend.Error
	if !errors.As(err, &e) || e.Op != "dnnl.ReLU" || !strings.Contains(e.Error(), "rank 6") {
		t.Fatalf("rank 6 ReLU: %v", err)
	}
}

func TestStatusError(t *testing.T) {
	b, _ := newBackends(t)
	var err error
	b.s.do(func(s *state) {
		s.begin("test.status")
		err = backend.Catch(func() { s.check(statusInvalidArguments(), "dnnl_test") })
	})
	var e *backend.Error
	var se *StatusError
	if !errors.As(err, &e) || !errors.As(err, &se) || se.Text != "invalid_arguments" || e.Op != "test.status" {
		t.Fatalf("status error: %v", err)
	}
}

// TestFailureStatusIsAnError checks that a oneDNN call that fails at run
// time reaches the caller of backend.Do as an error, the status inside: a
// pooling whose output shape does not follow from its input and window,
// which oneDNN itself rejects (the Go-side checks stop it before oneDNN in
// a real MaxPool2D).
func TestFailureStatusIsAnError(t *testing.T) {
	b, _ := newBackends(t)
	x := backendtest.Rand(1, 2, 6, 5, 5)
	badPool := func(s *state) {
		s.begin("dnnl.MaxPool2D", x)
		s.maxPoolPrim(s.layout(x), []int{2, 6, 9, 9}, backend.PoolParams{Kernel: [2]int{3, 3}})
	}
	for _, route := range []struct {
		name string
		err  func() error
	}{
		// Inside Run, on the worker, as a model's forward pass runs.
		{"Do", func() error { return backend.Do(b, func() { b.s.do(badPool) }) }},
		// Handed over to the worker from another goroutine.
		{"Catch", func() error { return backend.Catch(func() { b.s.do(badPool) }) }},
	} {
		err := route.err()
		var e *backend.Error
		var se *StatusError
		if !errors.As(err, &e) || !errors.As(err, &se) {
			t.Errorf("%s: got %v, want a *backend.Error wrapping a *StatusError", route.name, err)
			continue
		}
		if e.Op != "dnnl.MaxPool2D" || se.Call != "dnnl_pooling_forward_desc_init" || se.Text != "invalid_arguments" {
			t.Errorf("%s: %v; want dnnl.MaxPool2D failing in dnnl_pooling_forward_desc_init with invalid_arguments", route.name, err)
		}
	}
	// Nothing was cached, and the backend still works.
	var y tensor.Tensor
	if err := backend.Do(b, func() { b.MaxPool2D(&y, x, backend.PoolParams{Kernel: [2]int{3, 3}}) }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(y.Shape()) != "[2 6 3 3]" {
		t.Errorf("MaxPool2D after the failure: shape %v", y.Shape())
	}
}
