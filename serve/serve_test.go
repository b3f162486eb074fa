package serve_test

import (
	"bytes"
	"encoding/json"
	"image/png"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/resgo/resgo/backend"
	_ "github.com/resgo/resgo/backend/dnnl"
	_ "github.com/resgo/resgo/backend/ref"
	"github.com/resgo/resgo/internal/shapes"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/predict"
	"github.com/resgo/resgo/serve"
	"github.com/resgo/resgo/transform"
)

func server(t *testing.T) (*httptest.Server, *predict.Classifier) {
	t.Helper()
	b, err := backend.Default()
	if err != nil {
		t.Fatal(err)
	}
	m, err := resnet.New(b, "resnet20", resnet.Options{IncludeTop: true, NumClasses: 4, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	clf, err := predict.New(m, shapes.Names, transform.Preset{ResizeSize: 32, CropSize: 32, Channels: 3, Norm: transform.ImageNet})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(serve.New(clf).Handler())
	t.Cleanup(srv.Close)
	return srv, clf
}

func pngBytes(t *testing.T) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, shapes.Draw(1, 40, rand.New(rand.NewPCG(1, 2)))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPredictBodyAndMultipart(t *testing.T) {
	srv, clf := server(t)
	raw := pngBytes(t)

	resp, err := http.Post(srv.URL+"/predict?topk=2", "image/png", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var got predict.Result
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(got.Top) != 2 || len(got.Logits) != 4 {
		t.Fatalf("status %d, result %+v", resp.StatusCode, got)
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

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("image", "square.png")
	fw.Write(raw)
	mw.Close()
	resp, err = http.Post(srv.URL+"/predict", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	got = predict.Result{}
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != 200 || got.Image != "square.png" || len(got.Top) != 4 {
		t.Errorf("multipart: status %d, %+v", resp.StatusCode, got)
	}
}

func TestBadRequests(t *testing.T) {
	srv, _ := server(t)
	for _, c := range []struct{ query, ctype, body, want string }{
		{"", "image/png", "", "empty request body"},
		{"", "image/jpeg", "not a jpeg at all", "not a readable image"},
		{"?topk=zero", "image/png", "x", "topk"},
		// Multipart by the media type, whatever its case and parameters.
		{"", "Multipart/Form-Data; boundary=xyz", "not a form", "multipart form without"},
		{"", "multipart/form-data; boundary", "not a form", "multipart form without"},
		{"", "image/png; q", "not a png", "not a readable image"},
	} {
		resp, err := http.Post(srv.URL+"/predict"+c.query, c.ctype, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		var e map[string]string
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(e["error"], c.want) {
			t.Errorf("%q: status %d, error %q; want 400 and %q", c.body, resp.StatusCode, e["error"], c.want)
		}
	}
	resp, err := http.Get(srv.URL + "/info")
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if info["arch"] != "resnet20" {
		t.Errorf("info %v", info)
	}
}
