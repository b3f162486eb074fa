package checkpoint

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.bin")
	if err := WriteFileAtomic(path, func(w io.Writer) error {
		_, err := io.WriteString(w, "first")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "first" {
		t.Fatalf("content %q", b)
	}
	os.Chmod(path, 0o600)

	// A failing writer leaves the old file and no temporary file.
	boom := errors.New("boom")
	err := WriteFileAtomic(path, func(w io.Writer) error {
		io.WriteString(w, "partial")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
	// So does a panicking one.
	func() {
		defer func() { recover() }()
		WriteFileAtomic(path, func(w io.Writer) error { panic("oops") })
	}()
	if b, _ := os.ReadFile(path); string(b) != "first" {
		t.Fatalf("content after failures %q", b)
	}
	if err := WriteFileAtomic(path, func(w io.Writer) error {
		_, err := io.WriteString(w, "second")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "second" {
		t.Fatalf("content %q", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want the replaced file's 0600", fi.Mode())
	}
	assertFiles(t, dir, "out.bin")

	if err := WriteFileAtomic(filepath.Join(dir, "no/such/dir/x"), func(io.Writer) error { return nil }); err == nil {
		t.Error("missing directory: no error")
	}
}

// assertFiles checks that dir holds exactly the named files.
func assertFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

// weightsServer serves files from a map and counts requests.
func weightsServer(t *testing.T, files map[string][]byte) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestDownloadWeights(t *testing.T) {
	good := make([]byte, 3<<20) // several progress steps
	for i := range good {
		good[i] = byte(i * 7)
	}
	sum := sha256.Sum256(good)
	prefix := hex.EncodeToString(sum[:])[:8]
	file := "tiny-" + prefix + ".pth"
	corrupt := append([]byte(nil), good...)
	corrupt[12345] ^= 1
	srv, hits := weightsServer(t, map[string][]byte{
		"/models/" + file:            good,
		"/corrupt/" + file:           corrupt,
		"/resnet18-f37072fd.pth":     []byte("not the real resnet18"),
		"/models/other-00000000.pth": good,
	})
	w := Weights{Name: "tiny.TEST", File: file, SHA256Prefix: prefix}
	ctx := context.Background()

	t.Run("good", func(t *testing.T) {
		dir := t.TempDir()
		var progress strings.Builder
		path, err := DownloadWeights(ctx, w, dir, srv.URL+"/models/", &progress)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); path != filepath.Join(dir, file) || string(b) != string(good) {
			t.Fatalf("path %s or content wrong", path)
		}
		if !strings.Contains(progress.String(), "downloading") || !strings.Contains(progress.String(), "100%") {
			t.Errorf("progress output:\n%s", progress.String())
		}
		assertFiles(t, dir, file)
		// The cached file is reused without the network.
		before := hits.Load()
		if path2, err := DownloadWeights(ctx, w, dir, "http://127.0.0.1:1/unreachable", nil); err != nil || path2 != path {
			t.Fatalf("cached: %v", err)
		}
		if hits.Load() != before {
			t.Error("cached file was downloaded again")
		}
		// A cached file that no longer matches is removed and reported.
		os.WriteFile(path, []byte("bit rot"), 0o644)
		_, err = DownloadWeights(ctx, w, dir, srv.URL+"/models", nil)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), prefix) {
			t.Fatalf("corrupt cache: error %v", err)
		}
		assertFiles(t, dir)
		if _, err := DownloadWeights(ctx, w, dir, srv.URL+"/models", nil); err != nil {
			t.Fatalf("download after corrupt cache: %v", err)
		}
	})

	t.Run("corrupt", func(t *testing.T) {
		dir := t.TempDir()
		_, err := DownloadWeights(ctx, w, dir, srv.URL+"/corrupt", nil)
		bad := sha256.Sum256(corrupt)
		for _, s := range []string{file, "expected prefix " + prefix, hex.EncodeToString(bad[:])} {
			if err == nil || !strings.Contains(err.Error(), s) {
				t.Errorf("error %v, want it to contain %q", err, s)
			}
		}
		assertFiles(t, dir)
	})

	t.Run("404", func(t *testing.T) {
		dir := t.TempDir()
		_, err := DownloadWeights(ctx, w, dir, srv.URL+"/nothing-here", nil)
		if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), file) {
			t.Errorf("error %v", err)
		}
		assertFiles(t, dir)
	})

	t.Run("by name", func(t *testing.T) {
		dir := t.TempDir()
		_, err := Download(ctx, "resnet18", dir, srv.URL, nil)
		if err == nil || !strings.Contains(err.Error(), "resnet18-f37072fd.pth") || !strings.Contains(err.Error(), "expected prefix f37072fd") {
			t.Errorf("error %v", err)
		}
		assertFiles(t, dir)
		if _, err := Download(ctx, "resnet19", dir, srv.URL, nil); err == nil || !strings.Contains(err.Error(), "resnet19") {
			t.Errorf("unknown name: error %v", err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		dir := t.TempDir()
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := DownloadWeights(cctx, w, dir, srv.URL+"/models", nil); !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
		assertFiles(t, dir)
	})
}

func TestDefaultCacheDir(t *testing.T) {
	t.Setenv("RESGO_CACHE", "/some/where")
	if d, err := DefaultCacheDir(); err != nil || d != "/some/where" {
		t.Errorf("with RESGO_CACHE: %q, %v", d, err)
	}
	t.Setenv("RESGO_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if d, err := DefaultCacheDir(); runtime.GOOS == "linux" && (err != nil || d != "/xdg/resgo") {
		t.Errorf("without RESGO_CACHE: %q, %v", d, err)
	}
}

func TestLookupWeights(t *testing.T) {
	for name, want := range map[string]string{
		"resnet18":                       "resnet18-f37072fd.pth",
		"resnet34":                       "resnet34-b627a593.pth",
		"resnet34.LEGACY":                "resnet34-333f7ec4.pth",
		"resnet34-333f7ec4.pth":          "resnet34-333f7ec4.pth",
		"resnet34-333f7ec4":              "resnet34-333f7ec4.pth",
		"resnet50":                       "resnet50-11ad3fa6.pth",
		"resnet50.DEFAULT":               "resnet50-11ad3fa6.pth",
		"resnet50.IMAGENET1K_V1":         "resnet50-0676ba61.pth",
		"ResNet50.imagenet1k_v2":         "resnet50-11ad3fa6.pth",
		"resnext101_64x4d":               "resnext101_64x4d-173b62eb.pth",
		"wide_resnet101_2":               "wide_resnet101_2-d733dc28.pth",
		"wide_resnet101_2.IMAGENET1K_V1": "wide_resnet101_2-32ee1156.pth",
	} {
		w, err := LookupWeights(name)
		if err != nil || w.File != want {
			t.Errorf("LookupWeights(%q) = %s, %v; want %s", name, w.File, err, want)
		}
	}
	for _, name := range []string{"", "resnet", "resnet50.IMAGENET1K_V3", "resnet18.IMAGENET1K_V2"} {
		if _, err := LookupWeights(name); err == nil {
			t.Errorf("LookupWeights(%q): no error", name)
		}
	}
}

func TestWeightsTable(t *testing.T) {
	defaults := map[string]int{}
	fileRE := regexp.MustCompile(`^[a-z0-9_]+-([0-9a-f]{8})\.pth$`)
	for _, w := range AllWeights() {
		m := fileRE.FindStringSubmatch(w.File)
		if m == nil || m[1] != w.SHA256Prefix || !strings.HasPrefix(w.File, w.Arch+"-") {
			t.Errorf("%s: file %s, prefix %s", w.Name, w.File, w.SHA256Prefix)
		}
		if w.URL() != "https://download.pytorch.org/models/"+w.File {
			t.Errorf("%s: URL %s", w.Name, w.URL())
		}
		wantResize := 256
		if w.Tag == "IMAGENET1K_V2" || w.Arch == "resnext101_64x4d" {
			wantResize = 232
		}
		if w.ResizeSize != wantResize || w.CropSize != 224 || w.Mean != ImageNetMean || w.Std != ImageNetStd {
			t.Errorf("%s: preprocessing %d/%d %v %v", w.Name, w.ResizeSize, w.CropSize, w.Mean, w.Std)
		}
		if w.Acc1 < 69 || w.Acc1 > 84 || w.Acc5 < w.Acc1 || w.Params < 11_000_000 {
			t.Errorf("%s: acc %v/%v params %d", w.Name, w.Acc1, w.Acc5, w.Params)
		}
		if w.Default {
			defaults[w.Arch]++
		}
		if got, err := LookupWeights(w.Name); err != nil || got != w {
			t.Errorf("LookupWeights(%s) = %v, %v", w.Name, got, err)
		}
	}
	if len(defaults) != 10 {
		t.Errorf("%d architectures with a default, want 10: %v", len(defaults), defaults)
	}
	for arch, n := range defaults {
		if n != 1 {
			t.Errorf("%s has %d defaults", arch, n)
		}
	}
}
