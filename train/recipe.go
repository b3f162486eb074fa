package train

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/optim"
	"github.com/resgo/resgo/transform"
)

// Recipe holds the settings of a training recipe beyond the tutorial's, as
// timm's train.py names them: gradient clipping, an exponential moving
// average of the weights, schedules by epoch, a smaller learning rate for
// a pretrained backbone, early stopping. Its zero value changes nothing.
// Config embeds it (its fields are Config's in JSON too).
type Recipe struct {
	// ClipGrad clips the gradients' global L2 norm to this before each
	// step (torch.nn.utils.clip_grad_norm_; timm's --clip-grad); 0: none.
	ClipGrad float64 `json:"clip_grad,omitempty"`
	// ModelEMA keeps an exponential moving average of the weights and
	// BN buffers, as timm's ModelEmaV2: after every step
	// ema = decay*ema + (1-decay)*model. It is validated after every
	// epoch beside the model and written to EMAFile.
	ModelEMA      bool    `json:"model_ema,omitempty"`
	ModelEMADecay float64 `json:"model_ema_decay,omitempty"` // timm's default 0.9998
	// Milestones are the epochs at which the "multistep" schedule
	// multiplies the rate by Gamma (MultiStepLR; timm's
	// --decay-milestones).
	Milestones []int `json:"decay_milestones,omitempty"`
	// MinLR is the rate the cosine schedule ends at (eta_min) and the
	// floor of the plateau schedule (timm's --min-lr).
	MinLR float64 `json:"min_lr,omitempty"`
	// WarmupEpochs is a linear warmup of this many epochs, in optimizer
	// steps (added to WarmupSteps).
	WarmupEpochs int `json:"warmup_epochs,omitempty"`
	// PlateauPatience is ReduceLROnPlateau's patience for the "plateau"
	// schedule, in epochs (timm's --patience-epochs; 0: 10, timm's
	// default). The plateau schedule multiplies the rate by Gamma.
	PlateauPatience int `json:"patience_epochs,omitempty"`
	// NoNesterov turns SGD's Nesterov momentum off (timm's "momentum"
	// optimizer); by default SGD with momentum is Nesterov's, as timm's
	// "sgd".
	NoNesterov bool `json:"no_nesterov,omitempty"`
	// BackboneLRScale multiplies the learning rate of every parameter
	// but the fc head's (0 or 1: the same rate): a parameter group of
	// the backbone at lr*scale, as transfer-learning recipes use.
	BackboneLRScale float64 `json:"backbone_lr_scale,omitempty"`
	// NormWeightDecay is the weight decay of the BatchNorm layers'
	// parameters (gamma and beta), as torchvision references'
	// --norm-weight-decay; nil: WeightDecay. 0 is the usual "no weight
	// decay on BN".
	NormWeightDecay *float64 `json:"norm_weight_decay,omitempty"`
	// BiasWeightDecay is the weight decay of every parameter named "bias"
	// (the fc head's, a BN's beta, the convolutions' of a model without
	// BN), as torchvision references' --bias-weight-decay; nil: the
	// parameter's decay without it. It wins over NormWeightDecay for a BN
	// beta, as in torchvision's set_weight_decay, where it is a custom key
	// checked before the norm layers.
	BiasWeightDecay *float64 `json:"bias_weight_decay,omitempty"`
	// Patience stops the training when the validation loss has not
	// improved for this many epochs (0: never).
	Patience int `json:"patience,omitempty"`
	// Mix mixes the training batches by mixup or cutmix (mix.go).
	Mix
	// ClassWeights weigh each class's samples in the training loss, as
	// CrossEntropyLoss(weight=...) (classweights.go); nil: all 1. With
	// BalancedWeights set and no ClassWeights, New computes them from
	// the training data (see BalancedWeights).
	ClassWeights    []float64 `json:"class_weights,omitempty"`
	BalancedWeights bool      `json:"balanced_class_weights,omitempty"`
	// Balanced draws every epoch's samples with replacement, each class
	// equally often (WeightedRandomSampler with weights 1/class count).
	Balanced bool `json:"balanced,omitempty"`
	// ValTTA validates with test-time augmentation: the softmax of every
	// validation image and of its horizontal mirror averaged
	// (EvalOptions.FlipTTA), for the model and its EMA alike.
	ValTTA bool `json:"val_tta,omitempty"`
	// ValBatch is the batch size of validation (timm's
	// --validation-batch-size); 0: the training batch. Evaluation keeps
	// no activations for a backward pass, so it can take larger batches,
	// which run faster on small images.
	ValBatch int `json:"validation_batch_size,omitempty"`
	// ZeroInitResidual starts a model trained from scratch with the last
	// BN gamma of every residual block at zero, so that each block starts
	// as the identity (torchvision's zero_init_residual).
	ZeroInitResidual bool `json:"zero_init_residual,omitempty"`
}

