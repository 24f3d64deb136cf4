// The kernels of train.h. The loops are plain C that the compiler vectorises; on x86-64 Linux each hot loop is
// built three times (AVX-512, AVX2 and the baseline) by target_clones and the loader picks one for the CPU, so
// the build flags stay portable. -std=c11 keeps floating-point contraction off, so every clone gives the same
// bits. Work is split into ranges of elements or rows on the pool.
#include "train.h"

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

/**
 * The row helpers (and the vector ones below) are inlined into the CLONES function that loops over a unit's
 * rows, so they take its instruction set and a row of 128 pays no call through the clone resolver.
 */
#define ROW_HELPER static inline __attribute__((always_inline))

/** Elements per unit of element-wise work (about 64 KiB of each operand). */
#define GRAIN (1 << 14)

/** Units for n items of which `grain` make one; at least 1. */
static int units_for(int64_t n, int64_t grain) {
  const int64_t u = (n + grain - 1) / grain;
  return u < 1 ? 1 : u > (1 << 20) ? (1 << 20) : (int)u;
}

/** Units for `rows` rows of n items each, `grain` items a unit, and at most one unit a row. */
static int row_units(int64_t rows, int64_t n, int64_t grain) {
  const int u = units_for(rows * n, grain);
  return u > rows ? (int)rows : u;
}

/** [lo, hi): a range of a job's items. */
typedef struct {
  int64_t lo, hi;
} span;

/** Unit u's share of n items split into `units` near-equal ranges. */
static inline span share(int64_t n, int units, int u) {
  return (span){ n * u / units, n * (u + 1) / units };
}

/**
 * Defines the pool unit NAME (a pool_task) over a TYPE job: it runs BODY(j, lo, hi, thread) on the unit's share
 * [lo, hi) of the job's COUNT items, split into the job's `units` shares.
 */
#define SHARE_UNIT(NAME, TYPE, COUNT, BODY)          \
  static void NAME(void *ctx, int unit, int thread) { \
    const TYPE *j = ctx;                              \
    const span s = share(j->COUNT, j->units, unit);   \
    BODY(j, s.lo, s.hi, thread);                      \
  }

// Sums of floats are accumulated in double in four vectors of eight partial sums: four short dependency chains
// instead of one long one, which is what bounds a sum over a row of 128 (GCC's vector extensions: one AVX-512
// register each, two AVX2 or four SSE2 ones in the other clones).
// NOTE: the helpers that pass these vectors are static and inlined, so GCC's note that their ABI differs between
// instruction sets (-Wpsabi) does not apply.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef float fvec __attribute__((vector_size(32)));
typedef double dvec __attribute__((vector_size(64)));

/** Floats a step of the accumulating loops takes: four vectors of eight (dvec s[4]). */
#define ACC 32

/** x[0..8) widened to double. */
ROW_HELPER dvec widen(const float *x) {
  fvec f;
  memcpy(&f, x, sizeof f);
  return __builtin_convertvector(f, dvec);
}

/** The total of vectors of partial sums s[0..4), added pairwise. */
ROW_HELPER double fold(const dvec *s) {
  const dvec t = (s[0] + s[1]) + (s[2] + s[3]);
  return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}

// ---- binary ops ----

static inline float maxf(float x, float y) { return x >= y || x != x ? x : y; }

/** One contiguous run: o[k] = a[k * sa] op b[k * sb] for k < len, the unit strides taken apart for the vectoriser. */
#define RUN(EXPR)                                                              \
  if (sa == 1 && sb == 1) {                                                    \
    for (int64_t k = 0; k < len; k++) { const float x = a[k], y = b[k]; o[k] = (EXPR); } \
  } else if (sa == 1 && sb == 0) {                                             \
    const float y = b[0];                                                      \
    for (int64_t k = 0; k < len; k++) { const float x = a[k]; o[k] = (EXPR); } \
  } else if (sa == 0 && sb == 1) {                                             \
    const float x = a[0];                                                      \
    for (int64_t k = 0; k < len; k++) { const float y = b[k]; o[k] = (EXPR); } \
  } else {                                                                     \
    for (int64_t k = 0; k < len; k++) { const float x = a[k * sa], y = b[k * sb]; o[k] = (EXPR); } \
  }

