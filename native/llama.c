// The kernels of llama.h. Loops are plain C that the compiler vectorises; on x86-64 Linux each hot loop is built
// for AVX-512, AVX2 and the baseline by target_clones and the loader picks one for the CPU (as in train.c and
// attention.c), so build flags stay portable; -std=c11 keeps floating-point contraction off, so every clone gives
// the same bits. e^x comes from elementwise.c's vector kernels (exp_array), which follow the ISA init() chose.
// Work splits into ranges of rows or elements on the pool (pool.h); grouped attention into (batch, key/value head)
// units, so a unit owns its key/value head's gradient rows and needs no locks.
#include "llama.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "elementwise.h"
#include "pool.h"

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif

/** Elements per unit of element-wise work (about 64 KiB of each operand). */
#define GRAIN (1 << 14)

/** Units for n items of which `grain` make one, at least 1 and at most `most`. */
static int units_for(int64_t n, int64_t grain, int64_t most) {
  int64_t u = (n + grain - 1) / grain;
  if (u > most) u = most;
  if (u > (1 << 20)) u = 1 << 20;
  return u < 1 ? 1 : (int)u;
}

/** [*lo, *hi): unit u's share of n items split into `units` near-equal ranges. */
static void share(int64_t n, int units, int u, int64_t *lo, int64_t *hi) {
  *lo = n * u / units;
  *hi = n * (u + 1) / units;
}

typedef struct {
  const float *x, *g, *w, *rstdIn, *cos, *sin, *up, *sig;
  float *out, *rstdOut, *gxhat, *sigOut, *dup;
  int64_t rows, n, T, H, hs;
  float eps;
  int inverse, units;
} row_job;

// ---- RMS norm ----

/** Sum of x^2 in double, each square rounded to float (the reference's float32 products). */
CLONES static double squares_run(const float *x, int64_t n) {
  double s[8] = {0};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    for (int l = 0; l < 8; l++) s[l] += (double)(x[k + l] * x[k + l]);
  }
  double t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; k < n; k++) t += (double)(x[k] * x[k]);
  return t;
}

CLONES static void scale_run(const float *x, float rs, const float *w, float *o, int64_t n) {
  if (w) {
    for (int64_t i = 0; i < n; i++) o[i] = x[i] * rs * w[i];
  } else {
    for (int64_t i = 0; i < n; i++) o[i] = x[i] * rs;
  }
}

static void rms_unit(void *ctx, int unit, int thread) {
  (void)thread;
  const row_job *j = ctx;
  int64_t lo, hi;
  share(j->rows, j->units, unit, &lo, &hi);
  const int64_t n = j->n;
  for (int64_t r = lo; r < hi; r++) {
    const float *x = j->x + r * n;
    const float ms = (float)squares_run(x, n) / (float)n;
    const float rs = (float)(1.0 / sqrt((double)(ms + j->eps)));
    if (j->rstdOut) j->rstdOut[r] = rs;
    scale_run(x, rs, j->w, j->out + r * n, n);
  }
}

void rms_norm(const float *x, int64_t rows, int64_t n, const float *w, float eps, float *out, float *rstd) {
  if (rows <= 0 || n <= 0) return;
  row_job j = { .x = x, .w = w, .out = out, .rstdOut = rstd, .rows = rows, .n = n, .eps = eps,
                .units = units_for(rows * n, GRAIN, rows) };
  pool_run(rms_unit, &j, j.units);
}

