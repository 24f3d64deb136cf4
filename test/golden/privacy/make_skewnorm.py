"""Reference values of the skew-normal's log CDF for test/eval/audit.test.ts, by mpmath at 50 digits.

    /usr/bin/python3 test/golden/privacy/make_skewnorm.py

The skew-normal (Azzalini) with location loc, scale w and shape a has CDF F(x) = integral from -inf to z of
2 phi(t) Phi(a t) dt, z = (x - loc) / w; mpmath integrates it (split at breakpoints that close in on z geometrically, so the
quadrature sees the tail where the mass is) and the log is taken in mpmath too, so values far below float64's range stay exact.
"""
import json
import os

import mpmath as mp

mp.mp.dps = 50
HERE = os.path.dirname(os.path.abspath(__file__))

CASES = [
    # (x, loc, scale, shape): the body, both tails, negative and large shapes
    (0.0, 0.0, 1.0, 0.0), (1.3, 0.5, 2.0, 3.0), (-2.0, 0.0, 1.0, 2.0), (-6.0, 0.0, 1.0, 4.0), (-12.0, 1.0, 1.5, 1.0),
    (-25.0, 0.0, 1.0, 0.5), (-40.0, 0.0, 1.0, -2.0), (3.0, 0.0, 1.0, -5.0), (55.0, 72.0, 9.7, 1.56), (40.0, 72.0, 9.7, 1.56),
    (-8.0, 0.0, 1.0, 30.0), (10.0, 0.0, 1.0, 0.0),
]


def logcdf(x, loc, scale, shape):
    z = (mp.mpf(x) - loc) / scale
    f = lambda t: 2 * mp.npdf(t) * mp.ncdf(shape * t)  # noqa: E731
    # NOTE: breakpoints closing in on z geometrically: in the far tail the integrand falls by e per 1 / (|z| (1 + a^2))
    # below z, and coarse intervals there lose digits (z - 1, z alone gives -314.95304 instead of -314.95273 at z = -6, a = 4).
    points = [-mp.inf, z - 40, z - 20] + [z - mp.mpf(10) ** (-k / mp.mpf(2)) for k in range(-2, 16)] + [z]
    return mp.log(mp.quad(f, points))


def main():
    out = [{"x": x, "loc": loc, "scale": scale, "shape": shape, "logcdf": float(logcdf(x, loc, scale, shape))} for x, loc, scale, shape in CASES]
    with open(os.path.join(HERE, "skewnorm.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
