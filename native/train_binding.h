// Registers the training kernels' N-API functions (train_binding.c) on the addon's exports.
#ifndef AJAR_TRAIN_BINDING_H
#define AJAR_TRAIN_BINDING_H

#include <node_api.h>

/** Define binary, reduce, softmax, layerNorm, ... on exports; returns 0 when N-API refused. */
int train_register(napi_env env, napi_value exports);

#endif
