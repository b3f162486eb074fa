package data

import (
	"fmt"
	"slices"

	"github.com/resgo/resgo/transform"
)

// Dataset is a list of labelled images.
type Dataset interface {
	// Len returns the number of samples.
	Len() int
	// Label returns the class index of sample i, in [0, len(Classes())).
	Label(i int) int
	// Image returns sample i as a new image the caller may modify. The error
	// of an unreadable sample names its file.
	Image(i int) (*transform.Image, error)
	// Classes returns the class names, indexed by label.
	Classes() []string
}

// Sourced is implemented by datasets whose samples come from files: Source
// returns the file of sample i ("" if it has none). The Loader uses it to
// report an unreadable file once, whichever sample refers to it.
type Sourced interface {
	Source(i int) string
}

// source returns the file of sample i of ds, or "".
func source(ds Dataset, i int) string {
	if s, ok := ds.(Sourced); ok {
		return s.Source(i)
	}
	return ""
}

// LabelCounts returns the number of samples of each class.
func LabelCounts(ds Dataset) []int {
	counts := make([]int, len(ds.Classes()))
	for i := range ds.Len() {
		counts[ds.Label(i)]++
	}
	return counts
}

// View is a dataset made of some samples of another, possibly with new
// labels and class names. Subset, Relabel, SelectClasses, TakePerClass and
// SplitFraction make them.
type View struct {
	base    Dataset
	index   []int    // samples of base
	labels  []int    // new label of each sample; nil: base's labels
	classes []string // class names
}

// Subset returns the samples of ds at the given indices, in that order,
// with their labels and class names. It panics if an index is out of range.
func Subset(ds Dataset, indices []int) *View {
	n := ds.Len()
	for _, i := range indices {
		if i < 0 || i >= n {
			panic(fmt.Sprintf("data.Subset: index %d of a dataset of %d samples", i, n))
		}
	}
	v := &View{base: ds, index: slices.Clone(indices), classes: ds.Classes()}
	if b, ok := ds.(*View); ok { // flatten views of views
		v.base = b.base
		for k, i := range v.index {
			v.index[k] = b.index[i]
		}
		if b.labels != nil {
			v.labels = make([]int, len(indices))
			for k, i := range indices {
				v.labels[k] = b.labels[i]
			}
		}
	}
	return v
}

// Relabel keeps the samples of ds whose label is a key of labelMap, in
// their order, and gives each the label labelMap[label]; classes names the
// new labels. It fails if a new label is outside classes.
func Relabel(ds Dataset, labelMap map[int]int, classes []string) (*View, error) {
	for from, to := range labelMap {
		if to < 0 || to >= len(classes) {
			return nil, fmt.Errorf("data.Relabel: label %d maps to %d, outside the %d classes", from, to, len(classes))
		}
	}
	var idx, labels []int
	for i := range ds.Len() {
		if to, ok := labelMap[ds.Label(i)]; ok {
			idx = append(idx, i)
			labels = append(labels, to)
		}
	}
	v := Subset(ds, idx)
	v.labels = labels
	v.classes = slices.Clone(classes)
	return v, nil
}

// SelectClasses keeps the samples of the given classes of ds, relabelled
// 0..len(keep)-1 in the order of keep, with the matching class names: for
// Fashion-MNIST, SelectClasses(ds, []int{5, 6, 7, 8, 9}) gives a 5-class
// dataset whose class 0 is "Sandal".
func SelectClasses(ds Dataset, keep []int) (*View, error) {
	names := ds.Classes()
	m := make(map[int]int, len(keep))
	classes := make([]string, len(keep))
	for k, c := range keep {
		if c < 0 || c >= len(names) {
			return nil, fmt.Errorf("data.SelectClasses: class %d of a dataset with %d classes", c, len(names))
		}
		if _, dup := m[c]; dup {
			return nil, fmt.Errorf("data.SelectClasses: class %d selected twice", c)
		}
		m[c] = k
		classes[k] = names[c]
	}
	return Relabel(ds, m, classes)
}

// TakePerClass keeps at most n samples of each class of ds, chosen at
// random but reproducibly from seed (the choice within a class depends only
// on seed, the class and the class's samples in order), and returns them in
// their order in ds.
func TakePerClass(ds Dataset, n int, seed uint64) *View {
	var keep []int
	for c, members := range byClass(ds) {
		if len(members) <= n {
			keep = append(keep, members...)
			continue
		}
		for k, chosen := range choose(len(members), n, newPCG(seed, takeSalt, uint64(c))) {
			if chosen {
				keep = append(keep, members[k])
			}
		}
	}
	slices.Sort(keep)
	return Subset(ds, keep)
}

// byClass returns the indices of the samples of each class, in order.
func byClass(ds Dataset) [][]int {
	out := make([][]int, len(ds.Classes()))
	for i := range ds.Len() {
		l := ds.Label(i)
		out[l] = append(out[l], i)
	}
	return out
}

// Len returns the number of samples.
func (v *View) Len() int { return len(v.index) }

// Label returns the label of sample i.
func (v *View) Label(i int) int {
	if v.labels != nil {
		return v.labels[i]
	}
	return v.base.Label(v.index[i])
}

// Image returns sample i's image.
func (v *View) Image(i int) (*transform.Image, error) { return v.base.Image(v.index[i]) }

// Classes returns the class names.
func (v *View) Classes() []string { return v.classes }

// Source returns the file of sample i, or "" if it has none.
func (v *View) Source(i int) string { return source(v.base, v.index[i]) }

// Index returns the index of sample i in the underlying dataset.
func (v *View) Index(i int) int { return v.index[i] }

// Memory is a dataset of equally sized 8-bit images held in memory, such as
// Fashion-MNIST.
type Memory struct {
	W, H, C int
	// Pix holds the images one after another, each H x W x C interleaved.
	Pix []uint8
	// Labels holds each image's class index.
	Labels []int
	// ClassNames names the classes, indexed by label.
	ClassNames []string
}

// Len returns the number of images.
func (m *Memory) Len() int { return len(m.Labels) }

// Label returns the class of image i.
func (m *Memory) Label(i int) int { return m.Labels[i] }

// Classes returns the class names.
func (m *Memory) Classes() []string { return m.ClassNames }

// Image returns a copy of image i; it never fails.
func (m *Memory) Image(i int) (*transform.Image, error) {
	size := m.W * m.H * m.C
	img := transform.NewImage(m.W, m.H, m.C)
	copy(img.Pix, m.Pix[i*size:(i+1)*size])
	return img, nil
}
