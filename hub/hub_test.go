package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/resgo/resgo/models/resnet"
)

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
	t.Setenv("TORCH_HOME", t.TempDir()) // not this machine's PyTorch cache
	good := make([]byte, 3<<20)         // several progress steps
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
	w := resnet.Weights{Name: "tiny.TEST", File: file, SHA256Prefix: prefix}
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

// TestDownloadTooLarge checks that a server sending more than the weights
// can take (announced or not) fills neither the disk nor the cache.
func TestDownloadTooLarge(t *testing.T) {
	t.Setenv("TORCH_HOME", t.TempDir()) // not this machine's PyTorch cache
	w := resnet.Weights{Name: "tiny.TEST", File: "tiny-00000000.pth", SHA256Prefix: "00000000", Params: 1000}
	limit := downloadLimit(w)
	if limit != 5*1000+16<<20 {
		t.Fatalf("limit %d", limit)
	}
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/announced/"+w.File {
			rw.Header().Set("Content-Length", strconv.FormatInt(1<<40, 10))
			rw.WriteHeader(http.StatusOK)
			return
		}
		// No Content-Length: chunked, endless until the client stops.
		chunk := make([]byte, 1<<20)
		for sent.Load() < 4*limit {
			if _, err := rw.Write(chunk); err != nil {
				return
			}
			sent.Add(int64(len(chunk)))
		}
	}))
	t.Cleanup(srv.Close)
	for _, c := range []struct{ path, want string }{
		{"/announced", "is 1099511627776 bytes, more than the 16782216 weights tiny.TEST may take"},
		{"/endless", "sent more than the 16782216 bytes weights tiny.TEST may take"},
	} {
		dir := t.TempDir()
		_, err := DownloadWeights(context.Background(), w, dir, srv.URL+c.path, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), w.File) {
			t.Errorf("%s: error %v, want %q", c.path, err, c.want)
		}
		assertFiles(t, dir)
	}
	if s := sent.Load(); s > 2*limit {
		t.Errorf("the client read %d bytes of an endless download", s)
	}
}

func TestTorchCacheDir(t *testing.T) {
	t.Setenv("TORCH_HOME", "/th")
	if d, err := TorchCacheDir(); err != nil || d != "/th/hub/checkpoints" {
		t.Errorf("with TORCH_HOME: %q, %v", d, err)
	}
	t.Setenv("TORCH_HOME", "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if d, err := TorchCacheDir(); err != nil || d != "/xdg/torch/hub/checkpoints" {
		t.Errorf("with XDG_CACHE_HOME: %q, %v", d, err)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/home/someone")
	if d, err := TorchCacheDir(); runtime.GOOS == "linux" && (err != nil || d != "/home/someone/.cache/torch/hub/checkpoints") {
		t.Errorf("default: %q, %v", d, err)
	}
}

// TestFindAndOffline checks that weights are found in resgo's cache and in
// PyTorch's, only with their published hash, and that without them and
// without a network the error says where to put the file.
func TestFindAndOffline(t *testing.T) {
	good := []byte("weights fetched by other means")
	sum := sha256.Sum256(good)
	prefix := hex.EncodeToString(sum[:])[:8]
	w := resnet.Weights{Name: "tiny.TEST", File: "tiny-" + prefix + ".pth", SHA256Prefix: prefix}
	ours, torchHome := t.TempDir(), t.TempDir()
	t.Setenv("TORCH_HOME", torchHome)
	torchDir := filepath.Join(torchHome, "hub", "checkpoints")
	ctx := context.Background()

	// Nowhere, offline: both places, the file name and its address.
	_, err := Find(w, ours)
	for _, s := range []string{"resgo weights download tiny.TEST", w.URL(), filepath.Join(ours, w.File), filepath.Join(torchDir, w.File), prefix} {
		if !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), s) {
			t.Errorf("not cached: error %v, want ErrNotCached and %q", err, s)
		}
	}
	_, err = DownloadWeights(ctx, w, ours, "http://127.0.0.1:1/models", nil)
	for _, s := range []string{"without a network", "http://127.0.0.1:1/models/" + w.File, filepath.Join(ours, w.File), filepath.Join(torchDir, w.File)} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("offline download: error %v, want %q", err, s)
		}
	}

	// In PyTorch's cache: used where it is, by Find and by a download.
	if err := os.MkdirAll(torchDir, 0o755); err != nil {
		t.Fatal(err)
	}
	inTorch := filepath.Join(torchDir, w.File)
	if err := os.WriteFile(inTorch, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := Find(w, ours); err != nil || p != inTorch {
		t.Errorf("in PyTorch's cache: %q, %v", p, err)
	}
	var progress strings.Builder
	if p, err := DownloadWeights(ctx, w, ours, "http://127.0.0.1:1/models", &progress); err != nil || p != inTorch || !strings.Contains(progress.String(), "using PyTorch's cached") {
		t.Errorf("download with PyTorch's copy: %q, %v\n%s", p, err, progress.String())
	}
	assertFiles(t, ours)

	// A different file under the name: refused, and left alone (it is
	// PyTorch's); a download goes past it.
	if err := os.WriteFile(inTorch, []byte("something else"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Find(w, ours); err == nil || errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), inTorch) || !strings.Contains(err.Error(), "starts with "+prefix) {
		t.Errorf("a different file in PyTorch's cache: error %v", err)
	}
	srv, _ := weightsServer(t, map[string][]byte{"/models/" + w.File: good})
	progress.Reset()
	if p, err := DownloadWeights(ctx, w, ours, srv.URL+"/models", &progress); err != nil || p != filepath.Join(ours, w.File) || !strings.Contains(progress.String(), "not using "+inTorch) {
		t.Errorf("download past a bad PyTorch copy: %q, %v\n%s", p, err, progress.String())
	}
	if b, _ := os.ReadFile(inTorch); string(b) != "something else" {
		t.Error("PyTorch's cached file was changed")
	}
	// resgo's own cache comes first.
	if p, err := Find(w, ours); err != nil || p != filepath.Join(ours, w.File) {
		t.Errorf("in resgo's cache: %q, %v", p, err)
	}
}
