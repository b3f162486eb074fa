package train_test

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/resgo/resgo/data"
	"github.com/resgo/resgo/dist"
	"github.com/resgo/resgo/modelfile"
	"github.com/resgo/resgo/train"
)

// hub connects the goroutines that play the ranks of an MPI job in these
// tests: each collective waits for all of them and combines their
// buffers, as MPI does.
type hub struct {
	n       int
	mu      sync.Mutex
	cond    *sync.Cond
	arrived int
	gen     int
	acc     []float64
	results map[int][]float64
}

func newHub(n int) *hub {
	h := &hub{n: n, results: map[int][]float64{}}
	h.cond = sync.NewCond(&h.mu)
	return h
}

// meet adds contrib (or, for a broadcast, takes root's) and returns the
// combined buffer once every rank has arrived.
func (h *hub) meet(contrib []float64, take bool) []float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.arrived == 0 {
		h.acc = make([]float64, len(contrib))
	}
	if take {
		copy(h.acc, contrib)
	} else if contrib != nil {
		for i, v := range contrib {
			h.acc[i] += v
		}
	}
	h.arrived++
	gen := h.gen
	if h.arrived == h.n {
		h.results[gen] = h.acc
		h.arrived = 0
		h.gen++
		h.cond.Broadcast()
	}
	for gen == h.gen {
		h.cond.Wait()
	}
	return h.results[gen]
}

// rankComm is one rank's dist.Comm over a hub.
type rankComm struct {
	h    *hub
	rank int
}

func (c rankComm) Rank() int { return c.rank }
func (c rankComm) Size() int { return c.h.n }
func (c rankComm) Allreduce(buf []float32) error {
	in := make([]float64, len(buf))
	for i, v := range buf {
		in[i] = float64(v)
	}
	for i, v := range c.h.meet(in, false) {
		buf[i] = float32(v)
	}
	return nil
}
func (c rankComm) AllreduceFloat64(buf []float64) error {
	copy(buf, c.h.meet(buf, false))
	return nil
}
func (c rankComm) Iallreduce(buf []float32) (dist.Request, error) {
	return done{}, c.Allreduce(buf)
}
func (c rankComm) Bcast(buf []float32, root int) error {
	var in []float64
	if c.rank == root {
		in = make([]float64, len(buf))
		for i, v := range buf {
			in[i] = float64(v)
		}
	}
	for i, v := range c.h.meet(in, c.rank == root) {
		buf[i] = float32(v)
	}
	return nil
}
func (c rankComm) Barrier() error { c.h.meet(nil, false); return nil }
func (c rankComm) Close() error   { return nil }
func (c rankComm) Abort(int)      {}

type done struct{}

func (done) Test() (bool, error) { return true, nil }
func (done) Wait() error         { return nil }

// relDiff returns the difference between the model tensors (parameters
// and running statistics, not the optimizer's state) of two checkpoints,
// as one vector, relative to the first's norm.
func relDiff(t *testing.T, a, b string) float64 {
	t.Helper()
	sa, _, err := modelfile.Read(a)
	if err != nil {
		t.Fatal(err)
	}
	sb, _, err := modelfile.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	var d, n float64
	for _, k := range sa.Keys {
		if strings.HasPrefix(k, "optim.") || strings.HasSuffix(k, "num_batches_tracked") {
			continue
		}
		if sb.Get(k) == nil {
			t.Fatalf("%s: no %s", b, k)
		}
		va, vb := sa.Get(k).ToTensor().Values(), sb.Get(k).ToTensor().Values()
		for i := range va {
			x := float64(va[i]) - float64(vb[i])
			d += x * x
			n += float64(va[i]) * float64(va[i])
		}
	}
	return math.Sqrt(d / n)
}

// noise returns n random RGB images of side x side pixels in 4 classes:
// continuous values, unlike flat synthetic shapes, whose constant regions
// make the first convolution's gradient a sum that cancels to rounding
// noise.
func noise(n, side int) *data.Memory {
	r := rand.New(rand.NewPCG(1, 2))
	m := &data.Memory{W: side, H: side, C: 3, Pix: make([]uint8, n*side*side*3), Labels: make([]int, n),
		ClassNames: []string{"a", "b", "c", "d"}}
	for i := range m.Pix {
		m.Pix[i] = uint8(r.IntN(256))
	}
	for i := range m.Labels {
		m.Labels[i] = i % 4
	}
	return m
}

// trainRanks trains cfg on ranks goroutines over one hub, rank 0 writing
// into out.
func trainRanks(t *testing.T, ranks int, cfg train.Config, ds data.Dataset) {
	t.Helper()
	h := newHub(ranks)
	var wg sync.WaitGroup
	errs := make([]error, ranks)
	for r := range ranks {
		wg.Go(func() {
			c := cfg
			c.Dist.Comm = rankComm{h, r}
			tr, err := train.New(testBackend(t), c, ds, nil, nil)
			if err == nil {
				_, err = tr.Run(context.Background())
			}
			errs[r] = err
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
}

// Two ranks (goroutines over an in-memory Comm) with batch 16 and
// synchronized batch norm take the steps of one process with batch 32;
// without it they do not (each normalizes with its own half batch).
//
// The learning rate is small: at 0.05 the first steps of a ResNet amplify
// float32 rounding so much that one process on two backends (ref, dnnl)
// ends 5 steps 2.5e-3 apart; at 3e-4 they stay within 1e-6.
func TestDataParallelMatchesOneProcess(t *testing.T) {
	dir := t.TempDir()
	ds := noise(64, side) // 2 steps of 32
	config := func(out string, batch int) train.Config {
		cfg := smallConfig(out)
		cfg.Epochs, cfg.Batch, cfg.Optimizer, cfg.LR = 1, batch, "sgd", 3e-4
		return cfg
	}
	one := filepath.Join(dir, "one")
	tr, err := train.New(testBackend(t), config(one, 32), ds, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	two, perRank := filepath.Join(dir, "two"), filepath.Join(dir, "per-rank")
	cfg := config(two, 16)
	cfg.Dist = train.Distributed{SyncBN: true}
	trainRanks(t, 2, cfg, ds)
	cfg = config(perRank, 16)
	cfg.Dist = train.Distributed{BucketMB: 0.1} // several buckets
	trainRanks(t, 2, cfg, ds)
	last := train.LastFile
	sync, own := relDiff(t, filepath.Join(one, last), filepath.Join(two, last)), relDiff(t, filepath.Join(one, last), filepath.Join(perRank, last))
	t.Logf("relative difference to one process: %.2g with synchronized batch norm, %.2g without", sync, own)
	if sync > 1e-5 {
		t.Errorf("2 ranks x 16 with synchronized batch norm differ from 1 x 32 by %.2g", sync)
	}
	if own < 1e-4 {
		t.Errorf("2 ranks x 16 with their own batch statistics differ from 1 x 32 by only %.2g", own)
	}
}
