package ref

import "sync"

// This file holds the one matrix multiply every heavy op of the backend is
// built on (convolution through im2col, its two backward passes, Linear):
//
//	C += op(A) · op(B)
//
// where op(A) is m×k, op(B) is k×n and C is m×n, all row-major float32 with
// leading dimensions lda, ldb, ldc; op(X) is X or its transpose. It is a
// textbook cache-blocked GEMM (Goto's scheme): a kc×nc block of op(B) and an
// mc×kc block of op(A) are copied ("packed") into contiguous buffers, in the
// order the micro-kernel reads them, and a 4×2 micro-kernel keeps its tile of
// C in eight local variables (registers) for the whole kc loop. Packing also
// takes care of the transposes, so the kernel sees one layout only.
//
// Go does not vectorise, so this is scalar code; the 4×2 tile is the largest
// that stays in registers and measured fastest among 4×4, 3×4, 2×6, 4×2 and
// 1×8 tiles.

const (
	mr = 4   // rows of the micro-tile of C
	nr = 2   // columns of the micro-tile of C
	kc = 256 // depth of a packed block
	mc = 128 // rows of a packed block of A
	nc = 512 // columns of a packed block of B
)

// gemmParallelMin is the number of multiply-adds below which gemm does not
// bother starting goroutines.
const gemmParallelMin = 1 << 16

// matrix is a row-major float32 matrix operand of gemm: element (i, j) of
// op(X) is data[i*ld+j], or data[j*ld+i] when trans is set.
type matrix struct {
	data  []float32
	ld    int
	trans bool
}

// at returns element (i, j) of op(X).
func (x matrix) at(i, j int) float32 {
	if x.trans {
		return x.data[j*x.ld+i]
	}
	return x.data[i*x.ld+j]
}

// cols returns the operand restricted to columns j0... of op(X).
func (x matrix) cols(j0 int) matrix {
	if x.trans {
		x.data = x.data[j0*x.ld:]
	} else {
		x.data = x.data[j0:]
	}
	return x
}

// gemm computes C += op(A)·op(B) for an m×k op(A) and a k×n op(B) into the
// m×n matrix c (leading dimension ldc), splitting the columns of C among up
// to threads goroutines.
func gemm(m, n, k int, a, b matrix, c []float32, ldc int, threads int) {
	if m <= 0 || n <= 0 || k <= 0 {
		return
	}
	// Each goroutine gets a band of whole nr-column panels.
	panels := (n + nr - 1) / nr
	threads = min(threads, panels, max(1, m*n*k/gemmParallelMin))
	if threads <= 1 {
		gemmSerial(m, n, k, a, b, c, ldc)
		return
	}
	var wg sync.WaitGroup
	for t := range threads {
		j0 := panels * t / threads * nr
		j1 := min(n, panels*(t+1)/threads*nr)
		if j0 >= j1 {
			continue
		}
		wg.Go(func() {
			gemmSerial(m, j1-j0, k, a, b.cols(j0), c[j0:], ldc)
		})
	}
	wg.Wait()
}

// packPool recycles packing buffers between calls.
var packPool = sync.Pool{New: func() any {
	s := make([]float32, kc*(mc+nc))
	return &s
}}

// gemmSerial is gemm on the calling goroutine.
func gemmSerial(m, n, k int, a, b matrix, c []float32, ldc int) {
	buf := packPool.Get().(*[]float32)
	defer packPool.Put(buf)
	pa, pb := (*buf)[:kc*mc], (*buf)[kc*mc:]

	for j0 := 0; j0 < n; j0 += nc {
		nb := min(nc, n-j0)
		for p0 := 0; p0 < k; p0 += kc {
			kb := min(kc, k-p0)
			packB(pb, b, p0, j0, kb, nb)
			for i0 := 0; i0 < m; i0 += mc {
				mb := min(mc, m-i0)
				packA(pa, a, i0, p0, mb, kb)
				// Multiply the packed blocks tile by tile.
				for jr := 0; jr < nb; jr += nr {
					bp := pb[jr*kb : (jr+nr)*kb]
					for ir := 0; ir < mb; ir += mr {
						ap := pa[ir*kb : (ir+mr)*kb]
						t := kernel4x2(ap, bp)
						addTile(c, ldc, i0+ir, j0+jr, min(mr, m-i0-ir), min(nr, n-j0-jr), &t)
					}
				}
			}
		}
	}
}

