package train_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/train"
)

// tinyFolder writes n images of each of three classes into dir/data and
// opens it.
func tinyFolder(t *testing.T, dir string, n int) (string, *data.ImageFolder) {
	t.Helper()
	root := filepath.Join(dir, "data")
	makeFolder(t, root, []int{0, 1, 2}, n, 11)
	ds, err := data.OpenImageFolder(root)
	if err != nil {
		t.Fatal(err)
	}
	return root, ds
}

// tinyConfig is smallConfig with batches of 8 and one epoch.
func tinyConfig(out string) train.Config {
	cfg := smallConfig(out)
	cfg.Epochs, cfg.Batch = 1, 8
	return cfg
}

// fileSums returns the SHA-256 of each named file of dir that exists.
func fileSums(t *testing.T, dir string, names ...string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out[n] = sha256.Sum256(b)
	}
	return out
}

// allFinite fails the test if a checkpoint holds a NaN or an infinity.
func allFinite(t *testing.T, path string) {
	t.Helper()
	sd, _, err := modelfile.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range sd.Keys {
		for _, v := range sd.Get(k).ToTensor().Values() {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s: %s holds %v", path, k, v)
			}
		}
	}
}

// namesTensor reports whether msg names a variable of tr's model or the
// optimizer's state.
func namesTensor(msg string, tr *train.Trainer) bool {
	for _, v := range nn.State(tr.Model()) {
		if strings.Contains(msg, " "+v.Name+" ") {
			return true
		}
	}
	return strings.Contains(msg, "optimizer state ")
}

