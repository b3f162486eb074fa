// Package serve exposes a classifier over HTTP:
//
//	POST /predict      an image (JPEG, PNG, GIF, BMP, TIFF or WebP) as the
//	                   request body or as the "image" field of a multipart
//	                   form; ?topk=K (default 5). Answers a predict.Result
//	                   as JSON.
//	GET  /info         the model: architecture, classes, preprocessing.
//	GET  /healthz      "ok" (503 while the server shuts down).
//
// Every error is a JSON object {"error": "..."} with its status: 400 for a
// bad request or an unreadable image, 404 for an unknown path, 405 for a
// wrong method, 413 for a body or an image larger than the limits, 415 for
// a Content-Type that is not an image or a multipart form, 500 when the
// model fails (a NaN output, say) and 503 while the server shuts down.
//
// Requests are classified one at a time: the model and its buffers are not
// shared between concurrent forward passes. At most MaxDecoding images are
// decoded or held decoded at a time, each within data.MaxPixels.
// Server.Serve bounds connections, time and sizes (Options) and shuts down
// gracefully.
package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"log"
	"math"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/netutil"

	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/predict"
	"github.com/resgo/resgo/transform"
)

// DefaultMaxBodyBytes bounds the size of a request body (an image, or a
// multipart form holding one): 32 MiB holds any camera's JPEG and a PNG of
// about 10 megapixels, far more than a classifier that looks at 224x224
// pixels needs.
const DefaultMaxBodyBytes = 32 << 20

// DefaultMaxConns bounds the connections open at once. Each may buffer a
// body of up to MaxBodyBytes, so 64 bound that memory to 2 GiB; and the
// model answers one request at a time, so more connections would only
// wait longer. Connections beyond it wait in the kernel's accept queue.
const DefaultMaxConns = 64

// DefaultMaxInputPixels bounds the image the model sees after
// preprocessing, for models whose preprocessing does not crop to a fixed
// size (a Fashion-MNIST model takes images as they come): one megapixel,
// 1024x1024, where a ResNet's activations already take hundreds of MiB
// (ResNet-20's first stage alone 64 MiB a tensor); a photo of tens of
// megapixels would make the forward pass allocate tens of GiB.
const DefaultMaxInputPixels = 1 << 20

// MaxDecoding bounds the uploaded images being decoded or, decoded,
// waiting for the model, at once (fewer when GOMAXPROCS is lower): at
// data.DefaultMaxPixels one image may take about 1 GiB on its way to a
// tensor, so 4 bound that to 4 GiB, while decoding, which takes longer
// than a forward pass for a photo, still runs in parallel with the model.
const MaxDecoding = 4

// DefaultMaxHeaderBytes bounds the request line and headers: a prediction
// request's headers take a few hundred bytes; net/http's default is 1 MiB.
const DefaultMaxHeaderBytes = 64 << 10

// Default timeouts of Options, each with the reason for its value.
const (
	// DefaultReadHeaderTimeout: headers of a few hundred bytes arrive in
	// milliseconds; 10 s is for very slow links, and frees a connection
	// held by a client that trickles its headers (slowloris).
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout bounds reading a whole request, body included:
	// a body of DefaultMaxBodyBytes takes 60 s at 4.5 Mbit/s, and a
	// photo of a few MiB a few seconds on a slow mobile link.
	DefaultReadTimeout = 60 * time.Second
	// DefaultWriteTimeout bounds writing a response once it is ready: a
	// JSON answer of a few KiB, written in milliseconds to a client that
	// reads it.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultIdleTimeout bounds how long a kept-alive connection waits for
	// its next request, holding one of MaxConns.
	DefaultIdleTimeout = 30 * time.Second
	// DefaultShutdownTimeout bounds how long a shutdown waits for the
	// requests in flight: a forward pass takes milliseconds to a second.
	DefaultShutdownTimeout = 10 * time.Second
)

