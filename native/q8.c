// Int8 weight products (q8.h). Decoding (a few rows of x) is bound by how fast W streams from memory, so it reads
// each int8 row once, widening 16 (AVX-512) or 8 (AVX2) values at a time to float and multiplying into a group
// sum that one fused multiply-add scales into the row's total; a quarter of float32's bytes cross the memory bus.
// Prefill and evaluation (many rows) dequantise NB rows of W at a time into a per-thread float buffer and hand
// them to gemm.c's packed product (gemm_serial), so every row count runs at the float32 GEMM's speed.
// The kernels follow the instruction set gemm.c picked (gemm_isa(), forced ISAs included); build flags stay portable.
#include "q8.h"

#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AJAR_X86 1
#endif

/** Rows of x up to which the fused dot product runs (each W row is read from L1 once per row of x). */
#define GEMV_ROWS 4
/** W rows a GEMM unit dequantises at a time. */
#define NB 64
/** Products smaller than this many flops run on the calling thread alone (gemm.c's threshold). */
#define PARALLEL_FLOPS (1 << 21)

/** x (K) . W row (K int8 values, K / group scales). */
typedef float (*dot_kernel)(const float *x, const int8_t *q, const float *s, int K, int group);

/** out (K) = one W row dequantised. */
typedef void (*row_kernel)(const int8_t *q, const float *s, int K, int group, float *out);

static void row_generic(const int8_t *q, const float *s, int K, int group, float *out) {
  for (int g = 0; g < K / group; g++) {
    const float d = s[g];
    for (int l = 0; l < group; l++) out[g * group + l] = (float)q[g * group + l] * d;
  }
}

static float dot_generic(const float *x, const int8_t *q, const float *s, int K, int group) {
  float total = 0;
  for (int g = 0; g < K / group; g++) {
    const int8_t *qq = q + (int64_t)g * group;
    const float *xx = x + (int64_t)g * group;
    float part[8] = {0};
    for (int l = 0; l < group; l += 8) {
      for (int i = 0; i < 8; i++) part[i] += xx[l + i] * (float)qq[l + i];
    }
    float p = 0;
    for (int i = 0; i < 8; i++) p += part[i];
    total += p * s[g];
  }
  return total;
}

#ifdef AJAR_X86

#define CVT16(p) _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p))))

