package data

import (
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/resgo/resgo/tensor"
	"github.com/resgo/resgo/transform"
)

// Transform writes one sample into dst (Channels*Height*Width values,
// channel-major), drawing its random choices from rng. It may modify img.
// transform.Augment.Func and a Preset's Apply have this form.
type Transform func(img *transform.Image, rng *rand.Rand, dst []float32)

// Options configure a Loader.
type Options struct {
	// BatchSize is the number of samples per batch (the last may be
	// smaller unless DropLast).
	BatchSize int
	// Channels, Height and Width are the size of one sample as Transform
	// writes it.
	Channels, Height, Width int
	// Shuffle visits the samples in a random order that depends only on
	// Seed and the epoch; otherwise in dataset order.
	Shuffle bool
	// Seed determines the epochs' orders and the samples' random
	// transforms: sample i of epoch e is transformed with a generator
	// derived from (Seed, e, i) alone, whichever worker handles it.
	Seed uint64
	// Sampler, if set, chooses the samples of each epoch and their order
	// (a DistributedSampler: this process's shard); Shuffle and Seed's
	// orders are then the sampler's business.
	Sampler Sampler
	// DropLast drops an epoch's last batch if it is not full.
	DropLast bool
	// Transform makes a sample's values from its image. If nil, the image
	// is scaled to [0, 1] (ToTensor) and must already have the sample's
	// size; images that do not are skipped as unreadable.
	Transform Transform
	// Workers is the number of goroutines decoding and transforming
	// samples; 0: runtime.GOMAXPROCS(0).
	Workers int
	// Prefetch is the number of ready batches kept ahead of the consumer;
	// 0: 2.
	Prefetch int
	// OnSkip, if set, is called once per unreadable file (or, for samples
	// without a file, once per sample) when it is first skipped, with the
	// sample's index, its file ("" if none) and the error.
	OnSkip func(index int, source string, err error)
	// Log, if set, receives one line per unreadable file when it is first
	// skipped: "skipping corrupt image: <file>: <error>".
	Log io.Writer
	// SampleWeights, if set (one weight per sample), replaces the epoch's
	// order by as many samples drawn with replacement, each with
	// probability proportional to its weight, as PyTorch's
	// WeightedRandomSampler(weights, len(weights), replacement=True)
	// (see sampler.go). A sample's random transform then follows its
	// position in the epoch, so that a sample drawn twice is augmented
	// twice differently.
	SampleWeights []float64
}

// Sample status, as the Loader has seen it.
const (
	unknown uint8 = iota
	good
	bad
)

// Loader delivers a dataset in batches, epoch by epoch, decoding and
// transforming samples on worker goroutines. Batches come in order, and
// their content depends only on the dataset, the options and the epoch
// (not on the number of workers or their timing), so that training is
// reproducible and can resume exactly. A sample whose image cannot be read
// is reported once and skipped: its place is taken by the next sample, so
// batches stay full except an epoch's last.
type Loader struct {
	ds   Dataset
	opt  Options
	chw  int
	pool chan *Batch

	mu       sync.Mutex
	status   []uint8         // per sample: unknown, good or bad
	reported map[string]bool // files (or "#index") already reported
}

// NewLoader returns a loader of ds. It fails if the options are invalid.
func NewLoader(ds Dataset, opt Options) (*Loader, error) {
	if opt.BatchSize < 1 {
		return nil, fmt.Errorf("data.NewLoader: batch size %d", opt.BatchSize)
	}
	if opt.Channels < 1 || opt.Height < 1 || opt.Width < 1 {
		return nil, fmt.Errorf("data.NewLoader: sample size %dx%dx%d (channels x height x width)", opt.Channels, opt.Height, opt.Width)
	}
	if err := checkSampleWeights(opt.SampleWeights, ds.Len()); err != nil {
		return nil, err
	}
	if opt.SampleWeights != nil && opt.Sampler != nil {
		return nil, fmt.Errorf("data.NewLoader: SampleWeights and a Sampler both choose the epoch's samples: set one")
	}
	if opt.Workers < 0 || opt.Prefetch < 0 {
		return nil, fmt.Errorf("data.NewLoader: %d workers, prefetch %d", opt.Workers, opt.Prefetch)
	}
	if opt.Workers == 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if opt.Prefetch == 0 {
		opt.Prefetch = 2
	}
	return &Loader{
		ds:       ds,
		opt:      opt,
		chw:      opt.Channels * opt.Height * opt.Width,
		pool:     make(chan *Batch, opt.Prefetch+3),
		status:   make([]uint8, ds.Len()),
		reported: map[string]bool{},
	}, nil
}

