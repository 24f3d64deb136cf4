// The fused kernels' composites in plain TypeScript, float32 step by float32 step (as tensor/ops.ts composes
// them), for calls the wasm kernels cannot take because the memory is too full to stage their buffers.

/** The composite softmax (or log-softmax) in float32 steps, for when the memory is too full to stage buffers. */
export function softmaxReference(x: Float32Array, rows: number, n: number, out: Float32Array, log: boolean): void {
  const f = Math.fround;
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let m = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = x[o + i];
      if (v > m || Number.isNaN(v)) m = v;
    }
    let s = 0;
    for (let i = 0; i < n; i++) {
      const d = f(x[o + i] - m);
      const e = f(Math.exp(d));
      out[o + i] = log ? d : e;
      s += e;
    }
    if (log) {
      const l = f(Math.log(f(s)));
      for (let i = 0; i < n; i++) out[o + i] = f(out[o + i] - l);
    } else {
      const sf = f(s);
      for (let i = 0; i < n; i++) out[o + i] = f(out[o + i] / sf);
    }
  }
}

/** The composite layer norm in float32 steps, for when the memory is too full to stage buffers. */
export function layerNormReference(x: Float32Array, rows: number, n: number, weight: Float32Array | null,
  bias: Float32Array | null, eps: number, out: Float32Array, mean?: Float32Array, rstd?: Float32Array): void {
  const f = Math.fround;
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let s = 0;
    for (let i = 0; i < n; i++) s += x[o + i];
    const mu = f(f(s) / n);
    let ss = 0;
    for (let i = 0; i < n; i++) {
      const c = f(x[o + i] - mu);
      out[o + i] = c;
      ss += f(c * c);
    }
    const v = f(f(ss) / n);
    const rs = f(1 / Math.sqrt(f(v + f(eps))));
    if (mean) mean[r] = mu;
    if (rstd) rstd[r] = rs;
    for (let i = 0; i < n; i++) {
      let y = f(out[o + i] * rs);
      if (weight) y = f(y * weight[i]);
      if (bias) y = f(y + bias[i]);
      out[o + i] = y;
    }
  }
}