/** One row of rms_norm_backward: dx = rs (dh - xhat * mean(dh xhat)) with dh = g (* w); gxhat = g * xhat. */
CLONES static void rms_back_row(const float *x, const float *g, const float *w, float rs, int64_t n, float *dx,
                                float *gxhat) {
  double s[8] = {0};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    for (int l = 0; l < 8; l++) {
      const float xh = x[k + l] * rs;
      const float dh = w ? g[k + l] * w[k + l] : g[k + l];
      s[l] += (double)(dh * xh);
    }
  }
  double t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; k < n; k++) {
    const float xh = x[k] * rs;
    const float dh = w ? g[k] * w[k] : g[k];
    t += (double)(dh * xh);
  }
  const float mb = (float)t / (float)n;
  if (w) {
    for (int64_t i = 0; i < n; i++) dx[i] = rs * (g[i] * w[i] - (x[i] * rs) * mb);
  } else {
    for (int64_t i = 0; i < n; i++) dx[i] = rs * (g[i] - (x[i] * rs) * mb);
  }
  if (gxhat) {
    for (int64_t i = 0; i < n; i++) gxhat[i] = g[i] * (x[i] * rs);
  }
}

static void rms_back_unit(void *ctx, int unit, int thread) {
  (void)thread;
  const row_job *j = ctx;
  int64_t lo, hi;
  share(j->rows, j->units, unit, &lo, &hi);
  const int64_t n = j->n;
  for (int64_t r = lo; r < hi; r++) {
    rms_back_row(j->x + r * n, j->g + r * n, j->w, j->rstdIn[r], n, j->out + r * n, j->gxhat ? j->gxhat + r * n : NULL);
  }
}

void rms_norm_backward(const float *x, const float *g, const float *w, const float *rstd, int64_t rows, int64_t n,
                       float *dx, float *gxhat) {
  if (rows <= 0 || n <= 0) return;
  row_job j = { .x = x, .g = g, .w = w, .rstdIn = rstd, .out = dx, .gxhat = gxhat, .rows = rows, .n = n,
                .units = units_for(rows * n, GRAIN / 2, rows) };
  pool_run(rms_back_unit, &j, j.units);
}

// ---- RoPE ----

/** One head's halves: (x1 c - x2 s, x2 c + x1 s), or with inverse (x1 c + x2 s, x2 c - x1 s). */
CLONES static void rope_head(const float *x, const float *c, const float *s, float *o, int64_t h2, int inverse) {
  const float *x1 = x, *x2 = x + h2;
  float *o1 = o, *o2 = o + h2;
  if (inverse) {
    for (int64_t d = 0; d < h2; d++) {
      const float a = x1[d], b = x2[d];
      o1[d] = a * c[d] + b * s[d];
      o2[d] = b * c[d] - a * s[d];
    }
  } else {
    for (int64_t d = 0; d < h2; d++) {
      const float a = x1[d], b = x2[d];
      o1[d] = a * c[d] - b * s[d];
      o2[d] = b * c[d] + a * s[d];
    }
  }
}

static void rope_unit(void *ctx, int unit, int thread) {
  (void)thread;
  const row_job *j = ctx;
  int64_t lo, hi;
  share(j->rows, j->units, unit, &lo, &hi);
  const int64_t H = j->H, hs = j->hs, h2 = hs / 2, C = H * hs;
  for (int64_t r = lo; r < hi; r++) {
    const int64_t t = r % j->T;
    for (int64_t h = 0; h < H; h++) {
      rope_head(j->x + r * C + h * hs, j->cos + t * h2, j->sin + t * h2, j->out + r * C + h * hs, h2, j->inverse);
    }
  }
}

void rope(const float *x, int64_t B, int64_t T, int64_t H, int64_t hs, const float *cos, const float *sin, float *out,
          int inverse) {
  const int64_t rows = B * T;
  if (rows <= 0 || H * hs <= 0) return;
  row_job j = { .x = x, .cos = cos, .sin = sin, .out = out, .rows = rows, .T = T, .H = H, .hs = hs, .inverse = inverse,
                .units = units_for(rows * H * hs, GRAIN, rows) };
  pool_run(rope_unit, &j, j.units);
}

// ---- SwiGLU's silu(gate) * up ----

/** Elements per e^x call (on the stack). */
#define SILU_CHUNK 512

