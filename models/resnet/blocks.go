package resnet

import (
	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
)

// A block is one residual unit of a stage: a BasicBlock or a Bottleneck.
type block interface {
	nn.Module
	// setFused makes the next forward passes run with BN folded into the
	// convolutions and ReLU and the residual add fused (evaluation only:
	// no backward pass is possible in this mode).
	setFused(bool)
	// shared returns the block's residual part.
	shared() *residual
}

// BasicBlock is the block of ResNet-18/34 and of the CIFAR networks:
// 3x3 conv (stride s) -> BN -> ReLU -> 3x3 conv -> BN, plus the shortcut,
// then ReLU. Its expansion is 1. Without BN (Arch.NoBN) the BN fields are
// nil and the convolutions have biases.
type BasicBlock struct {
	Conv1      *nn.Conv2d
	BN1        *nn.BatchNorm2d // nil without BN
	Conv2      *nn.Conv2d
	BN2        *nn.BatchNorm2d // nil without BN
	Downsample *nn.Sequential  // dashed shortcut, or nil
	Plain      bool            // no shortcut at all (the plain twin)

	// Without BN, the ReLUs that bn1 (and bn2 of a plain block) apply
	// with it; nil otherwise.
	relu1, relu2 *nn.ReLU

	fused bool
	residual
}

func newBasicBlock(b backend.Backend, in, planes, stride int, plain, noBN bool) (*BasicBlock, error) {
	blk := &BasicBlock{Plain: plain, residual: residual{b: b}}
	var err error
	if blk.Conv1, err = nn.NewConv2d(b, in, planes, 3, stride, 1, 1, noBN); err != nil {
		return nil, err
	}
	if blk.Conv2, err = nn.NewConv2d(b, planes, planes, 3, 1, 1, 1, noBN); err != nil {
		return nil, err
	}
	if noBN {
		blk.relu1 = nn.NewReLU(b)
		if plain {
			blk.relu2 = nn.NewReLU(b)
		}
	} else {
		blk.BN1, blk.BN2 = nn.NewBatchNorm2d(b, planes), nn.NewBatchNorm2d(b, planes)
	}
	if blk.Downsample, err = newDownsample(b, in, planes, stride, plain, noBN); err != nil {
		return nil, err
	}
	return blk, nil
}

// Children returns conv1, bn1, conv2, bn2 and downsample, as torchvision;
// without BN conv1, relu1, conv2, relu2 (a plain block's) and downsample.
func (blk *BasicBlock) Children() []nn.Child {
	cs := []nn.Child{{Name: "conv1", Module: blk.Conv1}, {Name: "bn1", Module: blk.BN1},
		{Name: "conv2", Module: blk.Conv2}, {Name: "bn2", Module: blk.BN2}}
	if blk.BN1 == nil {
		cs = []nn.Child{{Name: "conv1", Module: blk.Conv1}, {Name: "relu1", Module: blk.relu1}, {Name: "conv2", Module: blk.Conv2}}
		if blk.relu2 != nil {
			cs = append(cs, nn.Child{Name: "relu2", Module: blk.relu2})
		}
	}
	if blk.Downsample != nil {
		cs = append(cs, nn.Child{Name: "downsample", Module: blk.Downsample})
	}
	return cs
}

// Vars returns nil: the state belongs to the children.
func (blk *BasicBlock) Vars() []*nn.Var { return nil }

// SetTraining records the mode for the branch probe (see
// Model.SetBranchProbe); the layers have their own.
func (blk *BasicBlock) SetTraining(training bool) { blk.training = training }

func (blk *BasicBlock) setFused(f bool) { blk.fused = f }

func (blk *BasicBlock) shared() *residual { return &blk.residual }

