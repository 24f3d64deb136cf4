#!/usr/bin/env python3
"""Writes ops.json beside this file: PyTorch's forward values and input gradients for every op of ajar's tensor
engine (src/tensor/ops.ts), the outside reference for test/tensor/ops.golden.test.ts and finite-diff.test.ts.

Run from the repository root with Debian's python3 (python3-torch 1.13, python3-numpy):

    /usr/bin/python3 test/golden/ops/make_ops.py

Each case draws seeded float32 inputs, computes `out = op(inputs)` in float32, then backpropagates
`loss = (out * upstream).sum()` for a random `upstream` of out's shape and records every input's gradient.
A tensor is {"shape", "data"} where data lists float32 values in their shortest round-trip decimal form
("Infinity", "-Infinity" and "NaN" as strings, since JSON has no such numbers), or {"shape", "b64"} with the
little-endian float32 bytes for large tensors, or {"shape", "hash"} for the one large input, whose values
ajar regenerates exactly (see hash_uniform below) so the file stays small.
Each op has exactly one case with "rep": true, the representative the finite-difference test uses; its inputs
keep away from kinks (relu and abs at 0, ties in max and maximum). Cases with "upstream": null (comparisons,
NaN propagation) check the forward pass only.
"""
import base64
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20240611
B64_MIN = 4096  # tensors with at least this many values are stored as base64 float32 bytes

torch.set_num_threads(1)
GEN = torch.Generator().manual_seed(SEED)


# ---------------------------------------------------------------------------------------------
# Inputs


def randn(*shape, scale=1.0, shift=0.0):
    return (torch.randn(tuple(shape), generator=GEN) * scale + shift).float()


def uniform(lo, hi, *shape):
    return (torch.rand(tuple(shape), generator=GEN) * (hi - lo) + lo).float()


def away(*shape, lo=0.1, hi=2.0):
    """Values with |x| in [lo, hi) and a random sign: far from the kinks of relu and abs, and from 0 for div."""
    sign = torch.where(torch.rand(tuple(shape), generator=GEN) < 0.5, -1.0, 1.0)
    return (sign * uniform(lo, hi, *shape)).float()


def distinct(*shape):
    """All values distinct by at least 0.09, so no max along any axis is near a tie."""
    n = int(np.prod(shape))
    perm = torch.randperm(n, generator=GEN).float()
    return (perm * 0.1 - n * 0.05 + uniform(0.0, 0.01, n)).reshape(*shape).float()


def ints(lo, hi, *shape):
    return torch.randint(lo, hi, shape, generator=GEN)


def hash_uniform(n, seed, lo, hi):
    """x[i] = lo + (hi - lo) * u[i], u[i] = ((i + seed) * 2654435761 mod 2^32) / 2^32, in float64, then float32.
    Every step is exact or a single IEEE double rounding, so ajar regenerates identical float32 values."""
    u = np.array([((i + seed) * 2654435761) % 2**32 for i in range(n)], dtype=np.float64) / 2.0**32
    return torch.from_numpy((lo + (hi - lo) * u).astype(np.float32))


# ---------------------------------------------------------------------------------------------
# Encoding


def num(x):
    """A float32 value as the shortest decimal that parses (via float64) back to the same float32."""
    x = np.float32(x)
    if np.isnan(x):
        return "NaN"
    if np.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    short = float(str(x))
    if np.float32(short) == x and np.signbit(np.float32(short)) == np.signbit(x):
        return short
    return float(x)  # the exact double value of the float32


def enc(t, hashed=None):
    a = t.detach().float().contiguous().numpy().ravel()
    shape = list(t.shape)
    if hashed is not None:
        return {"shape": shape, "hash": hashed}
    if a.size >= B64_MIN:
        return {"shape": shape, "b64": base64.b64encode(a.astype("<f4").tobytes()).decode("ascii")}
    return {"shape": shape, "data": [num(v) for v in a]}


def enc_int(t):
    return {"shape": list(t.shape), "data": [int(v) for v in t.flatten().tolist()]}


# ---------------------------------------------------------------------------------------------
# Cases

CASES = []