// Len returns the number of batches in an epoch when no sample is skipped.
func (l *Loader) Len() int {
	n, b := l.ds.Len(), l.opt.BatchSize
	if l.opt.Sampler != nil {
		n = l.opt.Sampler.Len()
	}
	if l.opt.DropLast {
		return n / b
	}
	return (n + b - 1) / b
}

// Dataset returns the loader's dataset.
func (l *Loader) Dataset() Dataset { return l.ds }

// Skipped returns the indices of the samples found unreadable so far, in
// increasing order.
func (l *Loader) Skipped() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int
	for i, s := range l.status {
		if s == bad {
			out = append(out, i)
		}
	}
	return out
}

// Order returns the order in which epoch visits the samples (before any is
// skipped).
func (l *Loader) Order(epoch int) []int {
	if l.opt.Sampler != nil {
		return l.opt.Sampler.Indices(epoch)
	}
	n := l.ds.Len()
	if w := l.opt.SampleWeights; w != nil {
		return weightedOrder(w, newPCG(l.opt.Seed, weightSalt, uint64(epoch)))
	}
	if !l.opt.Shuffle {
		p := make([]int, n)
		for i := range p {
			p[i] = i
		}
		return p
	}
	return perm(n, newPCG(l.opt.Seed, permSalt, uint64(epoch)))
}

// sampleSeeds returns the PCG seeds of sample index's generator in epoch.
func sampleSeeds(seed uint64, epoch, index int) (uint64, uint64) {
	a := mix64(mix64(seed^mix64(sampleSalt)) ^ uint64(epoch))
	b := mix64(uint64(index) ^ mix64(sampleSalt+1))
	return a, b
}

// SampleRNG returns the generator the loader gives sample index in epoch,
// so that a sample's transform can be reproduced outside the loader.
func (l *Loader) SampleRNG(epoch, index int) *rand.Rand {
	return rand.New(rand.NewPCG(sampleSeeds(l.opt.Seed, epoch, index)))
}

// Cursor is a position in the stream of batches: the batch index within
// the epoch and the position in the epoch's order where that batch starts.
// Every batch carries the cursor of the batch after it, which a checkpoint
// can save to resume exactly and at once.
type Cursor struct {
	Epoch, Batch, Pos int
}

// Epoch starts delivering epoch's batches from the first.
func (l *Loader) Epoch(epoch int) *Iter {
	return l.Resume(Cursor{Epoch: epoch})
}

// Start delivers epoch's batches from batch index batch on, the same
// batches an iteration of the whole epoch delivers from that index. To
// find where that batch starts it must know which earlier samples of the
// epoch are unreadable: samples the loader has not seen yet are decoded
// (without transforms) first. Resuming from a saved Cursor avoids that.
func (l *Loader) Start(epoch, batch int) *Iter {
	if batch < 0 {
		panic(fmt.Sprintf("data.Loader.Start: batch %d", batch))
	}
	order := l.Order(epoch)
	need := batch * l.opt.BatchSize
	p := 0
	for need > 0 && p < len(order) {
		end := min(p+need, len(order))
		l.probe(order[p:end])
		for ; p < end; p++ {
			if l.statusOf(order[p]) == good {
				need--
			}
		}
	}
	return l.start(Cursor{Epoch: epoch, Batch: batch, Pos: p}, order)
}

// Resume delivers the batches from cursor c on (a Batch's Next).
func (l *Loader) Resume(c Cursor) *Iter {
	return l.start(c, l.Order(c.Epoch))
}

func (l *Loader) statusOf(i int) uint8 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status[i]
}

// probe decodes the samples among indices whose status is unknown, on the
// workers, and records (and reports) which are unreadable.
func (l *Loader) probe(indices []int) {
	var todo []int
	l.mu.Lock()
	for _, i := range indices {
		if l.status[i] == unknown {
			todo = append(todo, i)
		}
	}
	l.mu.Unlock()
	errs := make([]error, len(todo))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(l.opt.Workers, len(todo)) {
		wg.Go(func() {
			for k := range jobs {
				_, errs[k] = l.load(todo[k])
			}
		})
	}
	for k := range todo {
		jobs <- k
	}
	close(jobs)
	wg.Wait()
	for k, i := range todo {
		if errs[k] != nil {
			l.skip(i, errs[k])
		} else {
			l.mark(i, good)
		}
	}
}

