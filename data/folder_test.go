package data

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestImageFolder(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, map[string]int{"tulips": 3, "daisy": 2, "Roses": 2})
	// Nested folder, non-image file, corrupt image, hidden entries.
	writeImage(t, filepath.Join(root, "daisy", "sub", "a.JPEG"), 8, 8, 50)
	writeImage(t, filepath.Join(root, "daisy", "zz.png"), 8, 8, 51)
	writeFile(t, filepath.Join(root, "daisy", "notes.txt"), []byte("not an image"))
	writeFile(t, filepath.Join(root, "tulips", "broken.jpg"), []byte("this is not a JPEG"))
	writeFile(t, filepath.Join(root, "tulips", "._img000.jpg"), []byte("AppleDouble"))
	writeImage(t, filepath.Join(root, ".ipynb_checkpoints", "x.png"), 4, 4, 52)
	writeFile(t, filepath.Join(root, "README.txt"), []byte("a file at the top"))

	f, err := OpenImageFolder(root)
	if err != nil {
		t.Fatal(err)
	}
	// Sorted by code point, as Python's sorted: upper case first.
	if want := []string{"Roses", "daisy", "tulips"}; !slices.Equal(f.Classes(), want) {
		t.Fatalf("classes %v, want %v", f.Classes(), want)
	}
	if f.ClassToIdx()["daisy"] != 1 {
		t.Error("class_to_idx")
	}
	var got []string
	for i := range f.Len() {
		rel, _ := filepath.Rel(root, f.Path(i))
		got = append(got, rel)
		if f.Source(i) != f.Path(i) {
			t.Error("Source differs from Path")
		}
	}
	// torchvision's order: class by class; within a class, files of the
	// class folder first, then those of its subfolders (sorted(os.walk)).
	want := []string{
		"Roses/img000.jpg", "Roses/img001.png",
		"daisy/img000.jpg", "daisy/img001.png", "daisy/zz.png", "daisy/sub/a.JPEG",
		"tulips/broken.jpg", "tulips/img000.jpg", "tulips/img001.png", "tulips/img002.jpg",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("samples\n%v\nwant\n%v", got, want)
	}
	if c := LabelCounts(f); !slices.Equal(c, []int{2, 4, 4}) {
		t.Errorf("label counts %v", c)
	}
	img, err := f.Image(3)
	if err != nil || img.C != 3 || img.W != 13 || img.H != 11 {
		t.Fatalf("image 3: %v %+v", err, img)
	}
	f.Channels = 1
	if img, err = f.Image(3); err != nil || img.C != 1 {
		t.Fatalf("grayscale: %v", err)
	}
	_, err = f.Image(6)
	if err == nil || !strings.Contains(err.Error(), "broken.jpg") {
		t.Errorf("corrupt image error %v does not name the file", err)
	}
}

