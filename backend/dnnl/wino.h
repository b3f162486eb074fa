// wino.h declares the Winograd F(4x4, 3x3) convolution of wino.c: 3x3,
// stride 1, activations in nChw8c, for AVX2 machines.

#ifndef RESGO_DNNL_WINO_H
#define RESGO_DNNL_WINO_H

#include <stddef.h>

// rg_wino_weights_size is the number of floats of transformed weights.
size_t rg_wino_weights_size(int oc, int ic);

// rg_wino_weights transforms the weights of a convolution with oc output
// and ic input channels (multiples of 16 and 8) into u: w is [oc][ic][3][3],
// or with flip set [ic][oc][3][3] turned by 180 degrees (the convolution
// that computes a backward pass to the data).
void rg_wino_weights(float *u, const float *w, int oc, int ic, int flip);

// rg_wino_scratch_size is the bytes of scratch rg_wino_conv needs.
size_t rg_wino_scratch_size(int n, int ic, int oc, int h, int w, int pad);

// rg_wino_conv computes dst = relu?(conv(src, w) + bias + (sum ? dst : 0))
// for src [n][ic/8][h][w][8] and dst [n][oc/8][oh][ow][8], with the same
// zero padding pad on every side; bias may be NULL.
void rg_wino_conv(float *dst, const float *src, const float *u, const float *bias, float *scratch,
		int n, int ic, int oc, int h, int w, int pad, int sum, int relu);

// rg_wino_grad_scratch_size is the bytes of scratch rg_wino_conv_grad
// needs.
size_t rg_wino_grad_scratch_size(int n, int ic, int oc, int h, int w, int pad);

// rg_wino_conv_grad computes the gradient dw [oc][ic][3][3] of the
// convolution rg_wino_conv computes, from its input src and the gradient
// dy of its output (both as there), by the transposed Winograd algorithm:
// dw = G^T [sum over tiles of (A dy A^T) . (B^T src B)] G. The channels
// are multiples of 16 (input) and 8 (output).
void rg_wino_conv_grad(float *dw, const float *src, const float *dy, float *scratch,
		int n, int ic, int oc, int h, int w, int pad);

// rg_wino_cpu_ok reports whether the CPU has AVX2 and FMA.
int rg_wino_cpu_ok(void);

#endif
