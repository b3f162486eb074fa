// Package experiment measures, on Fashion-MNIST, the claims the tutorial
// shows only as figures from the papers: degradation, residual responses,
// batch normalization and transfer learning, each as figures, a report and
// raw CSV in an output folder.
package experiment

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/train"
	"github.com/resgo/resgo/transform"
)

// Size is how much an experiment computes.
type Size int

const (
	// Default takes about 10 minutes on 2 idle cores.
	Default Size = iota
	// Quick takes about a minute: the experiment's whole path on little
	// data, whose numbers say little.
	Quick
	// Full is as long as the claim needs: hours.
	Full
	// smoke is for tests: seconds, numbers that say nothing.
	smoke
)

// String returns "default", "quick" or "full".
func (s Size) String() string {
	switch s {
	case Quick:
		return "quick"
	case Full:
		return "full"
	case smoke:
		return "smoke"
	}
	return "default"
}

// Names are the experiments Run knows, in the order the README presents
// them.
var Names = []string{"degradation", "residual-response", "batchnorm", "transfer"}

// Options configure an experiment.
type Options struct {
	// Out is the folder the experiments write into: each experiment its
	// own subfolder, named as the experiment.
	Out string
	// Size is how much to compute: Default, Quick or Full.
	Size Size
	// Seed chooses the subsets, the initial weights and the training
	// order: the same seed gives the same numbers.
	Seed uint64
	// Data is the Fashion-MNIST folder ("" for data.FashionMNISTDir).
	Data string
	// Workers is the number of data loader goroutines (0: one per CPU).
	Workers int
	// Hooks follow the experiment.
	Hooks Hooks
}

// Hooks are the functions an experiment calls as it goes; nil ones are
// skipped. They run on the experiment's goroutine.
type Hooks struct {
	// Stage is called when a step of the experiment starts, with a line
	// that says what it does.
	Stage func(line string)
	// Training returns the hooks of a training the experiment starts:
	// name says what is trained, dir is the training's output folder.
	Training func(name, dir string) train.Hooks
	// Evaluation is called as an evaluation goes, with the batches done
	// and the batches in all; name says what is evaluated.
	Evaluation func(name string, done, total int)
}

func (h Hooks) stage(format string, args ...any) {
	if h.Stage != nil {
		h.Stage(fmt.Sprintf(format, args...))
	}
}

func (h Hooks) training(name, dir string) train.Hooks {
	if h.Training == nil {
		return train.Hooks{}
	}
	return h.Training(name, dir)
}

func (h Hooks) evaluation(name string, total int) func(done int) {
	return func(done int) {
		if h.Evaluation != nil {
			h.Evaluation(name, done, total)
		}
	}
}

// Result is what an experiment measured and where it wrote it.
type Result struct {
	Name  string
	Claim string // the claim, in one sentence
	// Held says whether the claim held in this run; Verdict says so in
	// one sentence, with by how much.
	Held    bool
	Verdict string
	Table   Table
	Dir     string   // the experiment's folder
	Report  string   // report.md
	Figures []string // the PNG figures
	CSV     []string // the raw numbers
	Elapsed time.Duration
}

// Table is a table of the report: a header and rows of as many cells.
type Table struct {
	Header []string
	Rows   [][]string
}

// env is what every experiment gets: the backend, the options, the
// datasets and its folder.
type env struct {
	ctx  context.Context
	b    backend.Backend
	opt  Options
	dir  string // the experiment's folder
	sets *data.Sets
}

