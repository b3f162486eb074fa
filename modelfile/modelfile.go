// Package modelfile reads and writes resgo's model files: a ResNet's weights
// together with what it takes to rebuild and use it: architecture, classes,
// preprocessing.
package modelfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/hub"
	"github.com/resgo/resgo/internal/atomicfile"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/transform"
)

// Format identifies resgo's own model files in their metadata.
const Format = "resgo/1"

// metaKey is the safetensors metadata key holding a model file's Meta.
const metaKey = "resgo"

// Meta is what a resgo model file says about its model beside the weights:
// enough to rebuild it, name its classes and preprocess its inputs the way
// it was trained.
type Meta struct {
	Format     string           `json:"format"`
	Arch       string           `json:"arch"`
	NumClasses int              `json:"num_classes"`
	InChannels int              `json:"in_channels"`
	SmallStem  bool             `json:"small_stem,omitempty"`
	Classes    []string         `json:"classes"`
	Preprocess transform.Preset `json:"preprocess"`
	// Train is the training state (epoch, position, history, settings),
	// as the train package writes it; empty in exported models.
	Train json.RawMessage `json:"train,omitempty"`
}

// Options returns the model builder's options for the model file.
func (m *Meta) Options() resnet.Options {
	return resnet.Options{NumClasses: m.NumClasses, InChannels: m.InChannels, IncludeTop: true, SmallStem: m.SmallStem}
}

// Write writes a resgo model file atomically: the model's state under
// torchvision's names, the extra tensors (optimizer state, say) and meta,
// as a safetensors file. It refuses metadata that Read would refuse (see
// MaxNumClasses and the other limits).
func Write(path string, m *resnet.Model, meta Meta, extra map[string]*checkpoint.Tensor) error {
	sd := checkpoint.FromModule(m)
	for name, t := range extra {
		if sd.Get(name) != nil {
			return fmt.Errorf("modelfile: %s: extra tensor %s clashes with a model variable", path, name)
		}
		t.Name = name
		sd.Add(t)
	}
	meta.Format = Format
	// A file Read would refuse is lost work: refuse to write it.
	if err := meta.check(sd); err != nil {
		return fmt.Errorf("modelfile: %s: metadata that would not read back: %w", path, err)
	}
	raw, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("modelfile: %s: %w", path, err)
	}
	sd.Metadata = map[string]string{metaKey: string(raw)}
	return atomicfile.Write(path, func(w io.Writer) error { return checkpoint.EncodeSafetensors(w, sd) })
}

// Limits on what a model file may describe, checked (with the agreement of
// the metadata and the weights) before any model is built from it, so that
// a corrupt or hostile file fails with an error naming the field instead of
// making resgo allocate without bound or compute garbage.
const (
	// MaxNumClasses bounds a model's classes: ImageNet-21k, the largest
	// label set ResNets are commonly trained on, has 21,843; 100,000
	// leaves room while keeping a ResNet-50's fc layer under 800 MiB.
	MaxNumClasses = 100_000
	// MaxInChannels bounds a model's input channels: resgo's images are
	// grayscale (1) or RGB (3); 16 leaves room for multispectral weights
	// used through the API.
	MaxInChannels = 16
	// MaxImageSide bounds the resize and crop sizes of a model file's
	// preprocessing, as train.MaxSide bounds them in training: ResNets run
	// on 224 (the largest published recipes up to 600), and one 3-channel
	// float32 image of 4096x4096 already takes 192 MiB.
	MaxImageSide = 4096
	// MinNormStd is the smallest standard deviation of a normalization:
	// pixels are scaled to [0, 1] in steps of 1/255 and sane deviations
	// lie between 0.1 and 1 (ImageNet's 0.225, Fashion-MNIST's 0.353); a
	// smaller one, zero above all, turns pixels into values beyond 1e6,
	// or infinities.
	MinNormStd = 1e-6
)

// ErrNotModel is returned (wrapped) by Read for a file that is not a resgo
// model file: a PyTorch .pth file, or a safetensors file without resgo's
// metadata (plain weights, which Open and LoadPretrained take).
var ErrNotModel = errors.New("not a resgo checkpoint")

