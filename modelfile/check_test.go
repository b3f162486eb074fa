package modelfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/resgo/resgo/backend/ref"
	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/transform"
)

// stemAndHead returns resnet20's conv1 and fc tensors for a model of the
// given input channels and classes, and any further tensors: all that
// Read checks the metadata against.
func stemAndHead(inChannels, numClasses int, extra ...*checkpoint.Tensor) *checkpoint.StateDict {
	sd := checkpoint.NewStateDict()
	sd.Add(checkpoint.NewF32("conv1.weight", []int{16, inChannels, 3, 3}, make([]float32, 16*inChannels*9)))
	sd.Add(checkpoint.NewF32("fc.weight", []int{numClasses, 64}, make([]float32, numClasses*64)))
	sd.Add(checkpoint.NewF32("fc.bias", []int{numClasses}, make([]float32, numClasses)))
	for _, t := range extra {
		sd.Add(t)
	}
	return sd
}

// goodMeta is metadata that agrees with stemAndHead(1, 3).
func goodMeta() map[string]any {
	return map[string]any{
		"format": Format, "arch": "resnet20", "num_classes": 3, "in_channels": 1, "small_stem": true,
		"classes":    []string{"a", "b", "c"},
		"preprocess": map[string]any{"ResizeSize": 0, "CropSize": 0, "Channels": 1, "Norm": map[string]any{"Mean": []float32{0.5}, "Std": []float32{0.25}}},
	}
}

