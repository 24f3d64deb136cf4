// GEMM in the BLIS shape: op(A) and op(B) are packed into MR-row and NR-column strips of KC-deep blocks,
// and a register-tiled micro-kernel (MR x NR accumulators) runs over them. M == 1 or N == 1 (decoding) takes
// the GEMV kernels instead, which stream the matrix once. The micro-kernels come in AVX-512, AVX2+FMA and
// portable C versions, each compiled with its own target attribute and picked at load by the CPU's features,
// so the build flags stay portable. Work is split over (item, row block, column block) units on the pool.
#include "gemm.h"

#include <stdlib.h>
#include <string.h>

#include "pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AJAR_X86 1
#endif

#define KC 256
#define MC 192  // a multiple of every MR
#define NC 256  // a multiple of every NR
#define MR_MAX 12
#define NR_MAX 32
/** Products smaller than this many flops run on the calling thread alone. */
#define PARALLEL_FLOPS (1 << 21)

/** C (mr x nr, leading dimension ldc) (+)= packed A strip (kc x MR) times packed B strip (kc x NR). */
typedef void (*micro_kernel)(int kc, const float *A, const float *B, float *C, int64_t ldc, int accumulate, int mr,
                             int nr);

/** The same over A read in place: element (i, k) of the strip at A[i * lda + k] (op(A) row-major, unpacked). */
typedef void (*rows_kernel)(int kc, const float *A, int64_t lda, const float *B, float *C, int64_t ldc, int accumulate,
                            int mr, int nr);

/** y[j] (+)= v . W row j for j < J (W rows ldw apart), or y[j] = sum_k v[k] W[k * ldw + j] (stream). */
typedef void (*gemv_kernel)(const float *v, const float *w, float *y, int K, int J, int64_t ldw);

static struct {
  const char *isa;
  int mr, nr;
  micro_kernel kernel;
  rows_kernel rows;  // NULL: A is always packed
  gemv_kernel dot, stream;
} ISA;

/** Write an mr x nr corner of a full tile t (row stride NR) into C. */
static void store_partial(const float *t, int NR, float *C, int64_t ldc, int accumulate, int mr, int nr) {
  for (int i = 0; i < mr; i++) {
    float *c = C + i * ldc;
    const float *s = t + i * NR;
    if (accumulate) {
      for (int j = 0; j < nr; j++) c[j] += s[j];
    } else {
      for (int j = 0; j < nr; j++) c[j] = s[j];
    }
  }
}

// ---- portable C (whatever vector width the compiler's baseline gives) ----

#define G_MR 4
#define G_NR 8

static void kernel_generic(int kc, const float *A, const float *B, float *C, int64_t ldc, int accumulate, int mr,
                           int nr) {
  float t[G_MR * G_NR] = {0};
  for (int k = 0; k < kc; k++) {
    for (int i = 0; i < G_MR; i++) {
      float a = A[i];
      for (int j = 0; j < G_NR; j++) t[i * G_NR + j] += a * B[j];
    }
    A += G_MR;
    B += G_NR;
  }
  store_partial(t, G_NR, C, ldc, accumulate, mr, nr);
}

