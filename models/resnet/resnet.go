// Package resnet builds the ResNet family with torchvision's structure and
// parameter names: ResNet-18/34/50/101/152, ResNeXt, Wide ResNet, the CIFAR
// networks ResNet-20/32/44/56/110 of the paper, and plain twins without
// shortcuts for the degradation experiment.
package resnet

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
)

// BlockKind is the residual block a network is made of.
type BlockKind int

const (
	// Basic is two 3x3 convolutions (expansion 1).
	Basic BlockKind = iota
	// Bottleneck4 is the Bottleneck block: 1x1 reduce, 3x3, 1x1 expand
	// (expansion 4).
	Bottleneck4
)

// Expansion returns how many times the stage width a block outputs.
func (k BlockKind) Expansion() int {
	if k == Bottleneck4 {
		return 4
	}
	return 1
}

// Arch is the shape of a network: its block, the number of blocks in each
// stage, and the width of each stage.
type Arch struct {
	Block         BlockKind
	Blocks        []int // blocks per stage
	Widths        []int // planes per stage; a stage outputs planes*expansion channels
	Groups        int   // ResNeXt cardinality (1 otherwise)
	WidthPerGroup int   // ResNeXt bottleneck width (64 otherwise; 128 for Wide ResNet)
	SmallStem     bool  // 3x3 stride-1 stem without max pooling (CIFAR-style)
	Plain         bool  // no shortcuts
	// NoBN leaves out batch normalization: every BN is the identity and
	// every convolution has a bias instead (the BN paper's baseline).
	NoBN bool
}

var imagenetWidths = []int{64, 128, 256, 512}
var cifarWidths = []int{16, 32, 64}

