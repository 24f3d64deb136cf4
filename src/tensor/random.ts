// PyTorch's CPU random number generator, reproduced: the same seed gives the same stream as
// torch.manual_seed(seed), and the fills below draw from it exactly as torch's CPU kernels do, so a model
// initialised and batched by ajar under --seed draws what nanoGPT draws under the same seed. The state can be
// saved and restored, so dropout, initialisation, sampling and data order are reproducible across --resume.
//
// What is reproduced (ATen/core/MT19937RNGEngine.h, CPUGeneratorImpl.cpp, DistributionsHelper.h,
// TransformationHelper.h and native/cpu/DistributionTemplates.h of PyTorch 1.13):
// - the engine: mt19937 seeded with init_genrand(seed mod 2^32); random() is one output, random64() two
//   (the first is the high word);
// - uniform_ on float32: (random() & 0xffffff) / 2^24 scaled to [from, to) in float arithmetic;
// - uniform double (normal_distribution's, dropout's, sampling's): (random64() & (2^53 - 1)) / 2^53;
// - randint(n): random() % n for n < 2^32, random64() % n from 2^32 on;
// - normal_ on a contiguous float32 tensor of 16 or more elements (normal_fill): one float uniform per element,
//   then Box-Muller over each block of 16 (8 radii from the first half, 8 angles from the second; the last
//   block is redrawn whole when the size is not a multiple of 16); on fewer elements, one double
//   Box-Muller pair per two samples with the sine half kept for the next call, as normal_distribution<double>.
// normal_fill's log, sine and cosine are those of torch's AVX2 build (native/cpu/avx_mathfun.h: Cephes'
// float32 polynomials, 8 lanes at a time), evaluated here in float32 with the fused multiply-adds GCC forms
// from them, so the values are that build's to the bit (checked on 200,000 samples).
// Torch builds that dispatch to other kernels (no AVX2, or AVX-512) use libm's logf/sinf/cosf instead and
// differ from these by about 1e-6 of the standard deviation.

const N = 624;
const M = 397;
const TWO_POW_24 = 16777216;
const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;
const STATE_LENGTH = N + 3;
const MATRIX_A = 0x9908b0df | 0;
const TEMPER_B = 0x9d2c5680 | 0;
const TEMPER_C = 0xefc60000 | 0;

export class Rng {
  // NOTE: the words are kept as int32 (the same bits): V8 keeps int32 arithmetic in registers, while uint32
  // values of 2^31 and above become doubles and made the generator several times slower.
  private readonly mt = new Int32Array(N);
  private mti = N;
  private nextNormal: number | null = null; // the cached sine half of the last double Box-Muller pair

  constructor(seed = 0) {
    this.seed(seed);
  }

