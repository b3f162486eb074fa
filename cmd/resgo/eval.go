package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/charts"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/train"
)

func evalCmd() *cobra.Command {
	var (
		dataDir, ckpt, confusion string
		batch, workers           int
	)
	cmd := &cobra.Command{
		Use:   "eval --data DIR --checkpoint FILE",
		Short: "Accuracy, per-class precision and recall, and the confusion matrix of a trained model",
		Long: `Evaluate a resgo checkpoint on a folder of class folders (a folder with val/
inside is evaluated on val/) or on "fashion-mnist" (its test set), with the
preprocessing stored in the checkpoint.`,
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
			m, meta, err := modelfile.Load(b, ckpt)
			if err != nil {
				return err
			}
			sets, err := data.Open(dataDir, data.OpenOptions{EvalOnly: true})
			if err != nil {
				return err
			}
			ds, name := sets.Val, sets.ValName
			if !slices.Equal(ds.Classes(), meta.Classes) {
				return fmt.Errorf("%s has classes %v, the checkpoint %v", name, ds.Classes(), meta.Classes)
			}
			loader, err := train.EvalLoader(ds, meta.Preprocess, batch, workers, os.Stderr)
			if err != nil {
				return err
			}
			res, err := train.Evaluate(cmd.Context(), m, loader, 0, nil)
			if err != nil {
				return err
			}
			if res.Images == 0 {
				// No accuracy of 0 for data that was never seen.
				return fmt.Errorf("%s: none of its %d images could be read (each is reported above)", name, ds.Len())
			}
			fmt.Fprintf(out, "%s on %s: %d images, accuracy %.4f, loss %.4f\n\n", ckpt, name, res.Images, res.Accuracy, res.Loss)
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "class\tprecision\trecall\timages")
			prec, rec := res.Precision(), res.Recall()
			for i, c := range meta.Classes {
				n := 0
				for _, v := range res.Confusion[i] {
					n += v
				}
				fmt.Fprintf(w, "%s\t%.4f\t%.4f\t%d\n", c, prec[i], rec[i], n)
			}
			if err := w.Flush(); err != nil {
				return fmt.Errorf("writing the per-class table: %w", err)
			}
			fmt.Fprintln(out, "\nconfusion matrix (rows: true class, columns: predicted)")
			w = tabwriter.NewWriter(out, 0, 4, 1, ' ', tabwriter.AlignRight)
			fmt.Fprintf(w, "\t%s\t\n", strings.Join(short(meta.Classes), "\t"))
			for i, row := range res.Confusion {
				fmt.Fprintf(w, "%s\t", short(meta.Classes)[i])
				for _, v := range row {
					fmt.Fprintf(w, "%d\t", v)
				}
				fmt.Fprintln(w)
			}
			if err := w.Flush(); err != nil {
				return fmt.Errorf("writing the confusion matrix: %w", err)
			}
			if confusion != "" {
				if err := charts.Confusion(confusion, res.Confusion, meta.Classes); err != nil {
					return err
				}
				fmt.Fprintln(out, "\nconfusion matrix plot:", confusion)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.Int64Var(&data.MaxPixels, "max-pixels", data.DefaultMaxPixels, "refuse (skip as corrupt) an image whose header declares more pixels (width x height) than this, before decoding it")
	f.StringVar(&dataDir, "data", "", `image folder or "fashion-mnist"`)
	f.StringVar(&ckpt, "checkpoint", "", "resgo checkpoint (best.safetensors)")
	f.StringVar(&confusion, "confusion", "confusion.png", "write the confusion matrix as this PNG (empty: none)")
	f.IntVar(&batch, "batch", 64, "batch size")
	f.IntVar(&workers, "workers", 0, "image decoding goroutines")
	cmd.MarkFlagRequired("data")
	cmd.MarkFlagRequired("checkpoint")
	return cmd
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