def case(name, op, params, inputs, fn, int_inputs=(), grad=True, rep=False, hashed=None):
    """Record one case: fn(*float_leaves, *int_inputs) -> out; backward of (out * upstream).sum()."""
    leaves = [x.detach().clone().float().requires_grad_(grad) for x in inputs]
    out = fn(*leaves, *int_inputs)
    entry = {"name": name, "op": op, "params": params}
    hashed = hashed or {}
    entry["inputs"] = [enc(x, hashed.get(i)) for i, x in enumerate(leaves)]
    entry["int_inputs"] = [enc_int(t) for t in int_inputs]
    if grad:
        upstream = randn(*out.shape)
        (out * upstream).sum().backward()
        entry["upstream"] = enc(upstream)
        entry["grads"] = [enc(x.grad if x.grad is not None else torch.zeros_like(x)) for x in leaves]
    else:
        entry["upstream"] = None
        entry["grads"] = [None for _ in leaves]
    entry["out"] = enc(out.float())
    if rep:
        entry["rep"] = True
    CASES.append(entry)


def binary_cases(op, fn, rhs=randn, lhs=randn):
    """The broadcasting patterns every binary op is checked on."""
    patterns = [
        ("same", (3, 5, 7), (3, 5, 7)),
        ("scalar0d", (3, 5, 7), ()),
        ("scalar0d_left", (), (3, 5, 7)),
        ("row", (3, 5, 7), (7,)),
        ("column", (3, 5, 7), (5, 1)),
        ("leading", (2, 1, 5, 7), (3, 1, 7)),
        ("outer", (5, 1), (1, 7)),
    ]
    for i, (tag, sa, sb) in enumerate(patterns):
        case(f"{op}_{tag}", op, {}, [lhs(*sa), rhs(*sb)], fn, rep=(i == 0))
    case(f"{op}_number_right", op, {"scalar": 2.5}, [lhs(3, 5, 7)], lambda a: fn(a, torch.tensor(2.5)))
    case(f"{op}_number_left", op, {"scalar": -1.75, "scalarFirst": True}, [rhs(3, 5, 7)],
         lambda b: fn(torch.tensor(-1.75), b))


binary_cases("add", torch.add)
binary_cases("sub", torch.sub)
binary_cases("mul", torch.mul)
binary_cases("div", torch.div, rhs=lambda *s: away(*s, lo=0.5, hi=2.0), lhs=lambda *s: away(*s, lo=0.5, hi=2.0))

# unary
case("neg", "neg", {}, [randn(3, 5, 7)], torch.neg, rep=True)
case("exp", "exp", {}, [randn(3, 5, 7, scale=2.0)], torch.exp, rep=True)
case("log", "log", {}, [uniform(0.2, 4.0, 3, 5, 7)], torch.log, rep=True)
case("sqrt", "sqrt", {}, [uniform(0.2, 4.0, 3, 5, 7)], torch.sqrt, rep=True)
case("rsqrt", "rsqrt", {}, [uniform(0.2, 4.0, 3, 5, 7)], torch.rsqrt, rep=True)
case("tanh", "tanh", {}, [randn(3, 5, 7, scale=2.0)], torch.tanh, rep=True)
case("tanh_saturated", "tanh", {}, [randn(4, 9, scale=15.0)], torch.tanh)
case("sigmoid", "sigmoid", {}, [randn(3, 5, 7, scale=3.0)], torch.sigmoid, rep=True)
case("sigmoid_saturated", "sigmoid", {}, [randn(4, 9, scale=40.0)], torch.sigmoid)
case("relu", "relu", {}, [away(3, 5, 7, lo=0.05)], torch.relu, rep=True)
case("abs", "abs", {}, [away(3, 5, 7, lo=0.05)], torch.abs, rep=True)
case("gelu_tanh", "gelu", {"approximate": "tanh"}, [randn(3, 5, 7, scale=2.5)],
     lambda x: F.gelu(x, approximate="tanh"), rep=True)
case("gelu_erf", "gelu", {"approximate": "erf"}, [randn(3, 5, 7, scale=2.5)], lambda x: F.gelu(x))
case("gelu_tanh_wide", "gelu", {"approximate": "tanh"}, [randn(4, 9, scale=6.0)],
     lambda x: F.gelu(x, approximate="tanh"))
case("gelu_erf_wide", "gelu", {"approximate": "erf"}, [randn(4, 9, scale=6.0)], lambda x: F.gelu(x))
case("silu", "silu", {}, [randn(3, 5, 7, scale=3.0)], F.silu, rep=True)

