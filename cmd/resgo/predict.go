package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/predict"
	"github.com/resgo/resgo/transform"
)

func predictCmd() *cobra.Command {
	var (
		arch, weights, classFile string
		topk, batch              int
		asJSON                   bool
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

			paths, err := data.ListImages(args)
			if err != nil {
				return err
			}
			var images []*transform.Image
			var names []string
			for _, p := range paths {
				im, err := data.LoadImage(p, clf.Pre.Channels)
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "resgo: skipping", err) // reported, not fatal
					continue
				}
				images, names = append(images, im), append(names, p)
			}
			if len(images) == 0 {
				return fmt.Errorf("no readable image among %d files", len(paths))
			}
			results, err := clf.Classify(images, names, topk)
			if err != nil {
				return err
			}
			return printPredictions(cmd, results, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&arch, "arch", "", "architecture (read from the checkpoint or the weights' name when not given)")
	f.StringVar(&weights, "weights", "", "a resgo checkpoint (best.safetensors), a .pth or .safetensors state dict, or a torchvision name such as resnet50.IMAGENET1K_V2 (from the download cache)")
	f.StringVar(&classFile, "classes", "", "class_indices.json as the tutorial writes it (default: the ImageNet classes for 1000 outputs)")
	f.IntVar(&topk, "topk", 5, "classes to show per image")
	f.IntVar(&batch, "batch", 8, "images per forward pass")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per image with the top classes, probabilities and logits")
	requireFlags(cmd, "weights")
	return cmd
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
// checkpoint or of pretrained weights (see loadClassifier).
func loadModel(b backend.Backend, arch, weights, classFile string) (*resnet.Model, []string, transform.Preset, error) {
	if strings.HasSuffix(weights, ".safetensors") {
		m, meta, err := modelfile.Load(b, weights)
		if err == nil {
			classes := meta.Classes
			if classFile != "" {
				classes, err = classNames(classFile, meta.NumClasses)
			}
			return m, classes, meta.Preprocess, err
		}
		if !errors.Is(err, modelfile.ErrNotModel) {
			return nil, nil, transform.Preset{}, err
		}
	}
	m, w, err := modelfile.LoadPretrained(b, arch, weights, 0)
	if err != nil {
		return nil, nil, transform.Preset{}, err
	}
	pre := transform.ImageNetV1 // torchvision's V1 preprocessing, unless the weights say otherwise
	if w != nil {
		pre = w.Preset()
	}
	pre.Channels = m.Options.InChannels
	classes, err := classNames(classFile, m.Options.NumClasses)
	return m, classes, pre, err
}

// classNames reads a tutorial-style class_indices.json ({"0": "daisy", ...})
// or, without one, returns the ImageNet classes for a 1000-class model and
// "class N" otherwise.
func classNames(path string, n int) ([]string, error) {
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

// printPredictions prints as the tutorial's predict.py (one image) and
// batch_predict.py (several), or as JSON lines.
func printPredictions(cmd *cobra.Command, results []predict.Result, asJSON bool) error {
	out := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(out)
		for _, r := range results {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	if len(results) == 1 {
		r := results[0]
		fmt.Fprintf(out, "image: %s\n", r.Image)
		for _, c := range r.Top {
			fmt.Fprintf(out, "class: %-10s   prob: %.3g\n", c.Name, c.Prob)
		}
		return nil
	}
	sort.SliceStable(results, func(i, j int) bool { return results[i].Image < results[j].Image })
	for _, r := range results {
		fmt.Fprintf(out, "image: %s  class: %s  prob: %.3g\n", r.Image, r.Top[0].Name, r.Top[0].Prob)
	}
	return nil
}
