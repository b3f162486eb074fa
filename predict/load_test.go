package predict_test

import (
	"fmt"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/internal/shapes"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/predict"
	"github.com/resgo/resgo/serve"
	"github.com/resgo/resgo/transform"
)

var flowers = []string{"daisy", "roses", "tulips"}

// flowerModel returns a ResNet-20 with three classes (random weights) and
// a preprocessing for small images.
func flowerModel(t *testing.T, b backend.Backend) (*resnet.Model, transform.Preset) {
	t.Helper()
	m, err := resnet.New(b, "resnet20", resnet.Options{IncludeTop: true, NumClasses: len(flowers), Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	return m, transform.Preset{ResizeSize: 20, CropSize: 16, Channels: 3, Norm: transform.ImageNet}
}

// writeImages writes n PNG images of shapes, of sides 20 to 27, into dir
// and returns their paths.
func writeImages(t *testing.T, dir string, n int) []string {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	var paths []string
	for i := range n {
		path := filepath.Join(dir, fmt.Sprintf("img%02d.png", i))
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		err = png.Encode(f, shapes.Draw(i%4, 20+i%8, r))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	return paths
}

// reference classifies the files at paths with New on model m, decoding
// them with data.LoadImage: what Load and ClassifyFiles must reproduce.
func reference(t *testing.T, m *resnet.Model, classes []string, pre transform.Preset, batch int, paths []string) []predict.Result {
	t.Helper()
	clf, err := predict.New(m, classes, pre)
	if err != nil {
		t.Fatal(err)
	}
	clf.Batch = batch
	images := make([]*transform.Image, len(paths))
	for i, p := range paths {
		if images[i], err = data.LoadImage(p, pre.Channels); err != nil {
			t.Fatal(err)
		}
	}
	want, err := clf.Classify(images, paths, 2)
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// sameResults reports the first difference between two lists of results.
func sameResults(t *testing.T, what string, got, want []predict.Result) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d results, want %d", what, len(got), len(want))
		return
	}
	for i := range want {
		if got[i].Image != want[i].Image || !slices.Equal(got[i].Logits, want[i].Logits) || !slices.Equal(got[i].Top, want[i].Top) {
			t.Errorf("%s: result %d: %s %v %v, want %s %v %v", what, i, got[i].Image, got[i].Top, got[i].Logits, want[i].Image, want[i].Top, want[i].Logits)
			return
		}
	}
}

// TestLoadCheckpoint loads a resgo checkpoint (as resgo train writes it):
// its classes and preprocessing come from it, and ClassifyFiles gives, in
// the order of the paths and in batches (the last one partial), the
// results of New and Classify on the same model.
func TestLoadCheckpoint(t *testing.T) {
	b, err := backend.Default()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m, pre := flowerModel(t, b)
	path := filepath.Join(dir, "best.safetensors")
	meta := modelfile.Meta{Arch: "resnet20", NumClasses: 3, InChannels: 3, Classes: flowers, Preprocess: pre}
	if err := modelfile.Write(path, m, meta, nil); err != nil {
		t.Fatal(err)
	}
	paths := writeImages(t, dir, 11)

	clf, err := predict.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if clf.Model.Name != "resnet20" || !slices.Equal(clf.Classes, flowers) || clf.Pre.ResizeSize != 20 || clf.Pre.CropSize != 16 {
		t.Fatalf("Load: %s, classes %v, preprocessing %+v", clf.Model.Name, clf.Classes, clf.Pre)
	}
	clf.Batch = 4
	got, err := clf.ClassifyFiles(paths, 2)
	if err != nil {
		t.Fatal(err)
	}
	sameResults(t, "ClassifyFiles", got, reference(t, m, flowers, pre, 4, paths))

	// A class file renames the classes.
	classFile := filepath.Join(dir, "class_indices.json")
	if err := os.WriteFile(classFile, []byte(`{"0": "a", "1": "b", "2": "c"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if clf, err := predict.Load(path, predict.WithClassFile(classFile), predict.WithBackend(b)); err != nil || !slices.Equal(clf.Classes, []string{"a", "b", "c"}) {
		t.Errorf("WithClassFile: %v", err)
	}
}

// TestLoadStateDict loads plain state dicts, .safetensors and .pth, with
// the architecture given or read from the tensors, and a tutorial-style
// class_indices.json:
// torchvision's ImageNet V1 preprocessing, the file's class names, the
// same logits as the model written.
func TestLoadStateDict(t *testing.T) {
	b, err := backend.Default()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m, _ := flowerModel(t, b)
	sd := checkpoint.FromModule(m)
	st := filepath.Join(dir, "resNet20.safetensors")
	pth := filepath.Join(dir, "resNet20.pth")
	if err := checkpoint.WriteSafetensors(st, sd); err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.WritePTH(pth, sd); err != nil {
		t.Fatal(err)
	}
	classFile := filepath.Join(dir, "class_indices.json")
	if err := os.WriteFile(classFile, []byte("{\n    \"0\": \"daisy\",\n    \"1\": \"roses\",\n    \"2\": \"tulips\"\n}"), 0o644); err != nil {
		t.Fatal(err)
	}
	paths := writeImages(t, dir, 3)
	want := reference(t, m, flowers, transform.ImageNetV1, 8, paths)
	for _, c := range []struct {
		weights string
		opts    []predict.Option
	}{
		{st, []predict.Option{predict.WithArch("resnet20"), predict.WithClassFile(classFile)}},
		{pth, []predict.Option{predict.WithArch("resnet20"), predict.WithClassFile(classFile)}},
		{pth, []predict.Option{predict.WithClassFile(classFile)}}, // the architecture read from the tensors
	} {
		weights := c.weights
		clf, err := predict.Load(weights, c.opts...)
		if err != nil {
			t.Fatalf("%s: %v", weights, err)
		}
		if clf.Model.Name != "resnet20" {
			t.Errorf("%s: built %s, want resnet20", weights, clf.Model.Name)
		}
		if !slices.Equal(clf.Classes, flowers) || !slices.Equal(clf.Pre.Norm.Mean, transform.ImageNetV1.Norm.Mean) ||
			clf.Pre.ResizeSize != 256 || clf.Pre.CropSize != 224 || clf.Pre.Channels != 3 {
			t.Errorf("%s: classes %v, preprocessing %+v", weights, clf.Classes, clf.Pre)
		}
		got, err := clf.ClassifyFiles(paths, 2)
		if err != nil {
			t.Fatal(err)
		}
		sameResults(t, weights, got, want)
	}
}

// TestLoadErrors checks that what Load and ClassifyFiles refuse is an
// error naming the file and the problem.
func TestLoadErrors(t *testing.T) {
	b, err := backend.Default()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("RESGO_CACHE", t.TempDir()) // an empty download cache
	dir := t.TempDir()
	m, pre := flowerModel(t, b)
	ckpt := filepath.Join(dir, "best.safetensors")
	if err := modelfile.Write(ckpt, m, modelfile.Meta{Arch: "resnet20", NumClasses: 3, InChannels: 3, Classes: flowers, Preprocess: pre}, nil); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain.pth")
	if err := checkpoint.WritePTH(plain, checkpoint.FromModule(m)); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	twoNames := write("two.json", `{"0": "daisy", "1": "roses"}`)
	outOfRange := write("range.json", `{"0": "daisy", "1": "roses", "2": "tulips", "3": "extra"}`)
	notJSON := write("bad.json", `daisy, roses, tulips`)
	missing := filepath.Join(dir, "missing.pth")
	for _, c := range []struct {
		what    string
		weights string
		opts    []predict.Option
		want    []string
	}{
		{"a class missing from the class file", ckpt, []predict.Option{predict.WithClassFile(twoNames)}, []string{twoNames, "no name for class 2 of 3"}},
		{"a class index out of range", ckpt, []predict.Option{predict.WithClassFile(outOfRange)}, []string{outOfRange, `key "3"`}},
		{"a class file that is not JSON", ckpt, []predict.Option{predict.WithClassFile(notJSON)}, []string{notJSON, "not a class index file"}},
		{"another architecture than the checkpoint's", ckpt, []predict.Option{predict.WithArch("resnet18")}, []string{ckpt, "resnet20", "resnet18"}},
		{"another architecture than the weights'", plain, []predict.Option{predict.WithArch("resnet32")}, []string{plain, "resnet20", "resnet32"}},
		{"torchvision weights not downloaded", "resnet18.IMAGENET1K_V1", nil, []string{"resgo weights download resnet18.IMAGENET1K_V1"}},
		{"no such file", missing, []predict.Option{predict.WithArch("resnet18")}, []string{missing}},
	} {
		clf, err := predict.Load(c.weights, append(c.opts, predict.WithBackend(b))...)
		if err == nil {
			t.Errorf("%s: Load gave %s, want an error", c.what, clf.Model.Name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.what, err, w)
			}
		}
	}

	clf, err := predict.Load(ckpt, predict.WithBackend(b))
	if err != nil {
		t.Fatal(err)
	}
	paths := writeImages(t, dir, 3)
	corrupt := write("corrupt.png", "\x89PNG\r\n\x1a\nnot really")
	for _, bad := range []string{corrupt, filepath.Join(dir, "gone.png")} {
		if _, err := clf.ClassifyFiles(append(slices.Clone(paths), bad), 1); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ClassifyFiles with %s: error %v, want one naming it", bad, err)
		}
	}
}

// TestMaxInputPixels checks the bound on the model input of a
// preprocessing that does not crop (a Fashion-MNIST model's): an image
// within MaxInputPixels is classified, a larger one refused naming the
// file, before the forward pass.
func TestMaxInputPixels(t *testing.T) {
	if predict.DefaultMaxInputPixels != serve.DefaultMaxInputPixels {
		t.Errorf("predict.DefaultMaxInputPixels %d, serve.DefaultMaxInputPixels %d", predict.DefaultMaxInputPixels, serve.DefaultMaxInputPixels)
	}
	b, err := backend.Default()
	if err != nil {
		t.Fatal(err)
	}
	m, err := resnet.New(b, "resnet20", resnet.Options{IncludeTop: true, NumClasses: 2, InChannels: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	clf, err := predict.New(m, []string{"a", "b"}, transform.Preset{Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	clf.MaxInputPixels = 25 * 25
	dir := t.TempDir()
	paths := writeImages(t, dir, 8) // sides 20 to 27
	for _, p := range paths {
		res, err := clf.ClassifyFiles([]string{p}, 1)
		im, _ := data.LoadImage(p, 1)
		fits := im.W*im.H <= clf.MaxInputPixels
		switch {
		case fits && (err != nil || len(res) != 1):
			t.Errorf("%dx%d within the limit: %v", im.W, im.H, err)
		case !fits && (err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "limit of 625 pixels")):
			t.Errorf("%dx%d beyond the limit: error %v", im.W, im.H, err)
		}
	}
}

// TestReadClassIndicesDefaults checks the names of classes without a class
// file: ImageNet's for 1000 outputs, numbered otherwise.
func TestReadClassIndicesDefaults(t *testing.T) {
	if names, err := predict.ReadClassIndices("", 1000); err != nil || len(names) != 1000 || names[0] != resnet.ImageNetClasses()[0] {
		t.Errorf("1000 classes: %d names, %v", len(names), err)
	}
	if names, err := predict.ReadClassIndices("", 3); err != nil || !slices.Equal(names, []string{"class 0", "class 1", "class 2"}) {
		t.Errorf("3 classes: %v, %v", names, err)
	}
}

// TestClassifiersConcurrent runs two Classifiers of one checkpoint on one
// backend from four goroutines (two each, taking turns on their
// classifier): the results are those of classifying alone, as the package
// doc promises. Run it with -race.
func TestClassifiersConcurrent(t *testing.T) {
	b, err := backend.Default()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m, pre := flowerModel(t, b)
	path := filepath.Join(dir, "best.safetensors")
	if err := modelfile.Write(path, m, modelfile.Meta{Arch: "resnet20", NumClasses: 3, InChannels: 3, Classes: flowers, Preprocess: pre}, nil); err != nil {
		t.Fatal(err)
	}
	paths := writeImages(t, dir, 6)
	want := reference(t, m, flowers, pre, 8, paths)
	var wg sync.WaitGroup
	for range 2 {
		clf, err := predict.Load(path, predict.WithBackend(b))
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex // the goroutines of one classifier take turns
		for range 2 {
			wg.Go(func() {
				for range 3 {
					mu.Lock()
					got, err := clf.ClassifyFiles(paths, 2)
					mu.Unlock()
					if err != nil {
						t.Error(err)
						return
					}
					sameResults(t, "concurrent", got, want)
				}
			})
		}
	}
	wg.Wait()
}
