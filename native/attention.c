// Causal self-attention in the shape of the js reference (src/backends/wasm/fused-reference.ts), one (batch,
// head) pair per pool unit, written as direct loops over the causal half only (row i sees keys 0..i): the
// training shapes are short (T <= 256, head size 32-64), where packing for the GEMM kernels cost more than the
// products. Scores of row i are built a key dimension at a time against the head's keys transposed to (D, T),
// so the inner loops run along contiguous keys; weighted sums run along the head's D columns. The causal softmax
// and its gradient run row by row, e^x from elementwise.c's vector kernels. Units write disjoint columns of y
// and dqkv and their own blocks of p, so they need no locks. Loops are built per instruction set by target_clones
// as in train.c.
#include "attention.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "elementwise.h"
#include "pool.h"

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif

typedef struct {
  const float *qkv, *dy, *p;
  float *y, *pw, *dqkv;
  int B, T, C, H;
  float scale;
  float *scratch;  // per thread: `per` floats
  int64_t per;
} attn_job;

/** t (D, T) = the T rows of x (T, D) at stride `row`: one head's keys or values, transposed. */
static void transpose_head(const float *x, int64_t row, int T, int D, float *t) {
  for (int j = 0; j < T; j++) {
    const float *r = x + (int64_t)j * row;
    for (int d = 0; d < D; d++) t[(int64_t)d * T + j] = r[d];
  }
}

/** Rows of a query block: four at a time, so the inner loops keep four independent sums per vector. */
#define RB 4
/** Keys (or head columns) per inner block: one AVX-512 vector. */
#define KB 16

/**
 * Scores of rows r < R (R <= RB) of a (rows `arow` apart, D wide) against keys j < nkeys of bt (D, T):
 * s[r * T + j] = scale * (a_r . bt[:, j]).
 */
CLONES static void scores_block(const float *a, int64_t arow, int R, const float *bt, int T, int D, int nkeys,
                                float scale, float *s) {
  int j0 = 0;
  if (R == RB) {
    for (; j0 + KB <= nkeys; j0 += KB) {
      float acc[RB][KB] = {{0}};
      for (int d = 0; d < D; d++) {
        const float *b = bt + (int64_t)d * T + j0;
        const float a0 = a[d], a1 = a[arow + d], a2 = a[2 * arow + d], a3 = a[3 * arow + d];
        for (int l = 0; l < KB; l++) {
          acc[0][l] += a0 * b[l];
          acc[1][l] += a1 * b[l];
          acc[2][l] += a2 * b[l];
          acc[3][l] += a3 * b[l];
        }
      }
      for (int r = 0; r < RB; r++) {
        for (int l = 0; l < KB; l++) s[(int64_t)r * T + j0 + l] = acc[r][l] * scale;
      }
    }
  }
  for (int r = 0; r < R; r++) {
    for (int j = j0; j < nkeys; j++) {
      float acc = 0;
      for (int d = 0; d < D; d++) acc += a[r * arow + d] * bt[(int64_t)d * T + j];
      s[(int64_t)r * T + j] = acc * scale;
    }
  }
}

/**
 * Weighted sums over rows of x (rows `xrow` apart, D wide) for rows r < R of w (T apart): out_r (rows `orow`
 * apart) = sum over j <= i0 + r of w[r][j] x_j (or += when acc). Keys j <= i0 are common to the block and
 * summed four rows at a time; the triangle past them row by row.
 */
