// Causal self-attention over packed projections (GPT-2's c_attn layout), one (batch, head) per pool unit, and
// grouped-query attention over a KV cache for decoding steps.
#ifndef AJAR_ATTENTION_H
#define AJAR_ATTENTION_H

/**
 * y (B, T, C) and the probabilities p (B, H, T, T), zero past the diagonal, from qkv (B, T, 3C) with H heads of
 * D = C / H; scores are scaled by `scale`. Returns 0 when scratch memory ran out (nothing written then).
 */
int attention_forward(const float *qkv, int B, int T, int C, int H, float scale, float *y, float *p);

/** attention_forward's gradient: dqkv (B, T, 3C) from dy (B, T, C), qkv and the saved p. Returns 0 on no memory. */
int attention_backward(const float *dy, const float *qkv, const float *p, int B, int T, int C, int H, float scale,
                       float *dqkv);

/**
 * Grouped-query causal attention (FusedKernels.groupedAttention): q (B, Tq, Hq * hs), k and v (B, Tk, Hkv * hs),
 * the last Tq keys at the queries' positions, query head h reading key/value head h / (Hq / Hkv); window > 0
 * keeps each query's last `window` keys. Writes y (B, Tq, Hq * hs) and p (B, Hq, Tq, Tk), zero where masked.
 * Written for few query rows (a decoding step over a KV cache): direct loops, one (batch, head) per pool unit.
 */
int grouped_attention_forward(const float *q, const float *k, const float *v, int B, int Tq, int Tk, int Hq, int Hkv,
                              int hs, float scale, int window, float *y, float *p);

#endif
