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


/**
 * Causal self-attention over packed qkv (B, T, 3C), H heads of D = C / H, in float64 loops: y (B, T, C) and
 * the probabilities p (B, H, T, T), zero past the diagonal. For calls the wasm kernels cannot stage.
 */
export function attentionReference(qkv: Float32Array, B: number, T: number, C: number, H: number, scale: number,
  y: Float32Array, p: Float32Array): void {
  const D = C / H;
  const row = 3 * C;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const pr = ((b * H + h) * T + i) * T;
        const qi = (b * T + i) * row + h * D;
        let m = -Infinity;
        for (let j = 0; j <= i; j++) {
          const kj = (b * T + j) * row + C + h * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += qkv[qi + d] * qkv[kj + d];
          p[pr + j] = Math.fround(Math.fround(dot) * scale);
          m = Math.max(m, p[pr + j]);
        }
        let sum = 0;
        for (let j = 0; j <= i; j++) {
          p[pr + j] = Math.fround(Math.exp(Math.fround(p[pr + j] - m)));
          sum += p[pr + j];
        }
        for (let j = 0; j <= i; j++) p[pr + j] = Math.fround(p[pr + j] / Math.fround(sum));
        for (let j = i + 1; j < T; j++) p[pr + j] = 0;
        const yi = (b * T + i) * C + h * D;
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let j = 0; j <= i; j++) acc += p[pr + j] * qkv[(b * T + j) * row + 2 * C + h * D + d];
          y[yi + d] = acc;
        }
      }
    }
  }
}

/** attentionReference's gradient: dqkv (B, T, 3C) from dy (B, T, C), qkv and the saved probabilities p. */
export function attentionBackwardReference(dy: Float32Array, qkv: Float32Array, p: Float32Array, B: number,
  T: number, C: number, H: number, scale: number, dqkv: Float32Array): void {
  const D = C / H;
  const row = 3 * C;
  dqkv.fill(0);
  const ds = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < T; i++) {
        const pr = ((b * H + h) * T + i) * T;
        const yi = (b * T + i) * C + h * D;
        // dP[i, j] = dy_i . v_j; dS = P (dP - sum(dP P)) scale
        let dot = 0;
        for (let j = 0; j <= i; j++) {
          let a = 0;
          for (let d = 0; d < D; d++) a += dy[yi + d] * qkv[(b * T + j) * row + 2 * C + h * D + d];
          ds[j] = a;
          dot += a * p[pr + j];
        }
        for (let j = 0; j <= i; j++) ds[j] = p[pr + j] * (ds[j] - dot) * scale;
        const qi = (b * T + i) * row + h * D;
        for (let j = 0; j <= i; j++) {
          const kj = (b * T + j) * row + C + h * D;
          const vj = (b * T + j) * row + 2 * C + h * D;
          for (let d = 0; d < D; d++) {
            dqkv[qi + d] += ds[j] * qkv[kj + d];
            dqkv[kj + d] += ds[j] * qkv[qi + d];
            dqkv[vj + d] += p[pr + j] * dy[yi + d];
          }
        }
      }
    }
  }
}

/** layerNorm's gradient in float32 steps (the fused_layer_norm rule's), for calls the kernels cannot stage. */
export function layerNormBackwardReference(x: Float32Array, g: Float32Array, weight: Float32Array | null,
  mean: Float32Array, rstd: Float32Array, rows: number, n: number, dx: Float32Array, gxhat: Float32Array | null): void {
  const f = Math.fround;
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let sa = 0;
    let sb = 0;
    for (let i = 0; i < n; i++) {
      const xh = f(f(x[o + i] - mean[r]) * rstd[r]);
      const dh = weight ? f(g[o + i] * weight[i]) : g[o + i];
      if (gxhat) gxhat[o + i] = f(g[o + i] * xh);
      sa += dh;
      sb += f(dh * xh);
    }
    const ma = f(f(sa) / n);
    const mb = f(f(sb) / n);
    for (let i = 0; i < n; i++) {
      const xh = f(f(x[o + i] - mean[r]) * rstd[r]);
      const dh = weight ? f(g[o + i] * weight[i]) : g[o + i];
      dx[o + i] = f(rstd[r] * f(f(dh - ma) - f(xh * mb)));
    }
  }
}

