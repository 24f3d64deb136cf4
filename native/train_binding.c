// The N-API side of train.h: binary, reduce, softmax, layerNorm, layerNormBackward, geluTanhBackward, adamw and
// sumSquares on the addon's exports (train_register, called from binding.c's module init). Arguments are read by
// one signature-driven parser and every length is checked against the shape, so a bad call throws instead of
// reading or writing out of bounds.
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdarg.h>
#include <stdint.h>

#include "napi_export.h"
#include "train.h"
#include "train_binding.h"

#define DIM_MAX ((int64_t)1 << 31)

/** binary(op, a, b, out, dims): dims = [rank, shape..., a strides..., b strides...] (Int32Array). */
static napi_value binary_js(napi_env env, napi_callback_info info) {
  int64_t op, na, nb, no, nd;
  float *a, *b, *out;
  int32_t *dims;
  if (!read_args(env, info, "ifffI", &op, &a, &na, &b, &nb, &out, &no, &dims, &nd) || op >= BIN_COUNT) {
    return fail(env, "binary(op, a, b, out, dims): wrong argument types");
  }
  const int rank = nd > 0 ? dims[0] : 0;
  if (rank < 1 || rank > BIN_MAX_RANK || nd < 1 + 3 * rank) return fail(env, "binary: dims must hold 1 <= rank <= 8 and 3 rank values");
  int64_t shape[BIN_MAX_RANK], as[BIN_MAX_RANK], bs[BIN_MAX_RANK];
  int64_t total = 1, lastA = 0, lastB = 0;
  for (int d = 0; d < rank; d++) {
    shape[d] = dims[1 + d];
    as[d] = dims[1 + rank + d];
    bs[d] = dims[1 + 2 * rank + d];
    if (shape[d] < 0 || as[d] < 0 || bs[d] < 0) return fail(env, "binary: sizes and strides must be >= 0");
    total *= shape[d];
    if (total > INT64_MAX / DIM_MAX) return fail(env, "binary: too many elements");
    lastA += (shape[d] - 1) * as[d];
    lastB += (shape[d] - 1) * bs[d];
  }
  if (total == 0) return NULL;
  if (total > no || lastA >= na || lastB >= nb) return fail(env, "binary: an operand is shorter than its shape");
  binary_op((int)op, a, as, b, bs, out, shape, rank);
  return NULL;
}

/** reduce(op, x, outer, n, inner, out): op 0 sum, 1 max. */
static napi_value reduce_js(napi_env env, napi_callback_info info) {
  int64_t op, nx, outer, n, inner, no;
  float *x, *out;
  if (!read_args(env, info, "ifiiif", &op, &x, &nx, &outer, &n, &inner, &out, &no) || op > 1) {
    return fail(env, "reduce(op, x, outer, n, inner, out): wrong argument types");
  }
  if ((double)outer * (double)n * (double)inner > (double)nx || outer * inner > no) return fail(env, "reduce: x or out is shorter than its shape");
  reduce_op((int)op, x, outer, n, inner, out);
  return NULL;
}

/** Whether rows x n floats fit in every length given (the rest 0-terminated). */
static int rows_fit(int64_t rows, int64_t n, int64_t len, ...) {
  va_list ap;
  va_start(ap, len);
  int ok = 1;
  for (int64_t l = len; l != 0; l = va_arg(ap, int64_t)) ok = ok && rows * n <= l;
  va_end(ap);
  return ok;
}

/** softmax(x, rows, n, out, log): log 1 for log-softmax. */
static napi_value softmax_js(napi_env env, napi_callback_info info) {
  int64_t nx, rows, n, no, log;
  float *x, *out;
  if (!read_args(env, info, "fiifi", &x, &nx, &rows, &n, &out, &no, &log)) {
    return fail(env, "softmax(x, rows, n, out, log): wrong argument types");
  }
  if (rows * n == 0) return NULL;
  if (!rows_fit(rows, n, nx, no, (int64_t)0)) return fail(env, "softmax: x or out is shorter than its shape");
  if (!softmax_rows(x, rows, n, out, log != 0)) napi_throw_error(env, NULL, "softmax: out of memory");
  return NULL;
}

