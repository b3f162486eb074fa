// Package predict classifies images with a ResNet: preprocessing as the
// weights expect, batched evaluation-mode forward passes, softmax and top-k.
// It is what the tutorial's predict.py and batch_predict.py do, for other
// Go programs:
//
//	clf, err := predict.Load("runs/flowers/best.safetensors") // what resgo train wrote
//	...
//	results, err := clf.ClassifyFiles([]string{"tulip.jpg"}, 5)
//	fmt.Println(results[0].Top[0].Name, results[0].Top[0].Prob)
//
// Load takes what `resgo predict --weights` takes; New wraps a model built
// some other way. A program must import a backend package for the models
// to run on: _ "github.com/resgo/resgo/backend/dnnl" (oneDNN, with cgo)
// and/or _ "github.com/resgo/resgo/backend/ref" (pure Go).
//
// # Concurrency
//
// A Classifier is not safe for concurrent use: its forward pass writes the
// buffers of its model's layers and its own input buffer. Give each
// goroutine its own Classifier (each Load builds its own model, on a
// backend of its own unless WithBackend shares one), or let the goroutines
// take turns, as package serve does (one goroutine owns the classifier and
// runs the forward passes; Preprocess, which only reads the classifier,
// runs in the request goroutines). Separate Classifiers may
// run at the same time, on one shared backend too: the dnnl backend runs
// the operations of all its callers one at a time on its worker thread
// (so more goroutines gain nothing there but overlap with image
// decoding), the ref backend runs them side by side. Softmax,
// ReadClassIndices and the Result values are safe anywhere.
package predict

import (
	"fmt"
	"math"
	"sort"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
	"github.com/resgo/resgo/transform"
)

// Class is one class of a prediction.
type Class struct {
	Index int     `json:"index"`
	Name  string  `json:"name"`
	Prob  float64 `json:"prob"`
}

// Result is the prediction for one image.
type Result struct {
	Image  string    `json:"image"`
	Top    []Class   `json:"top"`
	Logits []float32 `json:"logits"`
}

// Classifier is a model in evaluation mode with its preprocessing and class
// names. It is not safe for concurrent use (see the package doc).
type Classifier struct {
	Model   *resnet.Model
	Classes []string         // class names by index
	Pre     transform.Preset // the weights' preprocessing
	Batch   int              // images per forward pass (8 when 0)
	// MaxInputPixels bounds the model input, in pixels, that LoadImage
	// and ClassifyFiles accept from an image file (DefaultMaxInputPixels
	// when 0). It matters only for a preprocessing that does not crop to
	// a fixed size (a Fashion-MNIST model's), which passes a photo of tens
	// of megapixels at full size to the forward pass.
	MaxInputPixels int

	x tensor.Tensor
}

// DefaultMaxInputPixels is the default of Classifier.MaxInputPixels: one
// megapixel (1024x1024), where a ResNet's activations already take
// hundreds of MiB; serve.DefaultMaxInputPixels, the default of resgo
// predict and resgo serve's --max-input-pixels, is the same.
const DefaultMaxInputPixels = 1 << 20

// batchSize returns the images per forward pass.
func (c *Classifier) batchSize() int {
	if c.Batch <= 0 {
		return 8
	}
	return c.Batch
}

// New returns a classifier and puts the model in evaluation mode.
func New(m *resnet.Model, classes []string, pre transform.Preset) (*Classifier, error) {
	if m.FC == nil {
		return nil, fmt.Errorf("predict: %s has no classification head", m.Name)
	}
	if len(classes) != m.FC.Out {
		return nil, fmt.Errorf("predict: %d class names for a model with %d outputs", len(classes), m.FC.Out)
	}
	nn.SetTraining(m, false)
	return &Classifier{Model: m, Classes: classes, Pre: pre}, nil
}

// Classify predicts the classes of images, in batches, keeping the top k
// classes of each. names labels the results (file paths, say).
func (c *Classifier) Classify(images []*transform.Image, names []string, k int) ([]Result, error) {
	batch := c.batchSize()
	k = min(max(k, 1), len(c.Classes))
	var results []Result
	for start := 0; start < len(images); start += batch {
		end := min(start+batch, len(images)) // the last, partial batch too
		logits, err := c.forward(images[start:end], false)
		if err != nil {
			return nil, err
		}
		n := len(logits) / (end - start)
		for i := range end - start {
			row := logits[i*n : (i+1)*n]
			results = append(results, Result{Image: names[start+i], Top: c.topK(row, k), Logits: row})
		}
	}
	return results, nil
}