// packA copies the mb×kb block of op(A) at (i0, p0) into dst as panels of mr
// rows; inside a panel, element (i, p) is at p*mr+i. Rows past mb are zero.
func packA(dst []float32, a matrix, i0, p0, mb, kb int) {
	for ir := 0; ir < mb; ir += mr {
		panel := dst[ir*kb : (ir+mr)*kb]
		for i := range mr {
			if ir+i >= mb {
				for p := range kb {
					panel[p*mr+i] = 0
				}
				continue
			}
			row := i0 + ir + i
			if a.trans {
				// op(A)(row, p) = a[p*ld+row]: strided walk.
				for p := range kb {
					panel[p*mr+i] = a.data[(p0+p)*a.ld+row]
				}
			} else {
				src := a.data[row*a.ld+p0 : row*a.ld+p0+kb]
				for p, v := range src {
					panel[p*mr+i] = v
				}
			}
		}
	}
}

// packB copies the kb×nb block of op(B) at (p0, j0) into dst as panels of nr
// columns; inside a panel, element (p, j) is at p*nr+j. Columns past nb are
// zero.
func packB(dst []float32, b matrix, p0, j0, kb, nb int) {
	for jr := 0; jr < nb; jr += nr {
		panel := dst[jr*kb : (jr+nr)*kb]
		for j := range nr {
			if jr+j >= nb {
				for p := range kb {
					panel[p*nr+j] = 0
				}
				continue
			}
			col := j0 + jr + j
			if b.trans {
				src := b.data[col*b.ld+p0 : col*b.ld+p0+kb]
				for p, v := range src {
					panel[p*nr+j] = v
				}
			} else {
				for p := range kb {
					panel[p*nr+j] = b.data[(p0+p)*b.ld+col]
				}
			}
		}
	}
}

// kernel4x2 returns the 4×2 product of a packed A panel (4 rows) and a packed
// B panel (2 columns) of the same depth: t[i*2+j] = sum_p a[p*4+i]*b[p*2+j].
// The loop is unrolled twice over p, which measured ~1.3x faster.
func kernel4x2(a, b []float32) [mr * nr]float32 {
	var c00, c01, c10, c11, c20, c21, c30, c31 float32
	for len(a) >= 2*mr && len(b) >= 2*nr {
		a0, a1, a2, a3 := a[0], a[1], a[2], a[3]
		b0, b1 := b[0], b[1]
		c00 += a0 * b0
		c01 += a0 * b1
		c10 += a1 * b0
		c11 += a1 * b1
		c20 += a2 * b0
		c21 += a2 * b1
		c30 += a3 * b0
		c31 += a3 * b1
		a0, a1, a2, a3 = a[4], a[5], a[6], a[7]
		b0, b1 = b[2], b[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c10 += a1 * b0
		c11 += a1 * b1
		c20 += a2 * b0
		c21 += a2 * b1
		c30 += a3 * b0
		c31 += a3 * b1
		a, b = a[2*mr:], b[2*nr:]
	}
	if len(a) >= mr && len(b) >= nr { // odd depth: one step left
		a0, a1, a2, a3 := a[0], a[1], a[2], a[3]
		b0, b1 := b[0], b[1]
		c00 += a0 * b0
		c01 += a0 * b1
		c10 += a1 * b0
		c11 += a1 * b1
		c20 += a2 * b0
		c21 += a2 * b1
		c30 += a3 * b0
		c31 += a3 * b1
	}
	return [mr * nr]float32{c00, c01, c10, c11, c20, c21, c30, c31}
}

// addTile adds the top-left rows×cols part of the micro-tile t to C at (i, j).
func addTile(c []float32, ldc, i, j, rows, cols int, t *[mr * nr]float32) {
	for r := range rows {
		row := c[(i+r)*ldc+j : (i+r)*ldc+j+cols]
		for q := range row {
			row[q] += t[r*nr+q]
		}
	}
}
