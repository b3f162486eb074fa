package data

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/resgo/resgo/internal/atomicfile"
	"github.com/resgo/resgo/transform"
)

// ImageFolder is a dataset read from a folder with one subfolder per class,
// as torchvision's datasets.ImageFolder: the classes are the subfolders'
// names sorted, so labels are their indices in that order; the samples are
// the image files (see IsImage) below each class folder, class by class,
// folder by folder in sorted order, files sorted by name (the order of
// torchvision's make_dataset). Symbolic links are followed. Unlike
// torchvision, names beginning with "." (such as .ipynb_checkpoints or
// macOS's ._photo.jpg) are ignored.
type ImageFolder struct {
	// Root is the folder that holds the class folders.
	Root string
	// Channels is the number of channels images are converted to: 3 (RGB,
	// the default, as torchvision's loader) or 1 (grayscale).
	Channels int

	classes []string
	paths   []string
	labels  []int
}

// OpenImageFolder lists the classes and images of root. It fails when root
// has no class folders, or when a class folder has no images (torchvision
// raises then too), naming the folders.
func OpenImageFolder(root string) (*ImageFolder, error) {
	classes, files, err := scanClasses(root)
	if err != nil {
		return nil, err
	}
	f := &ImageFolder{Root: root, Channels: 3, classes: classes}
	for c, list := range files {
		for _, p := range list {
			f.paths = append(f.paths, p)
			f.labels = append(f.labels, c)
		}
	}
	return f, nil
}

// OpenTrainVal opens a training and a validation folder, such as the
// train/ and val/ folders that Split (or the tutorial's split_data.py)
// writes. It fails unless both have the same classes, since labels are
// class indices.
func OpenTrainVal(trainDir, valDir string) (train, val *ImageFolder, err error) {
	if train, err = OpenImageFolder(trainDir); err != nil {
		return nil, nil, err
	}
	if val, err = OpenImageFolder(valDir); err != nil {
		return nil, nil, err
	}
	if !slices.Equal(train.classes, val.classes) {
		return nil, nil, fmt.Errorf("validation folder %s and training folder %s have different classes: only in validation: %s; only in training: %s",
			valDir, trainDir, listOrNone(missing(val.classes, train.classes)), listOrNone(missing(train.classes, val.classes)))
	}
	return train, val, nil
}

// missing returns the names of a that are not in b.
func missing(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// Len returns the number of images.
func (f *ImageFolder) Len() int { return len(f.paths) }

// Label returns the class index of image i.
func (f *ImageFolder) Label(i int) int { return f.labels[i] }

// Classes returns the class names (the sorted subfolder names).
func (f *ImageFolder) Classes() []string { return f.classes }

// ClassToIdx returns the label of each class name, as torchvision's
// class_to_idx.
func (f *ImageFolder) ClassToIdx() map[string]int {
	m := make(map[string]int, len(f.classes))
	for i, c := range f.classes {
		m[c] = i
	}
	return m
}

// Path returns the file of image i.
func (f *ImageFolder) Path(i int) string { return f.paths[i] }

// Source returns the file of image i.
func (f *ImageFolder) Source(i int) string { return f.paths[i] }

// Image decodes image i with Channels channels. The error names the file.
func (f *ImageFolder) Image(i int) (*transform.Image, error) {
	ch := f.Channels
	if ch == 0 {
		ch = 3
	}
	return LoadImage(f.paths[i], ch)
}

// hidden reports whether a file or folder name is ignored.
func hidden(name string) bool { return strings.HasPrefix(name, ".") }

// isDir reports whether a directory entry is a folder, following symbolic
// links.
func isDir(dir string, e os.DirEntry) bool {
	if e.IsDir() {
		return true
	}
	if e.Type()&os.ModeSymlink != 0 {
		st, err := os.Stat(filepath.Join(dir, e.Name()))
		return err == nil && st.IsDir()
	}
	return false
}

// scanClasses returns the sorted class folder names of root and the image
// files of each class in torchvision's order.
func scanClasses(root string) ([]string, [][]string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, nil, fmt.Errorf("image folder: %w", err)
	}
	var classes []string
	for _, e := range entries { // ReadDir sorts by name
		if !hidden(e.Name()) && isDir(root, e) {
			classes = append(classes, e.Name())
		}
	}
	if len(classes) == 0 {
		return nil, nil, fmt.Errorf("no class folders in %s (expected one subfolder per class)", root)
	}
	files := make([][]string, len(classes))
	var empty []string
	for c, name := range classes {
		dir := filepath.Join(root, name)
		list, err := classFiles(dir)
		if err != nil {
			return nil, nil, err
		}
		if len(list) == 0 {
			empty = append(empty, dir)
		}
		files[c] = list
	}
	if len(empty) == 1 {
		return nil, nil, fmt.Errorf("class folder %s has no images (extensions %s)", empty[0], strings.Join(ImageExtensions, " "))
	}
	if len(empty) > 1 {
		return nil, nil, fmt.Errorf("class folders without images (extensions %s): %s", strings.Join(ImageExtensions, " "), strings.Join(empty, ", "))
	}
	return classes, files, nil
}

