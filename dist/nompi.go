//go:build !(mpi && cgo)

package dist

// openMPI fails: this binary has no MPI. A job of one rank runs as a
// single process.
func openMPI(Options) (Comm, error) {
	if worldSize() == 1 {
		return Local(), nil
	}
	return nil, ErrNoMPI
}

// Built reports whether this binary was built with MPI.
const Built = false
