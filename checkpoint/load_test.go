package checkpoint_test

import (
	"strings"
	"testing"

	"github.com/resgo/resgo/checkpoint"
	"github.com/resgo/resgo/models/resnet"
	"github.com/resgo/resgo/nn"
)

func model(t *testing.T, classes int) *resnet.Model {
	t.Helper()
	m, err := resnet.New(nil, "resnet18", resnet.Options{IncludeTop: true, NumClasses: classes, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLoadStrictReportsEveryProblem(t *testing.T) {
	sd := checkpoint.FromModule(model(t, 1000))
	sd.Delete("layer1.0.conv1.weight")
	sd.Add(checkpoint.NewF32("extra.weight", []int{1}, []float32{1}))
	_, err := checkpoint.Load(model(t, 5), sd, checkpoint.LoadOptions{})
	if err == nil {
		t.Fatal("strict load of a mismatched state dict succeeded")
	}
	for _, want := range []string{"missing keys: layer1.0.conv1.weight", "unexpected keys: extra.weight",
		"size mismatch for fc.weight: checkpoint shape [1000 512], model shape [5 512]", "fc.bias"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestLoadTheTutorialsTwoWays(t *testing.T) {
	pre := model(t, 1000)
	for _, v := range nn.State(pre) {
		if v.Kind == nn.Counter {
			*v.Count = 42
		}
	}
	sd := checkpoint.FromModule(pre)

	// Option 1: load into a 1000-class model, then replace the head.
	m := model(t, 1000)
	rep, err := checkpoint.Load(m, sd, checkpoint.LoadOptions{})
	if err != nil || rep.Loaded != len(nn.State(m)) {
		t.Fatalf("strict load: %v, %v", rep, err)
	}
	if err := m.ReplaceHead(5, 1); err != nil || m.FC.Out != 5 {
		t.Fatalf("ReplaceHead: %v", err)
	}

	// Option 2: a 5-class model, the fc entries left out.
	m5 := model(t, 5)
	fcBefore := append([]float32(nil), m5.FC.Weight.Value.Values()...)
	rep, err = checkpoint.Load(m5, sd, checkpoint.LoadOptions{Skip: []string{"fc."}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Skipped) != 2 || len(rep.Missing) != 0 {
		t.Errorf("skipped %v, missing %v", rep.Skipped, rep.Missing)
	}
	if m5.FC.Weight.Value.Values()[0] != fcBefore[0] {
		t.Error("the skipped head was overwritten")
	}
	if m5.Conv1.Weight.Value.Values()[7] != pre.Conv1.Weight.Value.Values()[7] {
		t.Error("conv1 not loaded")
	}
	if *m5.BN1.NumBatchesTracked.Count != 42 {
		t.Error("num_batches_tracked not loaded")
	}
}

func TestLoadToleratesMissingNumBatchesTracked(t *testing.T) {
	sd := checkpoint.FromModule(model(t, 1000))
	for _, k := range append([]string(nil), sd.Keys...) {
		if strings.HasSuffix(k, "num_batches_tracked") {
			sd.Delete(k)
		}
	}
	m := model(t, 1000)
	*m.BN1.NumBatchesTracked.Count = 9
	if _, err := checkpoint.Load(m, sd, checkpoint.LoadOptions{}); err != nil {
		t.Fatalf("a pre-0.4.1 state dict without num_batches_tracked: %v", err)
	}
	if *m.BN1.NumBatchesTracked.Count != 0 {
		t.Error("a missing num_batches_tracked is not reset to 0, as PyTorch does")
	}
	// Partial loading reports instead of failing.
	sd.Delete("fc.bias")
	rep, err := checkpoint.Load(m, sd, checkpoint.LoadOptions{Partial: true})
	if err != nil || len(rep.Missing) != 1 || rep.Missing[0] != "fc.bias" {
		t.Errorf("partial load: %v, %v", rep, err)
	}
}
