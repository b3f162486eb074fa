// Package serve exposes a classifier over HTTP, batching concurrent requests:
//
//	GET  /             a web page: choose or drop an image, see its top-5
//	                   classes and the latency.
//	POST /predict      an image (JPEG, PNG, GIF, BMP, TIFF or WebP) as the
//	                   request body or as the "image" field of a multipart
//	                   form; ?topk=K (default 5). Answers a predict.Result
//	                   as JSON.
//	GET  /info         the model: architecture, classes, preprocessing.
//	GET  /metrics      Prometheus metrics: requests by status, latency,
//	                   batch sizes, queue length.
//	GET  /healthz      "ok" (503 while the server shuts down).
//
// Every error is a JSON object {"error": "..."} with its status: 400 for a
// bad request, an unreadable image or one of more pixels than the limits
// (read from its header, before decoding), 404 for an unknown path, 405
// for a wrong method, 413 for a body larger than the limit, 415 for a
// Content-Type that is not an image or a multipart form, 500 when the
// model fails (a NaN output, say) and 503, with Retry-After, when the
// queue is full or the server shuts down.
//
// Each request decodes and preprocesses its image in its own goroutine (at
// most MaxDecoding at a time, each image within data.MaxPixels), then
// queues it (at most Options.Queue; 503 beyond). One goroutine owns the
// model: it gathers the queued inputs, up to Options.MaxBatch waiting at
// most Options.MaxWait for more (not at all when no other request is in
// the server), into one forward pass, and sends each request its result;
// it skips the requests whose client went away.
// Server.Serve bounds connections, time and sizes (Options) and shuts down
// gracefully.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"

	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/predict"
)

// DefaultMaxBodyBytes bounds the size of a request body (an image, or a
// multipart form holding one): 32 MiB holds any camera's JPEG and a PNG of
// about 10 megapixels, far more than a classifier that looks at 224x224
// pixels needs.
const DefaultMaxBodyBytes = 32 << 20

// DefaultMaxConns bounds the connections open at once. Each may buffer a
// body of up to MaxBodyBytes, so 64 bound that memory to 2 GiB; and at
// most DefaultQueue requests wait for the model, so more connections would
// mostly be answered 503. Connections beyond it wait in the kernel's
// accept queue.
const DefaultMaxConns = 64

// DefaultMaxInputPixels bounds the image the model sees after
// preprocessing, for models whose preprocessing does not crop to a fixed
// size (a Fashion-MNIST model takes images as they come): one megapixel,
// 1024x1024, where a ResNet's activations already take hundreds of MiB
// (ResNet-20's first stage alone 64 MiB a tensor); a photo of tens of
// megapixels would make the forward pass allocate tens of GiB.
const DefaultMaxInputPixels = 1 << 20

// MaxDecoding bounds the uploaded images being decoded and preprocessed at
// once (fewer when GOMAXPROCS is lower): at data.DefaultMaxPixels one
// image may take about 1 GiB on its way to a tensor, so 4 bound that to 4
// GiB. Decoding runs in parallel with the model.
const MaxDecoding = 4

// DefaultMaxHeaderBytes bounds the request line and headers: a prediction
// request's headers take a few hundred bytes; net/http's default is 1 MiB.
const DefaultMaxHeaderBytes = 64 << 10

// Defaults of the batching.
const (
	// DefaultMaxBatch is the largest forward pass: 8 images, the batch
	// at which a ResNet's throughput on a CPU is near its best while one
	// batch still takes well under a second.
	DefaultMaxBatch = 8
	// DefaultMaxWait is how long the model waits for a batch to fill
	// once it has a request and other requests are in the server: 5 ms, a
	// small part of a forward pass, and time enough for the clients just
	// answered to send their next images.
	DefaultMaxWait = 5 * time.Millisecond
	// DefaultQueue bounds the preprocessed requests waiting for the
	// model: 64, eight full batches; 3x224x224 inputs take 38 MiB.
	DefaultQueue = 64
)

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

// Options are a server's limits, each positive (MaxWait may be 0);
// DefaultOptions returns the defaults. The names in its errors are resgo
// serve's flags.
type Options struct {
	MaxBodyBytes      int64         // request body, bytes (413 beyond)
	MaxConns          int           // connections open at once
	MaxInputPixels    int           // the model's input after preprocessing (400 beyond)
	MaxHeaderBytes    int           // request line and headers, bytes
	MaxBatch          int           // images in one forward pass
	MaxWait           time.Duration // waiting for a batch to fill
	Queue             int           // preprocessed requests waiting for the model (503 beyond)
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
		MaxBatch:          DefaultMaxBatch,
		MaxWait:           DefaultMaxWait,
		Queue:             DefaultQueue,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		ReadTimeout:       DefaultReadTimeout,
		WriteTimeout:      DefaultWriteTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		ShutdownTimeout:   DefaultShutdownTimeout,
	}
}