// EMAFile is the checkpoint of the EMA weights (weights and metadata, as
// BestFile), written after every epoch when Recipe.ModelEMA is set.
const EMAFile = "ema.safetensors"

// DefaultEMADecay is timm's default decay of the model EMA.
const DefaultEMADecay = 0.9998

// DefaultPlateauPatience is ReduceLROnPlateau's default patience.
const DefaultPlateauPatience = 10

// RecipeState is the part of the training state the recipe adds: the
// plateau schedule and early stopping.
type RecipeState struct {
	Plateau *optim.Plateau `json:"plateau,omitempty"`
	// BestLoss is the lowest validation loss so far (when BadEpochs was
	// last reset), BadEpochs the epochs since, for early stopping.
	BestLoss     float64 `json:"best_loss,omitempty"`
	BadEpochs    int     `json:"bad_epochs,omitempty"`
	StoppedEarly bool    `json:"stopped_early,omitempty"`
}

// validateRecipe checks the recipe's settings.
func (c *Config) validateRecipe() error {
	bad := func(field string, v any, reason string) error {
		return &ConfigError{Field: field, Value: v, Reason: reason}
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	r := c.Recipe
	switch {
	case !finite(r.ClipGrad) || r.ClipGrad < 0:
		return bad("ClipGrad", r.ClipGrad, "want a finite max norm above 0 (0: no clipping)")
	case !finite(r.ModelEMADecay) || r.ModelEMADecay < 0 || r.ModelEMADecay >= 1:
		return bad("ModelEMADecay", r.ModelEMADecay, "want 0 <= decay < 1 (0: the default 0.9998)")
	case !finite(r.MinLR) || r.MinLR < 0 || (r.MinLR > 0 && r.MinLR >= c.LR):
		return bad("MinLR", r.MinLR, "want 0 <= min lr < lr")
	case r.WarmupEpochs < 0 || r.WarmupEpochs > c.Epochs:
		return bad("WarmupEpochs", r.WarmupEpochs, "want 0 to the number of epochs")
	case r.PlateauPatience < 0 || r.PlateauPatience > MaxEpochs:
		return bad("PlateauPatience", r.PlateauPatience, fmt.Sprintf("want 0 (the default 10) to %d epochs", MaxEpochs))
	case !finite(r.BackboneLRScale) || r.BackboneLRScale < 0:
		return bad("BackboneLRScale", r.BackboneLRScale, "want a finite factor of 0 or more (0: 1)")
	case r.NormWeightDecay != nil && (!finite(*r.NormWeightDecay) || *r.NormWeightDecay < 0):
		return bad("NormWeightDecay", *r.NormWeightDecay, "want a finite weight decay of 0 or more")
	case r.BiasWeightDecay != nil && (!finite(*r.BiasWeightDecay) || *r.BiasWeightDecay < 0):
		return bad("BiasWeightDecay", *r.BiasWeightDecay, "want a finite weight decay of 0 or more")
	case r.Patience < 0 || r.Patience > MaxEpochs:
		return bad("Patience", r.Patience, fmt.Sprintf("want 0 (no early stopping) to %d epochs", MaxEpochs))
	case c.Schedule == "multistep" && len(r.Milestones) == 0:
		return bad("Milestones", "[]", "the multistep schedule needs its milestones (epochs)")
	case (c.Schedule == "multistep" || c.Schedule == "plateau") && (!finite(c.Gamma) || c.Gamma <= 0 || c.Gamma >= 1 && c.Schedule == "plateau"):
		return bad("Gamma", c.Gamma, "want a finite decay factor above 0 (below 1 for plateau)")
	}
	if p := c.Augment.ReProb; !(p >= 0 && p <= 1) {
		return bad("Augment.ReProb", p, "want a probability in [0, 1]")
	}
	if _, err := transform.ParseAutoAugment(c.Augment.AutoAugment); err != nil {
		return bad("Augment.AutoAugment", c.Augment.AutoAugment, err.Error())
	}
	if j := c.Augment.ColorJitter; !(j >= 0 && j <= 1) {
		return bad("Augment.ColorJitter", j, "want 0 to 1")
	}
	for _, w := range r.ClassWeights {
		if !(w >= 0) || math.IsInf(w, 1) {
			return bad("ClassWeights", r.ClassWeights, "want finite weights of 0 or more")
		}
	}
	if (r.ClassWeights != nil || r.BalancedWeights) && r.Mix.On() {
		return bad("ClassWeights", "", "class weights and mixup or cutmix cannot be combined (timm's soft-target loss has no class weights)")
	}
	if err := r.Mix.validate(); err != nil {
		return err
	}
	for _, m := range r.Milestones {
		if m < 1 || m > MaxEpochs {
			return bad("Milestones", r.Milestones, fmt.Sprintf("want epochs from 1 to %d", MaxEpochs))
		}
	}
	return nil
}

// applyRecipeOptim sets the backbone's learning-rate factor and the
// weight decays of the norm and bias parameters on the optimizer.
func (t *Trainer) applyRecipeOptim(params []nn.NamedVar) error {
	if decays := weightDecays(t.model, params, t.cfg.Recipe); len(decays) > 0 {
		if err := t.opt.SetWeightDecay(decays); err != nil {
			return err
		}
	}
	s := t.cfg.BackboneLRScale
	if s == 0 || s == 1 {
		return nil
	}
	scales := map[string]float64{}
	for _, p := range params {
		if !strings.HasPrefix(p.Name, "fc.") {
			scales[p.Name] = s
		}
	}
	return t.opt.SetLRScale(scales)
}

// weightDecays returns the weight decays that r gives params (the
// trainable parameters of m) apart from the configured one, by name, as
// torchvision's set_weight_decay groups them: with BiasWeightDecay, every
// parameter whose own name is "bias"; with NormWeightDecay, the other
// parameters of the BatchNorm layers.
func weightDecays(m nn.Module, params []nn.NamedVar, r Recipe) map[string]float64 {
	if r.NormWeightDecay == nil && r.BiasWeightDecay == nil {
		return nil
	}
	norm := map[*nn.Var]bool{}
	for _, c := range nn.Modules(m) {
		if bn, ok := c.Module.(*nn.BatchNorm2d); ok {
			norm[bn.Weight], norm[bn.Bias] = true, true
		}
	}
	decays := map[string]float64{}
	for _, p := range params {
		switch {
		case r.BiasWeightDecay != nil && p.Var.Name == "bias":
			decays[p.Name] = *r.BiasWeightDecay
		case r.NormWeightDecay != nil && norm[p.Var]:
			decays[p.Name] = *r.NormWeightDecay
		}
	}
	return decays
}

// warmupSteps returns the warmup's length in optimizer steps.
func (c *Config) warmupSteps(steps int) int { return c.WarmupSteps + c.WarmupEpochs*steps }

// recipeSchedule returns the schedules the recipe adds ("multistep",
// "plateau"), before the warmup; ok false for another name.
func recipeSchedule(c Config, steps int) (s optim.Schedule, ok bool) {
	switch c.Schedule {
	case "multistep":
		return optim.PerEpoch{StepsPerEpoch: steps, Epochs: optim.MultiStep{Base: c.LR, Milestones: c.Milestones, Gamma: c.Gamma}}, true
	case "plateau":
		// The rate after the warmup is the plateau's (see stepLR).
		return optim.Constant(c.LR), true
	}
	return nil, false
}

// stepLR returns the learning rate of the next step: the schedule's, or
// the plateau's once the warmup is over.
func (t *Trainer) stepLR() float64 {
	lr := t.sched.LR(t.state.Step)
	if p := t.state.Plateau; p != nil && t.state.Step >= t.cfg.warmupSteps(stepsPerEpoch(t.trainLen(), t.cfg.Batch)) {
		lr = p.LR()
	}
	return lr
}

// setupRecipe prepares the recipe's state for a new run.
func (t *Trainer) setupRecipe() error {
	c := t.cfg
	if t.state.StoppedEarly {
		return fmt.Errorf("%w: it stopped early, its validation loss not improving for %d epochs", ErrFinished, t.state.BadEpochs)
	}
	if err := t.state.RecipeState.check(); err != nil {
		return err
	}
	if c.Schedule == "plateau" && t.state.Plateau == nil {
		if !t.hasVal() {
			return fmt.Errorf("the plateau schedule follows the validation loss: it needs validation data")
		}
		pat := c.PlateauPatience
		if pat == 0 {
			pat = DefaultPlateauPatience
		}
		p, err := optim.NewPlateau(c.LR, c.Gamma, pat, c.MinLR)
		if err != nil {
			return err
		}
		t.state.Plateau = p
	}
	if c.Patience > 0 && !t.hasVal() {
		return fmt.Errorf("early stopping (patience %d) follows the validation loss: it needs validation data", c.Patience)
	}
	if c.BalancedWeights && c.ClassWeights == nil {
		c.ClassWeights = BalancedWeights(t.trainDS)
		t.cfg.ClassWeights, t.state.Config.ClassWeights = c.ClassWeights, c.ClassWeights
	}
	if c.ClassWeights != nil && len(c.ClassWeights) != len(t.classes) {
		return &ConfigError{Field: "ClassWeights", Value: c.ClassWeights, Reason: fmt.Sprintf("%d weights for %d classes", len(c.ClassWeights), len(t.classes))}
	}
	if c.ModelEMA && t.ema == nil {
		ema, err := newEMA(t.model, c.ModelEMADecay)
		if err != nil {
			return err
		}
		t.ema = ema
	}
	return nil
}

// clipGrads clips the gradients (averaged over the ranks, in data-parallel
// training) when the recipe asks for it.
func (t *Trainer) clipGrads() error {
	if t.cfg.ClipGrad <= 0 {
		return nil
	}
	_, err := optim.ClipGradNorm(nn.Params(t.model, true), t.cfg.ClipGrad)
	return err
}

// afterStep updates the EMA of the weights.
func (t *Trainer) afterStep() error {
	if t.ema == nil {
		return nil
	}
	return t.ema.Update(t.model)
}

// endEpoch runs the recipe's work after an epoch's validation (res nil
// without validation): it validates the EMA weights, steps the plateau
// schedule and counts the epochs without improvement of the loss.
func (t *Trainer) endEpoch(ctx context.Context, val *data.Loader, st *EpochStats) error {
	if t.ema != nil && val != nil {
		res, err := EvaluateWith(ctx, t.ema.Model(), val, EvalOptions{Smoothing: t.cfg.LabelSmoothing, FlipTTA: t.cfg.ValTTA})
		if err == nil {
			err = t.gatherEval(res) // the results of all ranks' shares
		}
		if err != nil {
			return fmt.Errorf("EMA validation: %w", err)
		}
		st.EMAValLoss, st.EMAValAcc, st.HasEMA = res.Loss, res.Accuracy, true
	}
	if val == nil {
		return nil
	}
	if p := t.state.Plateau; p != nil && t.state.Step >= t.cfg.warmupSteps(stepsPerEpoch(t.trainLen(), t.cfg.Batch)) {
		p.Step(st.ValLoss)
	}
	if t.cfg.Patience > 0 {
		t.state.RecipeState.observeLoss(st.ValLoss, len(t.state.History) == 0, t.cfg.Patience)
	}
	return nil
}

// check refuses a saved recipe state that cannot be resumed: counts below
// 0, a plateau schedule whose settings or rate are out of range.
func (s *RecipeState) check() error {
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if s.BadEpochs < 0 || !finite(s.BestLoss) {
		return fmt.Errorf("the training state has %d epochs without improvement of a best loss %v", s.BadEpochs, s.BestLoss)
	}
	if p := s.Plateau; p != nil {
		if !(p.Factor > 0 && p.Factor < 1) || p.Patience < 0 || p.Cooldown < 0 || p.Bad < 0 || p.CoolLeft < 0 ||
			!finite(p.Threshold) || !finite(p.Rate) || p.Rate < 0 || !finite(p.MinLR) || p.MinLR < 0 || !finite(p.Best) {
			return fmt.Errorf("the training state has a plateau schedule out of range: %+v", *p)
		}
	}
	return nil
}

// observeLoss counts the epochs since the validation loss last improved
// (first: the run's first epoch) and sets StoppedEarly when they reach
// patience.
func (s *RecipeState) observeLoss(loss float64, first bool, patience int) {
	if first || loss < s.BestLoss {
		s.BestLoss, s.BadEpochs = loss, 0
	} else {
		s.BadEpochs++
	}
	s.StoppedEarly = s.BadEpochs >= patience
}

// sampleWeights returns the training loader's sample weights: the
// balanced ones with Recipe.Balanced, else nil.
func (t *Trainer) sampleWeights() []float64 {
	if !t.cfg.Balanced {
		return nil
	}
	return data.BalancedWeights(t.trainDS)
}

// writeEMA writes the EMA's weights and metadata to EMAFile.
func (t *Trainer) writeEMA() error {
	if t.ema == nil || !t.root() {
		return nil // rank 0 writes the output folder
	}
	raw, err := json.Marshal(t.state)
	if err != nil {
		return fmt.Errorf("checkpoint %s: training state: %w", EMAFile, err)
	}
	m := t.ema.Model()
	meta := modelfile.Meta{Arch: m.Name, NumClasses: len(t.classes), InChannels: m.Options.InChannels,
		SmallStem: m.Arch.SmallStem, Classes: t.classes, Preprocess: t.cfg.Eval, Train: raw}
	return modelfile.Write(filepath.Join(t.cfg.Out, EMAFile), m, meta, nil)
}
