package optim

import (
	"fmt"
	"math"

	"github.com/resgo/resgo/nn"
)

// ClipGradNorm scales the gradients of params in place so that their
// global L2 norm is at most maxNorm, as torch.nn.utils.clip_grad_norm_
// (norm_type 2) does in PyTorch 1.13:
//
//	total = ||(||g1||, ||g2||, ...)||              over the parameters with a gradient
//	coef = min(maxNorm / (total + 1e-6), 1)
//	g = g * coef                                   for every gradient
//
// in float32 as PyTorch computes it. Parameters without a gradient (Grad
// nil) are left out, and so are frozen ones. It returns the total norm
// before clipping (0 when no parameter has a gradient). It returns an
// error for a maxNorm that is not finite and above 0.
func ClipGradNorm(params []nn.NamedVar, maxNorm float64) (float64, error) {
	if !(maxNorm > 0) || math.IsInf(maxNorm, 1) {
		return 0, fmt.Errorf("optim.ClipGradNorm: max norm %v: want a finite norm above 0", maxNorm)
	}
	var sq float64 // sum of the squares of the float32 per-parameter norms
	any := false
	for _, p := range params {
		if p.Grad == nil || p.Frozen {
			continue
		}
		any = true
		var s float64
		for _, g := range p.Grad.Values() {
			s += float64(g) * float64(g)
		}
		n := float32(math.Sqrt(s)) // torch.norm(g): a float32 result
		sq += float64(n) * float64(n)
	}
	if !any {
		return 0, nil
	}
	total := float32(math.Sqrt(sq))
	// max_norm / (total_norm + 1e-6): Tensor.__rdiv__ is reciprocal() * max_norm.
	coef := (1 / (total + float32(1e-6))) * float32(maxNorm)
	if coef > 1 { // torch.clamp(clip_coef, max=1.0), which keeps a NaN
		coef = 1
	}
	if coef != 1 {
		for _, p := range params {
			if p.Grad == nil || p.Frozen {
				continue
			}
			g := p.Grad.Mutable()
			for j := range g {
				g[j] *= coef
			}
		}
	}
	return float64(total), nil
}
