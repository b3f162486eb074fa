//go:build cgo

// wino.c: Winograd F(4x4, 3x3) convolution for AVX2 machines, where
// oneDNN 2.6 has none. Activations are in oneDNN's nChw8c layout (what its
// direct AVX2 kernels take), so the layers around need no reorder.
//
// A 3x3 stride-1 convolution computes each 4x4 block ("tile") of outputs
// from a 6x6 block of inputs. Winograd's algorithm (Lavin and Gray, 2015)
// does it as
//
//	Y = A^T [ (G g G^T) . (B^T d B) ] A
//
// where g is one 3x3 kernel, d one 6x6 input tile, "." the elementwise
// product, and summing the products over input channels turns the 36
// elementwise products into 36 matrix products:
//
//	M[e][t][o] = sum_i V[e][t][i] U[e][i][o]
//
// with V = B^T d B per tile t and input channel i, U = G g G^T per input
// and output channel. That is 36 multiplications per 16 outputs and input
// channel where the direct form does 144. The three steps below (input
// transform, 36 matrix products, output transform) each run in parallel
// over OpenMP's threads, the ones oneDNN uses, one after the other, or
// fused per block of tiles where the weights are small (conv_fused).
//
// The backward pass to the data is the same convolution of dy with the
// weights turned by 180 degrees (rg_wino_weights with flip). The one to
// the weights is the transposed algorithm: as Y is linear in g,
//
//	dg = G^T [ sum over tiles of (A dY A^T) . (B^T d B) ] G
//
// (rg_wino_conv_grad): the same input transform, a transform of each
// output-gradient tile, 36 matrix products that sum over the tiles, and
// the transform of the sums into 3x3 gradients.
//
// Each transform is written once, for eight channels in one AVX2 vector;
// the tests check every pass against the reference backend.

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "wino.h"

#define AVX2 __attribute__((target("avx2,fma")))

// bt6 computes B^T x for six vectors x[0], x[s], ..., x[5s].
static inline AVX2 void bt6(const __m256 *x, int s, __m256 *y, int t) {
	__m256 d0 = x[0], d1 = x[s], d2 = x[2 * s], d3 = x[3 * s], d4 = x[4 * s], d5 = x[5 * s];
	__m256 four = _mm256_set1_ps(4.0f), five = _mm256_set1_ps(5.0f), two = _mm256_set1_ps(2.0f);
	// y0 = 4 d0 - 5 d2 + d4
	y[0] = _mm256_fnmadd_ps(five, d2, _mm256_fmadd_ps(four, d0, d4));
	// y1 = -4 (d1 + d2) + d3 + d4, y2 = 4 (d1 - d2) - d3 + d4
	__m256 a = _mm256_add_ps(d3, d4), b = _mm256_sub_ps(d4, d3);
	y[t] = _mm256_fnmadd_ps(four, _mm256_add_ps(d1, d2), a);
	y[2 * t] = _mm256_fmadd_ps(four, _mm256_sub_ps(d1, d2), b);
	// y3 = 2 (d3 - d1) + d4 - d2, y4 = 2 (d1 - d3) + d4 - d2
	__m256 c = _mm256_sub_ps(d4, d2), e = _mm256_sub_ps(d3, d1);
	y[3 * t] = _mm256_fmadd_ps(two, e, c);
	y[4 * t] = _mm256_fnmadd_ps(two, e, c);
	// y5 = 4 d1 - 5 d3 + d5
	y[5 * t] = _mm256_fnmadd_ps(five, d3, _mm256_fmadd_ps(four, d1, d5));
}

// at6 computes A^T x for six vectors x[0], x[s], ..., x[5s] (four results).
static inline AVX2 void at6(const __m256 *x, int s, __m256 *y, int t) {
	__m256 m0 = x[0], m1 = x[s], m2 = x[2 * s], m3 = x[3 * s], m4 = x[4 * s], m5 = x[5 * s];
	__m256 p12 = _mm256_add_ps(m1, m2), d12 = _mm256_sub_ps(m1, m2);
	__m256 p34 = _mm256_add_ps(m3, m4), d34 = _mm256_sub_ps(m3, m4);
	y[0] = _mm256_add_ps(_mm256_add_ps(m0, p12), p34);
	y[t] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), d34, d12);
	y[2 * t] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), p34, p12);
	y[3 * t] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), d34, d12), m5);
}

