package randt

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestUniformAndRange checks the values' ranges, that a seed gives the same
// values every time, and the exact streams (which tests elsewhere rely on).
func TestUniformAndRange(t *testing.T) {
	a, b := Uniform(3, 2, 3, 4), Uniform(3, 2, 3, 4)
	r := rand.New(rand.NewPCG(3, 0x5eed))
	for i, v := range a.Values() {
		if v < -1 || v >= 1 || v != b.Values()[i] || v != r.Float32()*2-1 {
			t.Fatalf("Uniform value %d: %v", i, v)
		}
	}
	if s := a.Shape(); len(s) != 3 || s[0] != 2 || s[1] != 3 || s[2] != 4 {
		t.Errorf("shape %v", s)
	}
	r = rand.New(rand.NewPCG(5, 0xbee))
	for i, v := range Range(5, 2, 3, 10).Values() {
		if v < 2 || v >= 3 || v != 2+r.Float32()*(3-2) {
			t.Fatalf("Range value %d: %v", i, v)
		}
	}
}

func TestRelErr(t *testing.T) {
	for _, c := range []struct {
		got, want []float32
		err       float64
	}{
		{[]float32{1, 2}, []float32{1, 2}, 0},
		{[]float32{1, 2.5}, []float32{1, -2}, 2.25},
		{[]float32{1e-7}, []float32{0}, 0.1},
		{[]float32{1}, []float32{1, 2}, math.Inf(1)},
		{[]float32{float32(math.NaN())}, []float32{1}, math.Inf(1)},
	} {
		if e := RelErr(c.got, c.want); math.Abs(e-c.err) > 1e-6*max(c.err, 1) && e != c.err {
			t.Errorf("RelErr(%v, %v) = %v, want %v", c.got, c.want, e, c.err)
		}
	}
}
