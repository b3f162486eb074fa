//go:build mpi && cgo

package dist

/*
#cgo pkg-config: ompi-c
#include <stdlib.h>
#include <mpi.h>

static int resgo_init(int *provided) {
	return MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, provided);
}
static int resgo_serialized(void) { return MPI_THREAD_SERIALIZED; }
static int resgo_errors_return(void) {
	return MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}
static int resgo_rank(int *r) { return MPI_Comm_rank(MPI_COMM_WORLD, r); }
static int resgo_size(int *n) { return MPI_Comm_size(MPI_COMM_WORLD, n); }
static int resgo_iallreduce_f32(float *buf, int n, MPI_Request *req) {
	return MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, req);
}
static int resgo_iallreduce_f64(double *buf, int n, MPI_Request *req) {
	return MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, req);
}
static int resgo_ibcast_f32(float *buf, int n, int root, MPI_Request *req) {
	return MPI_Ibcast(buf, n, MPI_FLOAT, root, MPI_COMM_WORLD, req);
}
static int resgo_ibarrier(MPI_Request *req) { return MPI_Ibarrier(MPI_COMM_WORLD, req); }
static int resgo_test(MPI_Request *req, int *flag) { return MPI_Test(req, flag, MPI_STATUS_IGNORE); }
static int resgo_finalize(void) { return MPI_Finalize(); }
static void resgo_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
static void resgo_error_string(int code, char *s, int *n) { MPI_Error_string(code, s, n); }
static int resgo_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
*/
import "C"

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Built reports whether this binary was built with MPI.
const Built = true

// mpiComm is MPI_COMM_WORLD. MPI is initialized with
// MPI_THREAD_SERIALIZED: calls may come from any OS thread (goroutines
// move between them) but never two at once, which mu ensures.
// MPI_Init_thread and MPI_Finalize run on one locked OS thread, owner.
type mpiComm struct {
	mu         sync.Mutex
	rank, size int
	timeout    time.Duration
	owner      chan func() // runs functions on the thread that initialized MPI
	closed     bool
}

