package backend

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestRegisterTwicePanics(t *testing.T) {
	const name = "test-register-twice"
	f := func(int) (Backend, error) { return nil, errors.New("unused") }
	Register(name, -1, f)
	t.Cleanup(func() {
		regMu.Lock()
		delete(registry, name)
		regMu.Unlock()
	})
	for _, c := range []struct {
		what string
		f    Factory
		want string
	}{
		{"duplicate name", f, "Register called twice for backend " + name},
		{"nil factory", nil, "factory is nil"},
	} {
		func() {
			defer func() {
				r := recover()
				if s, ok := r.(string); !ok || !strings.Contains(s, c.want) {
					t.Errorf("%s: Register panicked with %v, want %q", c.what, r, c.want)
				}
			}()
			Register(name, -1, c.f)
		}()
	}
	if got := Names(); !contains(got, name) {
		t.Errorf("Names() = %v after the failed registrations, want %s kept", got, name)
	}
}

func contains(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// runner is a Backend whose work runs through its Run method.
type runner struct {
	Backend
	runs int
}

func (r *runner) Run(f func()) {
	r.runs++
	f()
}

// module runs child as a container's Forward runs one of its children:
// with InLayer deferred and the child's name set.
func module(name string, child func()) {
	var at string
	defer InLayer(&at)
	at = name
	child()
}

// layered runs fail as an operation of the layer "layer2.0.conv1": inside
// three nested modules.
func layered(fail func()) {
	module("layer2", func() {
		module("0", func() {
			module("conv1", fail)
		})
	})
}

func TestDoNamesTheLayer(t *testing.T) {
	b := &runner{}
	err := Do(b, func() {
		layered(func() { Fail("test.Conv2D", "input has 3 channels, weight expects 4", nil) })
	})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Do returned %v, want an *Error", err)
	}
	if b.runs != 1 {
		t.Errorf("Do ran f through Run %d times, want 1", b.runs)
	}
	if e.Layer != "layer2.0.conv1" || e.Op != "test.Conv2D" {
		t.Errorf("error %q: layer %q, op %q; want layer2.0.conv1 and test.Conv2D", err, e.Layer, e.Op)
	}
	if want := "layer2.0.conv1: test.Conv2D: input has 3 channels"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start with %q", err, want)
	}

	// The underlying error stays reachable, and a failure outside any
	// module names no layer.
	cause := errors.New("dnnl_primitive_desc_create returned unimplemented")
	err = Do(b, func() { panic(&Error{Op: "test.op", Msg: "oneDNN call failed", Err: cause}) })
	if !errors.Is(err, cause) || !errors.As(err, &e) || e.Layer != "" {
		t.Errorf("Do returned %v (layer %q), want the cause and no layer", err, e.Layer)
	}
	if err := Do(b, func() {}); err != nil {
		t.Errorf("Do of a function that succeeds returned %v", err)
	}
}

func TestDoLetsOtherPanicsThrough(t *testing.T) {
	defer func() {
		if r := recover(); fmt.Sprint(r) != "a bug" {
			t.Errorf("recovered %v, want the original panic value", r)
		}
	}()
	Do(&runner{}, func() { layered(func() { panic("a bug") }) })
	t.Error("Do returned from a panic that is not an *Error")
}
