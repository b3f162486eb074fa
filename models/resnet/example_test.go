package resnet_test

import (
	"fmt"
	"log"

	"github.com/resgo/resgo/backend"
	_ "github.com/resgo/resgo/backend/dnnl" // oneDNN, where cgo is on
	_ "github.com/resgo/resgo/backend/ref"  // pure Go
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
)

// Build the tutorial's network, resnet34(num_classes=5) of its model.py,
// and run a forward pass in evaluation mode (the tutorial's net.eval())
// on one 224x224 RGB image. The layers and their parameters have
// torchvision's names, so torchvision's .pth files load into it (see
// modelfile.Open).
func ExampleNew() {
	b, err := backend.Default()
	if err != nil {
		log.Fatal(err)
	}
	m, err := resnet.New(b, "resnet34", resnet.Options{IncludeTop: true, NumClasses: 5, Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	params := nn.Params(m, false)
	first, last := params[0], params[len(params)-1]
	fmt.Printf("%s: %d parameters, from %s %v to %s %v\n", m.Name, nn.NumParams(m),
		first.Name, first.Var.Value.Shape(), last.Name, last.Var.Value.Shape())

	nn.SetTraining(m, false)
	x := tensor.New(1, 3, 224, 224) // an image, normalized (zeros here)
	var logits []float32
	if err := backend.Do(b, func() { logits = backend.Values(b, m.Forward(x)) }); err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(logits), "logits")
	// Output:
	// resnet34: 21287237 parameters, from conv1.weight [64 3 7 7] to fc.bias [5]
	// 5 logits
}

// Measure the residual functions F(x) of a CIFAR ResNet-20, as the ResNet
// paper's Fig. 7 does: the probe sees every block's branch output (after
// its last BN, before the shortcut is added) in evaluation mode.
func ExampleModel_SetBranchProbe() {
	b, err := backend.Default()
	if err != nil {
		log.Fatal(err)
	}
	m, err := resnet.New(b, "resnet20", resnet.Options{IncludeTop: true, NumClasses: 10, InChannels: 1, Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	var names []string
	m.SetBranchProbe(func(index int, name string, f *tensor.Tensor) {
		names = append(names, name) // backend.Values(b, f) are the values
	})
	nn.SetTraining(m, false)
	x := tensor.New(2, 1, 28, 28) // two normalized 28x28 grayscale images
	if err := backend.Do(b, func() { m.Forward(x) }); err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(names), "blocks:", names[0], "...", names[len(names)-1])
	// Output:
	// 9 blocks: layer1.0 ... layer3.2
}
