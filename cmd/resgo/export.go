package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/internal/atomicfile"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/onnx"
)

// exportFormats are export's formats, by the extension of --out that
// chooses them.
var exportFormats = map[string]string{".pth": "pth", ".pt": "pth", ".safetensors": "safetensors", ".onnx": "onnx"}

func exportCmd() *cobra.Command {
	var ckpt, out, format string
	cmd := &cobra.Command{
		Use:   "export --checkpoint best.safetensors --out resNet34.pth|model.safetensors|model.onnx",
		Short: "Write a trained model for PyTorch (a .pth torchvision loads, or a plain .safetensors) or for ONNX Runtime (.onnx)",
		Long: `Export the weights of a resgo checkpoint under torchvision's names, without
the optimizer state: as a .pth that torch.load reads and
torchvision.models.<arch>(num_classes=K).load_state_dict accepts (as the
tutorial's predict.py loads resNet34.pth), or as a plain .safetensors file
(read in PyTorch with safetensors.torch.load_file, not torch.load).

Or export the whole model as an ONNX graph (opset 13) that ONNX Runtime
and other ONNX tools run: input "input" [batch, channels, height, width]
float32, already preprocessed; output "logits" [batch, classes]; batch,
height and width are symbolic. The class names and the preprocessing
(resize, crop, mean, std) are in the model's metadata_props: arch,
classes, preprocess.resize_size, preprocess.crop_size,
preprocess.channels, preprocess.mean, preprocess.std (JSON arrays for the
lists). The graph's initializers carry the state_dict's names.

The format follows --out's extension (.pth or .pt, .safetensors, .onnx),
or --format.`,
		Example: `  resgo export --checkpoint runs/flowers/best.safetensors --out resNet34.pth
  resgo export --checkpoint runs/flowers/best.safetensors --out flowers.onnx`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ext := strings.ToLower(filepath.Ext(out))
			byExt, known := exportFormats[ext]
			switch {
			case format == "" && !known:
				return fmt.Errorf("--out %s: the extension must be .pth, .pt, .safetensors or .onnx (or give --format)", out)
			case format == "":
				format = byExt
			case format != "pth" && format != "safetensors" && format != "onnx":
				return fmt.Errorf("--format %s: must be pth, safetensors or onnx", format)
			case known && byExt != format:
				return fmt.Errorf("--out %s is a .%s name, --format says %s", out, byExt, format)
			}
			if sameExistingFile(ckpt, out) {
				return fmt.Errorf("--out %s is the checkpoint itself: the export would replace it, losing its classes, preprocessing and training state", out)
			}
			m, meta, err := modelfile.Load(nil, ckpt)
			if err != nil {
				return err
			}
			if format == "onnx" {
				err := atomicfile.Write(out, func(w io.Writer) error {
					return onnx.Write(w, m, onnx.Meta{Classes: meta.Classes, Preprocess: meta.Preprocess})
				})
				if err != nil {
					return fmt.Errorf("--out %s: %w", out, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s with %d classes (%s), ONNX opset %d, input %q [batch, %d, height, width], output %q [batch, %d]\n",
					out, meta.Arch, meta.NumClasses, strings.Join(meta.Classes, ", "), onnx.Opset, onnx.InputName, meta.InChannels, onnx.OutputName, meta.NumClasses)
				return nil
			}
			sd := checkpoint.FromModule(m)
			if format == "safetensors" {
				err = checkpoint.WriteSafetensors(out, sd)
			} else {
				err = checkpoint.WritePTH(out, sd)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s with %d classes (%s), %d tensors\n", out, meta.Arch, meta.NumClasses,
				strings.Join(meta.Classes, ", "), sd.Len())
			if hint := pytorchHint(meta, out, format); hint != "" {
				fmt.Fprintln(cmd.OutOrStdout(), hint)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&ckpt, "checkpoint", "", "resgo checkpoint (best.safetensors)")
	cmd.Flags().StringVar(&out, "out", "", "output file: .pth, .safetensors or .onnx")
	cmd.Flags().StringVar(&format, "format", "", "pth, safetensors or onnx (default: from --out's extension)")
	cmd.MarkFlagRequired("checkpoint")
	cmd.MarkFlagRequired("out")
	return cmd
}

// pytorchHint returns the PyTorch line that loads an exported file of a
// model torchvision builds (ImageNet stem, RGB): torch.load for a .pth,
// safetensors' load_file for a .safetensors (torch.load cannot read it).
// It returns "" for the models torchvision has no constructor for.
func pytorchHint(meta *modelfile.Meta, out, format string) string {
	if a := resnet.Architectures[meta.Arch]; a.SmallStem || meta.SmallStem || meta.InChannels != 3 {
		return ""
	}
	load := fmt.Sprintf("torch.load(%q)", out)
	prefix := "in PyTorch: "
	if format == "safetensors" {
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
