package backend

import (
	"strings"
	"testing"
)

// TestDefaultNoBackend checks the error of a program that imports no
// backend package: it names both backend packages to import.
func TestDefaultNoBackend(t *testing.T) {
	t.Setenv("RESGO_BACKEND", "")
	regMu.Lock()
	saved := registry
	registry = map[string]registered{}
	regMu.Unlock()
	t.Cleanup(func() {
		regMu.Lock()
		registry = saved
		regMu.Unlock()
	})
	b, err := Default()
	if err == nil {
		t.Fatalf("Default() = %v with no backend registered, want an error", b)
	}
	for _, want := range []string{`"github.com/resgo/resgo/backend/dnnl"`, `"github.com/resgo/resgo/backend/ref"`, "cgo"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Default() error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("Default() error %q is not one line", err)
	}
}
