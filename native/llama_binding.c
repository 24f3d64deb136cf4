// The N-API side of llama.h: rmsNorm, rmsNormBackward, rope, siluMul, siluMulBackward, groupedAttention and
// groupedAttentionBackward on the addon's exports (llama_register, called from binding.c's module init), with
// FusedKernels' signatures (rope's inverse as a number: 0 or 1). Every length is checked against the shape, so a
// bad call throws instead of reading or writing out of bounds.
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>

#include "llama.h"
#include "llama_binding.h"
#include "napi_export.h"

#define DIM_MAX ((int64_t)1 << 31)

/** rmsNorm(x, rows, n, weight, eps, out, rstd): weight and rstd may be null. */
static napi_value rms_norm_js(napi_env env, napi_callback_info info) {
  int64_t nx, rows, n, nw, no, nr;
  float *x, *w, *out, *rstd;
  double eps;
  if (!read_args(env, info, "fiiodfo", &x, &nx, &rows, &n, &w, &nw, &eps, &out, &no, &rstd, &nr)) {
    return fail(env, "rmsNorm(x, rows, n, weight, eps, out, rstd): wrong argument types");
  }
  if (rows * n == 0) return NULL;
  if (nx < rows * n || no < rows * n || (w && nw < n) || (rstd && nr < rows)) {
    return fail(env, "rmsNorm: an operand is shorter than its shape");
  }
  rms_norm(x, rows, n, w, (float)eps, out, rstd);
  return NULL;
}

/** rmsNormBackward(x, g, weight, rstd, rows, n, dx, gxhat): weight and gxhat may be null. */
static napi_value rms_norm_back_js(napi_env env, napi_callback_info info) {
  int64_t nx, ng, nw, nr, rows, n, nd, nh;
  float *x, *g, *w, *rstd, *dx, *gxhat;
  if (!read_args(env, info, "ffofiifo", &x, &nx, &g, &ng, &w, &nw, &rstd, &nr, &rows, &n, &dx, &nd, &gxhat, &nh)) {
    return fail(env, "rmsNormBackward(x, g, weight, rstd, rows, n, dx, gxhat): wrong argument types");
  }
  if (rows * n == 0) return NULL;
  if (nx < rows * n || ng < rows * n || nd < rows * n || (w && nw < n) || nr < rows || (gxhat && nh < rows * n)) {
    return fail(env, "rmsNormBackward: an operand is shorter than its shape");
  }
  rms_norm_backward(x, g, w, rstd, rows, n, dx, gxhat);
  return NULL;
}

/** rope(x, B, T, H, hs, cos, sin, out, inverse): inverse 0 or 1. */
static napi_value rope_js(napi_env env, napi_callback_info info) {
  int64_t nx, B, T, H, hs, nc, ns, no, inverse;
  float *x, *c, *s, *out;
  if (!read_args(env, info, "fiiiifffi", &x, &nx, &B, &T, &H, &hs, &c, &nc, &s, &ns, &out, &no, &inverse)) {
    return fail(env, "rope(x, B, T, H, hs, cos, sin, out, inverse): wrong argument types");
  }
  if (B * T * H * hs == 0) return NULL;
  if (hs % 2 != 0) return fail(env, "rope: hs must be even");
  const double n = (double)B * T * H * hs, half = (double)T * (hs / 2);
  if ((double)nx < n || (double)no < n || (double)nc < half || (double)ns < half) {
    return fail(env, "rope: an operand is shorter than its shape");
  }
  rope(x, B, T, H, hs, c, s, out, inverse != 0);
  return NULL;
}

/** siluMul(gate, up, out, sig): sig may be null; over out's length. */
static napi_value silu_mul_js(napi_env env, napi_callback_info info) {
  int64_t ng, nu, no, ns;
  float *gate, *up, *out, *sig;
  if (!read_args(env, info, "fffo", &gate, &ng, &up, &nu, &out, &no, &sig, &ns)) {
    return fail(env, "siluMul(gate, up, out, sig): wrong argument types");
  }
  if (ng < no || nu < no || (sig && ns < no)) return fail(env, "siluMul: gate, up or sig is shorter than out");
  silu_mul(gate, up, out, sig, no);
  return NULL;
}

/** siluMulBackward(g, gate, up, sig, dgate, dup): dgate and dup may be null; over g's length. */
static napi_value silu_mul_back_js(napi_env env, napi_callback_info info) {
  int64_t ng, nx, nu, ns, ndg, ndu;
  float *g, *gate, *up, *sig, *dgate, *dup;
  if (!read_args(env, info, "ffffoo", &g, &ng, &gate, &nx, &up, &nu, &sig, &ns, &dgate, &ndg, &dup, &ndu)) {
    return fail(env, "siluMulBackward(g, gate, up, sig, dgate, dup): wrong argument types");
  }
  if (nx < ng || nu < ng || ns < ng || (dgate && ndg < ng) || (dup && ndu < ng)) {
    return fail(env, "siluMulBackward: an operand is shorter than g");
  }
  silu_mul_backward(g, gate, up, sig, dgate, dup, ng);
  return NULL;
}

