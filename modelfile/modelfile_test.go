package modelfile

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/resgo/resgo/backend/ref"
	"github.com/resgo/resgo/checkpoint"
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

// TestNotModel checks that plain safetensors weights are told apart.
func TestNotModel(t *testing.T) {
	m, err := resnet.New(ref.New(1), "resnet20", resnet.Options{IncludeTop: true, NumClasses: 2, InChannels: 1, SmallStem: true})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "plain.safetensors")
	if err := checkpoint.WriteSafetensors(path, checkpoint.FromModule(m)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Read(path); !errors.Is(err, ErrNotModel) {
		t.Errorf("plain weights: error %v, want ErrNotModel", err)
	}

	// LoadPretrained takes them with an architecture, and reads the number
	// of classes, the input channels and the stem from the weights.
	got, w, err := LoadPretrained(ref.New(1), "resnet20", path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if w != nil || got.Options.NumClasses != 2 || got.Options.InChannels != 1 || !got.Options.SmallStem {
		t.Errorf("LoadPretrained: weights %v, options %+v", w, got.Options)
	}
	if _, _, err := LoadPretrained(ref.New(1), "", path, 0); err == nil || !strings.Contains(err.Error(), "--arch") {
		t.Errorf("no architecture: error %v", err)
	}
}

// TestResolveWeights checks that torchvision's names are looked up in the
// download cache and other paths are taken as they are.
func TestResolveWeights(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("RESGO_CACHE", dir)
	if p, w, err := ResolveWeights("some/file.pth"); err != nil || p != "some/file.pth" || w != nil {
		t.Errorf("a path: %q, %v, %v", p, w, err)
	}
	if _, _, err := ResolveWeights("resnet18"); err == nil || !strings.Contains(err.Error(), "resgo weights download resnet18.IMAGENET1K_V1") {
		t.Errorf("not cached: error %v", err)
	}
	cached := filepath.Join(dir, "resnet18-f37072fd.pth")
	if err := os.WriteFile(cached, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if p, w, err := ResolveWeights("resnet18"); err != nil || p != cached || w == nil || w.Arch != "resnet18" {
		t.Errorf("cached: %q, %v, %v", p, w, err)
	}
}
