package predict_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/resgo/resgo/internal/randt"
	"github.com/resgo/resgo/predict"
	"github.com/resgo/resgo/transform"
)

// TestEmbed checks that the embeddings are the input of the fc layer (fc
// applied to each reproduces Classify's logits for that image, across
// batches of 3 and the partial last one), and that EmbedStream gives
// Embed's embeddings for the loadable images, in order.
func TestEmbed(t *testing.T) {
	clf := classifier(t, 3)
	all := names(10)
	var images []*transform.Image
	var loadable []string
	for i, name := range all {
		if !strings.HasPrefix(name, "broken") {
			images = append(images, noiseImage(12+i, 10, uint64(i)))
			loadable = append(loadable, name)
		}
	}
	embs, err := clf.Embed(images, loadable)
	if err != nil {
		t.Fatal(err)
	}
	results, err := clf.Classify(images, loadable, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(embs) != len(images) || len(results) != len(images) {
		t.Fatalf("%d embeddings, %d results for %d images", len(embs), len(results), len(images))
	}
	fc := clf.Model.FC
	w, bias := fc.Weight.Value.Values(), fc.Bias.Value.Values()
	for i, e := range embs {
		if e.Image != loadable[i] || len(e.Features) != clf.Model.FeatureChannels() {
			t.Fatalf("embedding %d: image %s, %d features", i, e.Image, len(e.Features))
		}
		logits := make([]float32, fc.Out)
		for j := range logits {
			s := float64(bias[j])
			for l, f := range e.Features {
				s += float64(f) * float64(w[j*fc.In+l])
			}
			logits[j] = float32(s)
		}
		if err := randt.RelErr(logits, results[i].Logits); err > 1e-5 {
			t.Errorf("%s: fc(embedding) %v, logits %v: relative error %.3g", e.Image, logits, results[i].Logits, err)
		}
	}

	byName := map[string]*transform.Image{}
	for i, name := range loadable {
		byName[name] = images[i]
	}
	var streamed, skipped []string
	n, err := clf.EmbedStream(all,
		func(name string) (*transform.Image, error) {
			if im := byName[name]; im != nil {
				return im, nil
			}
			return nil, errBroken
		},
		func(name string, _ error) { skipped = append(skipped, name) },
		func(e predict.Embedding) error {
			want := embs[len(streamed)]
			if e.Image != want.Image || !slices.Equal(e.Features, want.Features) {
				t.Errorf("streamed embedding %d: %s, want %s with the same features", len(streamed), e.Image, want.Image)
			}
			streamed = append(streamed, e.Image)
			return nil
		})
	if err != nil || n != len(loadable) || !slices.Equal(streamed, loadable) || len(skipped) != len(all)-len(loadable) {
		t.Errorf("EmbedStream: %d embedded (%v), streamed %v, skipped %v", n, err, streamed, skipped)
	}
}
