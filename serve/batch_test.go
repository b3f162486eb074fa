package serve_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resgo/resgo/internal/shapes"
	"github.com/resgo/resgo/predict"
	"github.com/resgo/resgo/serve"
	"github.com/resgo/resgo/transform"
)

// gate is a model that waits for the test before each forward pass and
// records the size of each batch.
type gate struct {
	mu      sync.Mutex
	sizes   []int
	entered chan int      // the batch size, as each forward pass begins
	release chan struct{} // one value lets one forward pass run
}

func newGate(t *testing.T, s *serve.Server, clf *predict.Classifier) *gate {
	g := &gate{entered: make(chan int, 100), release: make(chan struct{}, 100)}
	serve.SetClassify(s, func(inputs []predict.Input, k int) ([]predict.Result, error) {
		g.mu.Lock()
		g.sizes = append(g.sizes, len(inputs))
		g.mu.Unlock()
		g.entered <- len(inputs)
		select {
		case <-g.release:
		case <-time.After(20 * time.Second):
			return nil, fmt.Errorf("the test did not release the model")
		}
		return clf.ClassifyInputs(inputs, k)
	})
	return g
}

func (g *gate) batches() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.sizes...)
}

// waitEntered waits for a forward pass to begin and returns its batch size.
func (g *gate) waitEntered(t *testing.T) int {
	t.Helper()
	select {
	case n := <-g.entered:
		return n
	case <-time.After(20 * time.Second):
		t.Fatal("no forward pass began within 20 s")
		return 0
	}
}

// waitQueue waits until n requests wait for the model.
func waitQueue(t *testing.T, s *serve.Server, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); serve.QueueLen(s) != n; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued after 20 s, want %d", serve.QueueLen(s), n)
		}
	}
}

// TestBatching: requests that arrive while the model is busy are
// classified together, up to MaxBatch, each getting its own result: the
// same classes as alone, logits within float rounding of a batch of one.
func TestBatching(t *testing.T) {
	clf := classifier(t, cropped)
	o := serve.DefaultOptions()
	o.MaxBatch = 4
	o.MaxWait = 200 * time.Millisecond // a full queue does not wait
	s := newServer(t, clf, o)
	g := newGate(t, s, clf)
	r := start(t, s)
	raws := make([][]byte, 7)
	for i := range raws {
		raws[i] = pngOf(t, shapesImage(i))
	}
	var answers []<-chan answer
	answers = append(answers, postAsync(r.addr, raws[0]))
	if n := g.waitEntered(t); n != 1 {
		t.Fatalf("the first request alone: a batch of %d", n)
	}
	for _, raw := range raws[1:] {
		answers = append(answers, postAsync(r.addr, raw))
	}
	waitQueue(t, s, 6)
	for range 3 {
		g.release <- struct{}{}
	}
	got := make([]answer, len(answers))
	for i, c := range answers {
		got[i] = receive(t, c)
	}
	for i, a := range got { // the model is idle: the test may use clf
		if a.err != nil || a.status != 200 {
			t.Fatalf("request %d: status %d, %v, %v", i, a.status, a.body, a.err)
		}
		want := classifyAlone(t, clf, raws[i])
		top := a.body["top"].([]any)
		logits := a.body["logits"].([]any)
		if len(top) != 4 || int(top[0].(map[string]any)["index"].(float64)) != want.Top[0].Index {
			t.Errorf("request %d: top %v, alone %v", i, top, want.Top)
		}
		for c, v := range logits {
			if d := math.Abs(v.(float64) - float64(want.Logits[c])); d > 1e-4 {
				t.Errorf("request %d: logit %d is %v, alone %v", i, c, v, want.Logits[c])
			}
		}
	}
	if got := g.batches(); fmt.Sprint(got) != "[1 4 2]" {
		t.Errorf("batches %v, want [1 4 2]", got)
	}
}

// TestLoneRequestDoesNotWait: with nothing else on its way, a request is
// classified at once, not after MaxWait.
func TestLoneRequestDoesNotWait(t *testing.T) {
	clf := classifier(t, cropped)
	o := serve.DefaultOptions()
	o.MaxWait = 10 * time.Second
	srv := httptest.NewServer(newServer(t, clf, o).Handler())
	defer srv.Close()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Post(srv.URL+"/predict", "image/png", bytes.NewReader(pngBytes(t)))
	if err != nil {
		t.Fatalf("a lone request waited for the batch: %v", err)
	}
	var got predict.Result
	if status := decode(t, resp, &got); status != 200 {
		t.Errorf("status %d", status)
	}
}

