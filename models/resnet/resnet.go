// Package resnet builds the ResNet family with torchvision's structure and
// parameter names: ResNet-18/34/50/101/152, ResNeXt, Wide ResNet, the CIFAR
// networks ResNet-20/32/44/56/110 of the paper, and plain twins without
// shortcuts for the degradation experiment.
package resnet

import (
	"fmt"
	"math/rand/v2"
	"slices"
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
	// Bottleneck is 1x1 reduce, 3x3, 1x1 expand (expansion 4).
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
}

var imagenetWidths = []int{64, 128, 256, 512}
var cifarWidths = []int{16, 32, 64}

// Architectures are the networks resgo builds, by torchvision's name.
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
	//               block        blocks per stage         widths          groups, width per group
	"resnet18":         {Basic, []int{2, 2, 2, 2}, imagenetWidths, 1, 64, false, false},
	"resnet34":         {Basic, []int{3, 4, 6, 3}, imagenetWidths, 1, 64, false, false},
	"resnet50":         {Bottleneck4, []int{3, 4, 6, 3}, imagenetWidths, 1, 64, false, false},
	"resnet101":        {Bottleneck4, []int{3, 4, 23, 3}, imagenetWidths, 1, 64, false, false},
	"resnet152":        {Bottleneck4, []int{3, 8, 36, 3}, imagenetWidths, 1, 64, false, false},
	"resnext50_32x4d":  {Bottleneck4, []int{3, 4, 6, 3}, imagenetWidths, 32, 4, false, false},
	"resnext101_32x8d": {Bottleneck4, []int{3, 4, 23, 3}, imagenetWidths, 32, 8, false, false},
	"resnext101_64x4d": {Bottleneck4, []int{3, 4, 23, 3}, imagenetWidths, 64, 4, false, false},
	"wide_resnet50_2":  {Bottleneck4, []int{3, 4, 6, 3}, imagenetWidths, 1, 128, false, false},
	"wide_resnet101_2": {Bottleneck4, []int{3, 4, 23, 3}, imagenetWidths, 1, 128, false, false},

	"resnet20":  {Basic, []int{3, 3, 3}, cifarWidths, 1, 64, true, false},
	"resnet32":  {Basic, []int{5, 5, 5}, cifarWidths, 1, 64, true, false},
	"resnet44":  {Basic, []int{7, 7, 7}, cifarWidths, 1, 64, true, false},
	"resnet56":  {Basic, []int{9, 9, 9}, cifarWidths, 1, 64, true, false},
	"resnet110": {Basic, []int{18, 18, 18}, cifarWidths, 1, 64, true, false},

	"plain20":  {Basic, []int{3, 3, 3}, cifarWidths, 1, 64, true, true},
	"plain32":  {Basic, []int{5, 5, 5}, cifarWidths, 1, 64, true, true},
	"plain44":  {Basic, []int{7, 7, 7}, cifarWidths, 1, 64, true, true},
	"plain56":  {Basic, []int{9, 9, 9}, cifarWidths, 1, 64, true, true},
	"plain110": {Basic, []int{18, 18, 18}, cifarWidths, 1, 64, true, true},
	"plain18":  {Basic, []int{2, 2, 2, 2}, imagenetWidths, 1, 64, false, true},
	"plain34":  {Basic, []int{3, 4, 6, 3}, imagenetWidths, 1, 64, false, true},
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
	BN1     *nn.BatchNorm2d
	MaxPool *nn.MaxPool2d // nil with a small stem
	Layers  []*nn.Sequential
	AvgPool *nn.AdaptiveAvgPool2d // nil without the top
	Flatten *nn.Flatten
	FC      *nn.Linear // nil without the top

	b         backend.Backend
	training  bool
	chain     []nn.Module      // the modules in forward order, for Backward
	stageEnds []int            // indices in chain of the stem's and each stage's last module
	stageOut  []*tensor.Tensor // outputs of the stem and of each stage, last Forward
	scratch   [2]tensor.Tensor // the fused blocks' intermediate activations
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
	return build(b, name, arch, opt)
}