func TestImageFolderErrors(t *testing.T) {
	root := t.TempDir()
	if _, err := OpenImageFolder(root); err == nil || !strings.Contains(err.Error(), "no class folders in "+root) {
		t.Errorf("empty root: %v", err)
	}
	if _, err := OpenImageFolder(filepath.Join(root, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing root: %v", err)
	}
	makeTree(t, root, map[string]int{"a": 2})
	writeFile(t, filepath.Join(root, "b", "readme.txt"), []byte("x"))
	_, err := OpenImageFolder(root)
	if err == nil || !strings.Contains(err.Error(), "class folder "+filepath.Join(root, "b")+" has no images") {
		t.Errorf("empty class: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(root, "c"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = OpenImageFolder(root)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "b")) || !strings.Contains(err.Error(), filepath.Join(root, "c")) {
		t.Errorf("two empty classes: %v", err)
	}
}

func TestOpenTrainVal(t *testing.T) {
	root := t.TempDir()
	makeTree(t, filepath.Join(root, "train"), map[string]int{"a": 2, "b": 2})
	makeTree(t, filepath.Join(root, "val"), map[string]int{"a": 1, "b": 1})
	tr, va, err := OpenTrainVal(filepath.Join(root, "train"), filepath.Join(root, "val"))
	if err != nil || tr.Len() != 4 || va.Len() != 2 {
		t.Fatalf("%v", err)
	}
	makeTree(t, filepath.Join(root, "val"), map[string]int{"c": 1})
	_, _, err = OpenTrainVal(filepath.Join(root, "train"), filepath.Join(root, "val"))
	if err == nil || !strings.Contains(err.Error(), "different classes") || !strings.Contains(err.Error(), "only in validation: c") {
		t.Errorf("class mismatch: %v", err)
	}
}

func TestSplitFraction(t *testing.T) {
	root := t.TempDir()
	counts := map[string]int{"a": 25, "b": 7, "c": 2, "d": 1}
	makeTree(t, root, counts)
	f, err := OpenImageFolder(root)
	if err != nil {
		t.Fatal(err)
	}
	tr, va, err := SplitFraction(f, 0.2, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Val per class: int(25*0.2)=5, int(7*0.2)=1, at least 1 of 2, 0 of 1.
	if c := LabelCounts(va); !slices.Equal(c, []int{5, 1, 1, 0}) {
		t.Errorf("validation counts %v", c)
	}
	if c := LabelCounts(tr); !slices.Equal(c, []int{20, 6, 1, 1}) {
		t.Errorf("training counts %v", c)
	}
	// Disjoint, covering, in order.
	seen := map[int]int{}
	for _, v := range []*View{tr, va} {
		for i := range v.Len() {
			seen[v.Index(i)]++
			if i > 0 && v.Index(i) <= v.Index(i-1) {
				t.Fatal("split not in dataset order")
			}
			if v.Label(i) != f.Label(v.Index(i)) || v.Source(i) != f.Path(v.Index(i)) {
				t.Fatal("split changed a label or path")
			}
		}
	}
	if len(seen) != f.Len() {
		t.Errorf("split covers %d of %d samples", len(seen), f.Len())
	}
	for i, n := range seen {
		if n != 1 {
			t.Errorf("sample %d in %d parts", i, n)
		}
	}
	// Deterministic given the seed; another seed changes the choice.
	_, va2, _ := SplitFraction(f, 0.2, 1)
	_, va3, _ := SplitFraction(f, 0.2, 2)
	if !slices.Equal(va.index, va2.index) {
		t.Error("same seed, different split")
	}
	if slices.Equal(va.index, va3.index) {
		t.Error("another seed, same split")
	}
	if _, _, err := SplitFraction(f, 1, 0); err == nil {
		t.Error("fraction 1 accepted")
	}
}

// listTree returns the files below dir, relative to it.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSplit(t *testing.T) {
	src := filepath.Join(t.TempDir(), "flower_photos")
	counts := map[string]int{"daisy": 23, "roses": 10, "tulips": 9}
	makeTree(t, src, counts)
	writeImage(t, filepath.Join(src, "roses", "nested", "n.png"), 5, 5, 7)
	writeFile(t, filepath.Join(src, "roses", "LICENSE.txt"), []byte("x"))
	dst := filepath.Join(t.TempDir(), "flower_data")

	res, err := Split(src, dst, 0.1, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	// int(n*0.1): 2 of 23, 1 of 11, 0 of 9.
	if !slices.Equal(res.Classes, []string{"daisy", "roses", "tulips"}) || !slices.Equal(res.Val, []int{2, 1, 0}) || !slices.Equal(res.Train, []int{21, 10, 9}) {
		t.Fatalf("split result %+v", res)
	}
	tr, va, err := OpenTrainVal(filepath.Join(dst, "train"), filepath.Join(dst, "val"))
	if err == nil {
		t.Fatal("val without tulips opened as having the same classes")
	}
	tr, err = OpenImageFolder(filepath.Join(dst, "train"))
	if err != nil {
		t.Fatal(err)
	}
	va, err = OpenImageFolder(filepath.Join(dst, "val"))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Len() != 40 || va.Len() != 3 {
		t.Errorf("%d train, %d val files", tr.Len(), va.Len())
	}
	files := listTree(t, dst)
	if slices.ContainsFunc(files, func(s string) bool { return strings.HasSuffix(s, ".txt") }) {
		t.Error("a non-image file was copied")
	}
	if !slices.Contains(files, filepath.Join("train", "roses", "nested", "n.png")) && !slices.Contains(files, filepath.Join("val", "roses", "nested", "n.png")) {
		t.Error("nested file not copied with its relative path")
	}
	// Same choice as SplitFraction where int(n*rate) >= 1.
	f, _ := OpenImageFolder(src)
	_, fva, _ := SplitFraction(f, 0.1, 0)
	var want []string
	for i := range fva.Len() {
		if fva.Label(i) == 2 {
			continue // SplitFraction keeps one of tulips for validation
		}
		rel, _ := filepath.Rel(src, fva.Source(i))
		want = append(want, filepath.Join("val", rel))
	}
	var gotVal []string
	for _, s := range files {
		if strings.HasPrefix(s, "val"+string(filepath.Separator)) {
			gotVal = append(gotVal, s)
		}
	}
	if !slices.Equal(gotVal, want) {
		t.Errorf("Split's val %v, SplitFraction's %v", gotVal, want)
	}

	// A non-empty destination is refused unless overwriting.
	if _, err := Split(src, dst, 0.1, 0, false); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty destination: %v", err)
	}
	writeFile(t, filepath.Join(dst, "keep.txt"), []byte("mine"))
	if _, err := Split(src, dst, 0.1, 0, true); err != nil {
		t.Fatal(err)
	}
	if again := listTree(t, dst); !slices.Equal(again, withKeep(files)) {
		t.Errorf("same seed, different files:\n%v\n%v", again, files)
	}
	// Another seed picks other files.
	if _, err := Split(src, dst, 0.1, 1, true); err != nil {
		t.Fatal(err)
	}
	if other := listTree(t, dst); slices.Equal(other, withKeep(files)) {
		t.Error("another seed gave the same split")
	}
	if _, err := os.Stat(filepath.Join(dst, "keep.txt")); err != nil {
		t.Error("overwrite removed a file outside train/ and val/")
	}
	// Overlapping source and destination are refused.
	if _, err := Split(src, filepath.Join(src, "out"), 0.1, 0, true); err == nil {
		t.Error("destination inside the source accepted")
	}
}

// withKeep returns files plus keep.txt, sorted as WalkDir lists them.
func withKeep(files []string) []string {
	out := append(slices.Clone(files), "keep.txt")
	slices.Sort(out)
	return out
}