// Forward computes relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).
func (blk *BasicBlock) Forward(x *tensor.Tensor) *tensor.Tensor {
	var at string // the child running, to name it in an error
	defer backend.InLayer(&at)
	if blk.fused {
		identity := blk.shortcutFused(&at, x, blk.Downsample, blk.Plain)
		at = "conv1"
		out := blk.Conv1.ForwardFoldedInto(blk.scratchFor(0), x, blk.BN1, nil, true)
		at = "conv2"
		return blk.Conv2.ForwardFoldedInto(blk.sumDst(identity, blk.Downsample), out, blk.BN2, identity, true)
	}
	at = "conv1"
	out := blk.Conv1.Forward(x)
	if blk.BN1 == nil {
		at = "relu1"
		out = blk.relu1.Forward(out)
	} else {
		at = "bn1"
		out = blk.BN1.ForwardReLU(out, true)
	}
	at = "conv2"
	out = blk.Conv2.Forward(out)
	if blk.BN2 == nil { // no BN: the branch output is conv2's
		blk.probeBranch(out)
		if blk.Plain {
			at = "relu2"
			return blk.relu2.Forward(out)
		}
		return blk.add(&at, out, blk.shortcutForward(&at, x, blk.Downsample))
	}
	at = "bn2"
	return blk.lastBN(&at, blk.BN2, out, x, blk.Downsample, blk.Plain)
}

// Backward sends dy through the final ReLU, then through the branch and the
// shortcut, and adds their input gradients. It overwrites dy.
func (blk *BasicBlock) Backward(dy *tensor.Tensor, needInput bool) *tensor.Tensor {
	return blk.backward(dy, needInput, blk.Children(), blk.Downsample, blk.Plain)
}

// Bottleneck is the block of ResNet-50/101/152, ResNeXt and Wide ResNet:
// 1x1 conv (reduce to width) -> BN -> ReLU -> 3x3 conv (stride s, groups)
// -> BN -> ReLU -> 1x1 conv (expand to planes*4) -> BN, plus the shortcut,
// then ReLU. The stride sits on the 3x3 convolution, as in torchvision
// ("ResNet v1.5"); the paper put it on the first 1x1.
type Bottleneck struct {
	Conv1      *nn.Conv2d
	BN1        *nn.BatchNorm2d
	Conv2      *nn.Conv2d
	BN2        *nn.BatchNorm2d
	Conv3      *nn.Conv2d
	BN3        *nn.BatchNorm2d
	Downsample *nn.Sequential
	Plain      bool

	fused bool
	residual
}

func newBottleneck(b backend.Backend, in, planes, stride, groups, widthPerGroup int, plain bool) (*Bottleneck, error) {
	width := planes * widthPerGroup / 64 * groups
	out := planes * 4
	blk := &Bottleneck{Plain: plain, residual: residual{b: b}}
	var err error
	if blk.Conv1, err = nn.NewConv2d(b, in, width, 1, 1, 0, 1, false); err != nil {
		return nil, err
	}
	if blk.Conv2, err = nn.NewConv2d(b, width, width, 3, stride, 1, groups, false); err != nil {
		return nil, err
	}
	if blk.Conv3, err = nn.NewConv2d(b, width, out, 1, 1, 0, 1, false); err != nil {
		return nil, err
	}
	blk.BN1, blk.BN2, blk.BN3 = nn.NewBatchNorm2d(b, width), nn.NewBatchNorm2d(b, width), nn.NewBatchNorm2d(b, out)
	if blk.Downsample, err = newDownsample(b, in, out, stride, plain, false); err != nil {
		return nil, err
	}
	return blk, nil
}

// Children returns conv1..3, bn1..3 and downsample, as torchvision.
func (blk *Bottleneck) Children() []nn.Child {
	cs := []nn.Child{{Name: "conv1", Module: blk.Conv1}, {Name: "bn1", Module: blk.BN1},
		{Name: "conv2", Module: blk.Conv2}, {Name: "bn2", Module: blk.BN2},
		{Name: "conv3", Module: blk.Conv3}, {Name: "bn3", Module: blk.BN3}}
	if blk.Downsample != nil {
		cs = append(cs, nn.Child{Name: "downsample", Module: blk.Downsample})
	}
	return cs
}

