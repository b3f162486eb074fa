// Package dist provides data-parallel training over MPI.
//
// A Comm connects the processes (ranks) of one training that mpirun
// started: each computes the gradients of its own share of a batch, and
// the Comm sums them. The MPI implementation is a thin cgo binding over
// Open MPI's C API, built only with `go build -tags mpi` (and cgo); the
// default build has the single-process Comm only, and Open refuses a run
// under mpirun with "built without MPI: rebuild with -tags mpi".
//
// Every operation that waits for other ranks gives up after a timeout
// (Options.Timeout) with an error naming the operation, so that a rank that
// died or hangs makes the others fail with a clear message instead of
// waiting forever.
package dist

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Comm is a communicator over the ranks of a data-parallel training. Its
// collective operations must be called by every rank in the same order.
// Sums are elementwise over the ranks and replace buf on every rank.
type Comm interface {
	// Rank returns this process's rank, 0 to Size()-1.
	Rank() int
	// Size returns the number of ranks.
	Size() int
	// Allreduce replaces buf with its sum over the ranks.
	Allreduce(buf []float32) error
	// AllreduceFloat64 replaces buf with its sum over the ranks.
	AllreduceFloat64(buf []float64) error
	// Iallreduce starts summing buf over the ranks and returns at once;
	// buf must not be touched until the Request's Wait returns.
	Iallreduce(buf []float32) (Request, error)
	// Bcast replaces buf on every rank with root's.
	Bcast(buf []float32, root int) error
	// Barrier returns when every rank has called it.
	Barrier() error
	// Close ends the use of MPI (MPI_Finalize) after a successful run.
	Close() error
	// Abort ends every rank of the training at once (MPI_Abort), after an
	// error on this one, with the given exit code.
	Abort(code int)
}

// Request is a nonblocking operation under way.
type Request interface {
	// Test reports whether the operation has completed, and lets MPI
	// progress it.
	Test() (bool, error)
	// Wait returns when the operation has completed, or fails after the
	// Comm's timeout.
	Wait() error
}

// Options configure Open.
type Options struct {
	// Timeout bounds every wait for the other ranks; 0: DefaultTimeout.
	Timeout time.Duration
}

// DefaultTimeout is how long a rank waits for the others before it gives
// up: longer than any step or checkpoint write, short enough that a job
// with a dead rank ends.
const DefaultTimeout = 5 * time.Minute

// ErrNoMPI is returned by Open in a binary built without MPI when it runs
// under mpirun.
var ErrNoMPI = errors.New("built without MPI: rebuild with -tags mpi (make build-mpi) to train on several processes")

// ErrTimeout is wrapped by the error of an operation that gave up waiting
// for the other ranks.
var ErrTimeout = errors.New("no answer from the other ranks (one has probably died or hangs)")

// UnderMPI reports whether this process was started by mpirun (Open MPI
// sets OMPI_COMM_WORLD_SIZE, PMIx launchers PMIX_RANK) with more than one
// rank or as a rank of a job.
func UnderMPI() bool {
	return os.Getenv("OMPI_COMM_WORLD_SIZE") != "" || os.Getenv("PMIX_RANK") != ""
}

// Open returns the MPI communicator of all ranks when the process runs
// under mpirun, and Local() otherwise. Without MPI built in, it fails with
// ErrNoMPI under mpirun (unless the job has a single rank).
func Open(opt Options) (Comm, error) {
	if !UnderMPI() {
		return Local(), nil
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	return openMPI(opt)
}

// Local returns the communicator of a single process: rank 0 of 1, whose
// sums leave their buffers as they are.
func Local() Comm { return local{} }

type local struct{}

func (local) Rank() int                             { return 0 }
func (local) Size() int                             { return 1 }
func (local) Allreduce([]float32) error             { return nil }
func (local) AllreduceFloat64([]float64) error      { return nil }
func (local) Iallreduce([]float32) (Request, error) { return done{}, nil }
func (local) Bcast([]float32, int) error            { return nil }
func (local) Barrier() error                        { return nil }
func (local) Close() error                          { return nil }
func (local) Abort(code int)                        { os.Exit(code) }

type done struct{}

func (done) Test() (bool, error) { return true, nil }
func (done) Wait() error         { return nil }

// worldSize returns the job's size from Open MPI's environment, or 0.
func worldSize() int {
	n, _ := strconv.Atoi(os.Getenv("OMPI_COMM_WORLD_SIZE"))
	return n
}

// timeoutError is the error of op after waiting d for the other ranks.
func timeoutError(op string, rank int, d time.Duration) error {
	return fmt.Errorf("dist: rank %d: %s: %w after %v", rank, op, ErrTimeout, d)
}