// Read reads a resgo model file: its state dict (model variables and any
// extra tensors) and its Meta, checked against sane ranges (see
// MaxNumClasses and the other limits) and against the weights (fc.weight
// gives the number of classes, conv1.weight the input channels and the
// stem). A PyTorch .pth file is refused from its first bytes with an error
// wrapping ErrNotModel.
func Read(path string) (*checkpoint.StateDict, *Meta, error) {
	if err := notPTH(path); err != nil {
		return nil, nil, err
	}
	sd, err := checkpoint.ReadSafetensors(path)
	if err != nil {
		return nil, nil, err
	}
	return modelOf(path, sd)
}

// notPTH returns an error wrapping ErrNotModel for a file that is not a
// safetensors file: a safetensors file starts with the 8-byte length of
// its JSON header, then "{"; PyTorch's zip files start with "PK" and its
// older formats with a pickle or a tar header. Files of under 9 bytes are
// left to the safetensors reader to refuse.
func notPTH(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("modelfile: %w", err)
	}
	defer f.Close()
	var head [9]byte
	if _, err := io.ReadFull(f, head[:]); err == nil && head[8] != '{' {
		return fmt.Errorf("modelfile: %s: %w: a PyTorch .pth file (resgo's checkpoints are the .safetensors files resgo train writes)", path, ErrNotModel)
	}
	return nil
}

// Decode is Read on the contents of a file held in memory; name is the
// file's name for errors.
func Decode(name string, data []byte) (*checkpoint.StateDict, *Meta, error) {
	sd, err := checkpoint.DecodeSafetensors(name, data)
	if err != nil {
		return nil, nil, err
	}
	return modelOf(name, sd)
}

// modelOf returns the checked Meta of a model file's state dict.
func modelOf(path string, sd *checkpoint.StateDict) (*checkpoint.StateDict, *Meta, error) {
	raw, ok := sd.Metadata[metaKey]
	if !ok {
		return nil, nil, fmt.Errorf("modelfile: %s: %w: a safetensors file without resgo's metadata (plain weights)", path, ErrNotModel)
	}
	var meta Meta
	if err := json.Unmarshal([]byte(raw), &meta); err != nil {
		return nil, nil, fmt.Errorf("modelfile: %s: bad resgo metadata: %w", path, err)
	}
	if meta.Format != Format {
		return nil, nil, fmt.Errorf("modelfile: %s: format %q, this resgo reads %q", path, meta.Format, Format)
	}
	if err := meta.check(sd); err != nil {
		return nil, nil, fmt.Errorf("modelfile: %s: %w", path, err)
	}
	return sd, &meta, nil
}

// check checks the metadata's values against sane ranges and against the
// weights in sd. Errors name the metadata field as the file spells it.
func (m *Meta) check(sd *checkpoint.StateDict) error {
	arch, ok := resnet.Architectures[m.Arch]
	if !ok {
		return fmt.Errorf("arch %q: not one of resgo's architectures (%s)", m.Arch, strings.Join(resnet.Names(), ", "))
	}
	if m.NumClasses < 1 || m.NumClasses > MaxNumClasses {
		return fmt.Errorf("num_classes %d: want 1 to %d", m.NumClasses, MaxNumClasses)
	}
	if m.InChannels < 1 || m.InChannels > MaxInChannels {
		return fmt.Errorf("in_channels %d: want 1 to %d", m.InChannels, MaxInChannels)
	}
	if len(m.Classes) != m.NumClasses {
		return fmt.Errorf("classes: %d names for num_classes %d", len(m.Classes), m.NumClasses)
	}
	p := m.Preprocess
	if p.Channels != m.InChannels {
		return fmt.Errorf("preprocess.Channels %d: the model takes in_channels %d", p.Channels, m.InChannels)
	}
	if p.ResizeSize < 0 || p.ResizeSize > MaxImageSide {
		return fmt.Errorf("preprocess.ResizeSize %d: want 0 (no resize) to %d", p.ResizeSize, MaxImageSide)
	}
	if p.CropSize < 0 || p.CropSize > MaxImageSide {
		return fmt.Errorf("preprocess.CropSize %d: want 0 (no crop) to %d", p.CropSize, MaxImageSide)
	}
	if err := checkNorm(p.Norm, p.Channels); err != nil {
		return err
	}
	return checkShapes(sd, m.Arch, arch, m.NumClasses, m.InChannels, m.SmallStem || arch.SmallStem)
}

