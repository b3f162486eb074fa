package resnet

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/resgo/resgo/nn"
)

// builtShapes keeps the shapes stateShapes returned, by architecture and
// options: building the large networks takes seconds.
var builtShapes = map[string]map[string][]int{}

// stateShapes returns the names and shapes of the state dict of the named
// architecture as resgo builds it (no backend: shapes only), a copy the
// caller may change.
func stateShapes(t testing.TB, name string, opt Options) map[string][]int {
	t.Helper()
	key := fmt.Sprintf("%s %+v", name, opt)
	if s, ok := builtShapes[key]; ok {
		return maps.Clone(s)
	}
	m, err := New(nil, name, opt)
	if err != nil {
		t.Fatal(err)
	}
	shapes := map[string][]int{}
	for _, v := range nn.State(m) {
		if v.Value != nil {
			shapes[v.Name] = v.Value.Shape()
		} else {
			shapes[v.Name] = nil // num_batches_tracked: a scalar counter
		}
	}
	builtShapes[key] = shapes
	return maps.Clone(shapes)
}

// TestInferArchEveryArchitecture reads back every architecture resgo
// builds and, for the smaller ones (building the large ones takes seconds),
// with other input channels, without its top, and with the small stem
// where it is an option.
func TestInferArchEveryArchitecture(t *testing.T) {
	for _, name := range Names() {
		a := Architectures[name]
		cases := []Options{{IncludeTop: true, NumClasses: 5, InChannels: 3}}
		if small := a.Groups == 1 && a.WidthPerGroup == 64 && slices.Max(a.Blocks) <= 6; small && a.SmallStem {
			cases = append(cases, Options{IncludeTop: true, NumClasses: 10, InChannels: 1}, Options{IncludeTop: false, InChannels: 3})
		} else if small {
			// The small stem on ImageNet stages (resgo train --small-stem).
			cases = append(cases, Options{IncludeTop: true, NumClasses: 10, InChannels: 1, SmallStem: true}, Options{IncludeTop: false, InChannels: 3})
		}
		for _, opt := range cases {
			got, gotOpt, err := InferArch(stateShapes(t, name, opt))
			if err != nil {
				t.Errorf("%s %+v: %v", name, opt, err)
				continue
			}
			want := opt
			if !want.IncludeTop {
				want.NumClasses = 0
			}
			if got != name || gotOpt != want {
				t.Errorf("%s %+v: inferred %s %+v", name, opt, got, gotOpt)
			}
		}
		runtime.GC() // the large ones' weights
	}
}

// TestInferArchPlainOrResidual checks that what tells a plain twin from its
// ResNet is the downsample where a stage changes width, and that a state
// dict with some and not others is refused.
func TestInferArchPlainOrResidual(t *testing.T) {
	for _, c := range []struct{ resnet, plain string }{{"resnet20", "plain20"}, {"resnet110", "plain110"}, {"resnet34", "plain34"}} {
		shapes := stateShapes(t, c.resnet, Options{IncludeTop: true, NumClasses: 10})
		var dropped int
		for k := range shapes {
			if strings.Contains(k, ".downsample.") {
				delete(shapes, k)
				dropped++
			}
		}
		if dropped == 0 {
			t.Fatalf("%s has no downsample", c.resnet)
		}
		if got, _, err := InferArch(shapes); err != nil || got != c.plain {
			t.Errorf("%s without its downsamples: %s, %v; want %s", c.resnet, got, err, c.plain)
		}
	}

	shapes := stateShapes(t, "resnet20", Options{IncludeTop: true, NumClasses: 10})
	for k := range shapes {
		if strings.HasPrefix(k, "layer3.0.downsample.") {
			delete(shapes, k)
		}
	}
	if _, _, err := InferArch(shapes); err == nil || !strings.Contains(err.Error(), "1 stages start with a downsample and 1 without one") {
		t.Errorf("one downsample of two: %v", err)
	}
}