# pow
case("pow_2", "pow", {"scalar": 2}, [randn(3, 5, 7)], lambda x: torch.pow(x, 2))
case("pow_3", "pow", {"scalar": 3}, [randn(3, 5, 7)], lambda x: torch.pow(x, 3))
case("pow_half", "pow", {"scalar": 0.5}, [uniform(0.2, 4.0, 3, 5, 7)], lambda x: torch.pow(x, 0.5))
case("pow_minus1", "pow", {"scalar": -1}, [uniform(0.2, 4.0, 3, 5, 7)], lambda x: torch.pow(x, -1))
case("pow_tensor", "pow", {}, [uniform(0.3, 3.0, 3, 5, 7), randn(3, 5, 7, scale=0.8)], torch.pow, rep=True)
case("pow_tensor_row", "pow", {}, [uniform(0.3, 3.0, 3, 5, 7), randn(7, scale=0.8)], torch.pow)
case("pow_number_base", "pow", {"scalar": 2.0, "scalarFirst": True}, [randn(3, 5, 7)],
     lambda x: torch.pow(2.0, x))


# maximum
def apart(a, b):
    """b moved 0.1 away from a wherever they are closer than 0.05."""
    close = (a - b).abs() < 0.05
    return torch.where(close, b + 0.1, b)


ma = randn(3, 5, 7)
case("maximum", "maximum", {}, [ma, apart(ma, randn(3, 5, 7))], torch.maximum, rep=True)
mcol = randn(5, 1)
case("maximum_column", "maximum", {}, [apart(mcol, randn(3, 5, 7)), mcol], torch.maximum)
mt = torch.round(randn(4, 6) * 2) / 2  # half-steps: many exact ties, where the gradient splits in half
case("maximum_ties", "maximum", {}, [mt, torch.round(randn(4, 6) * 2) / 2], torch.maximum)
case("maximum_number", "maximum", {"scalar": 0.25}, [0.25 + away(3, 5, 7, lo=0.05)],
     lambda x: torch.maximum(x, torch.tensor(0.25)))

# NaN propagation, forward only: a NaN input must give NaN out, as in PyTorch (a diverging run must not be masked)
NAN = float("nan")
nan_x = torch.tensor([[NAN, 1.0, -1.0, 2.0], [0.5, NAN, -3.0, NAN]])
nan_y = torch.tensor([[1.0, NAN, 0.0, -2.0], [NAN, 2.0, 4.0, -1.0]])
case("nan_relu", "relu", {}, [nan_x], torch.relu, grad=False)
case("nan_abs", "abs", {}, [nan_x], torch.abs, grad=False)
case("nan_gelu", "gelu", {"approximate": "tanh"}, [nan_x], lambda x: F.gelu(x, approximate="tanh"), grad=False)
case("nan_maximum", "maximum", {}, [nan_x, nan_y], torch.maximum, grad=False)
case("nan_max_dim", "max", {"axis": 1, "keepdim": False}, [nan_x], lambda x: torch.max(x, 1).values, grad=False)
case("nan_softmax", "softmax", {"axis": -1}, [nan_x], lambda x: torch.softmax(x, -1), grad=False)

# comparisons: forward only (they carry no gradient)
ca = torch.round(randn(3, 5, 7) * 2) / 2
cb = torch.round(randn(3, 5, 7) * 2) / 2
for op, fn in (("gt", torch.gt), ("lt", torch.lt), ("eq", torch.eq)):
    case(op, op, {}, [ca, cb], lambda a, b, fn=fn: fn(a, b).float(), grad=False)
    case(f"{op}_number", op, {"scalar": 0.5}, [ca], lambda a, fn=fn: fn(a, 0.5).float(), grad=False)

# where / maskedFill (the condition and mask are 0/1 integer inputs)
case("where_broadcast", "where", {}, [randn(3, 5, 7), randn(5, 1)], lambda a, b, c: torch.where(c.bool(), a, b),
     int_inputs=[ints(0, 2, 3, 1, 7)], rep=True)
case("where_scalar_b", "where", {"scalarB": -1.5}, [randn(5, 7)],
     lambda a, c: torch.where(c.bool(), a, torch.tensor(-1.5)), int_inputs=[ints(0, 2, 5, 7)])