size_t rg_wino_weights_size(int oc, int ic) { return (size_t)36 * ic * oc; }

// g6 computes G x for three vectors x[0], x[s], x[2s] (six results).
static inline AVX2 void g6(const __m256 *x, int s, __m256 *y, int t) {
	__m256 g0 = x[0], g1 = x[s], g2 = x[2 * s];
	__m256 p02 = _mm256_add_ps(g0, g2);
	__m256 sixth = _mm256_set1_ps(1.0f / 6);
	y[0] = _mm256_mul_ps(_mm256_set1_ps(0.25f), g0);
	// -(g0 + g1 + g2)/6, -(g0 - g1 + g2)/6
	y[t] = _mm256_mul_ps(_mm256_set1_ps(-1.0f / 6), _mm256_add_ps(p02, g1));
	y[2 * t] = _mm256_mul_ps(_mm256_set1_ps(-1.0f / 6), _mm256_sub_ps(p02, g1));
	// g0/24 + g2/6 +- g1/12
	__m256 a = _mm256_fmadd_ps(_mm256_set1_ps(1.0f / 24), g0, _mm256_mul_ps(sixth, g2));
	__m256 b = _mm256_mul_ps(_mm256_set1_ps(1.0f / 12), g1);
	y[3 * t] = _mm256_add_ps(a, b);
	y[4 * t] = _mm256_sub_ps(a, b);
	y[5 * t] = g2;
}

AVX2 void rg_wino_weights(float *u, const float *w, int oc, int ic, int flip) {
	// U[e][o/16][i][o%16] = (G g G^T)[e] for the kernel g of output
	// channel o and input channel i, 16 output channels at a time.
	int ob = oc / 16;
	long items = (long)ob * ic;
	#pragma omp parallel for schedule(static)
	for (long it = 0; it < items; it++) {
		int b = it / ic, i = it % ic;
		float g[9][16] __attribute__((aligned(32)));
		for (int j = 0; j < 16; j++) {
			int o = b * 16 + j;
			if (flip) {
				// w is [ic][oc][3][3], turned by 180 degrees.
				const float *k = w + ((size_t)i * oc + o) * 9;
				for (int q = 0; q < 9; q++) g[q][j] = k[8 - q];
			} else {
				const float *k = w + ((size_t)o * ic + i) * 9;
				for (int q = 0; q < 9; q++) g[q][j] = k[q];
			}
		}
		for (int h = 0; h < 2; h++) {
			__m256 x[9], t[18], y[36];
			for (int q = 0; q < 9; q++) x[q] = _mm256_load_ps(&g[q][h * 8]);
			for (int c = 0; c < 3; c++) g6(x + c, 3, t + c, 3);       // G g: 6x3
			for (int r = 0; r < 6; r++) g6(t + r * 3, 1, y + r * 6, 1); // (G g) G^T: 6x6
			for (int e = 0; e < 36; e++)
				_mm256_storeu_ps(u + (((size_t)e * ob + b) * ic + i) * 16 + h * 8, y[e]);
		}
	}
}

// Geometry of one call.
typedef struct {
	int n, ic, oc, h, w, oh, ow, pad;
	int th, tw;   // tiles per column and row
	int t, tpad;  // tiles, and rounded up to a multiple of 6
} geom;

static geom geom_of(int n, int ic, int oc, int h, int w, int pad) {
	geom g = {n, ic, oc, h, w, h + 2 * pad - 2, w + 2 * pad - 2, pad};
	g.th = (g.oh + 3) / 4;
	g.tw = (g.ow + 3) / 4;
	g.t = n * g.th * g.tw;
	g.tpad = (g.t + 5) / 6 * 6;
	return g;
}



// tile_at returns the image n of tile t and the first output row and
// column the tile covers.
static inline void tile_at(const geom *g, int t, int *n, int *y0, int *x0) {
	int per = g->th * g->tw, r = t % per;
	*n = t / per;
	*y0 = (r / g->tw) * 4;
	*x0 = (r % g->tw) * 4;
}