// TestInferArchRefuses feeds state dicts that are not resgo's ResNets; each
// error says what was found.
func TestInferArchRefuses(t *testing.T) {
	base := func() map[string][]int { return stateShapes(t, "resnet18", Options{IncludeTop: true, NumClasses: 5}) }
	for _, c := range []struct {
		what   string
		change func(s map[string][]int)
		want   string
	}{
		{"no stem", func(s map[string][]int) { delete(s, "conv1.weight") }, "no conv1.weight among the"},
		{"a 5x5 stem", func(s map[string][]int) { s["conv1.weight"] = []int{64, 3, 5, 5} }, "conv1.weight has shape [64 3 5 5]"},
		{"DataParallel's names", func(s map[string][]int) {
			for k, v := range maps.Clone(s) {
				s["module."+k] = v
				delete(s, k)
			}
		}, "no conv1.weight among the"},
		{"a third block in layer4", func(s map[string][]int) {
			s["layer4.2.conv1.weight"], s["layer4.2.conv2.weight"] = []int{512, 512, 3, 3}, []int{512, 512, 3, 3}
		}, "BasicBlock stages of [2 2 2 3] blocks at [64 128 256 512] planes: none of resgo's architectures"},
		{"a block missing", func(s map[string][]int) { delete(s, "layer2.0.conv1.weight") }, "layer2 has tensors of block 1 but no layer2.0.conv1.weight"},
		{"a stage missing", func(s map[string][]int) {
			for k := range s {
				if strings.HasPrefix(k, "layer3.") {
					delete(s, k)
				}
			}
		}, "tensors of 3 stages but none of layer3"},
		{"a hostile block number", func(s map[string][]int) { s["layer1.999999999.conv1.weight"] = []int{64, 64, 3, 3} }, "more stages (8) or blocks (256) than a ResNet has"},
		{"fc on other features", func(s map[string][]int) { s["fc.weight"] = []int{5, 2048} }, "fc.weight has shape [5 2048], the last stage gives 512 features"},
		{"a stem narrower than layer1", func(s map[string][]int) { s["conv1.weight"] = []int{32, 3, 7, 7} }, "conv1.weight has 32 output channels, layer1 64 planes"},
		{"a conv that is not one", func(s map[string][]int) { s["layer3.0.conv1.weight"] = []int{256} }, "layer3.0.conv1.weight has shape [256]"},
		{"2^62 channels", func(s map[string][]int) { s["layer2.0.conv1.weight"] = []int{1 << 62, 64, 3, 3} }, "layer2.0.conv1.weight has shape [4611686018427387904 64 3 3]"},
	} {
		s := base()
		c.change(s)
		if name, _, err := InferArch(s); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %s, %v; want an error with %q", c.what, name, err, c.want)
		}
	}

	// A CIFAR network's stages behind an ImageNet stem.
	s := stateShapes(t, "resnet20", Options{IncludeTop: true, NumClasses: 10})
	s["conv1.weight"] = []int{16, 3, 7, 7}
	if _, _, err := InferArch(s); err == nil || !strings.Contains(err.Error(), "the stages of resnet20 with a 7x7 stem") {
		t.Errorf("resnet20 with a 7x7 stem: %v", err)
	}

	// Bottleneck widths whose arithmetic would overflow (planes x groups
	// wrapping to 0, a division by zero).
	s = stateShapes(t, "resnet50", Options{IncludeTop: true, NumClasses: 10})
	s["layer1.0.conv2.weight"], s["layer1.0.conv3.weight"] = []int{1 << 4, 1, 3, 3}, []int{1 << 62, 16, 1, 1}
	if _, _, err := InferArch(s); err == nil || !strings.Contains(err.Error(), "layer1.0.conv3.weight has shape [4611686018427387904 16 1 1]") {
		t.Errorf("2^62 channels in a Bottleneck: %v", err)
	}

	// ResNeXt's groups that change from stage to stage.
	s = stateShapes(t, "resnext50_32x4d", Options{IncludeTop: true, NumClasses: 10})
	s["layer2.0.conv2.weight"] = []int{256, 4, 3, 3} // 64 groups
	if _, _, err := InferArch(s); err == nil || !strings.Contains(err.Error(), "layer2.0.conv2 has 64 groups") {
		t.Errorf("groups changing: %v", err)
	}
}

