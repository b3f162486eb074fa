package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/predict"
)

func pngSized(t *testing.T, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewRGBA(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestServeSIGTERM runs resgo serve, starts a request whose body is still
// arriving, sends the process a real SIGTERM, then completes the body: the
// request gets its 200 and the command returns nil. --max-pixels applies
// to the uploads.
func TestServeSIGTERM(t *testing.T) {
	defer func() { data.MaxPixels = data.DefaultMaxPixels }()
	weights := tinyModelFile(t, t.TempDir())
	outR, outW := io.Pipe()
	cmd := serveCmd()
	cmd.SetOut(outW)
	cmd.SetErr(outW)
	cmd.SetArgs([]string{"--weights", weights, "--addr", "127.0.0.1:0", "--max-pixels", "100", "--shutdown-timeout", "20s"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- cmd.ExecuteContext(ctx)
		outW.Close()
	}()
	lines := bufio.NewScanner(outR)
	var addr string
	if lines.Scan() {
		// serving resnet20 (4 classes) on 127.0.0.1:PORT: curl ...
		if m := regexp.MustCompile(` on (\S+): curl`).FindStringSubmatch(lines.Text()); m != nil {
			addr = m[1]
		}
	}
	rest := make(chan string, 1)
	go func() {
		var b strings.Builder
		for lines.Scan() {
			b.WriteString(lines.Text() + "\n")
		}
		rest <- b.String()
	}()
	if _, _, err := net.SplitHostPort(addr); err != nil {
		cancel()
		t.Fatalf("no address in resgo serve's first line (%q): %v", addr, err)
	}

	post := func(raw []byte) (int, map[string]any) {
		t.Helper()
		resp, err := (&http.Client{Timeout: 20 * time.Second}).Post("http://"+addr+"/predict", "image/png", bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}
	if status, v := post(pngSized(t, 10, 10)); status != 200 {
		t.Errorf("a 10x10 image: status %d, %v", status, v)
	}
	if status, v := post(pngSized(t, 11, 10)); status != 400 || !strings.Contains(fmt.Sprint(v["error"]), "limit of 100 pixels (--max-pixels)") {
		t.Errorf("an 11x10 image with --max-pixels 100: status %d, %v", status, v)
	}

	// A request in flight: its headers and half its body sent.
	raw := pngSized(t, 8, 8)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", len(raw))
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	// 100 Continue: the handler is reading the body.
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 100 {
		t.Fatalf("100 Continue: %v %v", resp, err)
	}
	conn.Write(raw[:len(raw)/2])
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The listener closes.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("resgo serve still accepts connections 10 s after SIGTERM")
		}
	}
	conn.Write(raw[len(raw)/2:])
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the request in flight at SIGTERM: %v", err)
	}
	var got predict.Result
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(got.Top) == 0 {
		t.Errorf("the request in flight at SIGTERM: status %d, %+v", resp.StatusCode, got)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("resgo serve after SIGTERM: %v, want nil", err)
		}
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("resgo serve still running 20 s after SIGTERM")
	}
	if out := <-rest; !strings.Contains(out, "shut down: every request answered") {
		t.Errorf("resgo serve's output after SIGTERM: %q", out)
	}
}

func TestServeFlags(t *testing.T) {
	defer func() { data.MaxPixels = data.DefaultMaxPixels }()
	weights := tinyModelFile(t, t.TempDir())
	for _, c := range []struct{ flag, want string }{
		{"--max-conns=0", "max-conns must be positive, not 0"},
		{"--read-timeout=-1s", "read-timeout must be positive, not -1s"},
		{"--max-pixels=0", "--max-pixels 0: must be at least 1"},
		{"--max-batch=0", "max-batch must be positive, not 0"},
		{"--queue=-1", "queue must be positive, not -1"},
		{"--max-wait=-1ms", "max-wait must not be negative, not -1ms"},
	} {
		if _, err := run(t, serveCmd(), "--weights", weights, "--addr", "127.0.0.1:0", c.flag); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.flag, err, c.want)
		}
	}
}
