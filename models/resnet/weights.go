package resnet

import (
	"fmt"
	"sort"
	"strings"

	"github.com/resgo/resgo/transform"
)

// DefaultBaseURL is where torchvision publishes its weights.
const DefaultBaseURL = "https://download.pytorch.org/models/"

// ImageNetMean and ImageNetStd are the per-channel (RGB) normalization
// constants of every torchvision ImageNet weight set.
var (
	ImageNetMean = [3]float32{0.485, 0.456, 0.406}
	ImageNetStd  = [3]float32{0.229, 0.224, 0.225}
)

// Weights describes one set of torchvision's published ImageNet-1k weights:
// where to get it, how to check it, and the evaluation preprocessing that
// goes with it (resize the shorter side to ResizeSize with bilinear
// interpolation, center-crop CropSize, scale to [0,1], normalize with Mean
// and Std).
//
// Weights are named "<arch>.<tag>", where tag is IMAGENET1K_V1 or
// IMAGENET1K_V2 as in torchvision's weight enums, or LEGACY for the file
// resnet34-333f7ec4.pth that the tutorial downloads (torchvision's
// pre-0.13 model_urls). "<arch>" alone and "<arch>.DEFAULT" mean the entry
// torchvision marks DEFAULT: V2 where it exists, V1 otherwise.
type Weights struct {
	Name         string // canonical name, e.g. "resnet50.IMAGENET1K_V2"
	Arch         string // architecture, e.g. "resnet50"
	Tag          string // "IMAGENET1K_V1", "IMAGENET1K_V2" or "LEGACY"
	Default      bool   // torchvision's DEFAULT for Arch
	File         string // file name, e.g. "resnet50-11ad3fa6.pth"
	SHA256Prefix string // leading hex digits of the file's SHA-256 (from its name)
	ResizeSize   int    // evaluation resize of the shorter side: 256 (V1) or 232 (V2)
	CropSize     int    // evaluation center crop: 224
	Mean, Std    [3]float32
	Acc1, Acc5   float64 // published ImageNet-1k validation accuracy, percent
	Params       int     // number of parameters
}

// URL returns the file's download address under DefaultBaseURL.
func (w Weights) URL() string { return DefaultBaseURL + w.File }

// Preset returns the evaluation preprocessing that goes with the weights.
func (w Weights) Preset() transform.Preset {
	return transform.Preset{ResizeSize: w.ResizeSize, CropSize: w.CropSize, Channels: 3,
		Norm: transform.Normalization{Mean: w.Mean[:], Std: w.Std[:]}}
}

// weightsTable lists torchvision's ResNet-family weights (torchvision 0.14
// resnet.py). Columns: arch, tag, default, hash prefix, resize, acc@1,
// acc@5, params.
var weightsTable = []Weights{
	entry("resnet18", "IMAGENET1K_V1", true, "f37072fd", 256, 69.758, 89.078, 11_689_512),
	entry("resnet34", "IMAGENET1K_V1", true, "b627a593", 256, 73.314, 91.420, 21_797_672),
	// The tutorial's file; measured at the same accuracy as V1
	// (Cadene/pretrained-models.pytorch#111).
	entry("resnet34", "LEGACY", false, "333f7ec4", 256, 73.314, 91.420, 21_797_672),
	entry("resnet50", "IMAGENET1K_V1", false, "0676ba61", 256, 76.130, 92.862, 25_557_032),
	entry("resnet50", "IMAGENET1K_V2", true, "11ad3fa6", 232, 80.858, 95.434, 25_557_032),
	entry("resnet101", "IMAGENET1K_V1", false, "63fe2227", 256, 77.374, 93.546, 44_549_160),
	entry("resnet101", "IMAGENET1K_V2", true, "cd907fc2", 232, 81.886, 95.780, 44_549_160),
	entry("resnet152", "IMAGENET1K_V1", false, "394f9c45", 256, 78.312, 94.046, 60_192_808),
	entry("resnet152", "IMAGENET1K_V2", true, "f82ba261", 232, 82.284, 96.002, 60_192_808),
	entry("resnext50_32x4d", "IMAGENET1K_V1", false, "7cdf4587", 256, 77.618, 93.698, 25_028_904),
	entry("resnext50_32x4d", "IMAGENET1K_V2", true, "1a0047aa", 232, 81.198, 95.340, 25_028_904),
	entry("resnext101_32x8d", "IMAGENET1K_V1", false, "8ba56ff5", 256, 79.312, 94.526, 88_791_336),
	entry("resnext101_32x8d", "IMAGENET1K_V2", true, "110c445d", 232, 82.834, 96.228, 88_791_336),
	entry("resnext101_64x4d", "IMAGENET1K_V1", true, "173b62eb", 232, 83.246, 96.454, 83_455_272),
	entry("wide_resnet50_2", "IMAGENET1K_V1", false, "95faca4d", 256, 78.468, 94.086, 68_883_240),
	entry("wide_resnet50_2", "IMAGENET1K_V2", true, "9ba9bcbe", 232, 81.602, 95.758, 68_883_240),
	entry("wide_resnet101_2", "IMAGENET1K_V1", false, "32ee1156", 256, 78.848, 94.284, 126_886_696),
	entry("wide_resnet101_2", "IMAGENET1K_V2", true, "d733dc28", 232, 82.510, 96.020, 126_886_696),
}

// entry builds a table entry.
func entry(arch, tag string, isDefault bool, prefix string, resize int, acc1, acc5 float64, params int) Weights {
	return Weights{
		Name:         arch + "." + tag,
		Arch:         arch,
		Tag:          tag,
		Default:      isDefault,
		File:         arch + "-" + prefix + ".pth",
		SHA256Prefix: prefix,
		ResizeSize:   resize,
		CropSize:     224,
		Mean:         ImageNetMean,
		Std:          ImageNetStd,
		Acc1:         acc1,
		Acc5:         acc5,
		Params:       params,
	}
}

// AllWeights returns every known weight set, sorted by name.
func AllWeights() []Weights {
	all := append([]Weights(nil), weightsTable...)
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return all
}

// LookupWeights finds a weight set by name: "<arch>" or "<arch>.DEFAULT"
// (the default weights), "<arch>.<tag>", or the file name with or without
// ".pth" (e.g. "resnet34-333f7ec4"). Case does not matter.
func LookupWeights(name string) (Weights, error) {
	n := strings.ToLower(strings.TrimSuffix(name, ".pth"))
	n = strings.TrimSuffix(n, ".default")
	for _, e := range weightsTable {
		if n == strings.ToLower(e.Name) || n == strings.TrimSuffix(e.File, ".pth") || (n == e.Arch && e.Default) {
			return e, nil
		}
	}
	var names []string
	for _, e := range AllWeights() {
		names = append(names, e.Name)
	}
	return Weights{}, fmt.Errorf("resnet: unknown weights %q (known: %s, or an architecture name for its DEFAULT)", name, strings.Join(names, ", "))
}
