// ajar's N-API addon: the native kernels called synchronously on Node's main thread over Float32Array views
// (napi_get_typedarray_info: no copies; plain and shared buffers alike), the C pool doing the threading.
// Exports: init(threads, isa?) -> { isa, threads }, matmul(a, b, out, batch, M, K, N, transA, transB,
// aBatchStride, bBatchStride), unary(op, x, out) with op an elementwise.h code, attention, attentionBackward and
// groupedAttentionDecode (FusedKernels' groupedAttention signature, for a few query rows), matmulQ8 (q8.h),
// adviseHugePages; train_binding.c and llama_binding.c add theirs. Arguments are checked here, so a bad call throws
// instead of reading out of bounds.
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "attention.h"
#include "elementwise.h"
#include "gemm.h"
#include "napi_export.h"
#include "pool.h"
#include "llama_binding.h"
#include "train_binding.h"
#include "q8.h"

#define CHECK(call)                                  \
  do {                                               \
    if ((call) != napi_ok) return throw_last(env);   \
  } while (0)

static napi_value throw_last(napi_env env) {
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, NULL, info && info->error_message ? info->error_message : "N-API call failed");
  return NULL;
}

/** A Float32Array argument's data and length; 0 on a wrong type. */
static int f32_view(napi_env env, napi_value v, float **data, size_t *len) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type type;
  void *p = NULL;
  if (napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) != napi_ok || type != napi_float32_array) return 0;
  *data = p;
  return 1;
}

static int get_i64(napi_env env, napi_value v, int64_t *out) {
  return napi_get_value_int64(env, v, out) == napi_ok;
}

static napi_value init(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t threads = 1;
  if (argc < 1 || !get_i64(env, argv[0], &threads) || threads < 1 || threads > 256) {
    return fail(env, "init(threads, isa?): threads must be an integer in [1, 256]");
  }
  char isa[16] = {0};
  size_t isaLen = 0;
  napi_valuetype t = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &t);
  if (t == napi_string) CHECK(napi_get_value_string_utf8(env, argv[1], isa, sizeof isa, &isaLen));
  gemm_init(isaLen ? isa : NULL);
  elementwise_init(gemm_isa());
  const int n = pool_init((int)threads);
  napi_value obj, vIsa, vThreads;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_create_string_utf8(env, gemm_isa(), NAPI_AUTO_LENGTH, &vIsa));
  CHECK(napi_create_int32(env, n, &vThreads));
  CHECK(napi_set_named_property(env, obj, "isa", vIsa));
  CHECK(napi_set_named_property(env, obj, "threads", vThreads));
  return obj;
}

static napi_value matmul(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 11) return fail(env, "matmul: expected 11 arguments");
  float *a, *b, *c;
  size_t na, nb, nc;
  if (!f32_view(env, argv[0], &a, &na) || !f32_view(env, argv[1], &b, &nb) || !f32_view(env, argv[2], &c, &nc)) {
    return fail(env, "matmul: a, b and out must be Float32Arrays");
  }
  int64_t d[8];
  for (int i = 0; i < 4; i++) {
    if (!get_i64(env, argv[3 + i], &d[i]) || d[i] < 0 || d[i] > INT32_MAX) {
      return fail(env, "matmul: batch, M, K, N must be integers in [0, 2^31)");
    }
  }
  bool transA = false, transB = false;
  CHECK(napi_get_value_bool(env, argv[7], &transA));
  CHECK(napi_get_value_bool(env, argv[8], &transB));
  int64_t aBatch, bBatch;
  if (!get_i64(env, argv[9], &aBatch) || !get_i64(env, argv[10], &bBatch) || aBatch < 0 || bBatch < 0) {
    return fail(env, "matmul: batch strides must be integers >= 0");
  }
  const int64_t batch = d[0], M = d[1], K = d[2], N = d[3];
  if (batch * M * N == 0) return NULL;
  // The last element each operand's last item reads must lie inside it.
  if ((batch - 1) * aBatch + M * K > (int64_t)na || (batch - 1) * bBatch + K * N > (int64_t)nb ||
      batch * M * N > (int64_t)nc) {
    return fail(env, "matmul: an operand is shorter than its shape");
  }
  gemm_args g = {
    .a = a, .b = b, .c = c, .batch = (int)batch, .M = (int)M, .K = (int)K, .N = (int)N,
    .transA = transA, .transB = transB, .lda = transA ? M : K, .ldb = transB ? K : N, .ldc = N,
    .aBatch = aBatch, .bBatch = bBatch, .cBatch = M * N,
  };
  gemm(&g);
  return NULL;
}

static napi_value unary_op(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t op;
  if (argc < 3 || !get_i64(env, argv[0], &op) || op < 0 || op >= UNARY_COUNT) return fail(env, "unary: unknown op code");
  float *x, *out;
  size_t nx, nout;
  if (!f32_view(env, argv[1], &x, &nx) || !f32_view(env, argv[2], &out, &nout)) {
    return fail(env, "unary: x and out must be Float32Arrays");
  }
  if (nout < nx) return fail(env, "unary: out is shorter than x");
  unary((int)op, x, out, (int64_t)nx);
  return NULL;
}