/** out = (gate * s) * up with s = 1 / (1 + e^-gate) in float32; sig (or NULL) receives s. */
CLONES static void silu_chunk(const float *gate, const float *up, float *out, float *sig, float *e, int n) {
  for (int i = 0; i < n; i++) e[i] = -gate[i];
  exp_array(e, e, n);
  for (int i = 0; i < n; i++) {
    const float s = 1.0f / (1.0f + e[i]);
    out[i] = (gate[i] * s) * up[i];
    e[i] = s;
  }
  if (sig) memcpy(sig, e, (size_t)n * sizeof(float));
}

static void silu_unit(void *ctx, int unit, int thread) {
  (void)thread;
  const row_job *j = ctx;
  int64_t lo, hi;
  share(j->n, j->units, unit, &lo, &hi);
  float e[SILU_CHUNK];
  for (int64_t i = lo; i < hi; i += SILU_CHUNK) {
    const int n = hi - i < SILU_CHUNK ? (int)(hi - i) : SILU_CHUNK;
    silu_chunk(j->x + i, j->up + i, j->out + i, j->sigOut ? j->sigOut + i : NULL, e, n);
  }
}

void silu_mul(const float *gate, const float *up, float *out, float *sig, int64_t n) {
  if (n <= 0) return;
  row_job j = { .x = gate, .up = up, .out = out, .sigOut = sig, .n = n, .units = units_for(n, GRAIN / 4, n) };
  pool_run(silu_unit, &j, j.units);
}

/** dup = g * (x * s); dgate = (g * u) * (s + x * (s * (1 - s))), the reference's float32 steps. */
CLONES static void silu_back_run(const float *g, const float *x, const float *u, const float *s, float *dgate,
                                 float *dup, int64_t n) {
  if (dup) {
    for (int64_t i = 0; i < n; i++) dup[i] = g[i] * (x[i] * s[i]);
  }
  if (dgate) {
    for (int64_t i = 0; i < n; i++) dgate[i] = (g[i] * u[i]) * (s[i] + x[i] * (s[i] * (1.0f - s[i])));
  }
}

static void silu_back_unit(void *ctx, int unit, int thread) {
  (void)thread;
  const row_job *j = ctx;
  int64_t lo, hi;
  share(j->n, j->units, unit, &lo, &hi);
  silu_back_run(j->g + lo, j->x + lo, j->up + lo, j->sig + lo, j->out ? j->out + lo : NULL, j->dup ? j->dup + lo : NULL,
                hi - lo);
}

void silu_mul_backward(const float *g, const float *gate, const float *up, const float *sig, float *dgate, float *dup,
                       int64_t n) {
  if (n <= 0 || (!dgate && !dup)) return;
  row_job j = { .g = g, .x = gate, .up = up, .sig = sig, .out = dgate, .dup = dup, .n = n,
                .units = units_for(n, GRAIN, n) };
  pool_run(silu_back_unit, &j, j.units);
}

// ---- grouped-query causal attention ----
//
// Each unit takes one (batch, key/value head) (or, for long query runs, a slice of its group of query heads) and
// walks its query rows (head, position) in blocks of RB rows that share one span of keys [klo, khi): from the
// first row's window start to the last row's position. Scores are built against the head's keys transposed to
// (hs, ld) (ld >= Tk + KB, zero padded), so the inner loops run KB keys wide over contiguous memory; weighted sums
// run along the head's hs columns. Keys a row does not see get probability 0 (p is zero there), so a block's sums
// may cover the block's whole span. At Tq = 1 (decoding from a KV cache) a block holds the group's query heads.

/** Rows of a block: four at a time, so the inner loops keep four independent sums per vector. */
#define RB 4
/** Keys (or head columns) per inner block: one AVX-512 vector. */
#define KB 16