// input_tile writes (B^T d B)[e] of tile t and input channels 8b..8b+7 to
// v + e*stride.
static inline AVX2 void input_tile(const geom *g, const float *src, int t, int b, float *v, size_t stride) {
	int cb = g->ic / 8, n, y0, x0;
	tile_at(g, t, &n, &y0, &x0);
	y0 -= g->pad; // the input rows and columns start pad earlier
	x0 -= g->pad;
	const float *s = src + (((size_t)n * cb + b) * g->h) * g->w * 8;
	__m256 d[36], tmp[36], out[36];
	for (int y = 0; y < 6; y++) {
		int iy = y0 + y;
		for (int x = 0; x < 6; x++) {
			int ix = x0 + x;
			if (iy >= 0 && iy < g->h && ix >= 0 && ix < g->w)
				d[y * 6 + x] = _mm256_loadu_ps(s + ((size_t)iy * g->w + ix) * 8);
			else
				d[y * 6 + x] = _mm256_setzero_ps();
		}
	}
	for (int x = 0; x < 6; x++) bt6(d + x, 6, tmp + x, 6);   // B^T d: columns
	for (int y = 0; y < 6; y++) bt6(tmp + y * 6, 1, out + y * 6, 1); // (B^T d) B: rows
	for (int e = 0; e < 36; e++) _mm256_storeu_ps(v + e * stride, out[e]);
}

// tile_fn is input_tile or grad_tile: the transform of tile t and the
// eight channels of block b of src, written to out + e*stride.
typedef void (*tile_fn)(const geom *g, const float *src, int t, int b, float *out, size_t stride);

// transform_all writes out[e][t][c] for every tile and every one of the
// ch channels: tile's transform of src, all the tiles at once.
static AVX2 void transform_all(const geom *g, int ch, tile_fn tile, const float *src, float *out) {
	int cb = ch / 8;
	long items = (long)g->t * cb;
	#pragma omp parallel for schedule(static)
	for (long it = 0; it < items; it++)
		tile(g, src, it / cb, it % cb, out + (size_t)(it / cb) * ch + (it % cb) * 8, (size_t)g->tpad * ch);
}

// kernel6x16 computes six rows (tiles) by 16 columns (output channels) of
// one matrix product M[e] = V[e] U[e]: a holds the rows (stride lda), b the
// 16 columns packed [k][16], c the result (stride ldc).
static inline AVX2 void kernel6x16(int k, const float *a, int lda, const float *b, float *c, int ldc) {
	__m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
	__m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
	const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda, *a4 = a + 4 * lda, *a5 = a + 5 * lda;
	for (int i = 0; i < k; i++) {
		__m256 b0 = _mm256_loadu_ps(b + i * 16), b1 = _mm256_loadu_ps(b + i * 16 + 8);
		__m256 x;
		x = _mm256_broadcast_ss(a0 + i); c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
		x = _mm256_broadcast_ss(a1 + i); c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
		x = _mm256_broadcast_ss(a2 + i); c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
		x = _mm256_broadcast_ss(a3 + i); c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
		x = _mm256_broadcast_ss(a4 + i); c40 = _mm256_fmadd_ps(x, b0, c40); c41 = _mm256_fmadd_ps(x, b1, c41);
		x = _mm256_broadcast_ss(a5 + i); c50 = _mm256_fmadd_ps(x, b0, c50); c51 = _mm256_fmadd_ps(x, b1, c51);
	}
	_mm256_storeu_ps(c, c00); _mm256_storeu_ps(c + 8, c01); c += ldc;
	_mm256_storeu_ps(c, c10); _mm256_storeu_ps(c + 8, c11); c += ldc;
	_mm256_storeu_ps(c, c20); _mm256_storeu_ps(c + 8, c21); c += ldc;
	_mm256_storeu_ps(c, c30); _mm256_storeu_ps(c + 8, c31); c += ldc;
	_mm256_storeu_ps(c, c40); _mm256_storeu_ps(c + 8, c41); c += ldc;
	_mm256_storeu_ps(c, c50); _mm256_storeu_ps(c + 8, c51);
}

// Rows of V one work item of the products takes (a multiple of 6).
#define CHUNK 48

