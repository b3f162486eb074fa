package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/transform"
)

// ModelFormat identifies resgo's own checkpoints in their metadata.
const ModelFormat = "resgo/1"

// metaKey is the safetensors metadata key holding a checkpoint's Meta.
const metaKey = "resgo"

// Meta is what a resgo checkpoint says about its model beside the weights:
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

// Options returns the model builder's options for the checkpoint.
func (m *Meta) Options() resnet.Options {
	return resnet.Options{NumClasses: m.NumClasses, InChannels: m.InChannels, IncludeTop: true, SmallStem: m.SmallStem}
}

// WriteModel writes a resgo checkpoint atomically: the model's state under
// torchvision's names, the extra tensors (optimizer state, say) and meta,
// as a safetensors file.
func WriteModel(path string, m *resnet.Model, meta Meta, extra map[string]*Tensor) error {
	sd := FromModule(m)
	for name, t := range extra {
		if sd.Get(name) != nil {
			return fmt.Errorf("checkpoint: %s: extra tensor %s clashes with a model variable", path, name)
		}
		t.Name = name
		sd.Add(t)
	}
	meta.Format = ModelFormat
	raw, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	sd.Metadata = map[string]string{metaKey: string(raw)}
	return WriteFileAtomic(path, func(w io.Writer) error { return EncodeSafetensors(w, sd) })
}

// ErrNotModel is returned (wrapped) by ReadModel for a safetensors file
// without resgo's metadata: plain weights.
var ErrNotModel = errors.New("a safetensors file without resgo metadata (not a resgo checkpoint): give --arch and load it as weights")

// ReadModel reads a resgo checkpoint: its state dict (model variables and
// any extra tensors) and its Meta.
func ReadModel(path string) (*StateDict, *Meta, error) {
	sd, err := ReadSafetensors(path)
	if err != nil {
		return nil, nil, err
	}
	raw, ok := sd.Metadata[metaKey]
	if !ok {
		return nil, nil, fmt.Errorf("checkpoint: %s: %w", path, ErrNotModel)
	}
	var meta Meta
	if err := json.Unmarshal([]byte(raw), &meta); err != nil {
		return nil, nil, fmt.Errorf("checkpoint: %s: bad resgo metadata: %w", path, err)
	}
	if meta.Format != ModelFormat {
		return nil, nil, fmt.Errorf("checkpoint: %s: format %q, this resgo reads %q", path, meta.Format, ModelFormat)
	}
	return sd, &meta, nil
}

// LoadModel rebuilds the model a resgo checkpoint describes on backend b
// and loads its weights. Entries that are not model variables (optimizer
// state) are ignored.
func LoadModel(b backend.Backend, path string) (*resnet.Model, *Meta, error) {
	sd, meta, err := ReadModel(path)
	if err != nil {
		return nil, nil, err
	}
	m, err := resnet.New(b, meta.Arch, meta.Options())
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	model := NewStateDict()
	for _, k := range sd.Keys {
		if !strings.HasPrefix(k, "optim.") {
			model.Add(sd.Get(k))
		}
	}
	if _, err := Load(m, model, LoadOptions{}); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, meta, nil
}

// ResolveWeights finds a weights file given as a path or as a torchvision
// weights name (see LookupWeights; the file is then taken from the download
// cache). For torchvision weights, named either way, it also returns their
// architecture and their preprocessing; otherwise arch is "" and the
// preprocessing is ImageNet V1's (resize 256, crop 224).
func ResolveWeights(weights string) (path, arch string, pre transform.Preset, err error) {
	pre, path = transform.ImageNetV1, weights
	w, lerr := LookupWeights(filepath.Base(weights))
	if lerr != nil {
		return path, "", pre, nil
	}
	pre = transform.Preset{ResizeSize: w.ResizeSize, CropSize: w.CropSize, Channels: 3,
		Norm: transform.Normalization{Mean: w.Mean[:], Std: w.Std[:]}}
	if _, err := os.Stat(path); err == nil {
		return path, w.Arch, pre, nil
	}
	dir, err := DefaultCacheDir()
	if err != nil {
		return "", "", pre, err
	}
	path = filepath.Join(dir, w.File)
	if _, err := os.Stat(path); err != nil {
		return "", "", pre, fmt.Errorf("weights %s are not in the cache (%s): run `resgo weights download %s`", w.Name, path, w.Name)
	}
	return path, w.Arch, pre, nil
}

// LoadPretrained builds arch (or the architecture the weights name) on b
// with the given weights (see ResolveWeights), as many classes as the
// weights' fc layer has, and returns it with the weights' preprocessing.
func LoadPretrained(b backend.Backend, arch, weights string, seed uint64) (*resnet.Model, transform.Preset, error) {
	path, wArch, pre, err := ResolveWeights(weights)
	if err != nil {
		return nil, pre, err
	}
	if arch == "" {
		arch = wArch
	}
	if arch == "" {
		return nil, pre, fmt.Errorf("%s: say which architecture with --arch", weights)
	}
	sd, err := Read(path)
	if err != nil {
		return nil, pre, err
	}
	opt := resnet.Options{IncludeTop: true, NumClasses: 1000, Seed: seed}
	if fc := sd.Get("fc.weight"); fc != nil && len(fc.Shape) == 2 {
		opt.NumClasses = fc.Shape[0]
	}
	// A stem with a 3x3 kernel is the small-image stem; its input channels
	// are conv1's.
	if c := sd.Get("conv1.weight"); c != nil && len(c.Shape) == 4 {
		opt.InChannels, opt.SmallStem = c.Shape[1], c.Shape[2] == 3
	}
	m, err := resnet.New(b, arch, opt)
	if err != nil {
		return nil, pre, err
	}
	if _, err := Load(m, sd, LoadOptions{}); err != nil {
		return nil, pre, fmt.Errorf("%s: %w", path, err)
	}
	return m, pre, nil
}
