package dist_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/dist"
)

// needMPI skips the test without Open MPI (openmpi-bin, libopenmpi-dev),
// unless CI=true, where it must run.
func needMPI(t *testing.T) {
	t.Helper()
	if os.Getenv("CGO_ENABLED") == "0" {
		t.Skip("CGO_ENABLED=0: MPI needs cgo; the MPI tests run in the cgo pass of make test")
	}
	_, errRun := exec.LookPath("mpirun")
	errPC := exec.Command("pkg-config", "--exists", "ompi-c").Run()
	if errRun != nil || errPC != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Open MPI is missing (openmpi-bin, libopenmpi-dev): mpirun: %v, pkg-config ompi-c: %v", errRun, errPC)
		}
		t.Skip("no Open MPI (openmpi-bin, libopenmpi-dev)")
	}
}

// TestMPI builds this package's tests with MPI and runs TestRanks on 2
// ranks under mpirun.
func TestMPI(t *testing.T) {
	needMPI(t)
	bin := filepath.Join(t.TempDir(), "dist.test")
	if out, err := exec.Command("go", "test", "-c", "-tags", "mpi", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go test -c -tags mpi: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mpirun", "--oversubscribe", "--allow-run-as-root", "-np", "2", "-x", "RESGO_MPI_RANKS=2",
		bin, "-test.run", "^TestRanks$", "-test.v")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mpirun: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// TestRanks runs on each rank of TestMPI's job (and is skipped
// otherwise): the collectives give the known sums, and the ranks' shards
// of an epoch are disjoint and cover the data set.
func TestRanks(t *testing.T) {
	if os.Getenv("RESGO_MPI_RANKS") == "" {
		t.Skip("runs under mpirun, started by TestMPI")
	}
	if !dist.Built {
		t.Fatal("built without MPI")
	}
	c, err := dist.Open(dist.Options{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r, n := c.Rank(), c.Size()
	if n != 2 {
		t.Fatalf("rank %d: %d ranks, want 2", r, n)
	}
	// (b) rank r contributes (r+1) * (1, 2, ..., 1000).
	buf := make([]float32, 1000)
	for i := range buf {
		buf[i] = float32((r + 1) * (i + 1))
	}
	if err := c.Allreduce(buf); err != nil {
		t.Fatal(err)
	}
	for i, v := range buf {
		if want := float32(3 * (i + 1)); v != want {
			t.Fatalf("rank %d: allreduce[%d] = %v, want %v", r, i, v, want)
		}
	}
	req, err := c.Iallreduce(buf[:3])
	if err != nil {
		t.Fatal(err)
	}
	if err := req.Wait(); err != nil {
		t.Fatal(err)
	}
	if buf[0] != 6 || buf[2] != 18 {
		t.Fatalf("rank %d: iallreduce gives %v, want [6 12 18]", r, buf[:3])
	}
	f64 := []float64{0.25 * float64(r+1), 1e300}
	if err := c.AllreduceFloat64(f64); err != nil {
		t.Fatal(err)
	}
	if f64[0] != 0.75 || f64[1] != 2e300 {
		t.Fatalf("rank %d: allreduce of float64 gives %v", r, f64)
	}
	b := []float32{float32(r), float32(r)}
	if err := c.Bcast(b, 1); err != nil {
		t.Fatal(err)
	}
	if b[0] != 1 || b[1] != 1 {
		t.Fatalf("rank %d: broadcast from rank 1 gives %v", r, b)
	}
	// (c) each sample of 1000 counted once over the shards, each epoch.
	for epoch := range 3 {
		s, err := data.NewDistributedSampler(1000, n, r, true, 7)
		if err != nil {
			t.Fatal(err)
		}
		count := make([]float32, 1000)
		idx := s.Indices(epoch)
		if len(idx) != 500 {
			t.Fatalf("rank %d: a shard of %d samples, want 500", r, len(idx))
		}
		for _, i := range idx {
			count[i]++
		}
		if err := c.Allreduce(count); err != nil {
			t.Fatal(err)
		}
		for i, k := range count {
			if k != 1 {
				t.Fatalf("epoch %d: sample %d is in %v shards", epoch, i, k)
			}
		}
	}
	if err := c.Barrier(); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("rank %d of %d: collectives and shards checked\n", r, n)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// Without mpirun, Open gives the single process.
func TestOpenLocal(t *testing.T) {
	if dist.UnderMPI() {
		t.Skip("under mpirun")
	}
	c, err := dist.Open(dist.Options{})
	if err != nil {
		t.Fatal(err)
	}
	buf := []float32{1, 2}
	if err := c.Allreduce(buf); err != nil || c.Rank() != 0 || c.Size() != 1 || buf[1] != 2 {
		t.Fatalf("rank %d of %d, allreduce %v, %v", c.Rank(), c.Size(), buf, err)
	}
}
