package data

import (
	"math/bits"
	"math/rand/v2"
)

// The random choices of this package (shuffles, splits, per-sample
// generators) use PCG, a specified generator, and their own bounded-integer
// and shuffle code, so they stay the same across Go versions.

// Salts keep the streams of different uses apart.
const (
	permSalt   = 0x7065726d // "perm": epoch permutations
	sampleSalt = 0x73616d70 // "samp": per-sample generators
	splitSalt  = 0x73706c74 // "splt": validation splits
	takeSalt   = 0x74616b65 // "take": TakePerClass
	weightSalt = 0x77676874 // "wght": weighted sampling
)

// mix64 is SplitMix64's finalizer, a bijective scrambler of 64-bit values.
func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// pcgSeeds derives the two PCG seeds of the stream (seed, salt, x).
func pcgSeeds(seed, salt, x uint64) (uint64, uint64) {
	return mix64(seed ^ mix64(salt)), mix64(x ^ mix64(salt+1))
}

// newPCG returns a generator for the stream (seed, salt, x).
func newPCG(seed, salt, x uint64) *rand.PCG {
	return rand.NewPCG(pcgSeeds(seed, salt, x))
}

// intN returns a uniform integer in [0, n) (Lemire's method).
func intN(src *rand.PCG, n int) int {
	hi, lo := bits.Mul64(src.Uint64(), uint64(n))
	if lo < uint64(n) {
		thresh := -uint64(n) % uint64(n)
		for lo < thresh {
			hi, lo = bits.Mul64(src.Uint64(), uint64(n))
		}
	}
	return int(hi)
}

// perm returns a uniform random permutation of 0..n-1 (Fisher-Yates).
func perm(n int, src *rand.PCG) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := intN(src, i+1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// choose marks k of n positions chosen uniformly at random (a partial
// Fisher-Yates shuffle).
func choose(n, k int, src *rand.PCG) []bool {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	out := make([]bool, n)
	for i := range k {
		j := i + intN(src, n-i)
		p[i], p[j] = p[j], p[i]
		out[p[i]] = true
	}
	return out
}
