package experiment

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/resgo/resgo/charts"
	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/train"
)

// The transfer experiment's split, as the demo's: pretrain on T-shirt/top,
// Trouser, Pullover, Dress and Coat; learn Sandal, Shirt, Sneaker, Bag and
// Ankle boot.
var (
	sourceClasses = []int{0, 1, 2, 3, 4}
	targetClasses = []int{5, 6, 7, 8, 9}
	// transferModes: from scratch, then the three transfer modes of
	// train.Transfer.
	transferModes = []string{"scratch", "head", "from:layer3", "all"}
)

// transferBudget is how much the transfer experiment trains.
type transferBudget struct {
	sourcePerClass, sourceEpochs int
	sizes                        []int // target images per class
	// epochs[i] is the number of epochs at sizes[i]: more epochs on fewer
	// images, so that the small sets get enough steps.
	epochs           []int
	testPerClass     int // target test images per class (0: all 1,000)
	sourceTestPerCls int
}

func transferBudgetFor(s Size) transferBudget {
	switch s {
	case smoke:
		return transferBudget{sourcePerClass: 20, sourceEpochs: 1, sizes: []int{2, 4, 8}, epochs: []int{2, 1, 1}, testPerClass: 5, sourceTestPerCls: 5}
	case Quick:
		return transferBudget{sourcePerClass: 500, sourceEpochs: 1, sizes: []int{10, 100, 1000}, epochs: []int{10, 4, 1}, testPerClass: 200, sourceTestPerCls: 100}
	case Full:
		return transferBudget{sourcePerClass: 0, sourceEpochs: 10, sizes: []int{10, 100, 1000}, epochs: []int{60, 30, 15}, testPerClass: 0, sourceTestPerCls: 0}
	}
	return transferBudget{sourcePerClass: 0, sourceEpochs: 3, sizes: []int{10, 100, 1000}, epochs: []int{30, 15, 5}, testPerClass: 0, sourceTestPerCls: 200}
}

// transferRun is one training on the target classes.
type transferRun struct {
	mode      string
	perClass  int
	epochs    int
	trainable int
	accuracy  float64
	seconds   float64
	history   []train.EpochStats
}

// transfer pretrains ResNet-20 on five classes, then learns the other
// five from 10, 100 and 1000 images per class, from scratch and in the
// three transfer modes.
func transfer(e *env) (*Result, *report, error) {
	bud := transferBudgetFor(e.opt.Size)
	srcTrain, err := data.SelectClasses(e.sets.Train, sourceClasses)
	if err != nil {
		return nil, nil, err
	}
	srcTest, err := data.SelectClasses(e.sets.Val, sourceClasses)
	if err != nil {
		return nil, nil, err
	}
	tgtAll, err := data.SelectClasses(e.sets.Train, targetClasses)
	if err != nil {
		return nil, nil, err
	}
	tgtTestAll, err := data.SelectClasses(e.sets.Val, targetClasses)
	if err != nil {
		return nil, nil, err
	}
	src, srcVal, tgtTest := e.sub(srcTrain, bud.sourcePerClass), e.sub(srcTest, bud.sourceTestPerCls), e.sub(tgtTestAll, bud.testPerClass)

	// Pretraining on the source classes, as the demo: batch 128, lr 0.1.
	e.opt.Hooks.stage("pretraining on %s: %d images, %s", strings.Join(srcTrain.Classes(), ", "), src.Len(), plural(bud.sourceEpochs, "epoch"))
	preDir := filepath.Join(e.dir, "pretrain")
	cfg := e.config("resnet20", preDir, bud.sourceEpochs, 0.1, "pretraining")
	cfg.WeightDecay = 5e-4
	tr, err := train.New(e.b, cfg, src, srcVal, nil)
	if err != nil {
		return nil, nil, err
	}
	preHist, err := tr.Run(e.ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("pretraining: %w", err)
	}
	pre, _, err := modelfile.Load(e.b, filepath.Join(preDir, train.LastFile))
	if err != nil {
		return nil, nil, err
	}
	weights := filepath.Join(e.dir, "pretrained.safetensors")
	if err := checkpoint.WriteSafetensors(weights, checkpoint.FromModule(pre)); err != nil {
		return nil, nil, err
	}

	var runs []transferRun
	for i, n := range bud.sizes {
		tgt := data.TakePerClass(tgtAll, n, e.opt.Seed)
		for _, mode := range transferModes {
			e.opt.Hooks.stage("%s with %d images per class (%d images), %s", mode, n, tgt.Len(), plural(bud.epochs[i], "epoch"))
			r, err := e.transferTrain(mode, n, bud.epochs[i], weights, tgt, tgtTest)
			if err != nil {
				return nil, nil, err
			}
			runs = append(runs, r)
		}
	}

	res := &Result{
		Claim: "A network pretrained on other classes learns new ones from few images better than one trained from scratch; the more images, the smaller the gap.",
		Table: Table{Header: []string{"images per class", "mode", "epochs", "trainable parameters", "test accuracy", "training seconds"}},
	}
	var rows [][]string
	for _, r := range runs {
		res.Table.Rows = append(res.Table.Rows, []string{strconv.Itoa(r.perClass), r.mode, strconv.Itoa(r.epochs), strconv.Itoa(r.trainable), pct(r.accuracy), fmt.Sprintf("%.1f", r.seconds)})
		for _, h := range r.history {
			rows = append(rows, []string{strconv.Itoa(r.perClass), r.mode, strconv.Itoa(h.Epoch), num(h.TrainLoss), num(1 - h.TrainAcc), num(h.Seconds), num(r.accuracy)})
		}
	}
	csvPath := filepath.Join(e.dir, "transfer.csv")
	if err := writeCSV(csvPath, []string{"images_per_class", "mode", "epoch", "train_loss", "train_error", "seconds", "final_test_accuracy"}, rows); err != nil {
		return nil, nil, err
	}
	res.CSV = []string{csvPath}

	var accLines, timeLines []charts.Line
	for c, mode := range transferModes {
		var x, acc, secs []float64
		for _, r := range runs {
			if r.mode == mode {
				x, acc, secs = append(x, float64(r.perClass)), append(acc, 100*r.accuracy), append(secs, r.seconds)
			}
		}
		accLines = append(accLines, charts.Line{Series: charts.Series{Name: mode, X: x, Y: acc}, Color: c, Points: true, Dashed: mode == "scratch"})
		timeLines = append(timeLines, charts.Line{Series: charts.Series{Name: mode, X: x, Y: secs}, Color: c, Points: true, Dashed: mode == "scratch"})
	}
	fig := filepath.Join(e.dir, "transfer.png")
	err = charts.Figure(fig, []charts.Plot{
		{Title: "Transfer learning beats training from scratch on few images", XLabel: "target training images per class", YLabel: "test accuracy on the 5 target classes (%)", LogX: true, LegendBottom: true, Lines: accLines},
		{Title: "Training time per mode", XLabel: "target training images per class", YLabel: "training seconds", LogX: true, LogY: true, Lines: timeLines},
	})
	if err != nil {
		return nil, nil, err
	}
	res.Figures = []string{fig}

	res.Held, res.Verdict = transferVerdict(runs, bud.sizes)
	rep := &report{
		title:  "Transfer learning: pretrained features help most when the data is small",
		source: "the tutorial's transfer-learning section; Yosinski et al. 2014, How transferable are features in deep neural networks?",
		setup: []string{
			fmt.Sprintf("ResNet-20 pretrained on %s: %d images (%s), %s, SGD lr 0.1 cosine, batch 128; its test accuracy on those classes %s.",
				strings.Join(srcTrain.Classes(), ", "), src.Len(), perClassText(bud.sourcePerClass), plural(bud.sourceEpochs, "epoch"), pct(last(preHist).ValAcc)),
			fmt.Sprintf("Target: %s, with %s training images per class (the same images for every mode), tested on %d test images.",
				strings.Join(tgtAll.Classes(), ", "), joinInts(bud.sizes), tgtTest.Len()),
			fmt.Sprintf("Every target training: SGD, momentum 0.9, lr 0.01 cosine, weight decay 5e-4, batch 32, padding, crops and flips (the demo's); epochs %s for the three sizes.", joinInts(bud.epochs)),
			"Modes: scratch (random weights), head (only the new fc layer trains), from:layer3 (the last stage and fc train), all (every weight trains from the pretrained ones).",
		},
		notes: []string{"Training seconds exclude the evaluation; they depend on the machine and its load, the accuracies do not (same seed, same numbers)."},
	}
	return res, rep, nil
}

