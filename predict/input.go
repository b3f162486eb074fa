package predict

import (
	"fmt"

	"github.com/resgo/resgo/tensor"
	"github.com/resgo/resgo/transform"
)

// Input is one image preprocessed for a classifier's model: Channels x H
// x W values, as the model takes them.
type Input struct {
	Name   string    // labels the result (a file name, say)
	H, W   int       // the size after preprocessing
	Values []float32 // Channels*H*W values, channel by channel
}

// Preprocess returns im as the model takes it (the classifier's Pre
// applied), labelled name. It only reads the classifier, so goroutines
// may preprocess images at the same time, and at the same time as a
// forward pass: package serve preprocesses each request in its own
// goroutine and gathers the inputs into one ClassifyInputs.
func (c *Classifier) Preprocess(im *transform.Image, name string) Input {
	h, w := c.Pre.OutputSize(im.W, im.H)
	in := Input{Name: name, H: h, W: w, Values: make([]float32, c.Pre.Channels*h*w)}
	c.Pre.Apply(im, in.Values)
	return in
}

// ClassifyInputs classifies preprocessed inputs, all of one size, in a
// single forward pass (whatever Batch is), keeping the top k classes of
// each. Like Classify, it is not safe for concurrent use.
func (c *Classifier) ClassifyInputs(inputs []Input, k int) ([]Result, error) {
	if len(inputs) == 0 {
		return nil, nil
	}
	h, w, ch := inputs[0].H, inputs[0].W, c.Pre.Channels
	for _, in := range inputs {
		if in.H != h || in.W != w || len(in.Values) != ch*h*w {
			return nil, fmt.Errorf("predict: %s: an input of %d values for %dx%d, in a batch of %dx%dx%d inputs", in.Name, len(in.Values), in.W, in.H, ch, w, h)
		}
	}
	c.x.Reset(tensor.Plain, nil, len(inputs)*ch*h*w, len(inputs), ch, h, w)
	xs := c.x.Mutable()
	for i, in := range inputs {
		copy(xs[i*ch*h*w:], in.Values)
	}
	logits, err := c.run(false)
	if err != nil {
		return nil, err
	}
	k = min(max(k, 1), len(c.Classes))
	n := len(logits) / len(inputs)
	results := make([]Result, len(inputs))
	for i, in := range inputs {
		row := logits[i*n : (i+1)*n]
		results[i] = Result{Image: in.Name, Top: c.topK(row, k), Logits: row}
	}
	return results, nil
}
