// Package ref is resgo's reference backend: every operation of
// backend.Backend written out in plain Go, forward and backward, with the
// math in a comment next to the loops that compute it.
//
// It is the oracle the other backends are tested against, so it favours
// clarity and accuracy: reductions (batch-norm statistics, bias gradients,
// pooling averages, softmax) accumulate in float64. It is still fast enough
// to train and run whole ResNets in tests: convolutions are lowered to
// matrix products (im2col) computed by a cache-blocked GEMM (gemm.go) and
// spread over Threads() goroutines.
//
// ref reads and writes Plain tensors only. Handing it a tensor in another
// backend's Opaque layout is a caller error and panics with a
// *backend.Error; convert with that backend's ToPlain first.
//
// Importing the package registers it under the name "ref".
package ref

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/tensor"
)

func init() {
	backend.Register("ref", 0, func(threads int) (backend.Backend, error) {
		return New(threads), nil
	})
}

// Backend is the reference backend. Its operations may run concurrently as
// long as they do not share destination tensors; SetThreads must not run
// concurrently with them.
type Backend struct {
	threads int
}

var _ backend.Backend = (*Backend)(nil)

// New returns a reference backend using threads goroutines for its kernels
// (threads <= 0 means backend.DefaultThreads()).
func New(threads int) *Backend {
	if threads <= 0 {
		threads = backend.DefaultThreads()
	}
	return &Backend{threads: threads}
}

// Name returns "ref".
func (b *Backend) Name() string { return "ref" }

// Describe returns "pure Go": the reference backend runs the same code on
// every CPU.
func (b *Backend) Describe() string { return "pure Go, " + runtime.GOARCH }

// SetThreads sets how many goroutines the kernels use (values below 1 mean 1).
func (b *Backend) SetThreads(n int) { b.threads = max(n, 1) }

// Threads returns how many goroutines the kernels use.
func (b *Backend) Threads() int { return b.threads }

// ToPlain copies src into dst. ref only ever writes Plain tensors, so src
// must be Plain; an Opaque src belongs to another backend and panics.
func (b *Backend) ToPlain(dst, src *tensor.Tensor) {
	const op = "ref.ToPlain"
	mustPlain(op, src)
	if dst == nil {
		backend.Fail(op, "nil destination", src)
	}
	if dst == src {
		return
	}
	reset(dst, src.Shape()...)
	copy(dst.Storage(), src.Values())
}

// ---- validation helpers ----

// mustPlain fails op if any of ts is nil or not Plain.
func mustPlain(op string, ts ...*tensor.Tensor) {
	for _, t := range ts {
		if t == nil {
			backend.Fail(op, "missing (nil) operand", ts...)
		}
		if !t.IsPlain() {
			backend.Fail(op, fmt.Sprintf("operand %v is in another backend's %s layout; the ref backend reads plain tensors only (convert with that backend's ToPlain)", t.Shape(), t.Layout()), ts...)
		}
	}
}

// mustRank fails op unless t has the given rank.
func mustRank(op string, t *tensor.Tensor, rank int, what string, all ...*tensor.Tensor) {
	if t.Rank() != rank {
		backend.Fail(op, fmt.Sprintf("%s %v must be %d-D", what, t.Shape(), rank), all...)
	}
}

// mustShape fails op unless t has exactly the given shape.
func mustShape(op string, t *tensor.Tensor, shape []int, what string, all ...*tensor.Tensor) {
	if !tensor.SameShape(t.Shape(), shape) {
		backend.Fail(op, fmt.Sprintf("%s has shape %v, want %v", what, t.Shape(), shape), all...)
	}
}

// mustDst fails op if the destination is nil.
func mustDst(op string, dst *tensor.Tensor, what string, all ...*tensor.Tensor) {
	if dst == nil {
		backend.Fail(op, "nil destination "+what, all...)
	}
}

// reset gives a destination the Plain layout and shape, reusing its storage.
// The shape is copied first, in case it is the destination's own.
func reset(dst *tensor.Tensor, shape ...int) {
	shape = append([]int(nil), shape...)
	dst.Reset(tensor.Plain, nil, tensor.Numel(shape), shape...)
}

// ---- parallel helper ----

// parallel splits [0, n) into up to threads contiguous ranges and calls
// f(lo, hi) for each on its own goroutine, returning when all are done.
func parallel(n, threads int, f func(lo, hi int)) {
	threads = min(threads, n)
	if threads <= 1 {
		if n > 0 {
			f(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for t := range threads {
		lo, hi := n*t/threads, n*(t+1)/threads
		wg.Go(func() { f(lo, hi) })
	}
	wg.Wait()
}
