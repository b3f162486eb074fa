package data

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/resgo/resgo/transform"
)

// Limits on a CSV file list: its size and its number of classes. 256 MiB
// holds millions of rows (ImageNet's 1.28M training images take about
// 100 MB as "path,label" lines); 100,000 classes is modelfile's bound of a
// model's classes.
const (
	MaxCSVBytes   = 256 << 20
	MaxCSVClasses = 100_000
)

// FileList is a dataset of image files listed in a CSV file, one
// "path,label" row each (an optional first row "path,label" is a header).
// Paths are relative to the CSV file's folder unless absolute. Labels are
// class names: the classes are the distinct labels in sorted order, as
// ImageFolder sorts its folders, except that labels that are all whole
// numbers 0..K-1 are the classes "0".."K-1" in numeric order.
type FileList struct {
	// Path is the CSV file.
	Path string
	// Channels is the number of channels images are converted to: 3 (RGB,
	// the default) or 1 (grayscale).
	Channels int

	classes []string
	paths   []string
	labels  []int
}

// OpenCSV reads a CSV file list. Errors name the file and the line: a row
// without exactly two fields, an empty path or label, a file larger than
// MaxCSVBytes, more than MaxCSVClasses classes, no rows. The images
// themselves are read when used (an unreadable one is skipped and
// reported by the loader, as in an ImageFolder).
func OpenCSV(path string) (*FileList, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > MaxCSVBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d a CSV file list may have", path, st.Size(), MaxCSVBytes)
	}
	r := csv.NewReader(io.LimitReader(f, MaxCSVBytes+1))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	dir := filepath.Dir(path)
	var paths, names []string
	for line := 1; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(rec) != 2 {
			return nil, fmt.Errorf("%s, line %d: %d fields, want path,label", path, line, len(rec))
		}
		p, l := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		if line == 1 && strings.EqualFold(p, "path") && strings.EqualFold(l, "label") {
			continue
		}
		if p == "" || l == "" {
			return nil, fmt.Errorf("%s, line %d: an empty path or label", path, line)
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		paths, names = append(paths, p), append(names, l)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s: no path,label rows", path)
	}
	classes := slices.Compact(slices.Sorted(slices.Values(names)))
	if len(classes) > MaxCSVClasses {
		return nil, fmt.Errorf("%s: %d classes, more than %d", path, len(classes), MaxCSVClasses)
	}
	if numeric := wholeNumbers(classes); numeric != nil {
		classes = numeric
	}
	index := make(map[string]int, len(classes))
	for i, c := range classes {
		index[c] = i
	}
	fl := &FileList{Path: path, Channels: 3, classes: classes, paths: paths, labels: make([]int, len(paths))}
	for i, n := range names {
		k, ok := index[n]
		if !ok { // a whole number written another way, such as "01"
			return nil, fmt.Errorf("%s: label %q: numeric labels must be written 0..%d", path, n, len(classes)-1)
		}
		fl.labels[i] = k
	}
	return fl, nil
}

// wholeNumbers returns the classes "0".."K-1", K-1 the largest label, when
// the labels are all whole numbers below MaxCSVClasses; nil otherwise.
func wholeNumbers(labels []string) []string {
	top := -1
	for _, l := range labels {
		v, err := strconv.Atoi(l)
		if err != nil || v < 0 || v >= MaxCSVClasses {
			return nil
		}
		top = max(top, v)
	}
	out := make([]string, top+1)
	for i := range out {
		out[i] = strconv.Itoa(i)
	}
	return out
}

// Len returns the number of images.
func (f *FileList) Len() int { return len(f.paths) }

// Label returns the class index of image i.
func (f *FileList) Label(i int) int { return f.labels[i] }

// Classes returns the class names, indexed by label.
func (f *FileList) Classes() []string { return f.classes }

// Source returns the file of image i.
func (f *FileList) Source(i int) string { return f.paths[i] }

// Image decodes image i with Channels channels. The error names the file.
func (f *FileList) Image(i int) (*transform.Image, error) {
	ch := f.Channels
	if ch == 0 {
		ch = 3
	}
	return LoadImage(f.paths[i], ch)
}

// isCSV reports whether spec names a CSV file list (a file ending .csv).
func isCSV(spec string) bool {
	return strings.EqualFold(filepath.Ext(spec), ".csv") && !isFolder(spec)
}

// openCSVSets opens a CSV file list as Open does.
func openCSVSets(spec string, opt OpenOptions) (*Sets, error) {
	all, err := OpenCSV(spec)
	if err != nil {
		return nil, err
	}
	if opt.EvalOnly {
		return &Sets{Val: all, ValName: spec}, nil
	}
	if opt.ValDir != "" {
		var val Dataset
		if isCSV(opt.ValDir) {
			val, err = OpenCSV(opt.ValDir)
		} else {
			val, err = OpenImageFolder(opt.ValDir)
		}
		if err != nil {
			return nil, err
		}
		if !slices.Equal(val.Classes(), all.Classes()) {
			return nil, fmt.Errorf("%s has classes %v, %s %v: they must be the same", opt.ValDir, val.Classes(), spec, all.Classes())
		}
		return &Sets{Train: all, Val: val, ValName: opt.ValDir}, nil
	}
	train, val, err := SplitFraction(all, opt.ValSplit, opt.Seed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	return &Sets{Train: train, Val: val, ValName: spec}, nil
}
