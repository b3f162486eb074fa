package experiment

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/charts"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/train"
)

// The batch normalization experiment's settings.
var (
	bnRates = []float64{0.01, 0.1, 0.5}
	// bnArchs: ResNet-20 with BN and the same net without (see
	// resnet.Arch.NoBN).
	bnArchs = []string{"resnet20", "resnet20_nobn"}
	// bnBatches are the batch sizes of the evaluation in training mode.
	bnBatches = []int{1, 8, 128}
)

const (
	// bnWindow is the number of steps whose mean loss is compared with the
	// target, so that one lucky batch does not count.
	bnWindow = 10
	// bnDiverged is the loss above which a run counts as diverged and is
	// stopped (ln 10 = 2.3 is a uniform guess over the ten classes).
	bnDiverged = 10
	// bnEvalRate is the learning rate of the net evaluated in training
	// mode (the tutorial's mistake): the usual one.
	bnEvalRate = 0.1
)

// bnBudget is how much each run of the batchnorm experiment trains, and
// the training loss whose first crossing is timed: one the good runs reach
// within the budget.
type bnBudget struct {
	perClass, testPerClass, epochs, batch int
	target                                float64
}

func bnBudgetFor(s Size) bnBudget {
	switch s {
	case smoke:
		return bnBudget{perClass: 16, testPerClass: 4, epochs: 1, batch: 32, target: 2}
	case Quick:
		return bnBudget{perClass: 400, testPerClass: 100, epochs: 1, batch: 64, target: 1}
	case Full:
		return bnBudget{perClass: 0, testPerClass: 0, epochs: 5, batch: 64, target: 0.3}
	}
	return bnBudget{perClass: 2500, testPerClass: 200, epochs: 2, batch: 64, target: 0.5}
}

// bnRun is one training of the batchnorm experiment.
type bnRun struct {
	arch     string
	lr       float64
	losses   []float64 // per step
	reached  int       // the step the smoothed loss first fell to the target (0: never)
	diverged string    // why the run stopped ("" if it did not)
	accuracy float64   // test accuracy in evaluation mode (NaN when diverged)
	seconds  float64
	trainer  *train.Trainer
}