func (l *Loader) mark(i int, s uint8) {
	l.mu.Lock()
	l.status[i] = s
	l.mu.Unlock()
}

// skip records sample i as unreadable and reports it if its file was not
// reported before.
func (l *Loader) skip(i int, err error) {
	src := source(l.ds, i)
	key := src
	if key == "" {
		key = fmt.Sprint("#", i)
	}
	l.mu.Lock()
	l.status[i] = bad
	first := !l.reported[key]
	l.reported[key] = true
	l.mu.Unlock()
	if !first {
		return
	}
	if l.opt.OnSkip != nil {
		l.opt.OnSkip(i, src, err)
	}
	if l.opt.Log != nil {
		msg := err.Error()
		if src != "" && !strings.Contains(msg, src) {
			msg = src + ": " + msg
		} else if src == "" {
			msg = fmt.Sprintf("sample %d: %s", i, msg)
		}
		fmt.Fprintf(l.opt.Log, "skipping corrupt image: %s\n", msg)
	}
}

// Batch is a batch of samples. Its tensor and slices belong to the loader
// once Release is called.
type Batch struct {
	// X holds the samples, a Plain tensor [B, C, H, W].
	X *tensor.Tensor
	// Labels and Indices are each sample's label and dataset index.
	Labels, Indices []int
	// Epoch and Index say which batch of which epoch this is.
	Epoch, Index int
	// Next is the cursor of the following batch, to resume after this one.
	Next Cursor

	l       *Loader
	full    *tensor.Tensor // pooled storage of a full batch
	labels  []int
	indices []int
	owned   bool // held by the consumer
}

// Release gives the batch's storage back to the loader for a later batch.
// The batch must not be used afterwards. Releasing is optional (unreleased
// batches are garbage collected) and a second Release does nothing.
func (b *Batch) Release() {
	if b == nil || !b.owned {
		return
	}
	b.owned = false
	b.X = nil
	select {
	case b.l.pool <- b:
	default:
	}
}

// newBatch returns a batch from the pool or a new one.
func (l *Loader) newBatch() *Batch {
	var b *Batch
	select {
	case b = <-l.pool:
	default:
		b = &Batch{l: l, full: &tensor.Tensor{}, labels: make([]int, l.opt.BatchSize), indices: make([]int, l.opt.BatchSize)}
	}
	o := l.opt
	b.full.Reset(tensor.Plain, nil, o.BatchSize*l.chw, o.BatchSize, o.Channels, o.Height, o.Width)
	b.owned = true
	return b
}

// Iter delivers one epoch's batches, from a starting batch to the end.
type Iter struct {
	ready  chan *Batch
	done   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
	failed error // a transform's panic, set before ready is closed
}

type job struct {
	pos, idx int
	buf      []float32
}

type result struct {
	job
	err      error
	panicked error
}

// start launches the dispatcher, the workers and the assembler.
func (l *Loader) start(c Cursor, order []int) *Iter {
	o := l.opt
	n := len(order)
	it := &Iter{ready: make(chan *Batch, o.Prefetch), done: make(chan struct{})}
	if c.Pos < 0 || c.Pos > n {
		panic(fmt.Sprintf("data.Loader: cursor position %d of an epoch of %d samples", c.Pos, n))
	}
	window := 4*o.Workers + 4 // samples in flight
	free := make(chan []float32, window)
	for range window {
		free <- nil
	}
	jobs := make(chan job)
	results := make(chan result, window)

	it.wg.Go(func() { // dispatcher
		defer close(jobs)
		for p := c.Pos; p < n; p++ {
			var buf []float32
			select {
			case buf = <-free:
			case <-it.done:
				return
			}
			if buf == nil {
				buf = make([]float32, l.chw)
			}
			select {
			case jobs <- job{p, order[p], buf}:
			case <-it.done:
				return
			}
		}
	})
	for range o.Workers {
		it.wg.Go(func() { l.work(c.Epoch, jobs, results, it.done) })
	}
	it.wg.Go(func() { l.assemble(it, c, n, results, free) })
	return it
}