// transferTrain trains one mode on tgt and returns its test accuracy.
func (e *env) transferTrain(mode string, perClass, epochs int, weights string, tgt, test data.Dataset) (transferRun, error) {
	name := fmt.Sprintf("%s, %d per class", mode, perClass)
	dir := filepath.Join(e.dir, "runs", fmt.Sprintf("%d-%s", perClass, strings.ReplaceAll(mode, ":", "-")))
	cfg := e.config("resnet20", dir, epochs, 0.01, name)
	cfg.Batch, cfg.WeightDecay = 32, 5e-4
	if mode != "scratch" {
		cfg.Weights = weights
		t, err := train.ParseTransfer(mode)
		if err != nil {
			return transferRun{}, err
		}
		cfg.Transfer = t
	}
	tr, err := train.New(e.b, cfg, tgt, nil, nil)
	if err != nil {
		return transferRun{}, err
	}
	r := transferRun{mode: mode, perClass: perClass, epochs: epochs, trainable: tr.TrainableParams()}
	if r.history, err = tr.Run(e.ctx); err != nil {
		return transferRun{}, fmt.Errorf("%s: %w", name, err)
	}
	r.seconds = seconds(r.history)
	ev, err := e.evaluate(tr, test, name)
	if err != nil {
		return transferRun{}, err
	}
	r.accuracy = ev.Accuracy
	return r, nil
}

// transferVerdict says whether the best transfer mode beat scratch at the
// smallest size, and whether its lead shrank at the largest.
func transferVerdict(runs []transferRun, sizes []int) (bool, string) {
	lead := func(n int) (float64, string) {
		scratch, best, bestMode := 0.0, math.Inf(-1), ""
		for _, r := range runs {
			if r.perClass != n {
				continue
			}
			if r.mode == "scratch" {
				scratch = r.accuracy
			} else if r.accuracy > best {
				best, bestMode = r.accuracy, r.mode
			}
		}
		return best - scratch, bestMode
	}
	small, smallMode := lead(sizes[0])
	large, largeMode := lead(sizes[len(sizes)-1])
	held := small > 0 && large < small
	return held, fmt.Sprintf("with %d images per class the best transfer mode (%s) is %s over scratch; with %d, the best (%s) is %s.",
		sizes[0], smallMode, points(small), sizes[len(sizes)-1], largeMode, points(large))
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
