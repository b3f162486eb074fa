package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/predict"
	"github.com/resgo/resgo/serve"
	"github.com/resgo/resgo/transform"
)

func predictCmd() *cobra.Command {
	var (
		arch, weights, classFile string
		topk, batch              int
		asJSON                   bool
		maxPixels                int64
		maxInputPixels           int
	)
	cmd := &cobra.Command{
		Use:   "predict --arch NAME --weights FILE [flags] IMAGE|FOLDER...",
		Short: "Classify images (a folder: every image in it, the last partial batch included)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			clf, err := loadClassifier(arch, weights, classFile)
			if err != nil {
				return err
			}
			clf.Batch = batch
			if maxPixels < 1 {
				return fmt.Errorf("--max-pixels %d: must be at least 1", maxPixels)
			}
			if maxInputPixels < 1 {
				return fmt.Errorf("--max-input-pixels %d: must be at least 1", maxInputPixels)
			}
			data.MaxPixels = maxPixels

			paths, err := data.ListImages(args)
			if err != nil {
				return err
			}
			p := newPredictionPrinter(cmd.OutOrStdout(), asJSON, paths)
			n, err := clf.ClassifyStream(paths, topk,
				func(path string) (*transform.Image, error) { return loadInput(path, clf.Pre, maxInputPixels) },
				func(_ string, err error) { fmt.Fprintln(cmd.ErrOrStderr(), "resgo: skipping", err) }, // reported, not fatal
				p.print)
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("no readable image among %d files", len(paths))
			}
			return p.finish()
		},
	}
	f := cmd.Flags()
	f.StringVar(&arch, "arch", "", "architecture (default: read from the checkpoint or the weights' tensors)")
	f.StringVar(&weights, "weights", "", "a resgo checkpoint (best.safetensors), a .pth or .safetensors state dict, or a torchvision name such as resnet50.IMAGENET1K_V2 (from the download cache)")
	f.StringVar(&classFile, "classes", "", "class_indices.json as the tutorial writes it (default: the ImageNet classes for 1000 outputs)")
	f.IntVar(&topk, "topk", 5, "classes to show per image")
	f.IntVar(&batch, "batch", 8, "images per forward pass")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per image with the top classes, probabilities and logits")
	f.Int64Var(&maxPixels, "max-pixels", data.DefaultMaxPixels, "refuse (skip) an image whose header declares more pixels (width x height) than this, before decoding it")
	f.IntVar(&maxInputPixels, "max-input-pixels", serve.DefaultMaxInputPixels, "refuse (skip) an image that the model's preprocessing makes a model input of more pixels than this (only when it does not crop)")
	requireFlags(cmd, "weights")
	return cmd
}

// loadInput decodes an image file for a model with preprocessing pre,
// refusing one that pre makes a model input of more than maxInputPixels
// pixels (a preprocessing without a crop keeps a photo's size, and the
// forward pass's activations grow with it).
func loadInput(path string, pre transform.Preset, maxInputPixels int) (*transform.Image, error) {
	im, err := data.LoadImage(path, pre.Channels)
	if err != nil {
		return nil, err
	}
	if h, w := pre.OutputSize(im.W, im.H); int64(h)*int64(w) > int64(maxInputPixels) {
		return nil, fmt.Errorf("%s: an image of %dx%d makes a model input of %dx%d, more than the limit of %d pixels (the model's preprocessing does not crop; --max-input-pixels)",
			path, im.W, im.H, w, h, maxInputPixels)
	}
	return im, nil
}

// loadClassifier builds the classifier of a resgo checkpoint (which names
// its classes and preprocessing) or of pretrained weights with the class
// names of classFile (or ImageNet's), on the default backend.
func loadClassifier(arch, weights, classFile string) (*predict.Classifier, error) {
	b, err := backend.Default()
	if err != nil {
		return nil, err
	}
	m, classes, pre, err := loadModel(b, arch, weights, classFile)
	if err != nil {
		return nil, err
	}
	return predict.New(m, classes, pre)
}

// loadModel loads the model, class names and preprocessing of a resgo
// checkpoint or of pretrained weights (see loadClassifier and
// modelfile.Open: the architecture of plain weights is read from their
// tensors, never from the file's name).
func loadModel(b backend.Backend, arch, weights, classFile string) (*resnet.Model, []string, transform.Preset, error) {
	src, err := modelfile.Open(b, arch, weights, 0)
	if err != nil {
		return nil, nil, transform.Preset{}, err
	}
	n := src.Model.Options.NumClasses
	var classes []string
	if src.Meta != nil && classFile == "" {
		classes = src.Meta.Classes
	} else if classes, err = predict.ReadClassIndices(classFile, n); err != nil {
		return nil, nil, transform.Preset{}, err
	}
	return src.Model, classes, src.Preprocess(), nil
}

// predictionPrinter prints results as they come, as the tutorial's
// predict.py (one image) and batch_predict.py (several, sorted by path),
// or as JSON lines in the order of the paths. Results are printed as soon
// as their format is known: the first waits for a second (one result
// alone gets predict.py's format), and the lines of paths that are not in
// sorted order wait for the end to be sorted (their top class only).
type predictionPrinter struct {
	out    io.Writer
	asJSON bool
	sorted bool // the paths come sorted: print each line as it comes

	n     int              // results seen
	first *predict.Result  // the first result, until a second comes
	held  []predict.Result // text results waiting for the sort, when !sorted
}

// newPredictionPrinter returns a printer for the results of paths, in
// their order.
func newPredictionPrinter(out io.Writer, asJSON bool, paths []string) *predictionPrinter {
	return &predictionPrinter{out: out, asJSON: asJSON, sorted: sort.StringsAreSorted(paths)}
}

// print prints a result, or holds it until its place is known.
func (p *predictionPrinter) print(r predict.Result) error {
	p.n++
	if p.asJSON {
		return json.NewEncoder(p.out).Encode(r)
	}
	if p.n == 1 {
		p.first = &r
		return nil
	}
	if p.first != nil {
		first := *p.first
		p.first = nil
		if err := p.line(first); err != nil {
			return err
		}
	}
	return p.line(r)
}

// line prints the line of one result among several, or holds it (its top
// class only) when the paths need sorting.
func (p *predictionPrinter) line(r predict.Result) error {
	if !p.sorted {
		p.held = append(p.held, predict.Result{Image: r.Image, Top: r.Top[:1]})
		return nil
	}
	_, err := fmt.Fprintf(p.out, "image: %s  class: %s  prob: %.3g\n", r.Image, r.Top[0].Name, r.Top[0].Prob)
	return err
}

// finish prints what is held: a lone result, or the sorted lines.
func (p *predictionPrinter) finish() error {
	if p.first != nil {
		r := p.first
		fmt.Fprintf(p.out, "image: %s\n", r.Image)
		for _, c := range r.Top {
			if _, err := fmt.Fprintf(p.out, "class: %-10s   prob: %.3g\n", c.Name, c.Prob); err != nil {
				return err
			}
		}
		return nil
	}
	sort.SliceStable(p.held, func(i, j int) bool { return p.held[i].Image < p.held[j].Image })
	p.sorted = true
	for _, r := range p.held {
		if err := p.line(r); err != nil {
			return err
		}
	}
	p.held = nil
	return nil
}