// products computes M[e] = V[e] U[e] for the 36 elements.
static AVX2 void products(const geom *g, const float *v, const float *u, float *m) {
	int chunks = (g->tpad + CHUNK - 1) / CHUNK, ob = g->oc / 16;
	long items = 36L * chunks;
	#pragma omp parallel for schedule(static)
	for (long it = 0; it < items; it++) {
		int e = it / chunks, ch = it % chunks;
		int r0 = ch * CHUNK, r1 = r0 + CHUNK < g->tpad ? r0 + CHUNK : g->tpad;
		const float *ve = v + (size_t)e * g->tpad * g->ic;
		float *me = m + (size_t)e * g->tpad * g->oc;
		for (int o = 0; o < ob; o++) {
			const float *ue = u + ((size_t)e * ob + o) * g->ic * 16;
			for (int r = r0; r < r1; r += 6)
				kernel6x16(g->ic, ve + (size_t)r * g->ic, g->ic, ue, me + (size_t)r * g->oc + o * 16, g->oc);
		}
	}
}

// output_tile writes the outputs of tile t, output channels 8b..8b+7:
// A^T M A of the 36 vectors at m + e*stride, plus the bias, plus what dst
// holds (sum), then max(0, .) (relu).
static inline AVX2 void output_tile(const geom *g, const float *m, size_t stride, int t, int b, const float *bias, float *dst, int sum, int relu) {
	int cb = g->oc / 8, n, y0, x0;
	tile_at(g, t, &n, &y0, &x0);
	__m256 x[36], tmp[24], y[16];
	for (int e = 0; e < 36; e++) x[e] = _mm256_loadu_ps(m + e * stride);
	for (int c = 0; c < 6; c++) at6(x + c, 6, tmp + c, 6);     // A^T M: 4x6
	for (int rr = 0; rr < 4; rr++) at6(tmp + rr * 6, 1, y + rr * 4, 1); // (A^T M) A: 4x4
	__m256 bv = bias ? _mm256_loadu_ps(bias + b * 8) : _mm256_setzero_ps();
	float *d = dst + (((size_t)n * cb + b) * g->oh) * g->ow * 8;
	for (int yy = 0; yy < 4 && y0 + yy < g->oh; yy++) {
		for (int xx = 0; xx < 4 && x0 + xx < g->ow; xx++) {
			float *p = d + ((size_t)(y0 + yy) * g->ow + x0 + xx) * 8;
			__m256 val = _mm256_add_ps(y[yy * 4 + xx], bv);
			if (sum) val = _mm256_add_ps(val, _mm256_loadu_ps(p));
			if (relu) val = _mm256_max_ps(val, _mm256_setzero_ps());
			_mm256_storeu_ps(p, val);
		}
	}
}

// output_transform writes the outputs of every tile and output channel.
static AVX2 void output_transform(const geom *g, const float *m, const float *bias, float *dst, int sum, int relu) {
	int cb = g->oc / 8;
	long items = (long)g->t * cb;
	#pragma omp parallel for schedule(static)
	for (long it = 0; it < items; it++)
		output_tile(g, m + (size_t)(it / cb) * g->oc + (it % cb) * 8, (size_t)g->tpad * g->oc, it / cb, it % cb, bias, dst, sum, relu);
}

// Fusing: where the transformed weights are small (at most FUSE_WEIGHTS
// floats), each thread takes blocks of tiles through all three steps on
// buffers of its own, which stay in its cache, instead of writing every
// tile's V and M to memory and reading them back. Where they are large,
// reading them once per block would cost more than that.
#define FUSE_WEIGHTS (36 * 128 * 128)
#define FUSE_BYTES (384 << 10) // per thread: V and M of one block

// fused reports whether rg_wino_conv fuses g's steps, and its block of
// tiles (a multiple of 6).
static int fused(const geom *g, int *tb) {
	*tb = FUSE_BYTES / (36 * 4 * (g->ic + g->oc)) / 6 * 6;
	if (*tb < 6) *tb = 6;
	return (size_t)36 * g->ic * g->oc <= FUSE_WEIGHTS;
}