// Architectures are the networks resgo builds, by torchvision's name.
// (resnet20_nobn is resgo's own: ResNet-20 without batch normalization.)
//
// The ImageNet networks follow the paper's Table 1: a 7x7/2 stem with 64
// channels and a 3x3/2 max pool, then conv2_x..conv5_x (torchvision's
// layer1..layer4) at 64, 128, 256 and 512 planes, the last three starting
// with stride 2.
//
// The CIFAR networks follow the paper's section 4.2: a 3x3 stem with 16
// channels, three stages of n basic blocks at 16, 32 and 64 planes, 6n+2
// layers in all. Where a stage changes size, the shortcut is the dashed 1x1
// projection (option B), as in the ImageNet networks.
var Architectures = map[string]Arch{
	"resnet18":         {Block: Basic, Blocks: []int{2, 2, 2, 2}, Widths: imagenetWidths, Groups: 1, WidthPerGroup: 64},
	"resnet34":         {Block: Basic, Blocks: []int{3, 4, 6, 3}, Widths: imagenetWidths, Groups: 1, WidthPerGroup: 64},
	"resnet50":         {Block: Bottleneck4, Blocks: []int{3, 4, 6, 3}, Widths: imagenetWidths, Groups: 1, WidthPerGroup: 64},
	"resnet101":        {Block: Bottleneck4, Blocks: []int{3, 4, 23, 3}, Widths: imagenetWidths, Groups: 1, WidthPerGroup: 64},
	"resnet152":        {Block: Bottleneck4, Blocks: []int{3, 8, 36, 3}, Widths: imagenetWidths, Groups: 1, WidthPerGroup: 64},
	"resnext50_32x4d":  {Block: Bottleneck4, Blocks: []int{3, 4, 6, 3}, Widths: imagenetWidths, Groups: 32, WidthPerGroup: 4},
	"resnext101_32x8d": {Block: Bottleneck4, Blocks: []int{3, 4, 23, 3}, Widths: imagenetWidths, Groups: 32, WidthPerGroup: 8},
	"resnext101_64x4d": {Block: Bottleneck4, Blocks: []int{3, 4, 23, 3}, Widths: imagenetWidths, Groups: 64, WidthPerGroup: 4},
	"wide_resnet50_2":  {Block: Bottleneck4, Blocks: []int{3, 4, 6, 3}, Widths: imagenetWidths, Groups: 1, WidthPerGroup: 128},
	"wide_resnet101_2": {Block: Bottleneck4, Blocks: []int{3, 4, 23, 3}, Widths: imagenetWidths, Groups: 1, WidthPerGroup: 128},

	"resnet20":  {Block: Basic, Blocks: []int{3, 3, 3}, Widths: cifarWidths, Groups: 1, WidthPerGroup: 64, SmallStem: true},
	"resnet32":  {Block: Basic, Blocks: []int{5, 5, 5}, Widths: cifarWidths, Groups: 1, WidthPerGroup: 64, SmallStem: true},
	"resnet44":  {Block: Basic, Blocks: []int{7, 7, 7}, Widths: cifarWidths, Groups: 1, WidthPerGroup: 64, SmallStem: true},
	"resnet56":  {Block: Basic, Blocks: []int{9, 9, 9}, Widths: cifarWidths, Groups: 1, WidthPerGroup: 64, SmallStem: true},
	"resnet110": {Block: Basic, Blocks: []int{18, 18, 18}, Widths: cifarWidths, Groups: 1, WidthPerGroup: 64, SmallStem: true},

	"plain20":  {Block: Basic, Blocks: []int{3, 3, 3}, Widths: cifarWidths, Groups: 1, WidthPerGroup: 64, SmallStem: true, Plain: true},
	"plain32":  {Block: Basic, Blocks: []int{5, 5, 5}, Widths: cifarWidths, Groups: 1, WidthPerGroup: 64, SmallStem: true, Plain: true},
	"plain44":  {Block: Basic, Blocks: []int{7, 7, 7}, Widths: cifarWidths, Groups: 1, WidthPerGroup: 64, SmallStem: true, Plain: true},
	"plain56":  {Block: Basic, Blocks: []int{9, 9, 9}, Widths: cifarWidths, Groups: 1, WidthPerGroup: 64, SmallStem: true, Plain: true},
	"plain110": {Block: Basic, Blocks: []int{18, 18, 18}, Widths: cifarWidths, Groups: 1, WidthPerGroup: 64, SmallStem: true, Plain: true},
	"plain18":  {Block: Basic, Blocks: []int{2, 2, 2, 2}, Widths: imagenetWidths, Groups: 1, WidthPerGroup: 64, Plain: true},
	"plain34":  {Block: Basic, Blocks: []int{3, 4, 6, 3}, Widths: imagenetWidths, Groups: 1, WidthPerGroup: 64, Plain: true},

	// ResNet-20 without batch normalization, for the comparison with it:
	// its state dict has conv biases (conv1.bias, layer1.0.conv1.bias,
	// ..., layer2.0.downsample.0.bias) and no bn tensors.
	"resnet20_nobn": {Block: Basic, Blocks: []int{3, 3, 3}, Widths: cifarWidths, Groups: 1, WidthPerGroup: 64, SmallStem: true, NoBN: true},
}