CLONES static void binary_run(int op, const float *a, int64_t sa, const float *b, int64_t sb, float *o, int64_t len) {
  switch (op) {
    case BIN_ADD: RUN(x + y) break;
    case BIN_SUB: RUN(x - y) break;
    case BIN_MUL: RUN(x * y) break;
    case BIN_DIV: RUN(x / y) break;
    case BIN_POW: RUN((float)pow((double)x, (double)y)) break;
    case BIN_MAXIMUM: RUN(maxf(x, y)) break;
    case BIN_GT: RUN(x > y ? 1.0f : 0.0f) break;
    case BIN_LT: RUN(x < y ? 1.0f : 0.0f) break;
    case BIN_EQ: RUN(x == y ? 1.0f : 0.0f) break;
    default: break;
  }
}

typedef struct {
  int op, rank;
  const float *a, *b;
  float *out;
  const int64_t *as, *bs, *shape;
  int64_t total;
  int units;
} binary_job;

static void binary_range(const binary_job *j, int64_t lo, int64_t hi, int thread) {
  (void)thread;
  const int r = j->rank;
  const int64_t inner = j->shape[r - 1];
  // The multi-index of element lo, and the operands' offsets there.
  int64_t idx[BIN_MAX_RANK];
  int64_t rest = lo, oa = 0, ob = 0;
  for (int d = r - 1; d >= 0; d--) {
    idx[d] = rest % j->shape[d];
    rest /= j->shape[d];
    oa += idx[d] * j->as[d];
    ob += idx[d] * j->bs[d];
  }
  int64_t i = lo;
  while (i < hi) {
    const int64_t len = inner - idx[r - 1] < hi - i ? inner - idx[r - 1] : hi - i;
    binary_run(j->op, j->a + oa, j->as[r - 1], j->b + ob, j->bs[r - 1], j->out + i, len);
    i += len;
    // Step the multi-index by len along the last dimension, carrying into the ones before.
    idx[r - 1] += len;
    oa += len * j->as[r - 1];
    ob += len * j->bs[r - 1];
    for (int d = r - 1; d > 0 && idx[d] == j->shape[d]; d--) {
      oa += j->as[d - 1] - j->shape[d] * j->as[d];
      ob += j->bs[d - 1] - j->shape[d] * j->bs[d];
      idx[d] = 0;
      idx[d - 1]++;
    }
  }
}

SHARE_UNIT(binary_unit, binary_job, total, binary_range)

void binary_op(int op, const float *a, const int64_t *aStrides, const float *b, const int64_t *bStrides, float *out,
               const int64_t *shape, int rank) {
  if (rank < 1 || rank > BIN_MAX_RANK || op < 0 || op >= BIN_COUNT) return;
  int64_t total = 1;
  for (int d = 0; d < rank; d++) total *= shape[d];
  if (total <= 0) return;
  // NOTE: pow calls libm per element, so it is worth a thread at a smaller size.
  binary_job j = { op, rank, a, b, out, aStrides, bStrides, shape, total, units_for(total, op == BIN_POW ? GRAIN / 8 : GRAIN) };
  pool_run(binary_unit, &j, j.units);
}

// ---- reductions ----

typedef struct {
  int op;
  const float *x;
  float *out;
  int64_t outer, n, inner, cols;  // cols: inner columns per unit
  int chunks;                     // units per outer index
} reduce_job;

/** Sum of n floats at stride 1, in double with ACC partial sums. */
ROW_HELPER double sum_run(const float *x, int64_t n) {
  dvec s[4] = {{0}};
  int64_t k = 0;
  for (; k + ACC <= n; k += ACC) {
    for (int l = 0; l < 4; l++) s[l] += widen(x + k + 8 * l);
  }
  double t = fold(s);
  for (; k < n; k++) t += (double)x[k];
  return t;
}