// Vars returns nil: the state belongs to the children.
func (blk *Bottleneck) Vars() []*nn.Var { return nil }

// SetTraining records the mode for the branch probe (see
// Model.SetBranchProbe); the layers have their own.
func (blk *Bottleneck) SetTraining(training bool) { blk.training = training }

func (blk *Bottleneck) setFused(f bool) { blk.fused = f }

func (blk *Bottleneck) shared() *residual { return &blk.residual }

// Forward computes relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x))))))) + shortcut(x)).
func (blk *Bottleneck) Forward(x *tensor.Tensor) *tensor.Tensor {
	var at string // the child running, to name it in an error
	defer backend.InLayer(&at)
	if blk.fused {
		identity := blk.shortcutFused(&at, x, blk.Downsample, blk.Plain)
		at = "conv1"
		out := blk.Conv1.ForwardFoldedInto(blk.scratchFor(0), x, blk.BN1, nil, true)
		at = "conv2"
		out = blk.Conv2.ForwardFoldedInto(blk.scratchFor(1), out, blk.BN2, nil, true)
		at = "conv3"
		return blk.Conv3.ForwardFoldedInto(blk.sumDst(identity, blk.Downsample), out, blk.BN3, identity, true)
	}
	at = "conv1"
	out := blk.Conv1.Forward(x)
	at = "bn1"
	out = blk.BN1.ForwardReLU(out, true)
	at = "conv2"
	out = blk.Conv2.Forward(out)
	at = "bn2"
	out = blk.BN2.ForwardReLU(out, true)
	at = "conv3"
	out = blk.Conv3.Forward(out)
	at = "bn3"
	return blk.lastBN(&at, blk.BN3, out, x, blk.Downsample, blk.Plain)
}

// Backward sends dy through the final ReLU, the branch and the shortcut.
// It overwrites dy.
func (blk *Bottleneck) Backward(dy *tensor.Tensor, needInput bool) *tensor.Tensor {
	return blk.backward(dy, needInput, blk.Children(), blk.Downsample, blk.Plain)
}

// newDownsample returns the dashed shortcut (1x1 conv with stride, then BN;
// without BN a 1x1 conv with a bias) when the block changes the resolution
// or the number of channels, and nil otherwise or in a plain network.
func newDownsample(b backend.Backend, in, out, stride int, plain, noBN bool) (*nn.Sequential, error) {
	if plain || (stride == 1 && in == out) {
		return nil, nil
	}
	conv, err := nn.NewConv2d(b, in, out, 1, stride, 0, 1, noBN)
	if err != nil {
		return nil, err
	}
	if noBN {
		return nn.NewSequential(conv), nil
	}
	return nn.NewSequential(conv, nn.NewBatchNorm2d(b, out)), nil
}

// residual holds what both block types share: the residual sum, its ReLU
// and their backward pass. The shortcut is x itself (the solid line of the
// paper's figures), the downsample (the dashed line), or nothing in a plain
// network.
type residual struct {
	b   backend.Backend
	out *tensor.Tensor // relu(branch + shortcut): the last BN's output tensor
	// inputReusable says the block's input is an earlier block's output
	// that nothing reads after this block: the fused path may then
	// compute the residual sum in place, in the shortcut's storage.
	inputReusable bool
	// scratch, shared by all the blocks of a model, holds the fused path's
	// intermediate activations (the outputs of every conv but the last),
	// which are dead when the block ends: the same memory, still in the
	// cache, serves every block. nil: each conv keeps its own output.
	scratch *[2]tensor.Tensor
	// probe, when set, receives the branch output in evaluation mode
	// (see Model.SetBranchProbe); training is the block's mode.
	probe    func(f *tensor.Tensor)
	training bool
}

// probeBranch shows the branch output f to the probe, in evaluation mode.
func (r *residual) probeBranch(f *tensor.Tensor) {
	if r.probe != nil && !r.training {
		r.probe(f)
	}
}