// Options are a server's limits, each positive; DefaultOptions returns
// the defaults. The names in its errors are resgo serve's flags.
type Options struct {
	MaxBodyBytes      int64         // request body, bytes (413 beyond)
	MaxConns          int           // connections open at once
	MaxInputPixels    int           // the model's input after preprocessing (413 beyond)
	MaxHeaderBytes    int           // request line and headers, bytes
	ReadHeaderTimeout time.Duration // reading the request line and headers
	ReadTimeout       time.Duration // reading the whole request, body included
	WriteTimeout      time.Duration // writing a response
	IdleTimeout       time.Duration // a kept-alive connection waiting for its next request
	ShutdownTimeout   time.Duration // finishing the requests in flight at shutdown
}

// DefaultOptions returns the default limits (the constants above).
func DefaultOptions() Options {
	return Options{
		MaxBodyBytes:      DefaultMaxBodyBytes,
		MaxConns:          DefaultMaxConns,
		MaxInputPixels:    DefaultMaxInputPixels,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		ReadTimeout:       DefaultReadTimeout,
		WriteTimeout:      DefaultWriteTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		ShutdownTimeout:   DefaultShutdownTimeout,
	}
}

// check reports a limit that is not positive.
func (o Options) check() error {
	for _, c := range []struct {
		name string
		v    int64
		show any
	}{
		{"max-body-bytes", o.MaxBodyBytes, o.MaxBodyBytes}, {"max-conns", int64(o.MaxConns), o.MaxConns},
		{"max-input-pixels", int64(o.MaxInputPixels), o.MaxInputPixels}, {"max-header-bytes", int64(o.MaxHeaderBytes), o.MaxHeaderBytes},
		{"read-header-timeout", int64(o.ReadHeaderTimeout), o.ReadHeaderTimeout}, {"read-timeout", int64(o.ReadTimeout), o.ReadTimeout},
		{"write-timeout", int64(o.WriteTimeout), o.WriteTimeout}, {"idle-timeout", int64(o.IdleTimeout), o.IdleTimeout},
		{"shutdown-timeout", int64(o.ShutdownTimeout), o.ShutdownTimeout},
	} {
		if c.v <= 0 {
			return fmt.Errorf("serve: %s must be positive, not %v", c.name, c.show)
		}
	}
	return nil
}

// classifyFunc classifies images as predict.Classifier.Classify does.
type classifyFunc func(images []*transform.Image, names []string, k int) ([]predict.Result, error)

// Server answers prediction requests with a classifier.
type Server struct {
	clf        *predict.Classifier
	classify   classifyFunc // clf.Classify; replaced in tests
	opts       Options
	model      chan struct{} // one forward pass at a time
	decoding   chan struct{} // images decoded or decoding, held until classified
	serving    atomic.Bool   // set by Serve, which runs once
	draining   atomic.Bool   // set when shutdown begins: new requests get 503
	late       chan struct{} // closed when the shutdown deadline passes: waiting requests get 503
	inFlight   atomic.Int64  // requests in the handler
	turnedAway atomic.Int64  // requests answered 503 because the shutdown deadline passed
}

// lateGrace is how long requests that wait for their turn get, once the
// shutdown deadline has passed, to send their 503 before every connection
// is closed: writing a small JSON answer takes milliseconds.
const lateGrace = 2 * time.Second

// errShuttingDown answers the requests that arrive, or still wait for
// their turn, while the server shuts down.
var errShuttingDown = errStatus(http.StatusServiceUnavailable, errors.New("the server is shutting down: try again later"))

// New returns a server of clf with the limits o. It fails when a limit
// is not positive.
func New(clf *predict.Classifier, o Options) (*Server, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	return &Server{
		clf: clf, classify: clf.Classify, opts: o,
		model:    make(chan struct{}, 1),
		decoding: make(chan struct{}, min(runtime.GOMAXPROCS(0), MaxDecoding)),
		late:     make(chan struct{}),
	}, nil
}

