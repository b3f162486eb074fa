package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/internal/randt"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/optim"
	"github.com/resgo/resgo/tensor"
	"github.com/resgo/resgo/train"
)

// benchResult is what `resgo bench --json` prints.
type benchResult struct {
	Arch      string  `json:"arch"`
	Backend   string  `json:"backend"`
	Platform  string  `json:"platform"` // the backend's library and instruction set
	Threads   int     `json:"threads"`
	Mode      string  `json:"mode"`
	Batch     int     `json:"batch"`
	Size      int     `json:"size"`
	MedianMS  float64 `json:"median_ms"`
	MinMS     float64 `json:"min_ms"`
	ImagesSec float64 `json:"images_per_sec"`
	GFLOPs    float64 `json:"gflop_per_sec"`
	PeakRSS   float64 `json:"peak_rss_mib"`
}

func benchCmd() *cobra.Command {
	var (
		arch, mode, transfer string
		batch, size, runs    int
		warmup, inCh, thread int
		classes              int
		asJSON, small        bool
	)
	cmd := &cobra.Command{
		Use:   "bench --arch NAME --batch B --mode infer",
		Short: "Time a model's inference or training step on random input (median of --runs after --warmup)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if mode != "infer" && mode != "train" {
				return fmt.Errorf("--mode %q: want infer or train", mode)
			}
			name := os.Getenv("RESGO_BACKEND")
			if name == "" {
				name = backend.Names()[0]
			}
			b, err := backend.New(name, thread)
			if err != nil {
				return err
			}
			m, err := resnet.New(b, arch, resnet.Options{IncludeTop: true, InChannels: inCh, NumClasses: classes, SmallStem: small, Seed: 1})
			if err != nil {
				return err
			}
			x := randt.Uniform(7, batch, inCh, size, size)
			step := func() {}
			if mode == "train" {
				// One training step as the tutorial's loop: forward,
				// cross-entropy, backward, Adam.
				tm, err := train.ParseTransfer(transfer)
				if err != nil {
					return fmt.Errorf("--transfer: %w", err)
				}
				if err := tm.Apply(m); err != nil {
					return err
				}
				opt, err := optim.NewAdam(nn.Params(m, true), optim.DefaultAdam())
				if err != nil {
					return err
				}
				labels := make([]int, batch)
				for i := range labels {
					labels[i] = i % classes
				}
				var dlogits tensor.Tensor
				step = func() {
					logits := m.Forward(x)
					b.SoftmaxCrossEntropy(&dlogits, logits, labels, 0)
					m.Backward(&dlogits, false)
					opt.Step()
				}
			}
			rows, err := m.Summary(size, size)
			if err != nil {
				return err
			}
			var macs int64
			for _, r := range rows {
				macs += r.MACs
			}
			if mode == "train" {
				macs *= 3 // forward, backward-data and backward-weights
			}
			nn.SetTraining(m, mode == "train")
			var times []float64
			for i := range warmup + runs {
				start := time.Now()
				err := backend.Do(b, func() {
					if mode == "train" {
						step()
					} else {
						backend.Values(b, m.Forward(x)) // the logits, as a caller reads them
					}
				})
				if err != nil {
					return fmt.Errorf("%s %s, run %d: %w", arch, mode, i+1, err)
				}
				if i >= warmup {
					times = append(times, time.Since(start).Seconds()*1000)
				}
			}
			sort.Float64s(times)
			med := times[len(times)/2]
			if len(times)%2 == 0 {
				med = (times[len(times)/2-1] + times[len(times)/2]) / 2
			}
			res := benchResult{Arch: arch, Backend: b.Name(), Platform: backend.Describe(b), Threads: b.Threads(), Mode: mode, Batch: batch, Size: size,
				MedianMS: med, MinMS: times[0], ImagesSec: float64(batch) / med * 1000,
				GFLOPs: 2 * float64(macs) * float64(batch) / med / 1e6, PeakRSS: peakRSSMiB()}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s batch %d %dx%d, backend %s, %d threads: median %.2f ms (min %.2f) over %d runs, %.1f images/s, %.0f GFLOP/s, peak RSS %.0f MiB\n",
				arch, mode, batch, size, size, res.Platform, res.Threads, med, times[0], runs, res.ImagesSec, res.GFLOPs, res.PeakRSS)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&arch, "arch", "resnet18", "architecture")
	f.StringVar(&mode, "mode", "infer", "what to time: infer, or train (forward, loss, backward, Adam step)")
	f.StringVar(&transfer, "transfer", "all", "with --mode train: all, from:layerK or head (which part trains)")
	f.IntVar(&classes, "num-classes", 1000, "classes of the fc layer")
	f.BoolVar(&small, "small-stem", false, "3x3 stride-1 stem without max pooling")
	f.IntVar(&batch, "batch", 1, "batch size")
	f.IntVar(&size, "size", 224, "image height and width")
	f.IntVar(&inCh, "in-channels", 3, "image channels")
	f.IntVar(&runs, "runs", 20, "timed runs")
	f.IntVar(&warmup, "warmup", 3, "untimed runs first")
	f.IntVar(&thread, "threads", 0, "threads (default $RESGO_THREADS or the number of CPUs)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// peakRSSMiB returns the process's peak resident memory (VmHWM) in MiB, or
// 0 where /proc is not available.
func peakRSSMiB() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb float64
			if _, err := fmt.Sscan(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), &kb); err != nil {
				return 0
			}
			return kb / 1024
		}
	}
	return 0
}
