// Package atomicfile writes files so that readers never see a partial write,
// and cleans up the temporary files of writes that a killed process left.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Write writes a file so that readers see either the old file or the
// complete new one, never a partial write: write fills a temporary file in
// the same directory (buffered; see IsTemp for its name), which is then
// flushed, synced to disk and renamed over path. If write returns an error (returned as is) or anything
// else fails, the temporary file is removed and path is untouched. A new
// file gets mode 0644; a replaced file keeps its mode.
func Write(path string, write func(w io.Writer) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(dir, tempPrefix(base)+"*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	done := false
	defer func() {
		if !done { // an error, or a panic in write
			tmp.Close() // may already be closed
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	done = true
	// Make the rename itself durable; not every system can sync a directory.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// tempPrefix returns the prefix of the temporary files Write creates for
// a file named name: "." + name + ".tmp-", followed by digits.
func tempPrefix(name string) string { return "." + name + ".tmp-" }

// IsTemp reports whether file (a base name) is a temporary file that Write
// creates while writing a file named name (a base name): "." + name +
// ".tmp-" and digits.
func IsTemp(file, name string) bool {
	rest, ok := strings.CutPrefix(file, tempPrefix(name))
	if !ok || rest == "" {
		return false
	}
	for _, r := range rest {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// CleanStale removes from dir the temporary files (see IsTemp) that
// writes of the named files (base names) left behind when a process was
// killed mid-write, and returns their paths. Only regular files that Write
// would have created are removed; everything else in dir is left alone. It
// must not run while another process writes those files into dir. A
// missing dir holds nothing to clean.
func CleanStale(dir string, names ...string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cleaning temporary files: %w", err)
	}
	var removed []string
	for _, e := range entries {
		if !e.Type().IsRegular() || !slices.ContainsFunc(names, func(n string) bool { return IsTemp(e.Name(), n) }) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, fmt.Errorf("removing the stale temporary file %s: %w", p, err)
		}
		removed = append(removed, p)
	}
	return removed, nil
}
