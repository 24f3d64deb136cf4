// What both N-API files of the addon share (binding.c, train_binding.c): the thrown argument error, and defining a
// table of functions on the exports object.
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

#endif
