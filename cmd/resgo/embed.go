package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"codeberg.org/sbinet/npyio/npy"

	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/internal/atomicfile"
	"github.com/resgo/resgo/predict"
	"github.com/resgo/resgo/serve"
	"github.com/resgo/resgo/transform"
)

func embedCmd() *cobra.Command {
	var (
		arch, weights, format, out string
		batch, maxInputPixels      int
		maxPixels                  int64
	)
	cmd := &cobra.Command{
		Use:   "embed --weights FILE [--format npy|csv] [--out FILE] IMAGE|FOLDER...",
		Short: "Write the features each image gives before the fc layer (embeddings), as .npy or CSV",
		Long: `Compute the embedding of each image: the pooled features the model's fc
layer takes (512 values for ResNet-18/34, 2048 for ResNet-50 and up, 64
for the CIFAR networks), with the preprocessing and loading of resgo
predict (a folder: every image in it; unreadable images are skipped and
reported).

--format npy (the default) writes a NumPy float32 array of shape
[images, features] (numpy.load reads it) and the images' paths, one per
line in the array's row order, in a .txt beside it (embeddings.txt for
embeddings.npy). --format csv writes a header line (image,f0,f1,...) and
one line per image: its path, then its features. The format follows
--out's extension (.npy, .csv) unless --format is given; without --out,
npy goes to embeddings.npy and CSV to the standard output.`,
		Example: `  resgo embed --weights runs/flowers/best.safetensors --out flowers.npy data/flower_photos
  resgo embed --weights resnet50.IMAGENET1K_V2 --format csv photos/ > photos.csv`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := embedFormat(format, out)
			if err != nil {
				return err
			}
			if maxPixels < 1 {
				return fmt.Errorf("--max-pixels %d: must be at least 1", maxPixels)
			}
			if maxInputPixels < 1 {
				return fmt.Errorf("--max-input-pixels %d: must be at least 1", maxInputPixels)
			}
			if batch < 1 {
				return fmt.Errorf("--batch %d: must be at least 1", batch)
			}
			if out == "" && format == "npy" {
				out = "embeddings.npy"
			}
			var names string // the .npy's list of paths
			if format == "npy" {
				names = strings.TrimSuffix(out, filepath.Ext(out)) + ".txt"
				if names == out || sameExistingFile(names, out) {
					return fmt.Errorf("--out %s: the list of images goes to a .txt beside it, so the array must not be a .txt", out)
				}
			}
			paths, err := data.ListImages(args)
			if err != nil {
				return err
			}
			if format == "npy" {
				for _, p := range paths {
					if strings.ContainsAny(p, "\r\n") {
						return fmt.Errorf("%q: a path with a line break cannot be listed one per line in %s: use --format csv", p, names)
					}
				}
			}
			clf, err := loadClassifier(arch, weights, "")
			if err != nil {
				return err
			}
			clf.Batch = batch
			data.MaxPixels = maxPixels

			stream := func(emit func(predict.Embedding) error) (int, error) {
				n, err := clf.EmbedStream(paths,
					func(path string) (*transform.Image, error) { return loadInput(path, clf.Pre, maxInputPixels) },
					func(_ string, err error) { fmt.Fprintln(cmd.ErrOrStderr(), "resgo: skipping", err) }, // reported, not fatal
					emit)
				if err == nil && n == 0 {
					err = fmt.Errorf("no readable image among %d files", len(paths))
				}
				return n, err
			}
			features := clf.Model.FeatureChannels()
			if format == "csv" {
				if out == "" {
					_, err := stream(csvWriter(cmd.OutOrStdout(), features))
					return err
				}
				var n int
				err := atomicfile.Write(out, func(w io.Writer) error {
					n, err = stream(csvWriter(w, features))
					return err
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d images x %d features\n", out, n, features)
				return nil
			}

			var rows [][]float32
			var done []string
			if _, err := stream(func(e predict.Embedding) error {
				rows, done = append(rows, e.Features), append(done, e.Image)
				return nil
			}); err != nil {
				return err
			}
			if err := atomicfile.Write(out, func(w io.Writer) error { return npy.Write(w, rows) }); err != nil {
				return fmt.Errorf("--out %s: %w", out, err)
			}
			if err := atomicfile.Write(names, func(w io.Writer) error {
				_, err := io.WriteString(w, strings.Join(done, "\n")+"\n")
				return err
			}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: float32 array [%d, %d] (numpy.load), the images' paths in %s\n", out, len(rows), features, names)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&arch, "arch", "", "architecture (default: read from the checkpoint or the weights' tensors)")
	f.StringVar(&weights, "weights", "", "a resgo checkpoint (best.safetensors), a .pth or .safetensors state dict, or a torchvision name such as resnet50.IMAGENET1K_V2 (from the download cache)")
	f.StringVar(&format, "format", "", "npy or csv (default: from --out's extension, else npy)")
	f.StringVar(&out, "out", "", "output file (default: embeddings.npy for npy, the standard output for csv)")
	f.IntVar(&batch, "batch", 8, "images per forward pass")
	f.Int64Var(&maxPixels, "max-pixels", data.DefaultMaxPixels, "refuse (skip) an image whose header declares more pixels (width x height) than this, before decoding it")
	f.IntVar(&maxInputPixels, "max-input-pixels", serve.DefaultMaxInputPixels, "refuse (skip) an image that the model's preprocessing makes a model input of more pixels than this (only when it does not crop)")
	requireFlags(cmd, "weights")
	return cmd
}

// embedFormat returns the output format of resgo embed: --format, or
// --out's extension, or npy.
func embedFormat(format, out string) (string, error) {
	ext := strings.ToLower(filepath.Ext(out))
	switch {
	case format == "" && ext == ".csv":
		return "csv", nil
	case format == "":
		return "npy", nil
	case format != "npy" && format != "csv":
		return "", fmt.Errorf("--format %s: must be npy or csv", format)
	case (ext == ".csv" || ext == ".npy") && ext != "."+format:
		return "", fmt.Errorf("--out %s is a %s name, --format says %s", out, ext, format)
	}
	return format, nil
}

// csvWriter returns an emit function that writes embeddings as CSV lines
// to w (path, then the features), after a header line.
func csvWriter(w io.Writer, features int) func(predict.Embedding) error {
	cw := csv.NewWriter(w)
	header := make([]string, features+1)
	header[0] = "image"
	for i := range features {
		header[i+1] = "f" + strconv.Itoa(i)
	}
	wroteHeader := false
	record := make([]string, features+1)
	return func(e predict.Embedding) error {
		if !wroteHeader {
			if err := cw.Write(header); err != nil {
				return err
			}
			wroteHeader = true
		}
		record[0] = e.Image
		for i, v := range e.Features {
			record[i+1] = strconv.FormatFloat(float64(v), 'g', -1, 32)
		}
		if err := cw.Write(record); err != nil {
			return err
		}
		cw.Flush()
		return cw.Error()
	}
}
