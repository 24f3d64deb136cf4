// Element-wise kernels with transcendental math, split across the pool (pool.h).
#ifndef AJAR_ELEMENTWISE_H
#define AJAR_ELEMENTWISE_H

#include <stdint.h>

/** The unary ops this file has, by the code the binding passes. */
enum { UNARY_GELU_TANH = 0, UNARY_GELU_TANH_GRAD = 1, UNARY_COUNT = 2 };

/** Pick the kernels for this CPU ("avx512", "avx2" or anything else for portable C). */
void elementwise_init(const char *isa);

/** out[i] = op(x[i]) for i < n (x and out may be the same array). */
void unary(int op, const float *x, float *out, int64_t n);

/** unary() on the calling thread alone (inside a pool unit). */
void unary_serial(int op, const float *x, float *out, int64_t n);

/** dx[i] = g[i] * gelu_tanh'(x[i]) for i < n on the calling thread. */
void gelu_tanh_backward_serial(const float *x, const float *g, float *dx, int64_t n);

/** out[i] = e^x[i] for i < n on the calling thread (exp32's accuracy: about one ulp; below -86 it gives ~4e-38). */
void exp_array(const float *x, float *out, int n);

#endif
