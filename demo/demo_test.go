package demo_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resgo/resgo/backend"
	_ "github.com/resgo/resgo/backend/dnnl"
	_ "github.com/resgo/resgo/backend/ref"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/demo"
)

// TestQuickDemo runs `resgo demo --quick` on the real Fashion-MNIST (CI
// installs Debian's dataset-fashion-mnist) and checks what it writes.
func TestQuickDemo(t *testing.T) {
	if _, err := os.Stat(filepath.Join(data.FashionMNISTDir, "t10k-labels-idx1-ubyte.gz")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI must install dataset-fashion-mnist:", err)
		}
		t.Skip("no Fashion-MNIST:", err)
	}
	if testing.Short() {
		t.Skip("about a minute")
	}
	b, err := backend.Default()
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() == "ref" {
		// The pure-Go build (CGO_ENABLED=0) trains ResNet-20 at about 80
		// images/s: the quick demo would take half an hour. The same test
		// runs in the oneDNN build.
		t.Skip("the demo runs on the oneDNN backend")
	}
	out := t.TempDir()
	var log bytes.Buffer
	res, err := demo.Run(context.Background(), b, demo.Options{Out: out, Quick: true}, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(res.Full) != 1 || res.Full[0].ValAcc < 0.6 {
		t.Errorf("ResNet-20 after the quick epoch: %+v", res.Full)
	}
	if len(res.Transfer) != 4 {
		t.Fatalf("%d transfer rows", len(res.Transfer))
	}
	for _, r := range res.Transfer {
		// Five classes: chance is 0.2. Each way must learn something.
		if r.Accuracy < 0.5 || len(r.History) != 8 {
			t.Errorf("%s: accuracy %.3f after %d epochs", r.Way, r.Accuracy, len(r.History))
		}
	}
	if res.Transfer[1].Way != "head" || res.Transfer[1].Trained != 64*5+5 {
		t.Errorf("head mode trains %d parameters, want the new fc's 325", res.Transfer[1].Trained)
	}
	for _, f := range []string{"summary.md", "transfer_curves.png", "resnet20/best.safetensors", "resnet20/class_indices.json",
		"resnet20/curves.png", "transfer/pretrained.safetensors", "transfer/head/history.csv"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	md, _ := os.ReadFile(res.Summary)
	if !strings.Contains(string(md), "| from:layer3 |") {
		t.Errorf("summary.md:\n%s", md)
	}
}