// batchNorm trains ResNet-20 with and without BN at three learning rates,
// then evaluates the net with BN in training mode, the mistake the
// tutorial warns about.
func batchNorm(e *env) (*Result, *report, error) {
	bud := bnBudgetFor(e.opt.Size)
	trainDS, testDS := e.sub(e.sets.Train, bud.perClass), e.sub(e.sets.Val, bud.testPerClass)
	var runs []*bnRun
	for _, arch := range bnArchs {
		for _, lr := range bnRates {
			e.opt.Hooks.stage("%s at learning rate %g: %d images, %s of batch %d", arch, lr, trainDS.Len(), plural(bud.epochs, "epoch"), bud.batch)
			r, err := e.bnTrain(arch, lr, bud, trainDS, testDS)
			if err != nil {
				return nil, nil, err
			}
			runs = append(runs, r)
		}
	}

	res := &Result{
		Claim: "Batch normalization lets the same network train at higher learning rates and reach a given loss in fewer steps; without it, high rates diverge or train slower.",
		Table: Table{Header: []string{"net", "learning rate", "steps", "final loss (mean of last 10 steps)", "step reaching loss " + num(bud.target), "diverged", "test accuracy"}},
	}
	var rows [][]string
	for _, r := range runs {
		for i, l := range r.losses {
			rows = append(rows, []string{r.arch, num(r.lr), strconv.Itoa(i + 1), num(l)})
		}
		reached, diverged, acc := "not reached", "no", "-"
		if r.reached > 0 {
			reached = strconv.Itoa(r.reached)
		}
		if r.diverged != "" {
			diverged = r.diverged
		} else {
			acc = pct(r.accuracy)
		}
		final := "-"
		if len(r.losses) > 0 {
			final = fmt.Sprintf("%.3g", smoothed(r.losses, len(r.losses)))
		}
		res.Table.Rows = append(res.Table.Rows, []string{r.arch, num(r.lr), strconv.Itoa(len(r.losses)), final, reached, diverged, acc})
	}
	csvPath := filepath.Join(e.dir, "losses.csv")
	if err := writeCSV(csvPath, []string{"net", "lr", "step", "loss"}, rows); err != nil {
		return nil, nil, err
	}
	res.CSV = []string{csvPath}

	// The mistake: the trained net with BN evaluated in training mode.
	evalRun := runs[0]
	for _, r := range runs {
		if r.arch == "resnet20" && r.lr == bnEvalRate && r.diverged == "" {
			evalRun = r
		}
	}
	modes, err := e.trainModeAccuracy(evalRun, testDS)
	if err != nil {
		return nil, nil, err
	}
	modeTable := Table{Header: []string{"mode", "batch size", "test accuracy"}}
	modeTable.Rows = append(modeTable.Rows, []string{"evaluation (running statistics)", "any", pct(evalRun.accuracy)})
	var bx, by []float64
	for i, bs := range bnBatches {
		modeTable.Rows = append(modeTable.Rows, []string{"training (batch statistics)", strconv.Itoa(bs), pct(modes[i])})
		bx, by = append(bx, float64(bs)), append(by, 100*modes[i])
	}
	modeCSV := filepath.Join(e.dir, "train_mode.csv")
	var modeRows [][]string
	modeRows = append(modeRows, []string{"eval", "", num(evalRun.accuracy)})
	for i, bs := range bnBatches {
		modeRows = append(modeRows, []string{"train", strconv.Itoa(bs), num(modes[i])})
	}
	if err := writeCSV(modeCSV, []string{"mode", "batch", "accuracy"}, modeRows); err != nil {
		return nil, nil, err
	}
	res.CSV = append(res.CSV, modeCSV)

	lossFig, modeFig := filepath.Join(e.dir, "losses.png"), filepath.Join(e.dir, "train_mode.png")
	if err := plotLosses(lossFig, runs); err != nil {
		return nil, nil, err
	}
	err = charts.Figure(modeFig, []charts.Plot{{
		Title:  fmt.Sprintf("Forgetting model.eval(): accuracy depends on the batch (ResNet-20, lr %g)", evalRun.lr),
		XLabel: "batch size", YLabel: "test accuracy (%)", LogX: true, LegendBottom: true,
		Lines: []charts.Line{
			{Series: charts.Series{Name: "training mode", X: bx, Y: by}, Color: 3, Points: true},
			{Series: charts.Series{Name: "evaluation mode", X: []float64{bx[0], bx[len(bx)-1]}, Y: []float64{100 * evalRun.accuracy, 100 * evalRun.accuracy}}, Color: 0, Dashed: true},
		},
	}})
	if err != nil {
		return nil, nil, err
	}
	res.Figures = []string{lossFig, modeFig}

	res.Held, res.Verdict = bnVerdict(runs, bud.target)
	rep := &report{
		title:  "Batch normalization: higher learning rates, faster training; and evaluating in training mode",
		source: "Ioffe and Szegedy 2015, Batch Normalization, section 3.3 and Fig. 2; the tutorial's warning to call model.eval()",
		setup: []string{
			"ResNet-20 (CIFAR style) with BN, and `resnet20_nobn`: the same net with every BN removed (identity) and a bias in every convolution; both initialized alike (Kaiming normal, biases 0).",
			fmt.Sprintf("%d training images (%s), %s of batch %d (%d steps), SGD with momentum 0.9 at a constant learning rate of 0.01, 0.1 and 0.5, no weight decay, 2-pixel padding, crops and flips.",
				trainDS.Len(), perClassText(bud.perClass), plural(bud.epochs, "epoch"), bud.batch, bud.epochs*((trainDS.Len()+bud.batch-1)/bud.batch)),
			fmt.Sprintf("Step reaching the target: the first step at which the mean loss of the last %d steps is %g or less (a target the budget lets good runs reach). Diverged: the loss became NaN or infinite, or exceeded %d; the run stops there.", bnWindow, bud.target, bnDiverged),
			"Held: no run with BN diverged, and at every rate the net with BN did at least as well as the net without (reached the target sooner; else, not reached, a lower final loss; a diverged run does worst), better at one rate at least.",
			fmt.Sprintf("Test accuracy on %d test images in evaluation mode (BN on its running statistics).", testDS.Len()),
		},
		more: []namedTable{{
			caption: fmt.Sprintf("**The mistake the tutorial warns about**: the ResNet-20 trained with BN at lr %g evaluated in training mode, where BN normalizes each batch by its own statistics (as forgetting `model.eval()` does), against evaluation mode:", evalRun.lr),
			Table:   modeTable,
		}},
		notes: []string{
			"`losses.csv` has the loss of every step of every run; `losses.png` plots them (log scale; a run that diverged ends where it stopped).",
			"In training mode the prediction for an image depends on the other images of its batch; with a batch of one, BN normalizes each image by its own statistics.",
		},
	}
	return res, rep, nil
}

