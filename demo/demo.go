// Package demo is resgo's out-of-the-box demonstration on Fashion-MNIST:
// a CIFAR-style ResNet-20 trained on the ten classes, then transfer learning
// as the tutorial explains it: a network pretrained on five classes learns
// the other five from 100 images per class, four ways, compared with
// training from scratch.
package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/charts"
	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/internal/trainview"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/train"
	"github.com/resgo/resgo/transform"
)

// Options configure the demonstration.
type Options struct {
	Out   string // output folder
	Quick bool   // fewer epochs and images: a first look in about 2 minutes
	Seed  uint64
	Data  string // Fashion-MNIST folder (data.FashionMNISTDir when empty)
	// Epochs of the ResNet-20 training (0: 8, or 1 with Quick).
	Epochs int
}

// TransferRow is one line of the transfer-learning table.
type TransferRow struct {
	Way      string  // "scratch", "head", "from:layer3" or "all"
	Trained  int     // trainable parameters
	Accuracy float64 // final test accuracy on the five target classes
	Best     float64 // best test accuracy over the epochs
	Seconds  float64 // training time (validation excluded)
	History  []train.EpochStats
}

// Result is what the demonstration measured.
type Result struct {
	Full      []train.EpochStats // ResNet-20 on the ten classes
	Source    []train.EpochStats // pretraining on the five source classes
	Transfer  []TransferRow
	Backend   string
	Threads   int
	Elapsed   time.Duration
	Out       string
	Summary   string // path of summary.md
	CurvesPNG string // path of the transfer curves
}

// settings returns the demo's training settings for ResNet-20, showing the
// training on log and drawing its curves into out.
func settings(out string, epochs, batch int, lr float64, seed uint64, log io.Writer) train.Config {
	cfg := train.Defaults("resnet20")
	cfg.Out, cfg.Epochs, cfg.Batch, cfg.Seed = out, epochs, batch, seed
	cfg.Overwrite = true // a demo run replaces the previous one
	cfg.Hooks = trainview.Hooks(log, false, out)
	cfg.Optimizer, cfg.LR, cfg.Momentum, cfg.WeightDecay = "sgd", lr, 0.9, 5e-4
	cfg.Schedule = "cosine"
	cfg.Augment = transform.SmallImageTrain(28, 2)
	cfg.Eval = transform.Preset{Channels: 1, Norm: data.FashionMNISTNorm}
	return cfg
}

// Run runs the demonstration, printing progress to log, and writes
// everything into opt.Out.
func Run(ctx context.Context, b backend.Backend, opt Options, log io.Writer) (*Result, error) {
	start := time.Now()
	sets, err := data.Open(data.FashionMNISTName, data.OpenOptions{FashionMNISTDir: opt.Data})
	if err != nil {
		return nil, err
	}
	trainAll, testAll := sets.Train, sets.Val
	if err := os.MkdirAll(opt.Out, 0o755); err != nil {
		return nil, err
	}
	res := &Result{Backend: b.Name(), Threads: b.Threads(), Out: opt.Out}

	// 1. ResNet-20 on all ten classes.
	epochs := opt.Epochs
	if epochs == 0 {
		epochs = 8
		if opt.Quick {
			epochs = 1
		}
	}
	var full data.Dataset = trainAll
	if opt.Quick {
		full = data.TakePerClass(trainAll, 1500, opt.Seed)
	}
	fmt.Fprintf(log, "\n== 1. ResNet-20 on Fashion-MNIST: %d training images, %d test images, %d epochs ==\n", full.Len(), testAll.Len(), epochs)
	hist, err := trainRun(ctx, b, settings(filepath.Join(opt.Out, "resnet20"), epochs, 128, 0.1, opt.Seed, log), full, testAll, log)
	if err != nil {
		return nil, err
	}
	res.Full = hist

	// 2. Transfer learning: pretrain on T-shirt/top, Trouser, Pullover,
	// Dress, Coat; learn Sandal, Shirt, Sneaker, Bag, Ankle boot from 100
	// images per class.
	srcTrain, srcTest, err := selectClasses(trainAll, testAll, []int{0, 1, 2, 3, 4})
	if err != nil {
		return nil, err
	}
	tgtAll, tgtTest, err := selectClasses(trainAll, testAll, []int{5, 6, 7, 8, 9})
	if err != nil {
		return nil, err
	}
	tgtTrain := data.TakePerClass(tgtAll, 100, opt.Seed)
	preEpochs, tEpochs := 3, 15
	var src data.Dataset = srcTrain
	if opt.Quick {
		preEpochs, tEpochs = 1, 8
		src = data.TakePerClass(srcTrain, 2000, opt.Seed)
	}
	fmt.Fprintf(log, "\n== 2. Transfer learning ==\npretraining on %s: %d images, %d epochs\n", strings.Join(srcTrain.Classes(), ", "), src.Len(), preEpochs)
	preDir := filepath.Join(opt.Out, "transfer", "pretrain")
	res.Source, err = trainRun(ctx, b, settings(preDir, preEpochs, 128, 0.1, opt.Seed, log), src, srcTest, log)
	if err != nil {
		return nil, err
	}
	// The pretrained network, as a plain state dict (like a torchvision
	// .pth): the best checkpoint's weights.
	pre, _, err := modelfile.Load(b, filepath.Join(preDir, train.BestFile))
	if err != nil {
		return nil, err
	}
	weights := filepath.Join(opt.Out, "transfer", "pretrained.safetensors")
	if err := checkpoint.WriteSafetensors(weights, checkpoint.FromModule(pre)); err != nil {
		return nil, err
	}

	fmt.Fprintf(log, "target: %s, %d training images (100 per class), %d test images, %d epochs each way\n",
		strings.Join(tgtAll.Classes(), ", "), tgtTrain.Len(), tgtTest.Len(), tEpochs)
	for _, way := range []string{"scratch", "head", "from:layer3", "all"} {
		cfg := settings(filepath.Join(opt.Out, "transfer", strings.ReplaceAll(way, ":", "-")), tEpochs, 32, 0.01, opt.Seed, log)
		if way != "scratch" {
			cfg.Weights = weights
			if cfg.Transfer, err = train.ParseTransfer(way); err != nil {
				return nil, err
			}
		}
		fmt.Fprintf(log, "\n-- %s --\n", way)
		tr, err := train.New(b, cfg, tgtTrain, tgtTest, log)
		if err != nil {
			return nil, err
		}
		trainable := tr.TrainableParams()
		hist, err := tr.Run(ctx)
		if err != nil {
			return nil, err
		}
		row := TransferRow{Way: way, Trained: trainable, History: hist, Accuracy: hist[len(hist)-1].ValAcc}
		for _, h := range hist {
			row.Seconds += h.Seconds
			row.Best = max(row.Best, h.ValAcc)
		}
		res.Transfer = append(res.Transfer, row)
	}
	res.Elapsed = time.Since(start)

	res.CurvesPNG = filepath.Join(opt.Out, "transfer_curves.png")
	if err := plotTransfer(res.CurvesPNG, res.Transfer); err != nil {
		return nil, err
	}
	res.Summary = filepath.Join(opt.Out, "summary.md")
	if err := os.WriteFile(res.Summary, []byte(Markdown(res, opt)), 0o644); err != nil {
		return nil, err
	}
	return res, nil
}