/** Column sums acc[i] += x[j * inner + i] over j < n, i < cols, in double (the reference's order of additions). */
ROW_HELPER void colsum_run(const float *x, int64_t n, int64_t inner, int64_t cols, double *acc) {
  for (int64_t i = 0; i < cols; i++) acc[i] = 0;
  for (int64_t j = 0; j < n; j++) {
    const float *r = x + j * inner;
    for (int64_t i = 0; i < cols; i++) acc[i] += (double)r[i];
  }
}

CLONES static void reduce_unit(void *ctx, int unit, int thread) {
  (void)thread;
  const reduce_job *j = ctx;
  const int64_t o = unit / j->chunks;
  const int64_t i0 = (unit % j->chunks) * j->cols;
  const int64_t cols = j->inner - i0 < j->cols ? j->inner - i0 : j->cols;
  const float *x = j->x + o * j->n * j->inner + i0;
  float *out = j->out + o * j->inner + i0;
  if (j->op == 0 && j->inner == 1) {
    out[0] = (float)sum_run(x, j->n);
  } else if (j->op == 0) {
    double acc[256];
    colsum_run(x, j->n, j->inner, cols, acc);
    for (int64_t i = 0; i < cols; i++) out[i] = (float)acc[i];
  } else {
    for (int64_t i = 0; i < cols; i++) {
      float m = -__builtin_inff();
      for (int64_t k = 0; k < j->n; k++) {
        const float v = x[k * j->inner + i];
        if (v > m || v != v) m = v;
        if (m != m) break;
      }
      out[i] = m;
    }
  }
}

/** A job over n items split into `units` ranges; each kernel reads the fields it needs. */
typedef struct {
  const float *x, *g;
  float *out, *m, *v;
  const adamw_scalars *h;
  double *partial;
  int64_t n, width;  // items; floats per item (row sums)
  int units;
} range_job;

CLONES static void rowsum_range(const range_job *j, int64_t lo, int64_t hi, int thread) {
  (void)thread;
  for (int64_t r = lo; r < hi; r++) j->out[r] = (float)sum_run(j->x + r * j->width, j->width);
}

SHARE_UNIT(rowsum_unit, range_job, n, rowsum_range)

void reduce_op(int op, const float *x, int64_t outer, int64_t n, int64_t inner, float *out) {
  if (outer <= 0 || inner <= 0) return;
  if (n <= 0) {
    const float v = op == 0 ? 0.0f : -__builtin_inff();
    for (int64_t i = 0; i < outer * inner; i++) out[i] = v;
    return;
  }
  if (op == 0 && inner == 1) {
    range_job j = { .x = x, .out = out, .n = outer, .width = n, .units = row_units(outer, n, GRAIN) };
    pool_run(rowsum_unit, &j, j.units);
    return;
  }
  // Units of up to 256 columns, narrower when that leaves a thread idle.
  int64_t cols = inner < 256 ? inner : 256;
  const int threads = pool_threads();
  if (outer * n * inner >= GRAIN && threads > 1) {
    while (cols > 16 && outer * ((inner + cols - 1) / cols) < 2 * threads) cols = (cols + 1) / 2;
  }
  reduce_job j = { op, x, out, outer, n, inner, cols, (int)((inner + cols - 1) / cols) };
  const int64_t units = outer * j.chunks;
  if (outer * n * inner < GRAIN || units > (1 << 20)) {
    for (int64_t u = 0; u < units; u++) reduce_unit(&j, (int)u, 0);
  } else {
    pool_run(reduce_unit, &j, (int)units);
  }
}

// ---- softmax ----

typedef struct {
  const float *x;
  float *out, *scratch;  // scratch: n floats per thread (log-softmax only)
  int64_t rows, n;
  int units, log;
} softmax_job;