  /** Re-seed as torch.manual_seed(seed) does (the seed is taken modulo 2^32). */
  seed(seed: number): void {
    const mt = this.mt;
    mt[0] = Math.floor(seed) >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = (mt[i - 1] ^ (mt[i - 1] >>> 30)) >>> 0;
      // 1812433253 * prev + i modulo 2^32, split so the product stays exact.
      mt[i] = (((((prev & 0xffff0000) >>> 16) * 1812433253) << 16) + (prev & 0x0000ffff) * 1812433253 + i) | 0;
    }
    this.mti = N;
    this.nextNormal = null;
  }

  private twist(): void {
    const mt = this.mt;
    let k = 0;
    for (; k < N - M; k++) {
      const y = (mt[k] & 0x80000000) | (mt[k + 1] & 0x7fffffff);
      mt[k] = mt[k + M] ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
    }
    for (; k < N - 1; k++) {
      const y = (mt[k] & 0x80000000) | (mt[k + 1] & 0x7fffffff);
      mt[k] = mt[k + (M - N)] ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
    }
    const y = (mt[N - 1] & 0x80000000) | (mt[0] & 0x7fffffff);
    mt[N - 1] = mt[M - 1] ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
    this.mti = 0;
  }

  /** A uniform 32-bit unsigned integer: torch's generator->random(). */
  nextU32(): number {
    if (this.mti >= N) this.twist();
    return temper(this.mt[this.mti++]) >>> 0;
  }

  /** out[start..end) = successive nextFloat() values, drawn in bulk. */
  fillFloats(out: Float32Array, start: number, end: number): void {
    const mt = this.mt;
    let i = start;
    while (i < end) {
      if (this.mti >= N) this.twist();
      const stop = Math.min(N, this.mti + (end - i));
      for (let k = this.mti; k < stop; k++) out[i++] = (temper(mt[k]) & 0xffffff) / TWO_POW_24;
      this.mti = stop;
    }
  }

  /** Advance the stream by n 32-bit draws (what torch spends on an initialisation that is then overwritten). */
  discard(n: number): void {
    let left = n;
    while (left > 0) {
      if (this.mti >= N) this.twist();
      const step = Math.min(N - this.mti, left);
      this.mti += step;
      left -= step;
    }
  }

  /** A uniform double in [0, 1) with 53 bits: torch's uniform_real_distribution<double>. */
  next(): number {
    const hi = this.nextU32();
    const lo = this.nextU32();
    return ((hi & 0x1fffff) * TWO_POW_32 + lo) / TWO_POW_53;
  }

  /** A uniform float32 in [0, 1) with 24 bits: torch's uniform_real_distribution<float>(0, 1). */
  nextFloat(): number {
    return (this.nextU32() & 0xffffff) / TWO_POW_24;
  }

  /** A uniform integer in [0, n): torch.randint(n) on the CPU (modulo, as torch does). */
  int(n: number): number {
    if (!(Number.isInteger(n) && n >= 1 && n <= Number.MAX_SAFE_INTEGER)) throw new RangeError(`Rng.int: n must be a positive integer, got ${n}`);
    if (n < TWO_POW_32) return this.nextU32() % n;
    const hi = BigInt(this.nextU32());
    const lo = BigInt(this.nextU32());
    return Number(((hi << 32n) | lo) % BigInt(n));
  }

  /** A standard normal sample: torch's normal_distribution<double> (Box-Muller, the sine half cached). */
  normal(): number {
    if (this.nextNormal !== null) {
      const v = this.nextNormal;
      this.nextNormal = null;
      return v;
    }
    const u1 = this.next();
    const u2 = this.next();
    const r = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    this.nextNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** The whole state (mt19937's 624 words, its position, the cached normal), JSON-safe for checkpoints. */
  getState(): number[] {
    return [...new Uint32Array(this.mt.buffer), this.mti, this.nextNormal === null ? 0 : 1, this.nextNormal ?? 0];
  }

  setState(state: readonly number[]): void {
    if (!Array.isArray(state) || state.length !== STATE_LENGTH) {
      throw new RangeError(`Rng state must have ${STATE_LENGTH} numbers (mt19937 words, position, cached normal), got ${Array.isArray(state) ? state.length : typeof state}`);
    }
    for (let i = 0; i < N; i++) this.mt[i] = state[i] | 0;
    this.mti = Math.min(N, Math.max(0, Math.floor(state[N])));
    this.nextNormal = state[N + 1] ? state[N + 2] : null;
  }
}

/** mt19937's output tempering (int32 in, int32 out: the same bits as the unsigned word). */
function temper(x: number): number {
  let y = x;
  y ^= y >>> 11;
  y ^= (y << 7) & TEMPER_B;
  y ^= (y << 15) & TEMPER_C;
  return y ^ (y >>> 18);
}

/**
 * Fill with N(mean, std) samples as torch's normal_ fills a contiguous float32 tensor (see the file header).
 */
export function normalFill(data: Float32Array, rng: Rng, std = 1, mean = 0): void {
  const n = data.length;
  if (n < 16) {
    for (let i = 0; i < n; i++) data[i] = rng.normal() * std + mean;
    return;
  }
  const s = Math.fround(std);
  const m = Math.fround(mean);
  rng.fillFloats(data, 0, n);
  for (let i = 0; i + 16 <= n; i += 16) boxMuller16(data, i, s, m);
  if (n % 16 !== 0) {
    rng.fillFloats(data, n - 16, n);
    boxMuller16(data, n - 16, s, m);
  }
}

/** Advance the stream exactly as normalFill of n float32 values would, without computing them. */
export function discardNormal(rng: Rng, n: number): void {
  if (n < 16) normalFill(new Float32Array(n), rng);
  else rng.discard(n % 16 === 0 ? n : n + 16);
}

// Cephes' float32 constants, as avx_mathfun.h spells them.
const f32 = Math.fround;
const TWO_PI_F = f32(2 * Math.PI);
const SQRTHF = f32(0.707106781186547524);
const LOG_P = [7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
  -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1].map(f32);
const LOG_Q1 = f32(-2.12194440e-4);
const LOG_Q2 = f32(0.693359375);
const DP1 = f32(-0.78515625);
const DP2 = f32(-2.4187564849853515625e-4);
const DP3 = f32(-3.77489497744594108e-8);
const SIN_P = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1].map(f32);
const COS_P = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2].map(f32);
const FOPI = f32(1.27323954473516); // 4 / pi
// The 8 lanes of one block, computed step by step across lanes (independent chains overlap in the CPU).
const laneF = new Float32Array(8);
const laneBits = new Int32Array(laneF.buffer);
const laneE = new Float64Array(8);
const laneM = new Float64Array(8);
const laneY = new Float64Array(8);
const laneR = new Float64Array(8);

