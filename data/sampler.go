package data

import "fmt"

// Sampler chooses the samples of each epoch of a Loader and their order.
type Sampler interface {
	// Len returns the number of samples of an epoch.
	Len() int
	// Indices returns the dataset indices of epoch's samples, in order;
	// an index may repeat.
	Indices(epoch int) []int
}

// DistributedSampler is PyTorch's torch.utils.data.DistributedSampler
// (drop_last=False) for data-parallel training: each of Replicas
// processes takes a shard of every epoch. The epoch's order over the N
// samples (a permutation drawn from Seed and the epoch when Shuffle is set,
// the same a Loader with Shuffle draws; else 0..N-1) is padded to
// TotalSize by repeating it from its start, and rank r takes the positions
// r, r+Replicas, r+2*Replicas, ... The shards of an epoch are disjoint
// when Replicas divides N, cover the data set, and have Len samples each;
// with one replica the shard is the whole order.
type DistributedSampler struct {
	N        int // samples in the data set
	Replicas int // processes (num_replicas)
	Rank     int // this process, 0 to Replicas-1
	Shuffle  bool
	Seed     uint64
}

// NewDistributedSampler returns the sampler of rank's shard of n samples
// among replicas processes.
func NewDistributedSampler(n, replicas, rank int, shuffle bool, seed uint64) (*DistributedSampler, error) {
	if n < 1 || replicas < 1 || rank < 0 || rank >= replicas {
		return nil, fmt.Errorf("data.DistributedSampler: rank %d of %d replicas over %d samples", rank, replicas, n)
	}
	return &DistributedSampler{N: n, Replicas: replicas, Rank: rank, Shuffle: shuffle, Seed: seed}, nil
}

// Len returns the samples of each shard: ceil(N / Replicas).
func (s *DistributedSampler) Len() int { return (s.N + s.Replicas - 1) / s.Replicas }

// TotalSize returns the padded length of an epoch's order: Len()*Replicas.
func (s *DistributedSampler) TotalSize() int { return s.Len() * s.Replicas }

// Indices returns rank's shard of epoch.
func (s *DistributedSampler) Indices(epoch int) []int {
	var order []int
	if s.Shuffle {
		order = perm(s.N, newPCG(s.Seed, permSalt, uint64(epoch)))
	} else {
		order = make([]int, s.N)
		for i := range order {
			order[i] = i
		}
	}
	return shard(order, s.Replicas, s.Rank)
}

// shard pads order to a multiple of replicas by repeating it from its
// start (as many times as needed when it is shorter than the padding) and
// returns the positions rank, rank+replicas, ... of the padded order.
func shard(order []int, replicas, rank int) []int {
	total := (len(order) + replicas - 1) / replicas * replicas
	padded := make([]int, 0, total)
	padded = append(padded, order...)
	for len(padded) < total {
		padded = append(padded, order[:min(len(order), total-len(padded))]...)
	}
	out := make([]int, 0, total/replicas)
	for i := rank; i < total; i += replicas {
		out = append(out, padded[i])
	}
	return out
}
