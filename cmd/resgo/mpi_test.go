package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/resgo/resgo/dist"
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

// mpiData writes 4 classes of 80 random 24x24 RGB images: 320, 5 batches
// of 64. (Random pixels: flat synthetic shapes make the first
// convolution's gradient a sum that cancels down to rounding noise.)
func mpiData(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "noise")
	r := rand.New(rand.NewPCG(1, 2))
	for c := range 4 {
		sub := filepath.Join(dir, fmt.Sprint("class", c))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range 80 {
			img := image.NewRGBA(image.Rect(0, 0, 24, 24))
			for p := range img.Pix {
				img.Pix[p] = uint8(r.IntN(256))
				if p%4 == 3 {
					img.Pix[p] = 255
				}
			}
			var buf bytes.Buffer
			if err := png.Encode(&buf, img); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("%03d.png", i)), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// mpiTrainArgs are the small trainings of these tests (oneDNN, 1 thread
// per process). The learning rate is
// small: at 0.05 the first steps of a ResNet amplify float32 rounding so
// much that one process on two backends (ref, dnnl) ends 5 steps 2.5e-3
// apart; at 3e-4 they stay within 1e-6.
func mpiTrainArgs(data, out string, batch int, more ...string) []string {
	return append([]string{"train", "--data", data, "--val-split", "0", "--arch", "resnet20", "--size", "16",
		"--optimizer", "sgd", "--lr", "3e-4", "--epochs", "1", "--batch", strconv.Itoa(batch), "--seed", "1",
		"--quiet", "--out", out}, more...)
}

// relDiff returns the difference between the model tensors (parameters
// and running statistics) of two checkpoints, as one vector, relative to
// the first's norm.
func relDiff(t *testing.T, a, b string) float64 {
	t.Helper()
	sa, _, err := modelfile.Read(a)
	if err != nil {
		t.Fatal(err)
	}
	sb, _, err := modelfile.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	var d, n float64
	for _, k := range sa.Keys {
		if strings.HasPrefix(k, "optim.") || strings.HasSuffix(k, "num_batches_tracked") {
			continue
		}
		if sb.Get(k) == nil {
			t.Fatalf("%s: no %s", b, k)
		}
		va, vb := sa.Get(k).ToTensor().Values(), sb.Get(k).ToTensor().Values()
		for i := range va {
			x := float64(va[i]) - float64(vb[i])
			d += x * x
			n += float64(va[i]) * float64(va[i])
		}
	}
	return math.Sqrt(d / n)
}

// TestMPISyncBNMatchesOneProcess: 2 ranks with batch 32 and --sync-bn
// take the 5 steps of one process with batch 64: the same weights and
// running statistics within 1e-5 relative; without --sync-bn they do not.
func TestMPISyncBNMatchesOneProcess(t *testing.T) {
	bin := mpiResgo(t)
	data := mpiData(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := []string{"RESGO_BACKEND=dnnl"}
	dir := t.TempDir()
	one, two, own := filepath.Join(dir, "one"), filepath.Join(dir, "two"), filepath.Join(dir, "own")
	cmd := exec.CommandContext(ctx, bin, mpiTrainArgs(data, one, 64)...)
	cmd.Env = append(os.Environ(), "RESGO_THREADS=1", "RESGO_BACKEND=dnnl")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("one process: %v\n%s", err, out)
	}
	out, err := mpirun(ctx, bin, 2, env, mpiTrainArgs(data, two, 32, "--sync-bn")...).CombinedOutput()
	if err != nil {
		t.Fatalf("2 ranks: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "data-parallel: 2 ranks") || strings.Count(string(out), "Finished Training") != 1 {
		t.Fatalf("2 ranks: want rank 0's messages once and a data-parallel summary in\n%s", out)
	}
	if out, err := mpirun(ctx, bin, 2, env, mpiTrainArgs(data, own, 32, "--bucket-mb", "0.2")...).CombinedOutput(); err != nil {
		t.Fatalf("2 ranks without --sync-bn: %v\n%s", err, out)
	}
	last := "last.safetensors"
	sync, per := relDiff(t, filepath.Join(one, last), filepath.Join(two, last)), relDiff(t, filepath.Join(one, last), filepath.Join(own, last))
	t.Logf("relative difference to one process with batch 64: %.2g with --sync-bn, %.2g without", sync, per)
	if sync > 1e-5 {
		t.Errorf("2 ranks x 32 with --sync-bn differ from 1 x 64 by %.2g", sync)
	}
	if per < 1e-4 {
		t.Errorf("2 ranks x 32 without --sync-bn differ from 1 x 64 by only %.2g", per)
	}
	// Rank 0 alone wrote the output folder, the same files.
	for _, f := range []string{"last.safetensors", "history.csv", "class_indices.json", "curves.png"} {
		if !exists(filepath.Join(two, f)) {
			t.Errorf("2 ranks: no %s", f)
		}
	}
}

// rankPID finds the process of rank of the job whose environment holds
// mark.
func rankPID(mark string, rank int) int {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err != nil {
			continue
		}
		vars := strings.Split(string(env), "\x00")
		if slices.Contains(vars, mark) && slices.Contains(vars, "OMPI_COMM_WORLD_RANK="+strconv.Itoa(rank)) {
			return pid
		}
	}
	return 0
}

// TestMPIRankDies: a rank killed (SIGKILL) or frozen (SIGSTOP) in the
// middle of a training makes the job end with an error, not hang: mpirun
// ends the job when a rank dies, and a rank that waits longer than
// --dist-timeout for the others fails with a message saying so.
func TestMPIRankDies(t *testing.T) {
	bin := mpiResgo(t)
	data := mpiData(t)
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGSTOP} {
		t.Run(sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			mark := fmt.Sprintf("RESGO_TEST_MARK=%d-%d", os.Getpid(), sig)
			out := filepath.Join(t.TempDir(), "run")
			cmd := mpirun(ctx, bin, 2, []string{mark}, mpiTrainArgs(data, out, 32, "--epochs", "200", "--dist-timeout", "3s")...)
			var log bytes.Buffer
			cmd.Stdout, cmd.Stderr = &log, &log
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait for the training to run (class_indices.json is written
			// as it starts), then hit rank 1.
			pid := 0
			for pid == 0 || !exists(filepath.Join(out, "class_indices.json")) {
				if ctx.Err() != nil {
					t.Fatalf("the training did not start:\n%s", log.String())
				}
				time.Sleep(100 * time.Millisecond)
				pid = rankPID(mark, 1)
			}
			time.Sleep(500 * time.Millisecond)
			start := time.Now()
			if err := syscall.Kill(pid, sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			if ctx.Err() != nil {
				t.Fatalf("the job hung after %v on rank 1:\n%s", sig, log.String())
			}
			if err == nil {
				t.Fatalf("the job succeeded after %v on rank 1:\n%s", sig, log.String())
			}
			t.Logf("ended %.1f s after %v: %v", time.Since(start).Seconds(), sig, err)
			if sig == syscall.SIGSTOP && !strings.Contains(log.String(), "no answer from the other ranks") {
				t.Errorf("no timeout message from rank 0:\n%s", log.String())
			}
		})
	}
}

// TestTrainUnderMPIWithoutMPI: the default build, started by mpirun with
// several ranks, refuses to train instead of training N separate models.
func TestTrainUnderMPIWithoutMPI(t *testing.T) {
	if dist.Built {
		t.Skip("built with MPI")
	}
	t.Setenv("OMPI_COMM_WORLD_SIZE", "2")
	out := filepath.Join(t.TempDir(), "run")
	_, err := run(t, trainCmd(), trainArgs(shapesFolder(t, 2), out)...)
	if err == nil || !strings.Contains(err.Error(), "built without MPI: rebuild with -tags mpi") {
		t.Fatalf("under mpirun without MPI: %v", err)
	}
}

// TestMPIResumeExact: 2 ranks interrupted (SIGTERM to mpirun, which
// forwards it) and resumed from rank 0's checkpoint end with the weights
// and history of 2 ranks that were not interrupted.
func TestMPIResumeExact(t *testing.T) {
	bin := mpiResgo(t)
	data := mpiData(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	whole, parts := filepath.Join(dir, "whole"), filepath.Join(dir, "parts")
	args := func(out string) []string {
		return mpiTrainArgs(data, out, 32, "--epochs", "8", "--lr", "0.05")
	}
	if out, err := mpirun(ctx, bin, 2, nil, args(whole)...).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted: %v\n%s", err, out)
	}
	cmd := mpirun(ctx, bin, 2, nil, args(parts)...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt in epoch 2 or later: history.csv is written after epoch 1.
	for !exists(filepath.Join(parts, "history.csv")) {
		if ctx.Err() != nil {
			t.Fatalf("no epoch ended:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Logf("interrupted run: %v", err)
	}
	if !strings.Contains(log.String(), "interrupted:") {
		t.Fatalf("the run was not interrupted by SIGTERM:\n%s", log.String())
	}
	resume := []string{"train", "--resume", "--out", parts, "--quiet"}
	if out, err := mpirun(ctx, bin, 2, nil, resume...).CombinedOutput(); err != nil {
		t.Fatalf("--resume: %v\n%s", err, out)
	}
	if d := relDiff(t, filepath.Join(whole, "last.safetensors"), filepath.Join(parts, "last.safetensors")); d != 0 {
		t.Errorf("resumed weights differ by %.2g from the uninterrupted run's", d)
	}
	// The same losses and accuracies (the seconds differ).
	hist := func(dir string) []string {
		b, err := os.ReadFile(filepath.Join(dir, "history.csv"))
		if err != nil {
			t.Fatal(err)
		}
		var rows []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Split(line, ",")
			rows = append(rows, strings.Join(f[:6], ","))
		}
		return rows
	}
	if a, b := hist(whole), hist(parts); !slices.Equal(a, b) {
		t.Errorf("history:\n%v\nresumed:\n%v", a, b)
	}
}