// Run runs the named experiment (one of Names) on b and writes its
// figures, report.md and CSV into opt.Out/name, replacing what an earlier
// run of it left there. When ctx is cancelled it stops after the current
// step with an error wrapping context.Canceled or train.ErrInterrupted;
// an interrupted experiment starts over when run again.
func Run(ctx context.Context, b backend.Backend, name string, opt Options) (*Result, error) {
	run, ok := experiments[name]
	if !ok {
		return nil, fmt.Errorf("experiment %q: want one of %s", name, strings.Join(Names, ", "))
	}
	if opt.Out == "" {
		return nil, fmt.Errorf("experiment %s: an output folder is required", name)
	}
	if opt.Size < Default || opt.Size > smoke {
		return nil, fmt.Errorf("experiment %s: unknown size %d", name, opt.Size)
	}
	if opt.Workers < 0 || opt.Workers > train.MaxWorkers {
		return nil, fmt.Errorf("experiment %s: %d loader workers: want 0 (one per CPU) to %d", name, opt.Workers, train.MaxWorkers)
	}
	start := time.Now()
	sets, err := data.Open(data.FashionMNISTName, data.OpenOptions{FashionMNISTDir: opt.Data})
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(opt.Out, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("experiment %s: %w", name, err)
	}
	e := &env{ctx: ctx, b: b, opt: opt, dir: dir, sets: sets}
	res, rep, err := run(e)
	if err != nil {
		return nil, fmt.Errorf("experiment %s: %w", name, err)
	}
	res.Name, res.Dir, res.Elapsed = name, dir, time.Since(start)
	rep.result = res
	rep.backend, rep.threads, rep.opt = b.Name(), b.Threads(), opt
	res.Report = filepath.Join(dir, "report.md")
	if err := writeFile(res.Report, rep.markdown()); err != nil {
		return nil, fmt.Errorf("experiment %s: %w", name, err)
	}
	return res, nil
}

// experiments are the experiments by name. Each returns its result
// (without Name, Dir, Report and Elapsed, which Run fills in) and the
// rest of its report.
var experiments = map[string]func(e *env) (*Result, *report, error){
	"degradation":       degradation,
	"residual-response": residualResponse,
	"batchnorm":         batchNorm,
	"transfer":          transfer,
}

// sub returns a subset of ds with perClass images of each class (all of
// them when perClass is 0), chosen by the seed.
func (e *env) sub(ds data.Dataset, perClass int) data.Dataset {
	if perClass <= 0 {
		return ds
	}
	return data.TakePerClass(ds, perClass, e.opt.Seed)
}

// config returns the settings of a CIFAR-style training on Fashion-MNIST
// as the paper's section 4.2 trains: SGD with momentum 0.9, batch 128,
// 4-pixel padding (2 on 28x28 images), random crops and flips; a cosine
// schedule over the epochs in place of the paper's steps at 32k and 48k
// iterations, which a short budget never reaches.
func (e *env) config(arch, dir string, epochs int, lr float64, name string) train.Config {
	cfg := train.Defaults(arch)
	cfg.Out, cfg.Epochs, cfg.Batch, cfg.Seed = dir, epochs, 128, e.opt.Seed
	cfg.Overwrite = true
	cfg.Optimizer, cfg.LR, cfg.Momentum, cfg.WeightDecay = "sgd", lr, 0.9, 1e-4
	cfg.Schedule = "cosine"
	cfg.Augment = transform.SmallImageTrain(28, 2)
	cfg.Eval = transform.Preset{Channels: 1, Norm: data.FashionMNISTNorm}
	cfg.Workers = e.opt.Workers
	cfg.Hooks = e.opt.Hooks.training(name, dir)
	return cfg
}

// evaluate returns the accuracy and the loss of m on ds in evaluation
// mode.
func (e *env) evaluate(tr *train.Trainer, ds data.Dataset, name string) (*train.EvalResult, error) {
	cfg := tr.Config()
	loader, err := train.EvalLoader(ds, cfg.Eval, 256, e.opt.Workers, nil)
	if err != nil {
		return nil, err
	}
	return train.Evaluate(e.ctx, tr.Model(), loader, 0, e.opt.Hooks.evaluation(name, loader.Len()))
}

// pct formats a fraction as a percentage with one decimal.
func pct(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }

// points formats a difference of fractions in percentage points.
func points(v float64) string { return fmt.Sprintf("%+.1f points", 100*v) }

// last returns the last entry of a history, zero when there is none.
func last(h []train.EpochStats) train.EpochStats {
	if len(h) == 0 {
		return train.EpochStats{}
	}
	return h[len(h)-1]
}

// seconds returns the training time of a history.
func seconds(h []train.EpochStats) float64 {
	s := 0.0
	for _, r := range h {
		s += r.Seconds
	}
	return s
}
