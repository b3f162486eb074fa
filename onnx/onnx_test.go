package onnx_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/resgo/resgo/backend"
	_ "github.com/resgo/resgo/backend/dnnl"
	_ "github.com/resgo/resgo/backend/ref"
	"github.com/resgo/resgo/internal/randt"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/onnx"
	"github.com/resgo/resgo/onnx/onnxpb"
	"github.com/resgo/resgo/transform"
)

// exportCase is a network the export tests cover, with the input size
// they run it at (small, to keep the tests fast).
type exportCase struct {
	arch     string
	channels int
	size     int
}

// exportCases are the block types, the ResNeXt grouped convolution and
// both stems: the ImageNet networks at 64x64, ResNet-20 at 28x28 grayscale
// (Fashion-MNIST's shape).
var exportCases = []exportCase{
	{"resnet18", 3, 64},
	{"resnet50", 3, 64},
	{"resnext50_32x4d", 3, 64},
	{"resnet20", 1, 28},
}

const numClasses = 5

// required reports whether the tests that need an external tool (ONNX
// Runtime, python3-onnx) must run rather than be skipped when it is
// missing: in CI (CI=true) or with RESGO_REQUIRE_TORCH=1.
func required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("RESGO_REQUIRE_TORCH") == "1"
}

// skipOrFail skips the test for a missing tool, or fails it where the
// tool is required.
func skipOrFail(t *testing.T, err error) {
	t.Helper()
	if required() {
		t.Fatal(err, "; CI=true or RESGO_REQUIRE_TORCH=1 forbids skipping")
	}
	t.Skip(err)
}