// checkNorm checks a normalization for images of the given channels: no
// mean and std at all, or one of each for every channel (or one for all),
// finite, with deviations of at least MinNormStd.
func checkNorm(n transform.Normalization, channels int) error {
	if len(n.Mean) != len(n.Std) || (len(n.Mean) != 0 && len(n.Mean) != 1 && len(n.Mean) != channels) {
		return fmt.Errorf("preprocess.Norm: %d means and %d deviations for %d channels (want as many of each: none, one, or one per channel)",
			len(n.Mean), len(n.Std), channels)
	}
	for i := range n.Mean {
		mean, std := float64(n.Mean[i]), float64(n.Std[i])
		if math.IsNaN(mean) || math.IsInf(mean, 0) {
			return fmt.Errorf("preprocess.Norm.Mean[%d] %v: not a finite number", i, mean)
		}
		if !(std >= MinNormStd) || math.IsInf(std, 0) {
			return fmt.Errorf("preprocess.Norm.Std[%d] %v: want a finite deviation of at least %g", i, std, MinNormStd)
		}
	}
	return nil
}

// checkShapes checks that the stem and the head of the weights in sd are
// those of architecture name (arch) built with the given classes, input
// channels and stem: conv1.weight of [width, inChannels, k, k] (k = 3 for
// the small stem, 7 otherwise), fc.weight of [numClasses, features] and
// fc.bias of [numClasses]. With these the model's every variable is
// determined, so that building it allocates no more than the weights
// themselves take. A tensor missing from sd is an error.
func checkShapes(sd *checkpoint.StateDict, name string, arch resnet.Arch, numClasses, inChannels int, smallStem bool) error {
	k := 7
	if smallStem {
		k = 3
	}
	features := arch.Widths[len(arch.Widths)-1] * arch.Block.Expansion()
	for _, want := range []struct {
		key   string
		shape []int
		what  string
	}{
		{"conv1.weight", []int{arch.Widths[0], inChannels, k, k}, fmt.Sprintf("in_channels %d and a %dx%d stem", inChannels, k, k)},
		{"fc.weight", []int{numClasses, features}, fmt.Sprintf("num_classes %d", numClasses)},
		{"fc.bias", []int{numClasses}, fmt.Sprintf("num_classes %d", numClasses)},
	} {
		t := sd.Get(want.key)
		if t == nil {
			return fmt.Errorf("no %s in the weights", want.key)
		}
		if !slices.Equal(t.Shape, want.shape) {
			return fmt.Errorf("%s has shape %v, %s with %s needs %v", want.key, t.Shape, name, want.what, want.shape)
		}
	}
	return nil
}

// modelTensors returns the model variables of a model file's state dict:
// all but the optimizer's state (the "optim." entries) and the training's
// moving average of the weights (the "ema." entries).
func modelTensors(sd *checkpoint.StateDict) *checkpoint.StateDict {
	model := checkpoint.NewStateDict()
	for _, k := range sd.Keys {
		if !strings.HasPrefix(k, optimPrefix) && !strings.HasPrefix(k, emaPrefix) {
			model.Add(sd.Get(k))
		}
	}
	return model
}

// optimPrefix starts the names of the optimizer's tensors that training
// checkpoints keep beside the model's.
const optimPrefix = "optim."

// emaPrefix starts the names of the tensors of the moving average of the
// weights (train.Recipe.ModelEMA) that training checkpoints keep.
const emaPrefix = "ema."

// Load rebuilds the model a resgo model file describes on backend b and
// loads its weights. Entries that are not model variables (optimizer
// state) are ignored.
func Load(b backend.Backend, path string) (*resnet.Model, *Meta, error) {
	sd, meta, err := Read(path)
	if err != nil {
		return nil, nil, err
	}
	m, err := resnet.New(b, meta.Arch, meta.Options())
	if err != nil {
		return nil, nil, fmt.Errorf("modelfile: %s: %w", path, err)
	}
	if _, err := checkpoint.Load(m, modelTensors(sd), checkpoint.LoadOptions{}); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, meta, nil
}

