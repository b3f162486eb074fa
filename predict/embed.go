package predict

import (
	"fmt"

	"github.com/resgo/resgo/transform"
)

// Embedding is the feature vector of one image: the pooled features the
// model's fc layer takes (Model.FeatureChannels() values: 512 for
// ResNet-18/34, 2048 for ResNet-50 and up).
type Embedding struct {
	Image    string    `json:"image"`
	Features []float32 `json:"features"`
}

// Embed computes the embeddings of images, in batches of Batch, with the
// classifier's preprocessing: the output of the model's average pooling,
// the input of its fc layer (see resnet.Model.Features). names labels the
// results (file paths, say).
func (c *Classifier) Embed(images []*transform.Image, names []string) ([]Embedding, error) {
	if len(names) != len(images) {
		return nil, fmt.Errorf("predict: %d names for %d images", len(names), len(images))
	}
	batch := c.batchSize()
	n := c.Model.FeatureChannels()
	var out []Embedding
	for start := 0; start < len(images); start += batch {
		end := min(start+batch, len(images)) // the last, partial batch too
		feats, err := c.forward(images[start:end], true)
		if err != nil {
			return nil, err
		}
		if len(feats) != (end-start)*n {
			return nil, fmt.Errorf("predict: %s gave %d features for %d images, want %d each", c.Model.Name, len(feats), end-start, n)
		}
		for i := range end - start {
			out = append(out, Embedding{Image: names[start+i], Features: feats[i*n : (i+1)*n : (i+1)*n]})
		}
	}
	return out, nil
}

// EmbedStream computes the embeddings of the images that load returns for
// names, in order, as ClassifyStream classifies them: a batch at a time,
// each embedding passed to emit as soon as its batch is done, a name that
// load fails on passed to skip (which may be nil) and left out, an error
// from emit or from the model stopping the stream. It returns the number
// of images embedded.
func (c *Classifier) EmbedStream(names []string, load func(name string) (*transform.Image, error), skip func(name string, err error), emit func(Embedding) error) (int, error) {
	return c.stream(names, load, skip, func(images []*transform.Image, loaded []string) (int, error) {
		embs, err := c.Embed(images, loaded)
		if err != nil {
			return 0, err
		}
		for _, e := range embs {
			if err := emit(e); err != nil {
				return 0, err
			}
		}
		return len(embs), nil
	})
}
