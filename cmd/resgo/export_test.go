package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/resgo/resgo/backend/ref"
	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/onnx/onnxpb"
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
		{filepath.Join(dir, "model.bin"), "the extension must be .pth, .pt, .safetensors or .onnx"},
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

// TestExportONNX checks resgo export's ONNX output: the format follows
// the extension or --format, and the model carries the checkpoint's
// classes and preprocessing (package onnx's tests run it in ONNX Runtime).
func TestExportONNX(t *testing.T) {
	dir := t.TempDir()
	m, err := resnet.New(ref.New(1), "resnet20", resnet.Options{NumClasses: 2, InChannels: 1, IncludeTop: true, SmallStem: true})
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "best.safetensors")
	meta := modelfile.Meta{Arch: "resnet20", NumClasses: 2, InChannels: 1, SmallStem: true, Classes: []string{"shirt", "boot"},
		Preprocess: transform.Preset{Channels: 1, Norm: transform.Normalization{Mean: []float32{0.5}, Std: []float32{0.25}}}}
	if err := modelfile.Write(ckpt, m, meta, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, exportCmd(), "--checkpoint", ckpt, "--out", filepath.Join(dir, "m.pth"), "--format", "onnx"); err == nil || !strings.Contains(err.Error(), "is a .pth name, --format says onnx") {
		t.Errorf("--format onnx --out m.pth: %v", err)
	}
	for _, args := range [][]string{{"--out", filepath.Join(dir, "m.onnx")}, {"--out", filepath.Join(dir, "m.model"), "--format", "onnx"}} {
		stdout, err := run(t, exportCmd(), append([]string{"--checkpoint", ckpt}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stdout, "ONNX opset 13") {
			t.Errorf("stdout %q", stdout)
		}
		raw, err := os.ReadFile(args[1])
		if err != nil {
			t.Fatal(err)
		}
		var model onnxpb.ModelProto
		if err := proto.Unmarshal(raw, &model); err != nil {
			t.Fatal(err)
		}
		props := map[string]string{}
		for _, p := range model.MetadataProps {
			props[p.GetKey()] = p.GetValue()
		}
		if props["classes"] != `["shirt","boot"]` || props["preprocess.mean"] != "[0.5]" || props["preprocess.std"] != "[0.25]" ||
			props["preprocess.channels"] != "1" || props["arch"] != "resnet20" {
			t.Errorf("metadata %v", props)
		}
	}
}