// encodeModelFile returns a safetensors file of sd with meta as resgo's
// metadata.
func encodeModelFile(t testing.TB, sd *checkpoint.StateDict, meta map[string]any) []byte {
	t.Helper()
	raw, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	sd.Metadata = map[string]string{metaKey: string(raw)}
	var b bytes.Buffer
	if err := checkpoint.EncodeSafetensors(&b, sd); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// allocated returns the bytes f allocates (if nothing else runs meanwhile).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestReadChecksMeta feeds model files whose metadata is out of range or
// disagrees with the weights: Read and Load must fail with one line naming
// the file and the field, before building anything (a num_classes of 1e9
// or an in_channels of 1e7 used to be built, taking gigabytes).
func TestReadChecksMeta(t *testing.T) {
	dir := t.TempDir()
	norm := func(mean, std []float32) map[string]any { return map[string]any{"Mean": mean, "Std": std} }
	cases := []struct {
		name string
		edit func(m map[string]any, pre map[string]any)
		sd   *checkpoint.StateDict
		want string
	}{
		{"classes-1e9", func(m, _ map[string]any) { m["num_classes"] = 1_000_000_000 }, nil, "num_classes 1000000000: want 1 to 100000"},
		{"classes-0", func(m, _ map[string]any) { m["num_classes"] = 0; m["classes"] = []string{} }, nil, "num_classes 0"},
		{"channels-1e7", func(m, pre map[string]any) { m["in_channels"] = 10_000_000; pre["Channels"] = 10_000_000 }, nil, "in_channels 10000000: want 1 to 16"},
		{"channels-neg", func(m, _ map[string]any) { m["in_channels"] = -3 }, nil, "in_channels -3"},
		{"crop-60000", func(_, pre map[string]any) { pre["CropSize"] = 60000 }, nil, "preprocess.CropSize 60000: want 0 (no crop) to 4096"},
		{"crop-neg", func(_, pre map[string]any) { pre["CropSize"] = -224 }, nil, "preprocess.CropSize -224"},
		{"resize-huge", func(_, pre map[string]any) { pre["ResizeSize"] = 1 << 30 }, nil, "preprocess.ResizeSize 1073741824"},
		{"std-0", func(_, pre map[string]any) { pre["Norm"] = norm([]float32{0.5}, []float32{0}) }, nil, "preprocess.Norm.Std[0] 0: want a finite deviation of at least 1e-06"},
		{"std-neg", func(_, pre map[string]any) { pre["Norm"] = norm([]float32{0.5}, []float32{-1}) }, nil, "preprocess.Norm.Std[0] -1"},
		{"std-missing", func(_, pre map[string]any) { pre["Norm"] = norm([]float32{0.5}, nil) }, nil, "preprocess.Norm: 1 means and 0 deviations"},
		{"norm-channels", func(_, pre map[string]any) { pre["Norm"] = norm([]float32{1, 2}, []float32{1, 2}) }, nil, "2 means and 2 deviations for 1 channels"},
		{"pre-channels", func(_, pre map[string]any) { pre["Channels"] = 3 }, nil, "preprocess.Channels 3: the model takes in_channels 1"},
		{"class-names", func(m, _ map[string]any) { m["classes"] = []string{"a"} }, nil, "classes: 1 names for num_classes 3"},
		{"arch", func(m, _ map[string]any) { m["arch"] = "resnet9000" }, nil, `arch "resnet9000": not one of`},
		{"fc-disagrees", func(m, _ map[string]any) { m["num_classes"] = 5; m["classes"] = []string{"a", "b", "c", "d", "e"} }, nil,
			"fc.weight has shape [3 64], resnet20 with num_classes 5 needs [5 64]"},
		{"conv1-disagrees", func(m, pre map[string]any) { m["in_channels"] = 3; pre["Channels"] = 3 }, nil,
			"conv1.weight has shape [16 1 3 3], resnet20 with in_channels 3 and a 3x3 stem needs [16 3 3 3]"},
		{"stem-disagrees", func(m, _ map[string]any) { m["arch"] = "resnet18"; m["small_stem"] = false }, nil,
			"conv1.weight has shape [16 1 3 3], resnet18 with in_channels 1 and a 7x7 stem needs [64 1 7 7]"},
		{"no-fc", func(map[string]any, map[string]any) {}, func() *checkpoint.StateDict {
			sd := stemAndHead(1, 3)
			sd.Delete("fc.weight")
			return sd
		}(), "no fc.weight in the weights"},
		{"bad-format", func(m, _ map[string]any) { m["format"] = "resgo/0" }, nil, `format "resgo/0"`},
	}
	b := ref.New(1)
	for _, c := range cases {
		meta := goodMeta()
		c.edit(meta, meta["preprocess"].(map[string]any))
		sd := c.sd
		if sd == nil {
			sd = stemAndHead(1, 3)
		}
		path := filepath.Join(dir, c.name+".safetensors")
		if err := os.WriteFile(path, encodeModelFile(t, sd, meta), 0o644); err != nil {
			t.Fatal(err)
		}
		var rerr, lerr error
		n := allocated(func() {
			_, _, rerr = Read(path)
			_, _, lerr = Load(b, path)
		})
		for _, err := range []error{rerr, lerr} {
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s: error %v, want one line naming the file and saying %q", c.name, err, c.want)
			}
		}
		if n > 16<<20 {
			t.Errorf("%s: refusing the file allocated %d MiB", c.name, n>>20)
		}
	}

	// The unedited metadata is fine, and Decode reads the same bytes.
	data := encodeModelFile(t, stemAndHead(1, 3), goodMeta())
	if _, meta, err := Decode("good.safetensors", data); err != nil || meta.NumClasses != 3 || meta.Preprocess.Norm.Std[0] != 0.25 {
		t.Errorf("good metadata: %+v, %v", meta, err)
	}
}

