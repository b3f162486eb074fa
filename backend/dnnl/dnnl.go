//go:build cgo

// Package dnnl is resgo's oneDNN backend: backend.Backend implemented on
// oneDNN 2.x (libdnnl) through its C API.
//
// Activations written by this backend are kept in the layout oneDNN prefers
// for the machine (nChw16c with AVX-512), as tensor.Opaque tensors whose
// Desc is the oneDNN memory descriptor; ToPlain converts them. Every
// operation also accepts Plain inputs, and parameters and their gradients
// are Plain as the backend contract requires.
//
// Design, in short:
//   - Threads. This oneDNN build runs its kernels on OpenMP (libgomp), and an
//     OpenMP thread team belongs to the OS thread that starts a parallel
//     region. Go moves goroutines between OS threads, so every oneDNN call of
//     a Backend runs on one goroutine locked to its OS thread (the worker);
//     the public methods send it a closure and wait. That thread's OpenMP
//     thread count is the backend's Threads.
//   - Caching. Primitives are created once per operation, shapes, layouts,
//     parameters and thread count, and kept. Weights reordered into a blocked
//     layout are kept per weight tensor and redone only when the tensor's
//     Version changes. All primitives share one user-mode scratchpad.
//   - Memory. Tensor storage is Go memory. The C side wraps it in oneDNN
//     memory objects, executes and destroys them within one cgo call, so C
//     never holds a Go pointer after a call returns.
//
// Costs and settings worth knowing (the benchmarks of bench_test.go
// measure them on a given machine):
//   - A call from another goroutine pays for the trip to the worker thread,
//     waking that thread and back: BenchmarkOverhead measures it next to
//     the other fixed costs of a call. Run executes a whole forward pass or
//     training step on the worker, where the operations run directly; the
//     model code, prediction and training use it (through backend.Do).
//   - After each parallel region libgomp keeps its threads spinning for a
//     while (GOMP_SPINCOUNT) before they sleep. Small operations called
//     one by one from other goroutines then vary widely in time, steadier
//     with OMP_WAIT_POLICY=passive; but inside Run, where the operations
//     follow each other on the worker, the spinning pays, even beside a
//     busy data loader: compare BenchmarkBlock (whose go_work variants run
//     a CPU-bound goroutine alongside) or `resgo bench --mode train` with
//     and without OMP_WAIT_POLICY=passive. libgomp reads the variable when
//     it loads, so it can only be set in the process's environment.
//   - Failures: a oneDNN call that does not succeed panics with a
//     *backend.Error wrapping a *StatusError, on the worker, and the panic
//     is re-raised in the caller, so that backend.Do returns it as an error
//     (see package backend).
//
// The package registers itself as backend "dnnl" with a higher priority
// than "ref", so backend.Default picks it when it is built in.
package dnnl