case("maskedFill", "maskedFill", {"value": -1e4}, [randn(3, 5, 7)], lambda x, m: x.masked_fill(m.bool(), -1e4),
     int_inputs=[ints(0, 2, 5, 7)], rep=True)
case("maskedFill_neg_inf", "maskedFill", {"value": "-Infinity"}, [randn(2, 5, 5)],
     lambda x, m: x.masked_fill(m.bool(), float("-inf")), int_inputs=[torch.triu(torch.ones(5, 5, dtype=torch.long), 1)])

# expand, sumTo
case("expand", "expand", {"shape": [2, 3, 4, 5]}, [randn(3, 1, 5)], lambda x: x.expand(2, 3, 4, 5), rep=True)
case("expand_row", "expand", {"shape": [6, 7]}, [randn(7)], lambda x: x.expand(6, 7))
case("sumTo", "sumTo", {"shape": [3, 1, 7]}, [randn(2, 3, 5, 7)], lambda x: x.sum_to_size(3, 1, 7), rep=True)
case("sumTo_column", "sumTo", {"shape": [5, 1]}, [randn(3, 5, 7)], lambda x: x.sum_to_size(5, 1))

# sum / mean / max
for i, (axis, keep) in enumerate([(0, False), (1, False), (2, True), (-1, False), (None, False), (None, True),
                                  ([0, 2], False), ([0, 2], True)]):
    tag = "all" if axis is None else ("_".join(str(a) for a in axis) if isinstance(axis, list) else str(axis))
    dims = None if axis is None else (tuple(axis) if isinstance(axis, list) else axis)
    fn = (lambda x, keep=keep: x.sum() if not keep else x.sum().reshape(1, 1, 1)) if dims is None else \
        (lambda x, dims=dims, keep=keep: x.sum(dim=dims, keepdim=keep))
    case(f"sum_{tag}{'_keep' if keep else ''}", "sum", {"axis": axis, "keepdim": keep}, [randn(3, 5, 7)], fn,
         rep=(i == 0))
case("sum_4d_1_3", "sum", {"axis": [1, 3], "keepdim": False}, [randn(2, 3, 4, 5)], lambda x: x.sum(dim=(1, 3)))
case("mean_last_keep", "mean", {"axis": -1, "keepdim": True}, [randn(3, 5, 7)], lambda x: x.mean(-1, keepdim=True),
     rep=True)
case("mean_all", "mean", {"axis": None, "keepdim": False}, [randn(3, 5, 7)], lambda x: x.mean())
case("mean_0_1", "mean", {"axis": [0, 1], "keepdim": False}, [randn(3, 5, 7)], lambda x: x.mean(dim=(0, 1)))
for i, (axis, keep) in enumerate([(1, False), (0, False), (2, True), (-1, False)]):
    case(f"max_{axis}{'_keep' if keep else ''}", "max", {"axis": axis, "keepdim": keep}, [distinct(3, 5, 7)],
         lambda x, axis=axis, keep=keep: torch.max(x, axis, keepdim=keep).values, rep=(i == 0))
case("max_ties_first", "max", {"axis": 1, "keepdim": False},
     [torch.tensor([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 1.0, 5.0], [-2.0, -1.0, -1.0, -3.0]])],
     lambda x: torch.max(x, 1).values)

# softmax / logSoftmax
case("softmax_last", "softmax", {"axis": -1}, [randn(3, 5, 7, scale=2.0)], lambda x: torch.softmax(x, -1), rep=True)
case("softmax_0", "softmax", {"axis": 0}, [randn(3, 5, 7, scale=2.0)], lambda x: torch.softmax(x, 0))
case("softmax_1", "softmax", {"axis": 1}, [randn(3, 5, 7, scale=2.0)], lambda x: torch.softmax(x, 1))
case("softmax_large_positive", "softmax", {"axis": -1}, [randn(3, 5, 7, scale=20.0, shift=500.0)],
     lambda x: torch.softmax(x, -1))
case("softmax_large_negative", "softmax", {"axis": -1}, [randn(4, 9, scale=30.0, shift=-1e4)],
     lambda x: torch.softmax(x, -1))
