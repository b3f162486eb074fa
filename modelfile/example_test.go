package modelfile_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/resgo/resgo/backend"
	_ "github.com/resgo/resgo/backend/dnnl" // oneDNN, where cgo is on
	_ "github.com/resgo/resgo/backend/ref"  // pure Go
	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/models/resnet"
)

// Load pretrained weights and give the model a new head, as the tutorial's
// load_weights.py does (its option 1: load the 1000-class weights, then
// replace fc). The architecture is read from the tensors; pass it as arch
// to have it checked instead. The example writes the .pth it loads, as
// torch.save(resnet18().state_dict(), path) would; in a program of yours,
// give the path of torchvision's file (resnet34-333f7ec4.pth, say) or a
// weights name such as "resnet34.IMAGENET1K_V1" (from the download cache).
func ExampleLoadPretrained() {
	dir, err := os.MkdirTemp("", "resgo-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	b, err := backend.Default()
	if err != nil {
		log.Fatal(err)
	}
	pretrained, err := resnet.New(b, "resnet18", resnet.Options{IncludeTop: true, NumClasses: 1000})
	if err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(dir, "resnet18-pre.pth")
	if err := checkpoint.WritePTH(path, checkpoint.FromModule(pretrained)); err != nil {
		log.Fatal(err)
	}

	m, w, err := modelfile.LoadPretrained(b, "", path, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s with %d classes (torchvision's catalogued weights: %v)\n", m.Name, m.Options.NumClasses, w != nil)
	if err := m.ReplaceHead(5, 0); err != nil { // net.fc = nn.Linear(512, 5)
		log.Fatal(err)
	}
	fmt.Println("fc.weight", m.FC.Weight.Value.Shape())
	// Output:
	// resnet18 with 1000 classes (torchvision's catalogued weights: false)
	// fc.weight [5 512]
}
