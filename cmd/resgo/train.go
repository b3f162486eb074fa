package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/internal/trainview"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/train"
	"github.com/resgo/resgo/transform"
)

func trainCmd() *cobra.Command {
	cfg := train.Defaults("resnet34")
	var (
		dataDir, valDir, transfer string
		valSplit                  float64
		resume, quiet             bool
		size                      int
	)
	cmd := &cobra.Command{
		Use:   "train --data DIR --arch NAME [--weights FILE] [--transfer MODE] --out DIR",
		Short: "Train a ResNet on a folder of images (one subfolder per class) or on fashion-mnist",
		Long: `Train a ResNet as the tutorial's train.py does: Adam, learning rate 1e-4,
batch 16, 3 epochs, RandomResizedCrop(224) and horizontal flips, validation
after every epoch. It writes into --out: class_indices.json, best.safetensors
(the highest validation accuracy), last.safetensors, history.csv and
curves.png. Ctrl-C saves the last checkpoint; --resume continues exactly.

--data is a folder of class folders (split into training and validation by
--val-split), a folder with train/ and val/ inside (resgo split makes one),
or "fashion-mnist" for the built-in dataset.

--transfer needs --weights (pretrained torchvision weights):
  all            train every parameter (the head is replaced for your classes)
  from:layerK    freeze the stem and the stages before layerK (K = 1..4)
  head           freeze the whole backbone, train only the new fc layer
Frozen parts run their BN on running statistics and do not update them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Out == "" {
				return fmt.Errorf("--out is required")
			}
			t, err := train.ParseTransfer(transfer)
			if err != nil {
				return err
			}
			// torchvision's weights name their architecture.
			if w, err := resnet.LookupWeights(filepath.Base(cfg.Weights)); err == nil && cfg.Weights != "" && !cmd.Flags().Changed("arch") {
				cfg.Arch = w.Arch
			}
			cfg.Transfer = t
			sets, err := data.Open(dataDir, data.OpenOptions{ValDir: valDir, ValSplit: valSplit, Seed: cfg.Seed})
			if err != nil {
				return err
			}
			trainDS, valDS := sets.Train, sets.Val
			fmt.Fprintf(cmd.OutOrStdout(), "using %d images for training, %d images for validation (%d classes: %s)\n",
				trainDS.Len(), valDS.Len(), len(trainDS.Classes()), strings.Join(trainDS.Classes(), ", "))
			if sets.FashionMNIST {
				// 28x28 grayscale: pad-and-crop augmentation, the small stem.
				cfg.Augment = transform.SmallImageTrain(28, 2)
				cfg.Eval = transform.Preset{Channels: 1, Norm: data.FashionMNISTNorm}
				if a, ok := resnet.Architectures[cfg.Arch]; ok && !a.SmallStem {
					cfg.SmallStem = true
				}
			} else if size != 224 {
				cfg.Augment.ResizedCrop = size
				cfg.Eval.CropSize, cfg.Eval.ResizeSize = size, size*256/224
			}
			b, err := backend.Default()
			if err != nil {
				return err
			}
			cfg.Hooks = trainview.Hooks(cmd.OutOrStdout(), quiet, cfg.Out)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var tr *train.Trainer
			if resume {
				tr, err = train.Resume(b, cfg, trainDS, valDS, cmd.OutOrStdout())
			} else {
				tr, err = train.New(b, cfg, trainDS, valDS, cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s on backend %s (%d threads), transfer mode %s, %d trainable parameters\n",
				tr.Model().Name, b.Name(), b.Threads(), cfg.Transfer, tr.TrainableParams())
			_, err = tr.Run(ctx)
			if errors.Is(err, train.ErrInterrupted) {
				fmt.Fprintf(cmd.OutOrStdout(), "interrupted: %s saved; run the same command with --resume to continue\n", filepath.Join(cfg.Out, train.LastFile))
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Finished Training: best validation accuracy in %s, curves in %s\n",
				filepath.Join(cfg.Out, train.BestFile), filepath.Join(cfg.Out, trainview.CurvesFile))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", "", `image folder, folder with train/ and val/, or "fashion-mnist"`)
	f.StringVar(&valDir, "val", "", "separate validation folder")
	f.Float64Var(&valSplit, "val-split", 0.1, "fraction of each class held out for validation (with a single folder)")
	f.StringVar(&cfg.Arch, "arch", cfg.Arch, "architecture (torchvision weights name their own): "+strings.Join(resnet.Names(), ", "))
	f.StringVar(&cfg.Weights, "weights", "", "pretrained weights: .pth or .safetensors file, or a torchvision name (resgo weights list)")
	f.StringVar(&transfer, "transfer", "all", "with --weights: all, from:layerK or head")
	f.IntVar(&cfg.Epochs, "epochs", cfg.Epochs, "epochs")
	f.IntVar(&cfg.Batch, "batch", cfg.Batch, "batch size")
	f.StringVar(&cfg.Optimizer, "optimizer", cfg.Optimizer, "adam, adamw or sgd")
	f.Float64Var(&cfg.LR, "lr", cfg.LR, "learning rate")
	f.Float64Var(&cfg.Momentum, "momentum", cfg.Momentum, "SGD momentum (Nesterov)")
	f.Float64Var(&cfg.WeightDecay, "weight-decay", 0, "weight decay")
	f.StringVar(&cfg.Schedule, "schedule", cfg.Schedule, "learning-rate schedule: constant, step or cosine")
	f.IntVar(&cfg.WarmupSteps, "warmup", 0, "linear warmup steps")
	f.Float64Var(&cfg.LabelSmoothing, "label-smoothing", 0, "label smoothing of the loss")
	f.Uint64Var(&cfg.Seed, "seed", 0, "seed of the initialization, split, shuffling and augmentation")
	f.IntVar(&cfg.Workers, "workers", 0, "image decoding goroutines (default: one per CPU)")
	f.IntVar(&size, "size", 224, "training crop size for image folders")
	f.BoolVar(&cfg.SmallStem, "small-stem", false, "3x3 stride-1 stem without max pooling (small images)")
	f.StringVar(&cfg.Out, "out", "", "output folder")
	f.BoolVar(&resume, "resume", false, "continue the training whose last checkpoint is in --out")
	f.BoolVar(&quiet, "quiet", false, "no progress bars")
	return cmd
}
