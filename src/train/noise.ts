// DP-SGD's Gaussian noise: N(0, std^2) samples by the ziggurat method (Marsaglia & Tsang 2000, "The Ziggurat Method
// for Generating Random Variables", J. Stat. Softw. 5(8): 128 layers, RNOR with its tail and wedge tests) over the
// run's generator. NOTE: not torch's normal_ stream (tensor/random.ts reproduces that for initialisation, at about 3x
// the cost); the noise only has to be Gaussian and reproducible from the run's seed (--resume). The layer index
// comes from bits drawn apart from the value's, as Doornik (2005, "An Improved Ziggurat Method to Generate Normal
// Random Samples") shows the original's shared bits correlate them.
import type { Rng } from '../tensor/index.js';

const LAYERS = 128;
const M1 = 2147483648; // 2^31
const R = 3.442619855899; // the base layer's right edge
const V = 9.91256303526217e-3; // each layer's area

const KN = new Int32Array(LAYERS);
const WN = new Float64Array(LAYERS);
const FN = new Float64Array(LAYERS);
{
  let dn = R;
  let tn = dn;
  const q = V / Math.exp(-0.5 * dn * dn);
  KN[0] = Math.floor((dn / q) * M1);
  KN[1] = 0;
  WN[0] = q / M1;
  WN[LAYERS - 1] = dn / M1;
  FN[0] = 1;
  FN[LAYERS - 1] = Math.exp(-0.5 * dn * dn);
  for (let i = LAYERS - 2; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(V / dn + Math.exp(-0.5 * dn * dn)));
    KN[i + 1] = Math.floor((dn / tn) * M1);
    tn = dn;
    FN[i] = Math.exp(-0.5 * dn * dn);
    WN[i] = dn / M1;
  }
}

/** A uniform in (0, 1). */
function open01(rng: Rng): number {
  return (rng.nextU32() + 0.5) / 4294967296;
}

/** The slow path: the tail beyond R (layer 0) or the wedge of layer iz, retrying with fresh draws. */
function slowPath(rng: Rng, hz: number, iz: number): number {
  for (;;) {
    const x = hz * WN[iz];
    if (iz === 0) {
      let a: number;
      let b: number;
      do {
        a = -Math.log(open01(rng)) / R;
        b = -Math.log(open01(rng));
      } while (b + b < a * a);
      return hz > 0 ? R + a : -R - a;
    }
    if (FN[iz] + open01(rng) * (FN[iz - 1] - FN[iz]) < Math.exp(-0.5 * x * x)) return x;
    hz = rng.nextU32() | 0;
    iz = rng.nextU32() & (LAYERS - 1);
    if (Math.abs(hz) < KN[iz]) return hz * WN[iz];
  }
}

/** out[i] += N(0, std^2) samples, drawn from rng. */
export function addGaussianNoise(out: Float32Array, rng: Rng, std: number): void {
  let bits = 0;
  for (let i = 0; i < out.length; i++) {
    // Four 7-bit layer indices from each 32-bit draw.
    if ((i & 3) === 0) bits = rng.nextU32();
    const iz = (bits >>> ((i & 3) * 8)) & (LAYERS - 1);
    const hz = rng.nextU32() | 0;
    out[i] += std * (Math.abs(hz) < KN[iz] ? hz * WN[iz] : slowPath(rng, hz, iz));
  }
}