// check reports a limit that is not positive.
func (o Options) check() error {
	if o.MaxWait < 0 {
		return fmt.Errorf("serve: max-wait must not be negative, not %v", o.MaxWait)
	}
	for _, c := range []struct {
		name string
		v    int64
		show any
	}{
		{"max-body-bytes", o.MaxBodyBytes, o.MaxBodyBytes}, {"max-conns", int64(o.MaxConns), o.MaxConns},
		{"max-input-pixels", int64(o.MaxInputPixels), o.MaxInputPixels}, {"max-header-bytes", int64(o.MaxHeaderBytes), o.MaxHeaderBytes},
		{"max-batch", int64(o.MaxBatch), o.MaxBatch}, {"queue", int64(o.Queue), o.Queue},
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

// classifyFunc classifies preprocessed inputs in one forward pass, as
// predict.Classifier.ClassifyInputs does.
type classifyFunc func(inputs []predict.Input, k int) ([]predict.Result, error)

// Server answers prediction requests with a classifier. Its batcher
// goroutine, started by New, owns the classifier's forward passes; Serve
// stops it when it returns, Close otherwise.
type Server struct {
	clf        *predict.Classifier
	classify   classifyFunc // clf.ClassifyInputs; replaced in tests
	opts       Options
	metrics    *metrics
	decoding   chan struct{} // images being decoded and preprocessed
	queue      chan *job     // preprocessed requests waiting for the model
	predicting atomic.Int64  // requests in the /predict handler
	quit       chan struct{} // closed by Close: the batcher stops
	closeOnce  sync.Once
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

// New returns a server of clf with the limits o, and starts the goroutine
// that runs clf's forward passes. It fails when a limit is not positive.
// From then on only the server may use clf.
func New(clf *predict.Classifier, o Options) (*Server, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	s := &Server{
		clf: clf, classify: clf.ClassifyInputs, opts: o,
		decoding: make(chan struct{}, min(runtime.GOMAXPROCS(0), MaxDecoding)),
		queue:    make(chan *job, o.Queue),
		quit:     make(chan struct{}),
		late:     make(chan struct{}),
	}
	s.metrics = newMetrics(s)
	go s.batcher()
	return s, nil
}

// Close stops the goroutine that runs the forward passes, once the one
// running (if any) is done; requests still waiting, and later ones, get
// 503. Serve calls it when it returns; call it when done with a Server
// used through Handler alone.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.quit) })
}

// Serve answers requests on ln, at most Options.MaxConns connections at a
// time, until ctx is done. Then it shuts down gracefully: it stops
// accepting connections, answers the requests in flight, and returns nil
// once they are all answered. When some are still in flight after
// Options.ShutdownTimeout, those waiting for the decoder or the model get
// 503, those still running are cut off (their connections closed), and
// Serve returns an error saying how many of each. It closes ln, and the
// server (Close). A Server serves once: a second call is an error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("serve: the server has served already")
	}
	defer s.Close()
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
	stuck := s.inFlight.Load()
	close(s.late)
	grace, cancelGrace := context.WithTimeout(context.Background(), lateGrace)
	defer cancelGrace()
	if srv.Shutdown(grace) != nil {
		srv.Close()
	}
	turnedAway := s.turnedAway.Load()
	return fmt.Errorf("serve: %v after the shutdown began, %d waiting request(s) answered 503 and %d running cut off",
		o.ShutdownTimeout, turnedAway, max(stuck-turnedAway, 0))
}

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(path, method string, h http.HandlerFunc) {
		pattern := path
		if path == "/" {
			pattern = "/{$}" // "/" alone; other paths are 404
		}
		mux.Handle(pattern, s.metrics.count(path, s.only(method, h)))
	}
	route("/predict", http.MethodPost, s.metrics.time(s.predict))
	route("/info", http.MethodGet, s.info)
	route("/metrics", http.MethodGet, s.metrics.handler().ServeHTTP)
	route("/healthz", http.MethodGet, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if _, err := io.WriteString(w, "ok\n"); err != nil {
			log.Printf("serve: writing the health check: %v", err)
		}
	})
	for _, f := range pageFiles {
		route(f.path, http.MethodGet, s.page(f))
	}
	mux.Handle("/", s.metrics.count("other", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, http.StatusNotFound, fmt.Errorf("no such path %q: GET /, POST /predict, GET /info, GET /metrics or GET /healthz", r.URL.Path))
	})))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		mux.ServeHTTP(w, r)
	})
}

