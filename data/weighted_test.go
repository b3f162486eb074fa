package data

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/resgo/resgo/transform"
)

// TestWeightedOrder: indices are drawn with probability proportional to
// their weights (within 5 standard deviations over many draws), never
// with weight 0.
func TestWeightedOrder(t *testing.T) {
	w := []float64{1, 0, 3, 0.5, 0, 2.5}
	counts := make([]int, len(w))
	draws := 0
	for e := range 4000 {
		for _, i := range weightedOrder(w, newPCG(1, weightSalt, uint64(e))) {
			counts[i]++
			draws++
		}
	}
	for i, c := range counts {
		p := w[i] / 7
		sd := math.Sqrt(float64(draws) * p * (1 - p))
		if math.Abs(float64(c)-p*float64(draws)) > 5*sd || (p == 0 && c != 0) {
			t.Errorf("index %d (weight %v): %d of %d draws, expected %.0f", i, w[i], c, draws, p*float64(draws))
		}
	}
}

// TestBalancedLoader: with BalancedWeights an epoch of an imbalanced
// dataset draws its classes about equally, and a sample drawn twice is
// transformed twice differently.
func TestBalancedLoader(t *testing.T) {
	m := memDataset(200, 2)
	for i := range m.Labels { // 180 of class 0, 20 of class 1
		m.Labels[i] = 0
		if i%10 == 0 {
			m.Labels[i] = 1
		}
	}
	l, err := NewLoader(m, Options{BatchSize: 50, Channels: 1, Height: 2, Width: 2, Shuffle: true, Seed: 3, Workers: 2,
		SampleWeights: BalancedWeights(m),
		Transform: func(img *transform.Image, rng *rand.Rand, dst []float32) {
			dst[0] = float32(img.Pix[0])
			dst[1] = rng.Float32() // the sample's random draw
		}})
	if err != nil {
		t.Fatal(err)
	}
	ones := 0
	draw := map[int]map[float32]bool{}
	it := l.Epoch(0)
	for b := it.Next(); b != nil; b = it.Next() {
		for k, lab := range b.Labels {
			ones += lab
			i := b.Indices[k]
			if draw[i] == nil {
				draw[i] = map[float32]bool{}
			}
			draw[i][b.X.Values()[k*4+1]] = true
		}
		b.Release()
	}
	it.Close()
	if ones < 70 || ones > 130 {
		t.Errorf("%d of 200 draws of the rare class, expected about 100", ones)
	}
	twice := 0
	for _, d := range draw {
		if len(d) > 1 {
			twice++
		}
	}
	if twice == 0 {
		t.Error("no sample drawn twice was augmented differently")
	}
	if _, err := NewLoader(m, Options{BatchSize: 1, Channels: 1, Height: 2, Width: 2, SampleWeights: []float64{1}}); err == nil {
		t.Error("one weight for 200 samples accepted")
	}
}
