package train

import (
	"fmt"
	"math"
	"slices"
)

// Limits on a training's settings. Each bounds an allocation or a count
// that the settings drive, at a value no sane training comes near.
const (
	// MaxBatchValues bounds the values of one batch of input samples
	// (batch size x channels x height x width): 1<<28 float32 values are
	// 1 GiB, a batch of 1,783 ImageNet crops of 224x224. A ResNet's
	// activations take 50 to 100 times its input, so a larger batch cannot
	// train in any one machine's memory; a typo (--batch 1000000) must
	// fail at once instead of when the loader allocates it.
	MaxBatchValues = 1 << 28
	// MaxSide bounds the sides of the training crop and of the evaluation
	// resize and crop: torchvision's ResNets use 224 (the largest published
	// recipes up to 600), and a 4096-pixel side already has 335 times the
	// pixels of 224x224, while the resize of every image to such sides is
	// an allocation the settings alone decide.
	MaxSide = 4096
	// MaxEpochs bounds the number of epochs: far beyond any schedule in
	// use (ImageNet ResNets train 90 to 600 epochs), and small enough that
	// epochs times steps per epoch never overflows a schedule's step count.
	MaxEpochs = 100_000
	// MaxWorkers bounds the loader's goroutines: decoding is CPU-bound, so
	// more workers than CPUs gain nothing, and each worker keeps several
	// samples in flight (memory); 1024 is above any machine's core count.
	MaxWorkers = 1024
)

// ConfigError is the error of a setting of a Config that Validate refuses.
// Field names the Config field (a dotted path for nested ones, such as
// "Augment.Crop"), so that a caller can name its own option.
type ConfigError struct {
	Field  string
	Value  any
	Reason string
}

// Error returns "train: Field value: reason".
func (e *ConfigError) Error() string {
	return fmt.Sprintf("train: %s %v: %s", e.Field, e.Value, e.Reason)
}