// Names returns the architecture names, sorted.
func Names() []string {
	names := make([]string, 0, len(Architectures))
	for n := range Architectures {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Options are the builder's settings beside the architecture.
type Options struct {
	NumClasses       int  // 1000 when 0
	InChannels       int  // 3 when 0
	IncludeTop       bool // with average pooling and the fc layer
	ZeroInitResidual bool // zero the last BN's gamma of every block
	// SmallStem replaces the ImageNet stem (7x7/2 conv and max pool) with a
	// 3x3 stride-1 conv and no pooling, for 28x28 and 32x32 images.
	SmallStem bool
	Seed      uint64 // weight initialization seed
}

// Model is a ResNet. Its state is named as torchvision's: conv1, bn1,
// layer1..layerK (blocks "0", "1", ...), fc.
type Model struct {
	Name    string
	Arch    Arch
	Options Options

	Conv1   *nn.Conv2d
	BN1     *nn.BatchNorm2d // nil without BN (Arch.NoBN)
	MaxPool *nn.MaxPool2d   // nil with a small stem
	Layers  []*nn.Sequential
	AvgPool *nn.AdaptiveAvgPool2d // nil without the top
	Flatten *nn.Flatten
	FC      *nn.Linear // nil without the top

	b          backend.Backend
	training   bool
	relu       *nn.ReLU         // the stem's ReLU without BN (with BN, bn1 applies it)
	stageNames []string         // "layer1".."layerK", the stages' names in Children
	stageOut   []*tensor.Tensor // outputs of the stem and of each stage, last Forward
	scratch    [2]tensor.Tensor // the fused blocks' intermediate activations
}

// New builds the named architecture with freshly initialized weights.
func New(b backend.Backend, name string, opt Options) (*Model, error) {
	arch, ok := Architectures[name]
	if !ok {
		return nil, fmt.Errorf("resnet: unknown architecture %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	if opt.NumClasses == 0 {
		opt.NumClasses = 1000
	}
	if opt.InChannels == 0 {
		opt.InChannels = 3
	}
	if opt.SmallStem {
		arch.SmallStem = true
	}
	if opt.ZeroInitResidual && arch.NoBN {
		return nil, fmt.Errorf("resnet: %s has no batch normalization whose gamma ZeroInitResidual could zero", name)
	}
	return build(b, name, arch, opt)
}

func build(b backend.Backend, name string, arch Arch, opt Options) (*Model, error) {
	m := &Model{Name: name, Arch: arch, Options: opt, b: b, training: true}
	var err error
	// The stem: conv1, bn1, relu, maxpool.
	stemWidth := arch.Widths[0]
	bias := arch.NoBN // without BN, the convolutions have biases
	if arch.SmallStem {
		m.Conv1, err = nn.NewConv2d(b, opt.InChannels, stemWidth, 3, 1, 1, 1, bias)
	} else {
		m.Conv1, err = nn.NewConv2d(b, opt.InChannels, stemWidth, 7, 2, 3, 1, bias)
		m.MaxPool = nn.NewMaxPool2d(b, 3, 2, 1)
	}
	if err != nil {
		return nil, err
	}
	if arch.NoBN {
		m.relu = nn.NewReLU(b)
	} else {
		m.BN1 = nn.NewBatchNorm2d(b, stemWidth)
	}

	// The stages: the first block of every stage but the first has stride 2.
	in := stemWidth
	for i, n := range arch.Blocks {
		planes, stride := arch.Widths[i], 2
		if i == 0 {
			stride = 1
		}
		stage := &nn.Sequential{}
		for j := range n {
			var blk block
			if arch.Block == Basic {
				if arch.Groups != 1 || arch.WidthPerGroup != 64 {
					return nil, fmt.Errorf("resnet: BasicBlock only supports groups=1 and width_per_group=64")
				}
				blk, err = newBasicBlock(b, in, planes, stride, arch.Plain, arch.NoBN)
			} else {
				if arch.NoBN {
					return nil, fmt.Errorf("resnet: %s: only BasicBlock networks are built without BN", name)
				}
				blk, err = newBottleneck(b, in, planes, stride, arch.Groups, arch.WidthPerGroup, arch.Plain)
			}
			if err != nil {
				return nil, fmt.Errorf("resnet: %s layer%d.%d: %w", name, i+1, j, err)
			}
			// Every block but a stage's first reads the output of the block
			// before it in its stage, which nothing else reads.
			blk.shared().inputReusable = j > 0
			blk.shared().scratch = &m.scratch
			stage.Layers = append(stage.Layers, nn.Child{Name: fmt.Sprint(j), Module: blk})
			in, stride = planes*arch.Block.Expansion(), 1
		}
		m.Layers = append(m.Layers, stage)
		m.stageNames = append(m.stageNames, fmt.Sprintf("layer%d", i+1))
	}

	// The top: average pool, flatten, fc.
	if opt.IncludeTop {
		m.AvgPool = nn.NewAdaptiveAvgPool2d(b)
		m.Flatten = nn.NewFlatten()
		if m.FC, err = nn.NewLinear(b, in, opt.NumClasses); err != nil {
			return nil, err
		}
	}
	m.Init(opt.Seed)
	return m, nil
}

// FeatureChannels returns the number of channels of the last stage's
// output (512 for ResNet-18/34, 2048 for ResNet-50 and up).
func (m *Model) FeatureChannels() int {
	return m.Arch.Widths[len(m.Arch.Widths)-1] * m.Arch.Block.Expansion()
}

// Init initializes the weights as torchvision does: Kaiming normal
// (fan_out, ReLU) for convolutions, gamma 1 and beta 0 for BN (gamma 0 for
// each block's last BN with ZeroInitResidual), PyTorch's default for fc.
// The convolutions' biases of a network without BN start at 0.
func (m *Model) Init(seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x7e5e7))
	for _, c := range nn.Modules(m) {
		switch l := c.Module.(type) {
		case *nn.Conv2d:
			nn.InitKaimingNormal(l, r)
			if l.Bias != nil {
				l.Bias.Value.Fill(0)
			}
		case *nn.BatchNorm2d:
			nn.InitBatchNorm(l, 1)
		case *nn.Linear:
			nn.InitLinear(l, r)
		}
	}
	if m.Options.ZeroInitResidual {
		for _, st := range m.Layers {
			for _, c := range st.Layers {
				switch blk := c.Module.(type) {
				case *BasicBlock:
					nn.InitBatchNorm(blk.BN2, 0)
				case *Bottleneck:
					nn.InitBatchNorm(blk.BN3, 0)
				}
			}
		}
	}
}

// ReplaceHead gives the model a new, freshly initialized fc layer with k
// outputs (the tutorial's net.fc = nn.Linear(net.fc.in_features, 5)).
func (m *Model) ReplaceHead(k int, seed uint64) error {
	if m.FC == nil {
		return fmt.Errorf("resnet: %s was built without its top (include_top=false)", m.Name)
	}
	fc, err := nn.NewLinear(m.b, m.FC.In, k)
	if err != nil {
		return err
	}
	nn.InitLinear(fc, rand.New(rand.NewPCG(seed, 0xfc)))
	m.FC = fc
	m.Options.NumClasses = k
	return nil
}

// Backend returns the backend the model runs on.
func (m *Model) Backend() backend.Backend { return m.b }

// Children returns conv1, bn1 (relu without BN), maxpool, layer1..layerK,
// avgpool, fc.
func (m *Model) Children() []nn.Child {
	cs := []nn.Child{{Name: "conv1", Module: m.Conv1}, {Name: "bn1", Module: m.BN1}}
	if m.BN1 == nil {
		cs[1] = nn.Child{Name: "relu", Module: m.relu}
	}
	if m.MaxPool != nil {
		cs = append(cs, nn.Child{Name: "maxpool", Module: m.MaxPool})
	}
	for i, st := range m.Layers {
		cs = append(cs, nn.Child{Name: m.stageNames[i], Module: st})
	}
	if m.FC != nil {
		cs = append(cs, nn.Child{Name: "avgpool", Module: m.AvgPool}, nn.Child{Name: "fc", Module: m.FC})
	}
	return cs
}

// Vars returns nil: the state belongs to the children.
func (m *Model) Vars() []*nn.Var { return nil }

// SetTraining records the mode; use nn.SetTraining(m, ...) to switch the
// whole model, as PyTorch's model.train() and model.eval().
func (m *Model) SetTraining(training bool) { m.training = training }

// Forward computes the logits [N, classes] for images x [N, C, H, W], or the
// last stage's feature map without the top, as torchvision's
// ResNet.forward: conv1, bn1, relu, maxpool, layer1..layerK, then avgpool,
// flatten and fc.
//
// In evaluation mode, and in training mode for a frozen prefix of the
// network (transfer learning), every BN is folded into the convolution
// before it and ReLU and the residual add are fused into the convolution:
// the fast inference path. Elsewhere the layers run one by one and keep what
// Backward needs.
func (m *Model) Forward(x *tensor.Tensor) *tensor.Tensor {
	var at string // the child running, to name it in an error
	defer backend.InLayer(&at)
	m.stageOut = m.stageOut[:0]

	// fused: the network so far needs no backward pass (and has BN to
	// fold: the fused path folds BN into the convolutions).
	fused := !m.Arch.NoBN && m.inferenceOnly(m.Conv1) && m.inferenceOnly(m.BN1)
	at = "conv1"
	switch {
	case fused:
		x = m.Conv1.ForwardFolded(x, m.BN1, nil, true) // bn1 and relu folded in
	case m.BN1 == nil:
		x = m.Conv1.Forward(x)
		at = "relu"
		x = m.relu.Forward(x)
	default:
		x = m.Conv1.Forward(x)
		at = "bn1"
		x = m.BN1.ForwardReLU(x, true) // bn1, then relu
	}
	if m.MaxPool != nil {
		at = "maxpool"
		x = m.MaxPool.Forward(x)
	}
	m.stageOut = append(m.stageOut, x)

	for i, stage := range m.Layers {
		fused = m.fuse(stage, fused)
		at = m.stageNames[i]
		x = stage.Forward(x)
		m.stageOut = append(m.stageOut, x)
	}

	if m.FC != nil {
		at = "avgpool"
		x = m.AvgPool.Forward(x)
		at = "" // torch.flatten: no module of the state dict
		x = m.Flatten.Forward(x)
		at = "fc"
		x = m.FC.Forward(x)
	}
	return x
}

// fuse sets the fused inference path on the blocks of stage that, like
// everything before them (fused), need no backward pass and have no branch
// probe (the fused path has no branch output to show), and reports whether
// that still holds after the stage.
func (m *Model) fuse(stage *nn.Sequential, fused bool) bool {
	for _, c := range stage.Layers {
		blk := c.Module.(block)
		fused = fused && m.inferenceOnly(blk) && blk.shared().probe == nil
		blk.setFused(fused)
	}
	return fused
}

// inferenceOnly reports whether mod needs no backward pass: in evaluation
// mode, or without trainable parameters, and with every batch norm in it
// normalizing with running statistics.
func (m *Model) inferenceOnly(mod nn.Module) bool {
	return (!m.training || !nn.Trainable(mod)) && runningStatsOnly(mod)
}

// StageOutputs returns the outputs of the last Forward after the stem
// (after max pooling) and after each stage (layer1..layerK). They are
// overwritten by the next Forward.
func (m *Model) StageOutputs() []*tensor.Tensor { return m.stageOut }

// Backward computes the gradients of all trainable parameters from the
// gradient of the loss with respect to the logits (or to the feature map,
// without the top, which it then overwrites): Forward's steps in reverse.
// Frozen stages at the start of the network are skipped entirely (see
// nn.Backprop).
func (m *Model) Backward(dy *tensor.Tensor, needInput bool) *tensor.Tensor {
	var at string // the child running, to name it in an error
	defer backend.InLayer(&at)
	bp := nn.NewBackprop(needInput, m)

	if m.FC != nil {
		at = "fc"
		dy = bp.Step(m.FC, dy)
		at = ""
		dy = bp.Step(m.Flatten, dy)
		at = "avgpool"
		dy = bp.Step(m.AvgPool, dy)
	}

	for i := len(m.Layers) - 1; i >= 0; i-- {
		at = m.stageNames[i]
		dy = bp.Step(m.Layers[i], dy)
	}

	if m.MaxPool != nil {
		at = "maxpool"
		dy = bp.Step(m.MaxPool, dy)
	}
	if m.BN1 == nil {
		at = "relu"
		dy = bp.Step(m.relu, dy)
	} else {
		at = "bn1"
		dy = bp.Step(m.BN1, dy) // relu's mask included
	}
	at = "conv1"
	return bp.Step(m.Conv1, dy)
}

// BranchProbe receives the output of a block's residual branch: after its
// last BN, before the shortcut is added (and, in a plain block, before its
// ReLU): the residual function F(x) of the paper's section 4.2 (Fig. 7).
// index counts the blocks over the whole network from 0; name is the
// block's, such as "layer2.0". f is overwritten once the probe returns.
type BranchProbe func(index int, name string, f *tensor.Tensor)

// SetBranchProbe makes Forward in evaluation mode call probe with every
// block's branch output (see BranchProbe); nil removes it. With a probe,
// Forward runs the blocks layer by layer instead of the fused inference
// path. In training mode the probe is not called: measuring is for a
// trained network.
func (m *Model) SetBranchProbe(probe BranchProbe) {
	index := 0
	for i, st := range m.Layers {
		for _, c := range st.Layers {
			r := c.Module.(block).shared()
			r.probe = nil
			if probe != nil {
				idx, name := index, fmt.Sprintf("%s.%s", m.stageNames[i], c.Name)
				r.probe = func(f *tensor.Tensor) { probe(idx, name, f) }
			}
			index++
		}
	}
}

// runningStatsOnly reports whether every batch norm in mod normalizes with
// running statistics (evaluation mode or frozen).
func runningStatsOnly(mod nn.Module) bool {
	if bn, ok := mod.(*nn.BatchNorm2d); ok {
		return !bn.UsesBatchStats()
	}
	for _, c := range mod.Children() {
		if !runningStatsOnly(c.Module) {
			return false
		}
	}
	return true
}