// lastBN runs a block's last BN on out, the last convolution's output,
// and returns the block's output: relu(bn(out) + shortcut(x)), or
// relu(bn(out)) in a plain block. The probe sees bn(out) before the sum
// and the ReLU; a plain block's BN then runs again with its ReLU fused, as
// without a probe, so that a backward pass finds what it needs (in
// evaluation mode BN changes no statistics: both runs give the same).
func (r *residual) lastBN(at *string, bn *nn.BatchNorm2d, out, x *tensor.Tensor, ds *nn.Sequential, plain bool) *tensor.Tensor {
	probing := r.probe != nil && !r.training
	if plain && !probing {
		return bn.ForwardReLU(out, true)
	}
	f := bn.Forward(out)
	r.probeBranch(f)
	if plain {
		return bn.ForwardReLU(out, true)
	}
	return r.add(at, f, r.shortcutForward(at, x, ds))
}

// scratchFor returns the shared buffer for the fused path's i-th
// intermediate activation, or nil (the conv's own output).
func (r *residual) scratchFor(i int) *tensor.Tensor {
	if r.scratch == nil {
		return nil
	}
	return &r.scratch[i]
}

// sumDst returns where the fused path writes relu(branch + identity): in
// place into identity when that is the downsample's output or a reusable
// input, or nil (the last convolution's own output).
func (r *residual) sumDst(identity *tensor.Tensor, ds *nn.Sequential) *tensor.Tensor {
	if identity != nil && (ds != nil || r.inputReusable) {
		return identity
	}
	return nil
}

// The helpers below run inside a block's Forward or Backward and set *at,
// the block's child running (see backend.InLayer), before each step.

// shortcutForward returns the shortcut's output: x, or downsample(x).
func (r *residual) shortcutForward(at *string, x *tensor.Tensor, ds *nn.Sequential) *tensor.Tensor {
	if ds == nil {
		return x
	}
	*at = "downsample"
	return ds.Forward(x)
}

// shortcutFused is shortcutForward with the downsample's BN folded in; nil
// in a plain network.
func (r *residual) shortcutFused(at *string, x *tensor.Tensor, ds *nn.Sequential, plain bool) *tensor.Tensor {
	if plain {
		return nil
	}
	if ds == nil {
		return x
	}
	*at = "downsample.0"
	conv, bn := ds.Layers[0].Module.(*nn.Conv2d), ds.Layers[1].Module.(*nn.BatchNorm2d)
	return conv.ForwardFolded(x, bn, nil, false)
}

// add computes relu(branch + identity) in place in branch, the last BN's
// output (its backward pass does not read it): one activation fewer to keep.
func (r *residual) add(at *string, branch, identity *tensor.Tensor) *tensor.Tensor {
	*at = "" // the block's own step
	r.b.Add(branch, branch, identity, true)
	r.out = branch
	return branch
}

// backward is the backward pass of a block whose children (its Children)
// are its branch in forward order, then the downsample if there is one.
func (r *residual) backward(dy *tensor.Tensor, needInput bool, children []nn.Child, ds *nn.Sequential, plain bool) *tensor.Tensor {
	var at string // the child running, to name it in an error
	defer backend.InLayer(&at)
	branch := children
	if ds != nil {
		branch = children[:len(children)-1]
	}
	if plain {
		// The last BN fused the ReLU: no residual sum to undo.
		return nn.BackwardChain(branch, dy, needInput)
	}
	// Gradient through the final ReLU, in place in dy (the next block's or
	// the pooling's input gradient, dead after this); it flows unchanged
	// into both paths.
	r.b.ReLUBackward(dy, dy, r.out)
	dBranch := nn.BackwardChain(branch, dy, needInput)
	dShort := dy
	if ds != nil {
		at = "downsample"
		dShort = ds.Backward(dy, needInput)
		at = ""
	}
	if !needInput {
		return nil
	}
	// The input gradient, summed in place in the branch's (conv1's).
	r.b.Add(dBranch, dBranch, dShort, false)
	return dBranch
}