causal = torch.triu(torch.ones(5, 5, dtype=torch.bool), 1)
case("softmax_masked_neg_inf", "softmax", {"axis": -1}, [randn(2, 5, 5).masked_fill(causal, float("-inf"))],
     lambda x: torch.softmax(x, -1))
case("logSoftmax_last", "logSoftmax", {"axis": -1}, [randn(3, 5, 7, scale=2.0)], lambda x: torch.log_softmax(x, -1),
     rep=True)
case("logSoftmax_0", "logSoftmax", {"axis": 0}, [randn(3, 5, 7, scale=2.0)], lambda x: torch.log_softmax(x, 0))
case("logSoftmax_1", "logSoftmax", {"axis": 1}, [randn(3, 5, 7, scale=2.0)], lambda x: torch.log_softmax(x, 1))
case("logSoftmax_large_positive", "logSoftmax", {"axis": -1}, [randn(3, 5, 7, scale=100.0, shift=3000.0)],
     lambda x: torch.log_softmax(x, -1))
case("logSoftmax_large_negative", "logSoftmax", {"axis": 1}, [randn(4, 9, scale=30.0, shift=-1e4)],
     lambda x: torch.log_softmax(x, 1))

# layerNorm / rmsNorm
case("layerNorm_affine", "layerNorm", {"eps": 1e-5, "weight": True, "bias": True},
     [randn(3, 5, 7, scale=2.0, shift=0.5), randn(7, scale=0.5, shift=1.0), randn(7, scale=0.5)],
     lambda x, w, b: F.layer_norm(x, (7,), w, b, 1e-5), rep=True)
case("layerNorm_plain", "layerNorm", {"eps": 1e-5, "weight": False, "bias": False}, [randn(4, 16, scale=3.0)],
     lambda x: F.layer_norm(x, (16,), None, None, 1e-5))
case("layerNorm_weight_only", "layerNorm", {"eps": 1e-5, "weight": True, "bias": False},
     [randn(3, 5, 7), randn(7, scale=0.5, shift=1.0)], lambda x, w: F.layer_norm(x, (7,), w, None, 1e-5))


def rms_norm(x, w=None, eps=1e-6):
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y * w if w is not None else y


case("rmsNorm_weight", "rmsNorm", {"eps": 1e-6, "weight": True}, [randn(3, 5, 8), randn(8, scale=0.5, shift=1.0)],
     rms_norm, rep=True)
case("rmsNorm_plain", "rmsNorm", {"eps": 1e-6, "weight": False}, [randn(4, 16, scale=3.0)], rms_norm)

# embedding (ids with repeats, so the table gradient accumulates)
case("embedding", "embedding", {}, [randn(11, 6)], lambda t, ids: F.embedding(ids, t),
     int_inputs=[torch.tensor([[3, 7, 3, 0, 10], [7, 7, 1, 3, 5]])], rep=True)
case("embedding_flat", "embedding", {}, [randn(5, 3)], lambda t, ids: F.embedding(ids, t),
     int_inputs=[torch.tensor([4, 4, 4, 0])])


# matmul
def mm(trans_a, trans_b):
    def f(a, b):
        left = a.transpose(-1, -2) if trans_a else a
        right = b.transpose(-1, -2) if trans_b else b
        return torch.matmul(left, right)
    return f


def stored(batch, rows, cols, trans):
    return randn(*batch, cols, rows) if trans else randn(*batch, rows, cols)


MM_LAYOUTS = [
    ("2d", (), (), 5, 7, 3),
    ("3d", (2,), (2,), 5, 7, 3),
    ("4d", (2, 3), (2, 3), 4, 5, 6),
    ("batched_shared", (2,), (), 5, 7, 3),
    ("shared_batched", (), (2,), 5, 7, 3),
]
for tag, ba, bb, M, K, N in MM_LAYOUTS:
    for ta in (False, True):
        for tb in (False, True):
            name = f"matmul_{tag}{'_tA' if ta else ''}{'_tB' if tb else ''}"
            case(name, "matmul", {"transA": ta, "transB": tb}, [stored(ba, M, K, ta), stored(bb, K, N, tb)],
                 mm(ta, tb), rep=(tag == "3d" and not ta and not tb))
case("matmul_4d_shared", "matmul", {"transA": False, "transB": False}, [randn(2, 3, 4, 5), randn(5, 6)], mm(False, False))
case("matmul_4d_shared_tB", "matmul", {"transA": False, "transB": True}, [randn(2, 3, 4, 5), randn(6, 5)], mm(False, True))

