package data

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"testing"
)

// The shards of every rank are disjoint (when the replicas divide the
// data set), cover it, are reshuffled per epoch and do not depend on
// anything but the seed and the epoch.
func TestDistributedSamplerCovers(t *testing.T) {
	for _, n := range []int{1, 5, 64, 1000} {
		for _, replicas := range []int{1, 2, 3, 8} {
			var all []int
			for rank := range replicas {
				s, err := NewDistributedSampler(n, replicas, rank, true, 7)
				if err != nil {
					t.Fatal(err)
				}
				idx := s.Indices(2)
				if len(idx) != s.Len() {
					t.Fatalf("n %d, rank %d of %d: %d indices, Len %d", n, rank, replicas, len(idx), s.Len())
				}
				all = append(all, idx...)
			}
			if len(all) != (n+replicas-1)/replicas*replicas {
				t.Fatalf("n %d, %d replicas: %d indices in all", n, replicas, len(all))
			}
			seen := map[int]int{}
			for _, i := range all {
				seen[i]++
			}
			if len(seen) != n {
				t.Fatalf("n %d, %d replicas: the shards cover %d samples", n, replicas, len(seen))
			}
			if n%replicas == 0 {
				for i, c := range seen {
					if c != 1 {
						t.Fatalf("n %d, %d replicas: sample %d in %d shards", n, replicas, i, c)
					}
				}
			}
		}
	}
	s, _ := NewDistributedSampler(1000, 2, 1, true, 7)
	if slices.Equal(s.Indices(0), s.Indices(1)) {
		t.Fatal("epochs 0 and 1 have the same shard")
	}
	if !slices.Equal(s.Indices(1), s.Indices(1)) {
		t.Fatal("one epoch's shard differs between two calls")
	}
	// One replica visits the data in the order a shuffling Loader does.
	one, _ := NewDistributedSampler(1000, 1, 0, true, 7)
	l, err := NewLoader(indexed(1000), Options{BatchSize: 4, Channels: 1, Height: 1, Width: 1, Shuffle: true, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(one.Indices(3), l.Order(3)) {
		t.Fatal("one replica's shard is not the Loader's order")
	}
	if _, err := NewDistributedSampler(10, 2, 2, true, 0); err == nil {
		t.Fatal("rank 2 of 2 accepted")
	}
}

// A Loader with a sampler delivers the shard, in batches.
func TestLoaderSampler(t *testing.T) {
	s, _ := NewDistributedSampler(10, 3, 1, false, 0)
	l, err := NewLoader(indexed(10), Options{BatchSize: 3, Channels: 1, Height: 1, Width: 1, Sampler: s, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 2 {
		t.Fatalf("Len %d, want 2 batches of the 4 samples", l.Len())
	}
	it := l.Epoch(0)
	defer it.Close()
	var got []int
	for b := it.Next(); b != nil; b = it.Next() {
		got = append(got, b.Indices...)
		b.Release()
	}
	// Rank 1 of 3 takes 1, 4, 7 and, padded, 0.
	if want := []int{1, 4, 7, 0}; !slices.Equal(got, want) {
		t.Fatalf("samples %v, want %v", got, want)
	}
}

// The shards match PyTorch's DistributedSampler's, given the same epoch
// order (torch's own permutation when shuffling): the padding, the
// striding and the lengths.
func TestDistributedSamplerTorch(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import torch").Run(); err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("RESGO_REQUIRE_TORCH") == "1" {
			t.Fatalf("/usr/bin/python3 cannot import torch (Debian's python3-torch): %v", err)
		}
		t.Skip("no torch: /usr/bin/python3 cannot import torch")
	}
	out, err := exec.Command("/usr/bin/python3", "../scripts/make_sampler_fixtures.py").Output()
	if err != nil {
		t.Fatalf("make_sampler_fixtures.py: %v", err)
	}
	var fx struct {
		Cases []struct {
			N, Replicas, Epoch, Len int
			Shuffle                 bool
			Order                   []int
			Shards                  [][]int
		}
	}
	if err := json.Unmarshal(out, &fx); err != nil {
		t.Fatal(err)
	}
	if len(fx.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range fx.Cases {
		for rank, want := range c.Shards {
			got := shard(c.Order, c.Replicas, rank)
			if !slices.Equal(got, want) {
				t.Fatalf("n %d, rank %d of %d, shuffle %v: shard %v, torch %v", c.N, rank, c.Replicas, c.Shuffle, got, want)
			}
			s := DistributedSampler{N: c.N, Replicas: c.Replicas, Rank: rank}
			if s.Len() != c.Len {
				t.Fatalf("n %d, %d replicas: Len %d, torch %d", c.N, c.Replicas, s.Len(), c.Len)
			}
			if !c.Shuffle && !slices.Equal(s.Indices(c.Epoch), want) {
				t.Fatalf("n %d, rank %d of %d: unshuffled shard %v, torch %v", c.N, rank, c.Replicas, s.Indices(c.Epoch), want)
			}
		}
	}
}

// indexed returns a data set of n 1x1 gray images.
func indexed(n int) *Memory {
	return &Memory{W: 1, H: 1, C: 1, Pix: make([]uint8, n), Labels: make([]int, n), ClassNames: []string{"a"}}
}

// Three processes share 10 samples: each takes every third position of
// the epoch's order, padded to 12 by repeating its start.
func ExampleDistributedSampler() {
	for rank := range 3 {
		s, err := NewDistributedSampler(10, 3, rank, false, 0)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(rank, s.Indices(0))
	}
	// Output:
	// 0 [0 3 6 9]
	// 1 [1 4 7 0]
	// 2 [2 5 8 1]
}
