package modelfile

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/resgo/resgo/backend/ref"
	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/hub"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/transform"
)

// TestRoundTrip writes a small model with an extra tensor and metadata and
// reads it back, as a state dict and as a rebuilt model.
func TestRoundTrip(t *testing.T) {
	b := ref.New(1)
	opt := resnet.Options{NumClasses: 3, InChannels: 1, IncludeTop: true, SmallStem: true, Seed: 7}
	m, err := resnet.New(b, "resnet20", opt)
	if err != nil {
		t.Fatal(err)
	}
	meta := Meta{Arch: "resnet20", NumClasses: 3, InChannels: 1, SmallStem: true,
		Classes: []string{"a", "b", "c"}, Preprocess: transform.Preset{Channels: 1}}
	extra := map[string]*checkpoint.Tensor{"optim.step": checkpoint.NewI64("", nil, []int64{5})}
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := Write(path, m, meta, extra); err != nil {
		t.Fatal(err)
	}

	sd, got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	meta.Format = Format
	if !reflect.DeepEqual(*got, meta) {
		t.Errorf("meta %+v, want %+v", *got, meta)
	}
	if s := sd.Get("optim.step"); s == nil || len(s.I64) != 1 || s.I64[0] != 5 {
		t.Errorf("extra tensor optim.step: %+v", s)
	}

	m2, got2, err := Load(b, path)
	if err != nil {
		t.Fatal(err)
	}
	if got2.Options() != (resnet.Options{NumClasses: 3, InChannels: 1, IncludeTop: true, SmallStem: true}) {
		t.Errorf("options %+v", got2.Options())
	}
	want, have := checkpoint.FromModule(m), checkpoint.FromModule(m2)
	if !reflect.DeepEqual(want.Keys, have.Keys) {
		t.Fatalf("keys %v, want %v", have.Keys, want.Keys)
	}
	for _, k := range want.Keys {
		if !reflect.DeepEqual(want.Get(k), have.Get(k)) {
			t.Errorf("%s differs after loading", k)
		}
	}

	// An extra tensor may not shadow a model variable.
	clash := map[string]*checkpoint.Tensor{"fc.bias": checkpoint.NewF32("", []int{3}, make([]float32, 3))}
	if err := Write(path, m, meta, clash); err == nil || !strings.Contains(err.Error(), "fc.bias") {
		t.Errorf("clashing extra tensor: error %v", err)
	}
}

