package predict_test

import (
	"fmt"
	"image/png"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/internal/shapes"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/predict"
	"github.com/resgo/resgo/transform"
)

// Load a model file and classify image files: the tutorial's predict.py.
// The example first writes what it reads: a model file as resgo train
// writes best.safetensors (here an untrained ResNet-20 for the four classes
// of a generated data set, so its answer is a guess) and a PNG image. In a
// program of yours, Load the best.safetensors of a training, a .pth with
// WithArch, or a torchvision weights name such as "resnet50.IMAGENET1K_V2".
func ExampleLoad() {
	dir, err := os.MkdirTemp("", "resgo-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// What resgo train would have written.
	b, err := backend.Default()
	if err != nil {
		log.Fatal(err)
	}
	m, err := resnet.New(b, "resnet20", resnet.Options{IncludeTop: true, NumClasses: 4, Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	best := filepath.Join(dir, "best.safetensors")
	meta := modelfile.Meta{Arch: "resnet20", NumClasses: 4, InChannels: 3, Classes: shapes.Names,
		Preprocess: transform.Preset{ResizeSize: 36, CropSize: 32, Channels: 3, Norm: transform.ImageNet}}
	if err := modelfile.Write(best, m, meta, nil); err != nil {
		log.Fatal(err)
	}
	image := filepath.Join(dir, "disc.png")
	f, err := os.Create(image)
	if err != nil {
		log.Fatal(err)
	}
	if err := png.Encode(f, shapes.Draw(0, 48, rand.New(rand.NewPCG(1, 1)))); err != nil {
		log.Fatal(err)
	}
	f.Close()

	// Load and classify.
	clf, err := predict.Load(best)
	if err != nil {
		log.Fatal(err)
	}
	results, err := clf.ClassifyFiles([]string{image}, 2)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range results {
		fmt.Printf("image: %s\n", filepath.Base(r.Image))
		for _, c := range r.Top {
			fmt.Printf("class: %-10s   prob: %.2f\n", c.Name, c.Prob)
		}
	}
	// Output:
	// image: disc.png
	// class: stripes      prob: 0.91
	// class: square       prob: 0.08
}

// Embed images: the pooled features a ResNet's fc layer takes, for image
// search or a classifier of your own on top (64 values per image for
// ResNet-20, 512 for ResNet-18, 2048 for ResNet-50). Here an untrained
// ResNet-20 and two generated images; use predict.Load for a model file.
func ExampleClassifier_Embed() {
	b, err := backend.Default()
	if err != nil {
		log.Fatal(err)
	}
	m, err := resnet.New(b, "resnet20", resnet.Options{IncludeTop: true, NumClasses: 4, Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	clf, err := predict.New(m, shapes.Names, transform.Preset{ResizeSize: 36, CropSize: 32, Channels: 3, Norm: transform.ImageNet})
	if err != nil {
		log.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	var images []*transform.Image
	for i := range 2 {
		images = append(images, transform.FromImage(shapes.Draw(i, 48, r), 3))
	}
	embs, err := clf.Embed(images, []string{"disc", "square"})
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range embs {
		fmt.Printf("%s: %d features\n", e.Image, len(e.Features))
	}
	// Output:
	// disc: 64 features
	// square: 64 features
}

// Preprocess images where they arrive (in goroutines of their own: it
// only reads the classifier) and classify them together in one forward
// pass, as resgo serve batches concurrent requests.
func ExampleClassifier_ClassifyInputs() {
	b, err := backend.Default()
	if err != nil {
		log.Fatal(err)
	}
	m, err := resnet.New(b, "resnet20", resnet.Options{IncludeTop: true, NumClasses: 4, Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	clf, err := predict.New(m, shapes.Names, transform.Preset{ResizeSize: 36, CropSize: 32, Channels: 3, Norm: transform.ImageNet})
	if err != nil {
		log.Fatal(err)
	}
	inputs := make([]predict.Input, 3)
	var wg sync.WaitGroup
	for i := range inputs {
		wg.Go(func() {
			img := transform.FromImage(shapes.Draw(i, 48, rand.New(rand.NewPCG(uint64(i), 1))), 3)
			inputs[i] = clf.Preprocess(img, fmt.Sprintf("request %d", i))
		})
	}
	wg.Wait()
	results, err := clf.ClassifyInputs(inputs, 1) // one forward pass of 3 images
	if err != nil {
		log.Fatal(err)
	}
	for i, r := range results {
		fmt.Printf("%s: %dx%d input, %d logits, top-%d class\n", r.Image, inputs[i].W, inputs[i].H, len(r.Logits), len(r.Top))
	}
	// Output:
	// request 0: 32x32 input, 4 logits, top-1 class
	// request 1: 32x32 input, 4 logits, top-1 class
	// request 2: 32x32 input, 4 logits, top-1 class
}