__attribute__((target("avx512f"))) static float dot_avx512(const float *x, const int8_t *q, const float *s, int K,
                                                           int group) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  const int G = K / group;
  if (group == 32) {
    // Q8_0's block: two groups a pass, each into its own accumulator (two independent FMA chains).
    int g = 0;
    for (; g + 2 <= G; g += 2) {
      const int8_t *qq = q + g * 32;
      const float *xx = x + g * 32;
      __m512 p0 = _mm512_mul_ps(CVT16(qq), _mm512_loadu_ps(xx));
      __m512 p1 = _mm512_mul_ps(CVT16(qq + 32), _mm512_loadu_ps(xx + 32));
      p0 = _mm512_fmadd_ps(CVT16(qq + 16), _mm512_loadu_ps(xx + 16), p0);
      p1 = _mm512_fmadd_ps(CVT16(qq + 48), _mm512_loadu_ps(xx + 48), p1);
      acc0 = _mm512_fmadd_ps(p0, _mm512_set1_ps(s[g]), acc0);
      acc1 = _mm512_fmadd_ps(p1, _mm512_set1_ps(s[g + 1]), acc1);
    }
    if (g < G) {
      __m512 p0 = _mm512_mul_ps(CVT16(q + g * 32), _mm512_loadu_ps(x + g * 32));
      p0 = _mm512_fmadd_ps(CVT16(q + g * 32 + 16), _mm512_loadu_ps(x + g * 32 + 16), p0);
      acc0 = _mm512_fmadd_ps(p0, _mm512_set1_ps(s[g]), acc0);
    }
  } else {
    for (int g = 0; g < G; g++) {
      const int8_t *qq = q + (int64_t)g * group;
      const float *xx = x + (int64_t)g * group;
      __m512 p = _mm512_setzero_ps();
      for (int l = 0; l < group; l += 16) p = _mm512_fmadd_ps(CVT16(qq + l), _mm512_loadu_ps(xx + l), p);
      acc0 = _mm512_fmadd_ps(p, _mm512_set1_ps(s[g]), acc0);
    }
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

__attribute__((target("avx512f"))) static void row_avx512(const int8_t *q, const float *s, int K, int group, float *out) {
  for (int g = 0; g < K / group; g++) {
    const __m512 d = _mm512_set1_ps(s[g]);
    for (int l = 0; l < group; l += 16) _mm512_storeu_ps(out + g * group + l, _mm512_mul_ps(CVT16(q + g * group + l), d));
  }
}

#define CVT8(p) _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p))))

__attribute__((target("avx2,fma"))) static float dot_avx2(const float *x, const int8_t *q, const float *s, int K,
                                                          int group) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const int G = K / group;
  for (int g = 0; g < G; g++) {
    const int8_t *qq = q + (int64_t)g * group;
    const float *xx = x + (int64_t)g * group;
    __m256 p0 = _mm256_setzero_ps(), p1 = _mm256_setzero_ps();
    for (int l = 0; l < group; l += 16) {
      p0 = _mm256_fmadd_ps(CVT8(qq + l), _mm256_loadu_ps(xx + l), p0);
      p1 = _mm256_fmadd_ps(CVT8(qq + l + 8), _mm256_loadu_ps(xx + l + 8), p1);
    }
    const __m256 sg = _mm256_set1_ps(s[g]);
    if (g & 1) acc1 = _mm256_fmadd_ps(_mm256_add_ps(p0, p1), sg, acc1);
    else acc0 = _mm256_fmadd_ps(_mm256_add_ps(p0, p1), sg, acc0);
  }
  const __m256 a = _mm256_add_ps(acc0, acc1);
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

__attribute__((target("avx2,fma"))) static void row_avx2(const int8_t *q, const float *s, int K, int group, float *out) {
  for (int g = 0; g < K / group; g++) {
    const __m256 d = _mm256_set1_ps(s[g]);
    for (int l = 0; l < group; l += 8) _mm256_storeu_ps(out + g * group + l, _mm256_mul_ps(CVT8(q + g * group + l), d));
  }
}

#endif  // AJAR_X86

static const char *picked_for;
static dot_kernel dot = dot_generic;
static row_kernel dequant_row = row_generic;

/** Follow gemm.c's choice of instruction set (it changes when init() forces one). */
static void pick(void) {
  const char *isa = gemm_isa();
  if (isa == picked_for) return;
  picked_for = isa;
  dot = dot_generic;
  dequant_row = row_generic;
#ifdef AJAR_X86
  if (strcmp(isa, "avx512") == 0) {
    dot = dot_avx512;
    dequant_row = row_avx512;
  } else if (strcmp(isa, "avx2") == 0) {
    dot = dot_avx2;
    dequant_row = row_avx2;
  }
#endif
}

typedef struct {
  const float *x;
  const int8_t *q;
  const float *s, *bias;
  float *out;
  int M, K, N, group, chunk;
} q8_job;

/** Rows [n0, n0 + chunk) of W against every row of x, through the fused dot product. */
static void gemv_unit(void *ctx, int unit, int thread) {
  (void)thread;
  const q8_job *j = ctx;
  const int n0 = unit * j->chunk;
  const int n1 = n0 + j->chunk < j->N ? n0 + j->chunk : j->N;
  const int G = j->K / j->group;
  for (int n = n0; n < n1; n++) {
    const int8_t *qn = j->q + (int64_t)n * j->K;
    const float *sn = j->s + (int64_t)n * G;
    const float b = j->bias ? j->bias[n] : 0;
    for (int m = 0; m < j->M; m++) j->out[(int64_t)m * j->N + n] = dot(j->x + (int64_t)m * j->K, qn, sn, j->K, j->group) + b;
  }
}

// Per-thread float buffers of NB dequantised rows (grown on the calling thread before a job starts).
static float **deq;
static int64_t *deq_cap;
static int deq_threads;

static int deq_reserve(int64_t floats) {
  const int n = pool_threads();
  if (deq_threads < n) {
    float **b = realloc(deq, (size_t)n * sizeof *b);
    if (!b) return 0;
    deq = b;
    int64_t *c = realloc(deq_cap, (size_t)n * sizeof *c);
    if (!c) return 0;
    deq_cap = c;
    for (int t = deq_threads; t < n; t++) {
      deq[t] = NULL;
      deq_cap[t] = 0;
    }
    deq_threads = n;
  }
  for (int t = 0; t < n; t++) {
    if (deq_cap[t] >= floats) continue;
    free(deq[t]);
    deq[t] = NULL;
    deq_cap[t] = 0;
    if (posix_memalign((void **)&deq[t], 64, (size_t)floats * sizeof(float)) != 0) {
      deq[t] = NULL;
      return 0;
    }
    deq_cap[t] = floats;
  }
  return 1;
}

/** Rows [n0, n0 + NB) of W dequantised, then out[:, n0 .. n0 + NB) = x W_block^T (+ bias) by gemm_serial. */
static void gemm_unit(void *ctx, int unit, int thread) {
  const q8_job *j = ctx;
  const int n0 = unit * NB;
  const int nb = j->N - n0 < NB ? j->N - n0 : NB;
  const int G = j->K / j->group;
  float *w = deq[thread];
  for (int r = 0; r < nb; r++) {
    dequant_row(j->q + (int64_t)(n0 + r) * j->K, j->s + (int64_t)(n0 + r) * G, j->K, j->group, w + (int64_t)r * j->K);
  }
  gemm_args g = { .a = j->x, .b = w, .c = j->out + n0, .batch = 1, .M = j->M, .K = j->K, .N = nb, .transA = 0,
                  .transB = 1, .lda = j->K, .ldb = j->K, .ldc = j->N };
  gemm_serial(&g, thread);
  if (j->bias) {
    for (int m = 0; m < j->M; m++) {
      float *o = j->out + (int64_t)m * j->N + n0;
      for (int c = 0; c < nb; c++) o[c] += j->bias[n0 + c];
    }
  }
}

int q8_matmul(const float *x, const int8_t *q, const float *scales, const float *bias, int M, int K, int N, int group,
              float *out) {
  if (M <= 0 || N <= 0) return 1;
  pick();
  q8_job j = { .x = x, .q = q, .s = scales, .bias = bias, .out = out, .M = M, .K = K, .N = N, .group = group };
  const int threads = pool_threads();
  const int parallel = threads > 1 && 2.0 * M * (double)N * K >= PARALLEL_FLOPS;
  if (M <= GEMV_ROWS || K == 0) {
    const int want = parallel ? threads * 4 : 1;
    j.chunk = (N + want - 1) / want;
    const int units = (N + j.chunk - 1) / j.chunk;
    if (parallel) pool_run(gemv_unit, &j, units);
    else gemv_unit(&j, 0, 0);
    return 1;
  }
  if (!gemm_scratch() || !deq_reserve((int64_t)NB * K)) return 0;
  const int units = (N + NB - 1) / NB;
  if (parallel) {
    pool_run(gemm_unit, &j, units);
  } else {
    for (int u = 0; u < units; u++) gemm_unit(&j, u, 0);
  }
  return 1;
}
