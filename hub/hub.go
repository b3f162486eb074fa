// Package hub fetches torchvision's published weights files into a local
// cache and checks their SHA-256, as torch.hub does, and finds them there
// or in PyTorch's own cache (~/.cache/torch/hub/checkpoints).
package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/resgo/resgo/internal/atomicfile"
	"github.com/resgo/resgo/models/resnet"
)

// DefaultCacheDir returns the directory downloaded weights are kept in:
// $RESGO_CACHE if set, otherwise the "resgo" folder of the user's cache
// directory (os.UserCacheDir, e.g. ~/.cache/resgo).
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("RESGO_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("hub: no cache directory (set RESGO_CACHE): %w", err)
	}
	return filepath.Join(d, "resgo"), nil
}

// TorchCacheDir returns the folder where PyTorch's torch.hub keeps the
// weights it downloads (torch.hub.get_dir() + "/checkpoints"):
// $TORCH_HOME/hub/checkpoints, else $XDG_CACHE_HOME/torch/hub/checkpoints,
// else ~/.cache/torch/hub/checkpoints. resgo uses a file there, checked,
// rather than downloading it again.
func TorchCacheDir() (string, error) {
	home := os.Getenv("TORCH_HOME")
	if home == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			h, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("hub: no home directory for PyTorch's cache (set TORCH_HOME): %w", err)
			}
			cache = filepath.Join(h, ".cache")
		}
		home = filepath.Join(cache, "torch")
	}
	return filepath.Join(home, "hub", "checkpoints"), nil
}

// FileSHA256 returns the hex SHA-256 digest of a file's contents.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hub: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hub: %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ErrNotCached is wrapped by Find's error when no cache holds the file.
var ErrNotCached = errors.New("not downloaded")

// Find returns the path of w's file in resgo's cache (cacheDir, "" for
// DefaultCacheDir()) or, failing that, in PyTorch's (TorchCacheDir), after
// checking that its SHA-256 starts with w.SHA256Prefix. A file whose hash
// differs is an error naming it (it is left where it is); no file at all is
// an error wrapping ErrNotCached that says how to get it, online or not.
func Find(w resnet.Weights, cacheDir string) (string, error) {
	dirs, err := cacheDirs(cacheDir)
	if err != nil {
		return "", err
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, w.File)
		sum, err := FileSHA256(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(sum, w.SHA256Prefix) {
			return "", fmt.Errorf("hub: %s has SHA-256 %s, torchvision's %s starts with %s: a damaged or different file (remove it and run `resgo weights download %s`)",
				p, sum, w.File, w.SHA256Prefix, w.Name)
		}
		return p, nil
	}
	return "", fmt.Errorf("hub: weights %s: %w: run `resgo weights download %s`, or %s", w.Name, ErrNotCached, w.Name, placeHint(w, w.URL(), dirs))
}

// placeHint says where to put w's file fetched from url by other means.
func placeHint(w resnet.Weights, url string, dirs []string) string {
	paths := make([]string, len(dirs))
	for i, d := range dirs {
		paths[i] = filepath.Join(d, w.File)
	}
	return fmt.Sprintf("fetch %s by other means and save it as %s (its SHA-256 must start with %s)",
		url, strings.Join(paths, " or "), w.SHA256Prefix)
}

// cacheDirs returns the folders weights are looked for in: resgo's cache
// (cacheDir, or DefaultCacheDir() when empty) and PyTorch's.
func cacheDirs(cacheDir string) ([]string, error) {
	if cacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		cacheDir = d
	}
	torch, err := TorchCacheDir()
	if err != nil {
		return nil, err
	}
	if filepath.Clean(torch) == filepath.Clean(cacheDir) {
		return []string{cacheDir}, nil
	}
	return []string{cacheDir, torch}, nil
}

// Limits on a download, so that a wrong or hostile server cannot fill the
// disk: a weights file holds its float32 parameters and BatchNorm's
// buffers, 4.0 to 4.1 bytes a parameter (resnet50-11ad3fa6.pth:
// 102,530,333 bytes for 25,557,032 parameters), plus a pickle of some
// kilobytes.
const (
	// downloadBytesPerParam and downloadSlack bound a file whose
	// parameter count the weights table gives: 5 bytes a parameter plus
	// 16 MiB.
	downloadBytesPerParam = 5
	downloadSlack         = 16 << 20
	// maxDownloadBytes bounds a file whose parameter count is not known:
	// 2 GiB, four times torchvision's largest ResNet file
	// (wide_resnet101_2, 127M parameters, 507 MB).
	maxDownloadBytes = 2 << 30
)

// downloadLimit returns the largest size a download of w may have.
func downloadLimit(w resnet.Weights) int64 {
	if w.Params > 0 {
		return downloadBytesPerParam*int64(w.Params) + downloadSlack
	}
	return maxDownloadBytes
}

// Download returns the path of the named weights file (see
// resnet.LookupWeights for names) in cacheDir, downloading it first if it is
// not there. See DownloadWeights.
func Download(ctx context.Context, name, cacheDir, baseURL string, progress io.Writer) (string, error) {
	w, err := resnet.LookupWeights(name)
	if err != nil {
		return "", err
	}
	return DownloadWeights(ctx, w, cacheDir, baseURL, progress)
}

