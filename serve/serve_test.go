package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resgo/resgo/backend"
	_ "github.com/resgo/resgo/backend/dnnl"
	_ "github.com/resgo/resgo/backend/ref"
	"github.com/resgo/resgo/internal/shapes"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/predict"
	"github.com/resgo/resgo/serve"
	"github.com/resgo/resgo/transform"
)

// cropped is the preprocessing of the test models: a fixed 32x32 input.
var cropped = transform.Preset{ResizeSize: 32, CropSize: 32, Channels: 3, Norm: transform.ImageNet}

// classifier returns a ResNet-20 of the four shapes classes.
func classifier(t *testing.T, pre transform.Preset) *predict.Classifier {
	t.Helper()
	b, err := backend.Default()
	if err != nil {
		t.Fatal(err)
	}
	m, err := resnet.New(b, "resnet20", resnet.Options{IncludeTop: true, NumClasses: 4, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	clf, err := predict.New(m, shapes.Names, pre)
	if err != nil {
		t.Fatal(err)
	}
	return clf
}

// newServer returns a serve.Server of clf with the limits o.
func newServer(t *testing.T, clf *predict.Classifier, o serve.Options) *serve.Server {
	t.Helper()
	s, err := serve.New(clf, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// server returns an httptest server of a ResNet-20 with the default limits.
func server(t *testing.T) (*httptest.Server, *predict.Classifier) {
	t.Helper()
	clf := classifier(t, cropped)
	srv := httptest.NewServer(newServer(t, clf, serve.DefaultOptions()).Handler())
	t.Cleanup(srv.Close)
	return srv, clf
}

func pngOf(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func pngBytes(t *testing.T) []byte {
	return pngOf(t, shapes.Draw(1, 40, rand.New(rand.NewPCG(1, 2))))
}

// pngClaiming returns a PNG whose header claims w x h pixels (its data is
// one pixel's): what a decompression bomb sends.
func pngClaiming(t *testing.T, w, h uint32) []byte {
	b := pngOf(t, image.NewGray(image.Rect(0, 0, 1, 1)))
	// Signature (8 bytes), IHDR's length and type (8), then its data:
	// width and height; the chunk's CRC covers type and data.
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

func multipartBody(t *testing.T, field, file string, content []byte) (*bytes.Buffer, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	// A field before the image is skipped.
	if err := mw.WriteField("note", "a field before the image"); err != nil {
		t.Fatal(err)
	}
	fw, err := mw.CreateFormFile(field, file)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(content)
	mw.Close()
	return &body, mw.FormDataContentType()
}

// decode reads a response as JSON into v and returns its status.
func decode(t *testing.T, resp *http.Response, v any) int {
	t.Helper()
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Errorf("status %d with a body that is not JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode
}

func TestPredictBodyAndMultipart(t *testing.T) {
	srv, clf := server(t)
	raw := pngBytes(t)

	resp, err := http.Post(srv.URL+"/predict?topk=2", "image/png", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var got predict.Result
	if status := decode(t, resp, &got); status != 200 || len(got.Top) != 2 || len(got.Logits) != 4 {
		t.Fatalf("status %d, result %+v", status, got)
	}
	// The same answer as the classifier called directly.
	img, _ := png.Decode(bytes.NewReader(raw))
	want, err := clf.Classify([]*transform.Image{transform.FromImage(img, 3)}, []string{"x"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got.Top[0].Index != want[0].Top[0].Index || got.Logits[3] != want[0].Logits[3] {
		t.Errorf("served %+v, direct %+v", got.Top, want[0].Top)
	}

	// curl --data-binary's default Content-Type, and none at all.
	for _, ctype := range []string{"application/x-www-form-urlencoded", "application/octet-stream", ""} {
		req, _ := http.NewRequest("POST", srv.URL+"/predict", bytes.NewReader(raw))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got = predict.Result{}
		if status := decode(t, resp, &got); status != 200 || got.Logits[3] != want[0].Logits[3] {
			t.Errorf("Content-Type %q: status %d, %+v", ctype, status, got)
		}
	}

	body, ctype := multipartBody(t, "image", "square.png", raw)
	resp, err = http.Post(srv.URL+"/predict", ctype, body)
	if err != nil {
		t.Fatal(err)
	}
	got = predict.Result{}
	if status := decode(t, resp, &got); status != 200 || got.Image != "square.png" || len(got.Top) != 4 {
		t.Errorf("multipart: status %d, %+v", status, got)
	}
}

// TestErrors sends each kind of bad request and checks its status and its
// JSON error.
func TestErrors(t *testing.T) {
	clf := classifier(t, cropped)
	o := serve.DefaultOptions()
	o.MaxBodyBytes = 1000
	srv := httptest.NewServer(newServer(t, clf, o).Handler())
	defer srv.Close()
	big := bytes.Repeat([]byte("x"), 1001)
	bigForm, bigFormType := multipartBody(t, "image", "big.png", big)
	noImage, noImageType := multipartBody(t, "file", "a.png", pngBytes(t)[:10])
	for _, c := range []struct {
		method, path, ctype string
		body                io.Reader
		status              int
		want                string
	}{
		{"POST", "/predict", "image/png", strings.NewReader(""), 400, "empty request body"},
		{"POST", "/predict", "image/jpeg", strings.NewReader("not a jpeg at all"), 400, "body: not a readable image"},
		{"POST", "/predict?topk=zero", "image/png", strings.NewReader("x"), 400, "topk"},
		// Multipart by the media type, whatever its case and parameters.
		{"POST", "/predict", "Multipart/Form-Data; boundary=xyz", strings.NewReader("not a form"), 400, `multipart form without an "image" file`},
		{"POST", "/predict", "multipart/form-data; boundary", strings.NewReader("not a form"), 400, "multipart form without a boundary"},
		{"POST", "/predict", noImageType, noImage, 400, `multipart form without an "image" file`},
		{"POST", "/predict", "image/png; q", strings.NewReader("not a png"), 400, "not a readable image"},
		// An image whose header claims 3.6*10^9 pixels: refused before decoding.
		{"POST", "/predict", "image/png", bytes.NewReader(pngClaiming(t, 60000, 60000)), 400, "60000x60000 pixels is larger than the limit"},
		{"POST", "/predict", "image/png", bytes.NewReader(pngClaiming(t, 0, 5)), 400, "not a readable image"},
		// Bodies over the limit: declared, streamed (no length) and in a form.
		{"POST", "/predict", "image/png", bytes.NewReader(big), 413, "1001 bytes is larger than the limit of 1000"},
		{"POST", "/predict", "image/png", io.MultiReader(bytes.NewReader(big)), 413, "larger than the limit of 1000 bytes"},
		{"POST", "/predict", bigFormType, io.MultiReader(bigForm), 413, "larger than the limit of 1000 bytes"},
		{"POST", "/predict", "application/json", strings.NewReader(`{"image": "x"}`), 415, `Content-Type "application/json" is not an image`},
		{"POST", "/predict", "multipart/mixed; boundary=x", strings.NewReader("x"), 415, "is not an image"},
		{"POST", "/predict", "/png", strings.NewReader("x"), 415, "is not a media type"},
		{"GET", "/predict", "", nil, 405, "GET /predict: use POST"},
		{"POST", "/info", "", nil, 405, "POST /info: use GET"},
		{"DELETE", "/healthz", "", nil, 405, "use GET"},
		{"GET", "/nope", "", nil, 404, `no such path "/nope"`},
		{"GET", "/index.html", "", nil, 404, `no such path "/index.html"`},
		{"POST", "/", "", nil, 405, "POST /: use GET"},
		{"PUT", "/metrics", "", nil, 405, "PUT /metrics: use GET"},
	} {
		req, err := http.NewRequest(c.method, srv.URL+c.path, c.body)
		if err != nil {
			t.Fatal(err)
		}
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s %q: %v", c.method, c.path, c.ctype, err)
		}
		var e map[string]string
		status := decode(t, resp, &e)
		if status != c.status || !strings.Contains(e["error"], c.want) || len(e) != 1 {
			t.Errorf("%s %s %q: status %d, %v; want %d and %q", c.method, c.path, c.ctype, status, e, c.status, c.want)
		}
		if c.status == 405 && resp.Header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", c.method, c.path)
		}
	}
}

// TestInputPixels: a model whose preprocessing does not crop takes images
// as they come; one bigger than MaxInputPixels is refused before decoding.
func TestInputPixels(t *testing.T) {
	o := serve.DefaultOptions()
	o.MaxInputPixels = 32 * 32
	srv := httptest.NewServer(newServer(t, classifier(t, transform.Preset{Channels: 3, Norm: transform.ImageNet}), o).Handler())
	defer srv.Close()
	for _, c := range []struct {
		size, status int
	}{{32, 200}, {33, 400}, {16, 200}} {
		resp, err := http.Post(srv.URL+"/predict", "image/png", bytes.NewReader(pngOf(t, image.NewRGBA(image.Rect(0, 0, c.size, c.size)))))
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if status := decode(t, resp, &v); status != c.status {
			t.Errorf("%dx%d: status %d (%v), want %d", c.size, c.size, status, v, c.status)
		}
	}
}

// TestNaNModel: a model whose weights are NaN answers 500 with a JSON
// error, not 200 with an empty body.
func TestNaNModel(t *testing.T) {
	clf := classifier(t, cropped)
	clf.Model.FC.Bias.Value.Mutable()[2] = float32(math.NaN())
	srv := httptest.NewServer(newServer(t, clf, serve.DefaultOptions()).Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/predict", "image/png", bytes.NewReader(pngBytes(t)))
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]string
	if status := decode(t, resp, &e); status != 500 || !strings.Contains(e["error"], "not a number (logit 2 is NaN)") {
		t.Errorf("status %d, %v; want 500 and the NaN logit", status, e)
	}
}

// TestInfo: /info describes the model, every key in snake_case.
func TestInfo(t *testing.T) {
	srv, _ := server(t)
	resp, err := http.Get(srv.URL + "/info")
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	if status := decode(t, resp, &info); status != 200 {
		t.Fatalf("status %d", status)
	}
	if info["arch"] != "resnet20" || info["num_classes"] != 4.0 || len(info["classes"].([]any)) != 4 {
		t.Errorf("info %v", info)
	}
	pre, _ := info["preprocess"].(map[string]any)
	if pre["resize_size"] != 32.0 || pre["crop_size"] != 32.0 || pre["channels"] != 3.0 || len(pre["mean"].([]any)) != 3 {
		t.Errorf("preprocess %v", pre)
	}
	snake := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	for _, m := range []map[string]any{info, pre} {
		for k := range m {
			if !snake.MatchString(k) {
				t.Errorf("/info key %q is not snake_case", k)
			}
		}
	}
}

func TestOptions(t *testing.T) {
	clf := classifier(t, cropped)
	o := serve.DefaultOptions()
	o.MaxConns = 0
	if _, err := serve.New(clf, o); err == nil || !strings.Contains(err.Error(), "max-conns must be positive, not 0") {
		t.Errorf("MaxConns 0: %v", err)
	}
	s, err := serve.New(clf, serve.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if err := s.Serve(ctx, ln); (err != nil) != (i == 1) {
			t.Errorf("Serve %d: %v", i+1, err)
		}
	}
	o = serve.DefaultOptions()
	o.ReadTimeout = -time.Second
	if _, err := serve.New(clf, o); err == nil || !strings.Contains(err.Error(), "read-timeout must be positive, not -1s") {
		t.Errorf("ReadTimeout -1s: %v", err)
	}
}

// countingListener counts the connections it has open, and their peak.
type countingListener struct {
	net.Listener
	open, peak atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	n := l.open.Add(1)
	for p := l.peak.Load(); n > p && !l.peak.CompareAndSwap(p, n); p = l.peak.Load() {
	}
	return &countedConn{Conn: c, l: l}, nil
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// running is a Server serving on loopback.
type running struct {
	addr   string
	ln     *countingListener
	cancel context.CancelFunc
	done   chan error // Serve's result
}

// start serves s on a loopback port until the test ends.
func start(t *testing.T, s *serve.Server) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{addr: ln.Addr().String(), ln: &countingListener{Listener: ln}, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Serve(ctx, r.ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(20 * time.Second):
			t.Error("Serve did not return 20 s after its context was canceled")
		}
	})
	return r
}

// stop cancels Serve's context and returns its result.
func (r *running) stop(t *testing.T, within time.Duration) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(within):
		t.Fatalf("Serve did not return %v after its context was canceled", within)
		return nil
	}
}

// slowClient connects to addr, sends head at once and then msg a byte at a
// time, one every gap, until it is all sent or stop is closed. Its ended channel is closed
// when the server closes the connection (or the client gives up); got is
// then what the server answered.
type slowClient struct {
	conn  net.Conn
	ended chan struct{}
	got   bytes.Buffer
}

func trickle(t *testing.T, addr string, head, msg []byte, gap time.Duration, stop <-chan struct{}) *slowClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(head); err != nil {
		t.Fatal(err)
	}
	c := &slowClient{conn: conn, ended: make(chan struct{})}
	go func() {
		// Reads whatever the server answers until it closes the connection.
		io.Copy(&c.got, conn)
		close(c.ended)
	}()
	go func() {
		defer conn.Close()
		tick := time.NewTicker(gap)
		defer tick.Stop()
		for i := range msg {
			if _, err := conn.Write(msg[i : i+1]); err != nil {
				return
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			case <-c.ended:
				return
			}
		}
		<-stop
	}()
	return c
}

// slowMessages are what slow clients send at once and then trickle:
// headers that never end (slowloris), or complete headers and then a body
// that never ends.
func slowMessages(i int) (head, trickled []byte) {
	if i%2 == 0 {
		return nil, []byte("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nX-Pad: " + strings.Repeat("a", 400) + "\r\n\r\n")
	}
	return []byte("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n"), bytes.Repeat([]byte{0x89}, 600)
}

// predictWithin posts an image and requires a 200 within limit.
func predictWithin(t *testing.T, addr string, raw []byte, limit time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: limit}
	began := time.Now()
	resp, err := client.Post("http://"+addr+"/predict", "image/png", bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("a normal request during the attack: %v", err)
	}
	var got predict.Result
	if status := decode(t, resp, &got); status != 200 || len(got.Top) == 0 {
		t.Fatalf("a normal request during the attack: status %d, %+v", status, got)
	}
	t.Logf("a normal request answered in %v", time.Since(began).Round(time.Millisecond))
}

// TestSlowClients: 50 clients trickling their headers or bodies a byte at
// a time do not keep a normal request from its answer.
func TestSlowClients(t *testing.T) {
	r := start(t, newServer(t, classifier(t, cropped), serve.DefaultOptions()))
	stop := make(chan struct{})
	var clients []*slowClient
	for i := range 50 {
		head, msg := slowMessages(i)
		clients = append(clients, trickle(t, r.addr, head, msg, 100*time.Millisecond, stop))
	}
	// Every slow client connected and sending.
	for deadline := time.Now().Add(5 * time.Second); r.ln.open.Load() < 50 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := r.ln.open.Load(); n < 50 {
		t.Fatalf("%d slow clients connected, want 50", n)
	}
	time.Sleep(300 * time.Millisecond)
	predictWithin(t, r.addr, pngBytes(t), 10*time.Second)
	for _, c := range clients {
		select {
		case <-c.ended:
			t.Error("a slow client was cut off within the default timeouts")
		default:
		}
	}
	close(stop)
	if err := r.stop(t, 10*time.Second); err != nil {
		t.Errorf("shutdown after the slow clients left: %v", err)
	}
}

// TestConnLimitAndTimeouts: with 4 connections at most, 12 slow clients
// never hold more than 4, are cut off by the read timeouts, and a normal
// request still gets its answer; an idle connection is closed after the
// idle timeout.
func TestConnLimitAndTimeouts(t *testing.T) {
	o := serve.DefaultOptions()
	o.MaxConns = 4
	o.ReadHeaderTimeout = 300 * time.Millisecond
	o.ReadTimeout = 800 * time.Millisecond
	o.IdleTimeout = 300 * time.Millisecond
	r := start(t, newServer(t, classifier(t, cropped), o))
	stop := make(chan struct{})
	defer close(stop)
	var clients []*slowClient
	for i := range 12 {
		head, msg := slowMessages(i)
		clients = append(clients, trickle(t, r.addr, head, msg, 50*time.Millisecond, stop))
	}
	time.Sleep(100 * time.Millisecond)
	predictWithin(t, r.addr, pngBytes(t), 20*time.Second)
	for i, c := range clients {
		select {
		case <-c.ended:
		case <-time.After(20 * time.Second):
			t.Fatalf("slow client %d still connected after 20 s", i)
		}
		// Headers that never end: net/http closes the connection, with a
		// plain "400 Bad Request" or nothing (no handler runs); a body
		// that never ends: 408 with a JSON error.
		got := c.got.String()
		if i%2 == 0 && got != "" && !strings.HasPrefix(got, "HTTP/1.1 400 ") ||
			i%2 == 1 && (!strings.HasPrefix(got, "HTTP/1.1 408 ") || !strings.Contains(got, `{"error":"reading the image: `)) {
			t.Errorf("slow client %d got %q", i, got)
		}
	}
	if p := r.ln.peak.Load(); p > 4 {
		t.Errorf("%d connections open at once, the limit is 4", p)
	}

	// A kept-alive connection, once answered, is closed when idle.
	conn, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health check: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	began := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("an idle connection: %v, want EOF", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("an idle connection closed after %v, the idle timeout is 300ms", d)
	}
}

// waitInFlight waits until n requests are in s's handler.
func waitInFlight(t *testing.T, s *serve.Server, n int64) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); serve.InFlight(s) != n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests in flight after 20 s, want %d", serve.InFlight(s), n)
		}
	}
}