CLONES static void weighted_block(const float *w, int T, int R, int i0, const float *x, int64_t xrow, int D, float *out,
                                  int64_t orow, int acc_in) {
  const int n = i0 + 1;
  int d0 = 0;
  if (R == RB) {
    for (; d0 + KB <= D; d0 += KB) {
      float acc[RB][KB] = {{0}};
      for (int j = 0; j < n; j++) {
        const float *xr = x + (int64_t)j * xrow + d0;
        const float w0 = w[j], w1 = w[T + j], w2 = w[2 * T + j], w3 = w[3 * T + j];
        for (int l = 0; l < KB; l++) {
          acc[0][l] += w0 * xr[l];
          acc[1][l] += w1 * xr[l];
          acc[2][l] += w2 * xr[l];
          acc[3][l] += w3 * xr[l];
        }
      }
      for (int r = 0; r < RB; r++) {
        float *o = out + r * orow + d0;
        for (int l = 0; l < KB; l++) o[l] = acc_in ? o[l] + acc[r][l] : acc[r][l];
      }
    }
  }
  for (int r = 0; r < R; r++) {
    float *o = out + r * orow;
    for (int d = d0; d < D; d++) {
      float acc = 0;
      for (int j = 0; j < n; j++) acc += w[(int64_t)r * T + j] * x[(int64_t)j * xrow + d];
      o[d] = acc_in ? o[d] + acc : acc;
    }
  }
  // The triangle: keys i0 + 1 .. i0 + r of row r.
  for (int r = 1; r < R; r++) {
    float *o = out + r * orow;
    for (int j = n; j <= i0 + r; j++) {
      const float wj = w[(int64_t)r * T + j];
      const float *xr = x + (int64_t)j * xrow;
      for (int d = 0; d < D; d++) o[d] += wj * xr[d];
    }
  }
}

/**
 * The transposed sums for the key gradients: acc (T, D) row j += sum over rows r < R with j <= i0 + r of
 * w[r][j] x_r (x rows `xrow` apart).
 */
CLONES static void scatter_block(const float *w, int T, int R, int i0, const float *x, int64_t xrow, int D, float *acc) {
  const int n = i0 + 1;
  if (R == RB) {
    const float *x0 = x, *x1 = x + xrow, *x2 = x + 2 * xrow, *x3 = x + 3 * xrow;
    for (int j = 0; j < n; j++) {
      float *a = acc + (int64_t)j * D;
      const float w0 = w[j], w1 = w[T + j], w2 = w[2 * T + j], w3 = w[3 * T + j];
      for (int d = 0; d < D; d++) a[d] += ((w0 * x0[d] + w1 * x1[d]) + (w2 * x2[d] + w3 * x3[d]));
    }
  } else {
    for (int r = 0; r < R; r++) {
      for (int j = 0; j < n; j++) {
        float *a = acc + (int64_t)j * D;
        const float wj = w[(int64_t)r * T + j];
        for (int d = 0; d < D; d++) a[d] += wj * x[r * xrow + d];
      }
    }
  }
  for (int r = 1; r < R; r++) {
    for (int j = n; j <= i0 + r; j++) {
      float *a = acc + (int64_t)j * D;
      const float wj = w[(int64_t)r * T + j];
      for (int d = 0; d < D; d++) a[d] += wj * x[r * xrow + d];
    }
  }
}

/** Keys a block of rows i0 .. i0 + R - 1 computes: past its last row's diagonal, rounded up to whole vectors. */
static int block_keys(int i0, int R, int T) {
  const int n = (i0 + R + KB - 1) / KB * KB;
  return n < T ? n : T;
}

/** The causal softmax of one row of scores in place: n live entries, zeros up to T. */
CLONES static void softmax_row(float *pr, int n, int T) {
  float m = -__builtin_inff();
  for (int t = 0; t < n; t++) m = pr[t] > m || pr[t] != pr[t] ? pr[t] : m;
  for (int t = 0; t < n; t++) pr[t] -= m;
  exp_array(pr, pr, n);
  float sum = 0;
  for (int t = 0; t < n; t++) sum += pr[t];
  for (int t = 0; t < n; t++) pr[t] /= sum;
  for (int t = n; t < T; t++) pr[t] = 0;
}

/** ds[j] = p[j] (dp[j] - sum(dp p)) scale for j < n (the softmax's gradient, scaled). */
CLONES static void softmax_grad_row(const float *pr, float *ds, int n, float scale) {
  float dot = 0;
  for (int t = 0; t < n; t++) dot += ds[t] * pr[t];
  for (int t = 0; t < n; t++) ds[t] = pr[t] * (ds[t] - dot) * scale;
}