// TestQueueFull: when Queue requests wait for the model, the next one is
// answered 503 with Retry-After at once, and the waiting ones still get
// their answers.
func TestQueueFull(t *testing.T) {
	clf := classifier(t, cropped)
	o := serve.DefaultOptions()
	o.MaxBatch = 1
	o.Queue = 2
	s := newServer(t, clf, o)
	g := newGate(t, s, clf)
	r := start(t, s)
	raw := pngBytes(t)
	answers := []<-chan answer{postAsync(r.addr, raw)}
	g.waitEntered(t)
	answers = append(answers, postAsync(r.addr, raw), postAsync(r.addr, raw))
	waitQueue(t, s, 2)

	resp, err := http.Post("http://"+r.addr+"/predict", "image/png", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]string
	if status := decode(t, resp, &e); status != 503 || !strings.Contains(e["error"], "queue is full") || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("a request beyond the queue: status %d, %v, Retry-After %q; want 503, 1", status, e, resp.Header.Get("Retry-After"))
	}
	for range 3 {
		g.release <- struct{}{}
	}
	for i, c := range answers {
		if a := receive(t, c); a.status != 200 {
			t.Errorf("request %d: status %d, %v, %v", i, a.status, a.body, a.err)
		}
	}
	body := metricsText(t, "http://"+r.addr)
	for _, want := range []string{
		`resgo_http_requests_total{code="200",handler="/predict"} 3`,
		`resgo_http_requests_total{code="503",handler="/predict"} 1`,
		`resgo_batch_size_count 3`,
		`resgo_queue_length 0`,
		`resgo_queue_capacity 2`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestClientGone: a queued request whose client went away is left out of
// its batch.
func TestClientGone(t *testing.T) {
	clf := classifier(t, cropped)
	s := newServer(t, clf, serve.DefaultOptions())
	g := newGate(t, s, clf)
	r := start(t, s)
	raw := pngBytes(t)
	first := postAsync(r.addr, raw)
	g.waitEntered(t)
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+r.addr+"/predict", bytes.NewReader(raw))
		req.Header.Set("Content-Type", "image/png")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		gone <- err
	}()
	waitQueue(t, s, 1)
	cancel()
	<-gone
	waitInFlight(t, s, 1) // its handler saw its client leave
	second := postAsync(r.addr, raw)
	waitQueue(t, s, 2)
	g.release <- struct{}{}
	if a := receive(t, first); a.status != 200 {
		t.Fatalf("the first request: %d %v %v", a.status, a.body, a.err)
	}
	if n := g.waitEntered(t); n != 1 {
		t.Errorf("a batch of %d, want 1: the request whose client left is left out", n)
	}
	g.release <- struct{}{}
	if a := receive(t, second); a.status != 200 {
		t.Fatalf("the second request: %d %v %v", a.status, a.body, a.err)
	}
	if body := metricsText(t, "http://"+r.addr); !strings.Contains(body, "resgo_dropped_requests_total 1\n") {
		t.Errorf("/metrics: want resgo_dropped_requests_total 1 in\n%s", body)
	}
}

// TestModelPanics: a model that panics answers 500, and the server goes on.
func TestModelPanics(t *testing.T) {
	clf := classifier(t, cropped)
	s := newServer(t, clf, serve.DefaultOptions())
	calls := 0
	serve.SetClassify(s, func(inputs []predict.Input, k int) ([]predict.Result, error) {
		calls++
		if calls == 1 {
			panic("index out of range")
		}
		return clf.ClassifyInputs(inputs, k)
	})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	defer s.Close()
	for i, want := range []int{500, 200} {
		resp, err := http.Post(srv.URL+"/predict", "image/png", bytes.NewReader(pngBytes(t)))
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if status := decode(t, resp, &v); status != want || (want == 500 && !strings.Contains(fmt.Sprint(v["error"]), "the model failed on a batch of 1: index out of range")) {
			t.Errorf("request %d: status %d, %v; want %d", i, status, v, want)
		}
	}
}

// TestMetrics: /metrics is Prometheus's text format, with the requests by
// status, the latency and batch-size histograms and the queue's length.
func TestMetrics(t *testing.T) {
	srv, _ := server(t)
	http.Post(srv.URL+"/predict", "image/png", bytes.NewReader(pngBytes(t)))
	http.Post(srv.URL+"/predict", "image/png", strings.NewReader("not an image"))
	http.Get(srv.URL + "/nope")
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, ct)
	}
	body := string(raw)
	for _, want := range []string{
		"# TYPE resgo_http_requests_total counter",
		`resgo_http_requests_total{code="200",handler="/predict"} 1`,
		`resgo_http_requests_total{code="400",handler="/predict"} 1`,
		`resgo_http_requests_total{code="404",handler="other"} 1`,
		"# TYPE resgo_predict_duration_seconds histogram",
		`resgo_predict_duration_seconds_count{code="200"} 1`,
		"# TYPE resgo_batch_size histogram",
		`resgo_batch_size_bucket{le="1"} 1`,
		"resgo_batch_size_count 1",
		"# TYPE resgo_queue_length gauge",
		"resgo_queue_length 0",
		"resgo_forward_duration_seconds_count 1",
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Every sample line: a name, optional labels, a number.
	sample := regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? \S+$`)
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if !sample.MatchString(line) {
			t.Errorf("not a sample line: %q", line)
			continue
		}
		if _, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err != nil {
			t.Errorf("not a number in %q", line)
		}
	}
}

// shapesImage returns the i-th test image: a shape of class i%4.
func shapesImage(i int) image.Image {
	return shapes.Draw(i%4, 40, rand.New(rand.NewPCG(uint64(i), 9)))
}

// classifyAlone classifies a PNG with clf, in a batch of its own.
func classifyAlone(t *testing.T, clf *predict.Classifier, raw []byte) predict.Result {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	res, err := clf.Classify([]*transform.Image{transform.FromImage(img, 3)}, []string{"x"}, 4)
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

// metricsText returns the body of GET base/metrics.
func metricsText(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return string(raw)
}

// TestAnswerAfterWriteTimeout: a request that waited for the model longer
// than the write timeout still gets its answer: the write deadline starts
// when the answer is ready.
func TestAnswerAfterWriteTimeout(t *testing.T) {
	clf := classifier(t, cropped)
	o := serve.DefaultOptions()
	o.WriteTimeout = 200 * time.Millisecond
	s := newServer(t, clf, o)
	serve.SetClassify(s, func(inputs []predict.Input, k int) ([]predict.Result, error) {
		time.Sleep(500 * time.Millisecond) // a slow model
		return clf.ClassifyInputs(inputs, k)
	})
	r := start(t, s)
	if a := receive(t, postAsync(r.addr, pngBytes(t))); a.err != nil || a.status != 200 || a.body["top"] == nil {
		t.Errorf("status %d, %v, %v; want 200 and a prediction", a.status, a.body, a.err)
	}
}
