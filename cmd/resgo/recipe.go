package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/resgo/resgo/train"
)

// addRecipeFlags adds the flags of train.Recipe, named as timm's train.py
// names them.
func addRecipeFlags(f *pflag.FlagSet, cfg *train.Config, nesterov *bool, reprob *float64, classWeights *string) {
	f.Float64Var(&cfg.ClipGrad, "clip-grad", 0, "clip the gradients' global L2 norm to this before each step (torch.nn.utils.clip_grad_norm_); 0: no clipping")
	f.BoolVar(&cfg.ModelEMA, "model-ema", false, "keep an exponential moving average of the weights and BN buffers (timm's ModelEmaV2), validated every epoch and written to ema.safetensors")
	f.Float64Var(&cfg.ModelEMADecay, "model-ema-decay", train.DefaultEMADecay, "decay of the model EMA: ema = decay*ema + (1-decay)*model after every step")
	f.IntVar(&cfg.StepEpochs, "decay-epochs", 0, "step schedule: epochs between decays (StepLR's step_size; 0: a third of the epochs)")
	f.Float64Var(&cfg.Gamma, "decay-rate", cfg.Gamma, "step, multistep and plateau schedules: factor of each decay (gamma)")
	f.IntSliceVar(&cfg.Milestones, "decay-milestones", nil, "multistep schedule: epochs at which the rate decays, such as 30,60,80")
	f.Float64Var(&cfg.MinLR, "min-lr", 0, "cosine schedule: the final rate (eta_min); plateau: the lowest rate")
	f.IntVar(&cfg.WarmupEpochs, "warmup-epochs", 0, "linear warmup over this many epochs (added to --warmup steps)")
	f.IntVar(&cfg.PlateauPatience, "patience-epochs", train.DefaultPlateauPatience, "plateau schedule: epochs without a lower validation loss before the rate decays")
	f.BoolVar(nesterov, "nesterov", true, "SGD: Nesterov momentum (timm's sgd); --nesterov=false for plain momentum")
	f.Float64Var(&cfg.BackboneLRScale, "backbone-lr-scale", 1, "learning rate of every parameter but the fc head's, times the learning rate (such as 0.1 for a pretrained backbone)")
	f.Var(optionalFloat{&cfg.NormWeightDecay}, "norm-weight-decay", "weight decay of the BN layers' gamma and beta (torchvision's --norm-weight-decay; 0: none); not given: --weight-decay")
	f.Var(optionalFloat{&cfg.BiasWeightDecay}, "bias-weight-decay", "weight decay of every bias, a BN's beta included (torchvision's --bias-weight-decay; 0: none); not given: --norm-weight-decay for a BN's beta, else --weight-decay")
	f.IntVar(&cfg.Patience, "patience", 0, "stop when the validation loss has not improved for this many epochs (0: never)")
	f.BoolVar(&cfg.ZeroInitResidual, "zero-init-residual", false, "from scratch: start the last BN gamma of every residual block at zero, so each block starts as the identity (torchvision's zero_init_residual)")
	f.IntVar(&cfg.ValBatch, "validation-batch-size", 0, "batch size of validation (0: --batch); evaluation keeps no activations for a backward pass, and larger batches run faster on small images")
	f.BoolVar(&cfg.ValTTA, "tta", false, "validate with test-time augmentation: the softmax of each image and of its horizontal mirror averaged (as resgo evaluate --tta)")
	f.Float64Var(reprob, "reprob", 0, "probability of torchvision's RandomErasing (scale 0.02-0.33, ratio 0.3-3.3, value 0) after normalization")
	f.Float64Var(&cfg.MixupAlpha, "mixup", 0, "mixup alpha: mix each batch with itself reversed, lam ~ Beta(alpha, alpha), soft-target loss (timm's Mixup); 0: off")
	f.Float64Var(&cfg.CutmixAlpha, "cutmix", 0, "cutmix alpha: paste a box of the reversed batch, area 1-lam, lam ~ Beta(alpha, alpha); 0: off")
	f.Float64Var(&cfg.Mix.Prob, "mixup-prob", 1, "probability of mixing a batch when --mixup or --cutmix is on")
	f.Float64Var(&cfg.SwitchProb, "mixup-switch-prob", 0.5, "probability of cutmix rather than mixup when both are on")
	f.BoolVar(&cfg.Balanced, "balanced", false, "class-balanced sampling: every epoch draws its samples with replacement, each class equally often (WeightedRandomSampler)")
	f.StringVar(classWeights, "class-weights", "", `weights of the classes in the training loss (CrossEntropyLoss(weight=)): "balanced" (n / (classes x count)) or one number per class, comma-separated`)
}

