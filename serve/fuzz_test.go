package serve

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/resgo/resgo/transform"
)

// Small limits keep every fuzz input's allocations small: a body of 64 KiB
// at most, images of 256x256 pixels at most.
const (
	fuzzMaxBody   = 64 << 10
	fuzzMaxPixels = 256 * 256
)

// FuzzUpload feeds request bodies and Content-Types to what /predict does
// with them before the model (readUpload, decodeUpload, then the
// preprocessing that each request runs before it joins the queue): it must
// never panic, and either give a finite model input within the limits or a
// one-line error with the status of a client error.
func FuzzUpload(f *testing.F) {
	var img bytes.Buffer
	m := image.NewRGBA(image.Rect(0, 0, 3, 2))
	m.Set(1, 1, color.RGBA{200, 10, 10, 255})
	if err := png.Encode(&img, m); err != nil {
		f.Fatal(err)
	}
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	mw.SetBoundary("xyz")
	mw.WriteField("note", "first")
	fw, _ := mw.CreateFormFile("image", "a.png")
	fw.Write(img.Bytes())
	mw.Close()
	f.Add("image/png", img.Bytes())
	f.Add("", img.Bytes())
	f.Add("application/json", []byte(`{}`))
	f.Add("multipart/form-data; boundary=xyz", form.Bytes())
	f.Add("multipart/form-data; boundary=xyz", form.Bytes()[:len(form.Bytes())/2])
	f.Add("multipart/form-data", form.Bytes())
	f.Add("image/gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"))
	f.Add("image/bmp", []byte("BM"))
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		r := http.MaxBytesReader(nil, io.NopCloser(bytes.NewReader(body)), fuzzMaxBody)
		// Resized, not cropped: the input's size follows the image's.
		pre := transform.Preset{ResizeSize: 16, Channels: 3, Norm: transform.ImageNet}
		raw, name, err := readUpload(ctype, r)
		var in *transform.Image
		if err == nil {
			if len(raw) == 0 || len(raw) > fuzzMaxBody || name == "" {
				t.Fatalf("readUpload gave %d bytes named %q", len(raw), name)
			}
			in, err = decodeUpload(raw, name, pre, fuzzMaxPixels, fuzzMaxPixels)
		}
		if err != nil {
			if st := statusOf(err); st != 400 && st != 413 && st != 415 {
				t.Fatalf("status %d for %v", st, err)
			}
			if msg := err.Error(); msg == "" || strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error %q is not one line", msg)
			}
			return
		}
		if in.W < 1 || in.H < 1 || in.W*in.H > fuzzMaxPixels || in.C != 3 || len(in.Pix) != in.W*in.H*3 {
			t.Fatalf("image %dx%dx%d with %d values", in.W, in.H, in.C, len(in.Pix))
		}
		h, w := pre.OutputSize(in.W, in.H)
		if h < 1 || w < 1 || h*w > fuzzMaxPixels {
			t.Fatalf("a %dx%d image makes a %dx%d model input", in.W, in.H, w, h)
		}
		x := make([]float32, 3*h*w)
		pre.Apply(in, x)
		for i, v := range x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || math.Abs(float64(v)) > 3 {
				t.Fatalf("model input value %d is %v", i, v)
			}
		}
	})
}

// TestCleanName: uploaded names lose control characters and are bounded.
func TestCleanName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"cat.png", "cat.png"},
		{"a\nb\r\x00c.png", "abc.png"},
		{"bad\xffutf8.png", "badutf8.png"},
		{strings.Repeat("é", 200), strings.Repeat("é", 127)},
	} {
		if got := cleanName(c.in); got != c.want {
			t.Errorf("cleanName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