// DownloadWeights returns the path of w.File in cacheDir ("" means
// DefaultCacheDir()) or in PyTorch's cache (TorchCacheDir), downloading it
// into cacheDir from baseURL ("" means resnet.DefaultBaseURL) if neither
// has it. A download that fails (offline, say) says where to put the file
// fetched by other means.
//
// A download larger than the weights can take (5 bytes a parameter plus
// 16 MiB; 2 GiB when the parameter count is unknown) is refused, before it
// starts when the server announces its size.
//
// The download goes to a temporary file in cacheDir while its SHA-256 is
// computed; only a file whose hex digest starts with w.SHA256Prefix is
// renamed into place. A cached file is verified the same way on every call;
// one in cacheDir that fails is removed and reported as an error, so the
// next call downloads it afresh; one in PyTorch's cache that fails is
// reported on progress, left alone, and the file downloaded into cacheDir.
// Progress lines go to progress unless it is nil.
func DownloadWeights(ctx context.Context, w resnet.Weights, cacheDir, baseURL string, progress io.Writer) (string, error) {
	if progress == nil {
		progress = io.Discard
	}
	if cacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return "", err
		}
		cacheDir = d
	}
	if baseURL == "" {
		baseURL = resnet.DefaultBaseURL
	}
	if w.File == "" || w.SHA256Prefix == "" || strings.ContainsAny(w.File, `/\`) {
		return "", fmt.Errorf("hub: weights %q: bad file name %q or hash prefix %q", w.Name, w.File, w.SHA256Prefix)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("hub: cache directory: %w", err)
	}
	dst := filepath.Join(cacheDir, w.File)

	// A cached file is used only if it still has the published hash.
	sum, err := FileSHA256(dst)
	switch {
	case err == nil && strings.HasPrefix(sum, w.SHA256Prefix):
		fmt.Fprintf(progress, "%s: using cached %s\n", w.File, dst)
		return dst, nil
	case err == nil:
		os.Remove(dst)
		return "", fmt.Errorf("hub: %s: cached file has SHA-256 %s, expected prefix %s; removed it, run again to download it afresh", dst, sum, w.SHA256Prefix)
	case !errors.Is(err, os.ErrNotExist):
		return "", err
	}
	// PyTorch's cache: used if good, never changed.
	dirs, err := cacheDirs(cacheDir)
	if err != nil {
		return "", err
	}
	for _, dir := range dirs[1:] {
		p := filepath.Join(dir, w.File)
		sum, err := FileSHA256(p)
		switch {
		case err == nil && strings.HasPrefix(sum, w.SHA256Prefix):
			fmt.Fprintf(progress, "%s: using PyTorch's cached %s\n", w.File, p)
			return p, nil
		case err == nil:
			fmt.Fprintf(progress, "%s: not using %s: its SHA-256 %s does not start with %s\n", w.File, p, sum, w.SHA256Prefix)
		case !errors.Is(err, os.ErrNotExist):
			fmt.Fprintf(progress, "%s: not using %s: %v\n", w.File, p, err)
		}
	}

	url := strings.TrimSuffix(baseURL, "/") + "/" + w.File
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("hub: %s: %w", w.File, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("hub: %s: downloading: %w", w.File, err)
		}
		return "", fmt.Errorf("hub: %s: downloading: %w; without a network, %s", w.File, err, placeHint(w, url, dirs))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("hub: %s: downloading %s: %s; %s", w.File, url, resp.Status, placeHint(w, url, dirs))
	}
	limit := downloadLimit(w)
	if resp.ContentLength > limit {
		return "", fmt.Errorf("hub: %s: %s is %d bytes, more than the %d weights %s may take (nothing was cached)", w.File, url, resp.ContentLength, limit, w.Name)
	}
	fmt.Fprintf(progress, "%s: downloading %s\n", w.File, url)
	err = atomicfile.Write(dst, func(out io.Writer) error {
		h := sha256.New()
		p := &progressWriter{w: progress, file: w.File, total: resp.ContentLength}
		n, err := io.Copy(io.MultiWriter(out, h, p), io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return fmt.Errorf("hub: %s: downloading %s: %w", w.File, url, err)
		}
		if n > limit {
			return fmt.Errorf("hub: %s: %s sent more than the %d bytes weights %s may take (nothing was cached)", w.File, url, limit, w.Name)
		}
		sum := hex.EncodeToString(h.Sum(nil))
		if !strings.HasPrefix(sum, w.SHA256Prefix) {
			return fmt.Errorf("hub: %s: SHA-256 mismatch: expected prefix %s, got %s (downloaded from %s; nothing was cached)", w.File, w.SHA256Prefix, sum, url)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	fmt.Fprintf(progress, "%s: saved %s\n", w.File, dst)
	return dst, nil
}

// progressWriter reports a download's progress every 10 percent (every
// 16 MiB when the size is unknown).
type progressWriter struct {
	w     io.Writer
	file  string
	total int64 // -1 when unknown
	done  int64
	step  int64 // last step reported
}

// Write counts b and reports progress; it never fails.
func (p *progressWriter) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	const mib = 1 << 20
	if p.total > 0 {
		if step := p.done * 10 / p.total; step > p.step {
			p.step = step
			fmt.Fprintf(p.w, "%s: %3d%% (%.1f / %.1f MiB)\n", p.file, step*10, float64(p.done)/mib, float64(p.total)/mib)
		}
	} else if step := p.done / (16 * mib); step > p.step {
		p.step = step
		fmt.Fprintf(p.w, "%s: %.1f MiB\n", p.file, float64(p.done)/mib)
	}
	return len(b), nil
}