// ResolveWeights finds the weights file that weights names, and
// torchvision's catalogue entry for it (architecture and preprocessing)
// when there is one; w is nil otherwise.
//
// An existing file is taken as it is: its name decides nothing. Only a
// file named exactly as one of torchvision's files (resnet34-333f7ec4.pth,
// say) whose SHA-256 starts with the hash in that name gets the
// catalogue's entry. Otherwise weights is a torchvision weights name (see
// resnet.LookupWeights), whose file is taken from resgo's or PyTorch's
// cache after checking its SHA-256 (see hub.Find).
func ResolveWeights(weights string) (path string, w *resnet.Weights, err error) {
	if st, err := os.Stat(weights); err == nil {
		if st.IsDir() {
			return "", nil, fmt.Errorf("weights %s: a folder, not a weights file", weights)
		}
		entry, ok := catalogueFile(filepath.Base(weights))
		if !ok {
			return weights, nil, nil
		}
		sum, err := hub.FileSHA256(weights)
		if err != nil {
			return "", nil, err
		}
		if !strings.HasPrefix(sum, entry.SHA256Prefix) {
			return weights, nil, nil // named as torchvision's file, but another one
		}
		return weights, &entry, nil
	}
	entry, ok := catalogueName(weights)
	if !ok {
		return "", nil, fmt.Errorf("weights %s: no such file, and not one of torchvision's weights names (resgo weights list)", weights)
	}
	path, err = hub.Find(entry, "")
	if err != nil {
		return "", nil, err
	}
	return path, &entry, nil
}

// The catalogue of torchvision's weights that names and files are resolved
// against: resnet's, replaced in tests by weights whose files they can
// make.
var (
	catalogue     = resnet.AllWeights
	lookupWeights = resnet.LookupWeights
)

// catalogueFile returns torchvision's entry whose file is named name.
func catalogueFile(name string) (resnet.Weights, bool) {
	for _, e := range catalogue() {
		if name == e.File {
			return e, true
		}
	}
	return resnet.Weights{}, false
}

