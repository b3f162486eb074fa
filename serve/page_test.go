package serve_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/resgo/resgo/predict"
	"github.com/resgo/resgo/serve"
)

// TestPageServed: / is the web page, its script and style served from the
// binary, with a content security policy that lets nothing else in.
func TestPageServed(t *testing.T) {
	srv, _ := server(t)
	for _, c := range []struct{ path, ctype, want string }{
		{"/", "text/html; charset=utf-8", `<input type="file" id="file"`},
		{"/app.js", "text/javascript; charset=utf-8", `fetch("predict?topk=5"`},
		{"/app.css", "text/css; charset=utf-8", "#results"},
	} {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != c.ctype || !strings.Contains(body.String(), c.want) {
			t.Errorf("GET %s: status %d, Content-Type %q, body has %q: %v", c.path, resp.StatusCode, resp.Header.Get("Content-Type"), c.want, strings.Contains(body.String(), c.want))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", c.path, csp)
		}
		if strings.Contains(body.String(), "http://") || strings.Contains(body.String(), "https://") {
			t.Errorf("GET %s refers to another site", c.path)
		}
	}
}

// requireTools reports whether a missing external tool must fail the test
// instead of skipping it: in CI (CI=true) or with RESGO_REQUIRE_TORCH=1.
func requireTools() bool {
	return os.Getenv("CI") == "true" || os.Getenv("RESGO_REQUIRE_TORCH") == "1"
}

// chromium returns the path of Debian's chromium (scripts/install-deps.sh
// test installs it), skipping the test where it is missing.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if requireTools() {
		t.Fatal("chromium is not installed (scripts/install-deps.sh test); CI=true or RESGO_REQUIRE_TORCH=1 forbids skipping")
	}
	t.Skip("chromium is not installed (scripts/install-deps.sh test installs it)")
	return ""
}

// TestPageInChromium loads the page in headless Chromium, uploads an image
// through its file input and checks that the top class it shows is what
// POST /predict answers for the same image, with the probability bars and
// the latency. The screenshot goes to $RESGO_SCREENSHOT (a PNG path) or
// to the test's temporary folder.
func TestPageInChromium(t *testing.T) {
	exe := chromium(t)
	clf := classifier(t, cropped)
	s := newServer(t, clf, serve.DefaultOptions())
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	defer s.Close()

	dir := t.TempDir()
	image := filepath.Join(dir, "shape.png")
	raw := pngOf(t, shapesImage(2))
	if err := os.WriteFile(image, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(srv.URL+"/predict", "image/png", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var want predict.Result
	if status := decode(t, resp, &want); status != 200 {
		t.Fatalf("POST /predict: status %d", status)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // as root, Chromium's sandbox cannot start
		chromedp.DisableGPU,
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.WindowSize(900, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTime := context.WithTimeout(ctx, 30*time.Second)
	defer cancelTime()

	err = chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("drop")),
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{image}),
		chromedp.WaitVisible(chromedp.CSS("#results li")),
	)
	if err != nil {
		t.Fatalf("the page in Chromium: %v", err)
	}
	text := func(sel chromedp.CSS) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("the text of %s: %v", sel, err)
		}
		return v
	}
	top, latency, model := text("#results li .name"), text("#latency"), text("#model")
	names, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#results .name")].map(e => e.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	preview, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("preview").src`))
	if err != nil {
		t.Fatal(err)
	}
	screenshot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: a PNG
	if err != nil {
		t.Fatal(err)
	}
	if top != want.Top[0].Name {
		t.Errorf("the page shows %q first, POST /predict answers %q", top, want.Top[0].Name)
	}
	if len(names) != min(5, len(clf.Classes)) {
		t.Errorf("the page shows %d classes (%v), want %d", len(names), names, min(5, len(clf.Classes)))
	}
	for i, c := range want.Top[:min(len(names), len(want.Top))] {
		if names[i] != c.Name {
			t.Errorf("class %d on the page: %q, POST /predict: %q", i, names[i], c.Name)
		}
	}
	if !strings.HasPrefix(latency, "Answered in ") || !strings.Contains(latency, "model ") {
		t.Errorf("latency %q", latency)
	}
	if !strings.HasPrefix(model, "resnet20, 4 classes") {
		t.Errorf("model %q", model)
	}
	if !strings.HasPrefix(preview, "blob:") {
		t.Errorf("the preview's src is %q, want the chosen file", preview)
	}
	out := os.Getenv("RESGO_SCREENSHOT")
	if out == "" {
		out = filepath.Join(dir, "page.png")
	}
	if err := os.WriteFile(out, screenshot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", out)
}
