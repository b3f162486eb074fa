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
// cache). For torchvision's weights, named either way, it also returns
// their table entry (architecture, preprocessing); otherwise w is nil.
func ResolveWeights(weights string) (path string, w *Weights, err error) {
	entry, lerr := LookupWeights(filepath.Base(weights))
	if lerr != nil {
		return weights, nil, nil
	}
	if _, err := os.Stat(weights); err == nil {
		return weights, &entry, nil
	}
	dir, err := DefaultCacheDir()
	if err != nil {
		return "", nil, err
	}
	path = filepath.Join(dir, entry.File)
	if _, err := os.Stat(path); err != nil {
		return "", nil, fmt.Errorf("weights %s are not in the cache (%s): run `resgo weights download %s`", entry.Name, path, entry.Name)
	}
	return path, &entry, nil
}

// Preset returns the evaluation preprocessing that goes with the weights.
func (w Weights) Preset() transform.Preset {
	return transform.Preset{ResizeSize: w.ResizeSize, CropSize: w.CropSize, Channels: 3,
		Norm: transform.Normalization{Mean: w.Mean[:], Std: w.Std[:]}}
}

// LoadPretrained builds arch (or the architecture the weights name) on b
// with the given weights (see ResolveWeights) and as many classes as the
// weights' fc layer has. For torchvision's weights it returns their table
// entry too (nil otherwise), whose Preset is the preprocessing to use.
func LoadPretrained(b backend.Backend, arch, weights string, seed uint64) (*resnet.Model, *Weights, error) {
	path, w, err := ResolveWeights(weights)
	if err != nil {
		return nil, nil, err
	}
	if w != nil && arch != "" && arch != w.Arch {
		return nil, nil, fmt.Errorf("weights %s are for %s, not %s", w.Name, w.Arch, arch)
	}
	if arch == "" && w != nil {
		arch = w.Arch
	}
	if arch == "" {
		return nil, nil, fmt.Errorf("%s: say which architecture with --arch", weights)
	}
	sd, err := Read(path)
	if err != nil {
		return nil, nil, err
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
		return nil, nil, err
	}
	if _, err := Load(m, sd, LoadOptions{}); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, w, nil
}
