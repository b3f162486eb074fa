//go:build cgo

package onnx_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/internal/randt"
	"github.com/resgo/resgo/onnx"
)

// ortFolder is where scripts/install-deps.sh installs npm's
// onnxruntime-node, whose libonnxruntime.so the ORT tests load.
const ortFolder = "/opt/resgo/ort"

// ortTol bounds the error of ONNX Runtime's logits against resgo's,
// relative to their largest magnitude (randt.RelErr).
const ortTol = 1e-4

var (
	ortOnce sync.Once
	ortErr  error
)

// ortLibrary returns the path of libonnxruntime.so: RESGO_ONNXRUNTIME_LIB,
// or onnxruntime-node's copy under ortFolder.
func ortLibrary() (string, error) {
	if p := os.Getenv("RESGO_ONNXRUNTIME_LIB"); p != "" {
		return p, nil
	}
	matches, _ := filepath.Glob(filepath.Join(ortFolder, "node_modules/onnxruntime-node/bin/napi-v*/linux/x64/libonnxruntime.so*"))
	if len(matches) == 0 {
		return "", fmt.Errorf("ONNX Runtime not found: no RESGO_ONNXRUNTIME_LIB and no onnxruntime-node under %s (scripts/install-deps.sh test installs it)", ortFolder)
	}
	return matches[len(matches)-1], nil
}

// startORT loads ONNX Runtime once for the test binary, or skips (fails in
// CI) without it.
func startORT(t *testing.T) {
	t.Helper()
	ortOnce.Do(func() {
		lib, err := ortLibrary()
		if err != nil {
			ortErr = err
			return
		}
		ort.SetSharedLibraryPath(lib)
		if err := ort.InitializeEnvironment(); err != nil {
			ortErr = fmt.Errorf("ONNX Runtime %s: %w", lib, err)
		}
	})
	if ortErr != nil {
		skipOrFail(t, ortErr)
	}
}

// TestONNXRuntimeParity runs the exported models in ONNX Runtime, at batch
// 1 and 3 (the symbolic batch axis), and compares their logits with
// resgo's on every backend, and reads the metadata back with ORT.
func TestONNXRuntimeParity(t *testing.T) {
	startORT(t)
	for _, name := range backend.Names() {
		b, err := backend.New(name, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range exportCases {
			t.Run(name+"/"+c.arch, func(t *testing.T) {
				start := time.Now()
				m := testModel(t, b, c)
				var buf bytes.Buffer
				if err := onnx.Write(&buf, m, testMeta(c)); err != nil {
					t.Fatal(err)
				}
				raw := buf.Bytes()
				for _, n := range []int{1, 3} {
					x := randt.Uniform(uint64(n), n, c.channels, c.size, c.size)
					got := runORT(t, raw, x.Values(), x.Shape(), n*numClasses)
					var want []float32
					if err := backend.Do(b, func() { want = append(want, backend.Values(b, m.Forward(x))...) }); err != nil {
						t.Fatal(err)
					}
					e := randt.RelErr(got, want)
					t.Logf("batch %d: ONNX Runtime vs resgo %s: relative error %.2g (logits up to %.3g)", n, name, e, maxAbs(want))
					if e > ortTol {
						t.Errorf("batch %d: ONNX Runtime's logits %v, resgo's %v: relative error %.3g > %g", n, got, want, e, ortTol)
					}
				}
				meta, err := ort.GetModelMetadataWithONNXData(raw)
				if err != nil {
					t.Fatal(err)
				}
				defer meta.Destroy()
				if arch, ok, err := meta.LookupCustomMetadataMap("arch"); err != nil || !ok || arch != c.arch {
					t.Errorf("ORT reads metadata arch %q (%v, %v)", arch, ok, err)
				}
				t.Logf("export and both runs: %v", time.Since(start).Round(time.Millisecond))
			})
		}
	}
}

func maxAbs(v []float32) float32 {
	var m float32
	for _, x := range v {
		m = max(m, x, -x)
	}
	return m
}