typedef struct {
  const float *q, *k, *v, *dy, *p;
  float *y, *pw, *dq, *dk, *dv;
  int B, Tq, Tk, Hq, Hkv, hs, window, split;
  float scale;
  int64_t ld;       // the transposed head's row stride (padded)
  float *scratch;   // per thread: `per` floats
  int64_t per;
} gqa_job;

/** t (hs, ld) = the Tk rows of x (rows `row` apart) transposed, columns Tk .. ld zero. */
static void transpose_head(const float *x, int64_t row, int Tk, int hs, int64_t ld, float *t) {
  for (int d = 0; d < hs; d++) memset(t + (int64_t)d * ld + Tk, 0, (size_t)(ld - Tk) * sizeof(float));
  for (int j = 0; j < Tk; j++) {
    const float *r = x + (int64_t)j * row;
    for (int d = 0; d < hs; d++) t[(int64_t)d * ld + j] = r[d];
  }
}

/**
 * s[r][j] = scale * (a_r . bt[:, j]) for rows r < R and keys j < nk; bt (D, ld) with at least KB columns past nk
 * readable. Rows past R repeat row 0 and are not stored.
 */
CLONES static void scores_rows(const float *const *a, int R, const float *bt, int64_t ld, int D, int nk, float scale,
                               float *const *s) {
  const float *a0 = a[0], *a1 = R > 1 ? a[1] : a0, *a2 = R > 2 ? a[2] : a0, *a3 = R > 3 ? a[3] : a0;
  for (int j0 = 0; j0 < nk; j0 += KB) {
    float acc[RB][KB] = {{0}};
    for (int d = 0; d < D; d++) {
      const float *b = bt + (int64_t)d * ld + j0;
      const float x0 = a0[d], x1 = a1[d], x2 = a2[d], x3 = a3[d];
      for (int l = 0; l < KB; l++) {
        acc[0][l] += x0 * b[l];
        acc[1][l] += x1 * b[l];
        acc[2][l] += x2 * b[l];
        acc[3][l] += x3 * b[l];
      }
    }
    const int n = nk - j0 < KB ? nk - j0 : KB;
    for (int r = 0; r < R; r++) {
      for (int l = 0; l < n; l++) s[r][j0 + l] = acc[r][l] * scale;
    }
  }
}

/**
 * out_r[d] = sum over j < nk of w_r[j] x[j][d] (x rows `ldx` apart, D wide) for rows r < R; rows past R repeat
 * row 0 and are not stored.
 */
CLONES static void weighted_rows(const float *const *w, int R, int nk, const float *x, int64_t ldx, int D,
                                 float *const *out) {
  const float *w0 = w[0], *w1 = R > 1 ? w[1] : w0, *w2 = R > 2 ? w[2] : w0, *w3 = R > 3 ? w[3] : w0;
  int d0 = 0;
  for (; d0 + KB <= D; d0 += KB) {
    float acc[RB][KB] = {{0}};
    for (int j = 0; j < nk; j++) {
      const float *xr = x + (int64_t)j * ldx + d0;
      const float c0 = w0[j], c1 = w1[j], c2 = w2[j], c3 = w3[j];
      for (int l = 0; l < KB; l++) {
        acc[0][l] += c0 * xr[l];
        acc[1][l] += c1 * xr[l];
        acc[2][l] += c2 * xr[l];
        acc[3][l] += c3 * xr[l];
      }
    }
    for (int r = 0; r < R; r++) memcpy(out[r] + d0, acc[r], KB * sizeof(float));
  }
  if (d0 < D) {
    const int n = D - d0;
    float acc[RB][KB] = {{0}};
    for (int j = 0; j < nk; j++) {
      const float *xr = x + (int64_t)j * ldx + d0;
      const float c0 = w0[j], c1 = w1[j], c2 = w2[j], c3 = w3[j];
      for (int l = 0; l < n; l++) {
        acc[0][l] += c0 * xr[l];
        acc[1][l] += c1 * xr[l];
        acc[2][l] += c2 * xr[l];
        acc[3][l] += c3 * xr[l];
      }
    }
    for (int r = 0; r < R; r++) memcpy(out[r] + d0, acc[r], (size_t)n * sizeof(float));
  }
}