/** The row's maximum, NaN when any is NaN (sixteen running maxima, so the loop vectorises). */
ROW_HELPER float row_max(const float *x, int64_t n) {
  float m[16];
  for (int l = 0; l < 16; l++) m[l] = -__builtin_inff();
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    for (int l = 0; l < 16; l++) {
      const float v = x[k + l];
      m[l] = v > m[l] || v != v ? v : m[l];
    }
  }
  for (; k < n; k++) m[0] = x[k] > m[0] || x[k] != x[k] ? x[k] : m[0];
  float r = m[0];
  for (int l = 1; l < 16; l++) r = m[l] > r || m[l] != m[l] ? m[l] : r;
  return r;
}

ROW_HELPER void sub_scalar(const float *x, float m, float *out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = x[i] - m;
}

ROW_HELPER void scale_row(float *out, float s, int64_t n, int divide) {
  if (divide) {
    for (int64_t i = 0; i < n; i++) out[i] = out[i] / s;
  } else {
    for (int64_t i = 0; i < n; i++) out[i] = out[i] - s;
  }
}

CLONES static void softmax_range(const softmax_job *j, int64_t lo, int64_t hi, int thread) {
  const int64_t n = j->n;
  for (int64_t r = lo; r < hi; r++) {
    const float *x = j->x + r * n;
    float *o = j->out + r * n;
    const float m = row_max(x, n);
    sub_scalar(x, m, o, n);
    if (j->log) {
      float *e = j->scratch + (int64_t)thread * n;
      exp_array(o, e, (int)n);
      const float l = (float)log((double)(float)sum_run(e, n));
      scale_row(o, l, n, 0);
    } else {
      exp_array(o, o, (int)n);
      scale_row(o, (float)sum_run(o, n), n, 1);
    }
  }
}

SHARE_UNIT(softmax_unit, softmax_job, rows, softmax_range)

int softmax_rows(const float *x, int64_t rows, int64_t n, float *out, int log) {
  if (rows <= 0 || n <= 0) return 1;
  softmax_job j = { x, out, NULL, rows, n, row_units(rows, n, GRAIN), log };
  if (log) {
    j.scratch = malloc((size_t)pool_threads() * (size_t)n * sizeof(float));
    if (!j.scratch) return 0;
  }
  pool_run(softmax_unit, &j, j.units);
  free(j.scratch);
  return 1;
}

// ---- layer norm ----

typedef struct {
  const float *x, *g, *w, *b, *mean, *rstd;
  float *out, *meanOut, *rstdOut, *gxhat;
  int64_t rows, n;
  float eps;
  int units;
} ln_job;

/** out[0..8) = x[0..8) - mu; returns their squares widened to double. */
ROW_HELPER dvec center8(const float *x, float mu, float *out) {
  fvec c;
  memcpy(&c, x, sizeof c);
  c -= mu;
  memcpy(out, &c, sizeof c);
  return __builtin_convertvector(c * c, dvec);
}

/** Sum of (x - mu)^2 in double, each square rounded to float, and out = x - mu. */
ROW_HELPER double center_run(const float *x, float mu, float *out, int64_t n) {
  dvec s[4] = {{0}};
  int64_t k = 0;
  for (; k + ACC <= n; k += ACC) {
    for (int l = 0; l < 4; l++) s[l] += center8(x + k + 8 * l, mu, out + k + 8 * l);
  }
  double t = fold(s);
  for (; k < n; k++) {
    const float c = x[k] - mu;
    out[k] = c;
    t += (double)(c * c);
  }
  return t;
}

ROW_HELPER void affine_run(float *o, float rs, const float *w, const float *b, int64_t n) {
  if (w && b) {
    for (int64_t i = 0; i < n; i++) o[i] = o[i] * rs * w[i] + b[i];
  } else if (w) {
    for (int64_t i = 0; i < n; i++) o[i] = o[i] * rs * w[i];
  } else if (b) {
    for (int64_t i = 0; i < n; i++) o[i] = o[i] * rs + b[i];
  } else {
    for (int64_t i = 0; i < n; i++) o[i] = o[i] * rs;
  }
}

