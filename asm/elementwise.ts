// Element-wise kernels: unary ops, binary ops and where, with broadcasting described by merged dimensions.
// Each *Run export handles the flat output range [begin, end) so callers can split the work across threads.
import {
  B_ADD, B_DIV, B_EQ, B_GT, B_LT, B_MAXIMUM, B_MUL, B_POW, B_SUB, MAX_RANK, P_RANK, P_SHAPE,
  U_ABS, U_EXP, U_GELU_ERF, U_GELU_ERF_GRAD, U_GELU_TANH, U_GELU_TANH_GRAD, U_LOG, U_NEG, U_RELU, U_RSQRT,
  U_SIGMOID, U_SIGN, U_SQRT, U_STEP, U_TANH,
} from './abi';
import {
  c64, ONE, vexp, vgeluErfF32, vgeluTanhF32, vtanh,
} from './vmath';
import { at, imin, param, paramPtr } from './simd';

// ---------------------------------------------------------------------------------------------
// Unary. Block: [op, x, out].

/** A transcendental op on two float64 lanes, written as the js reference writes it (same association). */
@inline function unary64(op: i32, x: v128): v128 {
  const one = c64(ONE);
  if (op == U_EXP) return vexp(x);
  if (op == U_TANH) return vtanh(x);
  return f64x2.div(one, f64x2.add(one, vexp(f64x2.neg(x)))); // U_SIGMOID
}

@inline function unarySimd(op: i32, x: v128): v128 {
  const zero = f32x4.splat(0);
  const one = f32x4.splat(1);
  if (op == U_NEG) return f32x4.neg(x);
  if (op == U_GELU_TANH) return vgeluTanhF32(x, false);
  if (op == U_GELU_TANH_GRAD) return vgeluTanhF32(x, true);
  if (op == U_GELU_ERF) return vgeluErfF32(x, false);
  if (op == U_GELU_ERF_GRAD) return vgeluErfF32(x, true);
  if (op == U_ABS) return f32x4.abs(x);
  if (op == U_SQRT) return f32x4.sqrt(x);
  if (op == U_RELU) return v128.and(x, v128.or(f32x4.gt(x, zero), f32x4.ne(x, x))); // NaN stays, -0 gives +0
  if (op == U_STEP) return v128.and(one, f32x4.gt(x, zero));
  if (op == U_SIGN) {
    // Math.sign: 1, -1, or x itself for +-0 and NaN.
    return v128.bitselect(one, v128.bitselect(f32x4.neg(one), x, f32x4.lt(x, zero)), f32x4.gt(x, zero));
  }
  const lo = f64x2.promote_low_f32x4(x);
  const hi = f64x2.promote_low_f32x4(v128.shuffle<f32>(x, x, 2, 3, 0, 1));
  let rlo: v128;
  let rhi: v128;
  if (op == U_RSQRT) {
    // 1 / sqrt(x) in float64, rounded once to float32 like the reference.
    const o = f64x2.splat(1);
    rlo = f64x2.div(o, f64x2.sqrt(lo));
    rhi = f64x2.div(o, f64x2.sqrt(hi));
  } else if (op == U_LOG) {
    rlo = f64x2.splat(Math.log(f64x2.extract_lane(lo, 0)));
    rlo = f64x2.replace_lane(rlo, 1, Math.log(f64x2.extract_lane(lo, 1)));
    rhi = f64x2.splat(Math.log(f64x2.extract_lane(hi, 0)));
    rhi = f64x2.replace_lane(rhi, 1, Math.log(f64x2.extract_lane(hi, 1)));
  } else {
    rlo = unary64(op, lo);
    rhi = unary64(op, hi);
  }
  return v128.shuffle<f32>(f32x4.demote_f64x2_zero(rlo), f32x4.demote_f64x2_zero(rhi), 0, 1, 4, 5);
}

