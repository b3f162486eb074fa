package main

import (
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
	f.IntVar(&cfg.Patience, "patience", 0, "stop when the validation loss has not improved for this many epochs (0: never)")
	f.Float64Var(reprob, "reprob", 0, "probability of torchvision's RandomErasing (scale 0.02-0.33, ratio 0.3-3.3, value 0) after normalization")
	f.Float64Var(&cfg.MixupAlpha, "mixup", 0, "mixup alpha: mix each batch with itself reversed, lam ~ Beta(alpha, alpha), soft-target loss (timm's Mixup); 0: off")
	f.Float64Var(&cfg.CutmixAlpha, "cutmix", 0, "cutmix alpha: paste a box of the reversed batch, area 1-lam, lam ~ Beta(alpha, alpha); 0: off")
	f.Float64Var(&cfg.Mix.Prob, "mixup-prob", 1, "probability of mixing a batch when --mixup or --cutmix is on")
	f.Float64Var(&cfg.SwitchProb, "mixup-switch-prob", 0.5, "probability of cutmix rather than mixup when both are on")
	f.StringVar(classWeights, "class-weights", "", `weights of the classes in the training loss (CrossEntropyLoss(weight=)): "balanced" (n / (classes x count)) or one number per class, comma-separated`)
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