// selectClasses keeps the given classes of a training and a test set (see
// data.SelectClasses).
func selectClasses(trainDS, testDS data.Dataset, classes []int) (tr, te *data.View, err error) {
	if tr, err = data.SelectClasses(trainDS, classes); err != nil {
		return nil, nil, err
	}
	if te, err = data.SelectClasses(testDS, classes); err != nil {
		return nil, nil, err
	}
	return tr, te, nil
}

// trainRun trains one configuration and returns its history.
func trainRun(ctx context.Context, b backend.Backend, cfg train.Config, trainDS, valDS data.Dataset, log io.Writer) ([]train.EpochStats, error) {
	tr, err := train.New(b, cfg, trainDS, valDS, log)
	if err != nil {
		return nil, err
	}
	return tr.Run(ctx)
}

// plotTransfer draws the target test accuracy and the training loss per
// epoch of each way.
func plotTransfer(path string, rows []TransferRow) error {
	var acc, loss []charts.Series
	for _, r := range rows {
		var x, a, l []float64
		for _, h := range r.History {
			x, a, l = append(x, float64(h.Epoch)), append(a, h.ValAcc), append(l, h.TrainLoss)
		}
		acc = append(acc, charts.Series{Name: r.Way, X: x, Y: a})
		loss = append(loss, charts.Series{Name: r.Way, X: x, Y: l})
	}
	return charts.Curves(path, "epoch", []charts.Panel{
		{Title: "Target classes: test accuracy", YLabel: "accuracy", Series: acc, LegendBottom: true},
		{Title: "Target classes: training loss", YLabel: "cross-entropy", Series: loss},
	})
}

// Markdown returns the summary of a demonstration.
func Markdown(r *Result, opt Options) string {
	var b strings.Builder
	cmd := "resgo demo"
	if opt.Quick {
		cmd += " --quick"
	}
	fmt.Fprintf(&b, "# resgo demo on Fashion-MNIST\n\nMade by `%s --seed %d` on backend %s with %d threads in %s.\n\n", cmd, opt.Seed, r.Backend, r.Threads, r.Elapsed.Round(time.Second))
	fmt.Fprintf(&b, "## 1. ResNet-20 (SGD with Nesterov momentum, lr 0.1 cosine, batch 128, pad-and-crop and flips)\n\n")
	fmt.Fprintf(&b, "| epoch | train loss | train accuracy | test accuracy | images/s | seconds |\n|---|---|---|---|---|---|\n")
	for _, h := range r.Full {
		fmt.Fprintf(&b, "| %d | %.4f | %.4f | %.4f | %.0f | %.0f |\n", h.Epoch, h.TrainLoss, h.TrainAcc, h.ValAcc, h.ImagesPerSec, h.Seconds)
	}
	fmt.Fprintf(&b, "\n## 2. Transfer learning\n\nPretrained on T-shirt/top, Trouser, Pullover, Dress, Coat (final test accuracy on those %.4f), then trained on Sandal, Shirt, Sneaker, Bag, Ankle boot with 100 images per class; accuracy on their 5000 test images.\n\n", last(r.Source).ValAcc)
	fmt.Fprintf(&b, "| way | trainable parameters | final test accuracy | best test accuracy | training seconds |\n|---|---|---|---|---|\n")
	for _, t := range r.Transfer {
		fmt.Fprintf(&b, "| %s | %d | %.4f | %.4f | %.1f |\n", t.Way, t.Trained, t.Accuracy, t.Best, t.Seconds)
	}
	fmt.Fprintf(&b, "\nLearning curves: `transfer_curves.png`. Checkpoints, class_indices.json, history.csv and curves.png of every run are in the subfolders.\n")
	return b.String()
}

func last(h []train.EpochStats) train.EpochStats {
	if len(h) == 0 {
		return train.EpochStats{}
	}
	return h[len(h)-1]
}