/** Load n < 4 floats at p into the low lanes of a vector (the rest 0). */
@inline export function loadPartial(p: usize, n: i32): v128 {
  let v = f32x4.replace_lane(f32x4.splat(0), 0, load<f32>(p));
  if (n > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (n > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  return v;
}

/** Store the low n < 4 lanes of v at p. */
@inline export function storePartial(p: usize, v: v128, n: i32): void {
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (n > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (n > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}

@inline function unarySpan(op: i32, x: usize, o: usize, begin: i32, end: i32): void {
  let i = begin;
  for (; i + 8 <= end; i += 8) {
    v128.store(at(o, i), unarySimd(op, v128.load(at(x, i))));
    v128.store(at(o, i), unarySimd(op, v128.load(at(x, i), 16)), 16);
  }
  for (; i + 4 <= end; i += 4) v128.store(at(o, i), unarySimd(op, v128.load(at(x, i))));
  // The last 1-3 elements go through the same vector code, so a chunk boundary never changes a result.
  if (i < end) storePartial(at(o, i), unarySimd(op, loadPartial(at(x, i), end - i)), end - i);
}

// NOTE: one function per op, each inlining the span with its op as a literal. The compiler then folds every
// `op == ...` test away inside that function. Inlining the span straight into the switch below let the
// optimizer merge the (then identical) switch arms into one loop that evaluated every op for every vector.
function unaryNeg(x: usize, o: usize, b: i32, e: i32): void { unarySpan(U_NEG, x, o, b, e); }
function unaryExp(x: usize, o: usize, b: i32, e: i32): void { unarySpan(U_EXP, x, o, b, e); }
function unaryLog(x: usize, o: usize, b: i32, e: i32): void { unarySpan(U_LOG, x, o, b, e); }
function unarySqrt(x: usize, o: usize, b: i32, e: i32): void { unarySpan(U_SQRT, x, o, b, e); }
function unaryRsqrt(x: usize, o: usize, b: i32, e: i32): void { unarySpan(U_RSQRT, x, o, b, e); }
function unaryTanh(x: usize, o: usize, b: i32, e: i32): void { unarySpan(U_TANH, x, o, b, e); }
function unarySigmoid(x: usize, o: usize, b: i32, e: i32): void { unarySpan(U_SIGMOID, x, o, b, e); }
function unaryRelu(x: usize, o: usize, b: i32, e: i32): void { unarySpan(U_RELU, x, o, b, e); }
function unaryStep(x: usize, o: usize, b: i32, e: i32): void { unarySpan(U_STEP, x, o, b, e); }
function unaryAbs(x: usize, o: usize, b: i32, e: i32): void { unarySpan(U_ABS, x, o, b, e); }
function unarySign(x: usize, o: usize, b: i32, e: i32): void { unarySpan(U_SIGN, x, o, b, e); }
function unaryGeluTanh(x: usize, o: usize, b: i32, e: i32): void { unarySpan(U_GELU_TANH, x, o, b, e); }
function unaryGeluErf(x: usize, o: usize, b: i32, e: i32): void { unarySpan(U_GELU_ERF, x, o, b, e); }
function unaryGeluTanhGrad(x: usize, o: usize, b: i32, e: i32): void { unarySpan(U_GELU_TANH_GRAD, x, o, b, e); }
function unaryGeluErfGrad(x: usize, o: usize, b: i32, e: i32): void { unarySpan(U_GELU_ERF_GRAD, x, o, b, e); }

export function unaryRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  const x = paramPtr(p, 1);
  const o = paramPtr(p, 2);
  switch (param(p, 0)) {
    case U_NEG: unaryNeg(x, o, begin, end); break;
    case U_EXP: unaryExp(x, o, begin, end); break;
    case U_LOG: unaryLog(x, o, begin, end); break;
    case U_SQRT: unarySqrt(x, o, begin, end); break;
    case U_RSQRT: unaryRsqrt(x, o, begin, end); break;
    case U_TANH: unaryTanh(x, o, begin, end); break;
    case U_SIGMOID: unarySigmoid(x, o, begin, end); break;
    case U_RELU: unaryRelu(x, o, begin, end); break;
    case U_STEP: unaryStep(x, o, begin, end); break;
    case U_ABS: unaryAbs(x, o, begin, end); break;
    case U_SIGN: unarySign(x, o, begin, end); break;
    case U_GELU_TANH: unaryGeluTanh(x, o, begin, end); break;
    case U_GELU_ERF: unaryGeluErf(x, o, begin, end); break;
    case U_GELU_TANH_GRAD: unaryGeluTanhGrad(x, o, begin, end); break;
    default: unaryGeluErfGrad(x, o, begin, end); break;
  }
}

// ---------------------------------------------------------------------------------------------
// Broadcast walking. A block describes the output as `rank` merged dimensions (shape at P_SHAPE) and, per
// operand, element strides (0 where the operand is broadcast). The innermost stride of each operand is 0 or 1.

/** Element offset of flat output position pos for the stride array at slot s, skipping the innermost dim. */
@inline function outerOffset(p: usize, rank: i32, s: i32, pos: i32): i32 {
  let rem = pos / param(p, P_SHAPE + rank - 1);
  let off = 0;
  for (let d = rank - 2; d >= 0; d--) {
    const n = param(p, P_SHAPE + d);
    off += (rem % n) * param(p, s + d);
    rem /= n;
  }
  return off;
}

// ---------------------------------------------------------------------------------------------
// Binary. Block: [op, a, b, out, rank, -, -, -, shape[8], aStride[8], bStride[8]].

const B_ASTR: i32 = P_SHAPE + MAX_RANK;
const B_BSTR: i32 = P_SHAPE + 2 * MAX_RANK;

@inline function binarySimd(op: i32, x: v128, y: v128): v128 {
  const one = f32x4.splat(1);
  if (op == B_ADD) return f32x4.add(x, y);
  if (op == B_SUB) return f32x4.sub(x, y);
  if (op == B_MUL) return f32x4.mul(x, y);
  if (op == B_DIV) return f32x4.div(x, y);
  if (op == B_MAXIMUM) return v128.bitselect(x, y, v128.or(f32x4.ge(x, y), f32x4.ne(x, x))); // NaN from either side
  if (op == B_GT) return v128.and(one, f32x4.gt(x, y));
  if (op == B_LT) return v128.and(one, f32x4.lt(x, y));
  return v128.and(one, f32x4.eq(x, y)); // B_EQ
}

@inline function binaryScalar(op: i32, x: f32, y: f32): f32 {
  switch (op) {
    case B_ADD: return x + y;
    case B_SUB: return x - y;
    case B_MUL: return x * y;
    case B_DIV: return x / y;
    case B_POW: return <f32>Math.pow(<f64>x, <f64>y);
    case B_MAXIMUM: return x >= y || x != x ? x : y;
    case B_GT: return x > y ? 1 : 0;
    case B_LT: return x < y ? 1 : 0;
    default: return x == y ? 1 : 0;
  }
}

/** out[0..n) = a op b where each input steps by its stride (0 or 1). */
@inline function binarySpan(op: i32, a: usize, as: i32, b: usize, bs: i32, o: usize, n: i32): void {
  let i = 0;
  if (op == B_POW) {
    for (; i < n; i++) store<f32>(at(o, i), binaryScalar(op, load<f32>(at(a, i * as)), load<f32>(at(b, i * bs))));
    return;
  }
  if (as != 0 && bs != 0) {
    for (; i + 8 <= n; i += 8) {
      v128.store(at(o, i), binarySimd(op, v128.load(at(a, i)), v128.load(at(b, i))));
      v128.store(at(o, i), binarySimd(op, v128.load(at(a, i), 16), v128.load(at(b, i), 16)), 16);
    }
    for (; i + 4 <= n; i += 4) v128.store(at(o, i), binarySimd(op, v128.load(at(a, i)), v128.load(at(b, i))));
    for (; i < n; i++) store<f32>(at(o, i), binaryScalar(op, load<f32>(at(a, i)), load<f32>(at(b, i))));
  } else if (as != 0) {
    const ys = load<f32>(b);
    const y = f32x4.splat(ys);
    for (; i + 8 <= n; i += 8) {
      v128.store(at(o, i), binarySimd(op, v128.load(at(a, i)), y));
      v128.store(at(o, i), binarySimd(op, v128.load(at(a, i), 16), y), 16);
    }
    for (; i + 4 <= n; i += 4) v128.store(at(o, i), binarySimd(op, v128.load(at(a, i)), y));
    for (; i < n; i++) store<f32>(at(o, i), binaryScalar(op, load<f32>(at(a, i)), ys));
  } else if (bs != 0) {
    const xs = load<f32>(a);
    const x = f32x4.splat(xs);
    for (; i + 8 <= n; i += 8) {
      v128.store(at(o, i), binarySimd(op, x, v128.load(at(b, i))));
      v128.store(at(o, i), binarySimd(op, x, v128.load(at(b, i), 16)), 16);
    }
    for (; i + 4 <= n; i += 4) v128.store(at(o, i), binarySimd(op, x, v128.load(at(b, i))));
    for (; i < n; i++) store<f32>(at(o, i), binaryScalar(op, xs, load<f32>(at(b, i))));
  } else {
    const r = binaryScalar(op, load<f32>(a), load<f32>(b));
    const rv = f32x4.splat(r);
    for (; i + 4 <= n; i += 4) v128.store(at(o, i), rv);
    for (; i < n; i++) store<f32>(at(o, i), r);
  }
}

@inline function binaryRange(op: i32, p: usize, begin: i32, end: i32): void {
  const a = paramPtr(p, 1);
  const b = paramPtr(p, 2);
  const o = paramPtr(p, 3);
  const rank = param(p, P_RANK);
  const inner = param(p, P_SHAPE + rank - 1);
  const as = param(p, B_ASTR + rank - 1);
  const bs = param(p, B_BSTR + rank - 1);
  let pos = begin;
  while (pos < end) {
    const j = pos % inner;
    const len = imin(inner - j, end - pos);
    const offA = outerOffset(p, rank, B_ASTR, pos) + j * as;
    const offB = outerOffset(p, rank, B_BSTR, pos) + j * bs;
    binarySpan(op, at(a, offA), as, at(b, offB), bs, at(o, pos), len);
    pos += len;
  }
}

// NOTE: one function per op, as for unary ops above.
function binaryAdd(p: usize, b: i32, e: i32): void { binaryRange(B_ADD, p, b, e); }
function binarySub(p: usize, b: i32, e: i32): void { binaryRange(B_SUB, p, b, e); }
function binaryMul(p: usize, b: i32, e: i32): void { binaryRange(B_MUL, p, b, e); }
function binaryDiv(p: usize, b: i32, e: i32): void { binaryRange(B_DIV, p, b, e); }
function binaryPow(p: usize, b: i32, e: i32): void { binaryRange(B_POW, p, b, e); }
function binaryMaximum(p: usize, b: i32, e: i32): void { binaryRange(B_MAXIMUM, p, b, e); }
function binaryGt(p: usize, b: i32, e: i32): void { binaryRange(B_GT, p, b, e); }
function binaryLt(p: usize, b: i32, e: i32): void { binaryRange(B_LT, p, b, e); }
function binaryEq(p: usize, b: i32, e: i32): void { binaryRange(B_EQ, p, b, e); }

export function binaryRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  switch (param(p, 0)) {
    case B_ADD: binaryAdd(p, begin, end); break;
    case B_SUB: binarySub(p, begin, end); break;
    case B_MUL: binaryMul(p, begin, end); break;
    case B_DIV: binaryDiv(p, begin, end); break;
    case B_POW: binaryPow(p, begin, end); break;
    case B_MAXIMUM: binaryMaximum(p, begin, end); break;
    case B_GT: binaryGt(p, begin, end); break;
    case B_LT: binaryLt(p, begin, end); break;
    default: binaryEq(p, begin, end); break;
  }
}

// ---------------------------------------------------------------------------------------------
// Where. Block: [out, cond, a, b, rank, -, -, -, shape[8], cStride[8], aStride[8], bStride[8]].

const W_CSTR: i32 = P_SHAPE + MAX_RANK;
const W_ASTR: i32 = P_SHAPE + 2 * MAX_RANK;
const W_BSTR: i32 = P_SHAPE + 3 * MAX_RANK;

function whereSpan(c: usize, cs: i32, a: usize, as: i32, b: usize, bs: i32, o: usize, n: i32): void {
  const zero = f32x4.splat(0);
  const cS = v128.load32_splat(c);
  const aS = v128.load32_splat(a);
  const bS = v128.load32_splat(b);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const cv = cs != 0 ? v128.load(at(c, i)) : cS;
    const av = as != 0 ? v128.load(at(a, i)) : aS;
    const bv = bs != 0 ? v128.load(at(b, i)) : bS;
    v128.store(at(o, i), v128.bitselect(av, bv, f32x4.ne(cv, zero))); // NaN != 0 picks a, as the reference
  }
  for (; i < n; i++) {
    const cv = load<f32>(at(c, i * cs));
    store<f32>(at(o, i), cv != 0 ? load<f32>(at(a, i * as)) : load<f32>(at(b, i * bs)));
  }
}

export function whereRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  const o = paramPtr(p, 0);
  const c = paramPtr(p, 1);
  const a = paramPtr(p, 2);
  const b = paramPtr(p, 3);
  const rank = param(p, P_RANK);
  const inner = param(p, P_SHAPE + rank - 1);
  const cs = param(p, W_CSTR + rank - 1);
  const as = param(p, W_ASTR + rank - 1);
  const bs = param(p, W_BSTR + rank - 1);
  let pos = begin;
  while (pos < end) {
    const j = pos % inner;
    const len = imin(inner - j, end - pos);
    const offC = outerOffset(p, rank, W_CSTR, pos) + j * cs;
    const offA = outerOffset(p, rank, W_ASTR, pos) + j * as;
    const offB = outerOffset(p, rank, W_BSTR, pos) + j * bs;
    whereSpan(at(c, offC), cs, at(a, offA), as, at(b, offB), bs, at(o, pos), len);
    pos += len;
  }
}
