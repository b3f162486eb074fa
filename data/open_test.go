package data

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestOpen opens every form of dataset spec the command line accepts.
func TestOpen(t *testing.T) {
	fashion := t.TempDir()
	writeFashion(t, fashion, "train", 30, true)
	writeFashion(t, fashion, "t10k", 12, true)
	single := filepath.Join(t.TempDir(), "photos")
	makeTree(t, single, map[string]int{"a": 10, "b": 10})
	split := t.TempDir()
	makeTree(t, filepath.Join(split, "train"), map[string]int{"a": 3, "b": 3})
	makeTree(t, filepath.Join(split, "val"), map[string]int{"a": 1, "b": 2})
	separate := filepath.Join(t.TempDir(), "held-out")
	makeTree(t, separate, map[string]int{"a": 2, "b": 2})

	cases := []struct {
		name, spec        string
		opt               OpenOptions
		train, val        int // sizes; -1: nil
		valName           string
		fashion           bool
		classes           []string
		trainFrom, valDir string // folders the samples come from
	}{
		{name: "fashion-mnist", spec: "fashion-mnist", opt: OpenOptions{FashionMNISTDir: fashion},
			train: 30, val: 12, valName: "fashion-mnist", fashion: true, classes: FashionMNISTClasses},
		{name: "fashion-mnist eval", spec: "fashion-mnist", opt: OpenOptions{FashionMNISTDir: fashion, EvalOnly: true},
			train: -1, val: 12, valName: "fashion-mnist", fashion: true, classes: FashionMNISTClasses},
		{name: "train and val", spec: split, train: 6, val: 3, valName: filepath.Join(split, "val"), classes: []string{"a", "b"},
			trainFrom: filepath.Join(split, "train"), valDir: filepath.Join(split, "val")},
		{name: "train and val eval", spec: split, opt: OpenOptions{EvalOnly: true}, train: -1, val: 3,
			valName: filepath.Join(split, "val"), classes: []string{"a", "b"}, valDir: filepath.Join(split, "val")},
		{name: "split", spec: single, opt: OpenOptions{ValSplit: 0.2, Seed: 3}, train: 16, val: 4, valName: single,
			classes: []string{"a", "b"}, trainFrom: single, valDir: single},
		{name: "single folder eval", spec: single, opt: OpenOptions{EvalOnly: true, ValSplit: 0.2}, train: -1, val: 20,
			valName: single, classes: []string{"a", "b"}, valDir: single},
		{name: "separate validation folder", spec: single, opt: OpenOptions{ValDir: separate, ValSplit: 0.2}, train: 20, val: 4,
			valName: separate, classes: []string{"a", "b"}, trainFrom: single, valDir: separate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Open(c.spec, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			if got := size(s.Train); got != c.train {
				t.Errorf("%d training images, want %d", got, c.train)
			}
			if got := size(s.Val); got != c.val {
				t.Errorf("%d validation images, want %d", got, c.val)
			}
			if s.ValName != c.valName || s.FashionMNIST != c.fashion {
				t.Errorf("ValName %q, FashionMNIST %v; want %q, %v", s.ValName, s.FashionMNIST, c.valName, c.fashion)
			}
			if !slices.Equal(s.Val.Classes(), c.classes) || (s.Train != nil && !slices.Equal(s.Train.Classes(), c.classes)) {
				t.Errorf("classes %v, want %v", s.Val.Classes(), c.classes)
			}
			for _, p := range []struct {
				ds  Dataset
				dir string
			}{{s.Train, c.trainFrom}, {s.Val, c.valDir}} {
				if p.dir == "" {
					continue
				}
				for i := range p.ds.Len() {
					if src := source(p.ds, i); !strings.HasPrefix(src, p.dir+string(filepath.Separator)) {
						t.Fatalf("sample %s is not from %s", src, p.dir)
					}
				}
			}
		})
	}

	// The split is SplitFraction's: reproducible from the seed.
	s, err := Open(single, OpenOptions{ValSplit: 0.2, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	f, err := OpenImageFolder(single)
	if err != nil {
		t.Fatal(err)
	}
	_, want, err := SplitFraction(f, 0.2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Val.(*View).index, want.index) {
		t.Error("Open's split differs from SplitFraction's")
	}
}

// size returns ds's length, -1 for nil.
func size(ds Dataset) int {
	if ds == nil {
		return -1
	}
	return ds.Len()
}

func TestOpenErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	mismatch := t.TempDir()
	makeTree(t, filepath.Join(mismatch, "train"), map[string]int{"a": 2, "b": 2})
	makeTree(t, filepath.Join(mismatch, "val"), map[string]int{"a": 1, "c": 1})
	single := t.TempDir()
	makeTree(t, single, map[string]int{"a": 2})
	cases := []struct {
		spec string
		opt  OpenOptions
		want []string // in the error
	}{
		{"", OpenOptions{}, []string{"no dataset", "fashion-mnist"}},
		{missing, OpenOptions{}, []string{missing, "no such file"}},
		{missing, OpenOptions{EvalOnly: true}, []string{missing, "no such file"}},
		{"fashion-mnist", OpenOptions{FashionMNISTDir: missing}, []string{filepath.Join(missing, "train-images-idx3-ubyte"), "apt-get install dataset-fashion-mnist"}},
		{"fashion-mnist", OpenOptions{FashionMNISTDir: missing, EvalOnly: true}, []string{filepath.Join(missing, "t10k-images-idx3-ubyte"), "apt-get install dataset-fashion-mnist"}},
		{mismatch, OpenOptions{}, []string{filepath.Join(mismatch, "val"), "different classes", "only in validation: c"}},
		{single, OpenOptions{ValSplit: 1}, []string{single, "validation fraction 1"}},
	}
	for _, c := range cases {
		_, err := Open(c.spec, c.opt)
		if err == nil {
			t.Errorf("Open(%q, %+v) succeeded", c.spec, c.opt)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Open(%q, %+v): %v; want it to contain %q", c.spec, c.opt, err, w)
			}
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("Open(%q): a multi-line error: %v", c.spec, err)
		}
	}
}
