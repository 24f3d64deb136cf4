// Registers the Llama family's kernels' N-API functions (llama_binding.c) on the addon's exports.
#ifndef AJAR_LLAMA_BINDING_H
#define AJAR_LLAMA_BINDING_H

#include <node_api.h>

/** Define rmsNorm, rmsNormBackward, rope, siluMul, siluMulBackward, groupedAttention(Backward) on exports; 0 when N-API refused. */
int llama_register(napi_env env, napi_value exports);

#endif
