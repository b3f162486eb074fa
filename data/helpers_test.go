package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// photo returns a w x h RGB image with smooth content and some noise, a
// little like a photograph.
func photo(w, h int, seed uint64) *image.RGBA {
	r := rand.New(rand.NewPCG(seed, 99))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	a, b, c := r.IntN(256), r.IntN(256), r.IntN(256)
	for y := range h {
		for x := range w {
			n := r.IntN(24)
			img.SetRGBA(x, y, color.RGBA{
				R: uint8((a + x*255/w + n) % 256),
				G: uint8((b + y*255/h + n) % 256),
				B: uint8((c + (x+y)*128/(w+h) + n) % 256),
				A: 255,
			})
		}
	}
	return img
}

// writeImage writes a generated image as PNG or JPEG (by extension).
func writeImage(t testing.TB, path string, w, h int, seed uint64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	img := photo(w, h, seed)
	var err error
	switch filepath.Ext(path) {
	case ".png", ".PNG":
		err = png.Encode(&buf, img)
	default:
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeFile writes raw bytes, creating the folder.
func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// makeTree writes n small images in root/<class>/ for each class, named
// img000.jpg, img001.png, ... (JPEG and PNG alternating).
func makeTree(t testing.TB, root string, counts map[string]int) {
	t.Helper()
	seed := uint64(0)
	for class, n := range counts {
		for i := range n {
			ext := ".jpg"
			if i%2 == 1 {
				ext = ".png"
			}
			seed++
			writeImage(t, filepath.Join(root, class, "img"+pad3(i)+ext), 12+i%5, 10+i%3, seed)
		}
	}
}

func pad3(i int) string {
	s := []byte{'0', '0', '0'}
	for k := 2; k >= 0 && i > 0; k-- {
		s[k] = byte('0' + i%10)
		i /= 10
	}
	return string(s)
}

// idxBytes encodes an IDX file of unsigned bytes.
func idxBytes(dims []int, data []uint8) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 8, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(data)
	return b.Bytes()
}

func gzipBytes(data []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// writeFashion writes n 28x28 images with labels i%10 (image i filled with
// the value i%256, its first pixel 255) as Fashion-MNIST's files in dir.
func writeFashion(t testing.TB, dir, prefix string, n int, gz bool) {
	t.Helper()
	pix := make([]uint8, n*28*28)
	labels := make([]uint8, n)
	for i := range n {
		for k := range 28 * 28 {
			pix[i*784+k] = uint8(i)
		}
		pix[i*784] = 255
		labels[i] = uint8(i % 10)
	}
	im := idxBytes([]int{n, 28, 28}, pix)
	lb := idxBytes([]int{n}, labels)
	iname, lname := prefix+"-images-idx3-ubyte", prefix+"-labels-idx1-ubyte"
	if gz {
		im, lb = gzipBytes(im), gzipBytes(lb)
		iname += ".gz"
		lname += ".gz"
	}
	writeFile(t, filepath.Join(dir, iname), im)
	writeFile(t, filepath.Join(dir, lname), lb)
}
