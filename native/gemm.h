// Single-precision matrix products over row-major operands, split across the pool (pool.h).
#ifndef AJAR_GEMM_H
#define AJAR_GEMM_H

#include <stdint.h>

/** A batch of products C (M, N) = op(A) (M, K) op(B) (K, N); strides and leading dimensions in elements. */
typedef struct {
  const float *a;
  const float *b;
  float *c;
  int batch, M, K, N;
  int transA;       // A stored (K, M) per item
  int transB;       // B stored (N, K) per item
  int64_t lda, ldb, ldc;
  int64_t aBatch, bBatch, cBatch; // 0: shared across the batch
  int accumulate;   // C += op(A) op(B) instead of C =
} gemm_args;

/** The instruction set the kernels chose at load: "avx512", "avx2" or "generic". */
const char *gemm_isa(void);

/** Pick the kernels for this CPU (call once; `force` names an isa to use instead, or NULL). */
void gemm_init(const char *force);

/** C = op(A) op(B) for every item; K == 0 writes zeros. */
void gemm(const gemm_args *g);

/** Make sure every pool thread has packing buffers for gemm_serial; returns 0 when memory ran out. */
int gemm_scratch(void);

/** gemm on the calling thread alone, inside a pool unit run by `thread` (after gemm_scratch() succeeded). */
void gemm_serial(const gemm_args *g, int thread);

#endif