/** Integer arguments argv[from..from+n) into out, each in [lo, 2^31); 0 on a wrong one. */
static int get_ints(napi_env env, napi_value *argv, int from, int n, int64_t lo, int64_t *out) {
  for (int i = 0; i < n; i++) {
    if (!get_i64(env, argv[from + i], &out[i]) || out[i] < lo || out[i] > INT32_MAX) return 0;
  }
  return 1;
}

/** The shape checks both attention calls share; NULL when fine, else the message. */
static const char *attention_shape(const int64_t *d, size_t nqkv) {
  const int64_t B = d[0], T = d[1], C = d[2], H = d[3];
  if (H < 1 || C % H != 0) return "attention: C must be a multiple of H >= 1";
  if ((int64_t)nqkv < B * T * 3 * C) return "attention: qkv is shorter than (B, T, 3C)";
  return NULL;
}

/** attention(qkv, B, T, C, H, scale, y, p) */
static napi_value attention(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *qkv, *y, *p;
  size_t nq, ny, np;
  int64_t d[4];
  double scale;
  if (argc < 8 || !f32_view(env, argv[0], &qkv, &nq) || !get_ints(env, argv, 1, 4, 0, d) ||
      napi_get_value_double(env, argv[5], &scale) != napi_ok || !f32_view(env, argv[6], &y, &ny) ||
      !f32_view(env, argv[7], &p, &np)) {
    return fail(env, "attention(qkv, B, T, C, H, scale, y, p): wrong argument types");
  }
  const char *bad = attention_shape(d, nq);
  if (bad) return fail(env, bad);
  if ((int64_t)ny < d[0] * d[1] * d[2] || (int64_t)np < d[0] * d[3] * d[1] * d[1]) {
    return fail(env, "attention: y or p is shorter than its shape");
  }
  if (d[0] * d[1] == 0) return NULL;
  if (!attention_forward(qkv, (int)d[0], (int)d[1], (int)d[2], (int)d[3], (float)scale, y, p)) {
    napi_throw_error(env, NULL, "attention: out of memory");
  }
  return NULL;
}

/** attentionBackward(dy, qkv, p, B, T, C, H, scale, dqkv) */
static napi_value attention_back(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *dy, *qkv, *p, *dqkv;
  size_t ndy, nq, np, nd;
  int64_t d[4];
  double scale;
  if (argc < 9 || !f32_view(env, argv[0], &dy, &ndy) || !f32_view(env, argv[1], &qkv, &nq) ||
      !f32_view(env, argv[2], &p, &np) || !get_ints(env, argv, 3, 4, 0, d) ||
      napi_get_value_double(env, argv[7], &scale) != napi_ok || !f32_view(env, argv[8], &dqkv, &nd)) {
    return fail(env, "attentionBackward(dy, qkv, p, B, T, C, H, scale, dqkv): wrong argument types");
  }
  const char *bad = attention_shape(d, nq);
  if (bad) return fail(env, bad);
  if ((int64_t)ndy < d[0] * d[1] * d[2] || (int64_t)np < d[0] * d[3] * d[1] * d[1] || (int64_t)nd < d[0] * d[1] * 3 * d[2]) {
    return fail(env, "attentionBackward: dy, p or dqkv is shorter than its shape");
  }
  if (d[0] * d[1] == 0) return NULL;
  if (!attention_backward(dy, qkv, p, (int)d[0], (int)d[1], (int)d[2], (int)d[3], (float)scale, dqkv)) {
    napi_throw_error(env, NULL, "attentionBackward: out of memory");
  }
  return NULL;
}

/** groupedAttention(q, k, v, B, Tq, Tk, Hq, Hkv, hs, scale, window, y, p) */
static napi_value grouped_attention(napi_env env, napi_callback_info info) {
  size_t argc = 13;
  napi_value argv[13];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *q, *k, *v, *y, *p;
  size_t nq, nk, nv, ny, np;
  int64_t d[6], window;
  double scale;
  if (argc < 13 || !f32_view(env, argv[0], &q, &nq) || !f32_view(env, argv[1], &k, &nk) ||
      !f32_view(env, argv[2], &v, &nv) || !get_ints(env, argv, 3, 6, 0, d) ||
      napi_get_value_double(env, argv[9], &scale) != napi_ok || !get_ints(env, argv, 10, 1, 0, &window) ||
      !f32_view(env, argv[11], &y, &ny) || !f32_view(env, argv[12], &p, &np)) {
    return fail(env, "groupedAttention(q, k, v, B, Tq, Tk, Hq, Hkv, hs, scale, window, y, p): wrong argument types");
  }
  const int64_t B = d[0], Tq = d[1], Tk = d[2], Hq = d[3], Hkv = d[4], hs = d[5];
  if (Hkv < 1 || Hq % Hkv != 0) return fail(env, "groupedAttention: Hq must be a multiple of Hkv >= 1");
  if (Tk < Tq) return fail(env, "groupedAttention: Tk must be >= Tq");
  if ((int64_t)nq < B * Tq * Hq * hs || (int64_t)nk < B * Tk * Hkv * hs || (int64_t)nv < B * Tk * Hkv * hs ||
      (int64_t)ny < B * Tq * Hq * hs || (int64_t)np < B * Hq * Tq * Tk) {
    return fail(env, "groupedAttention: an operand is shorter than its shape");
  }
  if (B * Tq * Hq * hs == 0) return NULL;
  grouped_attention_forward(q, k, v, (int)B, (int)Tq, (int)Tk, (int)Hq, (int)Hkv, (int)hs, (float)scale, (int)window,
                            y, p);
  return NULL;
}

