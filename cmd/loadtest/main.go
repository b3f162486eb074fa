// Command loadtest measures resgo serve under load: it serves random-init
// ResNets on loopback, posts a JPEG from 1, 8 and 32 concurrent clients,
// and prints images/s and the p50/p99 latency of each, next to the
// throughput of a direct forward pass at the server's batch size (what
// resgo bench measures), and the memory the process holds (RSS) after
// 1,000 and 10,000 requests (of a small input, first, so that it is the
// server's own). Speed does not depend on the weights' values.
//
//	go run ./cmd/loadtest                     # resnet18 and resnet50, 1/8/32 clients
//	go run ./cmd/loadtest -archs resnet18 -requests 100 -rss-requests 0
//
// Each level stops after -requests requests or -duration, whichever comes
// first. The clients run in the same process as the server, so they share
// its CPUs (and its RSS, a few MiB).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// config is what the flags say.
type config struct {
	archs       []string
	clients     []int
	requests    int
	duration    time.Duration
	size        int // side of the posted JPEG
	batch       int // --max-batch, and the direct forward's batch
	maxWait     time.Duration
	rssArch     string
	rssSize     int
	rssRequests int
	rssClients  int
}

func run() error {
	var c config
	var archs, clients string
	flag.StringVar(&archs, "archs", "resnet18,resnet50", "architectures, comma-separated")
	flag.StringVar(&clients, "clients", "1,8,32", "concurrent clients of each level, comma-separated")
	flag.IntVar(&c.requests, "requests", 400, "requests of each level (at most)")
	flag.DurationVar(&c.duration, "duration", 20*time.Second, "time of each level (at most)")
	flag.IntVar(&c.size, "size", 256, "side of the posted JPEG in pixels (resized to 256, cropped to 224)")
	flag.IntVar(&c.batch, "batch", serve.DefaultMaxBatch, "the server's --max-batch, and the direct forward's batch")
	flag.DurationVar(&c.maxWait, "max-wait", serve.DefaultMaxWait, "the server's --max-wait")
	flag.StringVar(&c.rssArch, "rss-arch", "resnet18", "architecture of the memory check")
	flag.IntVar(&c.rssSize, "rss-size", 64, "input side of the memory check (its JPEG and crop), small for speed")
	flag.IntVar(&c.rssRequests, "rss-requests", 10000, "requests of the memory check, RSS read after 1,000 and after all (0: no check)")
	flag.IntVar(&c.rssClients, "rss-clients", 32, "concurrent clients of the memory check")
	flag.Parse()
	var err error
	c.archs = strings.Split(archs, ",")
	if c.clients, err = ints(clients); err != nil {
		return fmt.Errorf("-clients: %w", err)
	}
	if c.requests < 1 || c.duration <= 0 || c.size < 1 || c.batch < 1 || c.rssSize < 1 || c.rssClients < 1 {
		return errors.New("-requests, -duration, -size, -batch, -rss-size and -rss-clients must be positive")
	}
	b, err := backend.Default()
	if err != nil {
		return err
	}
	fmt.Printf("backend %s, GOMAXPROCS %d, batch %d, max-wait %v, %dx%d JPEG, at most %d requests or %v a level\n",
		b.Name(), runtime.GOMAXPROCS(0), c.batch, c.maxWait, c.size, c.size, c.requests, c.duration)
	// The memory check first: its RSS is then its own, not what the larger
	// models left behind.
	if c.rssRequests > 0 {
		if err := memoryCheck(b, c); err != nil {
			return err
		}
	}
	for _, arch := range c.archs {
		if err := loadArch(b, c, arch); err != nil {
			return err
		}
	}
	fmt.Printf("peak RSS (VmHWM) %.0f MiB\n", procStatusMiB("VmHWM"))
	return nil
}

// ints parses a comma-separated list of positive numbers.
func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// classifier returns a random-init arch with ImageNet's classes, its
// input cropped to crop pixels.
func classifier(b backend.Backend, arch string, resize, crop int) (*predict.Classifier, error) {
	m, err := resnet.New(b, arch, resnet.Options{IncludeTop: true, NumClasses: 1000, Seed: 1})
	if err != nil {
		return nil, err
	}
	pre := transform.ImageNetV1
	pre.ResizeSize, pre.CropSize = resize, crop
	return predict.New(m, resnet.ImageNetClasses(), pre)
}