/** acc[j][d] += sum over rows r < R of w_r[j] x_r[d], for j < nk (acc rows D apart). */
CLONES static void scatter_rows(const float *const *w, int R, int nk, const float *const *x, int D, float *acc) {
  if (R == RB) {
    const float *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
    const float *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
    for (int j = 0; j < nk; j++) {
      float *a = acc + (int64_t)j * D;
      const float c0 = w0[j], c1 = w1[j], c2 = w2[j], c3 = w3[j];
      for (int d = 0; d < D; d++) a[d] += (c0 * x0[d] + c1 * x1[d]) + (c2 * x2[d] + c3 * x3[d]);
    }
    return;
  }
  for (int r = 0; r < R; r++) {
    const float *wr = w[r], *xr = x[r];
    for (int j = 0; j < nk; j++) {
      float *a = acc + (int64_t)j * D;
      const float c = wr[j];
      for (int d = 0; d < D; d++) a[d] += c * xr[d];
    }
  }
}

/** The causal softmax of one row of scores in place over [lo, hi), zero elsewhere in [0, Tk). */
CLONES static void softmax_span(float *pr, int lo, int hi, int Tk) {
  float *s = pr + lo;
  const int n = hi - lo;
  float m = -__builtin_inff();
  for (int t = 0; t < n; t++) m = s[t] > m || s[t] != s[t] ? s[t] : m;
  for (int t = 0; t < n; t++) s[t] -= m;
  exp_array(s, s, n);
  float sum = 0;
  for (int t = 0; t < n; t++) sum += s[t];
  for (int t = 0; t < n; t++) s[t] /= sum;
  memset(pr, 0, (size_t)lo * sizeof(float));
  memset(pr + hi, 0, (size_t)(Tk - hi) * sizeof(float));
}

/** ds[j] = p[j] (ds[j] - sum(ds p)) scale for j < n (the softmax's gradient, scaled); 0 wherever p is. */
CLONES static void softmax_grad_span(const float *pr, float *ds, int n, float scale) {
  float dot = 0;
  for (int t = 0; t < n; t++) dot += ds[t] * pr[t];
  for (int t = 0; t < n; t++) ds[t] = pr[t] * (ds[t] - dot) * scale;
}

/** The keys query position i (of Tq, the last Tq of Tk) sees: [*lo, *hi). */
static void key_span(const gqa_job *j, int i, int *lo, int *hi) {
  *hi = j->Tk - j->Tq + i + 1;
  *lo = j->window > 0 && *hi - j->window > 0 ? *hi - j->window : 0;
}

/**
 * A unit's rows: heads h0 .. h0 + nh - 1 of batch b, each at every query position, numbered head-major
 * (item = head * Tq + i); rows of one block are consecutive items.
 */
typedef struct {
  int b, kvh, h0, nh;
} gqa_unit;

static gqa_unit unit_of(const gqa_job *j, int unit) {
  const int group = j->Hq / j->Hkv, per = group / j->split;
  const int piece = unit % j->split, bk = unit / j->split;
  gqa_unit u = { bk / j->Hkv, bk % j->Hkv, 0, per };
  u.h0 = u.kvh * group + piece * per;
  return u;
}

/** Pointers of query row `item` of unit u: q (also y, dq, dy) offset and p's row. */
static int64_t q_at(const gqa_job *j, const gqa_unit *u, int item) {
  const int h = u->h0 + item / j->Tq, i = item % j->Tq;
  return ((int64_t)u->b * j->Tq + i) * j->Hq * j->hs + (int64_t)h * j->hs;
}

static int64_t p_at(const gqa_job *j, const gqa_unit *u, int item) {
  const int h = u->h0 + item / j->Tq, i = item % j->Tq;
  return (((int64_t)u->b * j->Hq + h) * j->Tq + i) * j->Tk;
}

