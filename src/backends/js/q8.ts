// The reference int8 weight product (FusedKernels.matmulQ8): plain loops accumulating in float64, the oracle the
// native kernels are tested against; the js and wasm backends run it.

/** out (M, N) = x (M, K) W^T + bias, W[n, k] = q[n * K + k] * scales[(n * K + k) / group]. */
export function matmulQ8(x: Float32Array, q: Int8Array, scales: Float32Array, bias: Float32Array | null, M: number, K: number,
  N: number, group: number, out: Float32Array): void {
  const G = K / group;
  for (let m = 0; m < M; m++) {
    const xo = m * K;
    for (let n = 0; n < N; n++) {
      const qo = n * K;
      let total = 0;
      for (let g = 0; g < G; g++) {
        let part = 0;
        const o = g * group;
        for (let l = 0; l < group; l++) part += x[xo + o + l] * q[qo + o + l];
        total += part * scales[n * G + g];
      }
      out[m * N + n] = bias ? total + bias[n] : total;
    }
  }
}
