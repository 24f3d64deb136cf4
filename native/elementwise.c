// GELU (tanh form) and its derivative over float32 arrays, in AVX-512, AVX2+FMA and portable C versions
// (target attributes; picked at load). e^x is Cephes' expf polynomial after a Cody-Waite reduction (about one ulp).
// NOTE: both are written with the logistic function, 0.5 (1 + tanh u) = 1 / (1 + e^(-2u)), which keeps full
// relative precision where tanh u is near -1, and gives the reference's values at the edges: gelu(-inf) is
// NaN, gelu(+inf) is +inf, NaN stays NaN, and the derivative is NaN at both infinities (as geluTanhGrad is).
#include "elementwise.h"

#include <string.h>

#include "pool.h"

#define SQRT_2_OVER_PI 0.7978845608028654f
#define GELU_KAPPA 0.044715f
/** Elements per unit of work on the pool. */
#define CHUNK (1 << 14)

/** e^x in float32: +inf past 88.7, NaN for NaN; below -86 it returns e^-86 (~4e-38) instead of underflowing. */
__attribute__((always_inline)) static inline float exp32(float in) {
  float x = in != in ? 0.0f : in; // NaN takes the path of 0 (no undefined float-to-int conversion), then returns NaN
  x = x > 89.0f ? 89.0f : x;
  x = x < -86.0f ? -86.0f : x;
  const float t = x * 1.44269504088896341f;
  const int n = (int)(t + (t >= 0 ? 0.5f : -0.5f));
  const float fn = (float)n;
  float r = x - fn * 0.693359375f;
  r = r + fn * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n as 2 * 2^(n-1), so n = 128 (e^88.7 rounds up to it) still builds a finite power.
  union { uint32_t i; float f; } pow2 = { .i = (uint32_t)(n - 1 + 127) << 23 };
  const float e = p * pow2.f * 2.0f;
  return in != in ? in : e;
}

/** The scalar kernels: the portable build, and the tails of the vector ones. */
static inline float gelu_one(float v) {
  const float u = SQRT_2_OVER_PI * (v + GELU_KAPPA * v * v * v);
  return v / (1.0f + exp32(-2.0f * u));
}

/**
 * Past this u, 0.5 (1 - tanh u) is below 1e-37 and is taken as 0: exp32 clamps e^-2u there, so E s would not
 * shrink with u.
 */
#define GELU_GRAD_U_MAX 43.0f

static inline float gelu_grad_one(float v) {
  const float v2 = v * v > 1e30f ? 1e30f : v * v; // no inf * 0 where |v| > 1e15 (c or s is 0 there)
  const float u = SQRT_2_OVER_PI * (v + GELU_KAPPA * v2 * v);
  const float e = exp32(-2.0f * u);
  const float s = 1.0f / (1.0f + e); // 0.5 (1 + tanh u)
  // NOTE: 0.5 (1 - tanh u) = e / (1 + e) = e s, which saves a second exponential and division. Where e is
  // +inf (u below -44), e s is NaN and the true value is 1.
  const float es = e * s;
  const float c = u > GELU_GRAD_U_MAX ? 0.0f : es != es ? 1.0f : es;
  return s + 2.0f * v * s * c * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_KAPPA * v2);
}

static void exp_generic(const float *x, float *out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = exp32(x[i]);
}

static void gelu_tanh_generic(const float *x, float *out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = gelu_one(x[i]);
}

static void gelu_tanh_grad_generic(const float *x, float *out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = gelu_grad_one(x[i]);
}

static void gelu_tanh_back_generic(const float *x, const float *g, float *dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) dx[i] = g[i] * gelu_grad_one(x[i]);
}

