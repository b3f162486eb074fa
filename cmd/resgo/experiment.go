package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/experiment"
	"github.com/resgo/resgo/internal/trainview"
	"github.com/resgo/resgo/train"
)

func experimentCmd() *cobra.Command {
	var (
		opt         experiment.Options
		quick, full bool
		quiet       bool
	)
	cmd := &cobra.Command{
		Use:   "experiment NAME|all [--quick|--full] [--seed S] [--out DIR]",
		Short: "Measure a claim of the ResNet and BN papers on Fashion-MNIST: degradation, residual-response, batchnorm, transfer",
		Long: `Reproduce on this machine, on Fashion-MNIST (Debian's dataset-fashion-mnist),
a claim the tutorial shows only as a figure from a paper:

  degradation        plain-20/56 against ResNet-20/56: training and test
                     error per epoch (ResNet paper, Fig. 1 and 6). Claim: the
                     deeper plain net trains to a higher error, the deeper
                     ResNet does not.
  residual-response  the standard deviation of every residual branch's
                     output of those four nets, by layer and sorted (Fig. 7).
                     Claim: residual functions are close to zero, and smaller
                     in the deeper net. It reuses the nets degradation trained
                     in the same --out (same size and seed), else trains them.
  batchnorm          ResNet-20 with and without BN at learning rates 0.01,
                     0.1 and 0.5: loss per step, the step reaching loss 0.6,
                     divergence; and the trained net evaluated in training
                     mode at batch sizes 1, 8 and 128 (forgetting model.eval()).
  transfer           pretrained on five classes, learning the other five
                     from 10, 100 and 1000 images per class, from scratch and
                     in the three transfer modes: accuracy and training time.
  all                the four, in this order.

Each writes into --out/NAME: report.md (the claim, whether it held here
and by how much, a table of the numbers), PNG figures and the raw CSV.
The default size takes about 10 minutes per experiment on 2 idle cores,
--quick about a minute (a smoke run: the numbers say little), --full as
long as the claim needs (hours). The same --seed gives the same numbers,
except the times.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			names := []string{args[0]}
			if args[0] == "all" {
				names = experiment.Names
			} else if !slices.Contains(experiment.Names, args[0]) {
				return fmt.Errorf("experiment %q: want one of %s, or all", args[0], strings.Join(experiment.Names, ", "))
			}
			switch {
			case quick && full:
				return fmt.Errorf("--quick and --full: give one of them")
			case quick:
				opt.Size = experiment.Quick
			case full:
				opt.Size = experiment.Full
			}
			if opt.Workers < 0 || opt.Workers > train.MaxWorkers {
				return fmt.Errorf("--workers %d: want 0 (one per CPU) to %d", opt.Workers, train.MaxWorkers)
			}
			b, err := backend.Default()
			if err != nil {
				return err
			}
			opt.Hooks = experimentHooks(out, quiet)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			for _, name := range names {
				fmt.Fprintf(out, "resgo experiment %s (%s): backend %s, %d threads, output in %s/%s\n", name, opt.Size, b.Name(), b.Threads(), opt.Out, name)
				res, err := experiment.Run(ctx, b, name, opt)
				if errors.Is(err, train.ErrInterrupted) || errors.Is(err, context.Canceled) {
					return fmt.Errorf("experiment %s interrupted; run it again to start it over", name)
				}
				if err != nil {
					return err
				}
				held := "HELD"
				if !res.Held {
					held = "DID NOT HOLD"
				}
				fmt.Fprintf(out, "\n== %s: %s ==\nclaim: %s\nhere: %s\n", name, held, res.Claim, res.Verdict)
				fmt.Fprintf(out, "done in %s: %s, figures %s\n\n", res.Elapsed.Round(time.Second), res.Report, strings.Join(res.Figures, ", "))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opt.Out, "out", "runs/experiments", "output folder (each experiment writes into its own subfolder)")
	f.BoolVar(&quick, "quick", false, "a smoke run in about a minute: little data, numbers that say little")
	f.BoolVar(&full, "full", false, "the budget the claim needs: hours")
	f.Uint64Var(&opt.Seed, "seed", 0, "seed: subsets, initial weights, order (the same seed gives the same numbers)")
	f.StringVar(&opt.Data, "data", "", "Fashion-MNIST folder (default /usr/share/datasets/fashion-mnist)")
	f.IntVar(&opt.Workers, "workers", 0, "data loader goroutines (0: one per CPU)")
	f.BoolVar(&quiet, "quiet", false, "no progress bars or lines, only the stages and the epoch lines")
	return cmd
}

// experimentHooks shows an experiment's progress on w: a line per stage,
// each training as resgo train shows it (its curves.png drawn in the
// training's folder), and a progress bar per evaluation on a terminal.
func experimentHooks(w io.Writer, quiet bool) experiment.Hooks {
	f, ok := w.(*os.File)
	terminal := false
	if ok {
		st, err := f.Stat()
		terminal = err == nil && st.Mode()&os.ModeCharDevice != 0
	}
	var bar *progressbar.ProgressBar
	return experiment.Hooks{
		Stage: func(line string) { fmt.Fprintf(w, "\n-- %s --\n", line) },
		Training: func(name, dir string) train.Hooks {
			return trainview.Hooks(w, quiet, dir)
		},
		Evaluation: func(name string, done, total int) {
			if quiet || !terminal {
				return
			}
			if done == 1 || bar == nil {
				bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription("eval "+name),
					progressbar.OptionShowCount(), progressbar.OptionSetWidth(30),
					progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }))
			}
			_ = bar.Set(done) // a display error has nowhere to go
			if done == total {
				bar = nil
			}
		},
	}
}
