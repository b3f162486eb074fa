// Package serve exposes a classifier over HTTP:
//
//	POST /predict      an image (JPEG, PNG, GIF, BMP, TIFF or WebP) as the
//	                   request body or as the "image" field of a multipart
//	                   form; ?topk=K (default 5). Answers a predict.Result
//	                   as JSON, or a JSON error with status 400.
//	GET  /info         the model: architecture, classes, preprocessing.
//	GET  /healthz      "ok".
//
// Requests are classified one at a time: the model and its buffers are not
// shared between concurrent forward passes.
package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"log"
	"mime"
	"net/http"
	"strconv"
	"sync"

	"github.com/resgo/resgo/predict"
	"github.com/resgo/resgo/transform"

	_ "github.com/resgo/resgo/data" // registers the image decoders
)

// MaxImageBytes bounds the size of an uploaded image.
const MaxImageBytes = 32 << 20

// Server answers prediction requests with a classifier.
type Server struct {
	clf *predict.Classifier
	mu  sync.Mutex // one forward pass at a time
}

// New returns a server of clf.
func New(clf *predict.Classifier) *Server { return &Server{clf: clf} }

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /predict", s.predict)
	mux.HandleFunc("GET /info", s.info)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if _, err := io.WriteString(w, "ok\n"); err != nil {
			log.Printf("serve: writing the health check: %v", err)
		}
	})
	return mux
}

func (s *Server) info(w http.ResponseWriter, _ *http.Request) {
	m := s.clf.Model
	writeJSON(w, http.StatusOK, map[string]any{
		"arch": m.Name, "num_classes": m.Options.NumClasses, "classes": s.clf.Classes,
		"preprocess": s.clf.Pre, "backend": m.Backend().Name(),
	})
}

func (s *Server) predict(w http.ResponseWriter, r *http.Request) {
	topk := 5
	if v := r.URL.Query().Get("topk"); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil || k < 1 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("topk %q is not a positive number", v))
			return
		}
		topk = k
	}
	raw, name, err := readImage(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	img, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%s: not a readable image: %w", name, err))
		return
	}
	in := transform.FromImage(img, s.clf.Pre.Channels)
	s.mu.Lock()
	res, err := s.clf.Classify([]*transform.Image{in}, []string{name}, topk)
	s.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, res[0])
}

// readImage returns the uploaded image's bytes and a name for it: the
// multipart field "image", or the whole body.
func readImage(r *http.Request) ([]byte, string, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, MaxImageBytes)
	// A multipart form by its media type, even with a bad parameter (which
	// FormFile then reports). Any other Content-Type, or one that does not
	// parse, sends the body as the image, whose decoding says what is wrong.
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if (err == nil || errors.Is(err, mime.ErrInvalidMediaParameter)) && mt == "multipart/form-data" {
		f, h, err := r.FormFile("image")
		if err != nil {
			return nil, "", fmt.Errorf("multipart form without an \"image\" file: %w", err)
		}
		defer f.Close()
		raw, err := io.ReadAll(f)
		if err != nil {
			return nil, "", fmt.Errorf("reading the image %s: %w", h.Filename, err)
		}
		return raw, h.Filename, nil
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, "", fmt.Errorf("reading the image: %w", err)
	}
	if len(raw) == 0 {
		return nil, "", fmt.Errorf("empty request body: send an image")
	}
	return raw, "body", nil
}

// writeJSON answers with status and v as JSON. A failure to write is
// logged: the status is sent, nothing is left to tell the client (who may
// have gone away).
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		log.Printf("serve: writing the response: %v", err)
	}
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
