package train

import (
	"fmt"
	"math"
	"strings"

	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
)

// EMA is an exponential moving average of a model's weights and buffers,
// as timm's ModelEmaV2 keeps it: a copy of the model made at the start,
// then after every optimizer step, for every entry of the state dict
// (parameters, BN running statistics and num_batches_tracked),
//
//	ema = decay*ema + (1-decay)*model
//
// in float32 as PyTorch computes it (decay and 1-decay rounded to
// float32, two products and a sum, each rounded). num_batches_tracked, an
// integer, gets the float result truncated, as timm's copy_ into an int64
// tensor does.
type EMA struct {
	Decay float64
	model *resnet.Model
}

// NewEMA returns the EMA of m, starting as a copy of it; decay 0 is timm's
// default (DefaultEMADecay).
func NewEMA(m *resnet.Model, decay float64) (*EMA, error) { return newEMA(m, decay) }

func newEMA(m *resnet.Model, decay float64) (*EMA, error) {
	if decay == 0 {
		decay = DefaultEMADecay
	}
	if !(decay > 0 && decay < 1) {
		return nil, fmt.Errorf("model EMA: decay %v: want 0 < decay < 1", decay)
	}
	opt := m.Options
	opt.SmallStem = m.Arch.SmallStem
	em, err := resnet.New(m.Backend(), m.Name, opt)
	if err != nil {
		return nil, fmt.Errorf("model EMA: %w", err)
	}
	nn.SetTraining(em, false)
	e := &EMA{Decay: decay, model: em}
	if err := e.copyFrom(m); err != nil {
		return nil, err
	}
	return e, nil
}

// Model returns the averaged model (in evaluation mode).
func (e *EMA) Model() *resnet.Model { return e.model }

// pairs returns the EMA's variables beside the model's, checked to match.
func (e *EMA) pairs(m *resnet.Model) ([][2]nn.NamedVar, error) {
	a, b := nn.State(e.model), nn.State(m)
	if len(a) != len(b) {
		return nil, fmt.Errorf("model EMA: %d variables, the model %d", len(a), len(b))
	}
	out := make([][2]nn.NamedVar, len(a))
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Kind != b[i].Kind || (a[i].Value != nil && a[i].Value.Len() != b[i].Value.Len()) {
			return nil, fmt.Errorf("model EMA: variable %q does not match the model's %q", a[i].Name, b[i].Name)
		}
		out[i] = [2]nn.NamedVar{a[i], b[i]}
	}
	return out, nil
}

func (e *EMA) copyFrom(m *resnet.Model) error {
	ps, err := e.pairs(m)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if p[0].Kind == nn.Counter {
			*p[0].Count = *p[1].Count
			continue
		}
		p[0].Value.CopyFrom(p[1].Value)
	}
	return nil
}

// Update moves the average towards m's current weights and buffers.
func (e *EMA) Update(m *resnet.Model) error {
	ps, err := e.pairs(m)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if p[0].Kind == nn.Counter {
			*p[0].Count = emaCount(*p[0].Count, *p[1].Count, e.Decay)
			continue
		}
		if !p[0].Value.IsPlain() || !p[1].Value.IsPlain() {
			return fmt.Errorf("model EMA: %s is not a plain tensor", p[0].Name)
		}
		emaBlend(p[0].Value.Mutable(), p[1].Value.Values(), e.Decay)
	}
	return nil
}

// emaBlend sets dst = decay*dst + (1-decay)*src as PyTorch computes
// self.decay * e + (1. - self.decay) * m on float32 tensors: both factors
// rounded to float32, each product and the sum rounded (no fused
// multiply-add).
func emaBlend(dst, src []float32, decay float64) {
	d := float32(decay)
	k := float32(1 - decay)
	for j := range dst {
		dst[j] = float32(d*dst[j]) + float32(k*src[j])
	}
}

// emaCount is emaBlend on an int64 counter, as timm's copy_ of the float32
// result into the int64 num_batches_tracked truncates it.
func emaCount(ema, model int64, decay float64) int64 {
	d := float32(decay)
	k := float32(1 - decay)
	v := float32(d*float32(ema)) + float32(k*float32(model))
	return int64(math.Trunc(float64(v)))
}

// emaPrefix names the EMA's tensors in the last checkpoint.
const emaPrefix = "ema."

// extras returns the EMA's tensors for the last checkpoint, named
// "ema.<variable>".
func (e *EMA) extras() map[string]*checkpoint.Tensor {
	out := map[string]*checkpoint.Tensor{}
	sd := checkpoint.FromModule(e.model)
	for _, k := range sd.Keys {
		t := sd.Get(k)
		out[emaPrefix+k] = t
	}
	return out
}

// load restores the EMA from the "ema." tensors of a checkpoint.
func (e *EMA) load(path string, sd *checkpoint.StateDict) error {
	sub := checkpoint.NewStateDict()
	for _, k := range sd.Keys {
		if name, ok := strings.CutPrefix(k, emaPrefix); ok {
			t := *sd.Get(k)
			t.Name = name
			sub.Add(&t)
		}
	}
	if sub.Len() == 0 {
		return fmt.Errorf("%s: the run keeps a model EMA, the checkpoint has none", path)
	}
	if _, err := checkpoint.Load(e.model, sub, checkpoint.LoadOptions{}); err != nil {
		return fmt.Errorf("%s: model EMA: %w", path, err)
	}
	return nil
}