// testModel builds arch on b in evaluation mode with random weights and
// random batch norm parameters and running statistics, so that every
// batch norm of the graph does something.
func testModel(t testing.TB, b backend.Backend, c exportCase) *resnet.Model {
	t.Helper()
	m, err := resnet.New(b, c.arch, resnet.Options{NumClasses: numClasses, InChannels: c.channels, IncludeTop: true, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(100)
	for _, mod := range nn.Modules(m) {
		bn, ok := mod.Module.(*nn.BatchNorm2d)
		if !ok {
			continue
		}
		for _, v := range []struct {
			dst    *nn.Var
			lo, hi float32
		}{{bn.Weight, 0.5, 1.5}, {bn.Bias, -0.2, 0.2}, {bn.RunningMean, -0.2, 0.2}, {bn.RunningVar, 0.5, 2}} {
			copy(v.dst.Value.Mutable(), randt.Range(seed, v.lo, v.hi, bn.Channels).Values())
			seed++
		}
	}
	copy(m.FC.Bias.Value.Mutable(), randt.Range(seed, -0.5, 0.5, numClasses).Values())
	nn.SetTraining(m, false)
	return m
}

// testMeta is the class names and preprocessing the tests export with.
func testMeta(c exportCase) onnx.Meta {
	pre := transform.ImageNetV1
	if c.channels == 1 {
		pre = transform.Preset{Channels: 1, Norm: transform.Normalization{Mean: []float32{0.286}, Std: []float32{0.353}}}
	}
	classes := make([]string, numClasses)
	for i := range classes {
		classes[i] = fmt.Sprintf("class \"%d\"", i) // quotes: the JSON must escape them
	}
	return onnx.Meta{Classes: classes, Preprocess: pre}
}

// export returns the ONNX model of c.
func export(t testing.TB, b backend.Backend, c exportCase) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := onnx.Write(&buf, testModel(t, b, c), testMeta(c)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func refBackend(t testing.TB) backend.Backend {
	t.Helper()
	b, err := backend.New("ref", 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGraphStructure reads an exported model back with the protobuf
// library and checks its metadata, its input and output, the operators
// and that the initializers are the state_dict's tensors by name.
func TestGraphStructure(t *testing.T) {
	b := refBackend(t)
	for _, c := range []exportCase{exportCases[2], exportCases[3]} {
		raw := export(t, b, c)
		var m onnxpb.ModelProto
		if err := proto.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if m.GetIrVersion() != onnx.IRVersion || len(m.OpsetImport) != 1 || m.OpsetImport[0].GetVersion() != onnx.Opset {
			t.Errorf("%s: IR version %d, opsets %v", c.arch, m.GetIrVersion(), m.OpsetImport)
		}
		props := map[string]string{}
		for _, p := range m.MetadataProps {
			props[p.GetKey()] = p.GetValue()
		}
		meta := testMeta(c)
		var classes []string
		if err := json.Unmarshal([]byte(props["classes"]), &classes); err != nil || strings.Join(classes, "|") != strings.Join(meta.Classes, "|") {
			t.Errorf("%s: classes %q (%v)", c.arch, props["classes"], err)
		}
		var mean, std []float32
		json.Unmarshal([]byte(props["preprocess.mean"]), &mean)
		json.Unmarshal([]byte(props["preprocess.std"]), &std)
		if fmt.Sprint(mean, std) != fmt.Sprint(meta.Preprocess.Norm.Mean, meta.Preprocess.Norm.Std) ||
			props["preprocess.resize_size"] != fmt.Sprint(meta.Preprocess.ResizeSize) ||
			props["preprocess.crop_size"] != fmt.Sprint(meta.Preprocess.CropSize) ||
			props["preprocess.channels"] != fmt.Sprint(c.channels) || props["arch"] != c.arch {
			t.Errorf("%s: metadata %v", c.arch, props)
		}

		g := m.Graph
		if len(g.Input) != 1 || g.Input[0].GetName() != "input" || len(g.Output) != 1 || g.Output[0].GetName() != "logits" {
			t.Fatalf("%s: inputs %v, outputs %v", c.arch, g.Input, g.Output)
		}
		in := g.Input[0].Type.GetTensorType().Shape.Dim
		if len(in) != 4 || in[0].GetDimParam() != "batch" || in[1].GetDimValue() != int64(c.channels) {
			t.Errorf("%s: input shape %v", c.arch, in)
		}
		ops := map[string]int{}
		for _, n := range g.Node {
			ops[n.GetOpType()]++
			if n.GetOpType() == "Conv" && n.GetName() == "layer1.0.conv2" {
				for _, a := range n.Attribute {
					if a.GetName() == "group" && c.arch == "resnext50_32x4d" && a.GetI() != 32 {
						t.Errorf("%s: layer1.0.conv2 has group %d, want 32", c.arch, a.GetI())
					}
				}
			}
		}
		convs := 0
		for _, mod := range nn.Modules(testModel(t, b, c)) {
			if _, ok := mod.Module.(*nn.Conv2d); ok {
				convs++
			}
		}
		if ops["Conv"] != convs || ops["BatchNormalization"] != convs || ops["Gemm"] != 1 || ops["GlobalAveragePool"] != 1 {
			t.Errorf("%s: operators %v for %d convolutions", c.arch, ops, convs)
		}
		names := map[string]bool{}
		for _, init := range g.Initializer {
			names[init.GetName()] = true
		}
		for _, want := range []string{"conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer2.0.downsample.1.running_mean", "fc.weight", "fc.bias"} {
			if !names[want] {
				t.Errorf("%s: no initializer %s", c.arch, want)
			}
		}
	}
}

// TestWriteErrors checks what Write refuses.
func TestWriteErrors(t *testing.T) {
	b := refBackend(t)
	m := testModel(t, b, exportCases[3])
	err := onnx.Write(&bytes.Buffer{}, m, onnx.Meta{Classes: []string{"a"}})
	if err == nil || !strings.Contains(err.Error(), "1 class names for resnet20 with 5 outputs") {
		t.Errorf("wrong class count: %v", err)
	}
	headless, err := resnet.New(b, "resnet20", resnet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := onnx.Write(&bytes.Buffer{}, headless, onnx.Meta{}); err == nil || !strings.Contains(err.Error(), "no classification head") {
		t.Errorf("headless model: %v", err)
	}
}

// TestONNXChecker runs Debian's python3-onnx checker with full_check
// (strict shape inference included) on the exported models, and reads
// their metadata and input and output shapes back with it.
func TestONNXChecker(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import onnx").Run(); err != nil {
		skipOrFail(t, fmt.Errorf("Debian's python3-onnx is not installed: %v", err))
	}
	b := refBackend(t)
	dir := t.TempDir()
	var paths []string
	for _, c := range exportCases {
		p := filepath.Join(dir, c.arch+".onnx")
		if err := os.WriteFile(p, export(t, b, c), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command("/usr/bin/python3", append([]string{"../scripts/check_onnx.py"}, paths...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("check_onnx.py: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(exportCases) {
		t.Fatalf("check_onnx.py printed %d lines for %d models:\n%s", len(lines), len(exportCases), out)
	}
	for i, c := range exportCases {
		var got struct {
			Input, Output []any
			Metadata      map[string]string
		}
		if err := json.Unmarshal([]byte(lines[i]), &got); err != nil {
			t.Fatalf("%s: %v in %s", c.arch, err, lines[i])
		}
		if fmt.Sprint(got.Input) != fmt.Sprintf("[input batch %d height width]", c.channels) || fmt.Sprint(got.Output) != fmt.Sprintf("[logits batch %d]", numClasses) {
			t.Errorf("%s: input %v, output %v", c.arch, got.Input, got.Output)
		}
		for _, k := range onnx.MetadataKeys {
			if got.Metadata[k] == "" {
				t.Errorf("%s: no metadata %s in %v", c.arch, k, got.Metadata)
			}
		}
	}
}
