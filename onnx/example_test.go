package onnx_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/onnx"
	"github.com/resgo/resgo/transform"
)

// Export a model for ONNX Runtime: here an untrained CIFAR ResNet-20 for
// 28x28 grayscale images of two classes. A trained model comes from
// modelfile.Load (what `resgo export --format onnx` does), its classes and
// preprocessing from the checkpoint's modelfile.Meta.
func ExampleWrite() {
	b, err := backend.Default()
	if err != nil {
		log.Fatal(err)
	}
	m, err := resnet.New(b, "resnet20", resnet.Options{NumClasses: 2, InChannels: 1, IncludeTop: true, Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	meta := onnx.Meta{Classes: []string{"shirt", "boot"},
		Preprocess: transform.Preset{Channels: 1, Norm: transform.Normalization{Mean: []float32{0.286}, Std: []float32{0.353}}}}
	dir, err := os.MkdirTemp("", "resgo-onnx")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	f, err := os.Create(filepath.Join(dir, "resnet20.onnx"))
	if err != nil {
		log.Fatal(err)
	}
	if err := onnx.Write(f, m, meta); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}

	model, err := onnx.Build(m, meta) // the same model, as a protobuf message
	if err != nil {
		log.Fatal(err)
	}
	ops := map[string]int{}
	for _, n := range model.Graph.Node {
		ops[n.GetOpType()]++
	}
	fmt.Println("opset", model.OpsetImport[0].GetVersion(), "convolutions", ops["Conv"], "batch norms", ops["BatchNormalization"])
	for _, p := range model.MetadataProps[:2] {
		fmt.Printf("%s: %s\n", p.GetKey(), p.GetValue())
	}
	// Output:
	// opset 13 convolutions 21 batch norms 21
	// arch: resnet20
	// classes: ["shirt","boot"]
}
