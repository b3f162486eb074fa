package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/predict"
	"github.com/resgo/resgo/transform"
)

// tinyModelFile writes a resgo model file of an untrained ResNet-20 on 8x8
// inputs with four classes.
func tinyModelFile(t *testing.T, dir string) string {
	t.Helper()
	return modelFileWith(t, dir, transform.Preset{ResizeSize: 8, CropSize: 8, Channels: 3, Norm: transform.ImageNet})
}

// modelFileWith writes a resgo model file of an untrained four-class
// ResNet-20 with the preprocessing pre.
func modelFileWith(t *testing.T, dir string, pre transform.Preset) string {
	t.Helper()
	b, err := backend.Default()
	if err != nil {
		t.Fatal(err)
	}
	m, err := resnet.New(b, "resnet20", resnet.Options{IncludeTop: true, NumClasses: 4, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tiny.safetensors")
	meta := modelfile.Meta{Arch: "resnet20", NumClasses: 4, InChannels: 3, Classes: []string{"w", "x", "y", "z"}, Preprocess: pre}
	if err := modelfile.Write(path, m, meta, nil); err != nil {
		t.Fatal(err)
	}
	return path
}

// writePNG writes a w x h PNG of noise, semi-transparent when alpha is set.
func writePNG(t *testing.T, path string, w, h int, seed uint64, alpha bool) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(r.IntN(256))
		if i%4 == 3 && !alpha {
			img.Pix[i] = 255
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// bombPNG writes a small PNG whose header declares w x h.
func bombPNG(t *testing.T, path string, w, h int) {
	t.Helper()
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 4, 4)))
	raw := buf.Bytes()
	binary.BigEndian.PutUint32(raw[16:], uint32(w))
	binary.BigEndian.PutUint32(raw[20:], uint32(h))
	binary.BigEndian.PutUint32(raw[29:], crc32.ChecksumIEEE(raw[12:29]))
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// runPredict runs resgo predict and returns its standard output and error
// separately.
func runPredict(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := predictCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

// unstreamed is what predict printed before it streamed: every readable
// image decoded first, classified at once, then printed (one image:
// predict.py's format; several: sorted by path; JSON: in order).
func unstreamed(t *testing.T, weights string, batch, topk int, asJSON bool, paths []string) string {
	t.Helper()
	clf, err := loadClassifier("", weights, "")
	if err != nil {
		t.Fatal(err)
	}
	clf.Batch = batch
	var images []*transform.Image
	var names []string
	for _, p := range paths {
		if im, err := data.LoadImage(p, 3); err == nil {
			images, names = append(images, im), append(names, p)
		}
	}
	results, err := clf.Classify(images, names, topk)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	switch {
	case asJSON:
		for _, r := range results {
			json.NewEncoder(&out).Encode(r)
		}
	case len(results) == 1:
		fmt.Fprintf(&out, "image: %s\n", results[0].Image)
		for _, c := range results[0].Top {
			fmt.Fprintf(&out, "class: %-10s   prob: %.3g\n", c.Name, c.Prob)
		}
	default:
		sort.SliceStable(results, func(i, j int) bool { return results[i].Image < results[j].Image })
		for _, r := range results {
			fmt.Fprintf(&out, "image: %s  class: %s  prob: %.3g\n", r.Image, r.Top[0].Name, r.Top[0].Prob)
		}
	}
	return out.String()
}

// TestPredictStreamsSameOutput predicts a folder of 30 images (some
// semi-transparent, one corrupt, one a decompression bomb) in batches of
// 4, in text and JSON, a list of files out of order, one file, and one
// readable file among broken ones: the output is what decoding everything
// first gave, and the broken files are reported on stderr.
func TestPredictStreamsSameOutput(t *testing.T) {
	dir := t.TempDir()
	weights := tinyModelFile(t, dir)
	photos := filepath.Join(dir, "photos")
	os.MkdirAll(filepath.Join(photos, "sub"), 0o755)
	for i := range 28 {
		sub := ""
		if i%3 == 0 {
			sub = "sub"
		}
		writePNG(t, filepath.Join(photos, sub, fmt.Sprintf("p%02d.png", i)), 10+i%9, 12+i%4, uint64(i), i%2 == 0)
	}
	os.WriteFile(filepath.Join(photos, "corrupt.png"), []byte("not a png"), 0o644)
	bombPNG(t, filepath.Join(photos, "bomb.png"), 60000, 60000)
	paths, err := data.ListImages([]string{photos})
	if err != nil || len(paths) != 30 {
		t.Fatalf("%d images: %v", len(paths), err)
	}

	one := filepath.Join(photos, "p01.png")
	outOfOrder := []string{filepath.Join(photos, "p07.png"), one, filepath.Join(photos, "p05.png"), filepath.Join(photos, "sub", "p03.png")}
	cases := []struct {
		name   string
		json   bool
		args   []string
		broken bool // the corrupt file and the bomb are among them
	}{
		{"folder", false, []string{photos}, true},
		{"folder json", true, []string{photos}, true},
		{"out of order", false, outOfOrder, false},
		{"out of order json", true, outOfOrder, false},
		{"one", false, []string{one}, false},
		{"one readable", false, []string{filepath.Join(photos, "corrupt.png"), one, filepath.Join(photos, "bomb.png")}, true},
	}
	for _, tc := range cases {
		args := []string{"--weights", weights, "--batch", "4", "--topk", "3"}
		if tc.json {
			args = append(args, "--json")
		}
		stdout, stderr, err := runPredict(t, append(args, tc.args...)...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.name, err, stderr)
		}
		files, _ := data.ListImages(tc.args)
		if want := unstreamed(t, weights, 4, 3, tc.json, files); stdout != want {
			t.Errorf("%s: streamed output\n%s\nwant\n%s", tc.name, stdout, want)
		}
		if tc.broken {
			if !strings.Contains(stderr, "resgo: skipping "+filepath.Join(photos, "bomb.png")+": image of 60000x60000 = 3600000000 pixels, more than the limit of 67108864 (--max-pixels)") ||
				!strings.Contains(stderr, "resgo: skipping "+filepath.Join(photos, "corrupt.png")+": not a readable image") {
				t.Errorf("%s: stderr does not report the bomb and the corrupt file:\n%s", tc.name, stderr)
			}
		}
	}
}

// TestPredictMaxPixels lowers --max-pixels below some images' size: those
// are skipped with the limit in the message, the others predicted.
func TestPredictMaxPixels(t *testing.T) {
	defer func() { data.MaxPixels = data.DefaultMaxPixels }()
	dir := t.TempDir()
	weights := tinyModelFile(t, dir)
	small, big := filepath.Join(dir, "small.png"), filepath.Join(dir, "big.png")
	writePNG(t, small, 10, 10, 1, false)
	writePNG(t, big, 20, 10, 2, true)
	stdout, stderr, err := runPredict(t, "--weights", weights, "--max-pixels", "150", "--json", small, big)
	if err != nil {
		t.Fatal(err)
	}
	var r predict.Result
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || r.Image != small || strings.Count(stdout, "\n") != 1 {
		t.Errorf("output %q, want the small image alone (%v)", stdout, err)
	}
	if want := "resgo: skipping " + big + ": image of 20x10 = 200 pixels, more than the limit of 150 (--max-pixels)\n"; stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
	if _, _, err := runPredict(t, "--weights", weights, "--max-pixels", "0", small); err == nil || !strings.Contains(err.Error(), "--max-pixels 0") {
		t.Errorf("--max-pixels 0: %v", err)
	}
}

// TestPredictMaxInputPixels predicts with a model whose preprocessing
// keeps the images' size: an image that would make a model input over
// --max-input-pixels is skipped with the sizes and the limit.
func TestPredictMaxInputPixels(t *testing.T) {
	dir := t.TempDir()
	weights := modelFileWith(t, dir, transform.Preset{Channels: 3, Norm: transform.ImageNet})
	small, big := filepath.Join(dir, "small.png"), filepath.Join(dir, "big.png")
	writePNG(t, small, 12, 10, 1, false)
	writePNG(t, big, 40, 30, 2, false)
	stdout, stderr, err := runPredict(t, "--weights", weights, "--max-input-pixels", "500", "--json", small, big)
	if err != nil {
		t.Fatal(err)
	}
	var r predict.Result
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || r.Image != small || strings.Count(stdout, "\n") != 1 {
		t.Errorf("output %q, want the small image alone (%v)", stdout, err)
	}
	want := "resgo: skipping " + big + ": an image of 40x30 makes a model input of 40x30, more than the limit of 500 pixels (the model's preprocessing does not crop; --max-input-pixels)\n"
	if stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
}

// TestPredictThinImage predicts a 1x65536 image (within the pixel limit)
// with resize 256 and crop 224, where resizing it whole before cropping
// would take 12 GiB: predict computes only the crop.
func TestPredictThinImage(t *testing.T) {
	dir := t.TempDir()
	weights := modelFileWith(t, dir, transform.Preset{ResizeSize: 256, CropSize: 224, Channels: 3, Norm: transform.ImageNet})
	thin := filepath.Join(dir, "thin.png")
	writePNG(t, thin, 1, 65536, 3, false)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	stdout, stderr, err := runPredict(t, "--weights", weights, thin)
	runtime.ReadMemStats(&after)
	if err != nil || !strings.HasPrefix(stdout, "image: "+thin+"\n") {
		t.Fatalf("predict: %v\n%s%s", err, stdout, stderr)
	}
	n := after.TotalAlloc - before.TotalAlloc
	t.Logf("predicting a 1x65536 image allocated %.1f MiB", float64(n)/(1<<20))
	if n > 256<<20 {
		t.Errorf("predicting a 1x65536 image allocated %d MiB", n>>20)
	}
}
