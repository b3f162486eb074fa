package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/demo"
	"github.com/resgo/resgo/internal/randt"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
)

func selftestCmd() *cobra.Command {
	var arch string
	cmd := &cobra.Command{
		Use:   "selftest",
		Short: "Run a ResNet on the default backend and check it against the pure-Go reference",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fast, err := backend.Default()
			if err != nil {
				return err
			}
			ref, err := backend.New("ref", 0)
			if err != nil {
				return err
			}
			x := randt.Uniform(1, 1, 3, 224, 224)
			var logits [2][]float32
			for i, b := range []backend.Backend{fast, ref} {
				m, err := resnet.New(b, arch, resnet.Options{IncludeTop: true, Seed: 1})
				if err != nil {
					return err
				}
				nn.SetTraining(m, false)
				var y *tensor.Tensor
				if err := backend.Do(b, func() { m.Forward(x) }); err != nil { // warm-up: primitives, folded weights
					return err
				}
				start := time.Now()
				err = backend.Do(b, func() { y = m.Forward(x) })
				if err != nil {
					return err
				}
				logits[i] = append([]float32(nil), backend.Values(b, y)...)
				fmt.Fprintf(out, "%s inference, batch 1, 224x224, backend %s (%d threads): %.1f ms\n", arch, b.Name(), b.Threads(), float64(time.Since(start).Microseconds())/1000)
			}
			fmt.Fprintf(out, "largest difference of the logits (relative to the largest logit): %.2g\n", randt.RelErr(logits[0], logits[1]))
			return nil
		},
	}
	cmd.Flags().StringVar(&arch, "arch", "resnet18", "architecture")
	return cmd
}

func demoCmd() *cobra.Command {
	var opt demo.Options
	cmd := &cobra.Command{
		Use:   "demo [--quick]",
		Short: "Train ResNet-20 on Fashion-MNIST and demonstrate transfer learning (about 10 minutes; --quick about 2)",
		Long: `resgo's main job on real data that needs no download (Debian's
dataset-fashion-mnist):

 1. trains a CIFAR-style ResNet-20 on Fashion-MNIST and reports the test
    accuracy after every epoch;
 2. pretrains on five classes (T-shirt/top, Trouser, Pullover, Dress, Coat),
    then learns the other five (Sandal, Shirt, Sneaker, Bag, Ankle boot) from
    100 images per class four ways: from scratch, head (only a new fc layer),
    from:layer3 (the last stage and the head) and all (fine-tune everything),
    and prints their test accuracy and training time;
 3. writes checkpoints, class_indices.json, histories, plots and summary.md
    into --out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := backend.Default()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "resgo demo: backend %s, %d threads, output in %s\n", b.Name(), b.Threads(), opt.Out)
			res, err := demo.Run(ctx, b, opt, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "\n== Transfer learning: 5 target classes, 100 training images each ==\n")
			fmt.Fprintf(out, "%-12s %12s %16s %10s\n", "way", "trainable", "test accuracy", "seconds")
			for _, r := range res.Transfer {
				fmt.Fprintf(out, "%-12s %12d %16.4f %10.1f\n", r.Way, r.Trained, r.Accuracy, r.Seconds)
			}
			last := res.Full[len(res.Full)-1]
			fmt.Fprintf(out, "\nResNet-20 on Fashion-MNIST: test accuracy %.4f after epoch %d (%.0f images/s)\n", last.ValAcc, last.Epoch, last.ImagesPerSec)
			fmt.Fprintf(out, "done in %s; everything is in %s (summary: %s, curves: %s)\n", res.Elapsed.Round(time.Second), res.Out, res.Summary, res.CurvesPNG)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opt.Out, "out", "runs/demo", "output folder")
	f.BoolVar(&opt.Quick, "quick", false, "a first look in about 2 minutes: fewer epochs and images")
	f.Uint64Var(&opt.Seed, "seed", 0, "seed (the same seed gives the same accuracies)")
	f.IntVar(&opt.Epochs, "epochs", 0, "epochs of the ResNet-20 training (default 8, 1 with --quick)")
	f.StringVar(&opt.Data, "data", "", "Fashion-MNIST folder (default /usr/share/datasets/fashion-mnist)")
	return cmd
}