# views and copies
case("reshape_infer", "reshape", {"shape": [-1, 10]}, [randn(3, 4, 5)], lambda x: x.reshape(-1, 10), rep=True)
case("reshape_infer_middle", "reshape", {"shape": [5, -1, 3]}, [randn(3, 5, 7)], lambda x: x.reshape(5, -1, 3))
case("reshape_flat", "reshape", {"shape": [105]}, [randn(3, 5, 7)], lambda x: x.reshape(105))
case("permute_4d", "permute", {"perm": [2, 0, 3, 1]}, [randn(2, 3, 4, 5)], lambda x: x.permute(2, 0, 3, 1), rep=True)
case("permute_reverse", "permute", {"perm": [2, 1, 0]}, [randn(3, 5, 7)], lambda x: x.permute(2, 1, 0))
case("transpose_default", "transpose", {}, [randn(3, 5, 7)], lambda x: x.transpose(-2, -1), rep=True)
case("transpose_0_2", "transpose", {"d0": 0, "d1": 2}, [randn(2, 3, 4, 5)], lambda x: x.transpose(0, 2))
case("slice_1", "slice", {"axis": 1, "start": 2, "end": 6}, [randn(4, 7, 3)], lambda x: x[:, 2:6], rep=True)
case("slice_0", "slice", {"axis": 0, "start": 1, "end": 3}, [randn(4, 7, 3)], lambda x: x[1:3])
case("slice_last", "slice", {"axis": -1, "start": 0, "end": 2}, [randn(4, 7, 3)], lambda x: x[..., 0:2])


def pad_axis(x, axis, start, n):
    axis = axis % x.dim()
    pads = []
    for d in reversed(range(axis, x.dim())):
        pads += [start, n - start - x.shape[axis]] if d == axis else [0, 0]
    return F.pad(x, pads)


for i, (axis, start, n, shape) in enumerate([(1, 2, 9, (3, 4, 5)), (-1, 0, 8, (3, 4, 5)), (0, 3, 4, (1, 5, 7))]):
    case(f"pad_{axis}_{start}_{n}", "pad", {"axis": axis, "start": start, "n": n}, [randn(*shape)],
         lambda x, axis=axis, start=start, n=n: pad_axis(x, axis, start, n), rep=(i == 0))
case("concat_0", "concat", {"axis": 0}, [randn(2, 5, 7), randn(1, 5, 7), randn(3, 5, 7)],
     lambda a, b, c: torch.cat([a, b, c], 0), rep=True)
case("concat_1", "concat", {"axis": 1}, [randn(3, 2, 7), randn(3, 4, 7), randn(3, 1, 7)],
     lambda a, b, c: torch.cat([a, b, c], 1))
case("concat_last", "concat", {"axis": -1}, [randn(3, 5, 2), randn(3, 5, 3), randn(3, 5, 4)],
     lambda a, b, c: torch.cat([a, b, c], -1))


def gather_axis(x, idx, axis):
    """ajar's gatherAxis: out[..., i] = x[..., idx, i] with the axis removed; idx < 0 gives 0 and no gradient."""
    valid = (idx >= 0).unsqueeze(axis)
    g = torch.gather(x, axis, idx.clamp(min=0).unsqueeze(axis))
    return torch.where(valid, g, torch.zeros(())).squeeze(axis)


case("gatherAxis_1", "gatherAxis", {"axis": 1}, [randn(4, 6, 5)], lambda x, i: gather_axis(x, i, 1),
     int_inputs=[ints(0, 6, 4, 5)], rep=True)
case("gatherAxis_last_ignored", "gatherAxis", {"axis": -1}, [randn(5, 9)], lambda x, i: gather_axis(x, i, 1),
     int_inputs=[torch.tensor([3, -1, 8, 0, 3])])
case("gatherAxis_0", "gatherAxis", {"axis": 0}, [randn(6, 4, 3)], lambda x, i: gather_axis(x, i, 0),
     int_inputs=[ints(0, 6, 4, 3)])