// Validate checks that the settings can train: counts and sizes in range,
// finite rates, known optimizer and schedule names. It checks what does not
// need the data or the weights; New and Resume call it first. The error is
// a *ConfigError.
func (c *Config) Validate() error {
	bad := func(field string, v any, reason string) error {
		return &ConfigError{Field: field, Value: v, Reason: reason}
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case c.Out == "":
		return bad("Out", `""`, "an output folder is required")
	case c.Epochs < 1 || c.Epochs > MaxEpochs:
		return bad("Epochs", c.Epochs, fmt.Sprintf("want 1 to %d epochs", MaxEpochs))
	case c.Batch < 1:
		return bad("Batch", c.Batch, "want a batch of at least 1")
	case c.Optimizer != "adam" && c.Optimizer != "adamw" && c.Optimizer != "sgd":
		return bad("Optimizer", fmt.Sprintf("%q", c.Optimizer), "want adam, adamw or sgd")
	case !finite(c.LR) || c.LR <= 0:
		return bad("LR", c.LR, "want a finite learning rate above 0")
	case !finite(c.Momentum) || c.Momentum < 0 || c.Momentum >= 1:
		return bad("Momentum", c.Momentum, "want 0 <= momentum < 1")
	case !finite(c.WeightDecay) || c.WeightDecay < 0:
		return bad("WeightDecay", c.WeightDecay, "want a finite weight decay of 0 or more")
	case !slices.Contains([]string{"", "constant", "step", "multistep", "cosine", "plateau"}, c.Schedule):
		return bad("Schedule", fmt.Sprintf("%q", c.Schedule), "want constant, step, multistep, cosine or plateau")
	case c.StepEpochs < 0 || c.StepEpochs > MaxEpochs:
		return bad("StepEpochs", c.StepEpochs, fmt.Sprintf("want 0 (a third of the epochs) to %d", MaxEpochs))
	case c.Schedule == "step" && (!finite(c.Gamma) || c.Gamma <= 0):
		return bad("Gamma", c.Gamma, "want a finite decay factor above 0")
	case c.WarmupSteps < 0:
		return bad("WarmupSteps", c.WarmupSteps, "want 0 or more warmup steps")
	case !finite(c.LabelSmoothing) || c.LabelSmoothing < 0 || c.LabelSmoothing >= 1:
		return bad("LabelSmoothing", c.LabelSmoothing, "want 0 <= label smoothing < 1")
	case c.Transfer.From < -1 || c.Transfer.From > 4:
		return bad("Transfer", c.Transfer.From, "want all (0), from:layerK (1..4) or head (-1)")
	case c.Workers < 0 || c.Workers > MaxWorkers:
		return bad("Workers", c.Workers, fmt.Sprintf("want 0 (one per CPU) to %d loader workers", MaxWorkers))
	case c.ZeroInitResidual && c.Weights != "":
		return bad("ZeroInitResidual", true, "zero_init_residual starts a model from scratch; pretrained weights set every BN gamma already")
	case c.Eval.Channels != 1 && c.Eval.Channels != 3:
		return bad("Eval.Channels", c.Eval.Channels, "want 1 (grayscale) or 3 (RGB)")
	}
	a := c.Augment
	side := func(field string, v int) error {
		if v < 0 || v > MaxSide {
			return bad(field, v, fmt.Sprintf("want a side of 0 (none) to %d pixels", MaxSide))
		}
		return nil
	}
	for _, s := range []struct {
		field string
		v     int
	}{{"Augment.ResizedCrop", a.ResizedCrop}, {"Augment.Crop", a.Crop}, {"Augment.Pad", a.Pad},
		{"Eval.ResizeSize", c.Eval.ResizeSize}, {"Eval.CropSize", c.Eval.CropSize}} {
		if err := side(s.field, s.v); err != nil {
			return err
		}
	}
	switch {
	case a.ResizedCrop > 0 && a.Crop > 0:
		return bad("Augment", fmt.Sprintf("{ResizedCrop: %d, Crop: %d}", a.ResizedCrop, a.Crop), "want a random resized crop or a crop, not both")
	case a.ResizedCrop == 0 && a.Crop == 0:
		return bad("Augment", "{}", "the training augmentation must give a fixed size (a crop)")
	case !finite(a.FlipProb) || a.FlipProb < 0 || a.FlipProb > 1:
		return bad("Augment.FlipProb", a.FlipProb, "want a probability in [0, 1]")
	}
	h, w := a.OutputSize(0, 0)
	if err := CheckBatch(c.Batch, c.Eval.Channels, h, w); err != nil {
		return bad("Batch", c.Batch, err.Error())
	}
	if c.ValBatch < 0 {
		return bad("ValBatch", c.ValBatch, "want 0 (the training batch) or more")
	}
	if c.ValBatch > 0 {
		if err := CheckBatch(c.ValBatch, c.Eval.Channels, h, w); err != nil {
			return bad("ValBatch", c.ValBatch, err.Error())
		}
	}
	return c.validateRecipe()
}

// CheckBatch checks that a batch of batch samples of channels x height x
// width values is at least one sample and at most MaxBatchValues values.
func CheckBatch(batch, channels, height, width int) error {
	if batch < 1 {
		return fmt.Errorf("want a batch of at least 1")
	}
	per := int64(channels) * int64(height) * int64(width)
	if per < 1 {
		return fmt.Errorf("samples of %dx%dx%d values", channels, height, width)
	}
	if int64(batch) > MaxBatchValues/per {
		return fmt.Errorf("%d samples of %dx%dx%d values exceed the limit of %d values a batch (at most %d such samples)",
			batch, channels, height, width, MaxBatchValues, MaxBatchValues/per)
	}
	return nil
}

// checkWorkers checks a number of loader workers.
func checkWorkers(n int) error {
	if n < 0 || n > MaxWorkers {
		return fmt.Errorf("%d loader workers: want 0 (one per CPU) to %d", n, MaxWorkers)
	}
	return nil
}
