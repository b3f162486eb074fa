package dist_test

import (
	"fmt"

	"github.com/resgo/resgo/dist"
)

// Each rank of an MPI job (mpirun -np N) sums its gradients with the
// others'; without mpirun, Open gives the single process, whose sums are
// its own values.
func ExampleOpen() {
	c, err := dist.Open(dist.Options{})
	if err != nil {
		fmt.Println(err) // under mpirun in a build without -tags mpi
		return
	}
	defer c.Close()
	grad := []float32{0.5, -1, 2}
	if err := c.Allreduce(grad); err != nil {
		fmt.Println(err)
		return
	}
	for i := range grad {
		grad[i] /= float32(c.Size()) // the average over the ranks
	}
	fmt.Printf("rank %d of %d: %v\n", c.Rank(), c.Size(), grad)
	// Output: rank 0 of 1: [0.5 -1 2]
}