// load reads sample i's image; without a transform, an image of the wrong
// size is an error.
func (l *Loader) load(i int) (*transform.Image, error) {
	img, err := l.ds.Image(i)
	if err != nil {
		return nil, err
	}
	o := l.opt
	if o.Transform == nil && (img.C != o.Channels || img.H != o.Height || img.W != o.Width) {
		return nil, fmt.Errorf("image of %dx%dx%d (channels x height x width), the loader wants %dx%dx%d and has no transform",
			img.C, img.H, img.W, o.Channels, o.Height, o.Width)
	}
	return img, nil
}

// work decodes and transforms samples.
func (l *Loader) work(epoch int, jobs <-chan job, results chan<- result, done <-chan struct{}) {
	pcg := rand.NewPCG(0, 0)
	rng := rand.New(pcg)
	o := l.opt
	for j := range jobs {
		r := result{job: j}
		func() {
			defer func() {
				if p := recover(); p != nil {
					r.panicked = fmt.Errorf("data.Loader: transform of sample %d %s panicked: %v\n%s", j.idx, source(l.ds, j.idx), p, debug.Stack())
				}
			}()
			img, err := l.load(j.idx)
			if err != nil {
				r.err = err
				return
			}
			if o.Transform == nil {
				img.ToTensor(j.buf, transform.Normalization{})
				return
			}
			key := j.idx
			if o.SampleWeights != nil {
				key = j.pos // a sample may come twice in an epoch
			}
			pcg.Seed(sampleSeeds(o.Seed, epoch, key))
			o.Transform(img, rng, j.buf)
		}()
		select {
		case results <- r:
		case <-done:
			return
		}
	}
}

// assemble puts the samples into batches in order.
func (l *Loader) assemble(it *Iter, c Cursor, n int, results <-chan result, free chan<- []float32) {
	defer close(it.ready)
	o := l.opt
	pending := map[int]result{}
	next, index := c.Pos, c.Batch
	var cur *Batch
	var vals []float32
	filled := 0
	emit := func() bool {
		b := cur
		cur = nil
		b.Epoch, b.Index = c.Epoch, index
		b.Next = Cursor{Epoch: c.Epoch, Batch: index + 1, Pos: next}
		b.Labels, b.Indices = b.labels[:filled], b.indices[:filled]
		if filled == o.BatchSize {
			b.X = b.full
		} else {
			b.X = tensor.FromValues(vals[:filled*l.chw], filled, o.Channels, o.Height, o.Width)
		}
		index++
		filled = 0
		select {
		case it.ready <- b:
			return true
		case <-it.done:
			b.Release()
			return false
		}
	}
	for next < n {
		r, ok := pending[next]
		if ok {
			delete(pending, next)
		} else {
			select {
			case r = <-results:
			case <-it.done:
				return
			}
			if r.pos != next {
				pending[r.pos] = r
				continue
			}
		}
		next++
		if r.panicked != nil {
			it.failed = r.panicked
			return
		}
		if r.err != nil {
			l.skip(r.idx, r.err)
			free <- r.buf
			continue
		}
		l.mark(r.idx, good)
		if cur == nil {
			cur = l.newBatch()
			vals = cur.full.Mutable()
		}
		copy(vals[filled*l.chw:(filled+1)*l.chw], r.buf)
		cur.labels[filled] = l.ds.Label(r.idx)
		cur.indices[filled] = r.idx
		filled++
		free <- r.buf
		if filled == o.BatchSize && !emit() {
			return
		}
	}
	if filled > 0 && !o.DropLast {
		emit()
	} else if cur != nil {
		cur.Release()
	}
}

// Next returns the next batch, or nil at the end of the epoch. The caller
// should Release each batch when done with it. If a transform panicked,
// Next panics with the sample and the transform's stack.
func (it *Iter) Next() *Batch {
	b, ok := <-it.ready
	if ok {
		return b
	}
	it.Close()
	if it.failed != nil {
		panic(it.failed)
	}
	return nil
}

// Close stops the iteration early and waits for its goroutines. It is not
// needed after Next has returned nil, and may be called more than once.
func (it *Iter) Close() {
	it.once.Do(func() {
		close(it.done)
		it.wg.Wait()
		for b := range it.ready {
			b.Release()
		}
	})
}
