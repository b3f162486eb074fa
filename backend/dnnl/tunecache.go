//go:build cgo

package dnnl

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/resgo/resgo/internal/atomicfile"
)

// The autotuner's cache. Under RESGO_CONV=auto each choice between the
// direct and the Winograd form of a convolution pass is also written to a
// file, and a later process on the same machine takes it from there
// instead of timing the two forms again: its first step is not slowed by
// the timing, and it runs the same kernels, so a run repeated (or resumed)
// on the machine rounds as it did. RESGO_TUNE_CACHE names the file, or
// "off" turns the cache off; by default it is conv-tune.json in resgo's
// folder of the user's cache directory (~/.cache/resgo on Linux).
//
// An entry's key is everything the timing depended on: the CPU's model
// name, oneDNN's version and ISA, the thread count, the pass, the shape
// and the two implementations. A file that cannot be read or parsed, or
// is larger than maxTuneCacheBytes, is taken as empty and replaced at the
// next new entry; a failure to write it is ignored (the choice still holds
// for this process).

// maxTuneCacheBytes bounds the cache file read; maxTuneEntries the entries
// kept (past it the cache starts over). A network's passes take a few
// dozen entries of about 200 bytes.
const (
	maxTuneCacheBytes = 4 << 20
	maxTuneEntries    = 8192
)

// tuneEntry is one cached choice: the times measured and the form kept.
type tuneEntry struct {
	Direct   float64 `json:"direct_ms"`
	Winograd float64 `json:"winograd_ms"`
	Chose    string  `json:"chose"`
}

// tuneFile is the cache file's content.
type tuneFile struct {
	Entries map[string]tuneEntry `json:"entries"`
}

// tuneCache is the autotuner's cache of one backend, loaded on first use.
type tuneCache struct {
	path    string // "" when off
	loaded  bool
	entries map[string]tuneEntry
}

// tuneCachePath returns the cache file RESGO_TUNE_CACHE names, the default
// one, or "" when the cache is off or there is no user cache directory.
func tuneCachePath() string {
	switch v := os.Getenv("RESGO_TUNE_CACHE"); v {
	case "off":
		return ""
	case "":
		dir, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		return filepath.Join(dir, "resgo", "conv-tune.json")
	default:
		return v
	}
}

// load reads the file on first use.
func (c *tuneCache) load() {
	if !c.loaded {
		c.loaded, c.entries = true, readTuneCache(c.path)
	}
}

// get returns the cached choice of key.
func (c *tuneCache) get(key string) (tuneEntry, bool) {
	if c.path == "" {
		return tuneEntry{}, false
	}
	c.load()
	e, ok := c.entries[key]
	return e, ok && (e.Chose == ConvDirect || e.Chose == ConvWinograd)
}

// put records the choice of key and rewrites the file.
func (c *tuneCache) put(key string, e tuneEntry) {
	if c.path == "" {
		return
	}
	c.load()
	if len(c.entries) >= maxTuneEntries {
		c.entries = map[string]tuneEntry{}
	}
	c.entries[key] = e
	if os.MkdirAll(filepath.Dir(c.path), 0o755) != nil {
		return
	}
	_ = atomicfile.Write(c.path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(tuneFile{Entries: c.entries})
	})
}

// readTuneCache returns the entries of the cache file at path, or none if
// it is missing, too large or not a cache file.
func readTuneCache(path string) map[string]tuneEntry {
	f, err := os.Open(path)
	if err != nil {
		return map[string]tuneEntry{}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTuneCacheBytes+1))
	var tf tuneFile
	if err != nil || len(data) > maxTuneCacheBytes || json.Unmarshal(data, &tf) != nil || tf.Entries == nil || len(tf.Entries) > maxTuneEntries {
		return map[string]tuneEntry{}
	}
	return tf.Entries
}

// tuneKey is the cache key of a choice for pass and shape between the
// implementations direct and win, on this machine and thread count.
func tuneKey(threads int, pass, shape, direct, win string) string {
	return strings.Join([]string{cpuModel(), "oneDNN " + Version(), ISA(), strconv.Itoa(threads) + " threads", pass, shape, direct, win}, " | ")
}

// cpuModel returns the CPU's model name from /proc/cpuinfo ("" where there
// is none).
var cpuModel = sync.OnceValue(func() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
})
