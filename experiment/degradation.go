package experiment

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/resgo/resgo/charts"
	"github.com/resgo/resgo/train"
)

// depthNets are the nets of the degradation experiment: the paper's
// CIFAR-10 plain nets of Fig. 6 (left) and ResNets (middle) at 20 and 56
// layers.
var depthNets = []string{"plain20", "plain56", "resnet20", "resnet56"}

// depthBudget is how much each net of the degradation experiment trains.
type depthBudget struct {
	perClass     int // training images per class (0: all 6,000)
	testPerClass int // test images per class (0: all 1,000)
	epochs       int
}

func depthBudgetFor(s Size) depthBudget {
	switch s {
	case smoke:
		return depthBudget{perClass: 12, testPerClass: 5, epochs: 1}
	case Quick:
		return depthBudget{perClass: 300, testPerClass: 100, epochs: 2}
	case Full:
		return depthBudget{perClass: 0, testPerClass: 0, epochs: 30}
	}
	return depthBudget{perClass: 1000, testPerClass: 200, epochs: 8}
}

// describe says what the budget trains on, for the reports.
func (d depthBudget) describe(e *env) string {
	tr, te := e.sub(e.sets.Train, d.perClass), e.sub(e.sets.Val, d.testPerClass)
	return fmt.Sprintf("%d of Fashion-MNIST's 60,000 training images (%s), %s of batch 128 (%d iterations), %d test images",
		tr.Len(), perClassText(d.perClass), plural(d.epochs, "epoch"), d.epochs*((tr.Len()+127)/128), te.Len())
}

// plural returns "1 epoch", "2 epochs".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func perClassText(n int) string {
	if n <= 0 {
		return "all"
	}
	return fmt.Sprintf("%d per class", n)
}

// trainedNet is a net of the degradation experiment after training.
type trainedNet struct {
	arch    string
	dir     string // its training's folder: last.safetensors, history.csv
	history []train.EpochStats
}

// trainDepthNets trains the four nets of depthNets on the budget's subsets,
// each in dir/arch, validating on the test subset after every epoch.
func (e *env) trainDepthNets(dir string, bud depthBudget) ([]trainedNet, error) {
	trainDS, testDS := e.sub(e.sets.Train, bud.perClass), e.sub(e.sets.Val, bud.testPerClass)
	var nets []trainedNet
	for i, arch := range depthNets {
		netDir := filepath.Join(dir, arch)
		e.opt.Hooks.stage("%s (%d of %d): %d training images, %s", arch, i+1, len(depthNets), trainDS.Len(), plural(bud.epochs, "epoch"))
		tr, err := train.New(e.b, e.config(arch, netDir, bud.epochs, 0.1, arch), trainDS, testDS, nil)
		if err != nil {
			return nil, err
		}
		hist, err := tr.Run(e.ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", arch, err)
		}
		nets = append(nets, trainedNet{arch: arch, dir: netDir, history: hist})
	}
	return nets, nil
}

// degradation trains plain-20/56 and ResNet-20/56 and compares their
// training and test errors epoch by epoch (the paper's Fig. 1 and 6).
func degradation(e *env) (*Result, *report, error) {
	bud := depthBudgetFor(e.opt.Size)
	nets, err := e.trainDepthNets(filepath.Join(e.dir, "nets"), bud)
	if err != nil {
		return nil, nil, err
	}
	final := map[string]train.EpochStats{}
	res := &Result{
		Claim: "With more layers a plain network (no shortcuts) reaches a higher training error, not a lower one (degradation); a ResNet of the same depth does not: its deeper version trains to a lower error.",
		Table: Table{Header: []string{"net", "layers", "shortcuts", "final training error", "final test error", "best test error", "training seconds"}},
	}
	var rows [][]string
	for _, n := range nets {
		f := last(n.history)
		final[n.arch] = f
		best := 1.0
		for _, h := range n.history {
			best = min(best, 1-h.ValAcc)
			rows = append(rows, []string{n.arch, strconv.Itoa(h.Epoch), num(1 - h.TrainAcc), num(1 - h.ValAcc), num(h.TrainLoss), num(h.ValLoss), num(h.Seconds)})
		}
		shortcuts := "yes"
		if strings.HasPrefix(n.arch, "plain") {
			shortcuts = "no"
		}
		res.Table.Rows = append(res.Table.Rows, []string{n.arch, n.arch[len(n.arch)-2:], shortcuts,
			pct(1 - f.TrainAcc), pct(1 - f.ValAcc), pct(best), fmt.Sprintf("%.0f", seconds(n.history))})
	}
	csvPath := filepath.Join(e.dir, "degradation.csv")
	if err := writeCSV(csvPath, []string{"net", "epoch", "train_error", "test_error", "train_loss", "test_loss", "seconds"}, rows); err != nil {
		return nil, nil, err
	}
	res.CSV = []string{csvPath}

	for _, fig := range []struct{ file, title, shallow, deep string }{
		{"plain.png", "Plain nets: the deeper has the higher training error (degradation)", "plain20", "plain56"},
		{"resnet.png", "ResNets: the deeper does not have the higher training error", "resnet20", "resnet56"},
	} {
		path := filepath.Join(e.dir, fig.file)
		if err := plotErrors(path, fig.title, nets, fig.shallow, fig.deep); err != nil {
			return nil, nil, err
		}
		res.Figures = append(res.Figures, path)
	}

	errOf := func(arch string) float64 { return 1 - final[arch].TrainAcc }
	dPlain := errOf("plain56") - errOf("plain20")
	dRes := errOf("resnet56") - errOf("resnet20")
	res.Held = dPlain > 0 && dRes <= 0
	res.Verdict = fmt.Sprintf("after %s plain-56's training error is %s (%s) against plain-20's %s, ResNet-56's is %s (%s) against ResNet-20's %s.",
		plural(bud.epochs, "epoch"), pct(errOf("plain56")), points(dPlain), pct(errOf("plain20")), pct(errOf("resnet56")), points(dRes), pct(errOf("resnet20")))
	if !res.Held {
		res.Verdict += " " + degradationWhyNot(e.opt.Size, dPlain, dRes, bud.epochs*((e.sub(e.sets.Train, bud.perClass).Len()+127)/128))
	}
	rep := &report{
		title:  "Degradation: deeper plain nets train worse, deeper ResNets do not",
		source: "He et al. 2015, Deep Residual Learning for Image Recognition, Fig. 1 and Fig. 6 on CIFAR-10",
		setup: []string{
			"Fashion-MNIST (28x28 grayscale) in place of CIFAR-10; the paper's CIFAR nets (6n+2 layers, 16/32/64 channels, 3x3 stem) with n = 3 and 9, plain twins without any shortcut.",
			bud.describe(e) + ".",
			"SGD, momentum 0.9, weight decay 1e-4, learning rate 0.1 on a cosine schedule, batch 128, 2-pixel padding with random 28x28 crops and horizontal flips (the paper: 4 pixels on 32x32, lr 0.1 divided by 10 at 32k and 48k of 64k iterations).",
			"Training error: the error on the training batches during each epoch (augmented, BN on batch statistics), as the paper's thin curves; test error: after each epoch in evaluation mode, as its bold curves.",
		},
		notes: []string{
			"The trained nets are in `nets/` (last.safetensors, history.csv, curves.png each); `resgo experiment residual-response` with the same --out and size reuses them.",
			"On this scale the verdict compares final training errors that differ by a few points at most; a different --seed can move them by a point or so.",
		},
	}
	return res, rep, nil
}

