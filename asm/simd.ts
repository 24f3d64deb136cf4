// SIMD helpers shared by the kernels. With relaxed SIMD enabled (the second build), madd is a fused
// multiply-add where the hardware has one; otherwise it is a separate multiply and add.

/** a * b + c, lane-wise on f32x4. */
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return f32x4.relaxed_madd(a, b, c);
  } else {
    return f32x4.add(f32x4.mul(a, b), c);
  }
}

/** Byte address of element i of a float32/int32 buffer starting at base. */
@inline export function at(base: usize, i: i32): usize {
  return base + ((<usize>i) << 2);
}

/** Sum of the four lanes of v, in float64. */
@inline export function hsum64(v: v128): f64 {
  return (<f64>f32x4.extract_lane(v, 0) + <f64>f32x4.extract_lane(v, 1))
    + (<f64>f32x4.extract_lane(v, 2) + <f64>f32x4.extract_lane(v, 3));
}

/** Sum of the four lanes of v, in float32 (pairwise). */
@inline export function hsum32(v: v128): f32 {
  const s = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

@inline export function imin(a: i32, b: i32): i32 {
  return a < b ? a : b;
}

/** Read slot i (int32) of a parameter block. */
@inline export function param(p: usize, i: i32): i32 {
  return load<i32>(p + ((<usize>i) << 2));
}

/** Read slot i of a parameter block as a byte address. */
@inline export function paramPtr(p: usize, i: i32): usize {
  return <usize>load<u32>(p + ((<usize>i) << 2));
}