/** A typed array argument's data and length when it has `want`'s element type; 0 otherwise. */
static int typed_view(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type type;
  if (napi_get_typedarray_info(env, v, &type, len, data, NULL, NULL) != napi_ok || type != want) return 0;
  return 1;
}

/** matmulQ8(x, q, scales, bias | null, M, K, N, group, out): out (M, N) = x (M, K) W^T + bias (native/q8.h). */
static napi_value matmul_q8(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *x, *q, *s, *bias = NULL, *out;
  size_t nx, nq, ns, nb = 0, nout;
  int64_t d[4];
  napi_valuetype bt = napi_null;
  if (argc >= 4) napi_typeof(env, argv[3], &bt);
  if (argc < 9 || !typed_view(env, argv[0], napi_float32_array, &x, &nx) ||
      !typed_view(env, argv[1], napi_int8_array, &q, &nq) || !typed_view(env, argv[2], napi_float32_array, &s, &ns) ||
      (bt != napi_null && !typed_view(env, argv[3], napi_float32_array, &bias, &nb)) || !get_ints(env, argv, 4, 4, 0, d) ||
      !typed_view(env, argv[8], napi_float32_array, &out, &nout)) {
    return fail(env, "matmulQ8(x: Float32Array, q: Int8Array, scales: Float32Array, bias: Float32Array | null, M, K, N, group, out: Float32Array): wrong argument types");
  }
  const int64_t M = d[0], K = d[1], N = d[2], group = d[3];
  if (group < 16 || group % 16 != 0 || K % group != 0) return fail(env, "matmulQ8: group must be a multiple of 16 that divides K");
  if ((int64_t)nx < M * K || (int64_t)nq < N * K || (int64_t)ns < N * (K / group) || (int64_t)nout < M * N ||
      (bias && (int64_t)nb < N)) {
    return fail(env, "matmulQ8: an operand is shorter than its shape");
  }
  if (!q8_matmul(x, q, s, bias, (int)M, (int)K, (int)N, (int)group, out)) napi_throw_error(env, NULL, "matmulQ8: out of memory");
  return NULL;
}

/**
 * The extent of the mapping that holds address p: the mapping itself and the reserved (inaccessible) mapping
 * right after it, where a growing memory (a WebAssembly.Memory) extends into. 0 when /proc/self/maps has none.
 */
static int mapping_extent(uintptr_t p, uintptr_t *start, uintptr_t *end) {
#if defined(__linux__)
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return 0;
  char line[512];
  int found = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    char perms[8] = {0};
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3) continue;
    if (!found && p >= lo && p < hi) {
      *start = lo;
      *end = hi;
      found = 1;
    } else if (found) {
      if (lo == *end && strncmp(perms, "---", 3) == 0) *end = hi;
      break;
    }
  }
  fclose(f);
  return found;
#else
  (void)p;
  (void)start;
  (void)end;
  return 0;
#endif
}

/**
 * adviseHugePages(view): ask the kernel for transparent huge pages over the memory that holds the Float32Array
 * `view` (its whole mapping, and the reserve it grows into). Returns the bytes advised (0 where unsupported).
 */
static napi_value advise_huge_pages(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  float *data;
  size_t n;
  if (argc < 1 || !f32_view(env, argv[0], &data, &n)) return fail(env, "adviseHugePages(view: Float32Array): wrong argument");
  double advised = 0;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  uintptr_t start, end;
  if (mapping_extent((uintptr_t)data, &start, &end)) {
    const uintptr_t huge = (uintptr_t)2 << 20;
    start = (start + huge - 1) & ~(huge - 1);
    end &= ~(huge - 1);
    if (end > start && madvise((void *)start, end - start, MADV_HUGEPAGE) == 0) advised = (double)(end - start);
  }
#endif
  napi_value out;
  CHECK(napi_create_double(env, advised, &out));
  return out;
}

static napi_value module_init(napi_env env, napi_value exports) {
  gemm_init(NULL);
  elementwise_init(gemm_isa());
  static const export_fn fns[] = {
    { "init", init },
    { "matmul", matmul },
    { "unary", unary_op },
    { "attention", attention },
    { "attentionBackward", attention_back },
    { "groupedAttentionDecode", grouped_attention },
    { "matmulQ8", matmul_q8 },
    { "adviseHugePages", advise_huge_pages },
  };
  if (!export_functions(env, exports, fns, sizeof fns / sizeof fns[0])) return NULL;
  if (!train_register(env, exports)) return NULL;
  if (!llama_register(env, exports)) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, module_init)