// degradationWhyNot says, for a run whose result is not the paper's,
// which half failed and what budget the claim was made at.
func degradationWhyNot(s Size, dPlain, dRes float64, iterations int) string {
	var why string
	switch {
	case dPlain <= 0 && dRes > 0:
		why = "Neither half held"
	case dPlain <= 0:
		why = "The plain nets did not degrade"
	default:
		why = "The deeper ResNet trained to a higher error too"
	}
	why += fmt.Sprintf(" after %d iterations; the paper's curves are over 64k iterations (164 epochs of CIFAR-10)", iterations)
	if s == Full {
		return why + "."
	}
	return why + ": `--full` (all 60,000 images, 30 epochs, 14k iterations) is the budget to measure it at."
}

// plotErrors draws the training (thin) and test (bold) error per epoch of
// the nets shallow and deep, as the paper's Fig. 1.
func plotErrors(path, title string, nets []trainedNet, shallow, deep string) error {
	var lines []charts.Line
	for _, n := range nets {
		c := slices.Index([]string{shallow, deep}, n.arch)
		if c < 0 {
			continue
		}
		var x, trainErr, testErr []float64
		for _, h := range n.history {
			x = append(x, float64(h.Epoch))
			trainErr = append(trainErr, 100*(1-h.TrainAcc))
			testErr = append(testErr, 100*(1-h.ValAcc))
		}
		lines = append(lines,
			charts.Line{Series: charts.Series{Name: n.arch + " training", X: x, Y: trainErr}, Color: c, Width: 1, Points: len(x) < 3},
			charts.Line{Series: charts.Series{Name: n.arch + " test", X: x, Y: testErr}, Color: c, Width: 3, Points: len(x) < 3})
	}
	// Errors fall from the top left: the legend goes in the bottom left.
	return charts.Figure(path, []charts.Plot{{Title: title, XLabel: "epoch", YLabel: "error (%)", Lines: lines, LegendBottom: true, LegendLeft: true}})
}

// depthNetsFor returns the four nets of the degradation experiment for
// the budget: those the degradation experiment trained in the same
// output folder, or an earlier run of the residual-response experiment
// in dir, when they trained on this budget's data for its epochs with
// this seed; otherwise it trains them in dir. reused names the folder the
// nets came from ("" when trained here).
func (e *env) depthNetsFor(dir string, bud depthBudget) (nets []trainedNet, reused string, err error) {
	trainPrint := train.Fingerprint(e.sub(e.sets.Train, bud.perClass))
	for _, from := range []string{filepath.Join(e.opt.Out, "degradation", "nets"), dir} {
		nets = nets[:0]
		for _, arch := range depthNets {
			st, err := train.ReadState(filepath.Join(from, arch))
			if err != nil || !st.Finished || st.Config.Seed != e.opt.Seed || st.Config.Epochs != bud.epochs ||
				st.TrainData == nil || !samePrint(*st.TrainData, trainPrint) {
				break
			}
			nets = append(nets, trainedNet{arch: arch, dir: filepath.Join(from, arch), history: st.History})
		}
		if len(nets) == len(depthNets) {
			return nets, from, nil
		}
	}
	nets, err = e.trainDepthNets(dir, bud)
	return nets, "", err
}

func samePrint(a, b train.DataPrint) bool {
	return slices.Equal(a.Counts, b.Counts) && slices.Equal(a.Hashes, b.Hashes)
}