// testJPEG returns a size x size JPEG of a drawn shape.
func testJPEG(size int) ([]byte, error) {
	var buf bytes.Buffer
	img := shapes.Draw(1, size, rand.New(rand.NewPCG(1, 2)))
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// loadArch measures one architecture: the direct forward, then the server
// at each level of clients.
func loadArch(b backend.Backend, c config, arch string) error {
	clf, err := classifier(b, arch, 256, 224)
	if err != nil {
		return err
	}
	raw, err := testJPEG(c.size)
	if err != nil {
		return err
	}
	direct, err := directForward(clf, raw, c.batch)
	if err != nil {
		return err
	}
	fmt.Printf("%s: direct forward, batch %d: %.1f images/s\n", arch, c.batch, direct)
	o := serve.DefaultOptions()
	o.MaxBatch, o.MaxWait = c.batch, c.maxWait
	srv, err := startServer(clf, o)
	if err != nil {
		return err
	}
	defer srv.stop()
	for _, n := range c.clients {
		r, err := srv.load(raw, n, c.requests, c.duration)
		if err != nil {
			return fmt.Errorf("%s, %d clients: %w", arch, n, err)
		}
		after, err := srv.metrics()
		if err != nil {
			return err
		}
		images := after["resgo_batch_size_sum"] - r.before["resgo_batch_size_sum"]
		batches := after["resgo_batch_size_count"] - r.before["resgo_batch_size_count"]
		forward := after["resgo_forward_duration_seconds_sum"] - r.before["resgo_forward_duration_seconds_sum"]
		// The model's own speed in the server (images over the time of
		// its forward passes) and how busy it was tell a slow model
		// (shared CPUs) from an idle one (batching, decoding, HTTP).
		fmt.Printf("%s: %2d clients: %6.1f images/s (%3.0f%% of direct), p50 %6.1f ms, p99 %6.1f ms, %d requests in %.1f s; "+
			"mean batch %.1f, forward passes %.1f images/s, model busy %.0f%%\n",
			arch, n, r.rate, 100*r.rate/direct, ms(r.p50), ms(r.p99), r.n, r.elapsed.Seconds(),
			images/max(batches, 1), images/max(forward, 1e-9), 100*forward/r.elapsed.Seconds())
	}
	return nil
}

// directForward returns the images/s of clf on batches of batch copies of
// raw, preprocessed once: the median of the forward passes after one
// warm-up, timed for at least 3 passes and 3 s.
func directForward(clf *predict.Classifier, raw []byte, batch int) (float64, error) {
	im, err := decodeJPEG(raw)
	if err != nil {
		return 0, err
	}
	inputs := make([]predict.Input, batch)
	for i := range inputs {
		inputs[i] = clf.Preprocess(im, "x")
	}
	if _, err := clf.ClassifyInputs(inputs, 5); err != nil {
		return 0, err
	}
	var times []time.Duration
	for began := time.Now(); len(times) < 3 || time.Since(began) < 3*time.Second; {
		t := time.Now()
		if _, err := clf.ClassifyInputs(inputs, 5); err != nil {
			return 0, err
		}
		times = append(times, time.Since(t))
	}
	slices.Sort(times)
	return float64(batch) / times[len(times)/2].Seconds(), nil
}

// decodeJPEG decodes a JPEG to RGB.
func decodeJPEG(raw []byte) (*transform.Image, error) {
	img, err := jpeg.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return transform.FromImage(img, 3), nil
}

// server is a serve.Server on loopback.
type server struct {
	url    string // of /predict
	cancel context.CancelFunc
	done   chan error
}

func startServer(clf *predict.Classifier, o serve.Options) (*server, error) {
	s, err := serve.New(clf, o)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &server{url: "http://" + ln.Addr().String() + "/predict", cancel: cancel, done: make(chan error, 1)}
	go func() { srv.done <- s.Serve(ctx, ln) }()
	return srv, nil
}

func (s *server) stop() {
	s.cancel()
	if err := <-s.done; err != nil {
		fmt.Fprintln(os.Stderr, "loadtest: the server:", err)
	}
}

// metrics returns the server's metrics without labels, from its
// /metrics, by name.
func (s *server) metrics() (map[string]float64, error) {
	resp, err := http.Get(strings.TrimSuffix(s.url, "predict") + "metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if v, err := strconv.ParseFloat(value, 64); ok && err == nil && !strings.HasPrefix(name, "#") {
			m[name] = v
		}
	}
	return m, nil
}