// classFiles returns the images below dir as torchvision's make_dataset
// orders them: folders sorted by path (as sorted(os.walk(dir))), files
// sorted by name within each.
func classFiles(dir string) ([]string, error) {
	type group struct {
		dir   string
		files []string
	}
	var groups []group
	seen := map[string]bool{}
	var walk func(d string) error
	walk = func(d string) error {
		real, err := filepath.EvalSymlinks(d)
		if err != nil {
			return err
		}
		if seen[real] { // a symbolic link loop
			return nil
		}
		seen[real] = true
		entries, err := os.ReadDir(d)
		if err != nil {
			return err
		}
		g := group{dir: d}
		var subs []string
		for _, e := range entries {
			if hidden(e.Name()) {
				continue
			}
			p := filepath.Join(d, e.Name())
			if isDir(d, e) {
				subs = append(subs, p)
			} else if IsImage(e.Name()) {
				g.files = append(g.files, p)
			}
		}
		groups = append(groups, g)
		for _, s := range subs {
			if err := walk(s); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(dir); err != nil {
		return nil, fmt.Errorf("class folder %s: %w", dir, err)
	}
	slices.SortFunc(groups, func(a, b group) int { return strings.Compare(a.dir, b.dir) })
	var out []string
	for _, g := range groups {
		out = append(out, g.files...)
	}
	return out, nil
}

// valCount returns how many of a class's n samples a fraction split puts
// in validation: int(n*frac), but at least one when n >= 2 and frac > 0.
func valCount(n int, frac float64) int {
	k := int(float64(n) * frac)
	if k == 0 && n >= 2 && frac > 0 {
		k = 1
	}
	return k
}

// SplitFraction splits ds into training and validation samples, class by
// class: of a class's n samples, int(n*frac) go to validation (at least one
// when n >= 2), chosen at random from seed. The choice depends only on the
// seed, the class index and the class's samples in dataset order (for an
// ImageFolder, file paths sorted), so it is the same on any file system, and
// for the same seed it picks the same files as Split whenever int(n*frac) is
// at least 1. Both parts keep ds's order and labels. frac must be in [0, 1).
func SplitFraction(ds Dataset, frac float64, seed uint64) (train, val *View, err error) {
	if !(frac >= 0 && frac < 1) {
		return nil, nil, fmt.Errorf("data.SplitFraction: validation fraction %v, want 0 <= fraction < 1", frac)
	}
	var tr, va []int
	for c, members := range byClass(ds) {
		for k, inVal := range choose(len(members), valCount(len(members), frac), newPCG(seed, splitSalt, uint64(c))) {
			if inVal {
				va = append(va, members[k])
			} else {
				tr = append(tr, members[k])
			}
		}
	}
	slices.Sort(tr)
	slices.Sort(va)
	return Subset(ds, tr), Subset(ds, va), nil
}

// SplitResult counts what Split wrote.
type SplitResult struct {
	// Classes are the class names, sorted.
	Classes []string
	// Train and Val count the images of each class copied to dst/train and
	// dst/val.
	Train, Val []int
}

// Split copies a folder of class folders (such as flower_photos) into
// dst/train/<class>/ and dst/val/<class>/, as the tutorial's split_data.py:
// of each class's n images, int(n*valRate) go to val, chosen at random, the
// rest to train. Unlike split_data.py the choice is reproducible on any file
// system: it depends only on seed, the class index and the sorted file
// paths (the same choice as SplitFraction). Files in nested folders keep
// their path relative to the class folder; non-image files and names
// beginning with "." are not copied. Split refuses a dst that is not empty
// unless overwrite is set, in which case it deletes dst/train and dst/val
// first (as split_data.py does) and leaves anything else in dst alone.
// valRate must be in [0, 1).
//
// Split refuses a destination inside the source and a source inside the
// destination, symbolic links resolved (a destination that links into a
// class folder would add its copies to that class), and source files that
// resolve into the destination. Each copy is written under a temporary
// name and renamed when complete; if a copy fails, Split removes the
// train and val folders it was filling, so that no partial split is left.
func Split(src, dst string, valRate float64, seed uint64, overwrite bool) (*SplitResult, error) {
	if !(valRate >= 0 && valRate < 1) {
		return nil, fmt.Errorf("data.Split: validation rate %v, want 0 <= rate < 1", valRate)
	}
	realSrc, err := resolve(src)
	if err != nil {
		return nil, fmt.Errorf("data.Split: source: %w", err)
	}
	realDst, err := resolve(dst)
	if err != nil {
		return nil, fmt.Errorf("data.Split: destination: %w", err)
	}
	switch {
	case within(realDst, realSrc):
		return nil, fmt.Errorf("data.Split: the destination %s (%s) is inside the source %s (%s)", dst, realDst, src, realSrc)
	case within(realSrc, realDst):
		return nil, fmt.Errorf("data.Split: the source %s (%s) is inside the destination %s (%s)", src, realSrc, dst, realDst)
	}
	classes, files, err := scanClasses(src)
	if err != nil {
		return nil, err
	}
	for _, list := range files {
		for _, p := range list {
			real, err := resolve(p)
			if err != nil {
				return nil, fmt.Errorf("data.Split: source file: %w", err)
			}
			if within(real, realDst) {
				return nil, fmt.Errorf("data.Split: the source file %s (%s) is inside the destination %s", p, real, dst)
			}
		}
	}
	trainDir, valDir := filepath.Join(dst, "train"), filepath.Join(dst, "val")
	entries, err := os.ReadDir(dst)
	switch {
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("data.Split: %w", err)
	case len(entries) > 0 && !overwrite:
		return nil, fmt.Errorf("data.Split: destination %s is not empty (overwriting replaces its train and val folders)", dst)
	}
	for _, d := range []string{trainDir, valDir} {
		if err := os.RemoveAll(d); err != nil {
			return nil, fmt.Errorf("data.Split: %w", err)
		}
	}
	res := &SplitResult{Classes: classes, Train: make([]int, len(classes)), Val: make([]int, len(classes))}
	for c, list := range files {
		classDir := filepath.Join(src, classes[c])
		inVal := choose(len(list), int(float64(len(list))*valRate), newPCG(seed, splitSalt, uint64(c)))
		for k, p := range list {
			rel, err := filepath.Rel(classDir, p)
			if err != nil {
				return nil, err
			}
			to := filepath.Join(trainDir, classes[c], rel)
			if inVal[k] {
				to = filepath.Join(valDir, classes[c], rel)
				res.Val[c]++
			} else {
				res.Train[c]++
			}
			if err := copyFile(p, to); err != nil {
				// No partial split: what this call copied goes.
				for _, d := range []string{trainDir, valDir} {
					if rerr := os.RemoveAll(d); rerr != nil {
						return nil, fmt.Errorf("data.Split: %w (and removing the incomplete %s: %v)", err, d, rerr)
					}
				}
				return nil, fmt.Errorf("data.Split: %w (the incomplete %s and %s are removed)", err, trainDir, valDir)
			}
		}
	}
	return res, nil
}

// within reports whether path p is dir or below it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// resolve returns p made absolute with its symbolic links resolved; the
// part of p that does not exist yet is appended as it is. A dangling
// symbolic link is an error: what it points to is unknown until created.
func resolve(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	rest := ""
	for cur := abs; ; {
		real, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(real, rest), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		if _, lerr := os.Lstat(cur); lerr == nil {
			return "", fmt.Errorf("%s: a symbolic link to a missing path (%w)", cur, err)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// copyFile copies the file from to the new file to, creating its folder.
// The copy goes through atomicfile.Write: a temporary file beside to (a
// hidden name, which ImageFolder ignores), synced and renamed to to once
// complete, so that to is
// either absent or whole; on error the temporary file is removed.
func copyFile(from, to string) error {
	fail := func(err error) error { return fmt.Errorf("copying %s to %s: %w", from, to, err) }
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return fail(err)
	}
	if _, err := os.Lstat(to); err == nil {
		return fail(os.ErrExist)
	}
	in, err := os.Open(from)
	if err != nil {
		return fail(err)
	}
	defer in.Close()
	if err := atomicfile.Write(to, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	}); err != nil {
		return fail(err)
	}
	return nil
}
