//go:build cgo

package dnnl

import (
	"math"
	"runtime"
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/backend/backendtest"
	"github.com/resgo/resgo/backend/ref"
	"github.com/resgo/resgo/tensor"
)

// tol is the agreement required with backend/ref (backendtest.RelErr).
const tol = 1e-4

// newBackends returns a dnnl backend and the ref oracle.
func newBackends(t testing.TB) (*Backend, *ref.Backend) {
	t.Helper()
	b, err := New(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, ref.New(2)
}

// blocked returns a copy of the Plain 4-D tensor x in oneDNN's blocked
// nChw16c layout, as this backend's own ops write activations.
func blocked(t testing.TB, b *Backend, x *tensor.Tensor) *tensor.Tensor {
	t.Helper()
	out := b.blockedCopy(x)
	if out.IsPlain() {
		t.Fatalf("blocked copy of %v is plain", x)
	}
	return out
}

// dirty returns a destination whose storage is over-sized and full of NaN,
// so that an unwritten element or an unzeroed padding shows.
func dirty(n int) *tensor.Tensor {
	t := tensor.New(n + 37)
	t.Fill(float32(math.NaN()))
	return t
}

// plainOf returns t's values converted to Plain by b.
func plainOf(b backend.Backend, t *tensor.Tensor) *tensor.Tensor {
	var p tensor.Tensor
	b.ToPlain(&p, t)
	return &p
}

// compare fails the test if got (written by b) differs from want.
func compare(t testing.TB, b backend.Backend, what string, got, want *tensor.Tensor) {
	t.Helper()
	if err := backendtest.Compare(b, what, got, want, tol); err != nil {
		t.Error(err)
	}
}

// variants are the input layouts every op is tried on.
var variants = []string{"plain", "blocked", "blocked8"}

// as returns x in the named layout.
func as(t testing.TB, b *Backend, layout string, x *tensor.Tensor) *tensor.Tensor {
	if layout == "blocked" && x.Rank() == 4 {
		return blocked(t, b, x)
	}
	if layout == "blocked8" && x.Rank() == 4 {
		out := b.blocked8Copy(x)
		if out.IsPlain() {
			t.Fatalf("blocked copy of %v is plain", x)
		}
		return out
	}
	return x
}

// primCount returns the number of cached primitives.
func (b *Backend) primCount() int {
	var n int
	b.s.do(func(s *state) { n = len(s.prims) })
	return n
}

// weightCount returns the number of cached weight copies.
func (b *Backend) weightCount() int {
	var n int
	b.s.do(func(s *state) { n = len(s.weights) })
	return n
}

func runtimeGC() { runtime.GC() }

// reorderCount returns the number of reorders run, all and blocked to
// blocked.
func (b *Backend) reorderCount() (all, blocked int) {
	b.s.do(func(s *state) { all, blocked = s.reorders, s.blockedReorders })
	return
}