/** layerNorm(x, rows, n, weight, bias, eps, out, mean, rstd): weight, bias, mean, rstd may be null. */
static napi_value layer_norm_js(napi_env env, napi_callback_info info) {
  int64_t nx, rows, n, nw, nb, no, nm, nr;
  float *x, *w, *b, *out, *mean, *rstd;
  double eps;
  if (!read_args(env, info, "fiioodfoo", &x, &nx, &rows, &n, &w, &nw, &b, &nb, &eps, &out, &no, &mean, &nm, &rstd, &nr)) {
    return fail(env, "layerNorm(x, rows, n, weight, bias, eps, out, mean, rstd): wrong argument types");
  }
  if (rows * n == 0) return NULL;
  if (!rows_fit(rows, n, nx, no, (int64_t)0) || (w && nw < n) || (b && nb < n) || (mean && nm < rows) || (rstd && nr < rows)) {
    return fail(env, "layerNorm: an operand is shorter than its shape");
  }
  layer_norm(x, rows, n, w, b, (float)eps, out, mean, rstd);
  return NULL;
}

/** layerNormBackward(x, g, weight, mean, rstd, rows, n, dx, gxhat): weight and gxhat may be null. */
static napi_value layer_norm_back_js(napi_env env, napi_callback_info info) {
  int64_t nx, ng, nw, nm, nr, rows, n, nd, nh;
  float *x, *g, *w, *mean, *rstd, *dx, *gxhat;
  if (!read_args(env, info, "ffoffiifo", &x, &nx, &g, &ng, &w, &nw, &mean, &nm, &rstd, &nr, &rows, &n, &dx, &nd, &gxhat, &nh)) {
    return fail(env, "layerNormBackward(x, g, weight, mean, rstd, rows, n, dx, gxhat): wrong argument types");
  }
  if (rows * n == 0) return NULL;
  if (!rows_fit(rows, n, nx, ng, nd, (int64_t)0) || (w && nw < n) || nm < rows || nr < rows || (gxhat && nh < rows * n)) {
    return fail(env, "layerNormBackward: an operand is shorter than its shape");
  }
  layer_norm_backward(x, g, w, mean, rstd, rows, n, dx, gxhat);
  return NULL;
}

/** geluTanhBackward(x, g, dx): dx = g * gelu_tanh'(x) over x's length. */
static napi_value gelu_back_js(napi_env env, napi_callback_info info) {
  int64_t nx, ng, nd;
  float *x, *g, *dx;
  if (!read_args(env, info, "fff", &x, &nx, &g, &ng, &dx, &nd)) return fail(env, "geluTanhBackward(x, g, dx): wrong argument types");
  if (ng < nx || nd < nx) return fail(env, "geluTanhBackward: g or dx is shorter than x");
  gelu_tanh_backward(x, g, dx, nx);
  return NULL;
}

/** adamw(w, g, m, v, decay, beta1, beta2, eps, bc2Sqrt, stepSize) over w's length. */
static napi_value adamw_js(napi_env env, napi_callback_info info) {
  int64_t nw, ng, nm, nv;
  float *w, *g, *m, *v;
  double decay;
  adamw_scalars h;
  if (!read_args(env, info, "ffffdddddd", &w, &nw, &g, &ng, &m, &nm, &v, &nv, &decay, &h.beta1, &h.beta2, &h.eps,
                 &h.bc2Sqrt, &h.stepSize)) {
    return fail(env, "adamw(w, g, m, v, decay, beta1, beta2, eps, bc2Sqrt, stepSize): wrong argument types");
  }
  if (ng < nw || nm < nw || nv < nw) return fail(env, "adamw: g, m or v is shorter than w");
  h.decay = (float)decay;
  adamw(w, g, m, v, nw, &h);
  return NULL;
}

/** sumSquares(x) -> number. */
static napi_value sum_squares_js(napi_env env, napi_callback_info info) {
  int64_t nx;
  float *x;
  if (!read_args(env, info, "f", &x, &nx)) return fail(env, "sumSquares(x): x must be a Float32Array");
  napi_value r;
  if (napi_create_double(env, sum_squares(x, nx), &r) != napi_ok) return NULL;
  return r;
}

int train_register(napi_env env, napi_value exports) {
  static const export_fn fns[] = {
    { "binary", binary_js },
    { "reduce", reduce_js },
    { "softmax", softmax_js },
    { "layerNorm", layer_norm_js },
    { "layerNormBackward", layer_norm_back_js },
    { "geluTanhBackward", gelu_back_js },
    { "adamw", adamw_js },
    { "sumSquares", sum_squares_js },
  };
  return export_functions(env, exports, fns, sizeof fns / sizeof fns[0]);
}
