package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/tensor"
)

// Mix holds the settings of timm's Mixup in its "batch" mode: with
// probability Prob a batch is mixed with itself reversed (sample i with
// sample n-1-i, as x.flip(0)), either by mixup (a weighted sum, weight lam
// ~ Beta(MixupAlpha, MixupAlpha)) or by cutmix (a box of the reversed
// batch pasted in, its area 1-lam with lam ~ Beta(CutmixAlpha,
// CutmixAlpha), then lam corrected to the box actually pasted); with both
// alphas set, cutmix is chosen with probability SwitchProb. The targets
// are mixed the same way: lam*y + (1-lam)*y_reversed, each smoothed by
// the label smoothing, and the loss is the cross entropy with these soft
// targets (timm's SoftTargetCrossEntropy).
type Mix struct {
	MixupAlpha  float64 `json:"mixup,omitempty"`             // timm's --mixup (0: off)
	CutmixAlpha float64 `json:"cutmix,omitempty"`            // timm's --cutmix (0: off)
	Prob        float64 `json:"mixup_prob,omitempty"`        // timm's --mixup-prob (0: 1, its default)
	SwitchProb  float64 `json:"mixup_switch_prob,omitempty"` // timm's --mixup-switch-prob (0: 0.5, its default)
}

// On reports whether batches are mixed.
func (m Mix) On() bool { return m.MixupAlpha > 0 || m.CutmixAlpha > 0 }

func (m Mix) prob() float64 {
	if m.Prob == 0 {
		return 1
	}
	return m.Prob
}

func (m Mix) switchProb() float64 {
	if m.SwitchProb == 0 {
		return 0.5
	}
	return m.SwitchProb
}

// validate checks the settings.
func (m Mix) validate() error {
	for _, v := range []struct {
		field string
		v     float64
		max   float64
	}{{"Mix.MixupAlpha", m.MixupAlpha, 1e3}, {"Mix.CutmixAlpha", m.CutmixAlpha, 1e3}, {"Mix.Prob", m.Prob, 1}, {"Mix.SwitchProb", m.SwitchProb, 1}} {
		if !(v.v >= 0 && v.v <= v.max) {
			return &ConfigError{Field: v.field, Value: v.v, Reason: fmt.Sprintf("want 0 to %g", v.max)}
		}
	}
	return nil
}

// MixParams are the draws of one batch: lam, the weight of the batch
// itself, and for cutmix the box [Top, Bottom) x [Left, Right) pasted from
// the reversed batch (lam then already corrected to the box's area).
type MixParams struct {
	Lam                      float64
	Cutmix                   bool
	Top, Bottom, Left, Right int
}

// Draw chooses the mixing of a batch of h x w images as timm's
// Mixup._params_per_batch and cutmix_bbox_and_lam do: lam 1 (no mixing)
// unless a draw below Prob; then cutmix or mixup and lam from the Beta
// distribution; for cutmix a box of sides int(h*sqrt(1-lam)) and
// int(w*sqrt(1-lam)) centred at a uniform pixel, clipped to the image, and
// lam = 1 - box area / image area.
func (m Mix) Draw(h, w int, rng *rand.Rand) MixParams {
	p := MixParams{Lam: 1}
	if !m.On() || rng.Float64() >= m.prob() {
		return p
	}
	var lam float64
	switch {
	case m.MixupAlpha > 0 && m.CutmixAlpha > 0:
		p.Cutmix = rng.Float64() < m.switchProb()
		if p.Cutmix {
			lam = betaSample(rng, m.CutmixAlpha)
		} else {
			lam = betaSample(rng, m.MixupAlpha)
		}
	case m.MixupAlpha > 0:
		lam = betaSample(rng, m.MixupAlpha)
	default:
		p.Cutmix = true
		lam = betaSample(rng, m.CutmixAlpha)
	}
	p.Lam = lam
	if p.Cutmix {
		p = CutmixBox(h, w, lam, rng.IntN(h), rng.IntN(w))
	}
	return p
}

// CutmixBox returns the cutmix of an h x w image for a drawn lam and box
// centre (cy, cx), as timm's rand_bbox and cutmix_bbox_and_lam (no
// margin, lam corrected): sides int(h*sqrt(1-lam)) and int(w*sqrt(1-lam)),
// the box [cy-cut_h//2, cy+cut_h//2) x [cx-cut_w//2, cx+cut_w//2) clipped
// to the image, and lam = 1 - its area / the image's.
func CutmixBox(h, w int, lam float64, cy, cx int) MixParams {
	ratio := math.Sqrt(1 - lam)
	cutH, cutW := int(float64(h)*ratio), int(float64(w)*ratio)
	p := MixParams{Cutmix: true}
	p.Top, p.Bottom = clampInt(cy-cutH/2, 0, h), clampInt(cy+cutH/2, 0, h)
	p.Left, p.Right = clampInt(cx-cutW/2, 0, w), clampInt(cx+cutW/2, 0, w)
	p.Lam = 1 - float64((p.Bottom-p.Top)*(p.Right-p.Left))/float64(h*w)
	return p
}