/** The shape checks both grouped attention calls share; NULL when fine, else the message. */
static const char *grouped_shape(int64_t B, int64_t Tq, int64_t Tk, int64_t Hq, int64_t Hkv, int64_t hs, int64_t nq,
                                 int64_t nk, int64_t nv, int64_t np) {
  if (Hkv < 1 || Hq % Hkv != 0) return "groupedAttention: Hq must be a multiple of Hkv >= 1";
  if (Tk < Tq) return "groupedAttention: Tk must be >= Tq";
  if ((double)B * Tq * Hq * hs > (double)nq) return "groupedAttention: q (or dy) is shorter than (B, Tq, Hq * hs)";
  if ((double)B * Tk * Hkv * hs > (double)nk || (double)B * Tk * Hkv * hs > (double)nv) {
    return "groupedAttention: k or v is shorter than (B, Tk, Hkv * hs)";
  }
  if ((double)B * Hq * Tq * Tk > (double)np) return "groupedAttention: p is shorter than (B, Hq, Tq, Tk)";
  return NULL;
}

/** groupedAttention(q, k, v, B, Tq, Tk, Hq, Hkv, hs, scale, window, y, p) */
static napi_value grouped_js(napi_env env, napi_callback_info info) {
  int64_t nq, nk, nv, B, Tq, Tk, Hq, Hkv, hs, window, ny, np;
  float *q, *k, *v, *y, *p;
  double scale;
  if (!read_args(env, info, "fffiiiiiidiff", &q, &nq, &k, &nk, &v, &nv, &B, &Tq, &Tk, &Hq, &Hkv, &hs, &scale, &window,
                 &y, &ny, &p, &np)) {
    return fail(env, "groupedAttention(q, k, v, B, Tq, Tk, Hq, Hkv, hs, scale, window, y, p): wrong argument types");
  }
  if (B * Tq * Hq * hs == 0) return NULL;
  const char *bad = grouped_shape(B, Tq, Tk, Hq, Hkv, hs, nq < ny ? nq : ny, nk, nv, np);
  if (bad) return fail(env, bad);
  if (!grouped_attention(q, k, v, (int)B, (int)Tq, (int)Tk, (int)Hq, (int)Hkv, (int)hs, (float)scale, (int)window, y, p)) {
    napi_throw_error(env, NULL, "groupedAttention: out of memory");
  }
  return NULL;
}

/** groupedAttentionBackward(dy, q, k, v, p, B, Tq, Tk, Hq, Hkv, hs, scale, dq, dk, dv) */
static napi_value grouped_back_js(napi_env env, napi_callback_info info) {
  int64_t ndy, nq, nk, nv, np, B, Tq, Tk, Hq, Hkv, hs, ndq, ndk, ndv;
  float *dy, *q, *k, *v, *p, *dq, *dk, *dv;
  double scale;
  if (!read_args(env, info, "fffffiiiiiidfff", &dy, &ndy, &q, &nq, &k, &nk, &v, &nv, &p, &np, &B, &Tq, &Tk, &Hq, &Hkv,
                 &hs, &scale, &dq, &ndq, &dk, &ndk, &dv, &ndv)) {
    return fail(env, "groupedAttentionBackward(dy, q, k, v, p, B, Tq, Tk, Hq, Hkv, hs, scale, dq, dk, dv): wrong argument types");
  }
  if (B * Tq * Hq * hs == 0) return NULL;
  int64_t nqs = nq < ndy ? nq : ndy;
  if (ndq < nqs) nqs = ndq;
  const char *bad = grouped_shape(B, Tq, Tk, Hq, Hkv, hs, nqs, nk < ndk ? nk : ndk, nv < ndv ? nv : ndv, np);
  if (bad) return fail(env, bad);
  if (!grouped_attention_backward(dy, q, k, v, p, (int)B, (int)Tq, (int)Tk, (int)Hq, (int)Hkv, (int)hs, (float)scale, dq,
                                  dk, dv)) {
    napi_throw_error(env, NULL, "groupedAttentionBackward: out of memory");
  }
  return NULL;
}

int llama_register(napi_env env, napi_value exports) {
  static const export_fn fns[] = {
    { "rmsNorm", rms_norm_js },
    { "rmsNormBackward", rms_norm_back_js },
    { "rope", rope_js },
    { "siluMul", silu_mul_js },
    { "siluMulBackward", silu_mul_back_js },
    { "groupedAttention", grouped_js },
    { "groupedAttentionBackward", grouped_back_js },
  };
  return export_functions(env, exports, fns, sizeof fns / sizeof fns[0]);
}
