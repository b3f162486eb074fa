//go:build cgo

package dnnl

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestThreadsFor(t *testing.T) {
	for _, c := range []struct {
		ncpu   int
		others float64
		want   int
	}{
		{2, 0, 2}, {2, 0.3, 2}, {2, 0.6, 1}, {2, 1, 1}, {2, 2, 1}, {2, 5, 1},
		{8, 0, 8}, {8, 2.4, 6}, {8, 2.6, 5}, {1, 0, 1}, {1, 1, 1},
	} {
		if got := threadsFor(c.ncpu, c.others); got != c.want {
			t.Errorf("threadsFor(%d, %g) = %d, want %d", c.ncpu, c.others, got, c.want)
		}
	}
}

func TestOthersCPUs(t *testing.T) {
	a := cpuTimes{busy: 1000, own: 400}
	// Over 1 s (100 ticks a CPU): 250 busy ticks, 150 of them ours.
	b := cpuTimes{busy: 1250, own: 550}
	if got := othersCPUs(a, b, time.Second); got != 1 {
		t.Errorf("othersCPUs = %g, want 1", got)
	}
	if got := othersCPUs(b, a, time.Second); got != 0 {
		t.Errorf("othersCPUs of a reading going backwards = %g, want 0", got)
	}
}

func TestReadCPUTimes(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	a, err := readCPUTimes()
	if err != nil {
		t.Fatal(err)
	}
	// Burn some CPU in this process: its own time must grow, and the
	// machine's busy time with it.
	end := time.Now().Add(300 * time.Millisecond)
	for x := 0; time.Now().Before(end); x++ {
	}
	b, err := readCPUTimes()
	if err != nil {
		t.Fatal(err)
	}
	if b.own <= a.own || b.busy-a.busy+2 < b.own-a.own { // 2 ticks: the two files are read at slightly different times
		t.Errorf("readings %+v then %+v: own and busy time should both grow", a, b)
	}
}

// TestGovernorFollowsNeighbours feeds the governor readings in which
// another process takes one CPU, then none, and checks the backend's team
// shrinks to the CPUs left and grows back.
func TestGovernorFollowsNeighbours(t *testing.T) {
	ncpu := runtime.NumCPU()
	if ncpu < 2 {
		t.Skip("needs 2 CPUs")
	}
	b, err := New(ncpu)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const interval = 20 * time.Millisecond
	var mu sync.Mutex
	others := 0.0 // CPUs a neighbour keeps busy
	var busy, own float64
	last := time.Now()
	// read makes up the readings of a machine whose every CPU is busy:
	// the neighbour's share is others, this process has the rest.
	read := func() (cpuTimes, error) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		ticks := 100 * now.Sub(last).Seconds()
		last = now
		busy += float64(ncpu) * ticks
		own += (float64(ncpu) - others) * ticks
		return cpuTimes{busy: uint64(busy), own: uint64(own)}, nil
	}
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() { b.s.govern(quit, read, interval); close(done) }()
	waitFor := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for b.Threads() != want {
			if time.Now().After(deadline) {
				t.Fatalf("threads %d, want %d", b.Threads(), want)
			}
			time.Sleep(interval)
		}
	}
	mu.Lock()
	others = 1
	mu.Unlock()
	waitFor(ncpu - 1)
	if got := b.ompMaxThreads(); got != ncpu-1 {
		t.Errorf("OpenMP team of %d, want %d", got, ncpu-1)
	}
	mu.Lock()
	others = 0
	mu.Unlock()
	waitFor(ncpu)
	close(quit)
	<-done
}

// TestSetThreadsEndsGovernor checks that an explicit thread count ends
// RESGO_THREADS=auto.
func TestSetThreadsEndsGovernor(t *testing.T) {
	t.Setenv("RESGO_THREADS", "auto")
	b, err := New(0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.s.quit == nil {
		t.Fatal("RESGO_THREADS=auto started no governor")
	}
	b.SetThreads(1)
	select {
	case <-b.s.quit:
	default:
		t.Error("SetThreads left the governor running")
	}
	if b.Threads() != 1 {
		t.Errorf("threads %d after SetThreads(1)", b.Threads())
	}
}
