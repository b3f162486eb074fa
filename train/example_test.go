package train_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/internal/shapes"
	"github.com/resgo/resgo/train"
	"github.com/resgo/resgo/transform"
)

// smallImages sets a configuration up for the 24x24 images of the
// examples: 2-pixel pad-and-crop augmentation and flips instead of
// RandomResizedCrop(224), no resize or crop in evaluation.
func smallImages(cfg *train.Config) {
	cfg.Augment = transform.SmallImageTrain(24, 2)
	cfg.Eval = transform.Preset{Channels: 3, Norm: transform.ImageNet}
}

// Train a ResNet on a folder of class folders: the tutorial's train.py,
// whose settings train.Defaults holds (Adam, learning rate 1e-4, batch 16).
// The folder here is a tiny generated one, 4 classes of 12 images of
// 24x24 pixels, a quarter of each class held out for validation; with
// photos (flower_photos) keep Defaults' augmentation and preprocessing,
// RandomResizedCrop(224) and resize 256, center crop 224.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "resgo-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	photos := filepath.Join(dir, "photos")
	if err := shapes.WriteFolder(photos, []int{0, 1, 2, 3}, 12, 24, 1); err != nil {
		log.Fatal(err)
	}

	sets, err := data.Open(photos, data.OpenOptions{ValSplit: 0.25})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("using %d images for training, %d images for validation (%s)\n",
		sets.Train.Len(), sets.Val.Len(), strings.Join(sets.Train.Classes(), ", "))

	b, err := backend.Default()
	if err != nil {
		log.Fatal(err)
	}
	cfg := train.Defaults("resnet20")
	cfg.Epochs, cfg.LR, cfg.Out = 2, 3e-3, filepath.Join(dir, "run")
	smallImages(&cfg)
	cfg.Hooks.Epoch = func(rec train.EpochStats, _ []train.EpochStats) error {
		// The tutorial prints rec.TrainLoss and rec.ValAcc here; they vary
		// with the backend and CPU in their last digits.
		fmt.Printf("[epoch %d] done\n", rec.Epoch)
		return nil
	}
	tr, err := train.New(b, cfg, sets.Train, sets.Val, io.Discard)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, %d trainable parameters\n", tr.Model().Name, tr.TrainableParams())
	if _, err := tr.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
	entries, err := os.ReadDir(cfg.Out)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		fmt.Println("wrote", e.Name())
	}
	// Output:
	// using 36 images for training, 12 images for validation (cross, disc, square, stripes)
	// resnet20, 272084 trainable parameters
	// [epoch 1] done
	// [epoch 2] done
	// wrote best.safetensors
	// wrote class_indices.json
	// wrote history.csv
	// wrote last.safetensors
}

// Fine-tune from a checkpoint in the tutorial's three transfer modes (its
// load_weights.py and the commented-out freezing loop of its train.py):
// all trains everything, from:layer3 freezes the stem, layer1 and layer2,
// head trains only a new fc layer. Config.Weights takes a resgo checkpoint,
// a .pth or .safetensors state dict or a torchvision weights name, and the
// head is always replaced for the new classes. Here the checkpoint is
// trained first on two classes of a generated data set (disc, square),
// then fine-tuned on two others (stripes, cross).
func Example_fineTune() {
	dir, err := os.MkdirTemp("", "resgo-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	b, err := backend.Default()
	if err != nil {
		log.Fatal(err)
	}
	// fit trains on n images of each of the classes for an epoch.
	fit := func(cfg train.Config, classes []int, n int) *train.Trainer {
		folder := filepath.Join(dir, fmt.Sprint("data", classes))
		if err := shapes.WriteFolder(folder, classes, n, 24, 1); err != nil {
			log.Fatal(err)
		}
		sets, err := data.Open(folder, data.OpenOptions{ValSplit: 0.25})
		if err != nil {
			log.Fatal(err)
		}
		cfg.Epochs, cfg.LR = 1, 3e-3
		smallImages(&cfg)
		tr, err := train.New(b, cfg, sets.Train, sets.Val, io.Discard)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := tr.Run(context.Background()); err != nil {
			log.Fatal(err)
		}
		return tr
	}

	pre := train.Defaults("resnet20")
	pre.Out = filepath.Join(dir, "pretrained")
	fit(pre, []int{0, 1}, 16)

	for _, mode := range []string{"all", "from:layer3", "head"} {
		cfg := train.Defaults("resnet20")
		cfg.Weights = filepath.Join(pre.Out, train.BestFile)
		if cfg.Transfer, err = train.ParseTransfer(mode); err != nil {
			log.Fatal(err)
		}
		cfg.Out = filepath.Join(dir, mode)
		tr := fit(cfg, []int{2, 3}, 16)
		fmt.Printf("%-11s %6d trainable parameters, fc for %d classes\n", mode, tr.TrainableParams(), tr.Model().Options.NumClasses)
	}
	// Output:
	// all         271954 trainable parameters, fc for 2 classes
	// from:layer3 205826 trainable parameters, fc for 2 classes
	// head           130 trainable parameters, fc for 2 classes
}