// ClassifyStream classifies the images that load returns for names, in
// order, and passes each result to emit as soon as its batch is done:
// images are loaded a batch (Batch images) at a time and dropped after it,
// so memory does not grow with the number of names. The batches and
// results are those of Classify on every loadable image at once. A name
// that load fails on goes to skip (which may be nil) and is left out; an
// error from emit or from the model stops the stream. It returns the
// number of images classified.
func (c *Classifier) ClassifyStream(names []string, k int, load func(name string) (*transform.Image, error), skip func(name string, err error), emit func(Result) error) (int, error) {
	return c.stream(names, load, skip, func(images []*transform.Image, loaded []string) (int, error) {
		results, err := c.Classify(images, loaded, k)
		if err != nil {
			return 0, err
		}
		for _, r := range results {
			if err := emit(r); err != nil {
				return 0, err
			}
		}
		return len(results), nil
	})
}

// stream loads the images of names a batch (Batch images) at a time and
// passes each batch to run, which returns how many images it is done
// with; a name that load fails on goes to skip (which may be nil) and is
// left out. The decoded images are dropped after their batch. It returns
// the number of images done.
func (c *Classifier) stream(names []string, load func(name string) (*transform.Image, error), skip func(name string, err error),
	run func(images []*transform.Image, loaded []string) (int, error)) (int, error) {
	batch := c.batchSize()
	images := make([]*transform.Image, 0, batch)
	loaded := make([]string, 0, batch)
	done := 0
	flush := func() error {
		if len(images) == 0 {
			return nil
		}
		n, err := run(images, loaded)
		clear(images) // drop the decoded images before the next batch
		images, loaded = images[:0], loaded[:0]
		done += n
		return err
	}
	for _, name := range names {
		im, err := load(name)
		if err != nil {
			if skip != nil {
				skip(name, err)
			}
			continue
		}
		images, loaded = append(images, im), append(loaded, name)
		if len(images) == batch {
			if err := flush(); err != nil {
				return done, err
			}
		}
	}
	return done, flush()
}

// forward preprocesses a batch and returns its logits, row by row, or
// with features set its pooled features (the input of fc).
func (c *Classifier) forward(images []*transform.Image, features bool) ([]float32, error) {
	h, w := c.Pre.OutputSize(images[0].W, images[0].H)
	ch := c.Pre.Channels
	for _, im := range images[1:] {
		if hh, ww := c.Pre.OutputSize(im.W, im.H); hh != h || ww != w {
			return nil, fmt.Errorf("predict: images of different sizes after preprocessing (%dx%d and %dx%d): set a crop size", w, h, ww, hh)
		}
	}
	c.x.Reset(tensor.Plain, nil, len(images)*ch*h*w, len(images), ch, h, w)
	xs := c.x.Mutable()
	for i, im := range images {
		c.Pre.Apply(im, xs[i*ch*h*w:(i+1)*ch*h*w])
	}
	return c.run(features)
}

// run runs the model on c.x and returns its logits, row by row, or with
// features set its pooled features.
func (c *Classifier) run(features bool) ([]float32, error) {
	var out []float32
	b := c.Model.Backend()
	err := backend.Do(b, func() {
		var y *tensor.Tensor
		if features {
			y = c.Model.Features(&c.x)
		} else {
			y = c.Model.Forward(&c.x)
		}
		out = append([]float32(nil), backend.Values(b, y)...)
	})
	if err != nil {
		return nil, fmt.Errorf("predict: %s: %w", c.Model.Name, err)
	}
	return out, nil
}

// topK returns the k most probable classes of one row of logits.
func (c *Classifier) topK(logits []float32, k int) []Class {
	probs := Softmax(logits)
	idx := make([]int, len(probs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return probs[idx[a]] > probs[idx[b]] })
	top := make([]Class, k)
	for i := range k {
		top[i] = Class{Index: idx[i], Name: c.Classes[idx[i]], Prob: probs[idx[i]]}
	}
	return top
}

// Softmax returns exp(x_i) / sum_j exp(x_j), computed stably in float64.
func Softmax(logits []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range logits {
		m = max(m, float64(v))
	}
	p := make([]float64, len(logits))
	sum := 0.0
	for i, v := range logits {
		p[i] = math.Exp(float64(v) - m)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}
