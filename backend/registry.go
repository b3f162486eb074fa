package backend

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// A Factory creates a backend using the given number of threads.
type Factory func(threads int) (Backend, error)

var (
	regMu    sync.Mutex
	registry = map[string]registered{}
)

type registered struct {
	factory  Factory
	priority int
}

// Register makes a backend available by name. Backends with a higher
// priority are preferred by Default; the oneDNN backend registers itself
// with a higher priority than ref when it is built. As database/sql's
// Register, it panics if f is nil or if Register is called twice with the
// same name: two packages claiming one name is a build mistake.
func Register(name string, priority int, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	if f == nil {
		panic("backend: Register factory is nil")
	}
	if _, dup := registry[name]; dup {
		panic("backend: Register called twice for backend " + name)
	}
	registry[name] = registered{f, priority}
}

// Names returns the registered backends, preferred first.
func Names() []string {
	regMu.Lock()
	defer regMu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		pi, pj := registry[names[i]].priority, registry[names[j]].priority
		if pi != pj {
			return pi > pj
		}
		return names[i] < names[j]
	})
	return names
}

// New creates the named backend with threads threads (0 means the number of
// CPUs, or RESGO_THREADS when set).
func New(name string, threads int) (Backend, error) {
	regMu.Lock()
	r, ok := registry[name]
	regMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("backend %q is not built into this binary (available: %s)", name, strings.Join(Names(), ", "))
	}
	// threads <= 0 goes to the factory as it is: each backend resolves it
	// with DefaultThreads, and dnnl also honours RESGO_THREADS=auto.
	b, err := r.factory(threads)
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", name, err)
	}
	return b, nil
}

// errNoBackend is Default's error in a program that imports no backend
// package: backends register themselves when imported, and package backend
// cannot import them (they import it).
var errNoBackend = errors.New(`no backend is registered: import _ "github.com/resgo/resgo/backend/dnnl" ` +
	`(oneDNN; needs cgo, empty without it) or _ "github.com/resgo/resgo/backend/ref" (pure Go), or both (dnnl is then preferred)`)

// Default creates the backend named by RESGO_BACKEND, or else the preferred
// registered one (dnnl where it is built, ref otherwise).
func Default() (Backend, error) {
	if name := os.Getenv("RESGO_BACKEND"); name != "" {
		return New(name, 0)
	}
	names := Names()
	if len(names) == 0 {
		return nil, errNoBackend
	}
	return New(names[0], 0)
}

// DefaultThreads returns RESGO_THREADS if it is set to a positive number,
// else the number of CPUs (RESGO_THREADS=auto starts there too).
func DefaultThreads() int {
	if s := os.Getenv("RESGO_THREADS"); s != "" && s != "auto" {
		var n int
		if _, err := fmt.Sscan(s, &n); err == nil && n > 0 {
			return n
		}
	}
	return runtime.NumCPU()
}

// AutoThreads reports whether RESGO_THREADS=auto asks backends that
// support it (dnnl) to follow the CPUs other processes leave free: fewer
// threads while a neighbour keeps a CPU busy, all of them again when it
// stops. The thread count then changes during a run, and oneDNN's results
// may differ in the last bits between thread counts (the order of its
// reductions changes), so a training run under auto is not bit-for-bit
// reproducible.
func AutoThreads() bool { return os.Getenv("RESGO_THREADS") == "auto" }

// Runner is implemented by backends whose operations are cheaper when a
// sequence of them runs in one go: the dnnl backend runs f on its worker
// thread, so the operations f calls need no hand-off to it.
type Runner interface {
	Run(f func())
}

// Run calls f through b's Run method if b is a Runner, and directly
// otherwise. Wrap a whole forward pass or training step in it, or rather in
// Do, which also returns a failed operation as an error.
func Run(b Backend, f func()) {
	if r, ok := b.(Runner); ok {
		r.Run(f)
		return
	}
	f()
}

// Describer is implemented by backends that can say what they run on (a
// library version, the instruction set its kernels use), for bug reports
// and benchmark records.
type Describer interface {
	Describe() string
}

// Describe returns b's Describe, or its name for a backend that does not
// describe itself.
func Describe(b Backend) string {
	if d, ok := b.(Describer); ok {
		return b.Name() + ": " + d.Describe()
	}
	return b.Name()
}
