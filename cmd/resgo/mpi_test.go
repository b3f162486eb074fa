package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resgo/resgo/internal/shapes"
	"github.com/resgo/resgo/modelfile"
)

// The data-parallel tests run resgo built with -tags mpi under Open MPI's
// mpirun, 2 ranks on this machine. They skip without mpirun or mpicc
// (Debian's openmpi-bin and libopenmpi-dev), unless CI=true, where they
// must run.

var (
	mpiOnce sync.Once
	mpiBin  string
	mpiErr  error
)

// mpiResgo returns resgo built with MPI, building it once.
func mpiResgo(t *testing.T) string {
	t.Helper()
	_, errRun := exec.LookPath("mpirun")
	errPC := exec.Command("pkg-config", "--exists", "ompi-c").Run()
	if errRun != nil || errPC != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Open MPI is missing (openmpi-bin, libopenmpi-dev): mpirun: %v, pkg-config ompi-c: %v", errRun, errPC)
		}
		t.Skip("no Open MPI (openmpi-bin, libopenmpi-dev)")
	}
	mpiOnce.Do(func() {
		dir, err := os.MkdirTemp("", "resgo-mpi")
		if err != nil {
			mpiErr = err
			return
		}
		mpiBin = filepath.Join(dir, "resgo")
		out, err := exec.Command("go", "build", "-tags", "mpi", "-o", mpiBin, ".").CombinedOutput()
		if err != nil {
			mpiErr = fmt.Errorf("go build -tags mpi: %v\n%s", err, out)
		}
	})
	if mpiErr != nil {
		t.Fatal(mpiErr)
	}
	return mpiBin
}

// mpirun runs resgo args on n ranks (1 thread each) and returns its
// output. The context bounds it.
func mpirun(ctx context.Context, bin string, n int, env []string, args ...string) *exec.Cmd {
	a := []string{"--oversubscribe", "--allow-run-as-root", "-np", strconv.Itoa(n), "-x", "RESGO_THREADS=1"}
	for _, e := range env {
		a = append(a, "-x", e)
	}
	cmd := exec.CommandContext(ctx, "mpirun", append(append(a, bin), args...)...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// mpiData writes 4 classes of 80 images: 320, 5 batches of 64.
func mpiData(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "shapes")
	if err := shapes.WriteFolder(dir, []int{0, 1, 2, 3}, 80, 24, 3); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mpiTrainArgs(data, out string, batch int, more ...string) []string {
	return append([]string{"train", "--data", data, "--val-split", "0", "--arch", "resnet20", "--size", "16",
		"--optimizer", "sgd", "--lr", "0.05", "--epochs", "1", "--batch", strconv.Itoa(batch), "--seed", "1",
		"--quiet", "--out", out}, more...)
}

// TestMPISyncBNMatchesOneProcess: 2 ranks with batch 32 and --sync-bn
// take the 5 steps of one process with batch 64: the same weights and
// running statistics, within 1e-5 relative to each tensor's largest value.
func TestMPISyncBNMatchesOneProcess(t *testing.T) {
	bin := mpiResgo(t)
	data := mpiData(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	one, two := filepath.Join(t.TempDir(), "one"), filepath.Join(t.TempDir(), "two")
	cmd := exec.CommandContext(ctx, bin, mpiTrainArgs(data, one, 64)...)
	cmd.Env = append(os.Environ(), "RESGO_THREADS=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("one process: %v\n%s", err, out)
	}
	out, err := mpirun(ctx, bin, 2, nil, mpiTrainArgs(data, two, 32, "--sync-bn")...).CombinedOutput()
	if err != nil {
		t.Fatalf("2 ranks: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "data-parallel: 2 ranks") {
		t.Fatalf("2 ranks: no data-parallel summary in\n%s", out)
	}
	a, _, err := modelfile.Read(filepath.Join(one, "last.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := modelfile.Read(filepath.Join(two, "last.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	worst, at := 0.0, ""
	for _, k := range a.Keys {
		ta, tb := a.Get(k), b.Get(k)
		if tb == nil {
			t.Fatalf("%s missing from the 2-rank checkpoint", k)
		}
		va, vb := ta.ToTensor().Values(), tb.ToTensor().Values()
		scale, diff := 0.0, 0.0
		for i := range va {
			scale = max(scale, math.Abs(float64(va[i])))
			diff = max(diff, math.Abs(float64(va[i])-float64(vb[i])))
		}
		if os.Getenv("RESGO_DEBUG") != "" && diff/max(scale, 1e-12) > 1e-5 {
			t.Logf("%s: %.3g (scale %.3g)", k, diff/max(scale, 1e-12), scale)
		}
		if r := diff / max(scale, 1e-12); r > worst {
			worst, at = r, k
		}
	}
	t.Logf("largest relative difference %.2g (%s)", worst, at)
	if worst > 1e-5 {
		t.Fatalf("2 ranks x 32 differ from 1 x 64: %.2g relative in %s", worst, at)
	}
	// Rank 0 alone wrote the output folder, the same files.
	for _, f := range []string{"last.safetensors", "history.csv", "class_indices.json", "curves.png"} {
		if !exists(filepath.Join(two, f)) {
			t.Errorf("2 ranks: no %s", f)
		}
	}
}