// TestNotModel checks that plain safetensors weights and .pth files are
// told apart from resgo's model files, and that Open and LoadPretrained
// take plain weights, reading the architecture, classes, input channels
// and stem from them.
func TestNotModel(t *testing.T) {
	m, err := resnet.New(ref.New(1), "resnet20", resnet.Options{IncludeTop: true, NumClasses: 2, InChannels: 1, SmallStem: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	plain, pth := filepath.Join(dir, "plain.safetensors"), filepath.Join(dir, "resNet20.pth")
	if err := checkpoint.WriteSafetensors(plain, checkpoint.FromModule(m)); err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.WritePTH(pth, checkpoint.FromModule(m)); err != nil {
		t.Fatal(err)
	}
	for path, what := range map[string]string{plain: "a safetensors file without resgo's metadata", pth: "a PyTorch .pth file"} {
		if _, _, err := Read(path); !errors.Is(err, ErrNotModel) || !strings.Contains(err.Error(), what) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want ErrNotModel saying %q", path, err, what)
		}
		for _, arch := range []string{"", "resnet20"} {
			got, w, err := LoadPretrained(ref.New(1), arch, path, 0)
			if err != nil {
				t.Fatalf("%s, arch %q: %v", path, arch, err)
			}
			if w != nil || got.Name != "resnet20" || got.Options.NumClasses != 2 || got.Options.InChannels != 1 || got.Options.SmallStem {
				t.Errorf("%s, arch %q: weights %v, %s, options %+v", path, arch, w, got.Name, got.Options)
			}
		}
		if _, _, err := LoadPretrained(ref.New(1), "resnet34", path, 0); err == nil || err.Error() != path+": these weights are resnet20; --arch says resnet34" {
			t.Errorf("%s with another --arch: error %v", path, err)
		}
	}
}

// fakeCatalogue replaces torchvision's catalogue, for the test's duration,
// by one entry for weights whose file the test can make: a resgo-built
// resnet20 state dict, saved as a .pth named as torchvision names its
// files, with a preprocessing of its own. It returns the entry and the
// file's contents.
func fakeCatalogue(t *testing.T) (resnet.Weights, []byte) {
	t.Helper()
	m, err := resnet.New(ref.New(1), "resnet20", resnet.Options{IncludeTop: true, NumClasses: 10, InChannels: 3, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "w.pth")
	if err := checkpoint.WritePTH(tmp, checkpoint.FromModule(m)); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	prefix := hex.EncodeToString(sum[:])[:8]
	e := resnet.Weights{Name: "resnet20.TEST", Arch: "resnet20", Tag: "TEST", File: "resnet20-" + prefix + ".pth", SHA256Prefix: prefix,
		ResizeSize: 40, CropSize: 32, Mean: resnet.ImageNetMean, Std: resnet.ImageNetStd}
	oldCat, oldLookup := catalogue, lookupWeights
	t.Cleanup(func() { catalogue, lookupWeights = oldCat, oldLookup })
	catalogue = func() []resnet.Weights { return []resnet.Weights{e} }
	lookupWeights = func(name string) (resnet.Weights, error) {
		if name == e.Name || name == e.File {
			return e, nil
		}
		return resnet.Weights{}, fmt.Errorf("unknown weights %q", name)
	}
	return e, raw
}

// TestResolveWeights checks that a file is taken as a file whatever its
// name, that torchvision's preprocessing comes with a file only when its
// SHA-256 is that of torchvision's file of that name, and that names are
// looked up in resgo's and PyTorch's caches, hash-checked.
func TestResolveWeights(t *testing.T) {
	e, raw := fakeCatalogue(t)
	cache, torchHome, local := t.TempDir(), t.TempDir(), t.TempDir()
	t.Setenv("RESGO_CACHE", cache)
	t.Setenv("TORCH_HOME", torchHome)
	write := func(path string, b []byte) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	v1 := transform.ImageNetV1

	for _, c := range []struct {
		what, weights string
		wantPath      string
		wantW         bool
		wantPre       transform.Preset
	}{
		// A file named as torchvision's, with its hash: the catalogue's
		// preprocessing.
		{"torchvision's file", write(filepath.Join(local, e.File), raw), filepath.Join(local, e.File), true, e.Preset()},
		// The same bytes under another name, and other bytes under
		// torchvision's name: plain weights.
		{"renamed", write(filepath.Join(local, "resnet50.pth"), raw), filepath.Join(local, "resnet50.pth"), false, v1},
		{"another file under torchvision's name", write(filepath.Join(local, "other", e.File), append(raw[:len(raw):len(raw)], 0)), filepath.Join(local, "other", e.File), false, v1},
	} {
		path, w, err := ResolveWeights(c.weights)
		if err != nil || path != c.wantPath || (w != nil) != c.wantW {
			t.Errorf("%s: %q, %v, %v", c.what, path, w, err)
			continue
		}
		if c.what == "another file under torchvision's name" {
			continue // a .pth with a byte appended: not loadable, and not meant to be
		}
		src, err := Open(ref.New(1), "", c.weights, 0)
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if src.Model.Name != "resnet20" || !reflect.DeepEqual(src.Preprocess(), c.wantPre) {
			t.Errorf("%s: %s, preprocessing %+v, want %+v", c.what, src.Model.Name, src.Preprocess(), c.wantPre)
		}
	}

	// Names: not cached, then in PyTorch's cache, then in resgo's.
	if _, _, err := ResolveWeights(e.Name); !errors.Is(err, hub.ErrNotCached) || !strings.Contains(err.Error(), "resgo weights download "+e.Name) {
		t.Errorf("not cached: error %v", err)
	}
	inTorch := write(filepath.Join(torchHome, "hub", "checkpoints", e.File), raw)
	if p, w, err := ResolveWeights(e.Name); err != nil || p != inTorch || w == nil || w.Name != e.Name {
		t.Errorf("in PyTorch's cache: %q, %v, %v", p, w, err)
	}
	ours := write(filepath.Join(cache, e.File), []byte("damaged"))
	if _, _, err := ResolveWeights(e.Name); err == nil || !strings.Contains(err.Error(), ours) || !strings.Contains(err.Error(), "starts with "+e.SHA256Prefix) {
		t.Errorf("a damaged cached file: error %v", err)
	}
	write(ours, raw)
	if p, _, err := ResolveWeights(e.File); err != nil || p != ours {
		t.Errorf("by file name, cached: %q, %v", p, err)
	}
	// A torchvision name says its architecture before anything is read.
	if _, err := Open(ref.New(1), "resnet18", e.Name, 0); err == nil || err.Error() != "weights resnet20.TEST are resnet20; --arch says resnet18" {
		t.Errorf("a name with another --arch: error %v", err)
	}

	// Paths that do not exist are missing files, even named like weights.
	for _, missing := range []string{filepath.Join(local, "nothing.pth"), "resnet50.pth", filepath.Join("some", e.File)} {
		if _, _, err := ResolveWeights(missing); err == nil || !strings.Contains(err.Error(), "weights "+missing+": no such file") {
			t.Errorf("%s: error %v", missing, err)
		}
	}
	if _, _, err := ResolveWeights(local); err == nil || !strings.Contains(err.Error(), "a folder") {
		t.Errorf("a folder: error %v", err)
	}
}