// conv_fused computes the convolution block by block of tb tiles.
static AVX2 void conv_fused(const geom *g, int tb, const float *src, const float *u, const float *bias, float *dst,
		float *scratch, int sum, int relu) {
	int blocks = (g->t + tb - 1) / tb, cbi = g->ic / 8, cbo = g->oc / 8, ob = g->oc / 16;
	#pragma omp parallel
	{
		float *v = scratch + (size_t)omp_get_thread_num() * 36 * tb * (g->ic + g->oc), *m = v + (size_t)36 * tb * g->ic;
		#pragma omp for schedule(static)
		for (int blk = 0; blk < blocks; blk++) {
			int t0 = blk * tb, nt = g->t - t0 < tb ? g->t - t0 : tb, rows = (nt + 5) / 6 * 6;
			size_t vs = (size_t)rows * g->ic, ms = (size_t)rows * g->oc;
			for (int e = 0; e < 36; e++) // rows past the last tile: zero
				memset(v + e * vs + (size_t)nt * g->ic, 0, (size_t)(rows - nt) * g->ic * sizeof(float));
			for (int t = 0; t < nt; t++)
				for (int b = 0; b < cbi; b++) input_tile(g, src, t0 + t, b, v + (size_t)t * g->ic + b * 8, vs);
			for (int e = 0; e < 36; e++)
				for (int o = 0; o < ob; o++) {
					const float *ue = u + ((size_t)e * ob + o) * g->ic * 16;
					for (int r = 0; r < rows; r += 6)
						kernel6x16(g->ic, v + e * vs + (size_t)r * g->ic, g->ic, ue, m + e * ms + (size_t)r * g->oc + o * 16, g->oc);
				}
			for (int t = 0; t < nt; t++)
				for (int b = 0; b < cbo; b++) output_tile(g, m + (size_t)t * g->oc + b * 8, ms, t0 + t, b, bias, dst, sum, relu);
		}
	}
}

size_t rg_wino_scratch_size(int n, int ic, int oc, int h, int w, int pad) {
	geom g = geom_of(n, ic, oc, h, w, pad);
	int tb;
	if (fused(&g, &tb)) return (size_t)omp_get_max_threads() * 36 * tb * (ic + oc) * sizeof(float) + 64;
	return (size_t)36 * g.tpad * (ic + oc) * sizeof(float) + 64;
}

void rg_wino_conv(float *dst, const float *src, const float *u, const float *bias, float *scratch,
		int n, int ic, int oc, int h, int w, int pad, int sum, int relu) {
	geom g = geom_of(n, ic, oc, h, w, pad);
	int tb;
	if (fused(&g, &tb)) {
		conv_fused(&g, tb, src, u, bias, dst, scratch, sum, relu);
		return;
	}
	float *v = scratch, *m = scratch + (size_t)36 * g.tpad * ic;
	// The rows past the last tile stay zero: the products read them.
	if (g.tpad > g.t)
		for (int e = 0; e < 36; e++)
			memset(v + ((size_t)e * g.tpad + g.t) * ic, 0, (size_t)(g.tpad - g.t) * ic * sizeof(float));
	transform_all(&g, g.ic, input_tile, src, v);
	products(&g, v, u, m);
	output_transform(&g, m, bias, dst, sum, relu);
}

int rg_wino_cpu_ok(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// a6 computes A x for four vectors x[0], x[s], x[2s], x[3s] (six results):
// the transpose of at6, which the backward pass to the weights needs.
static inline AVX2 void a6(const __m256 *x, int s, __m256 *y, int t) {
	__m256 y0 = x[0], y1 = x[s], y2 = x[2 * s], y3 = x[3 * s];
	__m256 p02 = _mm256_add_ps(y0, y2), p13 = _mm256_add_ps(y1, y3);
	__m256 q02 = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), y2, y0);
	__m256 q13 = _mm256_fmadd_ps(_mm256_set1_ps(8.0f), y3, _mm256_add_ps(y1, y1));
	y[0] = y0;
	y[t] = _mm256_add_ps(p02, p13);
	y[2 * t] = _mm256_sub_ps(p02, p13);
	y[3 * t] = _mm256_add_ps(q02, q13);
	y[4 * t] = _mm256_sub_ps(q02, q13);
	y[5 * t] = y3;
}