// TestHugeLearningRateStops: with --lr 1e30 the training diverges; Run
// must stop with an error naming the epoch and the step (and the loss or
// the tensor), and write no checkpoint.
func TestHugeLearningRateStops(t *testing.T) {
	dir := t.TempDir()
	_, ds := tinyFolder(t, dir, 8)
	for _, opt := range []string{"adam", "sgd"} {
		out := filepath.Join(dir, "run-"+opt)
		cfg := tinyConfig(out)
		cfg.Epochs, cfg.LR, cfg.Optimizer = 2, 1e30, opt
		tr, err := train.New(testBackend(t), cfg, ds, ds, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tr.Run(context.Background())
		if !errors.Is(err, train.ErrNonFinite) {
			t.Fatalf("%s, lr 1e30: %v, want a divergence error", opt, err)
		}
		msg := err.Error()
		t.Logf("%s: %s", opt, msg)
		if !strings.HasPrefix(msg, "epoch 1, ") || !strings.Contains(msg, "step ") {
			t.Errorf("%s: the error does not name the epoch and step: %s", opt, msg)
		}
		if !strings.Contains(msg, "the loss is") && !namesTensor(msg, tr) {
			t.Errorf("%s: the error names neither the loss nor a tensor: %s", opt, msg)
		}
		if got := fileSums(t, out, train.BestFile, train.LastFile); len(got) != 0 {
			t.Errorf("%s: checkpoints written by a diverged run: %v", opt, got)
		}
	}
}

// TestDivergenceKeepsGoodCheckpoints: epoch 1 trains well and writes its
// checkpoints; a step schedule then multiplies the learning rate by 1e300
// and epoch 2 diverges. Run must fail naming epoch 2 and leave epoch 1's
// checkpoints as they were, finite; an interruption in the diverged epoch
// must not save the poisoned state either.
func TestDivergenceKeepsGoodCheckpoints(t *testing.T) {
	dir := t.TempDir()
	_, ds := tinyFolder(t, dir, 8)
	for _, interrupt := range []bool{false, true} {
		out := filepath.Join(dir, "run")
		if interrupt {
			out += "-interrupted"
		}
		cfg := tinyConfig(out)
		cfg.Epochs, cfg.Schedule, cfg.StepEpochs, cfg.Gamma = 2, "step", 1, 1e300
		var good map[string][32]byte
		cfg.Hooks.Epoch = func(train.EpochStats, []train.EpochStats) error {
			good = fileSums(t, out, train.BestFile, train.LastFile)
			return nil
		}
		tr, err := train.New(testBackend(t), cfg, ds, ds, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		var ctx context.Context = context.Background()
		if interrupt {
			// The context is checked before each step and at the end of
			// a pass: 4 times for epoch 1's 3 training batches, 4 for its
			// 3 validation batches, then once before epoch 2's first step;
			// the next check interrupts.
			ctx = &stopAfter{context.Background(), 9}
		}
		_, err = tr.Run(ctx)
		if !errors.Is(err, train.ErrNonFinite) || !strings.HasPrefix(err.Error(), "epoch 2, ") {
			t.Fatalf("interrupt %v: %v, want a divergence in epoch 2", interrupt, err)
		}
		t.Logf("interrupt %v: %v", interrupt, err)
		if len(good) != 2 {
			t.Fatalf("epoch 1 wrote %d checkpoints", len(good))
		}
		if now := fileSums(t, out, train.BestFile, train.LastFile); !mapsEqual(now, good) {
			t.Errorf("interrupt %v: the diverged epoch replaced epoch 1's checkpoints", interrupt)
		}
		allFinite(t, filepath.Join(out, train.BestFile))
		allFinite(t, filepath.Join(out, train.LastFile))
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestValidateRefuses: settings that cannot train are refused up front,
// by New, with a *ConfigError naming the field, and nothing is written.
func TestValidateRefuses(t *testing.T) {
	dir := t.TempDir()
	_, ds := tinyFolder(t, dir, 2)
	out := filepath.Join(dir, "run")
	cases := map[string]func(c *train.Config){
		"Batch":          func(c *train.Config) { c.Batch = 0 },
		"Epochs":         func(c *train.Config) { c.Epochs = 0 },
		"LR":             func(c *train.Config) { c.LR = math.NaN() },
		"Momentum":       func(c *train.Config) { c.Momentum = 1 },
		"WeightDecay":    func(c *train.Config) { c.WeightDecay = math.Inf(1) },
		"LabelSmoothing": func(c *train.Config) { c.LabelSmoothing = -0.1 },
		"WarmupSteps":    func(c *train.Config) { c.WarmupSteps = -1 },
		"Optimizer":      func(c *train.Config) { c.Optimizer = "lbfgs" },
		"Schedule":       func(c *train.Config) { c.Schedule = "exp" },
		"Gamma":          func(c *train.Config) { c.Schedule, c.Gamma = "step", 0 },
		"Workers":        func(c *train.Config) { c.Workers = train.MaxWorkers + 1 },
		"Out":            func(c *train.Config) { c.Out = "" },
		"Augment":        func(c *train.Config) { c.Augment.ResizedCrop = 24 }, // and Crop
		"Augment.Crop":   func(c *train.Config) { c.Augment.Crop = train.MaxSide + 1 },
		"Eval.Channels":  func(c *train.Config) { c.Eval.Channels = 2 },
		"Transfer":       func(c *train.Config) { c.Transfer.From = 7 },
	}
	for field, change := range cases {
		cfg := tinyConfig(out)
		change(&cfg)
		_, err := train.New(testBackend(t), cfg, ds, ds, &bytes.Buffer{})
		var ce *train.ConfigError
		if !errors.As(err, &ce) || ce.Field != field {
			t.Errorf("%s: %v, want a ConfigError of %s", field, err, field)
		}
	}
	// A batch whose values exceed MaxBatchValues: 24x24x3 crops.
	cfg := tinyConfig(out)
	cfg.Batch = train.MaxBatchValues/(3*24*24) + 1
	var ce *train.ConfigError
	if _, err := train.New(testBackend(t), cfg, ds, ds, &bytes.Buffer{}); !errors.As(err, &ce) || ce.Field != "Batch" || !strings.Contains(err.Error(), "exceed") {
		t.Errorf("batch of %d: %v", cfg.Batch, err)
	}
	cfg.Batch = train.MaxBatchValues / (3 * 24 * 24)
	if err := cfg.Validate(); err != nil {
		t.Errorf("the largest batch allowed: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused settings created %s: %v", out, err)
	}
	// The defaults are valid.
	d := train.Defaults("resnet18")
	d.Out = out
	if err := d.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	// An empty training set.
	empty := data.Subset(ds, nil)
	if _, err := train.New(testBackend(t), tinyConfig(out), empty, ds, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "no training images") {
		t.Errorf("no training images: %v", err)
	}
}

// TestNoValidation: with --val-split 0 (an empty validation set) or no
// validation set, the run trains, reports no validation accuracy, writes
// no best checkpoint and leaves history.csv's validation columns empty.
func TestNoValidation(t *testing.T) {
	dir := t.TempDir()
	_, ds := tinyFolder(t, dir, 4)
	trainDS, valDS, err := data.SplitFraction(ds, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if valDS.Len() != 0 {
		t.Fatalf("val-split 0 kept %d images for validation", valDS.Len())
	}
	for name, val := range map[string]data.Dataset{"empty": valDS, "nil": nil} {
		out := filepath.Join(dir, name)
		cfg := tinyConfig(out)
		cfg.Epochs = 2
		passes := 0
		cfg.Hooks.PassStart = func(p train.Progress) {
			if p.Phase == train.Validation {
				t.Errorf("%s: a validation pass", name)
			}
			passes++
		}
		tr, err := train.New(testBackend(t), cfg, trainDS, val, &bytes.Buffer{})
		if err != nil {
			t.Fatal(name, err)
		}
		hist, err := tr.Run(context.Background())
		if err != nil {
			t.Fatal(name, err)
		}
		if len(hist) != 2 || !hist[0].NoVal || !hist[1].NoVal || passes != 2 {
			t.Errorf("%s: history %+v after %d passes", name, hist, passes)
		}
		if _, err := os.Stat(filepath.Join(out, train.BestFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: a best checkpoint without validation: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(out, train.LastFile)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		csv, err := os.ReadFile(filepath.Join(out, train.HistoryFile))
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range strings.Split(strings.TrimSpace(string(csv)), "\n")[1:] {
			if f := strings.Split(row, ","); len(f) != 8 || f[4] != "" || f[5] != "" {
				t.Errorf("%s: history row %q has validation figures", name, row)
			}
		}
	}
}

// TestAllImagesCorrupt: a training set (or validation set) whose every
// image is corrupt trains on nothing: Run fails saying so, with no
// checkpoint.
func TestAllImagesCorrupt(t *testing.T) {
	dir := t.TempDir()
	_, good := tinyFolder(t, dir, 2)
	bad := filepath.Join(dir, "bad")
	for _, c := range []string{"disc", "square"} {
		for _, f := range []string{"a.png", "b.jpg"} {
			p := filepath.Join(bad, c, f)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte("\x89PNG\r\n\x1a\nbroken"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	badDS, err := data.OpenImageFolder(bad)
	if err != nil {
		t.Fatal(err)
	}
	two, err := data.SelectClasses(good, []int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name        string
		train, val  data.Dataset
		crop        int // the evaluation's crop: 0 takes the first readable image's size
		want        string
		reportsEach bool
	}{
		{"training", badDS, two, 0, "epoch 1: none of the 4 training images could be read", true},
		{"validation", two, badDS, 24, "epoch 1: none of the 4 validation images could be read", true},
		{"validation-nocrop", two, badDS, 0, "validation data: none of the 4 images could be read", false},
	} {
		name := c.name
		out := filepath.Join(dir, "run-"+name)
		var log bytes.Buffer
		cfg := tinyConfig(out)
		cfg.Eval.CropSize, cfg.Eval.ResizeSize = c.crop, c.crop
		tr, err := train.New(testBackend(t), cfg, c.train, c.val, &log)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tr.Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
		if c.reportsEach && strings.Count(log.String(), "skipping corrupt image") != 4 {
			t.Errorf("%s: the corrupt images were not each reported once:\n%s", name, log.String())
		}
		if got := fileSums(t, out, train.BestFile, train.LastFile); len(got) != 0 {
			t.Errorf("%s: checkpoints written: %v", name, got)
		}
	}
}

// interruptedRun trains on trainDS and valDS in out and interrupts it
// after 2 steps of epoch 1, as a Ctrl-C would.
func interruptedRun(t *testing.T, out string, trainDS, valDS data.Dataset) {
	t.Helper()
	cfg := tinyConfig(out)
	cfg.Epochs = 2
	tr, err := train.New(testBackend(t), cfg, trainDS, valDS, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(&stopAfter{context.Background(), 2}); !errors.Is(err, train.ErrInterrupted) {
		t.Fatalf("interrupted run: %v", err)
	}
}

// resume resumes the run in out on the given data.
func resume(t *testing.T, out string, trainDS, valDS data.Dataset) (*train.Trainer, error) {
	t.Helper()
	cfg := tinyConfig(out)
	cfg.Epochs = 0
	return train.Resume(testBackend(t), cfg, trainDS, valDS, &bytes.Buffer{})
}

// TestResumeRefusesChangedData: a resumed run must train on the data and
// the split it started with. Fewer images (which made the loader panic),
// other files, another split and a validation set that appeared or
// vanished are refused, naming what changed.
func TestResumeRefusesChangedData(t *testing.T) {
	dir := t.TempDir()
	root, ds := tinyFolder(t, dir, 10)
	split := func(ds data.Dataset, seed uint64) (data.Dataset, data.Dataset) {
		tr, va, err := data.SplitFraction(ds, 0.2, seed)
		if err != nil {
			t.Fatal(err)
		}
		return tr, va
	}
	trainDS, valDS := split(ds, 1)
	out := filepath.Join(dir, "run")
	interruptedRun(t, out, trainDS, valDS)
	before := fileSums(t, out, train.LastFile)

	// Another seed: the same images, split otherwise.
	tr2, va2 := split(ds, 2)
	if _, err := resume(t, out, tr2, va2); err == nil || !strings.Contains(err.Error(), "changed since the run started") {
		t.Errorf("another split: %v", err)
	}
	// No validation set now.
	if _, err := resume(t, out, trainDS, nil); err == nil || !strings.Contains(err.Error(), "the data now has none") {
		t.Errorf("validation set gone: %v", err)
	}
	// A renamed file: as many images, other files.
	rename := filepath.Join(root, "square")
	entries, _ := os.ReadDir(rename)
	if err := os.Rename(filepath.Join(rename, entries[0].Name()), filepath.Join(rename, "renamed.png")); err != nil {
		t.Fatal(err)
	}
	renamed, err := data.OpenImageFolder(root)
	if err != nil {
		t.Fatal(err)
	}
	a, b := split(renamed, 1)
	if _, err := resume(t, out, a, b); err == nil || !strings.Contains(err.Error(), "square") {
		t.Errorf("a renamed image: %v", err)
	}
	// Seven images of disc deleted: fewer images than the position of the
	// interrupted epoch.
	discs, _ := os.ReadDir(filepath.Join(root, "disc"))
	for _, e := range discs[:7] {
		os.Remove(filepath.Join(root, "disc", e.Name()))
	}
	fewer, err := data.OpenImageFolder(root)
	if err != nil {
		t.Fatal(err)
	}
	a, b = split(fewer, 1)
	if _, err := resume(t, out, a, b); err == nil || !strings.Contains(err.Error(), "disc 2, was 8") {
		t.Errorf("fewer images: %v", err)
	}
	// A checkpoint of an earlier version records no data: the position
	// is still checked, without a panic.
	editState(t, filepath.Join(out, train.LastFile), func(st map[string]any) {
		delete(st, "train_data")
		delete(st, "val_data")
		st["cursor"] = map[string]any{"Epoch": 0, "Batch": 3, "Pos": 24}
	})
	small, _ := split(fewer, 1)
	if _, err := resume(t, out, data.Subset(small, []int{0, 1, 2, 3, 4, 5}), nil); err == nil || !strings.Contains(err.Error(), "stopped at image 24") {
		t.Errorf("a position beyond the data: %v", err)
	}
	if len(before) != 1 {
		t.Error("the interrupted run saved no checkpoint")
	}
}

// editState rewrites the training state of a checkpoint with edit, keeping
// its weights and optimizer state.
func editState(t *testing.T, path string, edit func(st map[string]any)) {
	t.Helper()
	sd, meta, err := modelfile.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := modelfile.Load(testBackend(t), path)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(meta.Train, &st); err != nil {
		t.Fatal(err)
	}
	edit(st)
	if meta.Train, err = json.Marshal(st); err != nil {
		t.Fatal(err)
	}
	extra := map[string]*checkpoint.Tensor{}
	for _, k := range sd.Keys {
		if strings.HasPrefix(k, "optim.") {
			extra[k] = sd.Get(k)
		}
	}
	if err := modelfile.Write(path, m, *meta, extra); err != nil {
		t.Fatal(err)
	}
}

// TestResumeRefusesBadState: a checkpoint whose training state is
// impossible (negative position, counts that disagree) or whose weights
// hold a NaN is refused with an error, not a panic or a poisoned run.
func TestResumeRefusesBadState(t *testing.T) {
	dir := t.TempDir()
	_, ds := tinyFolder(t, dir, 4)
	out := filepath.Join(dir, "run")
	interruptedRun(t, out, ds, ds)
	path := filepath.Join(out, train.LastFile)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(map[string]any){
		"negative position": func(st map[string]any) { st["cursor"] = map[string]any{"Epoch": 0, "Batch": -1, "Pos": 0} },
		"batch after pos":   func(st map[string]any) { st["cursor"] = map[string]any{"Epoch": 0, "Batch": 5, "Pos": 2} },
		"negative step":     func(st map[string]any) { st["step"] = -3 },
		"correct > seen":    func(st map[string]any) { st["correct"] = 100 },
		"history":           func(st map[string]any) { st["history"] = []any{map[string]any{"epoch": 1}} },
		"bad settings":      func(st map[string]any) { st["config"].(map[string]any)["batch"] = 0 },
	} {
		editState(t, path, edit)
		if _, err := resume(t, out, ds, ds); err == nil {
			t.Errorf("%s: resumed", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
		if err := os.WriteFile(path, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A NaN in a weight of the checkpoint.
	sd, meta, err := modelfile.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := modelfile.Load(testBackend(t), path)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range nn.State(m) {
		if v.Name == "layer2.0.bn1.running_var" {
			v.Value.Mutable()[3] = float32(math.NaN())
		}
	}
	extra := map[string]*checkpoint.Tensor{}
	for _, k := range sd.Keys {
		if strings.HasPrefix(k, "optim.") {
			extra[k] = sd.Get(k)
		}
	}
	if err := modelfile.Write(path, m, *meta, extra); err != nil {
		t.Fatal(err)
	}
	if _, err := resume(t, out, ds, ds); !errors.Is(err, train.ErrNonFinite) || !strings.Contains(err.Error(), "layer2.0.bn1.running_var") {
		t.Errorf("a NaN in the checkpoint: %v", err)
	}
}

// TestResumeFinished: resuming a run that trained all its epochs, asking
// for no more, is an error; asking for more continues it.
func TestResumeFinished(t *testing.T) {
	dir := t.TempDir()
	_, ds := tinyFolder(t, dir, 3)
	out := filepath.Join(dir, "run")
	tr, err := train.New(testBackend(t), tinyConfig(out), ds, ds, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(context.Background()); !errors.Is(err, train.ErrFinished) {
		t.Errorf("Run of a finished run: %v", err)
	}
	if _, err := resume(t, out, ds, ds); !errors.Is(err, train.ErrFinished) {
		t.Errorf("resuming a finished run: %v", err)
	}
	cfg := tinyConfig(out)
	cfg.Epochs = 2
	more, err := train.Resume(testBackend(t), cfg, ds, ds, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if hist, err := more.Run(context.Background()); err != nil || len(hist) != 2 {
		t.Errorf("one more epoch: %d epochs, %v", len(hist), err)
	}
}

// TestOutputFolder: New refuses a folder that is not empty unless
// overwriting; overwriting removes the previous run's files and nothing
// else; temporary files that interrupted writes left are removed at the
// next start, and only those.
func TestOutputFolder(t *testing.T) {
	dir := t.TempDir()
	_, ds := tinyFolder(t, dir, 3)
	out := filepath.Join(dir, "run")
	tr, err := train.New(testBackend(t), tinyConfig(out), ds, ds, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(out, "notes.txt")
	if err := os.WriteFile(mine, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := fileSums(t, out, train.RunFiles...)
	if _, err := train.New(testBackend(t), tinyConfig(out), ds, ds, &bytes.Buffer{}); !errors.Is(err, train.ErrOutNotEmpty) || !strings.Contains(err.Error(), train.BestFile) {
		t.Errorf("a non-empty folder: %v", err)
	}
	if now := fileSums(t, out, train.RunFiles...); !mapsEqual(now, before) {
		t.Error("a refused run changed the folder")
	}

	// Temporary files of interrupted writes; others that look alike.
	stale := []string{".last.safetensors.tmp-12345", ".best.safetensors.tmp-9", ".history.csv.tmp-77"}
	keep := []string{".notes.txt.tmp-1", ".last.safetensors.tmp-abc", "last.safetensors.tmp-3"}
	for _, n := range append(slices.Clone(stale), keep...) {
		if err := os.WriteFile(filepath.Join(out, n), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Overwriting without validation: the old best checkpoint must go.
	cfg := tinyConfig(out)
	cfg.Overwrite = true
	var log bytes.Buffer
	tr, err = train.New(testBackend(t), cfg, ds, nil, &log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, n := range stale {
		if _, err := os.Stat(filepath.Join(out, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale %s not removed: %v", n, err)
		}
		if !strings.Contains(log.String(), "removed "+filepath.Join(out, n)) {
			t.Errorf("removing %s not reported:\n%s", n, log.String())
		}
	}
	for _, n := range append(keep, "notes.txt") {
		if _, err := os.Stat(filepath.Join(out, n)); err != nil {
			t.Errorf("%s was removed: %v", n, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, train.BestFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the previous run's best checkpoint survived an overwrite: %v", err)
	}

	// A folder holding only stale temporary files counts as empty.
	only := filepath.Join(dir, "only-stale")
	os.MkdirAll(only, 0o755)
	os.WriteFile(filepath.Join(only, ".last.safetensors.tmp-4"), []byte("x"), 0o644)
	if err := train.CheckOut(only, false); err != nil {
		t.Errorf("a folder with only stale temporary files: %v", err)
	}
}
