package train

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/resgo/resgo/backend"
	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/dist"
	"github.com/resgo/resgo/nn"
)

// Distributed configures data-parallel training over the processes of an
// MPI job, as PyTorch's DistributedDataParallel with DistributedSampler:
// every process (rank) trains a replica of the model on its own shard of
// each epoch (data.DistributedSampler), and the gradients are averaged
// over the ranks before each optimizer step, so that N ranks with batch B
// take the steps of one process with batch N*B (exactly so with SyncBN).
// Rank 0 alone writes the output folder; every rank resumes from the same
// last checkpoint. The zero value trains in one process.
type Distributed struct {
	// Comm connects the ranks; nil (or a Comm of one rank): one process.
	Comm dist.Comm
	// BucketMB is the size of the gradient buckets in MiB (PyTorch DDP's
	// bucket_cap_mb); 0: DefaultBucketMB. A bucket's all-reduce starts as
	// soon as the backward pass has computed all its gradients, so that it
	// overlaps the rest of the backward pass.
	BucketMB float64
	// NoOverlap starts every bucket's all-reduce after the backward pass
	// instead, to measure what the overlap saves.
	NoOverlap bool
	// SyncBN synchronizes the batch norm layers over the ranks (see
	// nn.SetSyncBN). Without it each rank normalizes with its own batch's
	// statistics and, as DDP does, takes rank 0's running statistics
	// before each step.
	SyncBN bool
}

// DefaultBucketMB is PyTorch DDP's default bucket size.
const DefaultBucketMB = 25

// MaxBucketMB bounds Distributed.BucketMB.
const MaxBucketMB = 4096

// DistStats measures the communication of a data-parallel training.
type DistStats struct {
	Ranks   int
	Buckets int
	Steps   int
	// Wait is the time the steps spent after the backward pass waiting for
	// the gradient all-reduces to finish: the communication the backward
	// pass did not hide.
	Wait time.Duration
	// Started counts the all-reduces started during the backward pass,
	// Done those of them found finished by the end of it.
	Started, Done int
}

// dataParallel is the state of a data-parallel training.
type dataParallel struct {
	comm      dist.Comm
	syncBN    bool
	noOverlap bool
	buckets   []*bucket
	of        map[*nn.Var]*bucket
	buffers   []*nn.Var // the running statistics, broadcast from rank 0
	flat      []float32 // scratch for broadcasts
	stats     DistStats
}

// bucket is a group of parameters whose gradients are summed in one
// all-reduce, in a flat buffer.
type bucket struct {
	vars    []*nn.Var
	flat    []float32
	pending int // gradients of this step not ready yet
	req     dist.Request
}

// setupDist prepares a data-parallel training when cfg.Dist asks for
// more than one rank: synchronized batch norms, and the gradient buckets,
// filled by the parameters' GradReady hooks.
func (t *Trainer) setupDist() error {
	d := t.cfg.Dist
	if d.Comm == nil || d.Comm.Size() <= 1 {
		return nil
	}
	if math.IsNaN(d.BucketMB) || d.BucketMB < 0 || d.BucketMB > MaxBucketMB {
		return &ConfigError{Field: "Dist.BucketMB", Value: d.BucketMB, Reason: fmt.Sprintf("want 0 (%d) to %d MiB", DefaultBucketMB, MaxBucketMB)}
	}
	mb := d.BucketMB
	if mb == 0 {
		mb = DefaultBucketMB
	}
	dp := &dataParallel{comm: d.Comm, syncBN: d.SyncBN, noOverlap: d.NoOverlap, of: map[*nn.Var]*bucket{}}
	if d.SyncBN {
		nn.SetSyncBN(t.model, d.Comm)
	}
	// Buckets in the reverse order of the parameters, roughly the order in
	// which the backward pass computes their gradients (as DDP does).
	params := nn.Params(t.model, true)
	limit := int(mb * (1 << 20) / 4)
	var cur *bucket
	size := 0
	for i := len(params) - 1; i >= 0; i-- {
		v := params[i].Var
		if cur == nil || size+v.Value.Len() > limit && size > 0 {
			cur = &bucket{}
			dp.buckets = append(dp.buckets, cur)
			size = 0
		}
		cur.vars = append(cur.vars, v)
		size += v.Value.Len()
		cur.flat = make([]float32, size)
		dp.of[v] = cur
		v.GradReady = dp.ready
	}
	for _, b := range dp.buckets {
		b.pending = len(b.vars)
	}
	for _, v := range nn.State(t.model) {
		if v.Kind == nn.Buffer {
			dp.buffers = append(dp.buffers, v.Var)
		}
	}
	dp.stats.Ranks, dp.stats.Buckets = d.Comm.Size(), len(dp.buckets)
	t.dp = dp
	return nil
}

