package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/charts"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/predict"
	"github.com/resgo/resgo/train"
	"github.com/resgo/resgo/transform"
)

func evalCmd() *cobra.Command {
	var (
		dataDir, ckpt, arch, classFile, outDir, confusion string
		batch, workers                                    int
		tta                                               bool
		metricsJSON                                       string
	)
	cmd := &cobra.Command{
		Use:   "eval --data DIR --checkpoint FILE",
		Short: "Accuracy, per-class precision and recall, and the confusion matrix of a trained model",
		Long: `Evaluate a model on a folder of class folders (a folder with val/ inside is
evaluated on val/) or on "fashion-mnist" (its test set).

--checkpoint is a resgo checkpoint (best.safetensors: its classes and
preprocessing are inside), or PyTorch weights such as the tutorial's
resNet34.pth: their architecture is read from their tensors (--arch, if
given, must agree), their classes are the data's folders in sorted order
(as torchvision's ImageFolder numbers them) or those of --classes
class_indices.json, and their preprocessing is torchvision's ImageNet V1
(resize 256, center crop 224), the tutorial's validation transform.

The confusion matrix is printed and drawn into confusion.png in --out, or
beside the checkpoint without --out (rows: true class from the top,
columns: predicted class from the left).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if data.MaxPixels < 1 {
				return fmt.Errorf("--max-pixels %d: must be at least 1", data.MaxPixels)
			}
			out := cmd.OutOrStdout()
			if batch < 1 {
				return fmt.Errorf("--batch %d: want a batch of at least 1", batch)
			}
			if workers < 0 || workers > train.MaxWorkers {
				return fmt.Errorf("--workers %d: want 0 (one per CPU) to %d", workers, train.MaxWorkers)
			}
			b, err := backend.Default()
			if err != nil {
				return err
			}
			src, err := modelfile.Open(b, arch, ckpt, 0)
			if err != nil {
				return err
			}
			sets, err := data.Open(dataDir, data.OpenOptions{EvalOnly: true})
			if err != nil {
				return err
			}
			ds, name := sets.Val, sets.ValName
			classes, pre, err := evalClasses(out, src, ds.Classes(), name, classFile, sets.FashionMNIST)
			if err != nil {
				return err
			}
			loader, err := train.EvalLoader(ds, pre, batch, workers, os.Stderr)
			if err != nil {
				return err
			}
			res, err := train.EvaluateWith(cmd.Context(), src.Model, loader, train.EvalOptions{FlipTTA: tta})
			if err != nil {
				return err
			}
			if res.Images == 0 {
				// No accuracy of 0 for data that was never seen.
				return fmt.Errorf("%s: none of its %d images could be read (each is reported above)", name, ds.Len())
			}
			how := ""
			if tta {
				how = " (flip TTA)"
			}
			fmt.Fprintf(out, "%s on %s%s: %d images, accuracy %.4f, top-5 %.4f, loss %.4f\n\n", ckpt, name, how, res.Images, res.Accuracy, res.Top5, res.Loss)
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "class\tprecision\trecall\tF1\timages")
			prec, rec, f1, support := res.Precision(), res.Recall(), res.F1(), res.Support()
			for i, c := range classes {
				fmt.Fprintf(w, "%s\t%.4f\t%.4f\t%.4f\t%d\n", c, prec[i], rec[i], f1[i], support[i])
			}
			if err := w.Flush(); err != nil {
				return fmt.Errorf("writing the per-class table: %w", err)
			}
			fmt.Fprintln(out, "\nconfusion matrix (rows: true class, columns: predicted)")
			w = tabwriter.NewWriter(out, 0, 4, 1, ' ', tabwriter.AlignRight)
			fmt.Fprintf(w, "\t%s\t\n", strings.Join(short(classes), "\t"))
			for i, row := range res.Confusion {
				fmt.Fprintf(w, "%s\t", short(classes)[i])
				for _, v := range row {
					fmt.Fprintf(w, "%d\t", v)
				}
				fmt.Fprintln(w)
			}
			if err := w.Flush(); err != nil {
				return fmt.Errorf("writing the confusion matrix: %w", err)
			}
			if metricsJSON != "" {
				if err := writeMetrics(metricsJSON, ckpt, name, tta, classes, res); err != nil {
					return err
				}
				fmt.Fprintln(out, "\nmetrics:", metricsJSON)
			}
			plot := confusionPath(confusion, outDir, ckpt, src.Path)
			if plot == "" {
				return nil
			}
			if outDir != "" {
				if err := os.MkdirAll(outDir, 0o755); err != nil {
					return fmt.Errorf("--out: %w", err)
				}
			}
			if err := charts.Confusion(plot, res.Confusion, classes); err != nil {
				return err
			}
			fmt.Fprintln(out, "\nconfusion matrix plot:", plot)
			return nil
		},
	}
	f := cmd.Flags()
	f.Int64Var(&data.MaxPixels, "max-pixels", data.DefaultMaxPixels, "refuse (skip as corrupt) an image whose header declares more pixels (width x height) than this, before decoding it")
	f.StringVar(&dataDir, "data", "", `image folder or "fashion-mnist"`)
	f.StringVar(&ckpt, "checkpoint", "", "resgo checkpoint (best.safetensors), or PyTorch weights (.pth, .safetensors) such as the tutorial's resNet34.pth")
	f.StringVar(&arch, "arch", "", "architecture of PyTorch weights (default: read from their tensors)")
	f.StringVar(&classFile, "classes", "", "class_indices.json naming PyTorch weights' classes (default: the data's folders, sorted)")
	f.StringVar(&outDir, "out", "", "folder for confusion.png (default: the checkpoint's folder)")
	f.StringVar(&confusion, "confusion", "", `the confusion matrix PNG's path (default: confusion.png in --out; "none": no plot)`)
	f.IntVar(&batch, "batch", 64, "batch size")
	f.IntVar(&workers, "workers", 0, "image decoding goroutines")
	f.BoolVar(&tta, "tta", false, "test-time augmentation: average the softmax of each image and of its horizontal mirror")
	f.StringVar(&metricsJSON, "metrics-json", "", "write accuracy, top-5, loss, per-class precision, recall, F1 and the confusion matrix to this JSON file")
	requireFlags(cmd, "data", "checkpoint")
	return cmd
}

// confusionPath returns where eval draws the confusion matrix: --confusion
// as given ("" for "none"), else confusion.png in --out, else beside the
// checkpoint (path, the file read), else (a torchvision weights name,
// read from a cache) in the working directory.
func confusionPath(confusion, outDir, ckpt, path string) string {
	switch {
	case confusion == "none":
		return ""
	case confusion != "":
		return confusion
	case outDir != "":
		return filepath.Join(outDir, "confusion.png")
	case path == ckpt:
		return filepath.Join(filepath.Dir(path), "confusion.png")
	}
	return "confusion.png"
}

// evalClasses returns the class names and preprocessing to evaluate the
// model of src with on data of dataClasses (from name): a resgo
// checkpoint's own, which must be the data's; for plain weights, the
// names of classFile or else the data's, as many as the model's outputs,
// and the weights' preprocessing (Fashion-MNIST's for its data). A line
// on out says what was assumed for plain weights.
func evalClasses(out io.Writer, src *modelfile.Source, dataClasses []string, name, classFile string, fashionMNIST bool) ([]string, transform.Preset, error) {
	if src.Meta != nil {
		if classFile != "" {
			return nil, transform.Preset{}, fmt.Errorf("--classes: %s names its own classes", src.Path)
		}
		if !slices.Equal(dataClasses, src.Meta.Classes) {
			return nil, transform.Preset{}, fmt.Errorf("%s has classes %v, the checkpoint %v", name, dataClasses, src.Meta.Classes)
		}
		return src.Meta.Classes, src.Meta.Preprocess, nil
	}
	n := src.Model.Options.NumClasses
	classes, from := dataClasses, "the data's folders in sorted order"
	if classFile != "" {
		var err error
		if classes, err = predict.ReadClassIndices(classFile, n); err != nil {
			return nil, transform.Preset{}, err
		}
		from = classFile
		if !slices.Equal(classes, dataClasses) {
			return nil, transform.Preset{}, fmt.Errorf("%s has classes %v, %s %v", name, dataClasses, classFile, classes)
		}
	}
	if len(classes) != n {
		return nil, transform.Preset{}, fmt.Errorf("%s: %s weights with %d outputs, and %s has %d classes: eval needs weights trained on these classes (a resgo checkpoint, or PyTorch weights with one output per class)",
			src.Path, src.Model.Name, n, name, len(classes))
	}
	pre := src.Preprocess()
	if fashionMNIST {
		pre = transform.Preset{Channels: 1, Norm: data.FashionMNISTNorm}
	}
	if pre.Channels != src.Model.Options.InChannels {
		return nil, transform.Preset{}, fmt.Errorf("%s: %s takes %d-channel images, %s has %d", src.Path, src.Model.Name, src.Model.Options.InChannels, name, pre.Channels)
	}
	fmt.Fprintf(out, "%s is not a resgo checkpoint: %s read from its tensors, %d classes named as %s, preprocessing resize %d, crop %d\n",
		src.Path, src.Model.Name, n, from, pre.ResizeSize, pre.CropSize)
	return classes, pre, nil
}

// short cuts class names to 12 characters for the matrix's headers.
func short(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		if len(n) > 12 {
			n = n[:12]
		}
		out[i] = n
	}
	return out
}

func splitCmd() *cobra.Command {
	var (
		src, dst  string
		rate      float64
		seed      uint64
		overwrite bool
	)
	cmd := &cobra.Command{
		Use:   "split --src flower_photos --dst flower_data",
		Short: "Copy a folder of class folders into train/ and val/ (the tutorial's split_data.py, reproducibly)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := data.Split(src, dst, rate, seed, overwrite)
			if err != nil {
				return err
			}
			for i, c := range res.Classes {
				fmt.Fprintf(cmd.OutOrStdout(), "[%s] %d train, %d val\n", c, res.Train[i], res.Val[i])
			}
			fmt.Fprintln(cmd.OutOrStdout(), "processing done!")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&src, "src", "", "folder with one subfolder per class")
	f.StringVar(&dst, "dst", "", "output folder (gets train/ and val/)")
	f.Float64Var(&rate, "val-rate", 0.1, "fraction of each class for validation")
	f.Uint64Var(&seed, "seed", 0, "random seed")
	f.BoolVar(&overwrite, "overwrite", false, "replace existing train/ and val/ in --dst")
	cmd.MarkFlagRequired("src")
	cmd.MarkFlagRequired("dst")
	return cmd
}
