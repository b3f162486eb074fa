package resnet

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// maxStages, maxBlocks and maxChannels bound what InferArch reads from
// tensor names and shapes: resgo's networks have at most 4 stages, 36
// blocks in a stage (resnet152's layer3) and 2048 channels in a
// convolution, so a name such as "layer1.999999999.conv1.weight" is
// refused instead of looked for block by block, and a shape of 2^62
// channels instead of overflowing the arithmetic of widths.
const (
	maxStages   = 8
	maxBlocks   = 256
	maxChannels = 1 << 16
)

// InferArch works out which of Architectures a state dict holds, and the
// options to build it with, from its tensors' names and shapes alone
// (torchvision's names: conv1, bn1, layer1.0.conv1, ..., fc), never from a
// file's name:
//
//   - the stages and their blocks from the names layerK.J.*;
//   - Basic or Bottleneck blocks from the presence of layer1.0.conv3;
//   - each stage's planes from its first block's conv1 (Basic) or conv3
//     (Bottleneck, planes x 4), and ResNeXt's groups and Wide ResNet's
//     width per group from the 3x3 conv2 of a Bottleneck: [width,
//     width/groups, 3, 3] with width = planes x widthPerGroup / 64 x groups;
//   - a plain twin from the absence of every downsample where a stage
//     changes width or size, where a ResNet has its projection shortcut;
//   - a network without batch normalization from conv1.bias and no bn1;
//   - the input channels and the small stem from conv1 ([64, C, 7, 7] or
//     [16, C, 3, 3]), and the classes from fc.weight ([K, features]).
//
// shapes maps every tensor's name to its shape (num_batches_tracked and
// other names that say nothing about the structure may be there too). The
// error, for weights that are not a ResNet or not one resgo builds, says
// what was found. Options.IncludeTop is set when there is an fc layer;
// Seed and ZeroInitResidual are left zero.
func InferArch(shapes map[string][]int) (string, Options, error) {
	var opt Options
	stem, ok := shapes["conv1.weight"]
	if !ok {
		return "", opt, fmt.Errorf("resnet: no conv1.weight among the %d tensors: not a ResNet state dict under torchvision's names", len(shapes))
	}
	if len(stem) != 4 || stem[2] != stem[3] || (stem[2] != 3 && stem[2] != 7) || stem[0] < 1 || stem[0] > maxChannels {
		return "", opt, fmt.Errorf("resnet: conv1.weight has shape %v, a ResNet's stem has [width, channels, 7, 7] (or 3, 3 for small images)", stem)
	}
	stemWidth, smallStem := stem[0], stem[2] == 3
	opt.InChannels = stem[1]

	blocks, err := countBlocks(shapes)
	if err != nil {
		return "", opt, err
	}
	kind := Basic
	if _, ok := shapes["layer1.0.conv3.weight"]; ok {
		kind = Bottleneck4
	}
	found := Arch{Block: kind, Blocks: blocks, Groups: 1, WidthPerGroup: 64, SmallStem: smallStem}
	// Where a stage's first block changes the width or the size, a ResNet
	// has a downsample (the projection shortcut) and a plain twin has none.
	withShortcut, withoutShortcut := 0, 0
	in := stemWidth
	for i := range blocks {
		first := fmt.Sprintf("layer%d.0.", i+1)
		planes, groups, perGroup, err := blockWidths(shapes, first, kind)
		if err != nil {
			return "", opt, err
		}
		if i == 0 {
			if stemWidth != planes {
				return "", opt, fmt.Errorf("resnet: conv1.weight has %d output channels, layer1 %d planes: resgo's ResNets have a stem as wide as layer1", stemWidth, planes)
			}
			found.Groups, found.WidthPerGroup = groups, perGroup
		} else if groups != found.Groups || perGroup != found.WidthPerGroup {
			return "", opt, fmt.Errorf("resnet: %sconv2 has %d groups of width %d, layer1.0.conv2 %d groups of width %d: not one of torchvision's ResNets",
				first, groups, perGroup, found.Groups, found.WidthPerGroup)
		}
		found.Widths = append(found.Widths, planes)
		out := planes * kind.Expansion()
		if i > 0 || in != out {
			if _, ok := shapes[first+"downsample.0.weight"]; ok {
				withShortcut++
			} else {
				withoutShortcut++
			}
		}
		in = out
	}
	if withShortcut > 0 && withoutShortcut > 0 {
		return "", opt, fmt.Errorf("resnet: %d stages start with a downsample and %d without one: neither a ResNet nor its plain twin", withShortcut, withoutShortcut)
	}
	found.Plain = withoutShortcut > 0
	// Without batch normalization the convolutions have biases and there
	// is no bn1.
	_, hasBN := shapes["bn1.weight"]
	_, stemBias := shapes["conv1.bias"]
	found.NoBN = stemBias && !hasBN

	if fc, ok := shapes["fc.weight"]; ok {
		features := found.Widths[len(found.Widths)-1] * kind.Expansion()
		if len(fc) != 2 || fc[1] != features || fc[0] < 1 {
			return "", opt, fmt.Errorf("resnet: fc.weight has shape %v, the last stage gives %d features: want [classes, %d]", fc, features, features)
		}
		opt.IncludeTop, opt.NumClasses = true, fc[0]
	}

	for _, name := range Names() {
		a := Architectures[name]
		if a.Block != found.Block || a.Plain != found.Plain || a.NoBN != found.NoBN || a.Groups != found.Groups || a.WidthPerGroup != found.WidthPerGroup ||
			!slices.Equal(a.Blocks, found.Blocks) || !slices.Equal(a.Widths, found.Widths) {
			continue
		}
		if a.SmallStem && !smallStem {
			return "", opt, fmt.Errorf("resnet: the stages of %s with a 7x7 stem: %s has a 3x3 stem (conv1.weight %v)", name, name, stem)
		}
		opt.SmallStem = smallStem && !a.SmallStem
		return name, opt, nil
	}
	return "", opt, fmt.Errorf("resnet: the weights are %s: none of resgo's architectures (%s)", describe(found), strings.Join(Names(), ", "))
}