CLONES static void ln_range(const ln_job *j, int64_t lo, int64_t hi, int thread) {
  (void)thread;
  const int64_t n = j->n;
  for (int64_t r = lo; r < hi; r++) {
    const float *x = j->x + r * n;
    float *o = j->out + r * n;
    const float mu = (float)sum_run(x, n) / (float)n;
    const float v = (float)center_run(x, mu, o, n) / (float)n;
    const float rs = (float)(1.0 / sqrt((double)(v + j->eps)));
    if (j->meanOut) j->meanOut[r] = mu;
    if (j->rstdOut) j->rstdOut[r] = rs;
    affine_run(o, rs, j->w, j->b, n);
  }
}

SHARE_UNIT(ln_unit, ln_job, rows, ln_range)

void layer_norm(const float *x, int64_t rows, int64_t n, const float *w, const float *b, float eps, float *out,
                float *mean, float *rstd) {
  if (rows <= 0 || n <= 0) return;
  ln_job j = { .x = x, .w = w, .b = b, .out = out, .meanOut = mean, .rstdOut = rstd, .rows = rows, .n = n, .eps = eps,
               .units = row_units(rows, n, GRAIN) };
  pool_run(ln_unit, &j, j.units);
}

/** Eight floats from x. */
ROW_HELPER fvec load8(const float *x) {
  fvec f;
  memcpy(&f, x, sizeof f);
  return f;
}

/** One row of layer_norm_backward: the two row sums, then dx (and g * xhat). */
ROW_HELPER void ln_back_row(const float *x, const float *g, const float *w, float mu, float rs, int64_t n, float *dx,
                               float *gxhat) {
  // Sums of dxhat and dxhat * xhat, two chains of eight partial sums each.
  dvec sa[4] = {{0}}, sb[4] = {{0}};
  int64_t k = 0;
  for (; k + ACC <= n; k += ACC) {
    for (int l = 0; l < 4; l++) {
      const fvec xh = (load8(x + k + 8 * l) - mu) * rs;
      const fvec dh = w ? load8(g + k + 8 * l) * load8(w + k + 8 * l) : load8(g + k + 8 * l);
      sa[l] += __builtin_convertvector(dh, dvec);
      sb[l] += __builtin_convertvector(dh * xh, dvec);
    }
  }
  double ta = fold(sa), tb = fold(sb);
  for (; k < n; k++) {
    const float xh = (x[k] - mu) * rs;
    const float dh = w ? g[k] * w[k] : g[k];
    ta += (double)dh;
    tb += (double)(dh * xh);
  }
  const float ma = (float)ta / (float)n, mb = (float)tb / (float)n;
  if (gxhat) {
    for (int64_t i = 0; i < n; i++) {
      const float xh = (x[i] - mu) * rs;
      const float dh = w ? g[i] * w[i] : g[i];
      dx[i] = rs * ((dh - ma) - xh * mb);
      gxhat[i] = g[i] * xh;
    }
  } else {
    for (int64_t i = 0; i < n; i++) {
      const float xh = (x[i] - mu) * rs;
      const float dh = w ? g[i] * w[i] : g[i];
      dx[i] = rs * ((dh - ma) - xh * mb);
    }
  }
}

CLONES static void ln_back_range(const ln_job *j, int64_t lo, int64_t hi, int thread) {
  (void)thread;
  const int64_t n = j->n;
  for (int64_t r = lo; r < hi; r++) {
    ln_back_row(j->x + r * n, j->g + r * n, j->w, j->mean[r], j->rstd[r], n, j->out + r * n,
                j->gxhat ? j->gxhat + r * n : NULL);
  }
}

SHARE_UNIT(ln_back_unit, ln_job, rows, ln_back_range)

