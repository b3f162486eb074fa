// Package hub fetches torchvision's published weights files into a local
// cache and checks their SHA-256, as torch.hub does.
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
// DefaultCacheDir()), downloading it from baseURL ("" means resnet.DefaultBaseURL)
// if it is not cached.
//
// A download larger than the weights can take (5 bytes a parameter plus
// 16 MiB; 2 GiB when the parameter count is unknown) is refused, before it
// starts when the server announces its size.
//
// The download goes to a temporary file in cacheDir while its SHA-256 is
// computed; only a file whose hex digest starts with w.SHA256Prefix is
// renamed into place. A cached file is verified the same way on every call;
// one that fails is removed and reported as an error, so the next call
// downloads it afresh. Progress lines go to progress unless it is nil.
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
	if f, err := os.Open(dst); err == nil {
		h := sha256.New()
		_, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("hub: %s: %w", dst, err)
		}
		sum := hex.EncodeToString(h.Sum(nil))
		if !strings.HasPrefix(sum, w.SHA256Prefix) {
			os.Remove(dst)
			return "", fmt.Errorf("hub: %s: cached file has SHA-256 %s, expected prefix %s; removed it, run again to download it afresh", dst, sum, w.SHA256Prefix)
		}
		fmt.Fprintf(progress, "%s: using cached %s\n", w.File, dst)
		return dst, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("hub: %w", err)
	}

	url := strings.TrimSuffix(baseURL, "/") + "/" + w.File
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("hub: %s: %w", w.File, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("hub: %s: downloading: %w", w.File, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("hub: %s: downloading %s: %s", w.File, url, resp.Status)
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
