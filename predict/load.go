package predict

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/transform"
)

// An Option changes how Load builds a classifier.
type Option func(*loadOptions)

type loadOptions struct {
	arch      string
	classFile string
	b         backend.Backend
}

// WithArch checks that the weights are of the architecture name
// ("resnet34", say): Load fails if they are not. Without it, Load builds
// whatever architecture the weights show.
func WithArch(name string) Option { return func(o *loadOptions) { o.arch = name } }

// WithClassFile names the classes with a class_indices.json as the
// tutorial's train.py and resgo train write it ({"0": "daisy", ...}),
// instead of the checkpoint's own names (or ImageNet's for 1000 classes,
// or "class N").
func WithClassFile(path string) Option { return func(o *loadOptions) { o.classFile = path } }

// WithBackend runs the model on b instead of a new backend.Default().
func WithBackend(b backend.Backend) Option { return func(o *loadOptions) { o.b = b } }

// Load returns a classifier for weights given as `resgo predict --weights`
// takes them (see modelfile.Open):
//
//   - a resgo checkpoint (resgo train's best.safetensors or
//     last.safetensors): the architecture, class names and preprocessing
//     are read from it;
//   - a .pth or .safetensors state dict, torchvision's or the tutorial's
//     resNet34.pth: the architecture its tensors show, with torchvision's
//     ImageNet V1 preprocessing (resize 256, center crop 224, ImageNet
//     mean and deviation) and as many classes as its fc layer has;
//   - a torchvision weights name such as "resnet50.IMAGENET1K_V2", taken
//     from the download cache (resgo weights download): the weights' own
//     preprocessing.
//
// Without WithClassFile, the classes of weights that do not name them are
// ImageNet's for 1000 outputs and "class 0", "class 1", ... otherwise. The
// model runs on backend.Default() (dnnl where it is built, else ref;
// RESGO_BACKEND chooses) unless WithBackend says otherwise. Errors name
// the file and the problem.
func Load(weights string, opts ...Option) (*Classifier, error) {
	var o loadOptions
	for _, opt := range opts {
		opt(&o)
	}
	b := o.b
	if b == nil {
		var err error
		if b, err = backend.Default(); err != nil {
			return nil, fmt.Errorf("predict: %w", err)
		}
	}
	src, err := modelfile.Open(b, o.arch, weights, 0)
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	n := src.Model.Options.NumClasses
	var classes []string
	if src.Meta != nil && o.classFile == "" {
		classes = src.Meta.Classes
	} else if classes, err = ReadClassIndices(o.classFile, n); err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	return New(src.Model, classes, src.Preprocess())
}

// ReadClassIndices reads the names of n classes from a class_indices.json
// as the tutorial's train.py writes it ({"0": "daisy", "1": "dandelion",
// ...}); every class from 0 to n-1 must have a name. With path "" it
// returns ImageNet's classes for n = 1000 and "class 0", "class 1", ...
// otherwise.
func ReadClassIndices(path string, n int) ([]string, error) {
	if path == "" {
		if n == 1000 {
			return resnet.ImageNetClasses(), nil
		}
		names := make([]string, n)
		for i := range names {
			names[i] = "class " + strconv.Itoa(i)
		}
		return names, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var byIndex map[string]string
	if err := json.Unmarshal(raw, &byIndex); err != nil {
		return nil, fmt.Errorf("%s: not a class index file like {\"0\": \"daisy\", ...}: %w", path, err)
	}
	names := make([]string, n)
	for k, v := range byIndex {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i >= n {
			return nil, fmt.Errorf("%s: key %q is not a class index below %d", path, k, n)
		}
		names[i] = v
	}
	for i, v := range names {
		if v == "" {
			return nil, fmt.Errorf("%s: no name for class %d of %d", path, i, n)
		}
	}
	return names, nil
}

// LoadImage decodes an image file as the classifier's model takes it (RGB
// or grayscale), refusing one that data.MaxPixels refuses and one whose
// model input would have more than MaxInputPixels pixels. The error names
// the file.
func (c *Classifier) LoadImage(path string) (*transform.Image, error) {
	im, err := data.LoadImage(path, c.Pre.Channels)
	if err != nil {
		return nil, err
	}
	limit := c.MaxInputPixels
	if limit <= 0 {
		limit = DefaultMaxInputPixels
	}
	if h, w := c.Pre.OutputSize(im.W, im.H); int64(h)*int64(w) > int64(limit) {
		return nil, fmt.Errorf("%s: an image of %dx%d makes a model input of %dx%d, more than the limit of %d pixels (the model's preprocessing does not crop; MaxInputPixels)",
			path, im.W, im.H, w, h, limit)
	}
	return im, nil
}

// ClassifyFiles classifies image files (see LoadImage) in batches of Batch,
// keeping the top k classes of each, and returns their results in the
// order of paths, each labelled with its path. Images are read a batch at
// a time. A file that cannot be read stops it with an error naming the
// file; data.ListImages lists the images of a folder, and ClassifyStream
// skips unreadable files instead.
func (c *Classifier) ClassifyFiles(paths []string, k int) ([]Result, error) {
	var results []Result
	batch := c.batchSize()
	for start := 0; start < len(paths); start += batch {
		chunk := paths[start:min(start+batch, len(paths))]
		images := make([]*transform.Image, len(chunk))
		for i, path := range chunk {
			im, err := c.LoadImage(path)
			if err != nil {
				return nil, fmt.Errorf("predict: %w", err)
			}
			images[i] = im
		}
		r, err := c.Classify(images, chunk, k)
		if err != nil {
			return nil, err
		}
		results = append(results, r...)
	}
	return results, nil
}