// TestWriteChecksMeta checks that Write refuses metadata Read would refuse,
// instead of writing a checkpoint that cannot be read back.
func TestWriteChecksMeta(t *testing.T) {
	m, err := resnet.New(ref.New(1), "resnet20", resnet.Options{NumClasses: 3, InChannels: 1, IncludeTop: true, SmallStem: true})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.safetensors")
	meta := Meta{Arch: "resnet20", NumClasses: 3, InChannels: 1, SmallStem: true, Classes: []string{"a", "b", "c"},
		Preprocess: transform.Preset{Channels: 1, CropSize: -1}}
	if err := Write(path, m, meta, nil); err == nil || !strings.Contains(err.Error(), "preprocess.CropSize -1") {
		t.Errorf("negative crop: error %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("refused file written: %v", err)
	}
}

// TestLoadPretrainedResgoCheckpoint loads a resgo training checkpoint, with
// the optimizer's state beside the weights, as pretrained weights (train
// --weights, predict --weights): the optimizer's tensors are ignored and
// the metadata names the architecture.
func TestLoadPretrainedResgoCheckpoint(t *testing.T) {
	b := ref.New(1)
	m, err := resnet.New(b, "resnet20", resnet.Options{NumClasses: 3, InChannels: 1, IncludeTop: true, SmallStem: true, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	meta := Meta{Arch: "resnet20", NumClasses: 3, InChannels: 1, SmallStem: true, Classes: []string{"a", "b", "c"},
		Preprocess: transform.Preset{Channels: 1}, Train: json.RawMessage(`{"epoch":1}`)}
	extra := map[string]*checkpoint.Tensor{
		"optim.step":           checkpoint.NewI64("", nil, []int64{1}),
		"optim.exp_avg.conv1":  checkpoint.NewF32("", []int{16, 1, 3, 3}, make([]float32, 144)),
		"optim.exp_avg_sq.fc1": checkpoint.NewF32("", []int{3}, []float32{1, 2, 3}),
	}
	// Not named .safetensors: predict loads such a file through
	// LoadPretrained.
	path := filepath.Join(t.TempDir(), "last.ckpt")
	if err := Write(path, m, meta, extra); err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"", "resnet20"} {
		got, w, err := LoadPretrained(b, arch, path, 0)
		if err != nil {
			t.Fatalf("arch %q: %v", arch, err)
		}
		if w != nil || got.Name != "resnet20" || got.Options.NumClasses != 3 || got.Options.InChannels != 1 || !got.Options.SmallStem {
			t.Errorf("arch %q: %s, options %+v", arch, got.Name, got.Options)
		}
		want, have := checkpoint.FromModule(m), checkpoint.FromModule(got)
		for _, k := range want.Keys {
			if fmt.Sprint(want.Get(k).F32) != fmt.Sprint(have.Get(k).F32) {
				t.Fatalf("arch %q: %s differs after loading", arch, k)
			}
		}
	}
	if _, _, err := LoadPretrained(b, "resnet18", path, 0); err == nil || !strings.Contains(err.Error(), "these weights are a resgo checkpoint of resnet20; --arch says resnet18") {
		t.Errorf("wrong --arch: error %v", err)
	}
}

// TestLoadPretrainedChecksShapes feeds plain weights whose fc or conv1
// describe an absurd model: LoadPretrained must refuse them before
// building it (empty tensors take no room in the file but used to size
// the model).
func TestLoadPretrainedChecksShapes(t *testing.T) {
	dir := t.TempDir()
	empty := func(name string, shape ...int) *checkpoint.Tensor {
		return checkpoint.NewF32(name, shape, []float32{})
	}
	m, err := resnet.New(ref.New(1), "resnet20", resnet.Options{IncludeTop: true, NumClasses: 3, InChannels: 1})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		tensor *checkpoint.Tensor
		want   string
	}{
		{"classes", empty("fc.weight", 1_000_000_000, 0), "fc.weight has shape [1000000000 0], the last stage gives 64 features"},
		{"no-classes", empty("fc.weight", 0, 64), "fc.weight has shape [0 64]"},
		{"channels", empty("conv1.weight", 16, 10_000_000, 3, 0), "conv1.weight has shape [16 10000000 3 0]"},
		{"no-channels", empty("conv1.weight", 16, 0, 3, 3), "conv1.weight takes 0 input channels: want 1 to 16"},
		{"features", checkpoint.NewF32("fc.weight", []int{50_000, 1}, make([]float32, 50_000)),
			"fc.weight has shape [50000 1], the last stage gives 64 features: want [classes, 64]"},
		{"stem-width", checkpoint.NewF32("conv1.weight", []int{1, 2, 3, 3}, make([]float32, 18)),
			"conv1.weight has 1 output channels, layer1 16 planes"},
	}
	for _, c := range cases {
		// resnet20's weights with one tensor replaced. A .pth file: the
		// safetensors reader already refuses a dimension larger than the
		// file, even in an empty tensor.
		sd := checkpoint.FromModule(m)
		sd.Add(c.tensor)
		path := filepath.Join(dir, c.name+".pth")
		if err := checkpoint.WritePTH(path, sd); err != nil {
			t.Fatal(err)
		}
		var err error
		n := allocated(func() { _, _, err = LoadPretrained(ref.New(1), "", path, 0) })
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming the file and saying %q", c.name, err, c.want)
		}
		if n > 16<<20 {
			t.Errorf("%s: refusing the file allocated %d MiB", c.name, n>>20)
		}
	}

	// The limits, on shapes alone (a file with 100,001 classes would take
	// 25 MB).
	for _, c := range []struct {
		name  string
		shape []int
		want  string
	}{
		{"fc.weight", []int{MaxNumClasses + 1, 64}, "fc.weight has 100001 classes: want 1 to 100000"},
		{"conv1.weight", []int{16, MaxInChannels + 1, 3, 3}, "conv1.weight takes 17 input channels: want 1 to 16"},
	} {
		sd := checkpoint.NewStateDict()
		for _, v := range nn.State(m) {
			var shape []int
			if v.Value != nil {
				shape = v.Value.Shape()
			}
			sd.Add(&checkpoint.Tensor{Name: v.Name, Shape: shape})
		}
		sd.Add(&checkpoint.Tensor{Name: c.name, Shape: c.shape})
		if _, _, err := inferArch("x.pth", sd); err == nil || err.Error() != "x.pth: "+c.want {
			t.Errorf("%s %v: error %v, want %q", c.name, c.shape, err, c.want)
		}
	}
}