// countBlocks returns the number of blocks of each stage, from the names
// "layerK.J.conv1.weight": stages numbered from 1 and blocks from 0
// without gaps.
func countBlocks(shapes map[string][]int) ([]int, error) {
	last := map[int]int{} // stage number: its highest block number
	for name := range shapes {
		rest, ok := strings.CutPrefix(name, "layer")
		if !ok {
			continue
		}
		parts := strings.SplitN(rest, ".", 3)
		if len(parts) < 3 {
			continue
		}
		stage, err1 := strconv.Atoi(parts[0])
		blk, err2 := strconv.Atoi(parts[1])
		if err1 != nil || err2 != nil || stage < 1 || blk < 0 {
			continue // not a block's tensor; loading reports it
		}
		if stage > maxStages || blk >= maxBlocks {
			return nil, fmt.Errorf("resnet: a tensor named %s: more stages (%d) or blocks (%d) than a ResNet has", name, maxStages, maxBlocks)
		}
		last[stage] = max(last[stage], blk)
	}
	if len(last) == 0 {
		return nil, fmt.Errorf("resnet: no layer1.0.* tensors: not a ResNet state dict under torchvision's names")
	}
	blocks := make([]int, len(last))
	for i := range blocks {
		n, ok := last[i+1]
		if !ok {
			return nil, fmt.Errorf("resnet: tensors of %d stages but none of layer%d", len(last), i+1)
		}
		for j := 0; j <= n; j++ {
			if _, ok := shapes[fmt.Sprintf("layer%d.%d.conv1.weight", i+1, j)]; !ok {
				return nil, fmt.Errorf("resnet: layer%d has tensors of block %d but no layer%d.%d.conv1.weight", i+1, n, i+1, j)
			}
		}
		blocks[i] = n + 1
	}
	return blocks, nil
}

// blockWidths reads a stage's planes, groups and width per group from the
// convolutions of its first block, whose names start with prefix.
func blockWidths(shapes map[string][]int, prefix string, kind BlockKind) (planes, groups, perGroup int, err error) {
	conv := func(n int) ([]int, error) {
		name := fmt.Sprintf("%sconv%d.weight", prefix, n)
		s, ok := shapes[name]
		if !ok {
			return nil, fmt.Errorf("resnet: no %s", name)
		}
		if len(s) != 4 || s[0] < 1 || s[1] < 1 || s[0] > maxChannels || s[1] > maxChannels {
			return nil, fmt.Errorf("resnet: %s has shape %v, want a convolution's [out, in, k, k] with 1 to %d channels", name, s, maxChannels)
		}
		return s, nil
	}
	if kind == Basic {
		c1, err := conv(1)
		if err != nil {
			return 0, 0, 0, err
		}
		return c1[0], 1, 64, nil
	}
	c2, err := conv(2)
	if err != nil {
		return 0, 0, 0, err
	}
	c3, err := conv(3)
	if err != nil {
		return 0, 0, 0, err
	}
	width := c2[0]
	if c3[0]%4 != 0 || width%c2[1] != 0 {
		return 0, 0, 0, fmt.Errorf("resnet: %sconv2.weight %v and conv3.weight %v are not a Bottleneck's (out = 4 x planes, groups dividing the width)", prefix, c2, c3)
	}
	planes, groups = c3[0]/4, width/c2[1]
	if width*64%(planes*groups) != 0 {
		return 0, 0, 0, fmt.Errorf("resnet: %sconv2.weight %v: a width of %d in %d groups for %d planes is not a whole width per group", prefix, c2, width, groups, planes)
	}
	return planes, groups, width * 64 / (planes * groups), nil
}

// describe says what an architecture is, for errors about weights that
// are none of resgo's.
func describe(a Arch) string {
	block := "BasicBlock"
	if a.Block == Bottleneck4 {
		block = "Bottleneck"
	}
	s := fmt.Sprintf("%s stages of %v blocks at %v planes", block, a.Blocks, a.Widths)
	if a.Groups != 1 || a.WidthPerGroup != 64 {
		s += fmt.Sprintf(", %d groups of width %d", a.Groups, a.WidthPerGroup)
	}
	if a.Plain {
		s += ", without shortcuts"
	}
	if a.NoBN {
		s += ", without batch normalization"
	}
	if a.SmallStem {
		s += ", a 3x3 stem"
	}
	return s
}
