package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resgo/resgo/data"
)

// TestRun writes a folder and reads it back as resgo train reads its
// --data: the classes asked for, in sorted order, with their images; a
// second run into it, an unknown class and bad sizes are refused.
func TestRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "photos")
	if err := run(out, "disc,cross", 3, 16, 1); err != nil {
		t.Fatal(err)
	}
	f, err := data.OpenImageFolder(out)
	if err != nil {
		t.Fatal(err)
	}
	if cl := f.Classes(); f.Len() != 6 || len(cl) != 2 || cl[0] != "cross" || cl[1] != "disc" {
		t.Errorf("%d images of classes %v, want 6 of cross and disc", f.Len(), cl)
	}
	if im, err := f.Image(0); err != nil || im.W != 16 || im.H != 16 {
		t.Errorf("first image: %v", err)
	}
	first := filepath.Join(out, "disc", "000.png")
	before, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		out, classes string
		per, size    int
		want         string
	}{
		{out, "disc", 1, 16, "not empty"},
		{filepath.Join(t.TempDir(), "x"), "disc,circle", 1, 16, `"circle" is not one of`},
		{filepath.Join(t.TempDir(), "x"), "disc", 0, 16, "--per-class 0"},
		{filepath.Join(t.TempDir(), "x"), "disc", 1, 4, "--size 4"},
		{"", "disc", 1, 16, "--out is required"},
	} {
		if err := run(c.out, c.classes, c.per, c.size, 2); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run(%q, %q, %d, %d): %v, want %q", c.out, c.classes, c.per, c.size, err, c.want)
		}
	}
	if after, err := os.ReadFile(first); err != nil || string(after) != string(before) {
		t.Errorf("the refused second run (another seed) rewrote %s: %v", first, err)
	}
}