// gt3 computes G^T x for six vectors x[0], x[s], ..., x[5s] (three results).
static inline AVX2 void gt3(const __m256 *x, int s, __m256 *y, int t) {
	__m256 x0 = x[0], x1 = x[s], x2 = x[2 * s], x3 = x[3 * s], x4 = x[4 * s], x5 = x[5 * s];
	__m256 p12 = _mm256_add_ps(x1, x2), d21 = _mm256_sub_ps(x2, x1);
	__m256 p34 = _mm256_add_ps(x3, x4), d34 = _mm256_sub_ps(x3, x4);
	__m256 sixth = _mm256_set1_ps(1.0f / 6);
	// x0/4 - (x1 + x2)/6 + (x3 + x4)/24
	y[0] = _mm256_fmadd_ps(_mm256_set1_ps(1.0f / 24), p34, _mm256_fnmadd_ps(sixth, p12, _mm256_mul_ps(_mm256_set1_ps(0.25f), x0)));
	// (x2 - x1)/6 + (x3 - x4)/12
	y[t] = _mm256_fmadd_ps(_mm256_set1_ps(1.0f / 12), d34, _mm256_mul_ps(sixth, d21));
	// ((x3 + x4) - (x1 + x2))/6 + x5
	y[2 * t] = _mm256_fmadd_ps(sixth, _mm256_sub_ps(p34, p12), x5);
}

// grad_tile writes (A dy A^T)[e] of tile t and output channels
// 8b..8b+7 to y + e*stride: the backward pass of the output transform, dy
// zero past the output's edge.
static inline AVX2 void grad_tile(const geom *g, const float *dy, int t, int b, float *yt, size_t stride) {
	int cb = g->oc / 8, n, y0, x0;
	tile_at(g, t, &n, &y0, &x0);
	const float *s = dy + (((size_t)n * cb + b) * g->oh) * g->ow * 8;
	__m256 d[16], tmp[24], out[36];
	for (int y = 0; y < 4; y++)
		for (int x = 0; x < 4; x++) {
			int oy = y0 + y, ox = x0 + x;
			d[y * 4 + x] = oy < g->oh && ox < g->ow ? _mm256_loadu_ps(s + ((size_t)oy * g->ow + ox) * 8) : _mm256_setzero_ps();
		}
	for (int x = 0; x < 4; x++) a6(d + x, 4, tmp + x, 4);     // A dy: 6x4
	for (int y = 0; y < 6; y++) a6(tmp + y * 4, 1, out + y * 6, 1); // (A dy) A^T: 6x6
	for (int e = 0; e < 36; e++) _mm256_storeu_ps(yt + e * stride, out[e]);
}

// kernel6x16t sets c (6 rows of output channels by 16 input channels,
// stride ldc) to the sums over k tiles of the products of a, six output
// channels per tile (tile stride lda), and b, 16 input channels per tile
// (stride ldb), adding to what c holds unless first is set; only the first
// mr rows are real (the others repeat row 0 and are not stored).
static inline AVX2 void kernel6x16t(int k, int mr, const float *a, int lda, const float *b, int ldb, float *c, int ldc, int first) {
	__m256 acc[6][2];
	for (int r = 0; r < 6; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
	int o1 = mr > 1, o2 = mr > 2 ? 2 : 0, o3 = mr > 3 ? 3 : 0, o4 = mr > 4 ? 4 : 0, o5 = mr > 5 ? 5 : 0;
	for (int i = 0; i < k; i++) {
		const float *ai = a + (size_t)i * lda;
		__m256 b0 = _mm256_loadu_ps(b + (size_t)i * ldb), b1 = _mm256_loadu_ps(b + (size_t)i * ldb + 8);
		__m256 x;
		x = _mm256_broadcast_ss(ai); acc[0][0] = _mm256_fmadd_ps(x, b0, acc[0][0]); acc[0][1] = _mm256_fmadd_ps(x, b1, acc[0][1]);
		x = _mm256_broadcast_ss(ai + o1); acc[1][0] = _mm256_fmadd_ps(x, b0, acc[1][0]); acc[1][1] = _mm256_fmadd_ps(x, b1, acc[1][1]);
		x = _mm256_broadcast_ss(ai + o2); acc[2][0] = _mm256_fmadd_ps(x, b0, acc[2][0]); acc[2][1] = _mm256_fmadd_ps(x, b1, acc[2][1]);
		x = _mm256_broadcast_ss(ai + o3); acc[3][0] = _mm256_fmadd_ps(x, b0, acc[3][0]); acc[3][1] = _mm256_fmadd_ps(x, b1, acc[3][1]);
		x = _mm256_broadcast_ss(ai + o4); acc[4][0] = _mm256_fmadd_ps(x, b0, acc[4][0]); acc[4][1] = _mm256_fmadd_ps(x, b1, acc[4][1]);
		x = _mm256_broadcast_ss(ai + o5); acc[5][0] = _mm256_fmadd_ps(x, b0, acc[5][0]); acc[5][1] = _mm256_fmadd_ps(x, b1, acc[5][1]);
	}
	for (int r = 0; r < mr; r++) {
		float *cr = c + (size_t)r * ldc;
		if (!first) {
			acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(cr));
			acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(cr + 8));
		}
		_mm256_storeu_ps(cr, acc[r][0]);
		_mm256_storeu_ps(cr + 8, acc[r][1]);
	}
}