// only answers 405 to the methods other than method (and HEAD for GET),
// and 503 once the server shuts down: net/http drops the requests it reads
// after the shutdown began; one that slipped through answers 503 (and
// /healthz with it, for load balancers).
func (s *Server) only(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			w.Header().Set("Connection", "close")
			s.writeError(w, http.StatusServiceUnavailable, errShuttingDown)
			return
		}
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
		"backend":   m.Backend().Name(),
		"max_batch": s.opts.MaxBatch,
		"queue":     s.opts.Queue,
	})
}

func (s *Server) predict(w http.ResponseWriter, r *http.Request) {
	s.predicting.Add(1)
	defer s.predicting.Add(-1)
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
	began := time.Now()
	j, status, err := s.prepare(w, r, raw, name, topk)
	if status == 0 {
		return // answered 503, or the client went away
	}
	if err == nil {
		status, err = s.enqueue(j)
	}
	if err != nil {
		s.writeError(w, status, err)
		return
	}
	decoded := time.Since(began)
	rep, ok := s.wait(w, r, j)
	if !ok {
		return
	}
	if rep.err != nil {
		log.Printf("serve: %s: %v", name, rep.err)
		s.writeError(w, http.StatusInternalServerError, rep.err)
		return
	}
	// The time each step took, for the web page and the browser's tools.
	w.Header().Set("Server-Timing", fmt.Sprintf("decode;dur=%.1f, queue;dur=%.1f, model;dur=%.1f;desc=\"batch of %d\"",
		ms(decoded), ms(rep.queued), ms(rep.forward), rep.batch))
	s.writeJSON(w, http.StatusOK, rep.res)
}

// wait waits for j's reply, or reports false: when r's client went away
// (the batcher skips the job, or its reply is dropped), or when j still
// waits in the queue once the shutdown deadline passed or the server
// closed (answered 503). A job in the model is waited for until its
// connection is closed.
func (s *Server) wait(w http.ResponseWriter, r *http.Request, j *job) (reply, bool) {
	late, quit := s.late, s.quit
	for {
		select {
		case rep := <-j.done:
			return rep, true
		case <-r.Context().Done():
			return reply{}, false
		case <-late:
			late = nil
			if j.running.Load() {
				continue
			}
			s.turnedAway.Add(1)
		case <-quit:
			quit = nil
			if j.running.Load() {
				continue
			}
		}
		s.writeError(w, http.StatusServiceUnavailable, errShuttingDown)
		return reply{}, false
	}
}

// ms returns d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// prepare decodes an uploaded image and preprocesses it into a job,
// holding a decoding slot (so that at most cap(s.decoding) images are
// decoded at once). It returns the job or an error, and the status to
// answer; status 0 when there is nothing to answer (see acquire).
func (s *Server) prepare(w http.ResponseWriter, r *http.Request, raw []byte, name string, topk int) (*job, int, error) {
	if !s.acquire(w, r, s.decoding) {
		return nil, 0, nil
	}
	defer func() { <-s.decoding }()
	im, err := decodeUpload(raw, name, s.clf.Pre, data.MaxPixels, s.opts.MaxInputPixels)
	if err != nil {
		return nil, statusOf(err), err
	}
	return &job{ctx: r.Context(), in: s.clf.Preprocess(im, name), k: topk, done: make(chan reply, 1)}, http.StatusOK, nil
}

// errQueueFull answers the requests that find the queue full.
var errQueueFull = errStatus(http.StatusServiceUnavailable, errors.New("the server is busy (its queue is full): try again in a second"))

// enqueue queues j for the model, or answers 503 when the queue is full
// or the server closed.
func (s *Server) enqueue(j *job) (int, error) {
	select {
	case <-s.quit:
		return http.StatusServiceUnavailable, errShuttingDown
	default:
	}
	j.queued = time.Now()
	select {
	case s.queue <- j:
		return http.StatusOK, nil
	default:
		return http.StatusServiceUnavailable, errQueueFull
	}
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

// writeError answers with status and {"error": err}; a 503 says when to
// try again (Retry-After: 1 second).
func (s *Server) writeError(w http.ResponseWriter, status int, err error) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	s.writeJSON(w, status, map[string]string{"error": err.Error()})
}
