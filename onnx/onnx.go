// Package onnx writes resgo models as ONNX graphs.
//
// Write turns a ResNet in evaluation form into an ONNX model (opset 13,
// IR version 8) that ONNX Runtime and other ONNX tools load: input "input"
// [batch, channels, height, width] float32, output "logits" [batch,
// classes], with symbolic batch, height and width. The graph is the one
// torchvision's ResNet.forward runs, operator for operator: Conv (with
// its group attribute for ResNeXt), BatchNormalization in its inference
// form (not folded into the convolutions), Relu, Add, MaxPool,
// GlobalAveragePool, Flatten and Gemm. Every initializer carries its name
// in torchvision's state_dict ("layer1.0.conv1.weight",
// "layer1.0.bn1.running_var", "fc.bias") and every node the name of its
// module ("layer1.0.bn1"), so the graph reads against the PyTorch code.
//
// The class names and the preprocessing the model expects go into the
// model's metadata_props (see MetadataKeys).
package onnx

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/onnx/onnxpb"
	"github.com/resgo/resgo/transform"
)

// Opset is the ONNX operator set version of the graphs Write produces.
const Opset = 13

// IRVersion is the ONNX IR version of the models Write produces (that of
// ONNX 1.12, whose onnx.proto package onnxpb is generated from).
const IRVersion = 8

// Names of the graph's input and output.
const (
	InputName  = "input"
	OutputName = "logits"
)

// Meta is what a model's file says beside its weights: the class names,
// by index, and the preprocessing its inputs need.
type Meta struct {
	Classes    []string
	Preprocess transform.Preset
}

// MetadataKeys are the keys Write puts in the model's metadata_props, in
// order:
//
//	arch                    the architecture ("resnet50")
//	classes                 the class names by index, a JSON array of strings
//	preprocess.resize_size  the shorter side after resizing (0: none)
//	preprocess.crop_size    the side of the center crop (0: none)
//	preprocess.channels     3 for RGB, 1 for grayscale
//	preprocess.mean         per-channel mean of (pixel/255), a JSON array
//	preprocess.std          per-channel deviation, a JSON array
var MetadataKeys = []string{"arch", "classes", "preprocess.resize_size", "preprocess.crop_size",
	"preprocess.channels", "preprocess.mean", "preprocess.std"}

// Write writes m as an ONNX model to w, with meta in its metadata_props.
// m must have its classification head (fc), and meta as many class names
// as m has outputs. The graph is built from m's structure and current
// weights; m itself is not changed.
func Write(w io.Writer, m *resnet.Model, meta Meta) error {
	model, err := Build(m, meta)
	if err != nil {
		return err
	}
	raw, err := proto.Marshal(model)
	if err != nil {
		return fmt.Errorf("onnx: %s: %w", m.Name, err)
	}
	if _, err := w.Write(raw); err != nil {
		return fmt.Errorf("onnx: writing %s: %w", m.Name, err)
	}
	return nil
}

// Build returns m as an ONNX ModelProto (see Write).
func Build(m *resnet.Model, meta Meta) (*onnxpb.ModelProto, error) {
	if m.FC == nil {
		return nil, fmt.Errorf("onnx: %s has no classification head (fc) to export", m.Name)
	}
	if len(meta.Classes) != m.FC.Out {
		return nil, fmt.Errorf("onnx: %d class names for %s with %d outputs", len(meta.Classes), m.Name, m.FC.Out)
	}
	props, err := metadata(m.Name, meta)
	if err != nil {
		return nil, err
	}
	g := &graph{sd: checkpoint.FromModule(m), proto: &onnxpb.GraphProto{Name: proto.String(m.Name)}}
	if err := g.resnet(m); err != nil {
		return nil, fmt.Errorf("onnx: %s: %w", m.Name, err)
	}
	g.proto.Input = []*onnxpb.ValueInfoProto{
		valueInfo(InputName, dimParam("batch"), dimValue(m.Options.InChannels), dimParam("height"), dimParam("width")),
	}
	g.proto.Output = []*onnxpb.ValueInfoProto{valueInfo(OutputName, dimParam("batch"), dimValue(m.FC.Out))}
	return &onnxpb.ModelProto{
		IrVersion:     proto.Int64(IRVersion),
		OpsetImport:   []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(Opset)}},
		ProducerName:  proto.String("resgo"),
		DocString:     proto.String(m.Name + " exported by resgo (torchvision's ResNet structure and parameter names)"),
		Graph:         g.proto,
		MetadataProps: props,
	}, nil
}

