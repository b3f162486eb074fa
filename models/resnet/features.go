package resnet

import (
	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
)

// Features computes the pooled features of images x [N, C, H, W]: a
// tensor [N, FeatureChannels()], the output of avgpool and flatten, which
// is what the fc layer takes (torchvision's ResNet.forward up to
// torch.flatten(x, 1); the embeddings of transfer learning and image
// search). It runs Forward, whose fc costs little beside the
// convolutions, and pools the last stage's output (see StageOutputs). The
// result belongs to the model and is overwritten by the next Features.
func (m *Model) Features(x *tensor.Tensor) *tensor.Tensor {
	m.Forward(x)
	last := m.stageOut[len(m.stageOut)-1]
	at := "avgpool" // to name it in an error
	defer backend.InLayer(&at)
	pool := m.AvgPool
	if pool == nil { // built without its top
		pool = nn.NewAdaptiveAvgPool2d(m.b)
	}
	y := pool.Forward(last)
	return y.Reshape(y.Dim(0), y.Len()/y.Dim(0))
}