// Serve answers requests on ln, at most Options.MaxConns connections at a
// time, until ctx is done. Then it shuts down gracefully: it stops
// accepting connections, answers the requests in flight, and returns nil
// once they are all answered. When some are still in flight after
// Options.ShutdownTimeout, those waiting for the decoder or the model get
// 503, those still running are cut off (their connections closed), and
// Serve returns an error saying how many of each. It closes ln. A Server
// serves once: a second call is an error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("serve: the server has served already")
	}
	o := s.opts
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(netutil.LimitListener(ln, o.MaxConns)) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: accepting connections on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	shut, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shut)
	<-served // http.ErrServerClosed, as soon as Shutdown began
	if err == nil {
		return nil
	}
	// The deadline passed: the requests waiting for their turn answer 503,
	// then the connections of those still running are closed. (Serve has
	// returned, so this second Shutdown only waits for the connections.)
	close(s.late)
	grace, cancelGrace := context.WithTimeout(context.Background(), lateGrace)
	defer cancelGrace()
	if srv.Shutdown(grace) != nil {
		srv.Close()
	}
	return fmt.Errorf("serve: %v after the shutdown began, %d waiting request(s) answered 503 and %d running cut off",
		o.ShutdownTimeout, s.turnedAway.Load(), s.inFlight.Load())
}

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/predict", s.only(http.MethodPost, s.predict))
	mux.HandleFunc("/info", s.only(http.MethodGet, s.info))
	mux.HandleFunc("/healthz", s.only(http.MethodGet, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if _, err := io.WriteString(w, "ok\n"); err != nil {
			log.Printf("serve: writing the health check: %v", err)
		}
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, http.StatusNotFound, fmt.Errorf("no such path %q: POST /predict, GET /info or GET /healthz", r.URL.Path))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		// net/http drops the requests it reads after the shutdown began;
		// one that slipped through answers 503 (and /healthz with it).
		if s.draining.Load() {
			w.Header().Set("Connection", "close")
			s.writeError(w, http.StatusServiceUnavailable, errShuttingDown)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// only answers 405 to the methods other than method (and HEAD for GET).
func (s *Server) only(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			s.writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s %s: use %s", r.Method, r.URL.Path, method))
			return
		}
		h(w, r)
	}
}

// preprocessInfo is a transform.Preset in /info's JSON.
type preprocessInfo struct {
	ResizeSize int       `json:"resize_size"`
	CropSize   int       `json:"crop_size"`
	Channels   int       `json:"channels"`
	Mean       []float32 `json:"mean"`
	Std        []float32 `json:"std"`
}

func (s *Server) info(w http.ResponseWriter, _ *http.Request) {
	m, p := s.clf.Model, s.clf.Pre
	s.writeJSON(w, http.StatusOK, map[string]any{
		"arch": m.Name, "num_classes": m.Options.NumClasses, "classes": s.clf.Classes,
		"preprocess": preprocessInfo{ResizeSize: p.ResizeSize, CropSize: p.CropSize, Channels: p.Channels,
			Mean: p.Norm.Mean, Std: p.Norm.Std},
		"backend": m.Backend().Name(),
	})
}

func (s *Server) predict(w http.ResponseWriter, r *http.Request) {
	topk := 5
	if v := r.URL.Query().Get("topk"); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil || k < 1 {
			s.writeError(w, http.StatusBadRequest, fmt.Errorf("topk %q is not a positive number", v))
			return
		}
		topk = k
	}
	if r.ContentLength > s.opts.MaxBodyBytes {
		s.writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("a body of %d bytes is larger than the limit of %d", r.ContentLength, s.opts.MaxBodyBytes))
		return
	}
	body := http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
	raw, name, err := readUpload(r.Header.Get("Content-Type"), body)
	if err != nil {
		s.writeError(w, statusOf(err), err)
		return
	}
	res, status, err := s.classifyUpload(w, r, raw, name, topk)
	switch {
	case status == 0:
		// Answered 503, or the client went away.
	case err != nil:
		if status >= 500 {
			log.Printf("serve: %s: %v", name, err)
		}
		s.writeError(w, status, err)
	default:
		s.writeJSON(w, status, res)
	}
}

