// Package modelfile reads and writes resgo's model files: a ResNet's weights
// together with what it takes to rebuild and use it: architecture, classes,
// preprocessing.
package modelfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
// as a safetensors file.
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
	raw, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("modelfile: %s: %w", path, err)
	}
	sd.Metadata = map[string]string{metaKey: string(raw)}
	return atomicfile.Write(path, func(w io.Writer) error { return checkpoint.EncodeSafetensors(w, sd) })
}

// ErrNotModel is returned (wrapped) by Read for a safetensors file without
// resgo's metadata: plain weights.
var ErrNotModel = errors.New("a safetensors file without resgo metadata (not a resgo checkpoint): give --arch and load it as weights")

// Read reads a resgo model file: its state dict (model variables and any
// extra tensors) and its Meta.
func Read(path string) (*checkpoint.StateDict, *Meta, error) {
	sd, err := checkpoint.ReadSafetensors(path)
	if err != nil {
		return nil, nil, err
	}
	raw, ok := sd.Metadata[metaKey]
	if !ok {
		return nil, nil, fmt.Errorf("modelfile: %s: %w", path, ErrNotModel)
	}
	var meta Meta
	if err := json.Unmarshal([]byte(raw), &meta); err != nil {
		return nil, nil, fmt.Errorf("modelfile: %s: bad resgo metadata: %w", path, err)
	}
	if meta.Format != Format {
		return nil, nil, fmt.Errorf("modelfile: %s: format %q, this resgo reads %q", path, meta.Format, Format)
	}
	return sd, &meta, nil
}

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
	model := checkpoint.NewStateDict()
	for _, k := range sd.Keys {
		if !strings.HasPrefix(k, "optim.") {
			model.Add(sd.Get(k))
		}
	}
	if _, err := checkpoint.Load(m, model, checkpoint.LoadOptions{}); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, meta, nil
}

// ResolveWeights finds a weights file given as a path or as a torchvision
// weights name (see resnet.LookupWeights; the file is then taken from the
// download cache, see hub). For torchvision's weights, named either way, it
// also returns their table entry (architecture, preprocessing); otherwise w
// is nil.
func ResolveWeights(weights string) (path string, w *resnet.Weights, err error) {
	entry, lerr := resnet.LookupWeights(filepath.Base(weights))
	if lerr != nil {
		return weights, nil, nil
	}
	if _, err := os.Stat(weights); err == nil {
		return weights, &entry, nil
	}
	dir, err := hub.DefaultCacheDir()
	if err != nil {
		return "", nil, err
	}
	path = filepath.Join(dir, entry.File)
	if _, err := os.Stat(path); err != nil {
		return "", nil, fmt.Errorf("weights %s are not in the cache (%s): run `resgo weights download %s`", entry.Name, path, entry.Name)
	}
	return path, &entry, nil
}

// LoadPretrained builds arch (or the architecture the weights name) on b
// with the given weights (see ResolveWeights) and as many classes as the
// weights' fc layer has. For torchvision's weights it returns their table
// entry too (nil otherwise), whose Preset is the preprocessing to use.
func LoadPretrained(b backend.Backend, arch, weights string, seed uint64) (*resnet.Model, *resnet.Weights, error) {
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
	sd, err := checkpoint.Read(path)
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
	if _, err := checkpoint.Load(m, sd, checkpoint.LoadOptions{}); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, w, nil
}