// root reports whether this process writes the output folder: rank 0, or
// the only process.
func (t *Trainer) root() bool { return t.dp == nil || t.dp.comm.Rank() == 0 }

// DistStats returns the communication measurements of a data-parallel
// training so far (zero in one process).
func (t *Trainer) DistStats() DistStats {
	if t.dp == nil {
		return DistStats{Ranks: 1}
	}
	return t.dp.stats
}

// trainLen returns the number of training samples of an epoch for this
// process: its shard's.
func (t *Trainer) trainLen() int {
	if s := t.sampler(); s != nil {
		return s.Len()
	}
	return t.trainDS.Len()
}

// sampler returns this rank's sampler of the training data (nil in one
// process: the Loader shuffles itself, in the same order a single rank
// would get).
func (t *Trainer) sampler() data.Sampler {
	if t.dp == nil {
		return nil
	}
	c := t.dp.comm
	s, err := data.NewDistributedSampler(t.trainDS.Len(), c.Size(), c.Rank(), true, t.cfg.Seed)
	if err != nil {
		panic(err) // New and Resume refuse an empty training set
	}
	return s
}

// valShard returns this rank's share of the validation data: the images
// rank, rank+N, ... (without padding, so that each counts once when
// gatherEval sums the results); all of it in one process.
func (t *Trainer) valShard() data.Dataset {
	if t.dp == nil {
		return t.valDS
	}
	c := t.dp.comm
	var idx []int
	for i := c.Rank(); i < t.valDS.Len(); i += c.Size() {
		idx = append(idx, i)
	}
	return data.Subset(t.valDS, idx)
}

// resumeIter starts the epoch's batches at the state's cursor. Ranks
// resume from rank 0's checkpoint; the batch index is the same for all,
// but where the batch starts in each rank's shard depends on the
// unreadable images of its shard, so the others find it (data.Loader.Start).
func (t *Trainer) resumeIter(loader *data.Loader) *data.Iter {
	c := t.state.Cursor
	if t.dp == nil || t.root() {
		return loader.Resume(c)
	}
	return loader.Start(c.Epoch, c.Batch)
}

// startDist starts a Run on every rank from the same state: rank 0's
// parameters and running statistics (DDP broadcasts them when it wraps
// a model); the other ranks drop the partial sums of the epoch under way
// that a checkpoint holds, which are all the ranks' (see gatherEpoch).
func (t *Trainer) startDist() error {
	dp := t.dp
	if dp == nil {
		return nil
	}
	if dp.comm.Rank() != 0 {
		t.state.LossSum, t.state.Correct, t.state.Seen = 0, 0, 0
	}
	var vars []*nn.Var
	for _, v := range nn.State(t.model) {
		if v.Kind != nn.Counter {
			vars = append(vars, v.Var)
		}
	}
	if err := dp.bcast(vars); err != nil {
		return fmt.Errorf("data-parallel start: %w", err)
	}
	return nil
}

// bcast replaces vars' values with rank 0's.
func (dp *dataParallel) bcast(vars []*nn.Var) error {
	dp.flat = dp.flat[:0]
	for _, v := range vars {
		dp.flat = append(dp.flat, v.Value.Values()...)
	}
	if err := dp.comm.Bcast(dp.flat, 0); err != nil {
		return err
	}
	off := 0
	for _, v := range vars {
		n := v.Value.Len()
		copy(v.Value.Mutable(), dp.flat[off:off+n])
		off += n
	}
	return nil
}

// stopAll reports whether any rank's ctx is cancelled, so that all stop
// at the same step (one process: whether ctx is).
func (t *Trainer) stopAll(ctx context.Context) (bool, error) {
	stop := ctx.Err() != nil
	if t.dp == nil {
		return stop, nil
	}
	flag := []float64{0}
	if stop {
		flag[0] = 1
	}
	if err := t.dp.comm.AllreduceFloat64(flag); err != nil {
		return false, fmt.Errorf("data-parallel step %d: %w", t.state.Step+1, err)
	}
	return flag[0] > 0, nil
}

// syncBuffers gives every rank rank 0's running statistics, as DDP's
// broadcast_buffers does before each forward pass; synchronized batch
// norms have the same statistics on every rank already.
func (t *Trainer) syncBuffers() error {
	if t.dp == nil || t.dp.syncBN || len(t.dp.buffers) == 0 {
		return nil
	}
	if err := t.dp.bcast(t.dp.buffers); err != nil {
		return fmt.Errorf("data-parallel step %d: running statistics: %w", t.state.Step+1, err)
	}
	return nil
}

