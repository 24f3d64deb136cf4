// Scalar math the reference kernels share: erf and the GELU forms with the derivatives PyTorch uses.

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_KAPPA = 0.044715; // the cubic coefficient of GPT-2's gelu_new
const INV_SQRT_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/**
 * erf(x) to double precision, after W. J. Cody's rational Chebyshev approximations
 * (as in Cephes' ndtr.c): |x| < 1 uses erf's series ratio, otherwise 1 - erfc.
 */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 1) {
    const z = x * x;
    const T = [9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
      7.00332514112805075473e3, 5.55923013010394962768e4];
    const U = [3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
      2.26290000613890934246e4, 4.92673942608635921086e4];
    const num = (((T[0] * z + T[1]) * z + T[2]) * z + T[3]) * z + T[4];
    const den = ((((z + U[0]) * z + U[1]) * z + U[2]) * z + U[3]) * z + U[4];
    return (x * num) / den;
  }
  const r = erfc(ax);
  return x > 0 ? 1 - r : r - 1;
}

/** erfc(x) for x >= 1 (Cephes' ndtr.c coefficients). */
function erfc(a: number): number {
  if (a > 26.6) return 0;
  const z = -a * a;
  const ez = Math.exp(z);
  let p: number;
  let q: number;
  if (a < 8) {
    const P = [2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
      4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
      9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2];
    const Q = [1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
      9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
      1.65666309194161350182e3, 5.57535340817727675546e2];
    p = polevl(a, P);
    q = p1evl(a, Q);
  } else {
    const R = [5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0,
      6.16021097993053585195e0, 7.40974269950448939160e0, 2.97886665372100240670e0];
    const S = [2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
      1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0];
    p = polevl(a, R);
    q = p1evl(a, S);
  }
  return (ez * p) / q;
}

function polevl(x: number, c: number[]): number {
  let r = c[0];
  for (let i = 1; i < c.length; i++) r = r * x + c[i];
  return r;
}

function p1evl(x: number, c: number[]): number {
  let r = x + c[0];
  for (let i = 1; i < c.length; i++) r = r * x + c[i];
  return r;
}

/** GELU, tanh approximation (Hugging Face's gelu_new / PyTorch's approximate='tanh'). */
export function geluTanh(x: number): number {
  const inner = SQRT_2_OVER_PI * (x + GELU_KAPPA * x * x * x);
  return 0.5 * x * (1 + Math.tanh(inner));
}

/** d/dx of geluTanh, written as PyTorch's GeluBackward (approximate='tanh'). */
export function geluTanhGrad(x: number): number {
  const x2 = x * x;
  const t = Math.tanh(SQRT_2_OVER_PI * (x + GELU_KAPPA * x2 * x));
  const left = 0.5 * x;
  const right = 1 + t;
  return 0.5 * right + left * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_KAPPA * x2);
}

/** Exact GELU: x * Phi(x). */
export function geluErf(x: number): number {
  return 0.5 * x * (1 + erf(x * INV_SQRT_2));
}

/** d/dx of geluErf: Phi(x) + x * phi(x). */
export function geluErfGrad(x: number): number {
  const cdf = 0.5 * (1 + erf(x * INV_SQRT_2));
  const pdf = Math.exp(-0.5 * x * x) * INV_SQRT_2PI;
  return cdf + x * pdf;
}