static void forward_unit(void *ctx, int unit, int thread) {
  const attn_job *j = ctx;
  const int T = j->T, C = j->C, H = j->H, D = C / H;
  const int b = unit / H, h = unit % H;
  const int64_t row = 3 * (int64_t)C;
  const float *q = j->qkv + (int64_t)b * T * row + h * D;
  float *kt = j->scratch + (int64_t)thread * j->per;  // (D, T)
  float *ph = j->pw + ((int64_t)b * H + h) * T * T;  // (T, T)
  float *yh = j->y + (int64_t)b * T * C + h * D;
  transpose_head(q + C, row, T, D, kt);
  for (int i0 = 0; i0 < T; i0 += RB) {
    const int R = T - i0 < RB ? T - i0 : RB;
    float *pb = ph + (int64_t)i0 * T;
    scores_block(q + (int64_t)i0 * row, row, R, kt, T, D, block_keys(i0, R, T), j->scale, pb);
    for (int r = 0; r < R; r++) softmax_row(pb + (int64_t)r * T, i0 + r + 1, T);
    weighted_block(pb, T, R, i0, q + 2 * C, row, D, yh + (int64_t)i0 * C, C, 0);
  }
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
  float *vt = j->scratch + (int64_t)thread * j->per;  // (D, T)
  float *dk = vt + (int64_t)D * T;                     // (T, D)
  float *dv = dk + (int64_t)T * D;                     // (T, D)
  float *ds = dv + (int64_t)T * D;                     // (RB, T)
  transpose_head(v, row, T, D, vt);
  memset(dk, 0, 2 * (size_t)T * D * sizeof(float));
  for (int i0 = 0; i0 < T; i0 += RB) {
    const int R = T - i0 < RB ? T - i0 : RB;
    const float *pb = ph + (int64_t)i0 * T;
    const float *dyb = dyh + (int64_t)i0 * C;
    scores_block(dyb, C, R, vt, T, D, block_keys(i0, R, T), 1.0f, ds);  // dP = dY V^T
    for (int r = 0; r < R; r++) softmax_grad_row(pb + (int64_t)r * T, ds + (int64_t)r * T, i0 + r + 1, j->scale);
    weighted_block(ds, T, R, i0, k, row, D, dq + (int64_t)i0 * row, row, 0);  // dQ_i = dS_i K
    scatter_block(ds, T, R, i0, q + (int64_t)i0 * row, row, D, dk);            // dK_j += dS_ij Q_i
    scatter_block(pb, T, R, i0, dyb, C, D, dv);                                // dV_j += P_ij dY_i
  }
  for (int t = 0; t < T; t++) {
    memcpy(dq + (int64_t)t * row + C, dk + (int64_t)t * D, (size_t)D * sizeof(float));
    memcpy(dq + (int64_t)t * row + 2 * C, dv + (int64_t)t * D, (size_t)D * sizeof(float));
  }
}

// ---- grouped-query attention over a KV cache, for few query rows (decoding) ----

typedef struct {
  const float *q, *k, *v;
  float *y, *p;
  int B, Tq, Tk, Hq, Hkv, hs, window;
  float scale;
} grouped_job;

/** s[j] = scale * (q . k_j) for keys j in [lo, hi), k_j `krow` apart. */
CLONES static void grouped_scores(const float *q, const float *k, int64_t krow, int lo, int hi, int hs, float scale,
                                  float *s) {
  for (int j = lo; j < hi; j++) {
    const float *kj = k + (int64_t)j * krow;
    float acc[KB] = {0};
    int d = 0;
    for (; d + KB <= hs; d += KB) {
      for (int l = 0; l < KB; l++) acc[l] += q[d + l] * kj[d + l];
    }
    float dot = 0;
    for (int l = 0; l < KB; l++) dot += acc[l];
    for (; d < hs; d++) dot += q[d] * kj[d];
    s[j] = dot * scale;
  }
}