// bnTrain trains arch at lr, recording the loss of every step and stopping
// at divergence, then evaluates the net unless it diverged.
func (e *env) bnTrain(arch string, lr float64, bud bnBudget, trainDS, testDS data.Dataset) (*bnRun, error) {
	name := fmt.Sprintf("%s lr %g", arch, lr)
	dir := filepath.Join(e.dir, "runs", fmt.Sprintf("%s-lr%g", arch, lr))
	cfg := e.config(arch, dir, bud.epochs, lr, name)
	cfg.Batch, cfg.Schedule, cfg.WeightDecay = bud.batch, "constant", 0
	r := &bnRun{arch: arch, lr: lr, accuracy: math.NaN()}
	ctx, stop := context.WithCancel(e.ctx)
	defer stop()
	show := cfg.Hooks.Batch
	cfg.Hooks.Batch = func(p train.Progress) {
		r.losses = append(r.losses, p.BatchLoss)
		if r.reached == 0 && smoothed(r.losses, len(r.losses)) <= bud.target {
			r.reached = len(r.losses)
		}
		if p.BatchLoss > bnDiverged {
			r.diverged = fmt.Sprintf("at step %d (loss %.3g)", len(r.losses), p.BatchLoss)
			stop()
		}
		if show != nil {
			show(p)
		}
	}
	tr, err := train.New(e.b, cfg, trainDS, nil, nil)
	if err != nil {
		return nil, err
	}
	r.trainer = tr
	hist, err := tr.Run(ctx)
	r.seconds = seconds(hist)
	switch {
	case e.ctx.Err() != nil:
		return nil, e.ctx.Err()
	case errors.Is(err, train.ErrNonFinite) && r.diverged == "":
		r.diverged = fmt.Sprintf("at step %d (loss not finite)", len(r.losses)+1)
		return r, nil
	case r.diverged != "":
		return r, nil // stopped by the hook: ErrInterrupted, or ErrNonFinite saving it
	case err != nil:
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	ev, err := e.evaluate(tr, testDS, name)
	if err != nil {
		return nil, err
	}
	r.accuracy = ev.Accuracy
	return r, nil
}

// trainModeAccuracy returns the test accuracy of r's net in training mode,
// BN normalizing every batch by its own statistics, at each of bnBatches.
// It changes the net's running statistics, as PyTorch's training mode
// does: call it after every evaluation of the net.
func (e *env) trainModeAccuracy(r *bnRun, testDS data.Dataset) ([]float64, error) {
	m := r.trainer.Model()
	cfg := r.trainer.Config()
	var out []float64
	for _, bs := range bnBatches {
		e.opt.Hooks.stage("%s lr %g in training mode, batch %d", r.arch, r.lr, bs)
		loader, err := train.EvalLoader(testDS, cfg.Eval, bs, e.opt.Workers, nil)
		if err != nil {
			return nil, err
		}
		progress := e.opt.Hooks.evaluation(fmt.Sprintf("training mode, batch %d", bs), loader.Len())
		nn.SetTraining(m, true)
		correct, seen := 0, 0
		it := loader.Epoch(0)
		for {
			if err := e.ctx.Err(); err != nil {
				it.Close()
				return nil, err
			}
			batch := it.Next()
			if batch == nil {
				break
			}
			var logits []float32
			err := backend.Do(e.b, func() { logits = backend.Values(e.b, m.Forward(batch.X)) })
			if err != nil {
				it.Close()
				return nil, err
			}
			k := len(logits) / len(batch.Labels)
			for i, l := range batch.Labels {
				if argmax(logits[i*k:(i+1)*k]) == l {
					correct++
				}
			}
			seen += len(batch.Labels)
			batch.Release()
			progress(batch.Index + 1)
		}
		it.Close()
		nn.SetTraining(m, false)
		out = append(out, float64(correct)/float64(max(seen, 1)))
	}
	return out, nil
}

// bnVerdict says whether BN helped as the paper claims: no run with BN
// diverged, and at every rate the net with BN did at least as well as the
// net without (see better), and better at one rate at least.
func bnVerdict(runs []*bnRun, target float64) (bool, string) {
	held, anyBetter := true, false
	var parts []string
	for _, lr := range bnRates {
		var with, without *bnRun
		for _, r := range runs {
			if r.lr == lr && r.arch == bnArchs[0] {
				with = r
			}
			if r.lr == lr && r.arch == bnArchs[1] {
				without = r
			}
		}
		if with.diverged != "" || better(without, with) {
			held = false
		}
		anyBetter = anyBetter || better(with, without)
		parts = append(parts, fmt.Sprintf("at lr %g with BN %s, without %s", lr, bnOutcome(with), bnOutcome(without)))
	}
	return held && anyBetter, "loss " + num(target) + " reached " + strings.Join(parts, "; ") + "."
}

// better reports whether run a did better than run b: it reached the
// target sooner, or neither reached it and a ended at a lower loss, or b
// diverged and a did not.
func better(a, b *bnRun) bool {
	rank := func(r *bnRun) (int, float64) {
		switch {
		case r.diverged != "":
			return 2, 0
		case r.reached > 0:
			return 0, float64(r.reached)
		}
		return 1, smoothed(r.losses, len(r.losses))
	}
	ca, va := rank(a)
	cb, vb := rank(b)
	return ca < cb || ca == cb && va < vb
}

func bnOutcome(r *bnRun) string {
	switch {
	case r.diverged != "":
		return "diverged " + r.diverged
	case r.reached == 0:
		return fmt.Sprintf("not reached in %d steps (final loss %.3g)", len(r.losses), smoothed(r.losses, len(r.losses)))
	}
	return fmt.Sprintf("at step %d", r.reached)
}

// smoothed returns the mean of the losses of the bnWindow steps up to
// step n (fewer at the start).
func smoothed(losses []float64, n int) float64 {
	from := max(0, n-bnWindow)
	s := 0.0
	for _, l := range losses[from:n] {
		s += l
	}
	return s / float64(n-from)
}

// plotLosses draws the loss per step of every run: with BN on the left,
// without on the right.
func plotLosses(path string, runs []*bnRun) error {
	var plots []charts.Plot
	for _, arch := range bnArchs {
		title := "ResNet-20 with batch normalization"
		if arch != bnArchs[0] {
			title = "ResNet-20 without batch normalization"
		}
		// One range for both, above the divergence threshold.
		pl := charts.Plot{Title: title, XLabel: "step", YLabel: "training loss (batch)", LogY: true, YMin: 0.05, YMax: 3 * bnDiverged}
		for i, lr := range bnRates {
			for _, r := range runs {
				if r.arch != arch || r.lr != lr {
					continue
				}
				var x []float64
				for k := range r.losses {
					x = append(x, float64(k+1))
				}
				name := fmt.Sprintf("lr %g", lr)
				if r.diverged != "" {
					name += " (diverged)"
				}
				pl.Lines = append(pl.Lines, charts.Line{Series: charts.Series{Name: name, X: x, Y: r.losses}, Color: i, Width: 1})
			}
		}
		plots = append(plots, pl)
	}
	return charts.Figure(path, plots)
}

func argmax(v []float32) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}
