package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/internal/atomicfile"
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
		resume, quiet, nesterov   bool
		reprob                    float64
		classWeights, recipeName  string
		autoAugment               string
		colorJitter               float64
		size                      int
		convAlgo                  string
		dopts                     distOptions // cmd/resgo/dist.go
	)
	cmd := &cobra.Command{
		Use:   "train --data DIR [--arch NAME] [--weights FILE|NAME] [--transfer MODE] --out DIR",
		Short: "Train a ResNet on a folder of images (one subfolder per class) or on fashion-mnist",
		Long: `Train a ResNet as the tutorial's train.py does: Adam, learning rate 1e-4,
batch 16, 3 epochs, RandomResizedCrop(224) and horizontal flips, validation
after every epoch. It writes into --out: class_indices.json, best.safetensors
(the weights of the highest validation accuracy, with the classes and
preprocessing), last.safetensors (also the optimizer's state, for
--resume), history.csv and curves.png. --out must be new or empty unless
--overwrite (replace the run there) or --resume is given. Ctrl-C saves the
last checkpoint; --resume
continues exactly, with the run's own settings and data split: a flag given
to change them is refused, a larger --epochs extends the run, and data that
changed since the run started is refused. Without validation data
(--val-split 0) there is no validation accuracy and no best.safetensors.
A training that diverges (a loss, weight or statistic that is no longer
finite) stops with an error and leaves the checkpoints as they were.

--data is a folder of class folders (split into training and validation by
--val-split), a folder with train/ and val/ inside (resgo split makes one),
a CSV file list of path,label rows (split by --val-split, or validated on
--val, a .csv or a folder), a folder of CIFAR-10's binary files
(data_batch_*.bin and test_batch.bin), or "fashion-mnist" for the built-in
dataset.

--weights starts from pretrained weights: a torchvision weights name (resgo
weights list; the file is taken from resgo's or PyTorch's download cache,
its SHA-256 checked), or a file: a .pth or .safetensors state dict
(torchvision's, or the tutorial's resNet34.pth) or a resgo checkpoint. The
architecture is read from the weights' tensors, never from the file's name;
--arch, if given, must agree. Torchvision's preprocessing comes with
torchvision's weights (named, or a file with the SHA-256 of theirs); other
weights get ImageNet V1's (resize 256, crop 224).

--transfer needs --weights:
  all            train every parameter (the head is replaced for your classes)
  from:layerK    freeze the stem and the stages before layerK (K = 1..4)
  head           freeze the whole backbone, train only the new fc layer
Frozen parts run their BN on running statistics and do not update them.
` + recipeHelp(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			if data.MaxPixels < 1 {
				return fmt.Errorf("--max-pixels %d: must be at least 1", data.MaxPixels)
			}
			if recipeName != "" {
				if resume {
					return fmt.Errorf("--recipe %s: --resume keeps the run's own settings", recipeName)
				}
				// Set through the flags' values, not marked as given: an
				// explicit flag wins, and the flags' rules apply as usual.
				if err := applyRecipe(cmd.Flags(), recipeName); err != nil {
					return err
				}
			}
			// Under mpirun: join the job; only rank 0 writes.
			dp, out, err := openDist(&dopts, &cfg, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			var tr *train.Trainer
			defer func() { dp.finish(tr, out, err) }()
			if cfg.Out == "" {
				return fmt.Errorf("--out is required")
			}
			if resume && cfg.Overwrite {
				return fmt.Errorf("--resume continues the run in %s, --overwrite replaces it: give one of them", cfg.Out)
			}
			if err := setConvAlgo(convAlgo); err != nil {
				return err
			}
			if size < 1 || size > train.MaxSide {
				return fmt.Errorf("--size %d: want a crop side of 1 to %d pixels", size, train.MaxSide)
			}
			if !(valSplit >= 0 && valSplit < 1) {
				return fmt.Errorf("--val-split %v: want a fraction with 0 <= fraction < 1", valSplit)
			}
			t, err := train.ParseTransfer(transfer)
			if err != nil {
				return err
			}
			cfg.Transfer = t
			cfg.NoNesterov = !nesterov
			if classWeights != "" {
				if cfg.BalancedWeights, cfg.ClassWeights, err = train.ParseClassWeights(classWeights); err != nil {
					return fmt.Errorf("--class-weights %s: %w", classWeights, err)
				}
			}
			open := data.OpenOptions{ValDir: valDir, ValSplit: valSplit, Seed: cfg.Seed}
			if cfg.Workers < 0 || cfg.Workers > train.MaxWorkers {
				return fmt.Errorf("--workers %d: want 0 (one per CPU) to %d", cfg.Workers, train.MaxWorkers)
			}
			if resume {
				// The run's own settings and split win over the command
				// line's; a flag given to change them is an error.
				if !cmd.Flags().Changed("epochs") {
					cfg.Epochs = 0 // the run's own
				}
				st, err := train.ReadState(cfg.Out)
				if err != nil {
					return fmt.Errorf("--resume: %w", err)
				}
				notices, err := resumeFlags(cmd.Flags(), st)
				if err != nil {
					return err
				}
				for _, n := range notices {
					fmt.Fprintln(out, "notice:", n)
				}
				open.Seed = st.Config.Seed
				if d := st.Config.Data; d.Spec != "" {
					open.ValDir, open.ValSplit = d.ValDir, d.ValSplit
					if !cmd.Flags().Changed("data") {
						dataDir = d.Spec
					}
					if cmd.Flags().Changed("val") {
						open.ValDir = valDir
					}
				}
				if dataDir == "" {
					return fmt.Errorf("--resume: the run in %s does not record its data: give --data", cfg.Out)
				}
			} else {
				if dataDir == "" {
					return fmt.Errorf(`--data is required: a folder of class folders, a folder with train/ and val/ inside (resgo split makes one), or "fashion-mnist"`)
				}
				// Pretrained weights are the architecture their tensors
				// show (or their resgo metadata, or torchvision's name
				// says); --arch, if given, must agree.
				if cfg.Weights != "" && !cmd.Flags().Changed("arch") {
					cfg.Arch = ""
				}
				if size != 224 {
					cfg.Augment.ResizedCrop = size
					cfg.Eval.CropSize, cfg.Eval.ResizeSize = size, size*256/224
				}
				// Settings are checked before the data is read.
				cfg.Augment.ReProb, cfg.Augment.AutoAugment, cfg.Augment.ColorJitter = reprob, autoAugment, colorJitter
				if err := cfg.Validate(); err != nil {
					return flagError(cmd.Flags(), err)
				}
				if err := train.CheckOut(cfg.Out, cfg.Overwrite || !dp.root()); err != nil {
					return outError(err)
				}
			}
			sets, err := data.Open(dataDir, open)
			if err != nil {
				return err
			}
			cfg.Data = train.DataSource{Spec: dataDir, ValDir: open.ValDir}
			if !sets.FashionMNIST && open.ValDir == "" && sets.ValName == dataDir {
				// A single folder of class folders, split.
				cfg.Data.Split, cfg.Data.ValSplit = true, open.ValSplit
			}
			trainDS, valDS := sets.Train, sets.Val
			valDesc := fmt.Sprintf("%d images for validation", valDS.Len())
			if valDS.Len() == 0 {
				valDesc = "no validation set (no validation accuracy, no best checkpoint)"
			}
			fmt.Fprintf(out, "using %d images for training, %s (%d classes: %s)\n",
				trainDS.Len(), valDesc, len(trainDS.Classes()), strings.Join(trainDS.Classes(), ", "))
			if sets.FashionMNIST {
				// 28x28 grayscale: pad-and-crop augmentation, the small stem.
				cfg.Augment = transform.SmallImageTrain(28, 2)
				cfg.Eval = transform.Preset{Channels: 1, Norm: data.FashionMNISTNorm}
				if a, ok := resnet.Architectures[cfg.Arch]; ok && !a.SmallStem {
					cfg.SmallStem = true
				}
			} else if sets.CIFAR10 {
				// 32x32 RGB: the CIFAR recipe, RandomCrop(32, padding=4) and flips.
				cfg.Augment = transform.SmallImageTrain(32, 4)
				cfg.Eval = transform.Preset{Channels: 3, Norm: data.CIFAR10Norm}
				if a, ok := resnet.Architectures[cfg.Arch]; ok && !a.SmallStem {
					cfg.SmallStem = true
				}
			}
			if !resume {
				// Again: Fashion-MNIST and CIFAR-10 replaced the augmentation.
				cfg.Augment.ReProb, cfg.Augment.AutoAugment, cfg.Augment.ColorJitter = reprob, autoAugment, colorJitter
			}
			b, err := backend.Default()
			if err != nil {
				return err
			}
			// Temporary files of the curves that an interrupted write left.
			if dp.root() {
				removed, err := atomicfile.CleanStale(cfg.Out, trainview.CurvesFile)
				for _, p := range removed {
					fmt.Fprintf(out, "removed %s, left by an interrupted write\n", p)
				}
				if err != nil {
					return err
				}
				cfg.Hooks = trainview.Hooks(out, quiet, cfg.Out)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if resume {
				tr, err = train.Resume(b, cfg, trainDS, valDS, out)
			} else if tr, err = train.New(b, cfg, trainDS, valDS, out); err != nil {
				err = flagError(cmd.Flags(), outError(err))
			}
			if err != nil {
				return err
			}
			if !resume && cfg.Weights != "" && !cmd.Flags().Changed("arch") {
				fmt.Fprintf(out, "architecture %s, read from the weights %s\n", tr.Model().Name, cfg.Weights)
			}
			fmt.Fprintf(out, "%s on backend %s (%d threads), transfer mode %s, %d trainable parameters\n",
				tr.Model().Name, b.Name(), b.Threads(), tr.Config().Transfer, tr.TrainableParams())
			hist, err := tr.Run(ctx)
			if errors.Is(err, train.ErrInterrupted) {
				// The run records its settings and data: --out and --resume
				// are enough.
				fmt.Fprintf(out, "interrupted: %s saved; continue with: resgo train --resume --out %s\n", filepath.Join(cfg.Out, train.LastFile), cfg.Out)
				return nil
			}
			if err != nil {
				return err
			}
			if len(hist) > 0 && hist[len(hist)-1].NoVal {
				fmt.Fprintf(out, "Finished Training: no validation set, so no best checkpoint: the model is in %s, curves in %s\n",
					filepath.Join(cfg.Out, train.LastFile), filepath.Join(cfg.Out, trainview.CurvesFile))
				return nil
			}
			fmt.Fprintf(out, "Finished Training: best validation accuracy in %s, curves in %s\n",
				filepath.Join(cfg.Out, train.BestFile), filepath.Join(cfg.Out, trainview.CurvesFile))
			return nil
		},
	}
	f := cmd.Flags()
	f.Int64Var(&data.MaxPixels, "max-pixels", data.DefaultMaxPixels, "refuse (skip as corrupt) an image whose header declares more pixels (width x height) than this, before decoding it")
	f.StringVar(&dataDir, "data", "", `image folder, folder with train/ and val/, CSV file list (path,label), CIFAR-10 binary folder, or "fashion-mnist"`)
	f.StringVar(&valDir, "val", "", "separate validation folder (or CSV file list)")
	f.Float64Var(&valSplit, "val-split", 0.1, "fraction of each class held out for validation (with a single folder)")
	f.StringVar(&cfg.Arch, "arch", cfg.Arch, "architecture (with --weights: read from the weights, and --arch must agree): "+strings.Join(resnet.Names(), ", "))
	f.StringVar(&cfg.Weights, "weights", "", "pretrained weights: .pth or .safetensors file, or a torchvision name (resgo weights list)")
	f.StringVar(&transfer, "transfer", "all", "with --weights: all, from:layerK or head")
	f.IntVar(&cfg.Epochs, "epochs", cfg.Epochs, "epochs")
	f.IntVar(&cfg.Batch, "batch", cfg.Batch, "batch size")
	f.StringVar(&cfg.Optimizer, "optimizer", cfg.Optimizer, "adam, adamw or sgd")
	f.Float64Var(&cfg.LR, "lr", cfg.LR, "learning rate")
	f.Float64Var(&cfg.Momentum, "momentum", cfg.Momentum, "SGD momentum")
	f.Float64Var(&cfg.WeightDecay, "weight-decay", 0, "weight decay")
	f.StringVar(&cfg.Schedule, "schedule", cfg.Schedule, "learning-rate schedule: constant, step (StepLR), multistep (MultiStepLR), cosine (CosineAnnealingLR, per step) or plateau (ReduceLROnPlateau on the validation loss)")
	f.IntVar(&cfg.WarmupSteps, "warmup", 0, "linear warmup steps (torchvision's LinearLR from 0.01 x lr)")
	addRecipeFlags(f, &cfg, &nesterov, &reprob, &classWeights)
	f.StringVar(&autoAugment, "aa", "", "auto-augment policy after the flip, as torchvision's on uint8 tensors: trivialaugment (TrivialAugmentWide) or rand-mM-nN (RandAugment(num_ops=N, magnitude=M), such as rand-m9-n2)")
	f.Float64Var(&colorJitter, "color-jitter", 0, "ColorJitter(v, v, v) (brightness, contrast, saturation) after the flip, when there is no --aa; 0: none")
	f.StringVar(&recipeName, "recipe", "", "a named preset of these flags; flags given explicitly win: "+strings.Join(recipeNames(), ", "))
	f.Float64Var(&cfg.LabelSmoothing, "label-smoothing", 0, "label smoothing of the loss")
	f.Uint64Var(&cfg.Seed, "seed", 0, "seed of the initialization, split, shuffling and augmentation")
	f.IntVar(&cfg.Workers, "workers", 0, "image decoding goroutines (default: one per CPU)")
	f.IntVar(&size, "size", 224, "training crop size for image folders")
	f.BoolVar(&cfg.SmallStem, "small-stem", false, "3x3 stride-1 stem without max pooling (small images)")
	f.StringVar(&cfg.Out, "out", "", "output folder")
	f.BoolVar(&resume, "resume", false, "continue the training whose last checkpoint is in --out, with its settings and data split")
	f.BoolVar(&cfg.Overwrite, "overwrite", false, "start a new run in a non-empty --out, replacing the run there")
	f.BoolVar(&quiet, "quiet", false, "no progress bars")
	f.StringVar(&convAlgo, "conv", "", "convolution algorithm of the oneDNN backend, as RESGO_CONV sets it: direct, auto (per layer and pass, the faster of direct and Winograd, timed once) or winograd; Winograd (oneDNN's with AVX-512, resgo's own with AVX2) rounds differently from PyTorch (default $RESGO_CONV, else direct)")
	addDistFlags(cmd, &dopts)
	return cmd
}

// setConvAlgo gives --conv to the oneDNN backend, which reads RESGO_CONV
// when it is created; "" leaves RESGO_CONV as it is.
func setConvAlgo(v string) error {
	switch v {
	case "":
		return nil
	case "direct", "auto", "winograd":
		return os.Setenv("RESGO_CONV", v)
	default:
		return fmt.Errorf("--conv %s: want direct, auto or winograd", v)
	}
}

// resumeFlags checks the flags given explicitly with --resume against the
// settings of the run st: a flag that would change a setting is an error
// (a resumed run keeps its settings and its data split), more --epochs and
// another path to the data are notices.
func resumeFlags(fs *pflag.FlagSet, st *train.State) (notices []string, err error) {
	saved := st.Config
	ff := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	checks := []struct{ flag, saved string }{
		{"arch", saved.Arch},
		{"weights", saved.Weights},
		{"transfer", saved.Transfer.String()},
		{"batch", strconv.Itoa(saved.Batch)},
		{"optimizer", saved.Optimizer},
		{"lr", ff(saved.LR)},
		{"momentum", ff(saved.Momentum)},
		{"weight-decay", ff(saved.WeightDecay)},
		{"schedule", saved.Schedule},
		{"warmup", strconv.Itoa(saved.WarmupSteps)},
		{"label-smoothing", ff(saved.LabelSmoothing)},
		{"clip-grad", ff(saved.ClipGrad)},
		{"model-ema", strconv.FormatBool(saved.ModelEMA)},
		{"model-ema-decay", ff(saved.ModelEMADecay)},
		{"decay-epochs", strconv.Itoa(saved.StepEpochs)},
		{"decay-rate", ff(saved.Gamma)},
		{"decay-milestones", intList(saved.Milestones)},
		{"min-lr", ff(saved.MinLR)},
		{"warmup-epochs", strconv.Itoa(saved.WarmupEpochs)},
		{"patience-epochs", strconv.Itoa(saved.PlateauPatience)},
		{"nesterov", strconv.FormatBool(!saved.NoNesterov)},
		{"backbone-lr-scale", ff(saved.BackboneLRScale)},
		{"norm-weight-decay", optFloat(saved.NormWeightDecay)},
		{"bias-weight-decay", optFloat(saved.BiasWeightDecay)},
		{"patience", strconv.Itoa(saved.Patience)},
		{"tta", strconv.FormatBool(saved.ValTTA)},
		{"zero-init-residual", strconv.FormatBool(saved.ZeroInitResidual)},
		{"reprob", ff(saved.Augment.ReProb)},
		{"aa", saved.Augment.AutoAugment},
		{"color-jitter", ff(saved.Augment.ColorJitter)},
		{"mixup", ff(saved.MixupAlpha)},
		{"cutmix", ff(saved.CutmixAlpha)},
		{"mixup-prob", ff(saved.Mix.Prob)},
		{"mixup-switch-prob", ff(saved.SwitchProb)},
		{"class-weights", savedClassWeights(saved)},
		{"balanced", strconv.FormatBool(saved.Balanced)},
		{"seed", strconv.FormatUint(saved.Seed, 10)},
		{"small-stem", strconv.FormatBool(saved.SmallStem)},
	}
	if saved.Augment.ResizedCrop > 0 {
		checks = append(checks, struct{ flag, saved string }{"size", strconv.Itoa(saved.Augment.ResizedCrop)})
	}
	if saved.Data.Split {
		checks = append(checks, struct{ flag, saved string }{"val-split", ff(saved.Data.ValSplit)})
	}
	var differ []string
	for _, c := range checks {
		if f := fs.Lookup(c.flag); f != nil && f.Changed && f.Value.String() != c.saved {
			saved := c.saved
			if saved == "" {
				saved = "not given"
			}
			differ = append(differ, fmt.Sprintf("--%s %s (the run's: %s)", c.flag, f.Value.String(), saved))
		}
	}
	if len(differ) > 0 {
		return nil, fmt.Errorf("--resume keeps the run's settings and data split, and %s differ from them: drop these flags, or start a new run with --overwrite",
			strings.Join(differ, ", "))
	}
	done := st.Cursor.Epoch >= saved.Epochs
	if f := fs.Lookup("epochs"); done && (f == nil || !f.Changed) {
		return nil, fmt.Errorf("--resume: the run has finished its %d epochs: give --epochs N with N above %d to continue it", saved.Epochs, saved.Epochs)
	}
	if f := fs.Lookup("epochs"); f != nil && f.Changed {
		n, err := strconv.Atoi(f.Value.String())
		if err != nil {
			return nil, fmt.Errorf("--epochs %s: %w", f.Value.String(), err)
		}
		switch {
		case n < saved.Epochs:
			return nil, fmt.Errorf("--epochs %d: the run was started for %d epochs; a resumed run can be extended, not shortened", n, saved.Epochs)
		case n == saved.Epochs && done:
			return nil, fmt.Errorf("--resume: the run has finished its %d epochs: give --epochs N with N above %d to continue it", saved.Epochs, saved.Epochs)
		case n > saved.Epochs:
			msg := fmt.Sprintf("training to epoch %d; the run was started for %d epochs", n, saved.Epochs)
			if saved.Schedule == "cosine" || saved.Schedule == "step" {
				msg += fmt.Sprintf(" (its %s schedule is stretched to %d epochs from here on)", saved.Schedule, n)
			}
			notices = append(notices, msg)
		}
	}
	for _, c := range []struct{ flag, saved string }{{"data", saved.Data.Spec}, {"val", saved.Data.ValDir}} {
		if f := fs.Lookup(c.flag); f != nil && f.Changed && saved.Data.Spec != "" && f.Value.String() != c.saved {
			notices = append(notices, fmt.Sprintf("--%s %s: the run started with %q; resuming only if it holds the same images", c.flag, f.Value.String(), c.saved))
		}
	}
	return notices, nil
}

// configFlags names the flag of each Config field that train.Validate
// checks.
var configFlags = map[string]string{
	"Out": "out", "Epochs": "epochs", "Batch": "batch", "Optimizer": "optimizer", "LR": "lr",
	"Momentum": "momentum", "WeightDecay": "weight-decay", "Schedule": "schedule", "WarmupSteps": "warmup",
	"LabelSmoothing": "label-smoothing", "Transfer": "transfer", "Workers": "workers",
	"ClipGrad": "clip-grad", "ModelEMADecay": "model-ema-decay", "StepEpochs": "decay-epochs", "Gamma": "decay-rate",
	"Milestones": "decay-milestones", "MinLR": "min-lr", "WarmupEpochs": "warmup-epochs", "PlateauPatience": "patience-epochs",
	"BackboneLRScale": "backbone-lr-scale", "NormWeightDecay": "norm-weight-decay", "BiasWeightDecay": "bias-weight-decay", "Patience": "patience", "ZeroInitResidual": "zero-init-residual", "ValBatch": "validation-batch-size",
	"Augment.ReProb": "reprob", "Augment.AutoAugment": "aa", "Augment.ColorJitter": "color-jitter", "ClassWeights": "class-weights", "Mix.MixupAlpha": "mixup", "Mix.CutmixAlpha": "cutmix", "Mix.Prob": "mixup-prob", "Mix.SwitchProb": "mixup-switch-prob",
	"Augment": "size", "Augment.ResizedCrop": "size", "Eval.ResizeSize": "size", "Eval.CropSize": "size",
}

// flagError turns the error of a refused setting into one naming the flag
// and the value given, "--batch 0: want a batch of at least 1"; other
// errors are returned as they are.
func flagError(fs *pflag.FlagSet, err error) error {
	var ce *train.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	name, ok := configFlags[ce.Field]
	f := fs.Lookup(name)
	if !ok || f == nil {
		return err
	}
	return fmt.Errorf("--%s %s: %s", name, f.Value.String(), ce.Reason)
}

// outError adds to the error of a non-empty output folder what to do.
func outError(err error) error {
	if errors.Is(err, train.ErrOutNotEmpty) {
		return fmt.Errorf("--out: %w: add --resume to continue the run there, or --overwrite to replace it", err)
	}
	return err
}
