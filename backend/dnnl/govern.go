//go:build cgo

package dnnl

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

// The thread governor (RESGO_THREADS=auto).
//
// oneDNN's kernels run on an OpenMP team whose threads meet at a barrier
// after every parallel region. When another process keeps one of the CPUs
// busy, one team thread at a time is descheduled, and every barrier waits
// for it: on 2 CPUs with one busy neighbour, a resnet18 training step takes
// longer with 2 threads than with 1 (README, "Sharing the CPUs", has the
// numbers and the commands). The governor watches how much CPU time other
// processes take and gives the team the CPUs they leave free.

// governInterval is how often the governor samples the CPU usage; a change
// of thread count needs two samples in a row that agree.
const governInterval = 500 * time.Millisecond

// cpuTimes is one reading of the machine's and this process's CPU time, in
// clock ticks.
type cpuTimes struct {
	busy uint64 // all CPUs: user, nice, system, irq, softirq and steal time
	own  uint64 // this process: user and system time
}

// readCPUTimes reads /proc/stat and /proc/self/stat.
func readCPUTimes() (cpuTimes, error) {
	var t cpuTimes
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return t, err
	}
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return t, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	// user nice system idle iowait irq softirq steal
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseUint(string(f[i]), 10, 64)
		if err != nil {
			return t, fmt.Errorf("/proc/stat: %w", err)
		}
		t.busy += v
	}
	self, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return t, err
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// the last ')'. utime and stime are fields 14 and 15 (11 and 12 after it).
	i := bytes.LastIndexByte(self, ')')
	if i < 0 {
		return t, fmt.Errorf("/proc/self/stat: no ')'")
	}
	g := bytes.Fields(self[i+1:])
	if len(g) < 13 {
		return t, fmt.Errorf("/proc/self/stat: %d fields after the name", len(g))
	}
	for _, j := range []int{11, 12} {
		v, err := strconv.ParseUint(string(g[j]), 10, 64)
		if err != nil {
			return t, fmt.Errorf("/proc/self/stat: %w", err)
		}
		t.own += v
	}
	return t, nil
}

// othersCPUs returns how many CPUs other processes kept busy between two
// readings taken elapsed apart (ticks at 100 per second, as Linux reports
// them to user space).
func othersCPUs(a, b cpuTimes, elapsed time.Duration) float64 {
	if b.busy < a.busy || b.own < a.own || elapsed <= 0 {
		return 0
	}
	others := float64(b.busy-a.busy) - float64(b.own-a.own)
	return max(others, 0) / 100 / elapsed.Seconds()
}

// threadsFor returns the team size for ncpu CPUs of which other processes
// keep others busy: the CPUs they leave, rounded to the nearest, at least 1.
func threadsFor(ncpu int, others float64) int {
	n := ncpu - int(others+0.5)
	return min(max(n, 1), ncpu)
}

// govern adjusts s's thread count to the CPUs other processes leave free,
// until quit is closed. read is readCPUTimes outside tests.
func (s *state) govern(quit <-chan struct{}, read func() (cpuTimes, error), interval time.Duration) {
	ncpu := runtime.NumCPU()
	last, err := read()
	if err != nil {
		return // not Linux, or /proc hidden: keep the thread count
	}
	lastAt := time.Now()
	pending := 0
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-quit:
			return
		case <-tick.C:
		}
		now, err := read()
		if err != nil {
			return
		}
		at := time.Now()
		want := threadsFor(ncpu, othersCPUs(last, now, at.Sub(lastAt)))
		last, lastAt = now, at
		if want == int(s.nthreads.Load()) {
			pending = 0
			continue
		}
		if want != pending {
			pending = want // a change must be seen twice in a row
			continue
		}
		pending = 0
		if !s.setThreads(want) {
			return
		}
	}
}

// setThreads changes the team size on the worker; it reports false once the
// backend has stopped.
func (s *state) setThreads(n int) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	s.do(func(s *state) { s.applyThreads(n) })
	return true
}
