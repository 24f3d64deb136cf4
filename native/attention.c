// Causal self-attention in the shape of the js reference (src/backends/wasm/fused-reference.ts), one (batch,
// head) pair per pool unit: the products are gemm_serial calls on the head's strided slices (the whole square
// of scores, the masked half included, which the packed kernel computes faster than it could skip), the causal
// softmax and its gradient run row by row, e^x from elementwise.c's vector kernels. Units write disjoint
// columns of y and dqkv and their own blocks of p, so they need no locks.
#include "attention.h"

#include <stdint.h>
#include <stdlib.h>

#include "elementwise.h"
#include "gemm.h"
#include "pool.h"

typedef struct {
  const float *qkv, *dy, *p;
  float *y, *pw, *dqkv;
  int B, T, C, H;
  float scale;
  float *scratch;  // per thread: T * T (the gradient of the scores)
} attn_job;

/** One product on the calling thread: C (M, N) = op(A) op(B) with leading dimensions in elements. */
static void product(const float *a, int64_t lda, int transA, const float *b, int64_t ldb, int transB, float *c,
                    int64_t ldc, int M, int N, int K, int thread) {
  gemm_args g = { .a = a, .b = b, .c = c, .batch = 1, .M = M, .K = K, .N = N, .transA = transA, .transB = transB,
                  .lda = lda, .ldb = ldb, .ldc = ldc };
  gemm_serial(&g, thread);
}

static void forward_unit(void *ctx, int unit, int thread) {
  const attn_job *j = ctx;
  const int T = j->T, C = j->C, H = j->H, D = C / H;
  const int b = unit / H, h = unit % H;
  const int64_t row = 3 * (int64_t)C;
  const float *q = j->qkv + (int64_t)b * T * row + h * D;
  float *ph = j->pw + ((int64_t)b * H + h) * T * T;  // (T, T)
  // S = Q K^T into p
  product(q, row, 0, q + C, row, 1, ph, T, T, T, D, thread);
  for (int i = 0; i < T; i++) {
    float *pr = ph + (int64_t)i * T;
    const int n = i + 1;
    float m = -__builtin_inff();
    for (int t = 0; t < n; t++) {
      pr[t] *= j->scale;
      if (pr[t] > m || pr[t] != pr[t]) m = pr[t];
    }
    for (int t = 0; t < n; t++) pr[t] -= m;
    exp_array(pr, pr, n);
    float sum = 0;
    for (int t = 0; t < n; t++) sum += pr[t];
    for (int t = 0; t < n; t++) pr[t] /= sum;
    for (int t = n; t < T; t++) pr[t] = 0;
  }
  // y = P V, into the head's columns of (B, T, C)
  product(ph, T, 0, q + 2 * C, row, 0, j->y + (int64_t)b * T * C + h * D, C, T, D, T, thread);
}

static void backward_unit(void *ctx, int unit, int thread) {
  const attn_job *j = ctx;
  const int T = j->T, C = j->C, H = j->H, D = C / H;
  const int b = unit / H, h = unit % H;
  const int64_t row = 3 * (int64_t)C;
  const int64_t base = (int64_t)b * T * row + h * D;
  const float *q = j->qkv + base, *k = q + C, *v = q + 2 * C;
  float *dq = j->dqkv + base;
  const float *dyh = j->dy + (int64_t)b * T * C + h * D;
  const float *ph = j->p + ((int64_t)b * H + h) * T * T;
  float *ds = j->scratch + (int64_t)thread * T * T;
  // dP = dY V^T
  product(dyh, C, 0, v, row, 1, ds, T, T, T, D, thread);
  // dS = P (dP - sum(dP P)) scale over the keys row i sees, zero past them
  for (int i = 0; i < T; i++) {
    const float *pr = ph + (int64_t)i * T;
    float *dr = ds + (int64_t)i * T;
    const int n = i + 1;
    float dot = 0;
    for (int t = 0; t < n; t++) dot += dr[t] * pr[t];
    for (int t = 0; t < n; t++) dr[t] = pr[t] * (dr[t] - dot) * j->scale;
    for (int t = n; t < T; t++) dr[t] = 0;
  }
  product(ds, T, 0, k, row, 0, dq, row, T, D, T, thread);            // dQ = dS K
  product(ds, T, 1, q, row, 0, dq + C, row, T, D, T, thread);        // dK = dS^T Q
  product(ph, T, 1, dyh, C, 0, dq + 2 * C, row, T, D, T, thread);    // dV = P^T dY
}

int attention_forward(const float *qkv, int B, int T, int C, int H, float scale, float *y, float *p) {
  if (!gemm_scratch()) return 0;
  attn_job j = { .qkv = qkv, .y = y, .pw = p, .B = B, .T = T, .C = C, .H = H, .scale = scale };
  pool_run(forward_unit, &j, B * H);
  return 1;
}

int attention_backward(const float *dy, const float *qkv, const float *p, int B, int T, int C, int H, float scale,
                       float *dqkv) {
  if (!gemm_scratch()) return 0;
  attn_job j = { .qkv = qkv, .dy = dy, .p = p, .dqkv = dqkv, .B = B, .T = T, .C = C, .H = H, .scale = scale };
  j.scratch = malloc((size_t)T * T * pool_threads() * sizeof(float));
  if (!j.scratch) return 0;
  pool_run(backward_unit, &j, B * H);
  free(j.scratch);
  return 1;
}