// classifyUpload decodes an uploaded image and classifies it, holding a
// decoding slot from the decoding to the end of the classification (so
// that at most cap(s.decoding) decoded images are held at once) and the
// model's slot for the classification. It returns the result or an
// error, and the status to answer; status 0 when there is nothing to
// answer (see acquire).
func (s *Server) classifyUpload(w http.ResponseWriter, r *http.Request, raw []byte, name string, topk int) (predict.Result, int, error) {
	if !s.acquire(w, r, s.decoding) {
		return predict.Result{}, 0, nil
	}
	defer func() { <-s.decoding }()
	in, err := decodeUpload(raw, name, s.clf.Pre, data.MaxPixels, s.opts.MaxInputPixels)
	if err != nil {
		return predict.Result{}, statusOf(err), err
	}
	if !s.acquire(w, r, s.model) {
		return predict.Result{}, 0, nil
	}
	res, err := s.classify([]*transform.Image{in}, []string{name}, topk)
	<-s.model
	if err == nil {
		err = checkResult(res)
	}
	if err != nil {
		return predict.Result{}, http.StatusInternalServerError, err
	}
	return res[0], http.StatusOK, nil
}

// acquire takes a slot of sem for r, or reports false: when r's client
// went away (nothing to answer), or when the shutdown deadline passed
// (answered 503).
func (s *Server) acquire(w http.ResponseWriter, r *http.Request, sem chan struct{}) bool {
	select {
	case <-s.late: // even when a slot is free
	default:
		select {
		case <-s.late:
		case sem <- struct{}{}:
			return true
		case <-r.Context().Done():
			return false
		}
	}
	s.turnedAway.Add(1)
	s.writeError(w, http.StatusServiceUnavailable, errShuttingDown)
	return false
}

// checkResult reports a classification that is not one finite result:
// json cannot encode NaN, and a NaN answer is a broken model, not a
// prediction.
func checkResult(res []predict.Result) error {
	if len(res) != 1 {
		return fmt.Errorf("the model answered %d results for one image", len(res))
	}
	for i, v := range res[0].Logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("the model's output is not a number (logit %d is %v): its weights are broken", i, v)
		}
	}
	for _, c := range res[0].Top {
		if math.IsNaN(c.Prob) || math.IsInf(c.Prob, 0) {
			return fmt.Errorf("the model's output is not a number (probability of %q is %v)", c.Name, c.Prob)
		}
	}
	return nil
}

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
// and its size after pre within maxInputPixels: 413 beyond.
func decodeUpload(raw []byte, name string, pre transform.Preset, maxPixels int64, maxInputPixels int) (*transform.Image, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable image: %w", name, err)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > maxPixels {
		return nil, errStatus(http.StatusRequestEntityTooLarge,
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
		return nil, errStatus(http.StatusRequestEntityTooLarge,
			fmt.Errorf("%s: an image of %dx%d pixels is larger than the limit of %d pixels (--max-pixels)", name, in.W, in.H, maxPixels))
	}
	if err := checkInput(name, in.W, in.H, pre, maxInputPixels); err != nil {
		return nil, err
	}
	return in, nil
}

// checkInput refuses an image of w x h pixels that pre makes a model
// input of more than maxInputPixels pixels (413).
func checkInput(name string, w, h int, pre transform.Preset, maxInputPixels int) error {
	if oh, ow := pre.OutputSize(w, h); int64(oh)*int64(ow) > int64(maxInputPixels) {
		return errStatus(http.StatusRequestEntityTooLarge,
			fmt.Errorf("%s: an image of %dx%d pixels makes a model input of %dx%d, larger than the limit of %d pixels (the model's preprocessing does not crop; --max-input-pixels)",
				name, w, h, ow, oh, maxInputPixels))
	}
	return nil
}

// writeJSON answers with status and v as JSON, within Options.WriteTimeout
// from now (classifying may have taken a while). A value that does not
// encode answers 500; a failure to write is logged: the status is sent,
// nothing is left to tell the client (who may have gone away).
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	buf, err := json.Marshal(v)
	if err != nil {
		log.Printf("serve: encoding the response: %v", err)
		status = http.StatusInternalServerError
		buf, _ = json.Marshal(map[string]string{"error": fmt.Sprintf("encoding the response: %v", err)})
	}
	if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		log.Printf("serve: setting the write deadline: %v", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(buf)+1))
	w.WriteHeader(status)
	if _, err := w.Write(append(buf, '\n')); err != nil {
		log.Printf("serve: writing the response: %v", err)
	}
}

// writeError answers with status and {"error": err}.
func (s *Server) writeError(w http.ResponseWriter, status int, err error) {
	s.writeJSON(w, status, map[string]string{"error": err.Error()})
}