// NOTE: the vector versions are intrinsics because GCC keeps exp32's clamps as branches under target
// attributes, which stops it vectorising the loops. Same steps as exp32, the power of two by scalef (AVX-512)
// or by building 2^(n-1) in the exponent bits (AVX2).
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define VEC_BODIES(SUFFIX, TARGET, V, W, EXP)                                                             \
  TARGET static void exp_##SUFFIX(const float *x, float *out, int64_t n) {                             \
    int64_t i = 0;                                                                                     \
    for (; i + W <= n; i += W) STORE(out + i, EXP(LOAD(x + i)));                                      \
    for (; i < n; i++) out[i] = exp32(x[i]);                                                           \
  }                                                                                                    \
  TARGET static void gelu_tanh_##SUFFIX(const float *x, float *out, int64_t n) {                       \
    int64_t i = 0;                                                                                     \
    for (; i + W <= n; i += W) {                                                                       \
      const V v = LOAD(x + i);                                                                         \
      const V u = MUL(SET(SQRT_2_OVER_PI), FMA(MUL(SET(GELU_KAPPA), MUL(v, v)), v, v));                \
      STORE(out + i, DIV(v, ADD(SET(1.0f), EXP(MUL(SET(-2.0f), u)))));                                 \
    }                                                                                                  \
    for (; i < n; i++) out[i] = gelu_one(x[i]);                                                        \
  }                                                                                                    \
  TARGET static inline V gelu_grad_##SUFFIX(V v) {                                                   \
    const V v2 = MIN(MUL(v, v), SET(1e30f));                                                         \
    const V u = MUL(SET(SQRT_2_OVER_PI), FMA(MUL(SET(GELU_KAPPA), v2), v, v));                       \
    const V e = EXP(MUL(SET(-2.0f), u));                                                             \
    const V s = DIV(SET(1.0f), ADD(SET(1.0f), e));                                                   \
    /* MIN gives its second operand where the first is NaN (e = +inf): c = 1 there, as gelu_grad_one */ \
    const V c = ZERO_ABOVE(MIN(MUL(e, s), SET(1.0f)), u, SET(GELU_GRAD_U_MAX));                      \
    const V d = MUL(MUL(MUL(MUL(SET(2.0f), v), s), c),                                               \
                    MUL(SET(SQRT_2_OVER_PI), FMA(SET(3.0f * GELU_KAPPA), v2, SET(1.0f))));           \
    return ADD(s, d);                                                                                \
  }                                                                                                  \
  TARGET static void gelu_tanh_grad_##SUFFIX(const float *x, float *out, int64_t n) {                  \
    int64_t i = 0;                                                                                     \
    for (; i + W <= n; i += W) STORE(out + i, gelu_grad_##SUFFIX(LOAD(x + i)));                        \
    for (; i < n; i++) out[i] = gelu_grad_one(x[i]);                                                   \
  }                                                                                                    \
  TARGET static void gelu_tanh_back_##SUFFIX(const float *x, const float *g, float *dx, int64_t n) {   \
    int64_t i = 0;                                                                                     \
    for (; i + W <= n; i += W) STORE(dx + i, MUL(LOAD(g + i), gelu_grad_##SUFFIX(LOAD(x + i))));       \
    for (; i < n; i++) dx[i] = g[i] * gelu_grad_one(x[i]);                                             \
  }

/** exp32's reduction and polynomial on vectors (V, SET, FMA... name the type and intrinsics): p = e^r. */
#define EXP_POLY(x, fn, p)                                 \
  {                                                        \
    V r = FNMA(fn, SET(0.693359375f), x);                  \
    r = FMA(fn, SET(2.12194440e-4f), r);                   \
    p = SET(1.9875691500e-4f);                             \
    p = FMA(p, r, SET(1.3981999507e-3f));                  \
    p = FMA(p, r, SET(8.3334519073e-3f));                  \
    p = FMA(p, r, SET(4.1665795894e-2f));                  \
    p = FMA(p, r, SET(1.6666665459e-1f));                  \
    p = FMA(p, r, SET(5.0000001201e-1f));                  \
    p = FMA(p, MUL(r, r), ADD(r, SET(1.0f)));              \
  }

#define V __m512
#define LOAD _mm512_loadu_ps
#define STORE _mm512_storeu_ps
#define SET _mm512_set1_ps
#define MUL _mm512_mul_ps
#define ADD _mm512_add_ps
#define DIV _mm512_div_ps
#define MIN _mm512_min_ps
#define FMA _mm512_fmadd_ps
#define FNMA _mm512_fnmadd_ps
/** x where u <= max, else 0. */
#define ZERO_ABOVE(x, u, max) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(u, max, _CMP_LE_OQ), x)

/** exp32 on 16 lanes. */
__attribute__((target("avx512f"))) static inline __m512 exp512(__m512 in) {
  const __mmask16 nan = _mm512_cmp_ps_mask(in, in, _CMP_UNORD_Q);
  __m512 x = _mm512_mask_mov_ps(in, nan, _mm512_setzero_ps());
  x = _mm512_max_ps(_mm512_min_ps(x, SET(89.0f)), SET(-86.0f));
  const __m512 fn = _mm512_roundscale_ps(MUL(x, SET(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 p;
  EXP_POLY(x, fn, p)
  return _mm512_mask_mov_ps(_mm512_scalef_ps(p, fn), nan, in);
}

VEC_BODIES(avx512, __attribute__((target("avx512f"))), __m512, 16, exp512)
#undef V
#undef LOAD
#undef STORE
#undef SET
#undef MUL
#undef ADD
#undef DIV
#undef MIN
#undef FMA
#undef FNMA
#undef ZERO_ABOVE
#define V __m256
#define LOAD _mm256_loadu_ps
#define STORE _mm256_storeu_ps
#define SET _mm256_set1_ps
#define MUL _mm256_mul_ps
#define ADD _mm256_add_ps
#define DIV _mm256_div_ps
#define MIN _mm256_min_ps
#define FMA _mm256_fmadd_ps
#define FNMA _mm256_fnmadd_ps
#define ZERO_ABOVE(x, u, max) _mm256_and_ps(_mm256_cmp_ps(u, max, _CMP_LE_OQ), x)

/** exp32 on 8 lanes. */
__attribute__((target("avx2,fma"))) static inline __m256 exp256(__m256 in) {
  const __m256 nan = _mm256_cmp_ps(in, in, _CMP_UNORD_Q);
  __m256 x = _mm256_blendv_ps(in, _mm256_setzero_ps(), nan);
  x = _mm256_max_ps(_mm256_min_ps(x, SET(89.0f)), SET(-86.0f));
  const __m256 fn = _mm256_round_ps(MUL(x, SET(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 p;
  EXP_POLY(x, fn, p)
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fn), _mm256_set1_epi32(126)), 23);
  return _mm256_blendv_ps(MUL(MUL(p, _mm256_castsi256_ps(bits)), SET(2.0f)), in, nan);
}

VEC_BODIES(avx2, __attribute__((target("avx2,fma"))), __m256, 8, exp256)
#endif

typedef void (*unary_kernel)(const float *x, float *out, int64_t n);
typedef void (*backward_kernel)(const float *x, const float *g, float *dx, int64_t n);

static unary_kernel KERNELS[UNARY_COUNT] = { gelu_tanh_generic, gelu_tanh_grad_generic };
static unary_kernel EXP = exp_generic;
static backward_kernel GELU_BACK = gelu_tanh_back_generic;

void exp_array(const float *x, float *out, int n) { EXP(x, out, n); }

void gelu_tanh_backward_serial(const float *x, const float *g, float *dx, int64_t n) {
  if (n > 0) GELU_BACK(x, g, dx, n);
}

void elementwise_init(const char *isa) {
  KERNELS[0] = gelu_tanh_generic;
  KERNELS[1] = gelu_tanh_grad_generic;
  EXP = exp_generic;
  GELU_BACK = gelu_tanh_back_generic;
#if defined(__x86_64__) || defined(__i386__)
  if (strcmp(isa, "avx512") == 0) {
    KERNELS[0] = gelu_tanh_avx512;
    KERNELS[1] = gelu_tanh_grad_avx512;
    EXP = exp_avx512;
    GELU_BACK = gelu_tanh_back_avx512;
  } else if (strcmp(isa, "avx2") == 0) {
    KERNELS[0] = gelu_tanh_avx2;
    KERNELS[1] = gelu_tanh_grad_avx2;
    EXP = exp_avx2;
    GELU_BACK = gelu_tanh_back_avx2;
  }
#endif
}

typedef struct {
  unary_kernel k;
  const float *x;
  float *out;
  int64_t n;
} unary_job;

static void unary_unit(void *ctx, int unit, int thread) {
  (void)thread;
  const unary_job *j = ctx;
  const int64_t i0 = (int64_t)unit * CHUNK;
  const int64_t len = j->n - i0 < CHUNK ? j->n - i0 : CHUNK;
  j->k(j->x + i0, j->out + i0, len);
}

void unary(int op, const float *x, float *out, int64_t n) {
  if (n <= 0 || op < 0 || op >= UNARY_COUNT) return;
  unary_job j = { KERNELS[op], x, out, n };
  pool_run(unary_unit, &j, (int)((n + CHUNK - 1) / CHUNK));
}

void unary_serial(int op, const float *x, float *out, int64_t n) {
  if (n > 0 && op >= 0 && op < UNARY_COUNT) KERNELS[op](x, out, n);
}