/**
 * torch's normal_fill_16_AVX2: radii from data[o..o+8), angles from data[o+8..o+16), float32 throughout, with
 * avx_mathfun's log256_ps and sincos256_ps. Where GCC fuses a product into the next addition (the product has
 * one use; of two products, the first), the sum is rounded once: f32(a * b + c) is exact up to that rounding,
 * since the product of two floats fits a double.
 */
function boxMuller16(data: Float32Array, o: number, std: number, mean: number): void {
  // log(u1), u1 = 1 - data[o + j] in (0, 1]: exponent and mantissa in [sqrt(1/2), sqrt(2)), then a polynomial.
  for (let j = 0; j < 8; j++) laneF[j] = 1 - data[o + j];
  for (let j = 0; j < 8; j++) {
    const b = laneBits[j];
    laneBits[j] = (b & ~0x7f800000) | 0x3f000000; // the mantissa as a float in [0.5, 1)
    let e = (b >>> 23) - 0x7f + 1;
    let m = laneF[j];
    const small = m < SQRTHF;
    const add = small ? m : 0;
    if (small) e -= 1;
    m = f32(f32(m - 1) + add);
    laneE[j] = e;
    laneM[j] = m;
    laneY[j] = LOG_P[0];
  }
  for (let i = 1; i < LOG_P.length; i++) {
    const p = LOG_P[i];
    for (let j = 0; j < 8; j++) laneY[j] = f32(laneY[j] * laneM[j] + p);
  }
  for (let j = 0; j < 8; j++) {
    const e = laneE[j];
    const m = laneM[j];
    const z = f32(m * m);
    let y = f32(laneY[j] * m);
    y = f32(y * z + f32(e * LOG_Q1));
    y = f32(y - f32(z * 0.5));
    const log = f32(e * LOG_Q2 + f32(m + y));
    laneR[j] = f32(Math.sqrt(f32(-2 * log)));
  }
  // sin and cos of theta = 2 pi u2 (theta >= 0): octant reduction, then Cephes' two polynomials.
  for (let j = 0; j < 8; j++) {
    const theta = f32(TWO_PI_F * data[o + j + 8]);
    const q = (Math.trunc(f32(theta * FOPI)) + 1) & ~1;
    const qf = f32(q);
    let x = f32(qf * DP1 + theta); // extended-precision theta - q pi / 4
    x = f32(qf * DP2 + x);
    x = f32(qf * DP3 + x);
    const z = f32(x * x);
    let c = f32(COS_P[0] * z + COS_P[1]);
    c = f32(c * z + COS_P[2]);
    c = f32(c * z);
    c = f32(c * z - f32(z * 0.5));
    c = f32(c + 1);
    let s = f32(SIN_P[0] * z + SIN_P[1]);
    s = f32(s * z + SIN_P[2]);
    s = f32(s * z);
    s = f32(s * x + x);
    const sinPoly = (q & 2) === 0; // the sine takes the sine polynomial here, the cosine the cosine one
    let sin = sinPoly ? s : c;
    let cos = sinPoly ? c : s;
    if ((q & 4) !== 0) sin = -sin;
    if ((~(q - 2) & 4) !== 0) cos = -cos;
    const r = laneR[j];
    // _mm256_fmadd_ps(n, std, mean): one rounding, on the store to float32.
    data[o + j] = f32(r * cos) * std + mean;
    data[o + j + 8] = f32(r * sin) * std + mean;
  }
}

/** Fill with U[from, to) samples as torch's uniform_ fills a float32 tensor: one 32-bit draw each. */
export function uniformFill(data: Float32Array, rng: Rng, from = 0, to = 1): void {
  const lo = f32(from);
  const span = f32(f32(to) - lo);
  rng.fillFloats(data, 0, data.length);
  for (let i = 0; i < data.length; i++) data[i] = f32(f32(data[i] * span) + lo);
}