// metadata returns the metadata_props of MetadataKeys.
func metadata(arch string, meta Meta) ([]*onnxpb.StringStringEntryProto, error) {
	classes, err := json.Marshal(meta.Classes)
	if err != nil {
		return nil, fmt.Errorf("onnx: class names: %w", err)
	}
	mean, err := json.Marshal(nonNil(meta.Preprocess.Norm.Mean))
	if err != nil {
		return nil, fmt.Errorf("onnx: preprocessing mean: %w", err)
	}
	std, err := json.Marshal(nonNil(meta.Preprocess.Norm.Std))
	if err != nil {
		return nil, fmt.Errorf("onnx: preprocessing std: %w", err)
	}
	p := meta.Preprocess
	values := []string{arch, string(classes), strconv.Itoa(p.ResizeSize), strconv.Itoa(p.CropSize),
		strconv.Itoa(p.Channels), string(mean), string(std)}
	props := make([]*onnxpb.StringStringEntryProto, len(MetadataKeys))
	for i, k := range MetadataKeys {
		props[i] = &onnxpb.StringStringEntryProto{Key: proto.String(k), Value: proto.String(values[i])}
	}
	return props, nil
}

// nonNil returns s, or an empty slice for nil (a JSON [] rather than null).
func nonNil(s []float32) []float32 {
	if s == nil {
		return []float32{}
	}
	return s
}

// graph collects the nodes and initializers of a GraphProto as the
// network is walked.
type graph struct {
	sd    *checkpoint.StateDict // the model's state, by state_dict name
	proto *onnxpb.GraphProto
}

// resnet adds torchvision's ResNet.forward: conv1, bn1, relu, maxpool,
// layer1..layerK, avgpool, flatten, fc.
func (g *graph) resnet(m *resnet.Model) error {
	x, err := g.conv("conv1", InputName, m.Conv1)
	if err != nil {
		return err
	}
	if x, err = g.batchNorm("bn1", x, m.BN1); err != nil {
		return err
	}
	x = g.node("Relu", "relu", []string{x})
	if m.MaxPool != nil {
		p := m.MaxPool.Params
		x = g.node("MaxPool", "maxpool", []string{x},
			intsAttr("kernel_shape", p.Kernel[0], p.Kernel[1]),
			intsAttr("strides", p.Stride[0], p.Stride[1]),
			intsAttr("pads", p.Pad[0], p.Pad[1], p.Pad[0], p.Pad[1]))
	}
	for i, stage := range m.Layers {
		for _, c := range stage.Layers {
			name := fmt.Sprintf("layer%d.%s", i+1, c.Name)
			switch blk := c.Module.(type) {
			case *resnet.BasicBlock:
				x, err = g.block(name, x, []*nn.Conv2d{blk.Conv1, blk.Conv2}, []*nn.BatchNorm2d{blk.BN1, blk.BN2}, blk.Downsample, blk.Plain)
			case *resnet.Bottleneck:
				x, err = g.block(name, x, []*nn.Conv2d{blk.Conv1, blk.Conv2, blk.Conv3}, []*nn.BatchNorm2d{blk.BN1, blk.BN2, blk.BN3}, blk.Downsample, blk.Plain)
			default:
				err = fmt.Errorf("%s: a block of type %T", name, c.Module)
			}
			if err != nil {
				return err
			}
		}
	}
	x = g.node("GlobalAveragePool", "avgpool", []string{x})
	x = g.node("Flatten", "flatten", []string{x}, intAttr("axis", 1))
	if err := g.initializers("fc.weight", "fc.bias"); err != nil {
		return err
	}
	g.proto.Node = append(g.proto.Node, &onnxpb.NodeProto{
		OpType: proto.String("Gemm"), Name: proto.String("fc"),
		Input: []string{x, "fc.weight", "fc.bias"}, Output: []string{OutputName},
		Attribute: []*onnxpb.AttributeProto{intAttr("transB", 1)},
	})
	return nil
}

