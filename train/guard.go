package train

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/nn"
	"github.com/resgo/resgo/tensor"
)

// ErrNonFinite is wrapped by the error Run returns when the loss, a
// parameter, a running statistic of batch normalization or the optimizer's
// state is no longer finite (the training diverged, typically from too
// high a learning rate). Run stops at once and leaves the checkpoints
// already written as they are.
var ErrNonFinite = errors.New("training diverged")

// nonFinite counts the NaN and infinite values of v and returns the first.
func nonFinite(v []float32) (n int, first float32) {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			if n == 0 {
				first = x
			}
			n++
		}
	}
	return n, first
}

// checkFinite returns an error naming the first variable of the model,
// then of the optimizer's state opt (as State returns it), that holds a NaN
// or an infinity; nil if all are finite.
func checkFinite(b backend.Backend, m nn.Module, opt map[string]*tensor.Tensor) error {
	var bad error
	err := backend.Do(b, func() {
		for _, v := range nn.State(m) {
			if v.Kind == nn.Counter {
				continue
			}
			kind := "parameter"
			if v.Kind == nn.Buffer {
				kind = "running statistic"
			}
			if bad = describeNonFinite(kind, v.Name, backend.Values(b, v.Value)); bad != nil {
				return
			}
		}
		names := make([]string, 0, len(opt))
		for k := range opt {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			if bad = describeNonFinite("optimizer state", k, backend.Values(b, opt[k])); bad != nil {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return bad
}

// describeNonFinite returns an error naming the tensor if v holds a NaN or
// an infinity.
func describeNonFinite(kind, name string, v []float32) error {
	n, first := nonFinite(v)
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%s %s holds %d non-finite values of %d (the first: %v)", kind, name, n, len(v), first)
}

// DataPrint identifies the samples of a dataset, not their pixels, so that
// a resumed training can tell that its data changed since it started: the
// number of samples of each class, and per class a hash of its samples'
// files in dataset order, each named from its class folder on (so that the
// data may move), or of the samples' indices for a dataset without files.
type DataPrint struct {
	Counts []int    `json:"counts"`
	Hashes []string `json:"hashes"`
}

// Fingerprint returns ds's DataPrint.
func Fingerprint(ds data.Dataset) DataPrint {
	classes := ds.Classes()
	src, _ := ds.(data.Sourced)
	out := DataPrint{Counts: make([]int, len(classes)), Hashes: make([]string, len(classes))}
	hs := make([]hash.Hash, len(classes))
	for c := range hs {
		hs[c] = sha256.New()
	}
	for i := range ds.Len() {
		c := ds.Label(i)
		if c < 0 || c >= len(classes) {
			continue // a broken dataset, which the loader reports
		}
		out.Counts[c]++
		key := fmt.Sprint("#", i)
		if src != nil {
			if s := src.Source(i); s != "" {
				key = sampleKey(s, classes[c])
			}
		}
		hs[c].Write([]byte(key))
		hs[c].Write([]byte{0})
	}
	for c, h := range hs {
		out.Hashes[c] = hex.EncodeToString(h.Sum(nil)[:16])
	}
	return out
}

// sampleKey names a sample's file from its class folder on: the part of
// path after its last folder named class ("daisy/sub/1.jpg"), or its base
// name when no folder is named so.
func sampleKey(path, class string) string {
	p := filepath.ToSlash(path)
	if i := strings.LastIndex(p, "/"+class+"/"); i >= 0 {
		return p[i+1:]
	}
	if strings.HasPrefix(p, class+"/") {
		return p
	}
	return filepath.Base(path)
}

// diffData returns an error naming what differs between the data a run
// started with (was) and the data it is given now (now), which of the run
// ("training" or "validation") it is; nil if they are the same, or if was
// records nothing (a checkpoint of an earlier resgo).
func diffData(what string, was, now DataPrint, classes []string) error {
	if len(was.Counts) == 0 {
		return nil
	}
	if len(was.Counts) != len(now.Counts) || len(was.Hashes) != len(now.Hashes) {
		return fmt.Errorf("the %s data has %d classes, the run started with %d", what, len(now.Counts), len(was.Counts))
	}
	sum := func(v []int) int {
		n := 0
		for _, x := range v {
			n += x
		}
		return n
	}
	name := func(c int) string {
		if c < len(classes) {
			return classes[c]
		}
		return fmt.Sprint("class ", c)
	}
	var counts, files []string
	for c := range was.Counts {
		switch {
		case was.Counts[c] != now.Counts[c]:
			counts = append(counts, fmt.Sprintf("%s %d, was %d", name(c), now.Counts[c], was.Counts[c]))
		case was.Hashes[c] != now.Hashes[c]:
			files = append(files, name(c))
		}
	}
	switch {
	case len(counts) > 0:
		return fmt.Errorf("the %s data changed since the run started: %d images, was %d (%s)",
			what, sum(now.Counts), sum(was.Counts), strings.Join(counts, "; "))
	case len(files) > 0:
		return fmt.Errorf("the %s data changed since the run started: other files in class %s (as many as before)",
			what, strings.Join(files, ", "))
	}
	return nil
}
