package resnet

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/resgo/resgo/transform"
)

func TestLookupWeights(t *testing.T) {
	for name, want := range map[string]string{
		"resnet18":                       "resnet18-f37072fd.pth",
		"resnet34":                       "resnet34-b627a593.pth",
		"resnet34.LEGACY":                "resnet34-333f7ec4.pth",
		"resnet34-333f7ec4.pth":          "resnet34-333f7ec4.pth",
		"resnet34-333f7ec4":              "resnet34-333f7ec4.pth",
		"resnet50":                       "resnet50-11ad3fa6.pth",
		"resnet50.DEFAULT":               "resnet50-11ad3fa6.pth",
		"resnet50.IMAGENET1K_V1":         "resnet50-0676ba61.pth",
		"ResNet50.imagenet1k_v2":         "resnet50-11ad3fa6.pth",
		"resnext101_64x4d":               "resnext101_64x4d-173b62eb.pth",
		"wide_resnet101_2":               "wide_resnet101_2-d733dc28.pth",
		"wide_resnet101_2.IMAGENET1K_V1": "wide_resnet101_2-32ee1156.pth",
	} {
		w, err := LookupWeights(name)
		if err != nil || w.File != want {
			t.Errorf("LookupWeights(%q) = %s, %v; want %s", name, w.File, err, want)
		}
	}
	for _, name := range []string{"", "resnet", "resnet50.IMAGENET1K_V3", "resnet18.IMAGENET1K_V2"} {
		if _, err := LookupWeights(name); err == nil {
			t.Errorf("LookupWeights(%q): no error", name)
		}
	}
}

func TestWeightsTable(t *testing.T) {
	defaults := map[string]int{}
	fileRE := regexp.MustCompile(`^[a-z0-9_]+-([0-9a-f]{8})\.pth$`)
	for _, w := range AllWeights() {
		m := fileRE.FindStringSubmatch(w.File)
		if m == nil || m[1] != w.SHA256Prefix || !strings.HasPrefix(w.File, w.Arch+"-") {
			t.Errorf("%s: file %s, prefix %s", w.Name, w.File, w.SHA256Prefix)
		}
		if w.URL() != "https://download.pytorch.org/models/"+w.File {
			t.Errorf("%s: URL %s", w.Name, w.URL())
		}
		wantResize := 256
		if w.Tag == "IMAGENET1K_V2" || w.Arch == "resnext101_64x4d" {
			wantResize = 232
		}
		if w.ResizeSize != wantResize || w.CropSize != 224 || w.Mean != ImageNetMean || w.Std != ImageNetStd {
			t.Errorf("%s: preprocessing %d/%d %v %v", w.Name, w.ResizeSize, w.CropSize, w.Mean, w.Std)
		}
		if w.Acc1 < 69 || w.Acc1 > 84 || w.Acc5 < w.Acc1 || w.Params < 11_000_000 {
			t.Errorf("%s: acc %v/%v params %d", w.Name, w.Acc1, w.Acc5, w.Params)
		}
		if w.Default {
			defaults[w.Arch]++
		}
		if got, err := LookupWeights(w.Name); err != nil || got != w {
			t.Errorf("LookupWeights(%s) = %v, %v", w.Name, got, err)
		}
	}
	if len(defaults) != 10 {
		t.Errorf("%d architectures with a default, want 10: %v", len(defaults), defaults)
	}
	for arch, n := range defaults {
		if n != 1 {
			t.Errorf("%s has %d defaults", arch, n)
		}
	}
}

// TestWeightsPreset checks that the weights' preprocessing is transform's
// preset for their tag.
func TestWeightsPreset(t *testing.T) {
	for name, want := range map[string]transform.Preset{
		"resnet34.LEGACY":        transform.ImageNetV1,
		"resnet50.IMAGENET1K_V1": transform.ImageNetV1,
		"resnet50.IMAGENET1K_V2": transform.ImageNetV2,
	} {
		w, err := LookupWeights(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Preset(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Preset() = %+v, want %+v", name, got, want)
		}
	}
}

// TestImageNetClasses checks the embedded class list.
func TestImageNetClasses(t *testing.T) {
	c := ImageNetClasses()
	if len(c) != 1000 || c[0] != "tench" || c[999] != "toilet tissue" {
		t.Errorf("%d classes, first %q, last %q", len(c), c[0], c[len(c)-1])
	}
}