// weight_tile writes dw[o][i..i+7] = G^T dU G, where dU[e] for the eight
// input channels is at du + e*stride.
static inline AVX2 void weight_tile(const geom *g, const float *du, size_t stride, int o, int i, float *dw) {
	__m256 x[36], tmp[18], y[9];
	for (int e = 0; e < 36; e++) x[e] = _mm256_loadu_ps(du + e * stride);
	for (int c = 0; c < 6; c++) gt3(x + c, 6, tmp + c, 6);     // G^T dU: 3x6
	for (int r = 0; r < 3; r++) gt3(tmp + r * 6, 1, y + r * 3, 1); // (G^T dU) G: 3x3
	float out[9][8] __attribute__((aligned(32)));
	for (int q = 0; q < 9; q++) _mm256_store_ps(out[q], y[q]);
	for (int j = 0; j < 8; j++) {
		float *d = dw + ((size_t)o * g->ic + i + j) * 9;
		for (int q = 0; q < 9; q++) d[q] = out[q][j];
	}
}

// Tiles one block of the weight-gradient products sums over: what the
// rows of both operands it reads keep in cache.
#define KBLOCK 256

// grad_products computes dU[e][o][i] = sum_t Y[e][t][o] V[e][t][i], one
// element e per work item, the tiles in blocks of KBLOCK.
static AVX2 void grad_products(const geom *g, const float *yt, const float *v, float *du) {
	#pragma omp parallel for schedule(static)
	for (int e = 0; e < 36; e++) {
		const float *ye = yt + (size_t)e * g->tpad * g->oc, *ve = v + (size_t)e * g->tpad * g->ic;
		float *de = du + (size_t)e * g->oc * g->ic;
		for (int k0 = 0; k0 < g->t; k0 += KBLOCK) {
			int k = g->t - k0 < KBLOCK ? g->t - k0 : KBLOCK;
			for (int o = 0; o < g->oc; o += 6)
				for (int i = 0; i < g->ic; i += 16)
					kernel6x16t(k, g->oc - o < 6 ? g->oc - o : 6, ye + (size_t)k0 * g->oc + o, g->oc, ve + (size_t)k0 * g->ic + i, g->ic,
						de + (size_t)o * g->ic + i, g->ic, k0 == 0);
		}
	}
}

// weight_grad_transform writes dw from dU[e][o][i], 8 input channels at a
// time.
static AVX2 void weight_grad_transform(const geom *g, const float *du, float *dw) {
	int ib = g->ic / 8;
	#pragma omp parallel for schedule(static)
	for (long it = 0; it < (long)g->oc * ib; it++) {
		int o = it / ib, i = (it % ib) * 8;
		weight_tile(g, du + (size_t)o * g->ic + i, (size_t)g->oc * g->ic, o, i, dw);
	}
}

size_t rg_wino_grad_scratch_size(int n, int ic, int oc, int h, int w, int pad) {
	geom g = geom_of(n, ic, oc, h, w, pad);
	return ((size_t)36 * g.tpad * (ic + oc) + (size_t)36 * oc * ic) * sizeof(float) + 64;
}

void rg_wino_conv_grad(float *dw, const float *src, const float *dy, float *scratch,
		int n, int ic, int oc, int h, int w, int pad) {
	geom g = geom_of(n, ic, oc, h, w, pad);
	float *v = scratch, *yt = v + (size_t)36 * g.tpad * ic, *du = yt + (size_t)36 * g.tpad * oc;
	transform_all(&g, g.ic, input_tile, src, v);
	transform_all(&g, g.oc, grad_tile, dy, yt);
	grad_products(&g, yt, v, du);
	weight_grad_transform(&g, du, dw);
}
