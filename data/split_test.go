package data

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSplitRefusesOverlapThroughLinks: a destination that is a symbolic
// link into a class folder of the source (whose copies would join that
// class), a source inside the destination, a class folder linking into
// the destination and a dangling link are refused, and nothing in the
// source changes.
func TestSplitRefusesOverlapThroughLinks(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "photos")
	makeTree(t, src, map[string]int{"red": 4, "blue": 4})
	before := listTree(t, src)
	link := func(target, name string) string {
		t.Helper()
		p := filepath.Join(base, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, dst string
		overwrite bool
		want      string
	}{
		{"a link to a class folder", link(filepath.Join(src, "red"), "into-red"), true, "is inside the source"},
		{"below a link to a class folder", filepath.Join(link(filepath.Join(src, "blue"), "into-blue"), "new", "deeper"), false, "is inside the source"},
		{"a link to the source", link(src, "same"), true, "is inside the source"},
		{"a link to the source's parent", link(base, "parent"), true, "the source"},
		{"a dangling link", link(filepath.Join(base, "missing"), "dangling"), false, "a symbolic link to a missing path"},
	}
	for _, c := range cases {
		_, err := Split(src, c.dst, 0.25, 0, c.overwrite)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
	if after := listTree(t, src); !slices.Equal(after, before) {
		t.Errorf("the source changed:\n%v\n%v", before, after)
	}
	if _, err := os.Stat(filepath.Join(base, "missing")); !os.IsNotExist(err) {
		t.Errorf("the dangling link's target was created: %v", err)
	}

	// A class folder that links into the destination: overwriting would
	// delete the source's images before copying them.
	dst := filepath.Join(base, "split")
	if _, err := Split(src, dst, 0.25, 0, false); err != nil {
		t.Fatal(err)
	}
	src2 := filepath.Join(base, "photos2")
	makeTree(t, src2, map[string]int{"green": 2})
	if err := os.Symlink(filepath.Join(dst, "train", "red"), filepath.Join(src2, "red")); err != nil {
		t.Fatal(err)
	}
	if _, err := Split(src2, dst, 0.25, 0, true); err == nil || !strings.Contains(err.Error(), "is inside the destination") {
		t.Errorf("a class folder linking into the destination: %v", err)
	}
	if n := len(listTree(t, filepath.Join(dst, "train", "red"))); n != 3 {
		t.Errorf("the destination's red images: %d, want the 3 copied before", n)
	}
}

// TestSplitLeavesNoPartialFile: a source file whose reading fails after
// its copy has started (/proc/self/mem, readable by its own process only
// where mapped, fails at offset 0) leaves no partial copy, no temporary
// file and no incomplete train and val folders.
func TestSplitLeavesNoPartialFile(t *testing.T) {
	f, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Skip("no /proc/self/mem:", err)
	}
	_, rerr := f.Read(make([]byte, 1))
	f.Close()
	if rerr == nil {
		t.Skip("/proc/self/mem reads at offset 0 here")
	}
	base := t.TempDir()
	src := filepath.Join(base, "photos")
	makeTree(t, src, map[string]int{"red": 3, "blue": 3})
	bad := filepath.Join(src, "red", "zz-unreadable.jpg")
	if err := os.Symlink("/proc/self/mem", bad); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(base, "split")
	writeFile(t, filepath.Join(dst, "keep.txt"), []byte("mine"))
	_, err = Split(src, dst, 0.3, 0, true)
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("an unreadable source file: %v", err)
	}
	t.Log(err)
	if got := listTree(t, dst); !slices.Equal(got, []string{"keep.txt"}) {
		t.Errorf("the failed split left %v", got)
	}
}
