// Special functions in float64 for the privacy code: log erfc (the RDP accountant's sampled-Gaussian series) and
// the log of the standard normal CDF (the privacy audit's skew-normal tail), accurate far into the tails.

/**
 * log(erfc(x)), accurate where erfc(x) underflows: a power series of erf for |x| < 2, else Laplace's
 * continued fraction erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))) in log form.
 * Opacus computes it as log(2) + scipy's log_ndtr(-x sqrt 2), the same function.
 */
export function logErfc(x: number): number {
  if (x < 2) {
    if (x <= -2) return Math.log(2 - Math.exp(logErfc(-x)));
    // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    let term = x;
    let sum = x;
    const x2 = x * x;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.log(1 - (2 / Math.sqrt(Math.PI)) * sum);
  }
  // Modified Lentz evaluation of K = x + (1/2)/(x + 1/(x + (3/2)/(x + ...))): partial numerators k/2.
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let k = 1; k < 5000; k++) {
    const a = k / 2;
    d = x + a * d;
    d = d === 0 ? tiny : 1 / d;
    c = x + a / c;
    if (c === 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return -x * x - 0.5 * Math.log(Math.PI) - Math.log(f);
}

/** log Phi(x), the standard normal CDF, accurate where Phi(x) underflows (scipy's log_ndtr): log(erfc(-x / sqrt 2) / 2). */
export function logNdtr(x: number): number {
  return logErfc(-x / Math.SQRT2) - Math.LN2;
}
