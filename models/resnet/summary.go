package resnet

import (
	"fmt"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/nn"
)

// LayerInfo is one row of a model summary.
type LayerInfo struct {
	Name   string // torchvision's module name, such as "layer1.0.conv1"
	Type   string // "Conv2d", "BatchNorm2d", ...
	Output []int  // output shape for one image: [C, H, W] or [K]
	Params int    // number of parameters
	MACs   int64  // multiply-accumulates for one image
}

// Summary returns the model's layers with output shapes, parameter counts
// and multiply-adds for one h x w image, computed from the shapes alone.
// Multiply-adds count the convolutions and the fc layer, as torchvision's
// published GFLOPS do.
func (m *Model) Summary(h, w int) ([]LayerInfo, error) {
	var rows []LayerInfo
	shape := []int{1, m.Options.InChannels, h, w}
	var err error
	conv := func(name string, c *nn.Conv2d, in []int) []int {
		if err != nil {
			return in
		}
		var out []int
		out, err = backend.CheckConv(in, c.Weight.Value.Shape(), c.Params)
		if err != nil {
			err = fmt.Errorf("resnet: %s: %w", name, err)
			return in
		}
		perOut := int64(c.InChannels / c.Params.Groups * c.Kernel * c.Kernel)
		rows = append(rows, LayerInfo{name, "Conv2d", out[1:], nn.NumParams(c), perOut * int64(out[1]*out[2]*out[3])})
		return out
	}
	bn := func(name string, b *nn.BatchNorm2d, in []int) {
		if b == nil { // a network without BN
			return
		}
		rows = append(rows, LayerInfo{name, "BatchNorm2d", in[1:], nn.NumParams(b), 0})
	}

	shape = conv("conv1", m.Conv1, shape)
	bn("bn1", m.BN1, shape)
	if m.MaxPool != nil && err == nil {
		if shape, err = backend.CheckPool(shape, m.MaxPool.Params); err != nil {
			return nil, fmt.Errorf("resnet: maxpool: %w", err)
		}
		rows = append(rows, LayerInfo{"maxpool", "MaxPool2d", shape[1:], 0, 0})
	}
	for i, st := range m.Layers {
		for _, c := range st.Layers {
			prefix := fmt.Sprintf("layer%d.%s.", i+1, c.Name)
			in := shape
			var convs []*nn.Conv2d
			var bns []*nn.BatchNorm2d
			var ds *nn.Sequential
			switch blk := c.Module.(type) {
			case *BasicBlock:
				convs, bns, ds = []*nn.Conv2d{blk.Conv1, blk.Conv2}, []*nn.BatchNorm2d{blk.BN1, blk.BN2}, blk.Downsample
			case *Bottleneck:
				convs, bns, ds = []*nn.Conv2d{blk.Conv1, blk.Conv2, blk.Conv3}, []*nn.BatchNorm2d{blk.BN1, blk.BN2, blk.BN3}, blk.Downsample
			}
			for k := range convs {
				shape = conv(fmt.Sprintf("%sconv%d", prefix, k+1), convs[k], shape)
				bn(fmt.Sprintf("%sbn%d", prefix, k+1), bns[k], shape)
			}
			if ds != nil {
				out := conv(prefix+"downsample.0", ds.Layers[0].Module.(*nn.Conv2d), in)
				if len(ds.Layers) > 1 {
					bn(prefix+"downsample.1", ds.Layers[1].Module.(*nn.BatchNorm2d), out)
				}
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if m.FC != nil {
		rows = append(rows, LayerInfo{"avgpool", "AdaptiveAvgPool2d", []int{shape[1], 1, 1}, 0, 0})
		rows = append(rows, LayerInfo{"fc", "Linear", []int{m.FC.Out}, nn.NumParams(m.FC), int64(m.FC.In * m.FC.Out)})
	}
	return rows, nil
}
