package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resgo/resgo/backend/ref"
	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/transform"
)

// TestExportKeepsCheckpoint checks that export refuses to write over the
// checkpoint it reads (which would lose its metadata and training state)
// and refuses a bad --out before reading anything; a proper export works.
func TestExportKeepsCheckpoint(t *testing.T) {
	dir := t.TempDir()
	m, err := resnet.New(ref.New(1), "resnet20", resnet.Options{NumClasses: 2, InChannels: 1, IncludeTop: true, SmallStem: true})
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "best.safetensors")
	meta := modelfile.Meta{Arch: "resnet20", NumClasses: 2, InChannels: 1, SmallStem: true, Classes: []string{"a", "b"},
		Preprocess: transform.Preset{Channels: 1}}
	if err := modelfile.Write(ckpt, m, meta, map[string]*checkpoint.Tensor{"optim.step": checkpoint.NewI64("", nil, []int64{3})}); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		out, want string
	}{
		{ckpt, "is the checkpoint itself"},
		{filepath.Join(dir, ".", "best.safetensors"), "is the checkpoint itself"},
		{filepath.Join(dir, "model.onnx"), "the extension must be .pth, .pt or .safetensors"},
	} {
		if _, err := run(t, exportCmd(), "--checkpoint", ckpt, "--out", c.out); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--out %s: error %v, want %q", c.out, err, c.want)
		}
	}
	if after, err := os.ReadFile(ckpt); err != nil || !bytes.Equal(after, before) {
		t.Fatalf("the checkpoint changed: %v", err)
	}
	out := filepath.Join(dir, "plain.safetensors")
	if _, err := run(t, exportCmd(), "--checkpoint", ckpt, "--out", out); err != nil {
		t.Fatal(err)
	}
	sd, err := checkpoint.ReadSafetensors(out)
	if err != nil || sd.Get("optim.step") != nil || sd.Get("fc.weight") == nil {
		t.Errorf("exported weights: %v", err)
	}
}
