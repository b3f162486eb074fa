package serve

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/transform"
)

// statusError is an error with the HTTP status it answers.
type statusError struct {
	status int
	err    error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// errStatus returns err answered with status.
func errStatus(status int, err error) error { return &statusError{status, err} }

// statusOf returns the status that answers err: 413 for a body over the
// limit, 408 for a body that did not arrive within the read timeout, the
// status of a statusError, 400 otherwise.
func statusOf(err error) int {
	var tooLarge *http.MaxBytesError
	var timeout net.Error
	var se *statusError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.As(err, &timeout) && timeout.Timeout():
		return http.StatusRequestTimeout
	case errors.As(err, &se):
		return se.status
	}
	return http.StatusBadRequest
}

// bodyError wraps an error of reading the body, saying what the limit is
// when the body went over it.
func bodyError(what string, err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return fmt.Errorf("%s: the body is larger than the limit of %d bytes: %w", what, tooLarge.Limit, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// readUpload returns the bytes of the image uploaded in body, of media
// type ctype, and a name for it: the multipart form's field "image" (its
// file name), or the whole body ("body"). The body is bounded by its
// caller (http.MaxBytesReader). Media types other than images, a multipart
// form, application/octet-stream and curl's default
// application/x-www-form-urlencoded answer 415.
func readUpload(ctype string, body io.Reader) ([]byte, string, error) {
	mt, params, err := "", map[string]string(nil), error(nil)
	if ctype != "" {
		mt, params, err = mime.ParseMediaType(ctype)
	}
	// A bad parameter leaves the media type known (and a multipart form
	// then reports its missing boundary).
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		return nil, "", errStatus(http.StatusUnsupportedMediaType, fmt.Errorf("the Content-Type %q is not a media type: %w", ctype, err))
	}
	switch {
	case mt == "multipart/form-data":
		return readPart(params["boundary"], body)
	case mt == "", mt == "application/octet-stream", mt == "application/x-www-form-urlencoded", strings.HasPrefix(mt, "image/"):
		raw, err := io.ReadAll(body)
		if err != nil {
			return nil, "", bodyError("reading the image", err)
		}
		if len(raw) == 0 {
			return nil, "", errors.New("empty request body: send an image")
		}
		return raw, "body", nil
	}
	return nil, "", errStatus(http.StatusUnsupportedMediaType,
		fmt.Errorf("the Content-Type %q is not an image: send image/*, application/octet-stream or a multipart/form-data form with an \"image\" file", mt))
}

// readPart returns the bytes and file name of the field "image" of a
// multipart form, reading the parts one by one (nothing is kept of the
// others, nothing is written to disk).
func readPart(boundary string, body io.Reader) ([]byte, string, error) {
	if boundary == "" {
		return nil, "", errors.New("multipart form without a boundary parameter in its Content-Type")
	}
	mr := multipart.NewReader(body, boundary)
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil, "", errors.New(`multipart form without an "image" file`)
		}
		if err != nil {
			return nil, "", bodyError(`multipart form without an "image" file`, err)
		}
		if p.FormName() != "image" {
			continue // NextPart skips the rest of this part
		}
		name := cleanName(p.FileName())
		if name == "" {
			name = "image"
		}
		raw, err := io.ReadAll(p)
		if err != nil {
			return nil, "", bodyError("reading the image "+name, err)
		}
		if len(raw) == 0 {
			return nil, "", fmt.Errorf("%s: empty image", name)
		}
		return raw, name, nil
	}
}

// maxNameBytes bounds an uploaded file's name, as errors, logs and
// results repeat it: 255 bytes, the longest file name most file systems
// allow.
const maxNameBytes = 255

// cleanName returns an uploaded file's name fit for errors, logs and
// results: without control characters (no line breaks in a log line),
// at most maxNameBytes long.
func cleanName(name string) string {
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, name)
	for len(name) > maxNameBytes {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name
}

// decodeUpload decodes an uploaded image for preprocessing pre, as
// data.DecodeImage does. Its size, read from its header before anything
// is decoded, must be within maxPixels (data.MaxPixels in the server),
// and its size after pre within maxInputPixels: 400 beyond (a bad
// request, where a body too large in bytes is a 413).
func decodeUpload(raw []byte, name string, pre transform.Preset, maxPixels int64, maxInputPixels int) (*transform.Image, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable image: %w", name, err)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > maxPixels {
		return nil, errStatus(http.StatusBadRequest,
			fmt.Errorf("%s: an image of %dx%d pixels is larger than the limit of %d pixels (--max-pixels)", name, cfg.Width, cfg.Height, maxPixels))
	}
	if err := checkInput(name, cfg.Width, cfg.Height, pre, maxInputPixels); err != nil {
		return nil, err
	}
	in, err := data.DecodeImage(bytes.NewReader(raw), name, pre.Channels)
	if err != nil {
		return nil, err
	}
	// The decoders may disagree with their headers.
	if px := int64(in.W) * int64(in.H); px > maxPixels {
		return nil, errStatus(http.StatusBadRequest,
			fmt.Errorf("%s: an image of %dx%d pixels is larger than the limit of %d pixels (--max-pixels)", name, in.W, in.H, maxPixels))
	}
	if err := checkInput(name, in.W, in.H, pre, maxInputPixels); err != nil {
		return nil, err
	}
	return in, nil
}

// checkInput refuses an image of w x h pixels that pre makes a model
// input of more than maxInputPixels pixels (400).
func checkInput(name string, w, h int, pre transform.Preset, maxInputPixels int) error {
	if oh, ow := pre.OutputSize(w, h); int64(oh)*int64(ow) > int64(maxInputPixels) {
		return errStatus(http.StatusBadRequest,
			fmt.Errorf("%s: an image of %dx%d pixels makes a model input of %dx%d, larger than the limit of %d pixels (the model's preprocessing does not crop; --max-input-pixels)",
				name, w, h, ow, oh, maxInputPixels))
	}
	return nil
}
