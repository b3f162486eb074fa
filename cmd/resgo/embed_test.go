package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/resgo/resgo/predict"
	"github.com/resgo/resgo/transform"
)

// TestEmbedNumPyAndCSV runs resgo embed on a folder with an unreadable
// file, in both formats, and checks with Debian's NumPy that the .npy is a
// float32 array [images, 64] holding exactly the embeddings predict.Embed
// computes for those images (ResNet-20: 64 features), in the order of the
// .txt beside it, and that the CSV holds the same values.
func TestEmbedNumPyAndCSV(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import numpy").Run(); err != nil {
		err = fmt.Errorf("Debian's python3-numpy is not installed: %v", err)
		if os.Getenv("CI") == "true" || os.Getenv("RESGO_REQUIRE_TORCH") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	weights := modelFileWith(t, dir, transform.Preset{ResizeSize: 12, CropSize: 10, Channels: 3, Norm: transform.ImageNet})
	photos := filepath.Join(dir, "photos")
	if err := os.Mkdir(photos, 0o755); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for i := range 5 {
		p := filepath.Join(photos, fmt.Sprintf("img%d.png", i))
		writePNG(t, p, 14+i, 12, uint64(i), false)
		paths = append(paths, p)
	}
	if err := os.WriteFile(filepath.Join(photos, "broken.png"), []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}

	// What the API computes for the readable images.
	clf, err := predict.Load(weights)
	if err != nil {
		t.Fatal(err)
	}
	var images []*transform.Image
	for _, p := range paths {
		im, err := clf.LoadImage(p)
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, im)
	}
	want, err := clf.Embed(images, paths)
	if err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(dir, "emb.npy")
	stdout, err := run(t, embedCmd(), "--weights", weights, "--batch", "2", "--out", out, photos)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "skipping") || !strings.Contains(stdout, "broken.png") || !strings.Contains(stdout, "float32 array [5, 64]") {
		t.Errorf("output %q", stdout)
	}
	listed, err := os.ReadFile(filepath.Join(dir, "emb.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Split(strings.TrimSuffix(string(listed), "\n"), "\n"); !slices.Equal(got, paths) {
		t.Errorf("emb.txt lists %q, want %q", got, paths)
	}
	py := `import json, sys, numpy; a = numpy.load(sys.argv[1]); print(json.dumps({"dtype": str(a.dtype), "shape": list(a.shape), "values": a.tolist()}))`
	raw, err := exec.Command("/usr/bin/python3", "-c", py, out).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy.load: %v\n%s", err, raw)
	}
	var loaded struct {
		Dtype  string
		Shape  []int
		Values [][]float64
	}
	if err := json.Unmarshal(raw, &loaded); err != nil {
		t.Fatalf("%v in %s", err, raw)
	}
	if loaded.Dtype != "float32" || !slices.Equal(loaded.Shape, []int{5, 64}) {
		t.Fatalf("numpy reads dtype %s, shape %v; want float32 [5 64]", loaded.Dtype, loaded.Shape)
	}
	for i, row := range loaded.Values {
		for j, v := range row {
			if float32(v) != want[i].Features[j] {
				t.Fatalf("row %d (%s) feature %d: numpy reads %v, predict.Embed gives %v", i, paths[i], j, v, want[i].Features[j])
			}
		}
	}

	csvOut := filepath.Join(dir, "emb.csv")
	if _, err := run(t, embedCmd(), "--weights", weights, "--out", csvOut, photos); err != nil {
		t.Fatal(err)
	}
	f, err := os.ReadFile(csvOut)
	if err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(bytes.NewReader(f)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 6 || len(records[0]) != 65 || records[0][0] != "image" || records[0][64] != "f63" {
		t.Fatalf("%d CSV records, header %v", len(records), records[0][:min(3, len(records[0]))])
	}
	for i, rec := range records[1:] {
		if rec[0] != paths[i] {
			t.Errorf("CSV line %d: %s, want %s", i+1, rec[0], paths[i])
		}
		for j, s := range rec[1:] {
			v, err := strconv.ParseFloat(s, 32)
			if err != nil || float32(v) != want[i].Features[j] {
				t.Fatalf("CSV line %d feature %d: %q (%v), want %v", i+1, j, s, err, want[i].Features[j])
			}
		}
	}
}

// TestEmbedRefuses checks the errors of resgo embed's flags and inputs.
func TestEmbedRefuses(t *testing.T) {
	dir := t.TempDir()
	weights := tinyModelFile(t, dir)
	empty := filepath.Join(dir, "nothing.png")
	if err := os.WriteFile(empty, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "parquet"}, "--format parquet: must be npy or csv"},
		{[]string{"--format", "csv", "--out", filepath.Join(dir, "e.npy")}, "is a .npy name, --format says csv"},
		{[]string{"--out", filepath.Join(dir, "e.txt")}, "must not be a .txt"},
		{[]string{"--batch", "0"}, "--batch 0: must be at least 1"},
		{[]string{"--out", filepath.Join(dir, "e.npy")}, "no readable image among 1 files"},
	} {
		args := append([]string{"--weights", weights}, c.args...)
		if _, err := run(t, embedCmd(), append(args, empty)...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "e.npy")); err == nil {
		t.Error("an .npy was written without any image")
	}
}