// answer is what a client got for a request.
type answer struct {
	status int
	body   map[string]any
	err    error
}

// postAsync posts an image to addr's /predict and sends what it got.
func postAsync(addr string, raw []byte) <-chan answer {
	answered := make(chan answer, 1)
	go func() {
		client := &http.Client{Timeout: 20 * time.Second}
		resp, err := client.Post("http://"+addr+"/predict", "image/png", bytes.NewReader(raw))
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		a := answer{status: resp.StatusCode}
		a.err = json.NewDecoder(resp.Body).Decode(&a.body)
		answered <- a
	}()
	return answered
}

// receive waits for an answer.
func receive(t *testing.T, c <-chan answer) answer {
	t.Helper()
	select {
	case a := <-c:
		return a
	case <-time.After(30 * time.Second):
		t.Fatal("no answer after 30 s")
		return answer{}
	}
}

// TestGracefulShutdown: the requests in flight when the server is told to
// stop, one in the model and one waiting for it, still get their 200; the
// server stops accepting connections and Serve then returns nil.
func TestGracefulShutdown(t *testing.T) {
	clf := classifier(t, cropped)
	s := newServer(t, clf, serve.DefaultOptions())
	entered := make(chan struct{}, 2)
	serve.SetClassify(s, func(inputs []predict.Input, k int) ([]predict.Result, error) {
		entered <- struct{}{}
		time.Sleep(500 * time.Millisecond) // a slow model
		return clf.ClassifyInputs(inputs, k)
	})
	r := start(t, s)
	raw := pngBytes(t)
	first := postAsync(r.addr, raw)
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the request did not reach the model")
	}
	second := postAsync(r.addr, raw)
	waitInFlight(t, s, 2)
	r.cancel()
	// The listener closes: no new connections.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts connections 5 s after the shutdown began")
		}
	}
	for i, c := range []<-chan answer{first, second} {
		a := receive(t, c)
		if a.err != nil || a.status != 200 || a.body["top"] == nil {
			t.Errorf("request %d in flight: status %d, %v, %v; want 200 and a prediction", i+1, a.status, a.body, a.err)
		}
	}
	if err := r.stop(t, 10*time.Second); err != nil {
		t.Errorf("Serve: %v, want nil", err)
	}
}

