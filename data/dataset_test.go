package data

import (
	"slices"
	"testing"
)

// memDataset returns n 2x2 grayscale images, image i filled with i%256,
// labelled i%classes.
func memDataset(n, classes int) *Memory {
	m := &Memory{W: 2, H: 2, C: 1, Pix: make([]uint8, n*4), Labels: make([]int, n)}
	for i := range n {
		for k := range 4 {
			m.Pix[i*4+k] = uint8(i)
		}
		m.Labels[i] = i % classes
	}
	for c := range classes {
		m.ClassNames = append(m.ClassNames, string(rune('A'+c)))
	}
	return m
}

func TestSubsetAndRelabel(t *testing.T) {
	m := memDataset(100, 10)
	s := Subset(m, []int{5, 3, 99})
	if s.Len() != 3 || s.Label(0) != 5 || s.Label(2) != 9 || s.Index(1) != 3 {
		t.Fatal("Subset")
	}
	if img, _ := s.Image(2); img.Pix[0] != 99 {
		t.Error("Subset image")
	}
	// Fine-tuning on classes 5-9, relabelled 0-4.
	sel, err := SelectClasses(m, []int{5, 6, 7, 8, 9})
	if err != nil {
		t.Fatal(err)
	}
	if sel.Len() != 50 || !slices.Equal(sel.Classes(), []string{"F", "G", "H", "I", "J"}) {
		t.Fatalf("SelectClasses: %d samples, classes %v", sel.Len(), sel.Classes())
	}
	for i := range sel.Len() {
		if sel.Label(i) != m.Label(sel.Index(i))-5 {
			t.Fatal("SelectClasses labels")
		}
	}
	// A subset of the relabelled view keeps the new labels and flattens.
	sub := Subset(sel, []int{0, 1})
	if sub.Label(1) != 1 || sub.Index(1) != 6 || sub.base != Dataset(m) {
		t.Errorf("subset of a view: label %d index %d", sub.Label(1), sub.Index(1))
	}
	few := TakePerClass(sel, 3, 7)
	if c := LabelCounts(few); !slices.Equal(c, []int{3, 3, 3, 3, 3}) {
		t.Errorf("TakePerClass counts %v", c)
	}
	if !slices.IsSorted(few.index) {
		t.Error("TakePerClass not in order")
	}
	again := TakePerClass(sel, 3, 7)
	other := TakePerClass(sel, 3, 8)
	if !slices.Equal(few.index, again.index) || slices.Equal(few.index, other.index) {
		t.Error("TakePerClass not determined by its seed")
	}
	if all := TakePerClass(m, 1000, 1); all.Len() != 100 {
		t.Error("TakePerClass with more than a class has")
	}
	if _, err := Relabel(m, map[int]int{0: 3}, []string{"x"}); err == nil {
		t.Error("Relabel to a missing class accepted")
	}
	if _, err := SelectClasses(m, []int{1, 1}); err == nil {
		t.Error("duplicate class accepted")
	}
}

func TestRandomHelpers(t *testing.T) {
	// perm is a permutation, intN is in range and roughly uniform.
	src := newPCG(1, 2, 3)
	p := perm(1000, src)
	q := slices.Clone(p)
	slices.Sort(q)
	for i, v := range q {
		if v != i {
			t.Fatal("perm is not a permutation")
		}
	}
	counts := make([]int, 7)
	for range 70000 {
		counts[intN(src, 7)]++
	}
	for _, c := range counts {
		if c < 9500 || c > 10500 {
			t.Errorf("intN(7) counts %v", counts)
			break
		}
	}
	ch := choose(10, 4, src)
	k := 0
	for _, b := range ch {
		if b {
			k++
		}
	}
	if k != 4 {
		t.Errorf("choose picked %d of 4", k)
	}
}
