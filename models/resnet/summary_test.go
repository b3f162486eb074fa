package resnet

import (
	"fmt"
	"strings"
	"testing"

	"github.com/resgo/resgo/nn"
)

// The parameter counts and GFLOPS (multiply-adds) torchvision publishes for
// its weights (torchvision.models docs, the weight enums' _ops and
// num_params metadata).
var published = []struct {
	name   string
	params int
	gmacs  string // rounded as torchvision rounds
}{
	{"resnet18", 11689512, "1.814"},
	{"resnet34", 21797672, "3.664"},
	{"resnet50", 25557032, "4.089"},
	{"resnet101", 44549160, "7.801"},
	{"resnet152", 60192808, "11.514"},
	{"resnext50_32x4d", 25028904, "4.230"},
	{"resnext101_32x8d", 88791336, "16.414"},
	{"resnext101_64x4d", 83455272, "15.460"},
	{"wide_resnet50_2", 68883240, "11.398"},
	{"wide_resnet101_2", 126886696, "22.753"},
}

func TestPublishedParamsAndMACs(t *testing.T) {
	for _, p := range published {
		if testing.Short() && p.params > 50_000_000 {
			continue
		}
		m, err := New(nil, p.name, Options{IncludeTop: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := nn.NumParams(m); got != p.params {
			t.Errorf("%s: %d parameters, torchvision has %d", p.name, got, p.params)
		}
		rows, err := m.Summary(224, 224)
		if err != nil {
			t.Fatal(err)
		}
		var macs int64
		params := 0
		for _, r := range rows {
			macs += r.MACs
			params += r.Params
		}
		if params != p.params {
			t.Errorf("%s: summary rows add up to %d parameters, want %d", p.name, params, p.params)
		}
		if got := fmt.Sprintf("%.3f", float64(macs)/1e9); got != p.gmacs {
			t.Errorf("%s: %s GMACs, torchvision publishes %s", p.name, got, p.gmacs)
		}
	}
}

func TestStateDictNames(t *testing.T) {
	m, err := New(nil, "resnet34", Options{IncludeTop: true})
	if err != nil {
		t.Fatal(err)
	}
	st := nn.State(m)
	if len(st) != 218 {
		t.Errorf("resnet34 has %d state entries, torchvision 218", len(st))
	}
	want := []string{"conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked", "layer1.0.conv1.weight"}
	for i, w := range want {
		if st[i].Name != w {
			t.Errorf("entry %d is %q, want %q", i, st[i].Name, w)
		}
	}
	names := map[string][]int{}
	for _, v := range st {
		if v.Value != nil {
			names[v.Name] = v.Value.Shape()
		} else {
			names[v.Name] = nil
		}
	}
	for name, shape := range map[string][]int{
		"layer2.0.downsample.0.weight":      {128, 64, 1, 1},
		"layer2.0.downsample.1.running_var": {128},
		"layer4.2.bn2.bias":                 {512},
		"fc.weight":                         {1000, 512},
		"fc.bias":                           {1000},
	} {
		got, ok := names[name]
		if !ok {
			t.Errorf("no %s", name)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(shape) {
			t.Errorf("%s: shape %v, want %v", name, got, shape)
		}
	}
	if st[len(st)-1].Name != "fc.bias" {
		t.Errorf("last entry %s, want fc.bias", st[len(st)-1].Name)
	}

	m50, _ := New(nil, "resnet50", Options{IncludeTop: true})
	if n := len(nn.State(m50)); n != 320 {
		t.Errorf("resnet50 has %d state entries, torchvision 320", n)
	}
	if _, err := nn.Find(m50, "layer1.0.downsample"); err != nil {
		t.Errorf("resnet50 needs layer1.0.downsample (64->256): %v", err)
	}
}

func TestHeadlessAndCIFAR(t *testing.T) {
	m, err := New(nil, "resnet34", Options{IncludeTop: false})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range nn.State(m) {
		if strings.HasPrefix(v.Name, "fc.") {
			t.Errorf("headless model has %s", v.Name)
		}
	}
	rows, _ := m.Summary(224, 224)
	if last := rows[len(rows)-1]; fmt.Sprint(last.Output) != "[512 7 7]" {
		t.Errorf("headless resnet34 ends with %v, want [512 7 7]", last.Output)
	}

	// ResNet-20 of the paper's section 4.2: 6n+2 = 20 weighted layers, about
	// 0.27M parameters (with projection shortcuts: 2 extra 1x1 convs).
	r20, err := New(nil, "resnet20", Options{IncludeTop: true, NumClasses: 10, InChannels: 1})
	if err != nil {
		t.Fatal(err)
	}
	rows, _ = r20.Summary(28, 28)
	convs := 0
	for _, r := range rows {
		if r.Type == "Conv2d" && !strings.Contains(r.Name, "downsample") {
			convs++
		}
	}
	if convs+1 != 20 {
		t.Errorf("resnet20 has %d weighted layers, want 20", convs+1)
	}
	if n := nn.NumParams(r20); n < 265000 || n > 275000 {
		t.Errorf("resnet20 has %d parameters, the paper 0.27M", n)
	}
	p20, _ := New(nil, "plain20", Options{IncludeTop: true, NumClasses: 10, InChannels: 1})
	for _, v := range nn.State(p20) {
		if strings.Contains(v.Name, "downsample") {
			t.Errorf("plain20 has a shortcut: %s", v.Name)
		}
	}
	if _, err := New(nil, "resnet19", Options{}); err == nil {
		t.Error("unknown architecture accepted")
	}
}