func openMPI(opt Options) (Comm, error) {
	c := &mpiComm{timeout: opt.Timeout, owner: make(chan func())}
	errc := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: this thread owns MPI
		var provided C.int
		if rc := C.resgo_init(&provided); rc != C.MPI_SUCCESS {
			errc <- mpiError("MPI_Init_thread", rc)
			return
		}
		if provided < C.resgo_serialized() {
			errc <- fmt.Errorf("dist: this MPI library gives thread level %d, resgo needs MPI_THREAD_SERIALIZED", int(provided))
			return
		}
		errc <- nil
		for f := range c.owner {
			f()
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	if rc := C.resgo_errors_return(); rc != C.MPI_SUCCESS {
		return nil, mpiError("MPI_Comm_set_errhandler", rc)
	}
	var r, n C.int
	if rc := C.resgo_rank(&r); rc != C.MPI_SUCCESS {
		return nil, mpiError("MPI_Comm_rank", rc)
	}
	if rc := C.resgo_size(&n); rc != C.MPI_SUCCESS {
		return nil, mpiError("MPI_Comm_size", rc)
	}
	c.rank, c.size = int(r), int(n)
	return c, nil
}

// mpiError describes an MPI return code.
func mpiError(op string, rc C.int) error {
	buf := (*C.char)(C.malloc(C.size_t(C.resgo_max_error_string())))
	defer C.free(unsafe.Pointer(buf))
	var n C.int
	C.resgo_error_string(rc, buf, &n)
	return fmt.Errorf("dist: %s: %s (MPI error %d)", op, C.GoStringN(buf, n), int(rc))
}

func (c *mpiComm) Rank() int { return c.rank }
func (c *mpiComm) Size() int { return c.size }

// request is a nonblocking MPI operation whose buffer stays pinned (MPI
// keeps its address) until it completes.
type request struct {
	c      *mpiComm
	op     string
	req    *C.MPI_Request // in C memory: MPI keeps its address
	pin    runtime.Pinner
	done   bool
	err    error
	failed bool
}

// start runs an MPI call that starts a nonblocking operation on the Go
// memory at p, pinned until the operation completes.
func (c *mpiComm) start(op string, p unsafe.Pointer, call func(*C.MPI_Request) C.int) (*request, error) {
	if c.closed {
		return nil, fmt.Errorf("dist: %s after Close", op)
	}
	r := &request{c: c, op: op}
	r.req = (*C.MPI_Request)(C.malloc(C.size_t(unsafe.Sizeof(C.MPI_Request(nil)))))
	if p != nil {
		r.pin.Pin(p)
	}
	c.mu.Lock()
	rc := call(r.req)
	c.mu.Unlock()
	if rc != C.MPI_SUCCESS {
		r.release()
		return nil, mpiError(op, rc)
	}
	return r, nil
}

// Test reports whether the operation has completed (MPI_Test).
func (r *request) Test() (bool, error) {
	if r.done || r.failed {
		return r.done, r.err
	}
	var flag C.int
	r.c.mu.Lock()
	rc := C.resgo_test(r.req, &flag)
	r.c.mu.Unlock()
	if rc != C.MPI_SUCCESS {
		r.failed, r.err = true, mpiError(r.op, rc)
		r.release()
		return false, r.err
	}
	if flag != 0 {
		r.done = true
		r.release()
	}
	return r.done, nil
}

// release unpins the buffer and frees the MPI_Request of an operation
// that MPI is done with.
func (r *request) release() {
	r.pin.Unpin()
	C.free(unsafe.Pointer(r.req))
	r.req = nil
}

// Wait polls Test until the operation completes, sleeping a little more
// between polls the longer it waits (up to 1 ms), and fails after the
// Comm's timeout. (MPI_Wait itself could block forever on a rank that
// hangs.)
func (r *request) Wait() error {
	start := time.Now()
	for i := 0; ; i++ {
		ok, err := r.Test()
		if ok || err != nil {
			return err
		}
		if time.Since(start) > r.c.timeout {
			r.failed, r.err = true, timeoutError(r.op, r.c.rank, r.c.timeout)
			// The buffer stays pinned: MPI may still write into it.
			return r.err
		}
		switch {
		case i < 64:
			runtime.Gosched()
		default:
			time.Sleep(min(time.Duration(i-63)*20*time.Microsecond, time.Millisecond))
		}
	}
}

// count checks that a buffer's length fits MPI's int count.
func count(op string, n int) (C.int, error) {
	if n > math.MaxInt32 {
		return 0, fmt.Errorf("dist: %s of %d values: more than MPI's count limit", op, n)
	}
	return C.int(n), nil
}

func (c *mpiComm) Iallreduce(buf []float32) (Request, error) {
	if len(buf) == 0 {
		return done{}, nil
	}
	n, err := count("MPI_Iallreduce", len(buf))
	if err != nil {
		return nil, err
	}
	p := unsafe.Pointer(&buf[0])
	return c.start("MPI_Iallreduce", p, func(req *C.MPI_Request) C.int {
		return C.resgo_iallreduce_f32((*C.float)(p), n, req)
	})
}

func (c *mpiComm) Allreduce(buf []float32) error {
	r, err := c.Iallreduce(buf)
	if err != nil {
		return err
	}
	return r.Wait()
}

func (c *mpiComm) AllreduceFloat64(buf []float64) error {
	if len(buf) == 0 {
		return nil
	}
	n, err := count("MPI_Iallreduce", len(buf))
	if err != nil {
		return err
	}
	p := unsafe.Pointer(&buf[0])
	r, err := c.start("MPI_Iallreduce", p, func(req *C.MPI_Request) C.int {
		return C.resgo_iallreduce_f64((*C.double)(p), n, req)
	})
	if err != nil {
		return err
	}
	return r.Wait()
}

func (c *mpiComm) Bcast(buf []float32, root int) error {
	if len(buf) == 0 {
		return nil
	}
	if root < 0 || root >= c.size {
		return fmt.Errorf("dist: MPI_Ibcast from rank %d of %d", root, c.size)
	}
	n, err := count("MPI_Ibcast", len(buf))
	if err != nil {
		return err
	}
	p := unsafe.Pointer(&buf[0])
	r, err := c.start("MPI_Ibcast", p, func(req *C.MPI_Request) C.int {
		return C.resgo_ibcast_f32((*C.float)(p), n, C.int(root), req)
	})
	if err != nil {
		return err
	}
	return r.Wait()
}

func (c *mpiComm) Barrier() error {
	r, err := c.start("MPI_Ibarrier", nil, func(req *C.MPI_Request) C.int {
		return C.resgo_ibarrier(req)
	})
	if err != nil {
		return err
	}
	return r.Wait()
}

// Close calls MPI_Finalize on the thread that initialized MPI.
func (c *mpiComm) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	errc := make(chan error)
	c.owner <- func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if rc := C.resgo_finalize(); rc != C.MPI_SUCCESS {
			errc <- mpiError("MPI_Finalize", rc)
			return
		}
		errc <- nil
	}
	return <-errc
}

// Abort calls MPI_Abort, which ends every rank of the job.
func (c *mpiComm) Abort(code int) {
	C.resgo_abort(C.int(code))
}