/** The block of items [i0, i0 + R): its key span [klo, khi) (the union of its rows' spans). */
static void block_span(const gqa_job *j, int i0, int R, int *klo, int *khi) {
  *klo = j->Tk;
  *khi = 0;
  for (int r = 0; r < R; r++) {
    int lo, hi;
    key_span(j, (i0 + r) % j->Tq, &lo, &hi);
    if (lo < *klo) *klo = lo;
    if (hi > *khi) *khi = hi;
  }
}

static void gqa_forward_unit(void *ctx, int unit, int thread) {
  const gqa_job *j = ctx;
  const gqa_unit u = unit_of(j, unit);
  const int hs = j->hs;
  const int64_t Ck = (int64_t)j->Hkv * hs;
  const float *kh = j->k + (int64_t)u.b * j->Tk * Ck + (int64_t)u.kvh * hs;
  const float *vh = j->v + (int64_t)u.b * j->Tk * Ck + (int64_t)u.kvh * hs;
  float *kt = j->scratch + (int64_t)thread * j->per;  // (hs, ld)
  transpose_head(kh, Ck, j->Tk, hs, j->ld, kt);
  const int items = u.nh * j->Tq;
  for (int i0 = 0; i0 < items; i0 += RB) {
    const int R = items - i0 < RB ? items - i0 : RB;
    int klo, khi;
    block_span(j, i0, R, &klo, &khi);
    const float *a[RB];
    float *s[RB], *yo[RB];
    for (int r = 0; r < R; r++) {
      a[r] = j->q + q_at(j, &u, i0 + r);
      yo[r] = j->y + q_at(j, &u, i0 + r);
      s[r] = j->pw + p_at(j, &u, i0 + r) + klo;
    }
    scores_rows(a, R, kt + klo, j->ld, hs, khi - klo, j->scale, s);
    for (int r = 0; r < R; r++) {
      int lo, hi;
      key_span(j, (i0 + r) % j->Tq, &lo, &hi);
      softmax_span(s[r] - klo, lo, hi, j->Tk);
    }
    weighted_rows((const float *const *)s, R, khi - klo, vh + klo * Ck, Ck, hs, yo);
  }
}

static void gqa_backward_unit(void *ctx, int unit, int thread) {
  const gqa_job *j = ctx;
  const gqa_unit u = unit_of(j, unit);
  const int hs = j->hs, Tk = j->Tk;
  const int64_t Ck = (int64_t)j->Hkv * hs;
  const int64_t kvAt = (int64_t)u.b * Tk * Ck + (int64_t)u.kvh * hs;
  const float *kh = j->k + kvAt, *vh = j->v + kvAt;
  float *vt = j->scratch + (int64_t)thread * j->per;  // (hs, ld)
  float *dk = vt + (int64_t)hs * j->ld;                // (Tk, hs)
  float *dv = dk + (int64_t)Tk * hs;                   // (Tk, hs)
  float *ds = dv + (int64_t)Tk * hs;                   // (RB, ld)
  transpose_head(vh, Ck, Tk, hs, j->ld, vt);
  memset(dk, 0, 2 * (size_t)Tk * hs * sizeof(float));
  const int items = u.nh * j->Tq;
  for (int i0 = 0; i0 < items; i0 += RB) {
    const int R = items - i0 < RB ? items - i0 : RB;
    int klo, khi;
    block_span(j, i0, R, &klo, &khi);
    const int nk = khi - klo;
    const float *dyr[RB], *qr[RB], *pr[RB];
    float *dsr[RB], *dqr[RB];
    for (int r = 0; r < R; r++) {
      dyr[r] = j->dy + q_at(j, &u, i0 + r);
      qr[r] = j->q + q_at(j, &u, i0 + r);
      dqr[r] = j->dq + q_at(j, &u, i0 + r);
      pr[r] = j->p + p_at(j, &u, i0 + r) + klo;
      dsr[r] = ds + (int64_t)r * j->ld;
    }
    scores_rows(dyr, R, vt + klo, j->ld, hs, nk, 1.0f, dsr);                 // dP = dY V^T
    for (int r = 0; r < R; r++) softmax_grad_span(pr[r], dsr[r], nk, j->scale);  // dS
    weighted_rows((const float *const *)dsr, R, nk, kh + klo * Ck, Ck, hs, dqr);  // dQ = dS K
    scatter_rows((const float *const *)dsr, R, nk, qr, hs, dk + (int64_t)klo * hs);  // dK += dS^T Q
    scatter_rows(pr, R, nk, dyr, hs, dv + (int64_t)klo * hs);                      // dV += P^T dY
  }
  for (int t = 0; t < Tk; t++) {
    memcpy(j->dk + kvAt + t * Ck, dk + (int64_t)t * hs, (size_t)hs * sizeof(float));
    memcpy(j->dv + kvAt + t * Ck, dv + (int64_t)t * hs, (size_t)hs * sizeof(float));
  }
}

