// Command shapes writes a folder of generated images laid out like the
// tutorial's flower_photos, one subfolder per class: PNG images of a disc,
// a square, stripes or a cross in random colors and places on a dark
// background (package internal/shapes draws them). It stands in for a real
// data set where there is none at hand, as in the README's walkthrough:
//
//	go run ./cmd/shapes --out shape_photos
//	go run ./cmd/shapes --out few_photos --classes disc,cross --per-class 10 --seed 2
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/resgo/resgo/internal/shapes"
)

func main() {
	out := flag.String("out", "", "folder to create (it must not exist, or be empty)")
	classes := flag.String("classes", strings.Join(shapes.Names, ","), "classes to draw, comma-separated")
	perClass := flag.Int("per-class", 50, "images per class")
	size := flag.Int("size", 64, "image width and height in pixels")
	seed := flag.Uint64("seed", 1, "seed of the colors and places")
	flag.Parse()
	if err := run(*out, *classes, *perClass, *size, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "shapes:", err)
		os.Exit(1)
	}
}

// run checks the settings and writes the folder.
func run(out, classList string, perClass, size int, seed uint64) error {
	if out == "" {
		return errors.New("--out is required")
	}
	if perClass < 1 || perClass > 100_000 {
		return fmt.Errorf("--per-class %d: want 1 to 100000", perClass)
	}
	if size < 8 || size > 1024 {
		return fmt.Errorf("--size %d: want 8 to 1024 pixels", size)
	}
	var classes []int
	for _, name := range strings.Split(classList, ",") {
		c := slices.Index(shapes.Names, name)
		if c < 0 {
			return fmt.Errorf("--classes: %q is not one of %s", name, strings.Join(shapes.Names, ", "))
		}
		classes = append(classes, c)
	}
	if entries, err := os.ReadDir(out); err == nil && len(entries) > 0 {
		return fmt.Errorf("--out %s: not empty", out)
	}
	if err := shapes.WriteFolder(out, classes, perClass, size, seed); err != nil {
		return err
	}
	fmt.Printf("wrote %d images of %dx%d pixels into %s: %s\n", len(classes)*perClass, size, size, out, classList)
	return nil
}