// TestShutdownDeadline: when the shutdown deadline passes, a request
// waiting for the model gets 503, the one still running is cut off, and
// Serve says so.
func TestShutdownDeadline(t *testing.T) {
	clf := classifier(t, cropped)
	o := serve.DefaultOptions()
	o.ShutdownTimeout = 300 * time.Millisecond
	s := newServer(t, clf, o)
	entered, release := make(chan struct{}, 2), make(chan struct{})
	defer close(release)
	serve.SetClassify(s, func(inputs []predict.Input, k int) ([]predict.Result, error) {
		entered <- struct{}{}
		select { // a model that hangs until the test ends
		case <-release:
		case <-time.After(20 * time.Second):
		}
		return clf.ClassifyInputs(inputs, k)
	})
	r := start(t, s)
	raw := pngBytes(t)
	running := postAsync(r.addr, raw)
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the request did not reach the model")
	}
	waiting := postAsync(r.addr, raw)
	waitInFlight(t, s, 2)
	began := time.Now()
	err := r.stop(t, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "1 waiting request(s) answered 503 and 1 running cut off") {
		t.Errorf("Serve: %v, want an error saying what was cut off", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("Serve returned %v after the shutdown began, its timeout is 300ms", d)
	}
	if a := receive(t, waiting); a.status != 503 || !strings.Contains(fmt.Sprint(a.body["error"]), "shutting down") {
		t.Errorf("the waiting request: status %d, %v, %v; want 503", a.status, a.body, a.err)
	}
	if a := receive(t, running); a.err == nil {
		t.Errorf("the running request: status %d, %v; want its connection closed", a.status, a.body)
	}
}

// TestDraining: a request read after the shutdown began, which net/http
// lets through only by a race, answers 503; so does /healthz, for load
// balancers.
func TestDraining(t *testing.T) {
	s := newServer(t, classifier(t, cropped), serve.DefaultOptions())
	serve.Drain(s)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, get := range []func() (*http.Response, error){
		func() (*http.Response, error) { return http.Get(srv.URL + "/healthz") },
		func() (*http.Response, error) {
			return http.Post(srv.URL+"/predict", "image/png", bytes.NewReader(pngBytes(t)))
		},
	} {
		resp, err := get()
		if err != nil {
			t.Fatal(err)
		}
		var e map[string]string
		if status := decode(t, resp, &e); status != 503 || !strings.Contains(e["error"], "shutting down") {
			t.Errorf("%s: status %d, %v; want 503", resp.Request.URL.Path, status, e)
		}
	}
}