/** Work (multiply-adds) below which a call runs on the calling thread alone: waking the pool costs more. */
#define GQA_SERIAL_WORK (1 << 17)

/** Run `task` over the job's units with `per` floats of scratch a thread; 0 when memory ran out. */
static int gqa_run(gqa_job *j, pool_task task, int64_t per) {
  const int units = j->B * j->Hkv * j->split;
  const int64_t work = (int64_t)j->B * j->Hq * j->Tq * j->Tk * j->hs;
  const int serial = work < GQA_SERIAL_WORK || pool_threads() == 1;
  j->per = per;
  j->scratch = malloc((size_t)per * (serial ? 1 : pool_threads()) * sizeof(float));
  if (!j->scratch) return 0;
  if (serial) {
    for (int u = 0; u < units; u++) task(j, u, 0);
  } else {
    pool_run(task, j, units);
  }
  free(j->scratch);
  return 1;
}

/** Padded row stride of a transposed head: Tk plus at least one vector of zeros, whole vectors. */
static int64_t padded(int Tk) { return ((int64_t)Tk + 2 * KB - 1) / KB * KB; }

int grouped_attention(const float *q, const float *k, const float *v, int B, int Tq, int Tk, int Hq, int Hkv, int hs,
                      float scale, int window, float *y, float *p) {
  // NOTE: with few query positions a unit takes the whole group, so one transposed key head serves all its
  // query heads (at Tq = 1 the group's heads then share blocks); with many, query heads get their own units.
  gqa_job j = { .q = q, .k = k, .v = v, .y = y, .pw = p, .B = B, .Tq = Tq, .Tk = Tk, .Hq = Hq, .Hkv = Hkv, .hs = hs,
                .window = window, .scale = scale, .split = Tq >= 16 ? Hq / Hkv : 1, .ld = padded(Tk) };
  return gqa_run(&j, gqa_forward_unit, (int64_t)hs * j.ld);
}

int grouped_attention_backward(const float *dy, const float *q, const float *k, const float *v, const float *p, int B,
                               int Tq, int Tk, int Hq, int Hkv, int hs, float scale, float *dq, float *dk, float *dv) {
  // NOTE: the window does not matter here: p is zero wherever the mask hid a key, and so is dS.
  gqa_job j = { .q = q, .k = k, .v = v, .dy = dy, .p = p, .dq = dq, .dk = dk, .dv = dv, .B = B, .Tq = Tq, .Tk = Tk,
                .Hq = Hq, .Hkv = Hkv, .hs = hs, .window = 0, .scale = scale, .split = 1, .ld = padded(Tk) };
  return gqa_run(&j, gqa_backward_unit, (int64_t)hs * j.ld + 2 * (int64_t)Tk * hs + RB * j.ld);
}