/** y (hs) = sum over j in [lo, hi) of w[j] v_j, v_j `vrow` apart. */
CLONES static void grouped_weighted(const float *w, const float *v, int64_t vrow, int lo, int hi, int hs, float *y) {
  for (int d = 0; d < hs; d++) y[d] = 0;
  for (int j = lo; j < hi; j++) {
    const float wj = w[j];
    const float *vj = v + (int64_t)j * vrow;
    for (int d = 0; d < hs; d++) y[d] += wj * vj[d];
  }
}

/** One (batch, query head): its Tq rows of scores, softmax and weighted sums. */
static void grouped_unit(void *ctx, int unit, int thread) {
  (void)thread;
  const grouped_job *j = ctx;
  const int b = unit / j->Hq, h = unit % j->Hq;
  const int hkv = h / (j->Hq / j->Hkv);
  const int64_t qrow = (int64_t)j->Hq * j->hs, krow = (int64_t)j->Hkv * j->hs;
  const float *k = j->k + (int64_t)b * j->Tk * krow + (int64_t)hkv * j->hs;
  const float *v = j->v + (int64_t)b * j->Tk * krow + (int64_t)hkv * j->hs;
  const int past = j->Tk - j->Tq;
  for (int i = 0; i < j->Tq; i++) {
    const float *q = j->q + ((int64_t)b * j->Tq + i) * qrow + (int64_t)h * j->hs;
    float *y = j->y + ((int64_t)b * j->Tq + i) * qrow + (int64_t)h * j->hs;
    float *pr = j->p + (((int64_t)b * j->Hq + h) * j->Tq + i) * j->Tk;
    const int hi = past + i + 1;
    const int lo = j->window > 0 && hi - j->window > 0 ? hi - j->window : 0;
    for (int t = 0; t < lo; t++) pr[t] = 0;
    grouped_scores(q, k, krow, lo, hi, j->hs, j->scale, pr);
    softmax_row(pr + lo, hi - lo, j->Tk - lo);
    grouped_weighted(pr, v, krow, lo, hi, j->hs, y);
  }
}

int grouped_attention_forward(const float *q, const float *k, const float *v, int B, int Tq, int Tk, int Hq, int Hkv,
                              int hs, float scale, int window, float *y, float *p) {
  grouped_job j = { .q = q, .k = k, .v = v, .y = y, .p = p, .B = B, .Tq = Tq, .Tk = Tk, .Hq = Hq, .Hkv = Hkv, .hs = hs,
                    .window = window, .scale = scale };
  const int units = B * Hq;
  // NOTE: a decoding step's attention (one query row) is a few hundred thousand flops: waking the pool for it
  // costs more than it saves, so small calls run on the calling thread.
  const double flops = 4.0 * units * Tq * (double)Tk * hs;
  if (flops < (1 << 21)) {
    for (int u = 0; u < units; u++) grouped_unit(&j, u, 0);
  } else {
    pool_run(grouped_unit, &j, units);
  }
  return 1;
}

/** Run `unit` over every (batch, head) with `per` floats of scratch a thread; 0 when memory ran out. */
static int run(attn_job *j, pool_task unit, int64_t per) {
  j->per = per;
  j->scratch = malloc((size_t)per * pool_threads() * sizeof(float));
  if (!j->scratch) return 0;
  pool_run(unit, j, j->B * j->H);
  free(j->scratch);
  return 1;
}

int attention_forward(const float *qkv, int B, int T, int C, int H, float scale, float *y, float *p) {
  attn_job j = { .qkv = qkv, .y = y, .pw = p, .B = B, .T = T, .C = C, .H = H, .scale = scale };
  return run(&j, forward_unit, (int64_t)(C / H) * T);
}

int attention_backward(const float *dy, const float *qkv, const float *p, int B, int T, int C, int H, float scale,
                       float *dqkv) {
  attn_job j = { .qkv = qkv, .dy = dy, .p = p, .dqkv = dqkv, .B = B, .T = T, .C = C, .H = H, .scale = scale };
  return run(&j, backward_unit, 3 * (int64_t)(C / H) * T + RB * (int64_t)T);
}