// FuzzDecode runs Decode (Read on bytes) on arbitrary input: it must never
// panic, and never allocate more than a small multiple of the input (the
// tensors' values: at most 12 bytes per byte of data, for bytes decoded
// as float32 and int64; the JSON header: a few times its size) plus 1 MiB.
func FuzzDecode(f *testing.F) {
	f.Add(encodeModelFile(f, stemAndHead(1, 3), goodMeta()))
	bad := goodMeta()
	bad["num_classes"] = 1_000_000_000
	f.Add(encodeModelFile(f, stemAndHead(1, 3), bad))
	bad = goodMeta()
	bad["preprocess"].(map[string]any)["CropSize"] = 60000
	f.Add(encodeModelFile(f, stemAndHead(1, 3), bad))
	f.Add(encodeModelFile(f, stemAndHead(3, 2, checkpoint.NewI64("optim.step", nil, []int64{4})), map[string]any{
		"format": Format, "arch": "resnet20", "num_classes": 2, "in_channels": 3, "classes": []string{"x", "y"},
		"preprocess": map[string]any{"Channels": 3, "Norm": map[string]any{"Mean": []float32{0.5, 0.5, 0.5}, "Std": []float32{0.2, 0.2, 0.2}}}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		var sd *checkpoint.StateDict
		var meta *Meta
		var err error
		n := allocated(func() { sd, meta, err = Decode("fuzz.safetensors", data) })
		if limit := 64*uint64(len(data)) + 1<<20; n > limit {
			t.Fatalf("decoding %d bytes allocated %d bytes (limit %d)", len(data), n, limit)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.safetensors") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		// What Read accepts, Load builds without surprises.
		if sd.Get("fc.weight").Shape[0] != meta.NumClasses || meta.NumClasses > MaxNumClasses || len(meta.Classes) != meta.NumClasses {
			t.Fatalf("accepted metadata %+v that disagrees with fc.weight %v", meta, sd.Get("fc.weight").Shape)
		}
	})
}