/** The GEMV kernels' bodies, compiled once per target below (L lanes of partial sums). */
#define GEMV_BODIES(SUFFIX, TARGET, L)                                                                          \
  TARGET static void dot_##SUFFIX(const float *v, const float *w, float *y, int K, int J, int64_t ldw) {    \
    for (int j = 0; j < J; j++) {                                                                           \
      const float *r = w + j * ldw;                                                                         \
      float s0[L] = {0}, s1[L] = {0};                                                                       \
      int k = 0;                                                                                            \
      for (; k + 2 * L <= K; k += 2 * L) {                                                                  \
        for (int l = 0; l < L; l++) s0[l] += v[k + l] * r[k + l];                                           \
        for (int l = 0; l < L; l++) s1[l] += v[k + L + l] * r[k + L + l];                                   \
      }                                                                                                     \
      float s = 0;                                                                                          \
      for (int l = 0; l < L; l++) s += s0[l] + s1[l];                                                       \
      for (; k < K; k++) s += v[k] * r[k];                                                                  \
      y[j] = s;                                                                                             \
    }                                                                                                       \
  }                                                                                                         \
  TARGET static void stream_##SUFFIX(const float *v, const float *w, float *y, int K, int J, int64_t ldw) { \
    for (int j = 0; j < J; j++) y[j] = 0;                                                                   \
    int k = 0;                                                                                              \
    for (; k + 4 <= K; k += 4) { /* four rows a pass: a quarter of the loads and stores of y */            \
      const float a0 = v[k], a1 = v[k + 1], a2 = v[k + 2], a3 = v[k + 3];                                   \
      const float *r0 = w + k * ldw, *r1 = r0 + ldw, *r2 = r1 + ldw, *r3 = r2 + ldw;                       \
      for (int j = 0; j < J; j++) {                                                                         \
        float t = y[j];                                                                                     \
        t += a0 * r0[j];                                                                                    \
        t += a1 * r1[j];                                                                                    \
        t += a2 * r2[j];                                                                                    \
        t += a3 * r3[j];                                                                                    \
        y[j] = t;                                                                                           \
      }                                                                                                     \
    }                                                                                                       \
    for (; k < K; k++) {                                                                                    \
      const float a = v[k];                                                                                 \
      const float *r = w + k * ldw;                                                                         \
      for (int j = 0; j < J; j++) y[j] += a * r[j];                                                         \
    }                                                                                                       \
  }

GEMV_BODIES(generic, , 8)

#ifdef AJAR_X86

// ---- AVX2 + FMA: 6 x 16 tiles (12 ymm accumulators) ----

GEMV_BODIES(avx2, __attribute__((target("avx2,fma"))), 16)

#define A2_ROW(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();
#define A2_FMA(i)                                      \
  {                                                    \
    __m256 a = _mm256_broadcast_ss(A + i);             \
    c##i##0 = _mm256_fmadd_ps(a, b0, c##i##0);         \
    c##i##1 = _mm256_fmadd_ps(a, b1, c##i##1);         \
  }
