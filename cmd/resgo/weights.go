package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/resgo/resgo/hub"
	"github.com/resgo/resgo/models/resnet"
)

func weightsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "weights",
		Short: "List and download torchvision's pretrained weights",
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the known weights with their accuracy and preprocessing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "name\tfile\tacc@1\tacc@5\tresize/crop\tdefault")
			for _, e := range resnet.AllWeights() {
				def := ""
				if e.Default {
					def = "yes"
				}
				fmt.Fprintf(w, "%s\t%s\t%.3f\t%.3f\t%d/%d\t%s\n", e.Name, e.File, e.Acc1, e.Acc5, e.ResizeSize, e.CropSize, def)
			}
			return w.Flush()
		},
	}
	var cacheDir, baseURL string
	download := &cobra.Command{
		Use:   "download NAME...",
		Short: "Download weights (e.g. resnet34.LEGACY, resnet50.IMAGENET1K_V2, resnet18) into the cache, checking their SHA-256",
		Long: `Download torchvision's weights into resgo's cache (--cache, $RESGO_CACHE or
~/.cache/resgo), checking their SHA-256. A file already in resgo's cache or
in PyTorch's (~/.cache/torch/hub/checkpoints, or $TORCH_HOME/hub/checkpoints)
with the right SHA-256 is used where it is. Without a network, fetch the
file by other means and put it into one of these folders under its own
name (resgo weights list shows it): the error of a failed download names
both paths and the address.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, name := range args {
				path, err := hub.Download(cmd.Context(), name, cacheDir, baseURL, os.Stderr)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), path)
			}
			return nil
		},
	}
	download.Flags().StringVar(&cacheDir, "cache", "", "cache folder (default $RESGO_CACHE or ~/.cache/resgo)")
	download.Flags().StringVar(&baseURL, "base-url", "", "download from this address instead of "+resnet.DefaultBaseURL)
	cmd.AddCommand(list, download)
	return cmd
}