// ready is the parameters' GradReady hook: it starts the all-reduce of a
// bucket whose gradients are all ready, and lets MPI progress those under
// way. It runs inside the backward pass, so it reports a failure as a
// *backend.Error panic (see backend.Do).
func (dp *dataParallel) ready(v *nn.Var) {
	b := dp.of[v]
	if b == nil || dp.noOverlap {
		return
	}
	b.pending--
	if b.pending == 0 {
		if err := dp.start(b); err != nil {
			panic(&backend.Error{Op: "train.allreduce", Msg: "starting a gradient all-reduce", Err: err})
		}
		dp.stats.Started++
	}
	for _, o := range dp.buckets {
		if o.req != nil {
			if _, err := o.req.Test(); err != nil {
				panic(&backend.Error{Op: "train.allreduce", Msg: "a gradient all-reduce failed", Err: err})
			}
		}
	}
}

// start copies bucket b's gradients into its buffer and starts summing it.
func (dp *dataParallel) start(b *bucket) error {
	off := 0
	for _, v := range b.vars {
		n := v.Value.Len()
		if v.Grad == nil || v.Grad.Len() != n {
			clear(b.flat[off : off+n]) // no gradient this step
		} else {
			copy(b.flat[off:off+n], v.Grad.Values())
		}
		off += n
	}
	r, err := dp.comm.Iallreduce(b.flat)
	b.req = r
	return err
}

// averageGrads finishes the gradient all-reduces of the step (starting
// those the backward pass did not) and replaces each gradient with its
// average over the ranks.
func (t *Trainer) averageGrads() error {
	dp := t.dp
	if dp == nil {
		return nil
	}
	for _, b := range dp.buckets {
		if b.req != nil {
			if ok, _ := b.req.Test(); ok {
				dp.stats.Done++
			}
		}
	}
	start := time.Now()
	scale := 1 / float32(dp.comm.Size())
	for _, b := range dp.buckets {
		if b.req == nil {
			if err := dp.start(b); err != nil {
				return fmt.Errorf("data-parallel step %d: %w", t.state.Step+1, err)
			}
		}
	}
	for _, b := range dp.buckets {
		if err := b.req.Wait(); err != nil {
			return fmt.Errorf("data-parallel step %d: gradient all-reduce: %w", t.state.Step+1, err)
		}
		b.req, b.pending = nil, len(b.vars)
		off := 0
		for _, v := range b.vars {
			n := v.Value.Len()
			if v.Grad == nil || v.Grad.Len() != n {
				v.Grad = v.Value.Clone()
			}
			g := v.Grad.Mutable()
			for i, x := range b.flat[off : off+n] {
				g[i] = x * scale
			}
			off += n
		}
	}
	dp.stats.Wait += time.Since(start)
	dp.stats.Steps++
	return nil
}

// gatherEpoch sums the epoch's loss, correct predictions and images over
// the ranks, so that the history (and a checkpoint written now) counts
// them all, and gives every rank rank 0's running statistics for the
// validation.
func (t *Trainer) gatherEpoch() error {
	dp := t.dp
	if dp == nil {
		return nil
	}
	s := &t.state
	sums := []float64{s.LossSum, float64(s.Correct), float64(s.Seen)}
	if err := dp.comm.AllreduceFloat64(sums); err != nil {
		return fmt.Errorf("data-parallel epoch %d: %w", s.Cursor.Epoch+1, err)
	}
	s.LossSum, s.Correct, s.Seen = sums[0], int(sums[1]), int(sums[2])
	if !dp.syncBN {
		if err := dp.bcast(dp.buffers); err != nil {
			return fmt.Errorf("data-parallel epoch %d: running statistics: %w", s.Cursor.Epoch+1, err)
		}
	}
	return nil
}

// gatherEval sums the validation results of the ranks' shares.
func (t *Trainer) gatherEval(res *EvalResult) error {
	dp := t.dp
	if dp == nil || res == nil {
		return nil
	}
	k := len(res.Confusion)
	sums := make([]float64, 2+k*k)
	sums[0], sums[1] = res.Loss*float64(res.Images), float64(res.Images)
	for i, row := range res.Confusion {
		for j, v := range row {
			sums[2+i*k+j] = float64(v)
		}
	}
	if err := dp.comm.AllreduceFloat64(sums); err != nil {
		return fmt.Errorf("data-parallel validation: %w", err)
	}
	res.Images = int(sums[1])
	res.Loss = sums[0] / max(1, sums[1])
	correct := 0
	for i, row := range res.Confusion {
		for j := range row {
			row[j] = int(sums[2+i*k+j])
		}
		correct += row[i]
	}
	res.Accuracy = float64(correct) / float64(max(1, res.Images))
	return nil
}

// notRoot reports whether this process is a rank other than 0, which
// writes nothing into the output folder (and so does not mind what is in
// it).
func (d Distributed) notRoot() bool { return d.Comm != nil && d.Comm.Rank() != 0 }

// writeClassIndices writes class_indices.json on rank 0.
func (t *Trainer) writeClassIndices() error {
	if !t.root() {
		return nil
	}
	return WriteClassIndices(filepath.Join(t.cfg.Out, ClassFile), t.classes)
}
