// Package data provides what training and prediction read: image files
// (JPEG, PNG, GIF, BMP, TIFF, WebP), folders of images with one subfolder
// per class, Fashion-MNIST, the command line's dataset specs (Open), and a
// loader that decodes and augments on worker goroutines.
//
// JPEGs are decoded as PIL decodes them, byte for byte: by libjpeg-turbo
// through cgo (Debian's libjpeg62-turbo-dev, the library PIL itself
// uses), or, in a build without cgo, by Go's image/jpeg, which is close
// to PIL but not exact. Other formats are decoded by Go's decoders and
// converted as PIL converts them (transform.FromImage).
package data

import (
	_ "image/gif"  // GIF decoder
	_ "image/jpeg" // JPEG: image.DecodeConfig's sizes (serve's checks); decodeJPEG decodes
	_ "image/png"  // PNG decoder
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	_ "golang.org/x/image/bmp"  // BMP decoder
	_ "golang.org/x/image/tiff" // TIFF decoder
	_ "golang.org/x/image/webp" // WebP decoder

	"github.com/resgo/resgo/transform"
)

// ImageExtensions are the file extensions (lower case) read as images.
var ImageExtensions = []string{".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"}

// IsImage reports whether a file name has an image extension.
func IsImage(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	for _, e := range ImageExtensions {
		if ext == e {
			return true
		}
	}
	return false
}

// LoadImage decodes an image file into an 8-bit image with the given
// number of channels (3: RGB, 1: grayscale), as DecodeImage: refused
// unread when its header declares more than MaxPixels pixels. The error
// names the file.
func LoadImage(path string, channels int) (*transform.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return DecodeImage(f, path, channels)
}

// ListImages expands the given files and folders into a sorted list of
// image files: a folder contributes every image below it. A named file is
// taken as it is, whatever its extension.
func ListImages(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && IsImage(d.Name()) {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}
