// Op codes and parameter-block layouts shared with src/backends/wasm/abi.ts. The op codes are exported as
// wasm globals, so the JavaScript side reads them from the module instead of repeating them.

// Unary ops, in the order of UNARY_OPS in src/tensor/backend.ts.
export const U_NEG: i32 = 0;
export const U_EXP: i32 = 1;
export const U_LOG: i32 = 2;
export const U_SQRT: i32 = 3;
export const U_RSQRT: i32 = 4;
export const U_TANH: i32 = 5;
export const U_SIGMOID: i32 = 6;
export const U_RELU: i32 = 7;
export const U_STEP: i32 = 8;
export const U_ABS: i32 = 9;
export const U_SIGN: i32 = 10;
export const U_GELU_TANH: i32 = 11;
export const U_GELU_ERF: i32 = 12;
export const U_GELU_TANH_GRAD: i32 = 13;
export const U_GELU_ERF_GRAD: i32 = 14;

// Binary ops, in the order of BINARY_OPS.
export const B_ADD: i32 = 0;
export const B_SUB: i32 = 1;
export const B_MUL: i32 = 2;
export const B_DIV: i32 = 3;
export const B_POW: i32 = 4;
export const B_MAXIMUM: i32 = 5;
export const B_GT: i32 = 6;
export const B_LT: i32 = 7;
export const B_EQ: i32 = 8;

// Reductions.
export const R_SUM: i32 = 0;
export const R_MAX: i32 = 1;
export const R_ARGMAX: i32 = 2;

// Matmul modes.
export const MM_TILED: i32 = 0;
export const MM_GEMV_STREAM: i32 = 1; // y[j] = sum_k v[k] W[k, j], W rows contiguous in j
export const MM_GEMV_DOT: i32 = 2; // y[j] = sum_k v[k] W[j, k], W rows contiguous in k

/** Most dimensions a broadcast or permutation may keep after adjacent dimensions are merged. */
export const MAX_RANK: i32 = 8;

// Parameter-block slots (int32 each). Broadcast blocks: rank, then shape[MAX_RANK], then one stride array
// of MAX_RANK per operand (element strides, 0 where broadcast).
export const P_OP: i32 = 0;
export const P_RANK: i32 = 4;
export const P_SHAPE: i32 = 8;
