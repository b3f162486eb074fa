package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/models/resnet"
)

func exportCmd() *cobra.Command {
	var ckpt, out string
	cmd := &cobra.Command{
		Use:   "export --checkpoint best.safetensors --out resNet34.pth",
		Short: "Write a trained model's weights for PyTorch: a .pth torchvision loads, or a plain .safetensors",
		Long: `Export the weights of a resgo checkpoint under torchvision's names, without
the optimizer state: as a .pth that torch.load reads and
torchvision.models.<arch>(num_classes=K).load_state_dict accepts (as the
tutorial's predict.py loads resNet34.pth), or as a plain .safetensors file
(read in PyTorch with safetensors.torch.load_file, not torch.load). The
format follows --out's extension.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ext := strings.ToLower(filepath.Ext(out))
			if ext != ".pth" && ext != ".pt" && ext != ".safetensors" {
				return fmt.Errorf("--out %s: the extension must be .pth, .pt or .safetensors", out)
			}
			if sameExistingFile(ckpt, out) {
				return fmt.Errorf("--out %s is the checkpoint itself: the export would replace it, losing its classes, preprocessing and training state", out)
			}
			m, meta, err := modelfile.Load(nil, ckpt)
			if err != nil {
				return err
			}
			sd := checkpoint.FromModule(m)
			if ext == ".safetensors" {
				err = checkpoint.WriteSafetensors(out, sd)
			} else {
				err = checkpoint.WritePTH(out, sd)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s with %d classes (%s), %d tensors\n", out, meta.Arch, meta.NumClasses,
				strings.Join(meta.Classes, ", "), sd.Len())
			if hint := pytorchHint(meta, out, ext); hint != "" {
				fmt.Fprintln(cmd.OutOrStdout(), hint)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&ckpt, "checkpoint", "", "resgo checkpoint (best.safetensors)")
	cmd.Flags().StringVar(&out, "out", "", "output file: .pth or .safetensors")
	cmd.MarkFlagRequired("checkpoint")
	cmd.MarkFlagRequired("out")
	return cmd
}

// pytorchHint returns the PyTorch line that loads an exported file of a
// model torchvision builds (ImageNet stem, RGB): torch.load for a .pth,
// safetensors' load_file for a .safetensors (torch.load cannot read it).
// It returns "" for the models torchvision has no constructor for.
func pytorchHint(meta *modelfile.Meta, out, ext string) string {
	if a := resnet.Architectures[meta.Arch]; a.SmallStem || meta.SmallStem || meta.InChannels != 3 {
		return ""
	}
	load := fmt.Sprintf("torch.load(%q)", out)
	prefix := "in PyTorch: "
	if ext == ".safetensors" {
		load = fmt.Sprintf("load_file(%q)", out)
		prefix = "in PyTorch: from safetensors.torch import load_file; "
	}
	return fmt.Sprintf("%snet = torchvision.models.%s(num_classes=%d); net.load_state_dict(%s)", prefix, meta.Arch, meta.NumClasses, load)
}

// sameExistingFile reports whether paths a and b name the same existing file.
func sameExistingFile(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}