# losses
targets = torch.tensor([3, -100, 8, 0, 5, -100, 2])
for i, red in enumerate(["mean", "sum", "none"]):
    case(f"crossEntropy_{red}", "crossEntropy", {"reduction": red, "ignoreIndex": -100}, [randn(7, 9, scale=2.0)],
         lambda x, t, red=red: F.cross_entropy(x, t, ignore_index=-100, reduction=red), int_inputs=[targets],
         rep=(i == 0))
GPT2_VOCAB = 50257  # GPT-2's BPE
big_hash = {"seed": 12345, "lo": -6.0, "hi": 6.0}
case("crossEntropy_gpt2_vocab", "crossEntropy", {"reduction": "mean", "ignoreIndex": -100},
     [hash_uniform(3 * GPT2_VOCAB, big_hash["seed"], big_hash["lo"], big_hash["hi"]).reshape(3, GPT2_VOCAB)],
     lambda x, t: F.cross_entropy(x, t, ignore_index=-100), int_inputs=[torch.tensor([50256, 0, 31337])],
     hashed={0: big_hash})
case("mseLoss", "mseLoss", {}, [randn(3, 5, 7), randn(3, 5, 7)], F.mse_loss, rep=True)

# linear (x W + b in one op, PyTorch's addmm; appended here so the cases above keep their random draws)
case("linear_conv1d", "linear", {"transW": False, "bias": True}, [randn(2, 3, 5), randn(5, 4), randn(4)],
     lambda x, w, b: torch.matmul(x, w) + b, rep=True)
case("linear_nn_linear", "linear", {"transW": True, "bias": True}, [randn(6, 5), randn(4, 5), randn(4)],
     lambda x, w, b: F.linear(x, w, b))
case("linear_no_bias", "linear", {"transW": True, "bias": False}, [randn(2, 2, 7), randn(3, 7)],
     lambda x, w: F.linear(x, w))


