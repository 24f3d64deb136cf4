"""Expected int8 values and scales of llama.cpp's Q8_0 quantisation for ajar's quantizeQ8 (src/tensor/quant.ts).

quantize_row_q8_0_ref (ggml-quants.c) per block of 32 floats: amax = max |x|; d = amax / 127; id = 1/d (0 when
d == 0); q = roundf(x * id) (halves away from zero); d is stored (ggml: as float16; ajar keeps float32). Written
here in numpy float32, step by step as the C reference computes it. Run from the repository root:

    /usr/bin/python3 test/golden/quant/make_q8.py

Writes test/golden/quant/q8.json: rows, cols, the float32 input (row-major), q and scales.
"""
import json
import math
import os

import numpy as np

rng = np.random.default_rng(8)
rows, cols = 5, 96
w = (rng.standard_normal((rows, cols)) * rng.uniform(0.01, 3, (rows, 1))).astype(np.float32)
w[1, 32:64] = 0  # an all-zero block: d = 0, q = 0
# A block whose values land on halves once divided by d = 1 (amax 127): roundf sends them away from zero.
w[2, 0:32] = np.array([127, -2.5, 2.5, -0.5, 0.5, 1.5, -1.5, 126.5] + [3.25] * 24, dtype=np.float32)
w[3, 64:96] *= np.float32(1e-30)  # tiny values: d is subnormal-adjacent, q still spans -127..127

q = np.zeros((rows, cols), dtype=np.int8)
scales = np.zeros((rows, cols // 32), dtype=np.float32)
for r in range(rows):
    for b in range(cols // 32):
        x = w[r, 32 * b:32 * (b + 1)]
        amax = np.float32(np.max(np.abs(x)))
        d = np.float32(amax / np.float32(127))
        idv = np.float32(1) / d if d != 0 else np.float32(0)
        v = (x * idv).astype(np.float32)
        # roundf: |v| + 0.5 is exact in float64 for a float32 v, so floor of it is C's roundf.
        q[r, 32 * b:32 * (b + 1)] = [int(math.copysign(math.floor(abs(float(t)) + 0.5), float(t))) for t in v]
        scales[r, b] = d

out = {
    "about": "llama.cpp Q8_0 (quantize_row_q8_0_ref) in numpy float32, float32 scales; written by make_q8.py",
    "rows": rows, "cols": cols, "group": 32,
    "w": [float(x) for x in w.ravel()],
    "q": [int(x) for x in q.ravel()],
    "scales": [float(x) for x in scales.ravel()],
}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "q8.json"), "w") as f:
    json.dump(out, f)
    f.write("\n")