/** The composite RMS norm in float32 steps, for calls the kernels cannot stage. */
export function rmsNormReference(x: Float32Array, rows: number, n: number, weight: Float32Array | null, eps: number,
  out: Float32Array, rstd?: Float32Array): void {
  const f = Math.fround;
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += f(x[o + i] * x[o + i]);
    const rs = f(1 / Math.sqrt(f(f(f(ss) / n) + f(eps))));
    if (rstd) rstd[r] = rs;
    for (let i = 0; i < n; i++) {
      const y = f(x[o + i] * rs);
      out[o + i] = weight ? f(y * weight[i]) : y;
    }
  }
}

/** rmsNorm's gradient in float32 steps (the fused_rms_norm rule's), for calls the kernels cannot stage. */
export function rmsNormBackwardReference(x: Float32Array, g: Float32Array, weight: Float32Array | null,
  rstd: Float32Array, rows: number, n: number, dx: Float32Array, gxhat: Float32Array | null): void {
  const f = Math.fround;
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let sb = 0;
    for (let i = 0; i < n; i++) {
      const xh = f(x[o + i] * rstd[r]);
      const dh = weight ? f(g[o + i] * weight[i]) : g[o + i];
      if (gxhat) gxhat[o + i] = f(g[o + i] * xh);
      sb += f(dh * xh);
    }
    const mb = f(f(sb) / n);
    for (let i = 0; i < n; i++) {
      const xh = f(x[o + i] * rstd[r]);
      const dh = weight ? f(g[o + i] * weight[i]) : g[o + i];
      dx[o + i] = f(rstd[r] * f(dh - f(xh * mb)));
    }
  }
}

/** Rotate-half RoPE in float32 steps (inverse: sin negated), for calls the kernels cannot stage. */
export function ropeReference(x: Float32Array, B: number, T: number, H: number, hs: number, cos: Float32Array,
  sin: Float32Array, out: Float32Array, inverse: boolean): void {
  const f = Math.fround;
  const h2 = hs / 2;
  const sign = inverse ? -1 : 1;
  for (let r = 0; r < B * T; r++) {
    const t = r % T;
    for (let h = 0; h < H; h++) {
      const o = (r * H + h) * hs;
      for (let d = 0; d < h2; d++) {
        const x1 = x[o + d];
        const x2 = x[o + h2 + d];
        const c = cos[t * h2 + d];
        const s = sign * sin[t * h2 + d];
        out[o + d] = f(f(x1 * c) - f(x2 * s));
        out[o + h2 + d] = f(f(x2 * c) + f(x1 * s));
      }
    }
  }
}

/** sigmoid(x) in float32 (the kernels compute e^-x in float32 too). */
function sigmoid32(x: number): number {
  const f = Math.fround;
  return f(1 / f(1 + f(Math.exp(-x))));
}

/** silu(gate) * up in float32 steps (sig, when given, receives sigmoid(gate)), for calls the kernels cannot stage. */
export function siluMulReference(gate: Float32Array, up: Float32Array, out: Float32Array, sig?: Float32Array): void {
  const f = Math.fround;
  for (let i = 0; i < out.length; i++) {
    const s = sigmoid32(gate[i]);
    if (sig) sig[i] = s;
    out[i] = f(f(gate[i] * s) * up[i]);
  }
}

/** siluMul's gradients in float32 steps (the siluMulBackward kernel's), for calls the kernels cannot stage. */
export function siluMulBackwardReference(g: Float32Array, gate: Float32Array, up: Float32Array, sig: Float32Array,
  dgate: Float32Array | null, dup: Float32Array | null): void {
  const f = Math.fround;
  for (let i = 0; i < g.length; i++) {
    const x = gate[i];
    const s = sig[i];
    if (dup) dup[i] = f(g[i] * f(x * s));
    if (dgate) dgate[i] = f(f(g[i] * up[i]) * f(s + f(x * f(s * f(1 - s)))));
  }
}

/** Geometry of a grouped attention call: query head h reads key/value head floor(h / group). */
export interface GroupedShape {
  B: number;
  Tq: number;
  Tk: number;
  Hq: number;
  Hkv: number;
  hs: number;
}

