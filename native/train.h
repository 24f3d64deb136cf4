// The training step's memory-bound kernels, split across the pool (pool.h): broadcast binary ops, axis
// reductions, row softmax / log-softmax, layer norm and its gradient, GELU's gradient times the upstream one,
// AdamW and the sum of squares. Each follows its JS reference (src/backends/js, src/backends/wasm/fused-reference.ts,
// src/tensor/optim-math.ts) float32 step by float32 step; sums are accumulated in double as there.
#ifndef AJAR_TRAIN_H
#define AJAR_TRAIN_H

#include <stdint.h>

/** Binary op codes, in tensor/backend.ts's BINARY_OPS order. */
enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_POW, BIN_MAXIMUM, BIN_GT, BIN_LT, BIN_EQ, BIN_COUNT };

/** Most dimensions of a binary op's (merged) iteration space. */
#define BIN_MAX_RANK 8

/**
 * out (shape, row-major) = a op b, where element i of out reads a and b at their strides (0 where broadcast).
 * out must not overlap a or b unless it is the same array read at the same offsets.
 */
void binary_op(int op, const float *a, const int64_t *aStrides, const float *b, const int64_t *bStrides, float *out,
               const int64_t *shape, int rank);

/** out (outer, inner) = sum (op 0) or max (op 1) over n of x (outer, n, inner); max propagates NaN. */
void reduce_op(int op, const float *x, int64_t outer, int64_t n, int64_t inner, float *out);

/** softmax (or log-softmax) over rows of n. Returns 0 when scratch memory ran out (nothing written then). */
int softmax_rows(const float *x, int64_t rows, int64_t n, float *out, int log);

/** Layer norm over rows of n with optional weight and bias; mean and rstd (rows) may be NULL. */
void layer_norm(const float *x, int64_t rows, int64_t n, const float *w, const float *b, float eps, float *out,
                float *mean, float *rstd);

/** layer_norm's gradient dx from x, g, w (or NULL), mean and rstd; gxhat (or NULL) receives g * xhat. */
void layer_norm_backward(const float *x, const float *g, const float *w, const float *mean, const float *rstd,
                         int64_t rows, int64_t n, float *dx, float *gxhat);

/** dx[i] = g[i] * gelu_tanh'(x[i]). */
void gelu_tanh_backward(const float *x, const float *g, float *dx, int64_t n);

/** The scalars of one AdamW step (tensor/backend.ts AdamWScalars). */
typedef struct {
  float decay;  // already rounded to float32
  double beta1, beta2, eps, bc2Sqrt, stepSize;
} adamw_scalars;

/** One AdamW update of w, m, v in place from g (n elements each). */
void adamw(float *w, const float *g, float *m, float *v, int64_t n, const adamw_scalars *h);

/** Sum of squares of x, in double. */
double sum_squares(const float *x, int64_t n);

#endif
