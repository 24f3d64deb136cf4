// What the N-API files of the addon share (binding.c, train_binding.c, llama_binding.c): the thrown argument error,
// defining a table of functions on the exports object, and the signature-driven argument parser (napi_args.c).
#ifndef AJAR_NAPI_EXPORT_H
#define AJAR_NAPI_EXPORT_H

#include <node_api.h>
#include <stddef.h>

/** One exported function: its name on the exports object and its callback. */
typedef struct {
  const char *name;
  napi_callback fn;
} export_fn;

/** Define fns[0..n) on exports (plain, read-only properties); returns 0 when N-API refused one. */
static inline int export_functions(napi_env env, napi_value exports, const export_fn *fns, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const napi_property_descriptor d = { fns[i].name, NULL, fns[i].fn, NULL, NULL, NULL, napi_default, NULL };
    if (napi_define_properties(env, exports, 1, &d) != napi_ok) return 0;
  }
  return 1;
}

/** Throw a TypeError with msg; returns NULL for the callback to return. */
static inline napi_value fail(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

/**
 * Read the call's arguments by `sig`, one letter each: 'f' a Float32Array (float **, int64_t *length), 'o' the
 * same or null/undefined (NULL and 0 then), 'i' an integer in [0, 2^31) (int64_t *), 'd' a number (double *),
 * 'I' an Int32Array (int32_t **, int64_t *length). Returns 0 when any is missing or of the wrong kind.
 */
int read_args(napi_env env, napi_callback_info info, const char *sig, ...);

#endif