// optionalFloat is a float flag that records whether it was given: the
// value it points to stays nil until the flag is set.
type optionalFloat struct{ p **float64 }

// String returns the value given, or "" when none was.
func (o optionalFloat) String() string {
	if o.p == nil {
		return ""
	}
	return optFloat(*o.p)
}

// Set parses and stores the value.
func (o optionalFloat) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return err
	}
	*o.p = &v
	return nil
}

// Type names the flag's kind in the help.
func (o optionalFloat) Type() string { return "float" }

// optFloat formats an optional float as its flag shows it: "" for nil.
func optFloat(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'g', -1, 64)
}

// intList formats a list of ints as pflag's IntSlice does: [1,2,3].
func intList(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return "[" + strings.Join(s, ",") + "]"
}

// savedClassWeights is --class-weights as a run saved it: the weights
// themselves, "balanced" when computed so, or "".
func savedClassWeights(c train.Config) string {
	if c.BalancedWeights {
		return "balanced"
	}
	s := make([]string, len(c.ClassWeights))
	for i, w := range c.ClassWeights {
		s[i] = strconv.FormatFloat(w, 'g', -1, 64)
	}
	return strings.Join(s, ",")
}

// A recipe is a named preset of train's flags: --recipe NAME sets each of
// them that the command line does not give.
type recipe struct {
	name, about string
	flags       [][2]string // flag, value, in order
}

// recipes are train's named presets.
var recipes = []recipe{
	{
		name: "fmnist-best",
		about: "Fashion-MNIST, 10 epochs of ResNet-20, validated with flip TTA (94.02% test accuracy after 576 s of training, 10 min 34 s with validation, seed 0, on a 2-core AVX-512 AMD EPYC training at about 1,040 images/s): " +
			"the demo's recipe (SGD, Nesterov, lr 0.1, cosine, weight decay 5e-4, pad-and-crop and flips) " +
			"at batch 64, with label smoothing 0.1, no weight decay on BN and biases, and oneDNN's Winograd convolutions where they are faster",
		flags: [][2]string{
			{"data", "fashion-mnist"}, {"arch", "resnet20"}, {"epochs", "10"}, {"batch", "64"},
			{"optimizer", "sgd"}, {"lr", "0.1"}, {"momentum", "0.9"}, {"nesterov", "true"}, {"weight-decay", "5e-4"},
			{"norm-weight-decay", "0"}, {"bias-weight-decay", "0"},
			{"schedule", "cosine"}, {"label-smoothing", "0.1"}, {"tta", "true"}, {"validation-batch-size", "500"},
			{"conv", "auto"},
		},
	},
}

// recipeNames lists the recipes' names.
func recipeNames() []string {
	var names []string
	for _, r := range recipes {
		names = append(names, r.name)
	}
	return names
}

// recipeHelp describes the recipes for train's --help.
func recipeHelp() string {
	var b strings.Builder
	for _, r := range recipes {
		fmt.Fprintf(&b, "\n--recipe %s: %s. It sets:\n ", r.name, r.about)
		for _, f := range r.flags {
			if f[1] == "true" {
				fmt.Fprintf(&b, " --%s", f[0])
			} else {
				fmt.Fprintf(&b, " --%s %s", f[0], f[1])
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// applyRecipe sets the flags of the named recipe that fs was not given.
func applyRecipe(fs *pflag.FlagSet, name string) error {
	i := slices.IndexFunc(recipes, func(r recipe) bool { return r.name == name })
	if i < 0 {
		return fmt.Errorf("--recipe %s: no such recipe (known: %s)", name, strings.Join(recipeNames(), ", "))
	}
	for _, f := range recipes[i].flags {
		fl := fs.Lookup(f[0])
		if fl == nil {
			return fmt.Errorf("--recipe %s: no flag --%s", name, f[0])
		}
		if fl.Changed {
			continue
		}
		if err := fl.Value.Set(f[1]); err != nil {
			return fmt.Errorf("--recipe %s: --%s %s: %w", name, f[0], f[1], err)
		}
	}
	return nil
}