// result is what a level of load measured.
type result struct {
	n        int
	elapsed  time.Duration
	rate     float64 // images/s
	p50, p99 time.Duration
	before   map[string]float64 // the server's metrics after the warm-up
}

// load posts raw from clients goroutines, each a request at a time, until
// requests are answered or duration has passed, after one warm-up request
// per client (whose metrics it returns). Any answer but 200 is an error.
func (s *server) load(raw []byte, clients, requests int, duration time.Duration) (result, error) {
	client := &http.Client{
		Timeout:   time.Minute,
		Transport: &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients},
	}
	defer client.CloseIdleConnections()
	post := func() error {
		resp, err := client.Post(s.url, "image/jpeg", bytes.NewReader(raw))
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(body))
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Go(func() {
			if err := post(); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return result{}, err
	default:
	}
	before, err := s.metrics()
	if err != nil {
		return result{}, err
	}

	var (
		issued    atomic.Int64
		mu        sync.Mutex
		latencies []time.Duration
	)
	deadline := time.Now().Add(duration)
	began := time.Now()
	for range clients {
		wg.Go(func() {
			for issued.Add(1) <= int64(requests) && time.Now().Before(deadline) {
				t := time.Now()
				if err := post(); err != nil {
					errs <- err
					return
				}
				d := time.Since(t)
				mu.Lock()
				latencies = append(latencies, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	select {
	case err := <-errs:
		return result{}, err
	default:
	}
	slices.Sort(latencies)
	n := len(latencies)
	if n == 0 {
		return result{}, errors.New("no request answered")
	}
	return result{n: n, elapsed: elapsed, rate: float64(n) / elapsed.Seconds(),
		p50: latencies[n/2], p99: latencies[min(n-1, n*99/100)], before: before}, nil
}

// memoryCheck serves c.rssArch at c.rssSize and reads the process's RSS
// after 1,000 requests and after c.rssRequests.
func memoryCheck(b backend.Backend, c config) error {
	clf, err := classifier(b, c.rssArch, c.rssSize, c.rssSize)
	if err != nil {
		return err
	}
	raw, err := testJPEG(c.rssSize)
	if err != nil {
		return err
	}
	o := serve.DefaultOptions()
	o.MaxBatch, o.MaxWait = c.batch, c.maxWait
	srv, err := startServer(clf, o)
	if err != nil {
		return err
	}
	defer srv.stop()
	first := min(1000, c.rssRequests)
	done := 0
	for _, upto := range []int{first, c.rssRequests} {
		if upto <= done {
			continue
		}
		r, err := srv.load(raw, c.rssClients, upto-done, time.Hour)
		if err != nil {
			return fmt.Errorf("memory check: %w", err)
		}
		done += r.n + c.rssClients // and the warm-up requests
		var ms0 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		fmt.Printf("%s %dx%d, %d clients: RSS %.0f MiB (Go heap in use %.0f MiB, %d goroutines) after %d requests (%.0f images/s, p99 %.1f ms)\n",
			c.rssArch, c.rssSize, c.rssSize, c.rssClients, procStatusMiB("VmRSS"), float64(ms0.HeapInuse)/(1<<20), runtime.NumGoroutine(),
			done, r.rate, ms(r.p99))
	}
	return nil
}

// procStatusMiB returns a field of /proc/self/status (VmRSS, VmHWM) in
// MiB, or 0 where /proc is not available.
func procStatusMiB(field string) float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			var kb float64
			if _, err := fmt.Sscan(strings.TrimSpace(rest), &kb); err != nil {
				return 0
			}
			return kb / 1024
		}
	}
	return 0
}

// ms returns d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
