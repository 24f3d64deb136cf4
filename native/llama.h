// The Llama family's fused kernels (tensor/backend.ts FusedKernels): RMS norm and its gradient, rotate-half RoPE,
// SwiGLU's silu(gate) * up and its gradient, and grouped-query causal attention (KV cache, sliding window) with its
// gradient. Each follows its reference in src/backends/wasm/fused-reference.ts float32 step by float32 step, except
// that sums of products run in float32 vector lanes (and row sums of squares in double), as the wasm kernels do.
#ifndef AJAR_LLAMA_H
#define AJAR_LLAMA_H

#include <stdint.h>

/** RMS norm over rows of n: out = x * rstd (* w); w and rstd (rows) may be NULL. */
void rms_norm(const float *x, int64_t rows, int64_t n, const float *w, float eps, float *out, float *rstd);

/** rms_norm's gradient dx from x, g, w (or NULL) and rstd; gxhat (or NULL) receives g * xhat. */
void rms_norm_backward(const float *x, const float *g, const float *w, const float *rstd, int64_t rows, int64_t n,
                       float *dx, float *gxhat);

/**
 * Rotate-half RoPE over x (B, T, H * hs) with cos, sin (T, hs / 2): out (B, T, H * hs); inverse rotates by -sin
 * (the forward's gradient). out may be x.
 */
void rope(const float *x, int64_t B, int64_t T, int64_t H, int64_t hs, const float *cos, const float *sin, float *out,
          int inverse);

/** out = silu(gate) * up over n elements; sig (or NULL) receives sigmoid(gate). */
void silu_mul(const float *gate, const float *up, float *out, float *sig, int64_t n);

/** silu_mul's gradients dgate and dup (either may be NULL) from g and the forward's sig. */
void silu_mul_backward(const float *g, const float *gate, const float *up, const float *sig, float *dgate, float *dup,
                       int64_t n);

/**
 * Grouped-query causal attention: q (B, Tq, Hq * hs), k and v (B, Tk, Hkv * hs), Tk >= Tq (the last Tq keys at the
 * queries' positions), query head h reading key/value head h / (Hq / Hkv); window > 0 keeps each query's last
 * `window` keys. y (B, Tq, Hq * hs) and p (B, Hq, Tq, Tk), zero where masked. Returns 0 when scratch memory ran out.
 */
int grouped_attention(const float *q, const float *k, const float *v, int B, int Tq, int Tk, int Hq, int Hkv, int hs,
                      float scale, int window, float *y, float *p);

/** grouped_attention's gradients dq, dk, dv from dy and the saved p. Returns 0 when scratch memory ran out. */
int grouped_attention_backward(const float *dy, const float *q, const float *k, const float *v, const float *p, int B,
                               int Tq, int Tk, int Hq, int Hkv, int hs, float scale, float *dq, float *dk, float *dv);

#endif