def causal_self_attention(qkv, n_head, scale):
    """GPT-2's attention over packed q, k, v (B, T, 3C) as transformers' eager path computes it."""
    b, t, c3 = qkv.shape
    c = c3 // 3
    q, k, v = (z.view(b, t, n_head, c // n_head).transpose(1, 2) for z in qkv.split(c, dim=2))
    att = (q @ k.transpose(-2, -1)) * scale
    att = att.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
    return (att @ v).transpose(1, 2).reshape(b, t, c)


case("causalSelfAttention", "causalSelfAttention", {"nHead": 3, "scale": 0.35}, [randn(2, 7, 36)],
     lambda x: causal_self_attention(x, 3, 0.35), rep=True)
case("causalSelfAttention_one_head_long", "causalSelfAttention", {"nHead": 1, "scale": 0.125}, [randn(1, 33, 24)],
     lambda x: causal_self_attention(x, 1, 0.125))


# The Llama family's ops (appended so the cases above keep their random draws).
case("rmsNorm_odd_row", "rmsNorm", {"eps": 1e-5, "weight": True}, [randn(2, 3, 37, scale=2.0),
     randn(37, scale=0.5, shift=1.0)], lambda x, w: rms_norm(x, w, 1e-5))


def rotate_half(x):
    """transformers' rotate_half (models/llama/modeling_llama.py)."""
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rope(x, n_head, cos, sin):
    """transformers' apply_rotary_pos_emb on x (B, T, H*hs) with ajar's cos, sin (T, hs/2): the model's
    (T, hs) tables are cat(freqs, freqs), and q is (B, H, T, hs) there."""
    b, t, c = x.shape
    xh = x.view(b, t, n_head, c // n_head).transpose(1, 2)
    cos_full = torch.cat((cos, cos), dim=-1)[None, None]
    sin_full = torch.cat((sin, sin), dim=-1)[None, None]
    out = xh * cos_full + rotate_half(xh) * sin_full
    return out.transpose(1, 2).reshape(b, t, c)


def rope_tables(positions, hs, theta=10000.0):
    """Llama's default rotary tables for the given positions: cos and sin of position * theta^(-2i/hs)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, hs, 2, dtype=torch.int64).float() / hs))
    freqs = torch.outer(torch.tensor(positions, dtype=torch.float32), inv_freq)
    return freqs.cos(), freqs.sin()


rc, rs = rope_tables(range(5), 8)
case("rope", "rope", {"nHead": 3}, [randn(2, 5, 24), rc, rs], lambda x, c, s: rope(x, 3, c, s), rep=True)
rc, rs = rope_tables(range(7, 13), 6)  # positions after a 7-token cache; hs/2 = 3 (no full SIMD lane)
case("rope_offset_odd_half", "rope", {"nHead": 2}, [randn(1, 6, 12), rc, rs], lambda x, c, s: rope(x, 2, c, s))
case("rope_random_tables", "rope", {"nHead": 1}, [randn(2, 3, 16), randn(3, 8), randn(3, 8)],
     lambda x, c, s: rope(x, 1, c, s))

case("siluMul", "siluMul", {}, [randn(3, 5, 7, scale=2.0), randn(3, 5, 7)], lambda g, u: F.silu(g) * u, rep=True)
case("siluMul_wide", "siluMul", {}, [randn(2, 37, scale=6.0), randn(2, 37)], lambda g, u: F.silu(g) * u)


def repeat_kv(h, n_rep):
    """transformers' repeat_kv: (B, Hkv, T, hs) -> (B, Hkv * n_rep, T, hs)."""
    b, hkv, t, d = h.shape
    if n_rep == 1:
        return h
    return h[:, :, None, :, :].expand(b, hkv, n_rep, t, d).reshape(b, hkv * n_rep, t, d)


def grouped_attention(q, k, v, n_head, n_kv, scale, window=None):
    """Llama's eager attention with grouped KV heads: the last Tq of Tk keys align with the queries (a KV
    cache holds the rest); with a sliding window (Mistral) query position p sees keys p - window + 1 .. p."""
    b, tq, c = q.shape
    tk = k.shape[1]
    hs = c // n_head
    qh = q.view(b, tq, n_head, hs).transpose(1, 2)
    kh = repeat_kv(k.view(b, tk, n_kv, hs).transpose(1, 2), n_head // n_kv)
    vh = repeat_kv(v.view(b, tk, n_kv, hs).transpose(1, 2), n_head // n_kv)
    att = (qh @ kh.transpose(-2, -1)) * scale
    pos = torch.arange(tq)[:, None] + (tk - tq)
    key = torch.arange(tk)[None, :]
    hidden = key > pos
    if window is not None:
        hidden = hidden | (pos - key >= window)
    att = att.masked_fill(hidden, float("-inf")).softmax(-1)
    return (att @ vh).transpose(1, 2).reshape(b, tq, c)


GROUPED = [
    # name, B, Tq, Tk, Hq, Hkv, hs, window, scale
    ("groupedCausalAttention", 2, 6, 6, 4, 2, 8, None, 0.35),
    ("groupedCausalAttention_kv_cache", 1, 3, 9, 6, 2, 4, None, 0.5),
    ("groupedCausalAttention_one_kv_head_window", 1, 10, 10, 4, 1, 6, 3, 0.4),
    ("groupedCausalAttention_cache_window", 2, 4, 11, 3, 3, 8, 5, 0.35),
    ("groupedCausalAttention_one_query", 1, 1, 12, 6, 3, 4, None, 0.5),
]
for i, (name, b, tq, tk, hq, hkv, hs, window, scale) in enumerate(GROUPED):
    case(name, "groupedCausalAttention", {"nHead": hq, "nKvHead": hkv, "scale": scale, "window": window},
         [randn(b, tq, hq * hs), randn(b, tk, hkv * hs), randn(b, tk, hkv * hs)],
         lambda q, k, v, hq=hq, hkv=hkv, scale=scale, window=window: grouped_attention(q, k, v, hq, hkv, scale, window),
         rep=(i == 0))


# ---------------------------------------------------------------------------------------------


def main():
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names)), "case names must be unique"
    for op in sorted({c["op"] for c in CASES}):
        reps = [c["name"] for c in CASES if c["op"] == op and c.get("rep")]
        needs_rep = any(c["upstream"] is not None for c in CASES if c["op"] == op)
        assert len(reps) == (1 if needs_rep else 0), f"op {op}: representative cases {reps}"
    doc = {
        "generator": "test/golden/ops/make_ops.py",
        "torch": torch.__version__,
        "seed": SEED,
        "cases": CASES,
    }
    path = os.path.join(HERE, "ops.json")
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    os.replace(path + ".tmp", path)
    print(f"wrote {len(CASES)} cases to {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
