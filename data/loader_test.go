package data

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/resgo/resgo/transform"
)

// flaky is an in-memory dataset whose listed samples cannot be read; each
// sample has a file name.
type flaky struct {
	*Memory
	bad   map[int]bool
	reads atomic.Int64
}

func (f *flaky) Image(i int) (*transform.Image, error) {
	f.reads.Add(1)
	if f.bad[i] {
		return nil, fmt.Errorf("file%d: corrupt data", i)
	}
	return f.Memory.Image(i)
}

func (f *flaky) Source(i int) string { return fmt.Sprintf("file%d", i) }

// testTransform writes the image's first pixel, then two draws from rng.
func testTransform(img *transform.Image, rng *rand.Rand, dst []float32) {
	dst[0] = float32(img.Pix[0])
	dst[1] = float32(rng.Uint32() >> 8)
	dst[2] = float32(rng.Uint32() >> 8)
	dst[3] = -1
}

// epochRecord is what an iteration delivered.
type epochRecord struct {
	labels, indices [][]int
	values          [][]float32
	next            []Cursor
}

func drain(t *testing.T, it *Iter) epochRecord {
	t.Helper()
	var r epochRecord
	for b := it.Next(); b != nil; b = it.Next() {
		if s := b.X.Shape(); len(s) != 4 || s[0] != len(b.Labels) || s[1] != 1 || s[2] != 2 || s[3] != 2 {
			t.Fatalf("batch shape %v for %d labels", s, len(b.Labels))
		}
		r.labels = append(r.labels, slices.Clone(b.Labels))
		r.indices = append(r.indices, slices.Clone(b.Indices))
		r.values = append(r.values, slices.Clone(b.X.Values()))
		r.next = append(r.next, b.Next)
		b.Release()
	}
	return r
}

func equalRecords(a, b epochRecord) bool {
	if len(a.indices) != len(b.indices) {
		return false
	}
	for i := range a.indices {
		if !slices.Equal(a.indices[i], b.indices[i]) || !slices.Equal(a.labels[i], b.labels[i]) ||
			!slices.Equal(a.values[i], b.values[i]) || a.next[i] != b.next[i] {
			return false
		}
	}
	return true
}

