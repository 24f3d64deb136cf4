// ajar's N-API addon: the native kernels called synchronously on Node's main thread over Float32Array views
// (napi_get_typedarray_info: no copies; plain and shared buffers alike), the C pool doing the threading.
// Exports: init(threads, isa?) -> { isa, threads }, matmul(a, b, out, batch, M, K, N, transA, transB,
// aBatchStride, bBatchStride), unary(op, x, out) with op an elementwise.h code. Arguments are checked here, so a bad call throws instead of reading out of bounds.
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>

#include "elementwise.h"
#include "gemm.h"
#include "pool.h"

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

static napi_value fail(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
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

static napi_value module_init(napi_env env, napi_value exports) {
  gemm_init(NULL);
  elementwise_init(gemm_isa());
  napi_property_descriptor props[] = {
    { "init", NULL, init, NULL, NULL, NULL, napi_default, NULL },
    { "matmul", NULL, matmul, NULL, NULL, NULL, napi_default, NULL },
    { "unary", NULL, unary_op, NULL, NULL, NULL, napi_default, NULL },
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, module_init)