void layer_norm_backward(const float *x, const float *g, const float *w, const float *mean, const float *rstd,
                         int64_t rows, int64_t n, float *dx, float *gxhat) {
  if (rows <= 0 || n <= 0) return;
  ln_job j = { .x = x, .g = g, .w = w, .mean = mean, .rstd = rstd, .out = dx, .gxhat = gxhat, .rows = rows, .n = n,
               .units = row_units(rows, n, GRAIN / 2) };
  pool_run(ln_back_unit, &j, j.units);
}

// ---- GELU's gradient, AdamW, sum of squares ----

static void gelu_back_range(const range_job *j, int64_t lo, int64_t hi, int thread) {
  (void)thread;
  gelu_tanh_backward_serial(j->x + lo, j->g + lo, j->out + lo, hi - lo);
}

SHARE_UNIT(gelu_back_unit, range_job, n, gelu_back_range)

void gelu_tanh_backward(const float *x, const float *g, float *dx, int64_t n) {
  if (n <= 0) return;
  range_job j = { .x = x, .g = g, .out = dx, .n = n, .units = units_for(n, GRAIN / 4) };
  pool_run(gelu_back_unit, &j, j.units);
}

CLONES static void adamw_run(float *w, const float *g, float *m, float *v, int64_t n, const adamw_scalars *h) {
  // NOTE: the scalars are doubles and each product with one is rounded to float, as Math.fround does in the
  // reference; float-by-float steps (w * decay, the sums, mi / denom) round the same either way.
  const float decay = h->decay;
  const double b1 = h->beta1, b2 = h->beta2, c1 = 1.0 - h->beta1, c2 = 1.0 - h->beta2;
  const double eps = h->eps, bc2 = h->bc2Sqrt, step = h->stepSize;
  for (int64_t i = 0; i < n; i++) {
    const float gi = g[i];
    const float wi = w[i] * decay;
    const float mi = (float)((double)m[i] * b1) + (float)((double)gi * c1);
    const float vi = (float)((double)v[i] * b2) + (float)((double)(gi * gi) * c2);
    m[i] = mi;
    v[i] = vi;
    const float denom = (float)((double)(float)((double)sqrtf(vi) / bc2) + eps);
    w[i] = wi - (float)((double)(mi / denom) * step);
  }
}

static void adamw_range(const range_job *j, int64_t lo, int64_t hi, int thread) {
  (void)thread;
  adamw_run(j->out + lo, j->g + lo, j->m + lo, j->v + lo, hi - lo, j->h);
}

SHARE_UNIT(adamw_unit, range_job, n, adamw_range)

void adamw(float *w, const float *g, float *m, float *v, int64_t n, const adamw_scalars *h) {
  if (n <= 0) return;
  range_job j = { .g = g, .out = w, .m = m, .v = v, .h = h, .n = n, .units = units_for(n, GRAIN) };
  pool_run(adamw_unit, &j, j.units);
}

CLONES static double squares_run(const float *x, int64_t n) {
  dvec s[4] = {{0}};
  int64_t k = 0;
  for (; k + ACC <= n; k += ACC) {
    for (int l = 0; l < 4; l++) {
      const dvec v = widen(x + k + 8 * l);
      s[l] += v * v;
    }
  }
  double t = fold(s);
  for (; k < n; k++) t += (double)x[k] * (double)x[k];
  return t;
}

static void squares_unit(void *ctx, int unit, int thread) {
  (void)thread;
  const range_job *j = ctx;
  const span s = share(j->n, j->units, unit);
  j->partial[unit] = squares_run(j->x + s.lo, s.hi - s.lo);
}

double sum_squares(const float *x, int64_t n) {
  if (n <= 0) return 0;
  double partial[64];
  range_job j = { .x = x, .partial = partial, .n = n, .units = units_for(n, 4 * GRAIN) };
  if (j.units > 64) j.units = 64;
  pool_run(squares_unit, &j, j.units);
  double t = 0;
  for (int u = 0; u < j.units; u++) t += partial[u];
  return t;
}