// torchvisionShapesPy prints the state dict shapes of torchvision's ResNets
// built with 5 classes, as JSON {arch: {name: shape}}. Initialization is
// skipped: only the shapes are needed.
const torchvisionShapesPy = `
import json, sys, torch, torchvision
torch.nn.init.kaiming_normal_ = lambda *a, **k: None
for cls in (torch.nn.Conv2d, torch.nn.Linear):
    cls.reset_parameters = lambda self: None
out = {}
for arch in sys.argv[1:]:
    m = getattr(torchvision.models, arch)(num_classes=5)
    out[arch] = {k: list(v.shape) for k, v in m.state_dict().items()}
json.dump(out, sys.stdout)
`

// TestInferArchTorchvision reads the architecture of torchvision's own
// state dicts (Debian's torchvision 0.14): every ResNet torchvision has,
// with resgo's names and shapes exactly.
func TestInferArchTorchvision(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import torch, torchvision").Run(); err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("RESGO_REQUIRE_TORCH") == "1" {
			t.Fatalf("Debian's python3-torch and python3-torchvision are required: %v", err)
		}
		t.Skipf("Debian's python3-torch and python3-torchvision are not installed: %v", err)
	}
	var archs []string
	for _, w := range AllWeights() {
		if !slices.Contains(archs, w.Arch) {
			archs = append(archs, w.Arch)
		}
	}
	raw, err := exec.Command("/usr/bin/python3", append([]string{"-c", torchvisionShapesPy}, archs...)...).Output()
	if err != nil {
		t.Fatalf("torchvision's state dicts: %v", err)
	}
	var tv map[string]map[string][]int
	if err := json.Unmarshal(raw, &tv); err != nil {
		t.Fatal(err)
	}
	if len(tv) != len(archs) {
		t.Fatalf("torchvision gave %d state dicts for %d architectures", len(tv), len(archs))
	}
	for _, arch := range archs {
		shapes := tv[arch]
		name, opt, err := InferArch(shapes)
		if err != nil || name != arch || opt != (Options{IncludeTop: true, NumClasses: 5, InChannels: 3}) {
			t.Errorf("torchvision's %s: inferred %s %+v, %v", arch, name, opt, err)
		}
		// resgo's model of what was inferred has torchvision's tensors.
		ours := stateShapes(t, name, opt)
		for k, s := range ours {
			if s == nil {
				s = []int{} // num_batches_tracked, a 0-d tensor in PyTorch
			}
			if got, ok := shapes[k]; !ok || fmt.Sprint(got) != fmt.Sprint(s) {
				t.Errorf("%s: resgo's %s %v, torchvision's %v", arch, k, s, got)
			}
		}
		if len(ours) != len(shapes) {
			t.Errorf("%s: resgo has %d tensors, torchvision %d", arch, len(ours), len(shapes))
		}
		runtime.GC()
	}
}

// FuzzInferArch runs InferArch on arbitrary state dict shapes, one tensor
// a line ("name dim dim ..."): it must never panic, and what it accepts
// must be an architecture whose stem and head are those shapes.
func FuzzInferArch(f *testing.F) {
	for _, name := range []string{"resnet18", "resnet50", "resnet20", "plain20"} {
		var b strings.Builder
		shapes := stateShapes(f, name, Options{IncludeTop: true, NumClasses: 3})
		for _, k := range slices.Sorted(maps.Keys(shapes)) {
			fmt.Fprintln(&b, k, strings.Trim(fmt.Sprint(shapes[k]), "[]"))
		}
		f.Add(b.String())
	}
	f.Fuzz(func(t *testing.T, text string) {
		shapes := map[string][]int{}
		for _, line := range strings.Split(text, "\n") {
			fields := strings.Fields(line)
			if len(fields) == 0 {
				continue
			}
			var dims []int
			for _, d := range fields[1:] {
				var v int
				if _, err := fmt.Sscan(d, &v); err == nil {
					dims = append(dims, v)
				}
			}
			shapes[fields[0]] = dims
		}
		name, opt, err := InferArch(shapes)
		if err != nil {
			return
		}
		a, ok := Architectures[name]
		if !ok {
			t.Fatalf("inferred %q, not an architecture", name)
		}
		k := 7
		if a.SmallStem || opt.SmallStem {
			k = 3
		}
		if want := []int{a.Widths[0], opt.InChannels, k, k}; !slices.Equal(shapes["conv1.weight"], want) {
			t.Fatalf("%s with conv1.weight %v, want %v", name, shapes["conv1.weight"], want)
		}
	})
}