/*
#cgo LDFLAGS: -ldnnl -lgomp
#include "rg.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"weak"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/tensor"
)

func init() {
	backend.Register("dnnl", 10, func(threads int) (backend.Backend, error) {
		b, err := New(threads)
		if err != nil {
			return nil, err
		}
		return b, nil
	})
}

// Backend is the oneDNN backend. Its methods may be called from any
// goroutine; they run one at a time on the backend's worker thread.
type Backend struct {
	s *state
}

// New returns a oneDNN backend whose kernels use threads OpenMP threads
// (threads < 1 means backend.DefaultThreads()). It fails if oneDNN cannot
// create its CPU engine.
func New(threads int) (*Backend, error) {
	auto := threads < 1 && backend.AutoThreads()
	if threads < 1 {
		threads = backend.DefaultThreads()
	}
	convAlgo, err := convAlgoFromEnv()
	if err != nil {
		return nil, err
	}
	s := &state{
		convAlgo: convAlgo,
		cache:    tuneCache{path: tuneCachePath()},
		work:     make(chan func(*state)),
		done:     make(chan any),
		threads:  threads,
		prims:    map[opKey]*prim{},
		weights:  map[weightKey]*weightCopy{},
	}
	s.nthreads.Store(int64(threads))
	started := make(chan error)
	go s.run(started)
	if err := <-started; err != nil {
		return nil, err
	}
	b := &Backend{s: s}
	if auto {
		s.quit = make(chan struct{})
		go s.govern(s.quit, readCPUTimes, governInterval)
	}
	// The worker goroutine references only s, so b can become unreachable;
	// then the worker stops and frees its oneDNN objects.
	runtime.AddCleanup(b, func(s *state) { s.stop() }, s)
	return b, nil
}

// Close stops the backend's worker and frees its oneDNN objects. The
// backend must not be used afterwards. Calling Close is optional: a Backend
// that becomes unreachable is closed by the garbage collector.
func (b *Backend) Close() { b.s.stop() }

// Name returns "dnnl".
func (b *Backend) Name() string { return "dnnl" }

// SetThreads sets the number of OpenMP threads the kernels use (n >= 1).
func (b *Backend) SetThreads(n int) {
	if n < 1 {
		backend.Fail("dnnl.SetThreads", fmt.Sprintf("thread count %d must be at least 1", n))
	}
	b.s.stopGovernor() // an explicit choice ends RESGO_THREADS=auto
	b.s.do(func(s *state) { s.applyThreads(n) })
}

// applyThreads sets the OpenMP team size; it runs on the worker.
func (s *state) applyThreads(n int) {
	s.threads = n
	C.omp_set_num_threads(C.int(n))
	s.nthreads.Store(int64(n))
}

// stopGovernor ends the thread governor, if one runs.
func (s *state) stopGovernor() {
	s.quitOnce.Do(func() {
		if s.quit != nil {
			close(s.quit)
		}
	})
}

// Run runs f on the backend's worker thread, so that the operations f
// calls execute there directly instead of each being handed over to the
// worker (see BenchmarkOverhead for what a hand-over costs). A training
// step or a forward pass runs inside one Run, through backend.Do. A panic
// in f is re-raised in the caller. Operations called from other goroutines
// while f runs wait for it to finish.
func (b *Backend) Run(f func()) { b.s.do(func(*state) { f() }) }

// Threads returns the number of OpenMP threads the kernels use.
func (b *Backend) Threads() int { return int(b.s.nthreads.Load()) }

// ompMaxThreads returns omp_get_max_threads() as seen on the worker thread:
// the team size oneDNN's parallel regions get.
func (b *Backend) ompMaxThreads() int {
	var n int
	b.s.do(func(s *state) { n = int(C.omp_get_max_threads()) })
	return n
}

// state is everything the worker goroutine owns. Apart from the channels,
// its fields are only touched on the worker.
type state struct {
	mu      sync.Mutex // serializes callers: one request in flight
	work    chan func(*state)
	done    chan any // nil, or the value the request panicked with
	stopped bool     // under mu

	nthreads atomic.Int64 // threads, readable from any goroutine

	quit     chan struct{} // closed to end the thread governor (nil: none)
	quitOnce sync.Once

	ctx     *C.rg_ctx
	threads int
	tid     int // the worker's OS thread id

	prims   map[opKey]*prim
	weights map[weightKey]*weightCopy
	sweepAt int // weights size at which dead entries are next swept

	tmp [numTmp][]float32 // scratch tensors, see tmpBuf

	// Reorders run so far, and those between two blocked layouts: tests
	// check that activations flow between layers without conversions.
	reorders, blockedReorders int

	convAlgo string       // RESGO_CONV: ConvDirect, ConvAuto or ConvWinograd
	tuned    []ConvChoice // the autotuner's decisions, in order
	cache    tuneCache    // and those of earlier processes (RESGO_CONV=auto)

	// op and operands name the operation in progress for error messages.
	op       string
	operands [8]*tensor.Tensor
	nops     int
}

// run is the worker: it locks itself to an OS thread, creates the oneDNN
// engine and stream there and executes requests until stop.
func (s *state) run(started chan<- error) {
	runtime.LockOSThread()
	s.tid = syscall.Gettid()
	// OpenMP's thread-count setting is per OS thread: set it here, where
	// every oneDNN primitive will be created and executed.
	C.omp_set_num_threads(C.int(s.threads))
	if st := C.rg_ctx_new(&s.ctx); st != C.dnnl_success {
		started <- fmt.Errorf("dnnl: creating the CPU engine: %w", statusError("dnnl_engine_create", st))
		return
	}
	started <- nil
	for f := range s.work {
		s.done <- s.serve(f)
	}
	s.free()
	// The thread stays locked: it ends with the goroutine, taking its OpenMP
	// state along.
}

// serve runs one request and returns the value it panicked with, if any.
func (s *state) serve(f func(*state)) (r any) {
	defer func() {
		r = recover()
		s.op, s.nops = "", 0
		clear(s.operands[:])
	}()
	f(s)
	return nil
}

// do runs f on the worker and waits for it. A panic in f is re-raised in
// the caller, so a *backend.Error reaches backend.Do. Called on the
// worker thread itself (inside Run), it runs f directly.
func (s *state) do(f func(*state)) {
	if syscall.Gettid() == s.tid {
		defer func() {
			s.op, s.nops = "", 0
			clear(s.operands[:])
		}()
		f(s)
		return
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		panic(&backend.Error{Op: "dnnl", Msg: "backend used after Close"})
	}
	s.work <- f
	r := <-s.done
	s.mu.Unlock()
	if r != nil {
		panic(r)
	}
}

// stop ends the worker; it is idempotent.
func (s *state) stop() {
	s.stopGovernor()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.stopped = true
		close(s.work)
	}
}

// free releases the oneDNN objects; it runs on the worker as it exits.
func (s *state) free() {
	for _, p := range s.prims {
		C.rg_op_free(p.op)
	}
	clear(s.prims)
	clear(s.weights)
	C.rg_ctx_free(s.ctx)
	s.ctx = nil
}

// begin records the operation in progress and its operands, for errors.
func (s *state) begin(op string, ts ...*tensor.Tensor) {
	s.op = op
	s.nops = copy(s.operands[:], ts)
}

// fail panics with a *backend.Error naming the current operation and the
// shapes of its operands.
func (s *state) fail(msg string, err error) {
	e := &backend.Error{Op: s.op, Msg: msg, Err: err}
	for _, t := range s.operands[:s.nops] {
		if t == nil {
			e.Shapes = append(e.Shapes, nil)
			continue
		}
		e.Shapes = append(e.Shapes, append([]int(nil), t.Shape()...))
	}
	panic(e)
}

// check fails the current operation if a oneDNN call did not succeed.
func (s *state) check(st C.dnnl_status_t, call string) {
	if st != C.dnnl_success {
		s.fail("oneDNN call failed", statusError(call, st))
	}
}

// StatusError is a oneDNN call that returned a status other than success.
type StatusError struct {
	Call   string // the C function, such as "dnnl_primitive_desc_create"
	Status int    // the dnnl_status_t value
	Text   string // oneDNN's name for the status, such as "unimplemented"
}

// Error returns the call and the status.
func (e *StatusError) Error() string {
	return fmt.Sprintf("%s returned %s (status %d)", e.Call, e.Text, e.Status)
}

func statusError(call string, st C.dnnl_status_t) error {
	return &StatusError{Call: call, Status: int(st), Text: C.GoString(C.dnnl_status2str(st))}
}

// weightKey identifies a reordered copy of a weight tensor. The weak
// pointer keeps the cache from holding dead tensors alive; entries whose
// tensor is gone are swept as the map grows.
type weightKey struct {
	w  weak.Pointer[tensor.Tensor]
	md *memDesc
}

// weightCopy is a weight tensor reordered into a primitive's layout, valid
// while the tensor's Version is version.
type weightCopy struct {
	version uint64
	data    []float32
}

// toPlain implements Backend.ToPlain.
func (s *state) toPlain(dst, src *tensor.Tensor) {
	s.begin("dnnl.ToPlain", dst, src)
	if dst == nil || src == nil {
		s.fail("dst and src must not be nil", nil)
	}
	have := s.layout(src)
	shape := append([]int(nil), src.Shape()...)
	want := s.plain(shape)
	if dst == src {
		if !src.IsPlain() {
			tmp := s.input(src, want, 0)
			s.setOut(dst, want, shape)
			copy(dst.Storage(), tmp)
		}
		return
	}
	s.setOut(dst, want, shape)
	s.reorder(dst.Storage(), want, src.Storage(), have)
}