#define A2_OUT(i)                                                                  \
  if (full) {                                                                      \
    float *c = C + i * ldc;                                                        \
    if (accumulate) {                                                              \
      c##i##0 = _mm256_add_ps(c##i##0, _mm256_loadu_ps(c));                        \
      c##i##1 = _mm256_add_ps(c##i##1, _mm256_loadu_ps(c + 8));                    \
    }                                                                              \
    _mm256_storeu_ps(c, c##i##0);                                                  \
    _mm256_storeu_ps(c + 8, c##i##1);                                              \
  } else {                                                                         \
    _mm256_storeu_ps(t + i * 16, c##i##0);                                         \
    _mm256_storeu_ps(t + i * 16 + 8, c##i##1);                                     \
  }

/** A kernel's A parameters: a packed strip, or a row-major A read in place with its leading dimension. */
#define A_PACKED const float *A
#define A_ROWS const float *A, int64_t lda

/**
 * The 6 x 16 AVX2 micro-kernel over the packed B strip; A element (i, k) is what FMA(i) reads at A, and A steps
 * ASTEP a depth step (the packed strip's 6, or 1 in place).
 */
#define KERNEL_AVX2(NAME, A_PARAMS, FMA, ASTEP)                                                                  \
  __attribute__((target("avx2,fma"))) static void NAME(int kc, A_PARAMS, const float *B, float *C, int64_t ldc, \
                                                       int accumulate, int mr, int nr) {                        \
    A2_ROW(0) A2_ROW(1) A2_ROW(2) A2_ROW(3) A2_ROW(4) A2_ROW(5)                                               \
    for (int k = 0; k < kc; k++) {                                                                            \
      __m256 b0 = _mm256_load_ps(B), b1 = _mm256_load_ps(B + 8);                                              \
      FMA(0) FMA(1) FMA(2) FMA(3) FMA(4) FMA(5)                                                               \
      A += ASTEP;                                                                                             \
      B += 16;                                                                                                \
    }                                                                                                         \
    const int full = mr == 6 && nr == 16;                                                                     \
    float t[6 * 16] __attribute__((aligned(32)));                                                             \
    A2_OUT(0) A2_OUT(1) A2_OUT(2) A2_OUT(3) A2_OUT(4) A2_OUT(5)                                               \
    if (!full) store_partial(t, 16, C, ldc, accumulate, mr, nr);                                              \
  }

KERNEL_AVX2(kernel_avx2, A_PACKED, A2_FMA, 6)

#define A2_FMA_R(i)                                    \
  {                                                    \
    __m256 a = _mm256_broadcast_ss(A + (i) * lda);     \
    c##i##0 = _mm256_fmadd_ps(a, b0, c##i##0);         \
    c##i##1 = _mm256_fmadd_ps(a, b1, c##i##1);         \
  }

// NOTE: the rows kernels read a row-major A in place: packing it meant a transposing copy that cost as much as
// the product itself when N is narrow (N = 128 in the baby model's layers). Only full MR-row strips come here.
KERNEL_AVX2(rows_avx2, A_ROWS, A2_FMA_R, 1)

// ---- AVX-512: 12 x 32 tiles (24 zmm accumulators) ----

GEMV_BODIES(avx512, __attribute__((target("avx512f"))), 16)

#define A5_ROW(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
#define A5_FMA(i)                                      \
  {                                                    \
    __m512 a = _mm512_set1_ps(A[i]);                   \
    c##i##0 = _mm512_fmadd_ps(a, b0, c##i##0);         \
    c##i##1 = _mm512_fmadd_ps(a, b1, c##i##1);         \
  }
#define A5_OUT(i)                                                                  \
  if (full) {                                                                      \
    float *c = C + i * ldc;                                                        \
    if (accumulate) {                                                              \
      c##i##0 = _mm512_add_ps(c##i##0, _mm512_loadu_ps(c));                        \
      c##i##1 = _mm512_add_ps(c##i##1, _mm512_loadu_ps(c + 16));                   \
    }                                                                              \
    _mm512_storeu_ps(c, c##i##0);                                                  \
    _mm512_storeu_ps(c + 16, c##i##1);                                             \
  } else {                                                                         \
    _mm512_storeu_ps(t + i * 32, c##i##0);                                         \
    _mm512_storeu_ps(t + i * 32 + 16, c##i##1);                                    \
  }

/** The 12 x 32 AVX-512 micro-kernel, as KERNEL_AVX2. */
#define KERNEL_AVX512(NAME, A_PARAMS, FMA, ASTEP)                                                               \
  __attribute__((target("avx512f"))) static void NAME(int kc, A_PARAMS, const float *B, float *C, int64_t ldc,  \
                                                      int accumulate, int mr, int nr) {                         \
    A5_ROW(0) A5_ROW(1) A5_ROW(2) A5_ROW(3) A5_ROW(4) A5_ROW(5)                                               \
    A5_ROW(6) A5_ROW(7) A5_ROW(8) A5_ROW(9) A5_ROW(10) A5_ROW(11)                                             \
    for (int k = 0; k < kc; k++) {                                                                            \
      __m512 b0 = _mm512_load_ps(B), b1 = _mm512_load_ps(B + 16);                                             \
      FMA(0) FMA(1) FMA(2) FMA(3) FMA(4) FMA(5) FMA(6) FMA(7) FMA(8) FMA(9) FMA(10) FMA(11)                   \
      A += ASTEP;                                                                                             \
      B += 32;                                                                                                \
    }                                                                                                         \
    const int full = mr == 12 && nr == 32;                                                                    \
    float t[12 * 32] __attribute__((aligned(64)));                                                            \
    A5_OUT(0) A5_OUT(1) A5_OUT(2) A5_OUT(3) A5_OUT(4) A5_OUT(5)                                               \
    A5_OUT(6) A5_OUT(7) A5_OUT(8) A5_OUT(9) A5_OUT(10) A5_OUT(11)                                             \
    if (!full) store_partial(t, 32, C, ldc, accumulate, mr, nr);                                              \
  }

KERNEL_AVX512(kernel_avx512, A_PACKED, A5_FMA, 12)

#define A5_FMA_R(i)                                    \
  {                                                    \
    __m512 a = _mm512_set1_ps(A[(i) * lda]);           \
    c##i##0 = _mm512_fmadd_ps(a, b0, c##i##0);         \
    c##i##1 = _mm512_fmadd_ps(a, b1, c##i##1);         \
  }

KERNEL_AVX512(rows_avx512, A_ROWS, A5_FMA_R, 1)

#endif  // AJAR_X86

static void use_generic(void) {
  ISA.isa = "generic";
  ISA.mr = G_MR;
  ISA.nr = G_NR;
  ISA.kernel = kernel_generic;
  ISA.rows = NULL;
  ISA.dot = dot_generic;
  ISA.stream = stream_generic;
}

void gemm_init(const char *force) {
  use_generic();
#ifdef AJAR_X86
  __builtin_cpu_init();
  int avx512 = __builtin_cpu_supports("avx512f");
  int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (force && strcmp(force, "generic") == 0) return;
  if (force && strcmp(force, "avx2") == 0) avx512 = 0;
  if (avx512) {
    ISA.isa = "avx512";
    ISA.mr = 12;
    ISA.nr = 32;
    ISA.kernel = kernel_avx512;
    ISA.rows = rows_avx512;
    ISA.dot = dot_avx512;
    ISA.stream = stream_avx512;
  } else if (avx2) {
    ISA.isa = "avx2";
    ISA.mr = 6;
    ISA.nr = 16;
    ISA.kernel = kernel_avx2;
    ISA.rows = rows_avx2;
    ISA.dot = dot_avx2;
    ISA.stream = stream_avx2;
  }
#else
  (void)force;
#endif
}

const char *gemm_isa(void) { return ISA.isa; }

// ---- packing ----

/** Copy n floats of src to dst and zero dst up to `width`. */
static inline void copy_pad(const float *src, int n, int width, float *dst) {
  int i = 0;
  for (; i < n; i++) dst[i] = src[i];
  for (; i < width; i++) dst[i] = 0;
}

// NOTE: where a depth step k is one contiguous row of the source (transposed A, B stored (K, N)), k is the outer
// loop and the strips the inner one, so the source is read front to back once (the hardware prefetcher follows
// it) instead of one narrow strip at a time down the rows.

/** op(A)'s rows [i0, i0 + m) x depth [p0, p0 + kc) into MR-row strips, zero-padded to whole strips. */
static void pack_a(const gemm_args *g, const float *a, int i0, int m, int p0, int kc, float *out) {
  const int MR = ISA.mr;
  if (g->transA) {
    // (i, k) at a[k * lda + i]: each k's values are contiguous.
    for (int k = 0; k < kc; k++) {
      const float *src = a + (int64_t)(p0 + k) * g->lda + i0;
      for (int s = 0; s < m; s += MR) copy_pad(src + s, m - s < MR ? m - s : MR, MR, out + (int64_t)s * kc + k * MR);
    }
    return;
  }
  for (int s = 0; s < m; s += MR) {
    const int rows = m - s < MR ? m - s : MR;
    for (int i = 0; i < MR; i++) {
      if (i < rows) {
        const float *src = a + (int64_t)(i0 + s + i) * g->lda + p0;
        for (int k = 0; k < kc; k++) out[k * MR + i] = src[k];
      } else {
        for (int k = 0; k < kc; k++) out[k * MR + i] = 0;
      }
    }
    out += MR * kc;
  }
}

/** op(B)'s depth [p0, p0 + kc) x columns [j0, j0 + n) into NR-column strips, zero-padded to whole strips. */
static void pack_b(const gemm_args *g, const float *b, int p0, int kc, int j0, int n, float *out) {
  const int NR = ISA.nr;
  if (!g->transB) {
    for (int k = 0; k < kc; k++) {
      const float *src = b + (int64_t)(p0 + k) * g->ldb + j0;
      for (int s = 0; s < n; s += NR) copy_pad(src + s, n - s < NR ? n - s : NR, NR, out + (int64_t)s * kc + k * NR);
    }
    return;
  }
  for (int s = 0; s < n; s += NR) {
    const int cols = n - s < NR ? n - s : NR;
    for (int j = 0; j < NR; j++) {
      if (j < cols) {
        const float *src = b + (int64_t)(j0 + s + j) * g->ldb + p0;
        for (int k = 0; k < kc; k++) out[k * NR + j] = src[k];
      } else {
        for (int k = 0; k < kc; k++) out[k * NR + j] = 0;
      }
    }
    out += NR * kc;
  }
}

// ---- per-thread packing buffers ----

static float **scratch;
static int scratch_threads;
#define SCRATCH_FLOATS ((MC + MR_MAX) * KC + (NC + NR_MAX) * KC)

/** Make sure every pool thread has its packing buffers; returns 0 when memory ran out. */
int gemm_scratch(void) {
  const int n = pool_threads();
  if (scratch_threads >= n) return 1;
  float **grown = realloc(scratch, (size_t)n * sizeof(float *));
  if (!grown) return 0;
  scratch = grown;
  for (int t = scratch_threads; t < n; t++) {
    if (posix_memalign((void **)&scratch[t], 64, SCRATCH_FLOATS * sizeof(float)) != 0) return 0;
    scratch_threads = t + 1;
  }
  return 1;
}

// ---- the tiled product ----

typedef struct {
  const gemm_args *g;
  int mc, nc, mChunks, nChunks;
} tiled_job;

/**
 * C block (m, n) at c (+)= op(A) rows [i0, i0 + m) x depth [p0, p0 + kc) times the packed B strips at bp (kc deep).
 * Row-major A is read in place in whole strips (ISA.rows); the rest of it (a partial strip), and a transposed A
 * (whose packing is a plain copy), are packed into ap.
 */
static void compute_block(const gemm_args *g, const float *a, int i0, int m, int p0, int kc, const float *bp, int n,
                          float *c, float *ap) {
  const int MR = ISA.mr, NR = ISA.nr;
  const int direct = ISA.rows != NULL && !g->transA ? m / MR * MR : 0;
  if (direct < m) pack_a(g, a, i0 + direct, m - direct, p0, kc, ap);
  const int acc = p0 > 0 || g->accumulate;
  for (int js = 0; js < n; js += NR) {
    const int nr = n - js < NR ? n - js : NR;
    for (int is = 0; is < m; is += MR) {
      const int mr = m - is < MR ? m - is : MR;
      float *ct = c + is * g->ldc + js;
      if (is < direct) ISA.rows(kc, a + (int64_t)(i0 + is) * g->lda + p0, g->lda, bp + js * kc, ct, g->ldc, acc, mr, nr);
      else ISA.kernel(kc, ap + (is - direct) * kc, bp + js * kc, ct, g->ldc, acc, mr, nr);
    }
  }
}

/** One (item, row block, column block) of a batched product: packs its own B. */
static void tiled_unit(void *ctx, int unit, int thread) {
  const tiled_job *j = ctx;
  const gemm_args *g = j->g;
  const int per_item = j->mChunks * j->nChunks;
  const int item = unit / per_item;
  const int mb = (unit % per_item) / j->nChunks;
  const int nb = unit % j->nChunks;
  const int i0 = mb * j->mc, j0 = nb * j->nc;
  const int m = g->M - i0 < j->mc ? g->M - i0 : j->mc;
  const int n = g->N - j0 < j->nc ? g->N - j0 : j->nc;
  const float *a = g->a + item * g->aBatch;
  const float *b = g->b + item * g->bBatch;
  float *c = g->c + item * g->cBatch + (int64_t)i0 * g->ldc + j0;
  float *ap = scratch[thread];
  float *bp = ap + (MC + MR_MAX) * KC;
  for (int p0 = 0; p0 < g->K; p0 += KC) {
    const int kc = g->K - p0 < KC ? g->K - p0 : KC;
    pack_b(g, b, p0, kc, j0, n, bp);
    compute_block(g, a, i0, m, p0, kc, bp, n, c, ap);
  }
}

static void run_units(pool_task task, void *ctx, int units, int parallel) {
  if (parallel) {
    pool_run(task, ctx, units);
  } else {
    for (int u = 0; u < units; u++) task(ctx, u, 0);
  }
}

/** Columns of B one shared packing holds (a kc x NCS panel, about L2-sized). */
#define NCS 512

/** B packed once for every row block of one (column panel, depth block) step of a single product. */
static float *shared_b;

typedef struct {
  const gemm_args *g;
  int j0, n, p0, kc;
  int mc, mChunks;       // row blocks
  int sub, subs;         // columns per unit (a multiple of NR) and units per row block
  int packUnits;         // units packing B, NR-strip groups
} shared_job;

static void shared_pack_unit(void *ctx, int unit, int thread) {
  (void)thread;
  const shared_job *j = ctx;
  const int NR = ISA.nr;
  const int strips = (j->n + NR - 1) / NR;
  const int s0 = strips * unit / j->packUnits * NR, s1 = strips * (unit + 1) / j->packUnits * NR;
  const int cols = (s1 < j->n ? s1 : j->n) - s0;
  if (cols > 0) pack_b(j->g, j->g->b, j->p0, j->kc, j->j0 + s0, cols, shared_b + (int64_t)s0 * j->kc);
}

static void shared_compute_unit(void *ctx, int unit, int thread) {
  const shared_job *j = ctx;
  const gemm_args *g = j->g;
  const int i0 = (unit / j->subs) * j->mc, js = (unit % j->subs) * j->sub;
  const int m = g->M - i0 < j->mc ? g->M - i0 : j->mc;
  const int n = j->n - js < j->sub ? j->n - js : j->sub;
  compute_block(g, g->a, i0, m, j->p0, j->kc, shared_b + (int64_t)js * j->kc, n,
                g->c + (int64_t)i0 * g->ldc + j->j0 + js, scratch[thread]);
}

/**
 * A single product in the BLIS loop order: for each column panel and depth block, B is packed once (split across
 * the pool by strips), then row blocks x column slices compute from it, each packing only the A it needs. With
 * per-unit packing, B was packed again for every row block, which cost as much as the product when it was cold.
 */
static int tiled_single(const gemm_args *g, int parallel) {
  if (!shared_b && posix_memalign((void **)&shared_b, 64, (size_t)(NCS + NR_MAX) * KC * sizeof(float)) != 0) {
    shared_b = NULL;
    return 0;
  }
  const int threads = parallel ? pool_threads() : 1;
  const int NR = ISA.nr, MR = ISA.mr;
  for (int j0 = 0; j0 < g->N; j0 += NCS) {
    const int n = g->N - j0 < NCS ? g->N - j0 : NCS;
    const int strips = (n + NR - 1) / NR;
    shared_job j = { .g = g, .j0 = j0, .n = n, .mc = g->M < MC ? g->M : MC, .sub = strips * NR };
    // Aim at a few units per thread: narrower column slices first (they share the packed B), then row blocks.
    const int want = threads > 1 ? threads * 3 : 1;
    for (;;) {
      j.mChunks = (g->M + j.mc - 1) / j.mc;
      j.subs = (n + j.sub - 1) / j.sub;
      if (j.mChunks * j.subs >= want) break;
      if (j.sub > NR) j.sub = ((j.sub / NR + 1) / 2) * NR;
      else if (j.mc > 2 * MR) j.mc = (j.mc / 2 + MR - 1) / MR * MR;
      else break;
    }
    j.packUnits = strips < 2 * threads ? strips : 2 * threads;
    for (int p0 = 0; p0 < g->K; p0 += KC) {
      j.p0 = p0;
      j.kc = g->K - p0 < KC ? g->K - p0 : KC;
      run_units(shared_pack_unit, &j, j.packUnits, parallel);
      run_units(shared_compute_unit, &j, j.mChunks * j.subs, parallel);
    }
  }
  return 1;
}

static void tiled(const gemm_args *g) {
  const int threads = pool_threads();
  const double flops = 2.0 * g->batch * g->M * (double)g->N * g->K;
  const int parallel = threads > 1 && flops >= PARALLEL_FLOPS;
  if (g->batch == 1 && tiled_single(g, parallel)) return;
  int mc = g->M < MC ? g->M : MC;
  int nc = g->N < NC ? g->N : NC;
  if (parallel) {
    // Aim at a few units per thread, shrinking column blocks first (each unit packs its own A and B).
    const int want = threads * 3;
    for (;;) {
      const int units = g->batch * ((g->M + mc - 1) / mc) * ((g->N + nc - 1) / nc);
      if (units >= want) break;
      if (nc > 2 * ISA.nr) nc = (nc / 2 + ISA.nr - 1) / ISA.nr * ISA.nr;
      else if (mc > 2 * ISA.mr) mc = (mc / 2 + ISA.mr - 1) / ISA.mr * ISA.mr;
      else break;
    }
  }
  tiled_job j = { g, mc, nc, (g->M + mc - 1) / mc, (g->N + nc - 1) / nc };
  run_units(tiled_unit, &j, g->batch * j.mChunks * j.nChunks, parallel);
}

// ---- GEMV (M == 1 or N == 1) ----

/** Floats of W from which a single GEMV splits across the pool: it only reads W, once (1 MiB). */
#define PARALLEL_GEMV_FLOATS (1 << 18)
/**
 * Depth blocks of a large streaming GEMV. Fixed by the size alone, never by the thread count, so the partial sums
 * (and their order) are the same on any number of threads.
 */
#define STREAM_SPLIT 2
/** The widest slice of y a streaming unit accumulates (16 KiB: it stays in L1 while W streams past). */
#define STREAM_CHUNK 4096

typedef struct {
  const float *v, *w;
  float *y;
  float *part;  // depth block b > 0 of item 0 writes its partial y at part + (b - 1) * J
  int K, J, chunk, chunks, stream;
  int kb, kblocks;  // depth rows per block, blocks
  int64_t ldw, vBatch, wBatch, yBatch;
} gemv_job;

static void gemv_unit(void *ctx, int unit, int thread) {
  (void)thread;
  const gemv_job *j = ctx;
  const int per_item = j->kblocks * j->chunks;
  const int item = unit / per_item;
  const int b = (unit % per_item) / j->chunks;
  const int j0 = (unit % j->chunks) * j->chunk;
  const int n = j->J - j0 < j->chunk ? j->J - j0 : j->chunk;
  const float *v = j->v + item * j->vBatch;
  const float *w = j->w + item * j->wBatch;
  if (!j->stream) {
    ISA.dot(v, w + j0 * j->ldw, j->y + item * j->yBatch + j0, j->K, n, j->ldw);
    return;
  }
  const int k0 = b * j->kb;
  const int kn = j->K - k0 < j->kb ? j->K - k0 : j->kb;
  float *y = b == 0 ? j->y + item * j->yBatch + j0 : j->part + (int64_t)(b - 1) * j->J + j0;
  ISA.stream(v + k0, w + k0 * j->ldw + j0, y, kn, n, j->ldw);
}

/** Room for a streaming GEMV's partial sums (grown as needed; GEMVs run one at a time, from one thread). */
static float *stream_part;
static int64_t stream_part_floats;

static void gemv(const gemm_args *g) {
  gemv_job j;
  if (g->N == 1) {
    // y (M) = op(A) v, v = op(B)'s single column (contiguous either way).
    j = (gemv_job){ .v = g->b, .w = g->a, .J = g->M, .stream = g->transA, .ldw = g->lda, .vBatch = g->bBatch,
                    .wBatch = g->aBatch };
  } else {
    // y (N) = v op(B), v = op(A)'s single row.
    j = (gemv_job){ .v = g->a, .w = g->b, .J = g->N, .stream = !g->transB, .ldw = g->ldb, .vBatch = g->aBatch,
                    .wBatch = g->bBatch };
  }
  j.y = g->c;
  j.K = g->K;
  j.yBatch = g->cBatch;
  j.kb = j.K;
  j.kblocks = 1;
  const int threads = pool_threads();
  const int large = (double)g->batch * j.J * g->K >= PARALLEL_GEMV_FLOATS;
  // NOTE: a streaming unit reads `chunk` contiguous floats of every row of W it covers. Splitting the columns
  // between threads had each read short runs at a long stride (half of a 768-wide row), which held two threads to
  // about two thirds of the bandwidth a plain read gets; a single large product splits its depth instead, each
  // block of rows one contiguous run of W, and adds the blocks' partial sums after.
  if (j.stream && g->batch == 1 && large && j.K >= 2 * STREAM_SPLIT) {
    const int64_t need = (int64_t)(STREAM_SPLIT - 1) * j.J;
    if (need > stream_part_floats) {
      float *grown = NULL;
      if (posix_memalign((void **)&grown, 64, (size_t)need * sizeof(float)) == 0) {
        free(stream_part);
        stream_part = grown;
        stream_part_floats = need;
      }
    }
    if (need <= stream_part_floats) {
      j.kblocks = STREAM_SPLIT;
      j.kb = (j.K + STREAM_SPLIT - 1) / STREAM_SPLIT;
      j.part = stream_part;
    }
  }
  const int parallel = threads > 1 && large;
  const int want = parallel ? (j.stream ? (threads + j.kblocks - 1) / j.kblocks : threads * 4) : 1;
  int chunk = (j.J + want - 1) / want;
  chunk = (chunk + 31) / 32 * 32;
  if (j.stream && chunk > STREAM_CHUNK) chunk = STREAM_CHUNK;
  j.chunk = chunk;
  j.chunks = (j.J + chunk - 1) / chunk;
  run_units(gemv_unit, &j, g->batch * j.kblocks * j.chunks, parallel);
  for (int b = 1; b < j.kblocks; b++) {
    const float *p = j.part + (int64_t)(b - 1) * j.J;
    for (int x = 0; x < j.J; x++) j.y[x] += p[x];
  }
}

void gemm_serial(const gemm_args *g, int thread) {
  if (g->batch <= 0 || g->M <= 0 || g->N <= 0 || g->K <= 0) return;
  tiled_job j = { g, g->M < MC ? g->M : MC, g->N < NC ? g->N : NC, 0, 0 };
  j.mChunks = (g->M + j.mc - 1) / j.mc;
  j.nChunks = (g->N + j.nc - 1) / j.nc;
  const int units = g->batch * j.mChunks * j.nChunks;
  for (int u = 0; u < units; u++) tiled_unit(&j, u, thread);
}

void gemm(const gemm_args *g) {
  if (g->batch <= 0 || g->M <= 0 || g->N <= 0) return;
  if (g->K == 0) {
    for (int item = 0; item < g->batch; item++) {
      for (int i = 0; i < g->M; i++) memset(g->c + item * g->cBatch + i * g->ldc, 0, (size_t)g->N * sizeof(float));
    }
    return;
  }
  if ((g->M == 1 || g->N == 1) && g->ldc == g->N) {
    gemv(g);
    return;
  }
  if (!gemm_scratch()) {
    // Out of memory for packing buffers: fall back to the plain triple loop.
    for (int item = 0; item < g->batch; item++) {
      for (int i = 0; i < g->M; i++) {
        for (int n = 0; n < g->N; n++) {
          float s = 0;
          for (int k = 0; k < g->K; k++) {
            const float x = g->transA ? g->a[item * g->aBatch + k * g->lda + i] : g->a[item * g->aBatch + i * g->lda + k];
            const float y = g->transB ? g->b[item * g->bBatch + n * g->ldb + k] : g->b[item * g->bBatch + k * g->ldb + n];
            s += x * y;
          }
          g->c[item * g->cBatch + i * g->ldc + n] = s;
        }
      }
    }
    return;
  }
  tiled(g);
}