func clampInt(v, lo, hi int) int { return min(max(v, lo), hi) }

// MixBatch mixes the n x c x h x w batch x in place with itself reversed,
// as timm's Mixup._mix_batch: for mixup x = x*lam + x.flip(0)*(1-lam) in
// float32 (both factors rounded to float32, each product and the sum
// rounded), for cutmix the box of every sample replaced by that of the
// sample at the mirrored position. lam 1 leaves x as it is.
func MixBatch(x []float32, n, c, h, w int, p MixParams) {
	if len(x) != n*c*h*w {
		panic(fmt.Sprintf("train.MixBatch: %d values for a batch of %dx%dx%dx%d", len(x), n, c, h, w))
	}
	if p.Lam == 1 {
		return
	}
	per := c * h * w
	flipped := make([]float32, len(x))
	for i := range n {
		copy(flipped[i*per:(i+1)*per], x[(n-1-i)*per:(n-i)*per])
	}
	if p.Cutmix {
		for i := range n {
			for ch := range c {
				for y := p.Top; y < p.Bottom; y++ {
					o := ((i*c+ch)*h+y)*w + p.Left
					copy(x[o:o+p.Right-p.Left], flipped[o:o+p.Right-p.Left])
				}
			}
		}
		return
	}
	a, b := float32(p.Lam), float32(1-p.Lam)
	for j := range x {
		x[j] = float32(x[j]*a) + float32(flipped[j]*b)
	}
}

// mixedLoss returns the loss of the mixed batch and its gradient in
// dlogits (see MixedCrossEntropy). Call it inside backend.Do.
func (t *Trainer) mixedLoss(dlogits, logits *tensor.Tensor, labels []int, lam float64, smoothing float32) float64 {
	if w := t.cfg.ClassWeights; w != nil {
		return WeightedCrossEntropy(t.b, dlogits, logits, labels, w, smoothing)
	}
	return MixedCrossEntropy(t.b, dlogits, &t.dlogits2, logits, labels, lam, smoothing)
}

// MixedCrossEntropy returns the mean cross entropy of logits with the soft
// targets of a mixed batch, lam*smooth(onehot(labels)) +
// (1-lam)*smooth(onehot(labels reversed)), as timm's mixup_target and
// SoftTargetCrossEntropy compute it, and its gradient in dlogits (scratch
// holds a second gradient). The cross entropy is linear in its target, so
// it is lam times the smoothed cross entropy with the labels plus 1-lam
// times the one with the reversed labels, each the backend's
// SoftmaxCrossEntropy (PyTorch's CrossEntropyLoss(label_smoothing), whose
// smoothed target is timm's). Call it inside backend.Do.
func MixedCrossEntropy(b backend.Backend, dlogits, scratch, logits *tensor.Tensor, labels []int, lam float64, smoothing float32) float64 {
	loss := b.SoftmaxCrossEntropy(dlogits, logits, labels, smoothing)
	if lam == 1 {
		return loss
	}
	rev := make([]int, len(labels))
	for i, l := range labels {
		rev[len(labels)-1-i] = l
	}
	loss2 := b.SoftmaxCrossEntropy(scratch, logits, rev, smoothing)
	g, g2 := dlogits.Mutable(), backend.Values(b, scratch)
	for j := range g {
		g[j] = float32(lam*float64(g[j]) + (1-lam)*float64(g2[j]))
	}
	return lam*loss + (1-lam)*loss2
}

// betaSample draws from Beta(a, a) as X/(X+Y) with X, Y ~ Gamma(a, 1).
func betaSample(rng *rand.Rand, a float64) float64 {
	x, y := gammaSample(rng, a), gammaSample(rng, a)
	if x+y == 0 {
		return 0.5
	}
	return x / (x + y)
}

// gammaSample draws from Gamma(a, 1) by Marsaglia and Tsang's method
// (a < 1 through Gamma(a+1) * U^(1/a)).
func gammaSample(rng *rand.Rand, a float64) float64 {
	if a < 1 {
		u := rng.Float64()
		return gammaSample(rng, a+1) * math.Pow(u, 1/a)
	}
	d := a - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		var x, v float64
		for v <= 0 {
			x = rng.NormFloat64()
			v = 1 + c*x
		}
		v = v * v * v
		u := rng.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}

// mixSalt separates the mixing's random stream from the others of a seed.
const mixSalt = 0x6d69787570 // "mixup"

// mixBatch mixes the batch in place when the recipe asks for it and
// returns the draws. They come from a stream of the seed and the step
// index, so that a resumed run mixes as the straight one did.
func (t *Trainer) mixBatch(batch *data.Batch) MixParams {
	m := t.cfg.Mix
	if !m.On() {
		return MixParams{Lam: 1}
	}
	rng := rand.New(rand.NewPCG(t.cfg.Seed^mixSalt, uint64(t.state.Step)))
	s := batch.X.Shape()
	p := m.Draw(s[2], s[3], rng)
	MixBatch(batch.X.Mutable(), s[0], s[1], s[2], s[3], p)
	return p
}
