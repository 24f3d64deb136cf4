// Products with weight-only int8 matrices in the shape of llama.cpp's Q8_0 (src/tensor/quant.ts): W (N, K) stored
// as int8 q and one float32 scale per `group` consecutive values of a row, W[n, k] = q[n, k] * scales[n, k / group].
#ifndef AJAR_Q8_H
#define AJAR_Q8_H

#include <stdint.h>

/**
 * out (M, N) = x (M, K) W^T + bias (bias may be NULL), split across the pool. K must be a multiple of `group`,
 * and group a multiple of 16. Few rows of x stream W once through the fused int8 dot product (decoding); many
 * rows dequantise blocks of W and run gemm.c's packed product on them. Returns 0 when memory ran out.
 */
int q8_matmul(const float *x, const int8_t *q, const float *scales, const float *bias, int M, int K, int N, int group,
              float *out);

#endif
