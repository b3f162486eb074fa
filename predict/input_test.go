package predict_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/resgo/resgo/predict"
	"github.com/resgo/resgo/transform"
)

// TestClassifyInputs: images preprocessed in goroutines of their own and
// classified in one forward pass get what Classify gives them.
func TestClassifyInputs(t *testing.T) {
	clf := classifier(t, 8) // one batch: the same forward pass as ClassifyInputs
	images := make([]*transform.Image, 5)
	names := make([]string, 5)
	for i := range images {
		images[i] = noiseImage(12+i, 10, uint64(i))
		names[i] = fmt.Sprintf("img%d", i)
	}
	want, err := clf.Classify(images, names, 3)
	if err != nil {
		t.Fatal(err)
	}
	inputs := make([]predict.Input, len(images))
	var wg sync.WaitGroup
	for i := range images {
		wg.Go(func() { inputs[i] = clf.Preprocess(images[i], names[i]) })
	}
	wg.Wait()
	clf.Batch = 2 // does not split ClassifyInputs
	got, err := clf.ClassifyInputs(inputs, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d results, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Image != want[i].Image || !slices.Equal(got[i].Top, want[i].Top) || !slices.Equal(got[i].Logits, want[i].Logits) {
			t.Errorf("input %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if r, err := clf.ClassifyInputs(nil, 3); err != nil || r != nil {
		t.Errorf("no inputs: %v, %v", r, err)
	}
	bad := inputs[1]
	bad.Values = bad.Values[:10]
	if _, err := clf.ClassifyInputs([]predict.Input{inputs[0], bad}, 3); err == nil || !strings.Contains(err.Error(), "img1: an input of 10 values") {
		t.Errorf("a short input: %v", err)
	}
}