// catalogueName returns torchvision's entry that weights names when it is
// a name (see resnet.LookupWeights) rather than a path: no folder in it,
// and ".pth" only in torchvision's exact file names, so that a missing
// resnet50.pth is a missing file, not resnet50's default weights.
func catalogueName(weights string) (resnet.Weights, bool) {
	if strings.ContainsAny(weights, `/\`) {
		return resnet.Weights{}, false
	}
	if strings.HasSuffix(strings.ToLower(weights), ".pth") {
		return catalogueFile(weights)
	}
	e, err := lookupWeights(weights)
	return e, err == nil
}

// Source is a model built from weights (see Open), with what is known
// about it beside its tensors.
type Source struct {
	Model *resnet.Model
	Path  string // the file the weights were read from
	// Meta is the metadata of a resgo model file (classes, preprocessing,
	// training state); nil for plain weights.
	Meta *Meta
	// Weights is torchvision's catalogue entry of weights given by their
	// torchvision name, or of a file with the hash of one of its files;
	// nil otherwise.
	Weights *resnet.Weights
}

// Preprocess returns the evaluation preprocessing that goes with the
// weights: a resgo model file's own, torchvision's for its catalogued
// weights, and otherwise torchvision's ImageNet V1 (resize 256, center
// crop 224, ImageNet's mean and deviation: the tutorial's predict.py) with
// the model's input channels.
func (s *Source) Preprocess() transform.Preset {
	switch {
	case s.Meta != nil:
		return s.Meta.Preprocess
	case s.Weights != nil:
		return s.Weights.Preset()
	}
	pre := transform.ImageNetV1
	pre.Channels = s.Model.Options.InChannels
	return pre
}

// Open builds on b the model that weights hold and loads them (see
// ResolveWeights for how weights name a file):
//
//   - a resgo model file names its architecture, classes and
//     preprocessing in its metadata; the optimizer's state beside the
//     weights is ignored;
//   - other weights (torchvision's, the tutorial's resNet34.pth, any .pth
//     or safetensors state dict) are the architecture that their tensors'
//     names and shapes show (see resnet.InferArch), with as many classes
//     and input channels as they have; a torchvision weights name says
//     its architecture before the file is read.
//
// arch, when not empty, must agree ("these weights are resnet18; --arch
// says resnet34" otherwise). The classes and input channels are checked
// (see MaxNumClasses, MaxInChannels) before the model is built; seed
// initializes it before the weights are loaded.
func Open(b backend.Backend, arch, weights string, seed uint64) (*Source, error) {
	if _, ok := resnet.Architectures[arch]; arch != "" && !ok {
		return nil, fmt.Errorf("resnet: unknown architecture %q (known: %s)", arch, strings.Join(resnet.Names(), ", "))
	}
	if _, err := os.Stat(weights); err != nil {
		if e, ok := catalogueName(weights); ok && arch != "" && arch != e.Arch {
			return nil, fmt.Errorf("weights %s are %s; --arch says %s", e.Name, e.Arch, arch)
		}
	}
	path, w, err := ResolveWeights(weights)
	if err != nil {
		return nil, err
	}
	sd, err := checkpoint.Read(path)
	if err != nil {
		return nil, err
	}
	src := &Source{Path: path, Weights: w}
	var name string
	var opt resnet.Options
	if _, ok := sd.Metadata[metaKey]; ok {
		// A resgo model file: its metadata says what to build.
		_, meta, err := modelOf(path, sd)
		if err != nil {
			return nil, err
		}
		if arch != "" && arch != meta.Arch {
			return nil, fmt.Errorf("%s: these weights are a resgo checkpoint of %s; --arch says %s", path, meta.Arch, arch)
		}
		src.Meta, src.Weights = meta, nil
		name, opt = meta.Arch, meta.Options()
		sd = modelTensors(sd)
	} else {
		if name, opt, err = inferArch(path, sd); err != nil {
			return nil, err
		}
		if arch != "" && arch != name {
			return nil, fmt.Errorf("%s: these weights are %s; --arch says %s", path, name, arch)
		}
		if w != nil && w.Arch != name {
			return nil, fmt.Errorf("%s: the file of torchvision's %s holds %s weights", path, w.Name, name)
		}
	}
	opt.Seed = seed
	if src.Model, err = resnet.New(b, name, opt); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := checkpoint.Load(src.Model, sd, checkpoint.LoadOptions{}); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return src, nil
}

// inferArch returns the architecture and options of plain weights, read
// from their tensors (see resnet.InferArch) and checked against the limits
// on classes and input channels.
func inferArch(path string, sd *checkpoint.StateDict) (string, resnet.Options, error) {
	shapes := make(map[string][]int, sd.Len())
	for _, k := range sd.Keys {
		shapes[k] = sd.Get(k).Shape
	}
	name, opt, err := resnet.InferArch(shapes)
	if err != nil {
		return "", opt, fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case !opt.IncludeTop:
		return "", opt, fmt.Errorf("%s: %s weights without fc.weight (a backbone without its classifier): resgo loads whole models", path, name)
	case opt.NumClasses > MaxNumClasses:
		return "", opt, fmt.Errorf("%s: fc.weight has %d classes: want 1 to %d", path, opt.NumClasses, MaxNumClasses)
	case opt.InChannels < 1 || opt.InChannels > MaxInChannels:
		return "", opt, fmt.Errorf("%s: conv1.weight takes %d input channels: want 1 to %d", path, opt.InChannels, MaxInChannels)
	}
	return name, opt, nil
}

// LoadPretrained is Open, returning the model and torchvision's catalogue
// entry of the weights, whose Preset is the preprocessing to use (nil for
// other weights, resgo model files included).
func LoadPretrained(b backend.Backend, arch, weights string, seed uint64) (*resnet.Model, *resnet.Weights, error) {
	src, err := Open(b, arch, weights, seed)
	if err != nil {
		return nil, nil, err
	}
	return src.Model, src.Weights, nil
}
