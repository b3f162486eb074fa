package nn

import (
	"math"
	"math/rand/v2"
)

// InitKaimingNormal fills a convolution's weight as torchvision's ResNet
// does: kaiming_normal_(mode="fan_out", nonlinearity="relu"), a normal
// distribution with standard deviation sqrt(2 / fan_out), where fan_out is
// out_channels * kh * kw. A bias, if any, is zeroed.
func InitKaimingNormal(c *Conv2d, r *rand.Rand) {
	w := c.Weight.Value
	fanOut := w.Dim(0) * w.Dim(2) * w.Dim(3)
	std := math.Sqrt(2 / float64(fanOut))
	d := w.Mutable()
	for i := range d {
		d[i] = float32(r.NormFloat64() * std)
	}
	if c.Bias != nil {
		c.Bias.Value.Fill(0)
	}
}

// InitLinear fills a Linear layer as PyTorch's default reset_parameters:
// weight and bias uniform in [-1/sqrt(in), 1/sqrt(in)] (kaiming_uniform_
// with a = sqrt(5) reduces to that bound).
func InitLinear(l *Linear, r *rand.Rand) {
	bound := 1 / math.Sqrt(float64(l.In))
	for _, v := range []*Var{l.Weight, l.Bias} {
		d := v.Value.Mutable()
		for i := range d {
			d[i] = float32((r.Float64()*2 - 1) * bound)
		}
	}
}

// InitBatchNorm sets gamma to 1 and beta to 0 (or gamma to 0 for the last
// BN of a residual branch with zero_init_residual), and resets the running
// statistics.
func InitBatchNorm(bn *BatchNorm2d, gamma float32) {
	bn.Weight.Value.Fill(gamma)
	bn.Bias.Value.Fill(0)
	bn.RunningMean.Value.Fill(0)
	bn.RunningVar.Value.Fill(1)
	bn.numBatches = 0
}