func build(b backend.Backend, name string, arch Arch, opt Options) (*Model, error) {
	m := &Model{Name: name, Arch: arch, Options: opt, b: b, training: true}
	var err error
	// The stem: conv1, bn1, relu, maxpool.
	stemWidth := arch.Widths[0]
	if arch.SmallStem {
		m.Conv1, err = nn.NewConv2d(b, opt.InChannels, stemWidth, 3, 1, 1, 1, false)
	} else {
		m.Conv1, err = nn.NewConv2d(b, opt.InChannels, stemWidth, 7, 2, 3, 1, false)
		m.MaxPool = nn.NewMaxPool2d(b, 3, 2, 1)
	}
	if err != nil {
		return nil, err
	}
	m.BN1 = nn.NewBatchNorm2d(b, stemWidth)
	m.chain = append(m.chain, &stem{conv: m.Conv1, bn: m.BN1})
	if m.MaxPool != nil {
		m.chain = append(m.chain, m.MaxPool)
	}
	m.stageEnds = append(m.stageEnds, len(m.chain)-1)

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
				blk, err = newBasicBlock(b, in, planes, stride, arch.Plain)
			} else {
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
			m.chain = append(m.chain, blk)
			in, stride = planes*arch.Block.Expansion(), 1
		}
		m.Layers = append(m.Layers, stage)
		m.stageEnds = append(m.stageEnds, len(m.chain)-1)
	}

	// The top: average pool, flatten, fc.
	if opt.IncludeTop {
		m.AvgPool = nn.NewAdaptiveAvgPool2d(b)
		m.Flatten = nn.NewFlatten()
		if m.FC, err = nn.NewLinear(b, in, opt.NumClasses); err != nil {
			return nil, err
		}
		m.chain = append(m.chain, m.AvgPool, m.Flatten, m.FC)
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
func (m *Model) Init(seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x7e5e7))
	for _, c := range nn.Modules(m) {
		switch l := c.Module.(type) {
		case *nn.Conv2d:
			nn.InitKaimingNormal(l, r)
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
	m.chain[len(m.chain)-1] = fc
	m.Options.NumClasses = k
	return nil
}

// Backend returns the backend the model runs on.
func (m *Model) Backend() backend.Backend { return m.b }

// Children returns conv1, bn1, maxpool, layer1..layerK, avgpool, fc.
func (m *Model) Children() []nn.Child {
	cs := []nn.Child{{Name: "conv1", Module: m.Conv1}, {Name: "bn1", Module: m.BN1}}
	if m.MaxPool != nil {
		cs = append(cs, nn.Child{Name: "maxpool", Module: m.MaxPool})
	}
	for i, st := range m.Layers {
		cs = append(cs, nn.Child{Name: fmt.Sprintf("layer%d", i+1), Module: st})
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
// last stage's feature map without the top.
//
// In evaluation mode, and in training mode for a frozen prefix of the
// network (transfer learning), every BN is folded into the convolution
// before it and ReLU and the residual add are fused into the convolution:
// the fast inference path. Elsewhere the layers run one by one and keep what
// Backward needs.
func (m *Model) Forward(x *tensor.Tensor) *tensor.Tensor {
	m.stageOut = m.stageOut[:0]
	prefix := true // still in a part that needs no backward pass
	for i, mod := range m.chain {
		prefix = prefix && (!m.training || !nn.Trainable(mod)) && runningStatsOnly(mod)
		switch l := mod.(type) {
		case *stem:
			l.fused = prefix
		case block:
			l.setFused(prefix)
		}
		x = mod.Forward(x)
		if slices.Contains(m.stageEnds, i) {
			m.stageOut = append(m.stageOut, x)
		}
	}
	return x
}

// StageOutputs returns the outputs of the last Forward after the stem
// (after max pooling) and after each stage (layer1..layerK). They are
// overwritten by the next Forward.
func (m *Model) StageOutputs() []*tensor.Tensor { return m.stageOut }

// Backward computes the gradients of all trainable parameters from the
// gradient of the loss with respect to the logits (or to the feature map,
// without the top, which it then overwrites). Frozen stages at the start of
// the network are skipped entirely.
func (m *Model) Backward(dy *tensor.Tensor, needInput bool) *tensor.Tensor {
	return nn.BackwardChain(m.chain, dy, needInput)
}

// runningStatsOnly reports whether every batch norm in mod normalizes with
// running statistics (evaluation mode or frozen).
func runningStatsOnly(mod nn.Module) bool {
	for _, c := range nn.Modules(mod) {
		if bn, ok := c.Module.(*nn.BatchNorm2d); ok && bn.UsesBatchStats() {
			return false
		}
	}
	return true
}

// stem is conv1 -> bn1 -> relu as one module of the forward chain.
type stem struct {
	conv  *nn.Conv2d
	bn    *nn.BatchNorm2d
	fused bool
}

func (s *stem) Forward(x *tensor.Tensor) *tensor.Tensor {
	if s.fused {
		return s.conv.ForwardFolded(x, s.bn, nil, true)
	}
	return s.bn.ForwardReLU(s.conv.Forward(x), true)
}

func (s *stem) Backward(dy *tensor.Tensor, needInput bool) *tensor.Tensor {
	return nn.BackwardChain([]nn.Module{s.conv, s.bn}, dy, needInput)
}

func (s *stem) Vars() []*nn.Var { return nil }

func (s *stem) Children() []nn.Child {
	return []nn.Child{{Name: "conv1", Module: s.conv}, {Name: "bn1", Module: s.bn}}
}

func (s *stem) SetTraining(bool) {}