func newTestLoader(t *testing.T, ds Dataset, workers int, mod func(*Options)) *Loader {
	t.Helper()
	o := Options{BatchSize: 10, Channels: 1, Height: 2, Width: 2, Shuffle: true, Seed: 5, Transform: testTransform, Workers: workers}
	if mod != nil {
		mod(&o)
	}
	l, err := NewLoader(ds, o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLoaderOrderAndDeterminism(t *testing.T) {
	ds := memDataset(103, 10)
	var ref [2]epochRecord
	for _, workers := range []int{1, 2, 7} {
		l := newTestLoader(t, ds, workers, nil)
		if l.Len() != 11 {
			t.Fatalf("Len %d", l.Len())
		}
		for e := range 2 {
			r := drain(t, l.Epoch(e))
			if workers == 1 {
				ref[e] = r
				// Every sample once; batches of 10 and a last of 3.
				var all []int
				for k, idx := range r.indices {
					want := 10
					if k == 10 {
						want = 3
					}
					if len(idx) != want {
						t.Fatalf("batch %d has %d samples", k, len(idx))
					}
					all = append(all, idx...)
				}
				if !slices.Equal(all, l.Order(e)) {
					t.Fatal("batches do not follow the epoch's order")
				}
				slices.Sort(all)
				for i, v := range all {
					if v != i {
						t.Fatal("epoch does not visit every sample once")
					}
				}
				// Values: the sample's pixel and its own generator's draws.
				for k, idx := range r.indices {
					for j, i := range idx {
						rng := l.SampleRNG(e, i)
						v := r.values[k][j*4 : j*4+4]
						if v[0] != float32(i%256) || v[1] != float32(rng.Uint32()>>8) || v[2] != float32(rng.Uint32()>>8) || r.labels[k][j] != i%10 {
							t.Fatalf("epoch %d sample %d: values %v label %d", e, i, v, r.labels[k][j])
						}
					}
				}
				continue
			}
			if !equalRecords(r, ref[e]) {
				t.Errorf("%d workers: epoch %d differs from 1 worker", workers, e)
			}
		}
	}
	if slices.Equal(ref[0].indices[0], ref[1].indices[0]) {
		t.Error("epochs 0 and 1 have the same order")
	}
	// The order depends on the seed; without shuffling it is the dataset's.
	other := newTestLoader(t, ds, 2, func(o *Options) { o.Seed = 6 })
	if slices.Equal(other.Order(0), ref[0].indices[0]) {
		t.Error("another seed, same order")
	}
	plain := newTestLoader(t, ds, 2, func(o *Options) { o.Shuffle = false; o.DropLast = true })
	r := drain(t, plain.Epoch(3))
	if len(r.indices) != 10 || plain.Len() != 10 || r.indices[0][0] != 0 || r.indices[9][9] != 99 {
		t.Errorf("unshuffled, drop last: %d batches", len(r.indices))
	}
}

func TestLoaderSkipsCorrupt(t *testing.T) {
	base := &flaky{Memory: memDataset(60, 10), bad: map[int]bool{4: true, 33: true}}
	// Sample 4's file appears twice: reported once all the same.
	idx := make([]int, 60)
	for i := range idx {
		idx[i] = i
	}
	ds := Subset(base, append(idx, 4))
	var log bytes.Buffer
	var calls []string
	l := newTestLoader(t, ds, 3, func(o *Options) {
		o.Log = &log
		o.OnSkip = func(i int, src string, err error) { calls = append(calls, src) }
	})
	for e := range 3 {
		r := drain(t, l.Epoch(e))
		n := 0
		for k, b := range r.indices {
			if k < len(r.indices)-1 && len(b) != 10 {
				t.Fatalf("epoch %d batch %d has %d samples", e, k, len(b))
			}
			for _, i := range b {
				if i == 4 || i == 33 || i == 60 {
					t.Fatal("a corrupt sample was delivered")
				}
			}
			n += len(b)
		}
		if n != 58 || len(r.indices) != 6 || len(r.indices[5]) != 8 {
			t.Fatalf("epoch %d: %d samples in %d batches", e, n, len(r.indices))
		}
	}
	slices.Sort(calls)
	if !slices.Equal(calls, []string{"file33", "file4"}) {
		t.Errorf("OnSkip calls %v", calls)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "skipping corrupt image: file") || !strings.Contains(log.String(), "file33: corrupt data") {
		t.Errorf("log:\n%s", log.String())
	}
	if s := l.Skipped(); !slices.Equal(s, []int{4, 33, 60}) {
		t.Errorf("Skipped %v", s)
	}
}

func TestLoaderResume(t *testing.T) {
	mk := func() *flaky {
		return &flaky{Memory: memDataset(57, 10), bad: map[int]bool{2: true, 11: true, 12: true, 40: true}}
	}
	ds := mk()
	l := newTestLoader(t, ds, 3, func(o *Options) { o.BatchSize = 8 })
	full := drain(t, l.Epoch(2))
	if len(full.indices) != 7 || len(full.indices[6]) != 5 {
		t.Fatalf("%d batches", len(full.indices))
	}
	for k := 0; k <= len(full.indices); k++ {
		// A fresh loader knows nothing about the corrupt samples.
		fresh := newTestLoader(t, mk(), 2, func(o *Options) { o.BatchSize = 8 })
		got := drain(t, fresh.Start(2, k))
		want := epochRecord{full.labels[k:], full.indices[k:], full.values[k:], full.next[k:]}
		if !equalRecords(got, want) {
			t.Errorf("Start(2, %d) differs from the full epoch's batches %d..", k, k)
		}
		// The same loader resumes from a batch's cursor without decoding.
		if k > 0 {
			before := ds.reads.Load()
			got = drain(t, l.Resume(full.next[k-1]))
			if !equalRecords(got, want) {
				t.Errorf("Resume(%+v) differs from the full epoch's batches %d..", full.next[k-1], k)
			}
			if read := ds.reads.Load() - before; read > 57 {
				t.Errorf("Resume read %d samples", read)
			}
		}
	}
}

func TestLoaderCloseAndPanic(t *testing.T) {
	ds := memDataset(500, 10)
	l := newTestLoader(t, ds, 4, nil)
	it := l.Epoch(0)
	b := it.Next()
	first := b.X
	b.Release()
	b.Release() // a second Release does nothing
	it.Close()
	it.Close()
	// Released storage is reused.
	it = l.Epoch(1)
	reused := false
	for b := it.Next(); b != nil; b = it.Next() {
		reused = reused || b.X == first
		b.Release()
	}
	if !reused {
		t.Error("released batch storage never reused")
	}

	boom := newTestLoader(t, ds, 2, func(o *Options) {
		o.Transform = func(img *transform.Image, rng *rand.Rand, dst []float32) {
			if img.Pix[0] == 77 {
				panic("bad sample")
			}
			testTransform(img, rng, dst)
		}
	})
	defer func() {
		p := recover()
		if p == nil || !strings.Contains(fmt.Sprint(p), "transform of sample 77") || !strings.Contains(fmt.Sprint(p), "bad sample") {
			t.Errorf("panic %v", p)
		}
	}()
	drain(t, boom.Epoch(0))
	t.Error("no panic")
}

func TestLoaderImageFolder(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, map[string]int{"a": 9, "b": 8})
	writeFile(t, filepath.Join(root, "b", "broken.png"), []byte("\x89PNG garbage"))
	f, err := OpenImageFolder(root)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	aug := transform.Augment{ResizedCrop: 8, FlipProb: 0.5}
	l, err := NewLoader(f, Options{BatchSize: 4, Channels: 3, Height: 8, Width: 8, Shuffle: true, Seed: 1,
		Transform: aug.Func(transform.ImageNet), Workers: 3, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	for e := range 2 {
		n := 0
		it := l.Epoch(e)
		for b := it.Next(); b != nil; b = it.Next() {
			n += len(b.Labels)
			if s := b.X.Shape(); s[1] != 3 || s[2] != 8 || s[3] != 8 {
				t.Fatalf("shape %v", s)
			}
			b.Release()
		}
		if n != 17 {
			t.Errorf("epoch %d: %d samples", e, n)
		}
	}
	want := "skipping corrupt image: " + filepath.Join(root, "b", "broken.png") + ": not a readable image"
	if strings.Count(log.String(), "\n") != 1 || !strings.HasPrefix(log.String(), want) {
		t.Errorf("log %q, want one line %q...", log.String(), want)
	}
	// Without a transform, images must have the sample's size.
	l2, _ := NewLoader(f, Options{BatchSize: 4, Channels: 3, Height: 8, Width: 8, Log: &log})
	if r := drain2(l2.Epoch(0)); r != 0 {
		t.Errorf("%d wrongly sized images delivered", r)
	}
	if _, err := NewLoader(f, Options{BatchSize: 0, Channels: 3, Height: 8, Width: 8}); err == nil {
		t.Error("batch size 0 accepted")
	}
}

// drain2 counts the samples of an iteration.
func drain2(it *Iter) int {
	n := 0
	for b := it.Next(); b != nil; b = it.Next() {
		n += len(b.Labels)
		b.Release()
	}
	return n
}