// block adds a BasicBlock (two convolutions) or a Bottleneck (three):
// conv, bn and relu for each but the last, whose bn is added to the
// shortcut (x itself, or the downsample's conv and bn) before the final
// relu; a plain block has no shortcut.
func (g *graph) block(name, x string, convs []*nn.Conv2d, bns []*nn.BatchNorm2d, ds *nn.Sequential, plain bool) (string, error) {
	out := x
	var err error
	for i := range convs {
		k := strconv.Itoa(i + 1)
		if out, err = g.conv(name+".conv"+k, out, convs[i]); err != nil {
			return "", err
		}
		if out, err = g.batchNorm(name+".bn"+k, out, bns[i]); err != nil {
			return "", err
		}
		if i < len(convs)-1 {
			out = g.node("Relu", name+".relu"+k, []string{out})
		}
	}
	if !plain {
		identity := x
		if ds != nil {
			if len(ds.Layers) != 2 {
				return "", fmt.Errorf("%s.downsample: %d layers, not a convolution and a batch norm", name, len(ds.Layers))
			}
			conv, ok1 := ds.Layers[0].Module.(*nn.Conv2d)
			bn, ok2 := ds.Layers[1].Module.(*nn.BatchNorm2d)
			if !ok1 || !ok2 {
				return "", fmt.Errorf("%s.downsample: not a convolution and a batch norm", name)
			}
			if identity, err = g.conv(name+".downsample.0", x, conv); err != nil {
				return "", err
			}
			if identity, err = g.batchNorm(name+".downsample.1", identity, bn); err != nil {
				return "", err
			}
		}
		out = g.node("Add", name+".add", []string{out, identity})
	}
	return g.node("Relu", name+".relu", []string{out}), nil
}

// conv adds the convolution named name (its weight is name.weight).
func (g *graph) conv(name, x string, c *nn.Conv2d) (string, error) {
	inputs := []string{x, name + ".weight"}
	if c.Bias != nil {
		inputs = append(inputs, name+".bias")
	}
	if err := g.initializers(inputs[1:]...); err != nil {
		return "", err
	}
	p := c.Params.Norm()
	return g.node("Conv", name, inputs,
		intsAttr("kernel_shape", c.Kernel, c.Kernel),
		intsAttr("strides", p.Stride[0], p.Stride[1]),
		intsAttr("pads", p.Pad[0], p.Pad[1], p.Pad[0], p.Pad[1]),
		intsAttr("dilations", p.Dilation[0], p.Dilation[1]),
		intAttr("group", p.Groups)), nil
}

// batchNorm adds the batch norm named name in its inference form: the
// running statistics normalize, as in PyTorch's evaluation mode.
func (g *graph) batchNorm(name, x string, bn *nn.BatchNorm2d) (string, error) {
	inputs := []string{x, name + ".weight", name + ".bias", name + ".running_mean", name + ".running_var"}
	if err := g.initializers(inputs[1:]...); err != nil {
		return "", err
	}
	return g.node("BatchNormalization", name, inputs, floatAttr("epsilon", bn.Eps)), nil
}

// node adds a node whose one output is named as the node, and returns
// that name.
func (g *graph) node(op, name string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	g.proto.Node = append(g.proto.Node, &onnxpb.NodeProto{
		OpType: proto.String(op), Name: proto.String(name),
		Input: inputs, Output: []string{name}, Attribute: attrs,
	})
	return name
}

// initializers adds the model's tensors of those state_dict names as
// float32 initializers of the same names.
func (g *graph) initializers(names ...string) error {
	for _, name := range names {
		t := g.sd.Get(name)
		if t == nil || t.F32 == nil {
			return fmt.Errorf("no float32 tensor %s in the model's state", name)
		}
		raw := make([]byte, 4*len(t.F32))
		for i, v := range t.F32 {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
		dims := make([]int64, len(t.Shape))
		for i, d := range t.Shape {
			dims[i] = int64(d)
		}
		g.proto.Initializer = append(g.proto.Initializer, &onnxpb.TensorProto{
			Name: proto.String(name), Dims: dims,
			DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), RawData: raw,
		})
	}
	return nil
}

// valueInfo describes a float32 tensor of the given dimensions.
func valueInfo(name string, dims ...*onnxpb.TensorShapeProto_Dimension) *onnxpb.ValueInfoProto {
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
			Shape:    &onnxpb.TensorShapeProto{Dim: dims},
		}}},
	}
}

// dimValue is a fixed dimension.
func dimValue(n int) *onnxpb.TensorShapeProto_Dimension {
	return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(n)}}
}

// dimParam is a symbolic dimension, named.
func dimParam(name string) *onnxpb.TensorShapeProto_Dimension {
	return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: name}}
}

// ints is an attribute holding a list of integers.
func intsAttr(name string, vs ...int) *onnxpb.AttributeProto {
	a := &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum()}
	for _, v := range vs {
		a.Ints = append(a.Ints, int64(v))
	}
	return a
}

// ints1 is an attribute holding one integer.
func intAttr(name string, v int) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(int64(v))}
}

// float1 is an attribute holding one float.
func floatAttr(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}
