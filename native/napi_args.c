// The argument parser the N-API files of the addon share (napi_export.h declares it).
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "napi_export.h"

#define MAX_ARGS 16
#define DIM_MAX ((int64_t)1 << 31)

/**
 * Read the call's arguments by `sig`, one letter each: 'f' a Float32Array (float **, int64_t *length),
 * 'o' the same or null/undefined (NULL and 0 then), 'i' an integer in [0, 2^31) (int64_t *), 'd' a number
 * (double *), 'I' an Int32Array (int32_t **, int64_t *length). Returns 0 when any is missing or of the wrong kind.
 */
int read_args(napi_env env, napi_callback_info info, const char *sig, ...) {
  size_t argc = MAX_ARGS;
  napi_value argv[MAX_ARGS];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  va_list ap;
  va_start(ap, sig);
  int ok = 1;
  for (size_t k = 0; sig[k] && ok; k++) {
    const char c = sig[k];
    napi_valuetype t = napi_undefined;
    if (k < argc) napi_typeof(env, argv[k], &t);
    if (c == 'f' || c == 'o' || c == 'I') {
      void **data = va_arg(ap, void **);
      int64_t *len = va_arg(ap, int64_t *);
      *data = NULL;
      *len = 0;
      if (c == 'o' && (t == napi_null || t == napi_undefined)) continue;
      bool is = false;
      napi_typedarray_type type;
      size_t n = 0;
      ok = k < argc && napi_is_typedarray(env, argv[k], &is) == napi_ok && is &&
           napi_get_typedarray_info(env, argv[k], &type, &n, data, NULL, NULL) == napi_ok &&
           type == (c == 'I' ? napi_int32_array : napi_float32_array);
      *len = (int64_t)n;
    } else if (c == 'i') {
      int64_t *v = va_arg(ap, int64_t *);
      ok = t == napi_number && napi_get_value_int64(env, argv[k], v) == napi_ok && *v >= 0 && *v < DIM_MAX;
    } else {
      double *v = va_arg(ap, double *);
      ok = t == napi_number && napi_get_value_double(env, argv[k], v) == napi_ok;
    }
  }
  va_end(ap);
  return ok;
}