/** Offsets of query head h at (b, i) and of its key/value head at (b, j). */
function groupedOffsets(s: GroupedShape): { qAt: (b: number, i: number, h: number) => number;
  kAt: (b: number, j: number, h: number) => number; } {
  const group = s.Hq / s.Hkv;
  return {
    qAt: (b, i, h) => (b * s.Tq + i) * s.Hq * s.hs + h * s.hs,
    kAt: (b, j, h) => (b * s.Tk + j) * s.Hkv * s.hs + Math.floor(h / group) * s.hs,
  };
}

/**
 * Grouped-query causal attention in float64 loops (see FusedKernels.groupedAttention): y (B, Tq, Hq*hs) and the
 * probabilities p (B, Hq, Tq, Tk), zero where masked. For calls the wasm kernels cannot stage.
 */
export function groupedAttentionReference(q: Float32Array, k: Float32Array, v: Float32Array, B: number, Tq: number,
  Tk: number, Hq: number, Hkv: number, hs: number, scale: number, window: number, y: Float32Array,
  p: Float32Array): void {
  const { qAt, kAt } = groupedOffsets({ B, Tq, Tk, Hq, Hkv, hs });
  const past = Tk - Tq;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      for (let i = 0; i < Tq; i++) {
        const pr = ((b * Hq + h) * Tq + i) * Tk;
        const hi = past + i + 1;
        const lo = window > 0 ? Math.max(0, hi - window) : 0;
        const qi = qAt(b, i, h);
        p.fill(0, pr, pr + Tk);
        let m = -Infinity;
        for (let j = lo; j < hi; j++) {
          const kj = kAt(b, j, h);
          let dot = 0;
          for (let d = 0; d < hs; d++) dot += q[qi + d] * k[kj + d];
          p[pr + j] = Math.fround(Math.fround(dot) * scale);
          m = Math.max(m, p[pr + j]);
        }
        let sum = 0;
        for (let j = lo; j < hi; j++) {
          p[pr + j] = Math.fround(Math.exp(Math.fround(p[pr + j] - m)));
          sum += p[pr + j];
        }
        for (let j = lo; j < hi; j++) p[pr + j] = Math.fround(p[pr + j] / Math.fround(sum));
        for (let d = 0; d < hs; d++) {
          let acc = 0;
          for (let j = lo; j < hi; j++) acc += p[pr + j] * v[kAt(b, j, h) + d];
          y[qi + d] = acc;
        }
      }
    }
  }
}

/** groupedAttentionReference's gradients dq, dk, dv from dy and the saved probabilities p. */
export function groupedAttentionBackwardReference(dy: Float32Array, q: Float32Array, k: Float32Array,
  v: Float32Array, p: Float32Array, B: number, Tq: number, Tk: number, Hq: number, Hkv: number, hs: number,
  scale: number, dq: Float32Array, dk: Float32Array, dv: Float32Array): void {
  const { qAt, kAt } = groupedOffsets({ B, Tq, Tk, Hq, Hkv, hs });
  const acc = [new Float64Array(dq.length), new Float64Array(dk.length), new Float64Array(dv.length)];
  const [aq, ak, av] = acc;
  const ds = new Float64Array(Tk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      for (let i = 0; i < Tq; i++) {
        const pr = ((b * Hq + h) * Tq + i) * Tk;
        const qi = qAt(b, i, h);
        // dP[i, j] = dy_i . v_j; dS = P (dP - sum(dP P)) scale
        let dot = 0;
        for (let j = 0; j < Tk; j++) {
          let a = 0;
          if (p[pr + j] !== 0) for (let d = 0; d < hs; d++) a += dy[qi + d] * v[kAt(b, j, h) + d];
          ds[j] = a;
          dot += a * p[pr + j];
        }
        for (let j = 0; j < Tk; j++) {
          const dsj = p[pr + j] * (ds[j] - dot) * scale;
          const kj = kAt(b, j, h);
          for (let d = 0; d < hs; d++) {
            aq[qi + d] += dsj * k[kj + d];
            ak[kj + d] += dsj * q[qi + d];
            av[kj + d] += p[pr + j] * dy[qi + d];
          }
        }
      }
    }
  }
  dq.set(aq);
  dk.set(ak);
  dv.set(av);
}
