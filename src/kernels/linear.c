// Linear-layer kernels for tfvlm: Y = X·Wᵀ (+ b) with W in its checkpoint precision (f32, bf16,
// f16, or MLX's 4- and 8-bit affine quantization) inside a shared WebAssembly.Memory ("arena").
// Built by scripts/build-kernels.mjs into linear.wasm; driven by pool.ts / index.ts, which split
// the panel range across threads (threads split output columns, never the reduction, so a panel's
// result does not depend on the split).
//
// Rules of this file: no libc, no data segments, nothing on the C stack (every local lives in a
// wasm local or a v128 register), pointers are byte addresses in the imported memory.
//
// Weight layout "panel-8". W [N, K] (row-major in safetensors) is stored as ceil(N/8) panels;
// panel p holds, for k = 0..K-1, the 8 values W[8p+j, k] (j = 0..7) contiguous; rows ≥ N are 0.
//
//   panel p, element (k, j)  at  w + ((p·K + k)·8 + j)·sizeof(element)
//
// One k step of a panel is one 16-byte load for bf16/f16 (8 values) and two for f32, so a
// matrix-vector product reads every weight byte once, in order, and a register tile of
// MR rows × 8 columns reuses each converted weight vector MR times.
//
// Quantized weights, layout "qpanel-8" (MLX's affine groups: bits b = 4 or 8, group size G = 32,
// 64 or 128, K a multiple of G; each group of G consecutive k of a row has a scale s and a bias
// b, and w = s·q + b for its codes q in [0, 2^b − 1]). Panels of 8 rows again, ceil(N/8) of them;
// panel p is K/G group blocks in k order, block g of 64 + G·b bytes:
//
//   [ s of rows 8p..8p+7: 8 f32 ][ b of rows 8p..8p+7: 8 f32 ][ codes: G·b bytes, 16 at a time ]
//   panel p, block g  at  w + (p·K/G + g)·(64 + G·b)
//
// The codes of a block are G·b/16 vectors of 16 bytes, each holding all 8 rows of 128/(8b) k steps;
// in 32-bit lane L (= bytes 4L..4L+3) sit rows L and L + 4:
//   b = 8: vector t, lane L, byte B (0..3):  row L + 4·(B & 1), k = 2t + (B >> 1)
//   b = 4: vector t, lane L, byte u (0..3):  row L in the low nibble, row L + 4 in the high one,
//          k = 4t + u   (so nibble i of the lane is row L + 4·(i & 1), k = 4t + (i >> 1))
// A code is then one AND and shift away from an f32x4 of 4 rows (the matrix-matrix kernel's
// dequantization), and one AND or shift of the 16-bit lanes away from 8 codes of 4 rows × 2 k
// steps that i32x4.dot_i16x8_s multiplies by x in 16-bit halves (the matrix-vector kernel).
// Scales and biases are stored widened to f32 (the caller widens bf16/f16 ones, exactly), beside
// the codes they scale, so every kernel reads one stream: 8/G bytes per weight (0.25, 0.125,
// 0.0625 for G = 32, 64, 128) where the checkpoint spends 4/G; bytes per weight in all:
// b/8 + 8/G (q4, G = 64: 0.625; q8, G = 64: 1.125). Rows ≥ N have codes, scale and bias 0.
//
// Widening 16-bit to f32 is exact:
//   bf16: the 16 bits become the high half of the f32 (a shuffle against zero, or a shift/mask).
//   f16:  with h in the high half of a 32-bit lane, an arithmetic shift by 3 puts the exponent
//         and mantissa where an f32's go (less 112 of exponent bias) and copies the sign into bits
//         31..28; masking 0x8fffe000 keeps the sign bit alone. That is f = T·2^-112 (T the f16
//         value), an f32 denormal when T is an f16 subnormal; f16_from_scaled brings it back
//         without ever multiplying a denormal (see there). f16 inf/NaN (exponent 31) come out as
//         the finite values ±65536·(1 + m/1024): the loader must refuse f16 weights that hold them
//         (f16_all_finite checks).
#include <wasm_simd128.h>

typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long usize; // 32 bits on wasm32: byte offsets up to 4 GiB

#define EXPORT(name) __attribute__((export_name(#name))) name
#define MIN(a, b) ((a) < (b) ? (a) : (b))

// ---------------------------------------------------------------------------------------------
// Widening: one v128 of 8 × 16-bit → two v128 of 4 × f32 (lanes 0..3, lanes 4..7).

static inline v128_t bf16_lo(v128_t h) {
  return wasm_i16x8_shuffle(wasm_i32x4_const_splat(0), h, 0, 8, 1, 9, 2, 10, 3, 11);
}
static inline v128_t bf16_hi(v128_t h) {
  return wasm_i16x8_shuffle(wasm_i32x4_const_splat(0), h, 4, 12, 5, 13, 6, 14, 7, 15);
}
/**
 * f16 → f32 without denormal arithmetic. f = T·2^-112 as f32 bits (T the f16 value) is an f32
 * denormal when T is an f16 subnormal, and an x86 multiply takes a microcode assist (~100 cycles)
 * on a denormal input (an add does not). Adding 2^-113 is exact for every finite T and gives a
 * normal number (or 0); times 2^112 it is T + 0.5, exactly; minus 0.5 leaves T.
 * (−0 becomes +0, which no sum can tell apart.)
 */
static inline v128_t f16_from_scaled(v128_t f) {
  v128_t s = wasm_f32x4_add(f, wasm_f32x4_const_splat(0x1p-113f));
  return wasm_f32x4_sub(wasm_f32x4_mul(s, wasm_f32x4_const_splat(0x1p112f)), wasm_f32x4_const_splat(0.5f));
}
/** f16 in the high half of each 32-bit lane → its bits as T·2^-112 (see the header comment). */
static inline v128_t f16_high_scaled(v128_t hs) {
  return wasm_v128_and(wasm_i32x4_shr(hs, 3), wasm_i32x4_const_splat((int)0x8fffe000));
}
static inline v128_t f16_lo(v128_t h) { return f16_from_scaled(f16_high_scaled(bf16_lo(h))); }
static inline v128_t f16_hi(v128_t h) { return f16_from_scaled(f16_high_scaled(bf16_hi(h))); }

/** Exact for every f16, ±0 included (the scalar path: gather_row). */
static inline float f16_scalar(u16 h) {
  u32 sign = (u32)(h & 0x8000) << 16, mag = h & 0x7fff;
  if (mag >= 0x0400) return __builtin_bit_cast(float, sign | ((mag << 13) + (112u << 23)));
  float v = (float)mag * 0x1p-24f; // subnormal or zero: m · 2^-24, all normal arithmetic
  return __builtin_bit_cast(float, sign | __builtin_bit_cast(u32, v));
}
static inline float bf16_scalar(u16 h) { return __builtin_bit_cast(float, (u32)h << 16); }

// ---------------------------------------------------------------------------------------------
// f16_all_finite(src, count): 1 when no value of the f16 array at src is inf or NaN, else 0.

int EXPORT(f16_all_finite)(const u16 *src, usize count) {
  const v128_t exp = wasm_i16x8_const_splat(0x7c00);
  v128_t bad = wasm_i32x4_const_splat(0);
  usize i = 0;
  for (; i + 8 <= count; i += 8) {
    bad = wasm_v128_or(bad, wasm_i16x8_eq(wasm_v128_and(wasm_v128_load(src + i), exp), exp));
  }
  int ok = !wasm_v128_any_true(bad);
  for (; i < count; i++) ok &= (src[i] & 0x7c00) != 0x7c00;
  return ok;
}

// ---------------------------------------------------------------------------------------------
// pack_<dt>(src, dst, N, K, panel_begin, panel_end): row-major [N, K] at src → panels
// [begin, end) of the panel-8 layout at dst. Exact data movement; src and dst must not overlap.
// Eight rows are read side by side, 8 (16-bit) or 4 (f32) k at a time, and transposed in
// registers; the tail of K and the zero rows of the last panel go value by value.

/** The rows of panel p that exist (≤ 8). */
static inline usize panel_rows(usize p, usize N) { return MIN(8, N - 8 * p); }

static void pack_panel_u16(const u16 *src, u16 *dst, usize rows, usize K) {
  usize k = 0;
  if (rows == 8) {
    for (; k + 8 <= K; k += 8) {
      // r_j = W[j, k..k+7]; out_i = W[0..7, k+i].
      v128_t r0 = wasm_v128_load(src + 0 * K + k), r1 = wasm_v128_load(src + 1 * K + k);
      v128_t r2 = wasm_v128_load(src + 2 * K + k), r3 = wasm_v128_load(src + 3 * K + k);
      v128_t r4 = wasm_v128_load(src + 4 * K + k), r5 = wasm_v128_load(src + 5 * K + k);
      v128_t r6 = wasm_v128_load(src + 6 * K + k), r7 = wasm_v128_load(src + 7 * K + k);
      // 16-bit interleave: a01 = (r0k0 r1k0 r0k1 r1k1 r0k2 r1k2 r0k3 r1k3), ...
      v128_t a01 = wasm_i16x8_shuffle(r0, r1, 0, 8, 1, 9, 2, 10, 3, 11);
      v128_t b01 = wasm_i16x8_shuffle(r0, r1, 4, 12, 5, 13, 6, 14, 7, 15);
      v128_t a23 = wasm_i16x8_shuffle(r2, r3, 0, 8, 1, 9, 2, 10, 3, 11);
      v128_t b23 = wasm_i16x8_shuffle(r2, r3, 4, 12, 5, 13, 6, 14, 7, 15);
      v128_t a45 = wasm_i16x8_shuffle(r4, r5, 0, 8, 1, 9, 2, 10, 3, 11);
      v128_t b45 = wasm_i16x8_shuffle(r4, r5, 4, 12, 5, 13, 6, 14, 7, 15);
      v128_t a67 = wasm_i16x8_shuffle(r6, r7, 0, 8, 1, 9, 2, 10, 3, 11);
      v128_t b67 = wasm_i16x8_shuffle(r6, r7, 4, 12, 5, 13, 6, 14, 7, 15);
      // 32-bit interleave: c0 = (rows 0-3 at k0, rows 0-3 at k1), ...
      v128_t c0 = wasm_i32x4_shuffle(a01, a23, 0, 4, 1, 5), c1 = wasm_i32x4_shuffle(a01, a23, 2, 6, 3, 7);
      v128_t c2 = wasm_i32x4_shuffle(b01, b23, 0, 4, 1, 5), c3 = wasm_i32x4_shuffle(b01, b23, 2, 6, 3, 7);
      v128_t d0 = wasm_i32x4_shuffle(a45, a67, 0, 4, 1, 5), d1 = wasm_i32x4_shuffle(a45, a67, 2, 6, 3, 7);
      v128_t d2 = wasm_i32x4_shuffle(b45, b67, 0, 4, 1, 5), d3 = wasm_i32x4_shuffle(b45, b67, 2, 6, 3, 7);
      // 64-bit interleave: rows 0-3 and rows 4-7 of one k.
      u16 *o = dst + k * 8;
      wasm_v128_store(o + 0, wasm_i64x2_shuffle(c0, d0, 0, 2));
      wasm_v128_store(o + 8, wasm_i64x2_shuffle(c0, d0, 1, 3));
      wasm_v128_store(o + 16, wasm_i64x2_shuffle(c1, d1, 0, 2));
      wasm_v128_store(o + 24, wasm_i64x2_shuffle(c1, d1, 1, 3));
      wasm_v128_store(o + 32, wasm_i64x2_shuffle(c2, d2, 0, 2));
      wasm_v128_store(o + 40, wasm_i64x2_shuffle(c2, d2, 1, 3));
      wasm_v128_store(o + 48, wasm_i64x2_shuffle(c3, d3, 0, 2));
      wasm_v128_store(o + 56, wasm_i64x2_shuffle(c3, d3, 1, 3));
    }
  }
  for (; k < K; k++) {
    for (usize j = 0; j < 8; j++) dst[k * 8 + j] = j < rows ? src[j * K + k] : 0;
  }
}

static void pack_panel_f32(const float *src, float *dst, usize rows, usize K) {
  usize k = 0;
  if (rows == 8) {
    for (; k + 4 <= K; k += 4) {
      v128_t r0 = wasm_v128_load(src + 0 * K + k), r1 = wasm_v128_load(src + 1 * K + k);
      v128_t r2 = wasm_v128_load(src + 2 * K + k), r3 = wasm_v128_load(src + 3 * K + k);
      v128_t r4 = wasm_v128_load(src + 4 * K + k), r5 = wasm_v128_load(src + 5 * K + k);
      v128_t r6 = wasm_v128_load(src + 6 * K + k), r7 = wasm_v128_load(src + 7 * K + k);
      v128_t a01 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5), b01 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);
      v128_t a23 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5), b23 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
      v128_t a45 = wasm_i32x4_shuffle(r4, r5, 0, 4, 1, 5), b45 = wasm_i32x4_shuffle(r4, r5, 2, 6, 3, 7);
      v128_t a67 = wasm_i32x4_shuffle(r6, r7, 0, 4, 1, 5), b67 = wasm_i32x4_shuffle(r6, r7, 2, 6, 3, 7);
      float *o = dst + k * 8;
      wasm_v128_store(o + 0, wasm_i64x2_shuffle(a01, a23, 0, 2));
      wasm_v128_store(o + 4, wasm_i64x2_shuffle(a45, a67, 0, 2));
      wasm_v128_store(o + 8, wasm_i64x2_shuffle(a01, a23, 1, 3));
      wasm_v128_store(o + 12, wasm_i64x2_shuffle(a45, a67, 1, 3));
      wasm_v128_store(o + 16, wasm_i64x2_shuffle(b01, b23, 0, 2));
      wasm_v128_store(o + 20, wasm_i64x2_shuffle(b45, b67, 0, 2));
      wasm_v128_store(o + 24, wasm_i64x2_shuffle(b01, b23, 1, 3));
      wasm_v128_store(o + 28, wasm_i64x2_shuffle(b45, b67, 1, 3));
    }
  }
  for (; k < K; k++) {
    for (usize j = 0; j < 8; j++) dst[k * 8 + j] = j < rows ? src[j * K + k] : 0.0f;
  }
}

void EXPORT(pack_f32)(const float *src, float *dst, usize N, usize K, usize pb, usize pe) {
  for (usize p = pb; p < pe; p++) pack_panel_f32(src + 8 * p * K, dst + 8 * p * K, panel_rows(p, N), K);
}
void EXPORT(pack_bf16)(const u16 *src, u16 *dst, usize N, usize K, usize pb, usize pe) {
  for (usize p = pb; p < pe; p++) pack_panel_u16(src + 8 * p * K, dst + 8 * p * K, panel_rows(p, N), K);
}
void EXPORT(pack_f16)(const u16 *src, u16 *dst, usize N, usize K, usize pb, usize pe) {
  for (usize p = pb; p < pe; p++) pack_panel_u16(src + 8 * p * K, dst + 8 * p * K, panel_rows(p, N), K);
}

// ---------------------------------------------------------------------------------------------
// gather_row_<dt>(w, K, n, out): out[k] = W[n, k] as f32 (embedding lookup).

void EXPORT(gather_row_f32)(const float *w, usize K, usize n, float *out) {
  const float *col = w + (n >> 3) * K * 8 + (n & 7);
  for (usize k = 0; k < K; k++) out[k] = col[k * 8];
}
void EXPORT(gather_row_bf16)(const u16 *w, usize K, usize n, float *out) {
  const u16 *col = w + (n >> 3) * K * 8 + (n & 7);
  for (usize k = 0; k < K; k++) out[k] = bf16_scalar(col[k * 8]);
}
void EXPORT(gather_row_f16)(const u16 *w, usize K, usize n, float *out) {
  const u16 *col = w + (n >> 3) * K * 8 + (n & 7);
  for (usize k = 0; k < K; k++) out[k] = f16_scalar(col[k * 8]);
}

// ---------------------------------------------------------------------------------------------
// matvec_<dt>(w, x, y, K, panel_begin, panel_end, bias): for panels p in [begin, end),
// y[8p + j] = Σ_k x[k]·W[8p+j, k] (+ bias[8p + j] when bias ≠ 0), j = 0..7. x is f32 [K]; y and
// bias are f32 padded to ceil(N/8)·8 (y's padding receives bias's padding).
//
// Two panels per pass share each splat of x[k]; two k steps per iteration go to two sets of
// accumulators (a float add's latency is 4 cycles), summed at the end. A 16-bit panel step is
// widened as even lanes (columns 0, 2, 4, 6) and odd lanes (1, 3, 5, 7): the 32-bit lane
// (W[.,2i+1] << 16 | W[.,2i]) gives the odd value by masking and the even one by a shift, one op
// each instead of a shuffle; the two accumulators are interleaved back once per panel.
// Per 8 weights: bf16 2 ops to widen + 4 to multiply-add; f16 11 + 4 (f16_from_scaled's add,
// multiply and subtract per 4 lanes are what keep subnormals off the slow path), which is why f16
// streams at about half bf16's rate on one thread.

static inline v128_t splat(const float *p) { return wasm_v128_load32_splat(p); }
static inline v128_t madd(v128_t acc, v128_t a, v128_t b) { return wasm_f32x4_add(acc, wasm_f32x4_mul(a, b)); }

static void matvec_store(float *y, v128_t lo, v128_t hi, const float *bias) {
  if (bias) {
    lo = wasm_f32x4_add(lo, wasm_v128_load(bias));
    hi = wasm_f32x4_add(hi, wasm_v128_load(bias + 4));
  }
  wasm_v128_store(y, lo);
  wasm_v128_store(y + 4, hi);
}
/** Even-lane and odd-lane accumulators → columns 0..3 and 4..7, then as matvec_store. */
static void matvec_store_evenodd(float *y, v128_t even, v128_t odd, const float *bias) {
  matvec_store(y, wasm_i32x4_shuffle(even, odd, 0, 4, 1, 5), wasm_i32x4_shuffle(even, odd, 2, 6, 3, 7), bias);
}

// Widening in lane pairs: v holds 8 × 16-bit; *_even → f32 of lanes 0, 2, 4, 6; *_odd → 1, 3, 5, 7.
static inline v128_t bf16_even(v128_t v) { return wasm_i32x4_shl(v, 16); }
static inline v128_t bf16_odd(v128_t v) { return wasm_v128_and(v, wasm_i32x4_const_splat((int)0xffff0000)); }
static inline v128_t f16_even(v128_t v) { return f16_from_scaled(f16_high_scaled(wasm_i32x4_shl(v, 16))); }
static inline v128_t f16_odd(v128_t v) { return f16_from_scaled(f16_high_scaled(v)); }

static void matvec_panel_f32(const float *w, const float *x, float *y, usize K, const float *bias) {
  v128_t a0 = wasm_f32x4_const_splat(0), a1 = a0, b0 = a0, b1 = a0;
  usize k = 0;
  for (; k + 2 <= K; k += 2, w += 16) {
    v128_t xa = splat(x + k), xb = splat(x + k + 1);
    a0 = madd(a0, xa, wasm_v128_load(w + 0));
    a1 = madd(a1, xa, wasm_v128_load(w + 4));
    b0 = madd(b0, xb, wasm_v128_load(w + 8));
    b1 = madd(b1, xb, wasm_v128_load(w + 12));
  }
  if (k < K) {
    v128_t xa = splat(x + k);
    a0 = madd(a0, xa, wasm_v128_load(w + 0));
    a1 = madd(a1, xa, wasm_v128_load(w + 4));
  }
  matvec_store(y, wasm_f32x4_add(a0, b0), wasm_f32x4_add(a1, b1), bias);
}

static void matvec_2panels_f32(const float *w, const float *x, float *y, usize K, const float *bias) {
  const float *v = w + K * 8;
  v128_t a0 = wasm_f32x4_const_splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  usize k = 0;
  for (; k + 2 <= K; k += 2, w += 16, v += 16) {
    v128_t xa = splat(x + k), xb = splat(x + k + 1);
    a0 = madd(a0, xa, wasm_v128_load(w + 0));
    a1 = madd(a1, xa, wasm_v128_load(w + 4));
    a2 = madd(a2, xa, wasm_v128_load(v + 0));
    a3 = madd(a3, xa, wasm_v128_load(v + 4));
    b0 = madd(b0, xb, wasm_v128_load(w + 8));
    b1 = madd(b1, xb, wasm_v128_load(w + 12));
    b2 = madd(b2, xb, wasm_v128_load(v + 8));
    b3 = madd(b3, xb, wasm_v128_load(v + 12));
  }
  if (k < K) {
    v128_t xa = splat(x + k);
    a0 = madd(a0, xa, wasm_v128_load(w + 0));
    a1 = madd(a1, xa, wasm_v128_load(w + 4));
    a2 = madd(a2, xa, wasm_v128_load(v + 0));
    a3 = madd(a3, xa, wasm_v128_load(v + 4));
  }
  matvec_store(y, wasm_f32x4_add(a0, b0), wasm_f32x4_add(a1, b1), bias);
  matvec_store(y + 8, wasm_f32x4_add(a2, b2), wasm_f32x4_add(a3, b3), bias ? bias + 8 : 0);
}

// Reading ahead (f16 only): past the last-level cache, f16's long chain of ops per load leaves few
// loads in flight and the hardware prefetchers fall behind: a 1 GiB f16 matvec ran at 3.5 GB/s on
// one thread, a third of its in-cache rate and of bf16's. One extra 16-byte load per stream per
// iteration, TOUCH_AHEAD elements (512 bytes) ahead, doubles it (7.2 GB/s); for bf16 it only costs
// (23.8 → 20.1 GB/s in cache, no gain past it). The loads are kept alive by folding them into the
// result under a mask that is zero unless x holds a NaN (when the result is NaN anyway), and stop
// 34 k steps before the end so they never read past the panel pair.
#define TOUCH_AHEAD 256
#define TOUCH_STOP 34

// The two 16-bit kernels differ only in how a lane pair widens and whether they read ahead; a
// macro keeps them one text. STEP2 is two k steps of two panels (w and v, 8K elements apart).
#define MATVEC_16_STEP2(EVEN, ODD)                                                                  \
  {                                                                                                 \
    v128_t xa = splat(x + k), xb = splat(x + k + 1);                                                \
    v128_t wa = wasm_v128_load(w), wb = wasm_v128_load(w + 8);                                      \
    v128_t va = wasm_v128_load(v), vb = wasm_v128_load(v + 8);                                      \
    e0 = madd(e0, xa, EVEN(wa));                                                                    \
    o0 = madd(o0, xa, ODD(wa));                                                                     \
    f0 = madd(f0, xa, EVEN(va));                                                                    \
    p0 = madd(p0, xa, ODD(va));                                                                     \
    e1 = madd(e1, xb, EVEN(wb));                                                                    \
    o1 = madd(o1, xb, ODD(wb));                                                                     \
    f1 = madd(f1, xb, EVEN(vb));                                                                    \
    p1 = madd(p1, xb, ODD(vb));                                                                     \
  }
#define MATVEC_16(PANEL, PANELS2, EVEN, ODD, TOUCH)                                                 \
  static void PANEL(const u16 *w, const float *x, float *y, usize K, const float *bias) {          \
    v128_t e0 = wasm_f32x4_const_splat(0), o0 = e0, e1 = e0, o1 = e0;                               \
    usize k = 0;                                                                                    \
    for (; k + 2 <= K; k += 2, w += 16) {                                                           \
      v128_t xa = splat(x + k), xb = splat(x + k + 1);                                              \
      v128_t wa = wasm_v128_load(w), wb = wasm_v128_load(w + 8);                                    \
      e0 = madd(e0, xa, EVEN(wa));                                                                  \
      o0 = madd(o0, xa, ODD(wa));                                                                   \
      e1 = madd(e1, xb, EVEN(wb));                                                                  \
      o1 = madd(o1, xb, ODD(wb));                                                                   \
    }                                                                                               \
    if (k < K) {                                                                                    \
      v128_t xa = splat(x + k), wa = wasm_v128_load(w);                                             \
      e0 = madd(e0, xa, EVEN(wa));                                                                  \
      o0 = madd(o0, xa, ODD(wa));                                                                   \
    }                                                                                               \
    matvec_store_evenodd(y, wasm_f32x4_add(e0, e1), wasm_f32x4_add(o0, o1), bias);                  \
  }                                                                                                 \
  static void PANELS2(const u16 *w, const float *x, float *y, usize K, const float *bias) {        \
    const u16 *v = w + K * 8;                                                                       \
    v128_t e0 = wasm_f32x4_const_splat(0), o0 = e0, e1 = e0, o1 = e0;                               \
    v128_t f0 = e0, p0 = e0, f1 = e0, p1 = e0, ahead = e0;                                          \
    usize k = 0;                                                                                    \
    for (; TOUCH && k + TOUCH_STOP <= K; k += 2, w += 16, v += 16) {                                \
      ahead = wasm_v128_or(ahead, wasm_v128_or(wasm_v128_load(w + TOUCH_AHEAD), wasm_v128_load(v + TOUCH_AHEAD))); \
      MATVEC_16_STEP2(EVEN, ODD)                                                                    \
    }                                                                                               \
    for (; k + 2 <= K; k += 2, w += 16, v += 16) MATVEC_16_STEP2(EVEN, ODD)                         \
    if (k < K) {                                                                                    \
      v128_t xa = splat(x + k), wa = wasm_v128_load(w), va = wasm_v128_load(v);                     \
      e0 = madd(e0, xa, EVEN(wa));                                                                  \
      o0 = madd(o0, xa, ODD(wa));                                                                   \
      f0 = madd(f0, xa, EVEN(va));                                                                  \
      p0 = madd(p0, xa, ODD(va));                                                                   \
    }                                                                                               \
    if (TOUCH) {                                                                                    \
      v128_t x0 = splat(x);                                                                         \
      e0 = wasm_f32x4_add(e0, wasm_v128_and(ahead, wasm_f32x4_ne(x0, x0)));                         \
    }                                                                                               \
    matvec_store_evenodd(y, wasm_f32x4_add(e0, e1), wasm_f32x4_add(o0, o1), bias);                  \
    matvec_store_evenodd(y + 8, wasm_f32x4_add(f0, f1), wasm_f32x4_add(p0, p1), bias ? bias + 8 : 0); \
  }
MATVEC_16(matvec_panel_bf16, matvec_2panels_bf16, bf16_even, bf16_odd, 0)
MATVEC_16(matvec_panel_f16, matvec_2panels_f16, f16_even, f16_odd, 1)

// PANELS2 plus bursts of NEXT_BURST 16-byte loads 64 bytes apart, from t on (clamped to tlimit),
// one burst every `gap` k steps: matvec_rows_<dt>'s rows ≥ 1 fetching the next panel pair while
// they compute from cache (see there). The same sums in the same order as PANELS2; the loads are
// kept alive as PANELS2's read-ahead is: folded into e0 under a mask that is zero unless x[0] is
// NaN (and then e0 is NaN anyway); e0 started at +0 and so cannot be −0, and adding +0 to it
// leaves its bits.
#define NEXT_BURST 8
#define MATVEC_16_NEXT(NAME, EVEN, ODD)                                                             \
  static void NAME(const u16 *w, const float *x, float *y, usize K, const float *bias, const char *t, usize gap, \
                   const char *tlimit) {                                                            \
    const u16 *v = w + K * 8;                                                                       \
    v128_t e0 = wasm_f32x4_const_splat(0), o0 = e0, e1 = e0, o1 = e0;                               \
    v128_t f0 = e0, p0 = e0, f1 = e0, p1 = e0, ahead = e0;                                          \
    usize k = 0, K2 = K & ~(usize)1;                                                                \
    while (k < K2) {                                                                                \
      for (usize b = 0; b < NEXT_BURST; b++, t += 64)                                               \
        ahead = wasm_v128_or(ahead, wasm_v128_load(MIN(t, tlimit)));                                \
      for (usize end = MIN(K2, k + gap); k < end; k += 2, w += 16, v += 16)                         \
        MATVEC_16_STEP2(EVEN, ODD)                                                                  \
    }                                                                                               \
    if (k < K) {                                                                                    \
      v128_t xa = splat(x + k), wa = wasm_v128_load(w), va = wasm_v128_load(v);                     \
      e0 = madd(e0, xa, EVEN(wa));                                                                  \
      o0 = madd(o0, xa, ODD(wa));                                                                   \
      f0 = madd(f0, xa, EVEN(va));                                                                  \
      p0 = madd(p0, xa, ODD(va));                                                                   \
    }                                                                                               \
    v128_t x0 = splat(x);                                                                           \
    e0 = wasm_f32x4_add(e0, wasm_v128_and(ahead, wasm_f32x4_ne(x0, x0)));                           \
    matvec_store_evenodd(y, wasm_f32x4_add(e0, e1), wasm_f32x4_add(o0, o1), bias);                  \
    matvec_store_evenodd(y + 8, wasm_f32x4_add(f0, f1), wasm_f32x4_add(p0, p1), bias ? bias + 8 : 0); \
  }
MATVEC_16_NEXT(matvec_2panels_bf16_next, bf16_even, bf16_odd)
MATVEC_16_NEXT(matvec_2panels_f16_next, f16_even, f16_odd)

// Panels two by two, the odd one last.
#define MATVEC_EXPORT(NAME, T, PANEL, PANELS2)                                                      \
  void EXPORT(NAME)(const T *w, const float *x, float *y, usize K, usize pb, usize pe, const float *bias) { \
    usize p = pb;                                                                                   \
    for (; p + 2 <= pe; p += 2) PANELS2(w + p * K * 8, x, y + 8 * p, K, bias ? bias + 8 * p : 0);   \
    if (p < pe) PANEL(w + p * K * 8, x, y + 8 * p, K, bias ? bias + 8 * p : 0);                     \
  }
MATVEC_EXPORT(matvec_f32, float, matvec_panel_f32, matvec_2panels_f32)
MATVEC_EXPORT(matvec_bf16, u16, matvec_panel_bf16, matvec_2panels_bf16)
MATVEC_EXPORT(matvec_f16, u16, matvec_panel_f16, matvec_2panels_f16)

// matvec_rows_<dt>(w, x, y, M, K, ldx, ldy, panel_begin, panel_end, bias): M independent
// matvec_<dt>s over one W, for continuous batching (M sequences decoding side by side): for
// r < M and panels p in [begin, end), y[r·ldy + 8p + j] = Σ_k x[r·ldx + k]·W[8p+j, k]
// (+ bias[8p + j]), j = 0..7. x: M rows of K f32, row stride ldx (floats); y: M rows of f32,
// row stride ldy ≥ ceil(N/8)·8 (each row gets matvec's padded y, padding included: a stride of N
// with a ragged N would let a row's last panel write over the next row's first columns); bias as
// matvec's, shared by all rows.
//
// Each row's result is the bits matvec_<dt> gives for that row alone: the same panel functions,
// panels two by two and the odd one last, with the loop over rows inside the loop over panel
// pairs. A panel's sums do not depend on what it is paired with or which thread runs it (each
// panel has its own accumulators; the pair shares only the splat of x[k], and f16's read-ahead
// and the 16-bit kinds' fetching of the next pair below add +0 to an accumulator that cannot be
// −0, having started at +0), so neither M nor the thread split changes a row's bits (NaN payloads
// aside). The blocked matmul_<dt> sums in KC
// blocks through a 4-row tile, another order, and would make a sequence's tokens depend on the
// rest of the batch.
//
// Why rows inside panels: the pair's weights (16·K elements: 18 KB of bf16 at K = 576, 256 KB at
// K = 8192, in L1 or L2) come from memory for the first row and from cache for the others, so W
// streams from memory once per call instead of once per row. Each row still does its own
// widening and multiply-adds, so M rows cost at least M in-cache matvecs: the gain is the memory
// traffic, not arithmetic. Measured (bench/kernels.ts --only rows, one thread, 16 rows against 16
// matvecs; every weight here fits the 480 MB L3): f32 2048×8192 22.7 against 38.8 ms (1.7×), f32
// 49280×576 (an LM head) 39 against 116 ms (3.0×); bf16 1.1–1.4× (2048×8192 19.2 against
// 23.6 ms); q4, compute-bound even from L3, 1.05×; at 16 rows the blocked matmul is 1.2× faster
// again (bf16 2048×8192 16.0 ms), the price of each row's own summation order. Sharing each
// widened weight vector between rows in registers, each row keeping its own accumulators in this
// order, would give the same bits with less widening per row (f16's is 11 of its 15 ops per 8
// weights); not done.
//
// Fetching the next pair (bf16, f16): past the last-level cache, rows inside panels still leave
// memory and arithmetic one after the other: row 0 of a pair waits on memory while rows 1..M−1,
// computing from L1, leave it idle. So rows ≥ 1 (matvec_2panels_<dt>_next) also load the next pair
// of the call (never past its last panel), row r the (r−1)-th of M − 1 slices, one 16-byte load per
// 64-byte line, and row 0 finds the pair in cache. Wasm has no prefetch instruction, and a load
// that misses holds up retirement once the reorder buffer fills behind it: loads spread one at a
// time every few k steps gained nothing (each waited alone); bursts of NEXT_BURST = 8 back to back
// (in flight together, one wait per burst), spread evenly over the row, do. Measured on 608 MiB of
// SmolVLM-256M-shaped layers (q, k, v, o, gate, up, down; hidden 576, intermediate 1536), 8 rows,
// ms per 30 layers, before → after (two alternating runs): bf16 one thread 85–88 → 69–71, two
// threads 43–46 → 37–38 (the same layers from L3: 32–34); f16 185–187 → 170–171 and 93–96 → 83–87;
// 1 row unchanged (it has no row ≥ 1). Bursts of 4 to 16, or slices over 4 to 7 rows, were all
// within noise of this. SmolVLM-256M bf16 (bench/lib/serve-bench.ts --streams 1,8 --tokens 64, six
// alternating before/after pairs): 8 streams' decode steps 90.0–95.0 → 98.8–104.4 tok/s (mean 92.2
// → 101.6, +10%; clients' decode tok/s 73–77 → 79–83), 1 stream 37–39 either way. f32 gained 0–4%
// on the same layers (45 of them, 608 MiB): not done; q8/q4 not tried.
// The last, odd panel of a rows call (p < pe after the pairs), every row through PANEL.
#define MATVEC_ROWS_ODD_PANEL(PANEL)                                                                \
  if (p < pe) {                                                                                     \
    const float *bp = bias ? bias + 8 * p : 0;                                                      \
    for (usize r = 0; r < M; r++) PANEL(w + p * K * 8, x + r * ldx, y + r * ldy + 8 * p, K, bp);    \
  }
#define MATVEC_ROWS_EXPORT(NAME, T, PANEL, PANELS2)                                                 \
  void EXPORT(NAME)(const T *w, const float *x, float *y, usize M, usize K, usize ldx, usize ldy, usize pb, \
                    usize pe, const float *bias) {                                                  \
    usize p = pb;                                                                                   \
    for (; p + 2 <= pe; p += 2) {                                                                   \
      const T *wp = w + p * K * 8;                                                                  \
      const float *bp = bias ? bias + 8 * p : 0;                                                    \
      for (usize r = 0; r < M; r++) PANELS2(wp, x + r * ldx, y + r * ldy + 8 * p, K, bp);          \
    }                                                                                               \
    MATVEC_ROWS_ODD_PANEL(PANEL)                                                                    \
  }
MATVEC_ROWS_EXPORT(matvec_rows_f32, float, matvec_panel_f32, matvec_2panels_f32)

// The 16-bit kinds, fetching the next pair (see above): a pair is K/2 lines of 64 bytes; row r ≥ 1
// loads lines [(r−1)·slice, r·slice) of the next pair, NEXT_BURST at a time, a burst every `gap`
// k steps; the last pair (no next one in the call) goes without.
#define MATVEC_ROWS_NEXT_EXPORT(NAME, PANEL, PANELS2, NEXT)                                       \
  void EXPORT(NAME)(const u16 *w, const float *x, float *y, usize M, usize K, usize ldx, usize ldy, usize pb, \
                    usize pe, const float *bias) {                                                  \
    const char *tlimit = (const char *)(w + pe * K * 8) - 16;                                       \
    usize lines = K / 2, slice = M > 1 ? (lines + M - 2) / (M - 1) : 0;                             \
    usize bursts = (slice + NEXT_BURST - 1) / NEXT_BURST;                                           \
    usize gap = bursts ? 2 * ((K / 2 + bursts - 1) / bursts) : 0;                                   \
    if (gap == 0) gap = 2;                                                                          \
    usize p = pb;                                                                                   \
    for (; p + 2 <= pe; p += 2) {                                                                   \
      const u16 *wp = w + p * K * 8;                                                                \
      const float *bp = bias ? bias + 8 * p : 0;                                                    \
      const char *next = (const char *)(wp + K * 16);                                               \
      PANELS2(wp, x, y + 8 * p, K, bp);                                                             \
      for (usize r = 1; r < M; r++) {                                                               \
        if (p + 2 < pe)                                                                             \
          NEXT(wp, x + r * ldx, y + r * ldy + 8 * p, K, bp, next + (r - 1) * slice * 64, gap, tlimit); \
        else                                                                                        \
          PANELS2(wp, x + r * ldx, y + r * ldy + 8 * p, K, bp);                                     \
      }                                                                                             \
    }                                                                                               \
    MATVEC_ROWS_ODD_PANEL(PANEL)                                                                    \
  }
MATVEC_ROWS_NEXT_EXPORT(matvec_rows_bf16, matvec_panel_bf16, matvec_2panels_bf16, matvec_2panels_bf16_next)
MATVEC_ROWS_NEXT_EXPORT(matvec_rows_f16, matvec_panel_f16, matvec_2panels_f16, matvec_2panels_f16_next)

// ---------------------------------------------------------------------------------------------
// matmul_<dt>(w, x, y, M, N, K, ldy, panel_begin, panel_end, bias, scratch):
// Y[m, n] = Σ_k X[m, k]·W[n, k] (+ bias[n]) for m < M and the columns n < N of panels
// [begin, end). X is f32 [M, K] row-major; Y is f32 with row stride ldy; columns ≥ N are never
// written. bias (when ≠ 0) is read as 8 floats per panel (pad it to ceil(N/8)·8).
// scratch: KC·8 floats of this thread's own (the 16-bit kernels widen a block of a panel there).
//
// Blocking: MC rows of X at a time (so that block stays in L2 while every panel of the range passes
// over it); each panel is cut into KC-long blocks of k (8·KC floats, L1-sized) and the MR×8 register
// tile runs over all MC rows for one block before the next, adding into Y from the second block on.
// A 16-bit block is widened once into scratch and read MC/MR times as f32.

// MR = 4: a 4×8 tile needs 8 accumulators + 2 weight vectors + a splat and a product, and V8 has 15
// allocatable xmm registers on x64 (xmm15 is its scratch); 5 and 6 rows spill and run slower.
#define MR 4
// KC: a 16 KB f32 panel block (L1 is 48 KB); MC: a 96 × 512 X block (192 KB, L2 is 2 MB). Sizes
// from 128 to 1024 and 32 to 192 measured within noise of each other (37–40 GFLOP/s per thread);
// larger KC means fewer passes over Y. MATMUL_SCRATCH_BYTES in module.ts is KC·8·4.
#define KC 512
#define MC 96

/** Loads the first n ≤ 4 floats at p (the rest are 0); never reads past p + n. */
static inline v128_t load_n(const float *p, usize n) {
  if (n >= 4) return wasm_v128_load(p);
  v128_t v = wasm_f32x4_const_splat(0);
  if (n >= 2) {
    v = wasm_v128_load64_zero(p);
    if (n == 3) v = wasm_v128_load32_lane(p + 2, v, 2);
  } else if (n == 1) {
    v = wasm_v128_load32_zero(p);
  }
  return v;
}
/** Stores the first n ≤ 4 lanes of v at p; never writes past p + n. */
static inline void store_n(float *p, v128_t v, usize n) {
  if (n >= 4) {
    wasm_v128_store(p, v);
  } else {
    if (n >= 2) {
      wasm_v128_store64_lane(p, v, 0);
      if (n == 3) wasm_v128_store32_lane(p + 2, v, 2);
    } else if (n == 1) {
      wasm_v128_store32_lane(p, v, 0);
    }
  }
}

/** Accumulators of one row: 8 columns in two vectors. */
#define ROW_INIT(c0, c1, yr)                                                                        \
  if (accumulate) {                                                                                 \
    c0 = load_n(yr, lo_n);                                                                          \
    c1 = load_n(yr + 4, hi_n);                                                                      \
  } else {                                                                                          \
    c0 = b0;                                                                                        \
    c1 = b1;                                                                                        \
  }

/**
 * The register tile: rows [0, rows) of X (rows ≤ MR; missing rows repeat the last one and store
 * the same values to the same place) × the 8 columns of one panel block, kc steps of k.
 * w: kc·8 f32 (panel block), x: row 0 at k0 with row stride ldx, y: row 0 at the panel's first
 * column with row stride ldy. accumulate: add into y (a later k block) instead of starting
 * from bias (or 0).
 */
static void tile_f32(const float *w, const float *x, usize ldx, float *y, usize ldy, usize rows, usize cols,
                      usize kc, const float *bias, int accumulate) {
  const float *x0 = x, *x1 = rows > 1 ? x0 + ldx : x0, *x2 = rows > 2 ? x1 + ldx : x1, *x3 = rows > 3 ? x2 + ldx : x2;
  float *y0 = y, *y1 = rows > 1 ? y0 + ldy : y0, *y2 = rows > 2 ? y1 + ldy : y1, *y3 = rows > 3 ? y2 + ldy : y2;
  usize lo_n = MIN(cols, 4), hi_n = cols > 4 ? cols - 4 : 0;
  v128_t b0 = wasm_f32x4_const_splat(0), b1 = b0;
  if (bias) {
    b0 = wasm_v128_load(bias);
    b1 = wasm_v128_load(bias + 4);
  }
  v128_t c00, c01, c10, c11, c20, c21, c30, c31;
  ROW_INIT(c00, c01, y0)
  ROW_INIT(c10, c11, y1)
  ROW_INIT(c20, c21, y2)
  ROW_INIT(c30, c31, y3)
  for (usize k = 0; k < kc; k++, w += 8) {
    v128_t w0 = wasm_v128_load(w), w1 = wasm_v128_load(w + 4);
    v128_t s0 = splat(x0 + k);
    c00 = madd(c00, s0, w0);
    c01 = madd(c01, s0, w1);
    v128_t s1 = splat(x1 + k);
    c10 = madd(c10, s1, w0);
    c11 = madd(c11, s1, w1);
    v128_t s2 = splat(x2 + k);
    c20 = madd(c20, s2, w0);
    c21 = madd(c21, s2, w1);
    v128_t s3 = splat(x3 + k);
    c30 = madd(c30, s3, w0);
    c31 = madd(c31, s3, w1);
  }
  store_n(y3, c30, lo_n), store_n(y3 + 4, c31, hi_n);
  store_n(y2, c20, lo_n), store_n(y2 + 4, c21, hi_n);
  store_n(y1, c10, lo_n), store_n(y1 + 4, c11, hi_n);
  store_n(y0, c00, lo_n), store_n(y0 + 4, c01, hi_n);
}

/** kc k-steps of a 16-bit panel block → f32 at out (8·kc floats). */
static void widen_bf16(const u16 *w, float *out, usize kc) {
  for (usize k = 0; k < kc; k++, w += 8, out += 8) {
    v128_t h = wasm_v128_load(w);
    wasm_v128_store(out, bf16_lo(h));
    wasm_v128_store(out + 4, bf16_hi(h));
  }
}
static void widen_f16(const u16 *w, float *out, usize kc) {
  for (usize k = 0; k < kc; k++, w += 8, out += 8) {
    v128_t h = wasm_v128_load(w);
    wasm_v128_store(out, f16_lo(h));
    wasm_v128_store(out + 4, f16_hi(h));
  }
}

/** The rows of one MC block × one panel block of kc steps, MR rows per tile. */
static void tiles(const float *wb, const float *x, usize K, float *y, usize ldy, usize m0, usize m1, usize cols,
                  usize k0, usize kc, const float *bias) {
  for (usize m = m0; m < m1; m += MR) {
    tile_f32(wb, x + m * K + k0, K, y + m * ldy, ldy, MIN(MR, m1 - m), cols, kc, bias, k0 > 0);
  }
}

void EXPORT(matmul_f32)(const float *w, const float *x, float *y, usize M, usize N, usize K, usize ldy, usize pb,
                        usize pe, const float *bias, float *scratch) {
  (void)scratch;
  for (usize m0 = 0; m0 < M; m0 += MC) {
    usize m1 = MIN(M, m0 + MC);
    for (usize p = pb; p < pe; p++) {
      const float *wp = w + p * K * 8, *bp = bias ? bias + 8 * p : 0;
      for (usize k0 = 0; k0 < K; k0 += KC) {
        tiles(wp + k0 * 8, x, K, y + 8 * p, ldy, m0, m1, MIN(8, N - 8 * p), k0, MIN(KC, K - k0), bp);
      }
    }
  }
}

#define MATMUL_16(NAME, WIDEN)                                                                      \
  void EXPORT(NAME)(const u16 *w, const float *x, float *y, usize M, usize N, usize K, usize ldy, usize pb, \
                    usize pe, const float *bias, float *scratch) {                                  \
    for (usize m0 = 0; m0 < M; m0 += MC) {                                                          \
      usize m1 = MIN(M, m0 + MC);                                                                   \
      for (usize p = pb; p < pe; p++) {                                                             \
        const u16 *wp = w + p * K * 8;                                                              \
        const float *bp = bias ? bias + 8 * p : 0;                                                  \
        for (usize k0 = 0; k0 < K; k0 += KC) {                                                      \
          usize kc = MIN(KC, K - k0);                                                               \
          WIDEN(wp + k0 * 8, scratch, kc);                                                          \
          tiles(scratch, x, K, y + 8 * p, ldy, m0, m1, MIN(8, N - 8 * p), k0, kc, bp);              \
        }                                                                                           \
      }                                                                                             \
    }                                                                                               \
  }
MATMUL_16(matmul_bf16, widen_bf16)
MATMUL_16(matmul_f16, widen_f16)

// ---------------------------------------------------------------------------------------------
// Quantized weights (layout "qpanel-8", see the header). Every kernel takes the group size G (32,
// 64 or 128; K a multiple of G, KC a multiple of G) and exists once per bit width.

typedef unsigned char u8;

/** Bytes of one group block: 8 scales + 8 biases (f32) and 8·G codes of `bits` bits. */
static inline usize qblock_bytes(usize G, usize bits) { return 64 + G * bits; }

// pack_q<b>(codes, scales, biases, dst, N, K, G, panel_begin, panel_end): MLX's row-major codes
// (row n: K·b/8 bytes, the little-endian bit stream of its uint32 words: code k of a row in bits
// b·(k mod 32/b) of word k / (32/b)), scales and biases f32 [N, K/G] → panels [begin, end) of
// qpanel-8 at dst. Exact data movement; dst must overlap none of the sources. One output lane
// (4 bytes) at a time from two source rows; a load-time cost only.

/** The scales and biases of rows 8p..8p+rows−1, group g, → the block header at dst (zeros past rows). */
static void pack_q_header(const float *scales, const float *biases, float *dst, usize groups, usize g, usize rows) {
  for (usize j = 0; j < 8; j++) {
    dst[j] = j < rows ? scales[j * groups + g] : 0.0f;
    dst[8 + j] = j < rows ? biases[j * groups + g] : 0.0f;
  }
}

/** Bytes of source row r from byte offset o, as a little-endian u16 (0 for a missing row). */
static inline u32 src_u16(const u8 *row0, usize stride, usize rows, usize r, usize o) {
  if (r >= rows) return 0;
  const u8 *s = row0 + r * stride + o;
  return (u32)s[0] | (u32)s[1] << 8;
}

void EXPORT(pack_q8)(const u8 *codes, const float *scales, const float *biases, u8 *dst, usize N, usize K, usize G,
                     usize pb, usize pe) {
  usize groups = K / G, block = qblock_bytes(G, 8);
  for (usize p = pb; p < pe; p++) {
    usize rows = panel_rows(p, N);
    const u8 *src = codes + 8 * p * K;
    for (usize g = 0; g < groups; g++) {
      u8 *out = dst + (p * groups + g) * block;
      pack_q_header(scales + 8 * p * groups, biases + 8 * p * groups, (float *)out, groups, g, rows);
      u32 *lanes = (u32 *)(out + 64);
      for (usize t = 0; t < G / 2; t++) {
        usize k = g * G + 2 * t;
        for (usize L = 0; L < 4; L++) {
          // a: row L at k (low byte) and k + 1; c: row L + 4 likewise.
          u32 a = src_u16(src, K, rows, L, k), c = src_u16(src, K, rows, L + 4, k);
          lanes[4 * t + L] = (a & 0xff) | (c & 0xff) << 8 | (a >> 8) << 16 | (c >> 8) << 24;
        }
      }
    }
  }
}

/** Nibbles 0..3 of a → bytes 0..3 (the low nibble of each). */
static inline u32 spread_nibbles(u32 a) {
  return (a & 0xf) | (a & 0xf0) << 4 | (a & 0xf00) << 8 | (a & 0xf000) << 12;
}

void EXPORT(pack_q4)(const u8 *codes, const float *scales, const float *biases, u8 *dst, usize N, usize K, usize G,
                     usize pb, usize pe) {
  usize groups = K / G, block = qblock_bytes(G, 4), stride = K / 2;
  for (usize p = pb; p < pe; p++) {
    usize rows = panel_rows(p, N);
    const u8 *src = codes + 8 * p * stride;
    for (usize g = 0; g < groups; g++) {
      u8 *out = dst + (p * groups + g) * block;
      pack_q_header(scales + 8 * p * groups, biases + 8 * p * groups, (float *)out, groups, g, rows);
      u32 *lanes = (u32 *)(out + 64);
      for (usize t = 0; t < G / 4; t++) {
        usize o = (g * G + 4 * t) / 2; // the 2 source bytes of k = 4t..4t+3
        for (usize L = 0; L < 4; L++) {
          lanes[4 * t + L] = spread_nibbles(src_u16(src, stride, rows, L, o)) |
                             spread_nibbles(src_u16(src, stride, rows, L + 4, o)) << 4;
        }
      }
    }
  }
}

// gather_row_q<b>(w, K, G, n, out): out[k] = s·q + b of row n in f32 (the product rounded, then
// the sum: what the matmul kernels' dequantization gives, bit for bit; with s from bf16 or f16
// the product is exact and only the sum rounds).

void EXPORT(gather_row_q8)(const u8 *w, usize K, usize G, usize n, float *out) {
  usize groups = K / G, block = qblock_bytes(G, 8), j = n & 7;
  const u8 *b = w + (n >> 3) * groups * block;
  usize lane = 4 * (j & 3) + (j >> 2); // byte of (row j, even k) in each vector; odd k is 2 further
  for (usize g = 0; g < groups; g++, b += block) {
    float s = ((const float *)b)[j], c = ((const float *)b)[8 + j];
    for (usize k = 0; k < G; k++) out[g * G + k] = s * (float)b[64 + 16 * (k >> 1) + lane + 2 * (k & 1)] + c;
  }
}

void EXPORT(gather_row_q4)(const u8 *w, usize K, usize G, usize n, float *out) {
  usize groups = K / G, block = qblock_bytes(G, 4), j = n & 7, shift = 4 * (j >> 2);
  const u8 *b = w + (n >> 3) * groups * block;
  for (usize g = 0; g < groups; g++, b += block) {
    float s = ((const float *)b)[j], c = ((const float *)b)[8 + j];
    for (usize k = 0; k < G; k++) {
      out[g * G + k] = s * (float)((b[64 + 16 * (k >> 2) + 4 * (j & 3) + (k & 3)] >> shift) & 0xf) + c;
    }
  }
}

// matvec_input_q<b>(x, K, G, out): x (f32 [K]) → the input of matvec_q<b>, once per call, before
// the panels are split over threads. Per group g of G values (e_g chosen below):
//   out (f32)           sums[g]:   Σ x over the group (four lanes, summed pairwise at the end)
//   out + 4·groups      scales[g]: 2^e_g, or NaN when the group holds a NaN or an infinity
//   out + 8·groups      hi: i16 [K]; then lo: i16 [K], with the group's x as 30-bit fixed point:
//                       x_k ≈ 2^e_g·(hi_k·2^15 + lo_k), hi in [−2^15, 2^15), lo in [0, 2^15)
// e_g = max(E − 29, −149), E the exponent of the group's largest |x| (2^E ≤ max|x| < 2^(E+1)), so
// |x_k / 2^e_g| < 2^30 and v = round(x_k / 2^e_g) (ties to even, exact in f64) is off by at most
// half a step; v = 2^30 (a max|x| just below 2^(E+1) rounding up) is clamped to 2^30 − 1, one step
// off. So |x_k − 2^e_g·v_k| ≤ 2^e_g ≤ 2^-29·max_g|x|; at e_g = −149 every f32 is a whole number
// of steps and v is exact. b = 4 stores each 4 k steps in the order 0, 2, 1, 3 (what the codes'
// layout pairs up, see matvec_q<b>); b = 8 in order.
//
// matvec_q<b>(w, xin, y, K, panel_begin, panel_end, bias, G): y as matvec_<dt> for a qpanel-8 W,
// xin from matvec_input_q<b>(x).
//
// Per group and row: Σ_k x_k·(s·q_k + b) = s·Σ_k x_k·q_k + b·Σ_k x_k. The first sum runs in
// integers: i32x4.dot_i16x8_s multiplies 8 codes (widened to 16 bits, one AND or shift each) by
// 8 of hi (or lo) and adds pairs: 4 rows × 2 k steps per op, exact (|Σ| ≤ 128·255·2^15 < 2^31).
// Per 16 code bytes: one load, 2 (b = 8) or 4 (b = 4) ANDs/shifts, 2 splats each of hi and lo,
// and 4 or 8 dot-and-adds: 0.6–0.8 ops per weight where converting each code to f32 and
// multiply-adding it took 1.2 (bench/kernels.ts, one thread, before → after: 4096×4096 q4 1.79 →
// 1.31 ms, q8 1.84 → 1.71 ms; past the cache, 2^31 q4 weights 533 → 285 ms, 2^30 q8 284 →
// 200 ms). Once per group: d = f32(Σhi·q)·2^(e+15) + f32(Σlo·q)·2^e, then y += s·d + b·Σx.
//
// Rounding: d is Σ x·q off by its 3 roundings (two converts, one add: ≤ 3·2^-24 relative to
// Σ|x·q| plus the 2^-38·max_g|x|·Σq that hi's convert sees of lo) and by the input's rounding
// above (≤ 2^-29·max_g|x|·Σ_g q); then s·d, b·Σx (G − 1 additions, one product) and the 2K/G terms
// added into y (+ bias) as before: |Δ| ≤ (G + 2K/G + 2)·2^-24·M + 2^-28·Σ_g max_g|x|·|s|·Σ_g q,
// with M = Σ_k |x_k|·(|s|·q_k + |b|) (+ |bias|). The second term is the input held to 30 bits
// below its group's largest value, 2^-5 of an f32 ulp of it. A group with a NaN or an infinity
// makes its scale NaN, so every output is NaN; Σx carries it as well.

/** f32 2^e for −149 ≤ e ≤ 127 (subnormal below −126). */
static inline float pow2f(int e) {
  return e >= -126 ? __builtin_bit_cast(float, (u32)(e + 127) << 23) : __builtin_bit_cast(float, 1u << (e + 149));
}
/** f64 2^e for −1022 ≤ e ≤ 1023. */
static inline double pow2d(int e) { return __builtin_bit_cast(double, (unsigned long long)(e + 1023) << 52); }

typedef short i16;

static inline v128_t cvt(v128_t v) { return wasm_f32x4_convert_i32x4(v); }
static inline v128_t qmask(u32 m) { return wasm_i32x4_splat((int)m); }

static void matvec_input(const float *x, usize K, usize G, usize bits, float *out) {
  usize groups = K / G;
  float *sums = out, *scales = out + groups;
  i16 *hi = (i16 *)(out + 2 * groups), *lo = hi + K;
  for (usize g = 0; g < groups; g++, x += G, hi += G, lo += G) {
    v128_t a = wasm_f32x4_const_splat(0), c = a, m = a;
    for (usize k = 0; k < G; k += 8) {
      v128_t u = wasm_v128_load(x + k), v = wasm_v128_load(x + k + 4);
      a = wasm_f32x4_add(a, u);
      c = wasm_f32x4_add(c, v);
      // |x| as u32 bits: their order is the values' order, and a NaN (or inf) is above every finite.
      m = wasm_u32x4_max(m, wasm_u32x4_max(wasm_v128_and(u, qmask(0x7fffffff)), wasm_v128_and(v, qmask(0x7fffffff))));
    }
    a = wasm_f32x4_add(a, c);
    a = wasm_f32x4_add(a, wasm_i32x4_shuffle(a, a, 2, 3, 0, 1));
    sums[g] = wasm_f32x4_extract_lane(a, 0) + wasm_f32x4_extract_lane(a, 1);
    m = wasm_u32x4_max(m, wasm_i32x4_shuffle(m, m, 2, 3, 0, 1));
    u32 top = wasm_u32x4_extract_lane(m, 0), top1 = wasm_u32x4_extract_lane(m, 1);
    if (top1 > top) top = top1;
    if (top >= 0x7f800000u) { // a NaN or an infinity
      scales[g] = __builtin_nanf("");
      for (usize k = 0; k < G; k++) hi[k] = lo[k] = 0;
      continue;
    }
    // E: the exponent of the largest |x|; −127 for a group of subnormals and zeros, which e = −149
    // holds exactly all the same.
    int E = (int)(top >> 23) - 127;
    int e = E - 29 < -149 ? -149 : E - 29;
    scales[g] = pow2f(e);
    double inv = pow2d(-e);
    for (usize k = 0; k < G; k++) {
      int v = (int)__builtin_nearbyint((double)x[k] * inv);
      if (v > 0x3fffffff) v = 0x3fffffff;
      usize at = bits == 4 ? (k & ~(usize)3) | ((k & 1) << 1) | ((k >> 1) & 1) : k;
      hi[at] = (i16)(v >> 15);
      lo[at] = (i16)(v & 0x7fff);
    }
  }
}
void EXPORT(matvec_input_q8)(const float *x, usize K, usize G, float *out) { matvec_input(x, K, G, 8, out); }
void EXPORT(matvec_input_q4)(const float *x, usize K, usize G, float *out) { matvec_input(x, K, G, 4, out); }

static inline v128_t qmask16(unsigned short m) { return wasm_i16x8_splat((short)m); }
static inline v128_t dot_add(v128_t acc, v128_t codes, const i16 *pair) {
  return wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(codes, wasm_v128_load32_splat(pair)));
}

/** Rows 0-3 / 4-7: y += s·d + b·xs with d = Σhi·q·2^(e+15) + Σlo·q·2^e for the block header at sb. */
static inline void q_group_end(const float *sb, v128_t h0, v128_t l0, v128_t h1, v128_t l1, float scale, float xs,
                               v128_t *y0, v128_t *y1) {
  v128_t S = wasm_f32x4_splat(scale), S15 = wasm_f32x4_mul(S, wasm_f32x4_const_splat(32768.0f)), X = wasm_f32x4_splat(xs);
  v128_t d0 = wasm_f32x4_add(wasm_f32x4_mul(cvt(h0), S15), wasm_f32x4_mul(cvt(l0), S));
  v128_t d1 = wasm_f32x4_add(wasm_f32x4_mul(cvt(h1), S15), wasm_f32x4_mul(cvt(l1), S));
  *y0 = wasm_f32x4_add(wasm_f32x4_add(*y0, wasm_f32x4_mul(wasm_v128_load(sb), d0)), wasm_f32x4_mul(wasm_v128_load(sb + 8), X));
  *y1 = wasm_f32x4_add(wasm_f32x4_add(*y1, wasm_f32x4_mul(wasm_v128_load(sb + 4), d1)), wasm_f32x4_mul(wasm_v128_load(sb + 12), X));
}

// Reading ahead: past the last-level cache these loops run ahead of what the hardware prefetchers
// fetch; one extra load per 64 bytes, Q_TOUCH_AHEAD bytes ahead (never past the last panel of
// the call), keeps the stream going: 124 MB of q8 went at 6.0 G weights/s on one thread against
// 4.3 without, 110 MB of q4 at 6.3–6.9 against 4.6–5.0 (farther than 1 KiB gained nothing). The
// loads are kept alive as in matvec_<dt> (TOUCH_AHEAD): folded into y under a mask that is zero
// unless y is NaN.
#define Q_TOUCH_AHEAD 1024
static inline v128_t touch(v128_t touched, const u8 *c, const u8 *limit) {
  const u8 *t = c + Q_TOUCH_AHEAD <= limit ? c + Q_TOUCH_AHEAD : limit;
  return wasm_v128_or(touched, wasm_v128_load(t));
}
static inline v128_t keep_touched(v128_t y, v128_t touched) {
  return wasm_f32x4_add(y, wasm_v128_and(touched, wasm_f32x4_ne(y, y)));
}

// Codes as 16-bit lanes: the u16 lane pair (2L, 2L + 1) of a vector is one 32-bit lane L, rows L
// and L + 4. b = 8, vector t: & 0xff gives row L at k = 2t, 2t + 1 and >> 8 row L + 4 there: each
// against the pair (x_2t, x_2t+1). b = 4, vector t: & 0xf gives row L at k = 4t, 4t + 2; >> 4 & 0xf
// row L + 4 there; >> 8 & 0xf row L at 4t + 1, 4t + 3; >> 12 row L + 4 there: against the pairs
// (x_4t, x_4t+2) and (x_4t+1, x_4t+3), which matvec_input_q4 stores side by side.

static inline void matvec_panel_q8(const u8 *w, const i16 *hi, const i16 *lo, float *y, usize K, usize G,
                                   const float *bias, const float *sums, const float *scales, const u8 *limit) {
  usize groups = K / G, block = qblock_bytes(G, 8);
  v128_t y0 = wasm_f32x4_const_splat(0), y1 = y0, touched = y0;
  const v128_t m = qmask16(0xff);
  for (usize g = 0; g < groups; g++, w += block, hi += G, lo += G) {
    v128_t h0 = wasm_i32x4_const_splat(0), h1 = h0, l0 = h0, l1 = h0;
    const u8 *c = w + 64;
    for (usize k = 0; k < G; k += 2, c += 16) {
      if ((k & 6) == 0) touched = touch(touched, c, limit); // once per 64 bytes
      v128_t v = wasm_v128_load(c);
      v128_t c0 = wasm_v128_and(v, m), c1 = wasm_u16x8_shr(v, 8);
      h0 = dot_add(h0, c0, hi + k);
      h1 = dot_add(h1, c1, hi + k);
      l0 = dot_add(l0, c0, lo + k);
      l1 = dot_add(l1, c1, lo + k);
    }
    q_group_end((const float *)w, h0, l0, h1, l1, scales[g], sums[g], &y0, &y1);
  }
  matvec_store(y, keep_touched(y0, touched), y1, bias);
}

static inline void matvec_panel_q4(const u8 *w, const i16 *hi, const i16 *lo, float *y, usize K, usize G,
                                   const float *bias, const float *sums, const float *scales, const u8 *limit) {
  usize groups = K / G, block = qblock_bytes(G, 4);
  v128_t y0 = wasm_f32x4_const_splat(0), y1 = y0, touched = y0;
  const v128_t m = qmask16(0xf);
  for (usize g = 0; g < groups; g++, w += block, hi += G, lo += G) {
    v128_t h0 = wasm_i32x4_const_splat(0), h1 = h0, l0 = h0, l1 = h0;
    const u8 *c = w + 64;
    for (usize k = 0; k < G; k += 4, c += 16) {
      if ((k & 12) == 0) touched = touch(touched, c, limit); // once per 64 bytes
      v128_t v = wasm_v128_load(c);
      v128_t c0 = wasm_v128_and(v, m), c1 = wasm_v128_and(wasm_u16x8_shr(v, 4), m);
      v128_t c2 = wasm_v128_and(wasm_u16x8_shr(v, 8), m), c3 = wasm_u16x8_shr(v, 12);
      h0 = dot_add(dot_add(h0, c0, hi + k), c2, hi + k + 2);
      h1 = dot_add(dot_add(h1, c1, hi + k), c3, hi + k + 2);
      l0 = dot_add(dot_add(l0, c0, lo + k), c2, lo + k + 2);
      l1 = dot_add(dot_add(l1, c1, lo + k), c3, lo + k + 2);
    }
    q_group_end((const float *)w, h0, l0, h1, l1, scales[g], sums[g], &y0, &y1);
  }
  matvec_store(y, keep_touched(y0, touched), y1, bias);
}

#define MATVEC_Q_EXPORT(NAME, PANEL, BITS)                                                          \
  void EXPORT(NAME)(const u8 *w, const float *xin, float *y, usize K, usize pb, usize pe, const float *bias, usize G) { \
    usize groups = K / G, panel = groups * qblock_bytes(G, BITS);                                   \
    const i16 *hi = (const i16 *)(xin + 2 * groups);                                                \
    const u8 *limit = w + pe * panel - 16;                                                          \
    for (usize p = pb; p < pe; p++) {                                                               \
      PANEL(w + p * panel, hi, hi + K, y + 8 * p, K, G, bias ? bias + 8 * p : 0, xin, xin + groups, limit); \
    }                                                                                               \
  }
MATVEC_Q_EXPORT(matvec_q8, matvec_panel_q8, 8)
MATVEC_Q_EXPORT(matvec_q4, matvec_panel_q4, 4)

// matvec_input_rows_q<b>(x, ldx, K, G, out, row_begin, row_end): matvec_input_q<b> of rows
// [begin, end) of x (row r at x + r·ldx, ldx in floats), the prepared input of row r at
//   out + r·(K + 2·K/G) floats   (matvec_input_q<b>'s K/G sums, K/G scales, K hi and K lo: 4K +
//                                 8K/G bytes, matvecInputBytes in module.ts; a multiple of 8 only,
//                                 which the kernels' loads, 4 bytes at most, do not mind)
// so M rows take M·(4K + 8K/G) bytes. Rows are independent: the pool splits them over threads.
//
// matvec_rows_q<b>(w, xin, y, M, K, ldy, panel_begin, panel_end, bias, G): M independent
// matvec_q<b>s over one qpanel-8 W, as matvec_rows_<dt>: row r from the prepared input at
// xin + r·(K + 2·K/G) floats (matvec_input_rows_q<b>), into y + r·ldy (ldy ≥ ceil(N/8)·8).
// Each row's bits are matvec_q<b>'s for that row alone: the same panel function with the same
// read-ahead limit, the loop over rows inside the loop over panels (one qpanel of K = 8192, q4,
// G = 64 is 40 KB: L1 or L2 for rows after the first). The read-ahead is folded in only when y is
// NaN (keep_touched), so that the limit depends on the thread's panel range changes nothing else.
void EXPORT(matvec_input_rows_q8)(const float *x, usize ldx, usize K, usize G, float *out, usize rb, usize re) {
  for (usize r = rb; r < re; r++) matvec_input(x + r * ldx, K, G, 8, out + r * (K + 2 * (K / G)));
}
void EXPORT(matvec_input_rows_q4)(const float *x, usize ldx, usize K, usize G, float *out, usize rb, usize re) {
  for (usize r = rb; r < re; r++) matvec_input(x + r * ldx, K, G, 4, out + r * (K + 2 * (K / G)));
}

#define MATVEC_ROWS_Q_EXPORT(NAME, PANEL, BITS)                                                     \
  void EXPORT(NAME)(const u8 *w, const float *xin, float *y, usize M, usize K, usize ldy, usize pb, usize pe, \
                    const float *bias, usize G) {                                                   \
    usize groups = K / G, panel = groups * qblock_bytes(G, BITS), ldx = K + 2 * groups;              \
    const u8 *limit = w + pe * panel - 16;                                                          \
    for (usize p = pb; p < pe; p++) {                                                               \
      const float *bp = bias ? bias + 8 * p : 0;                                                    \
      for (usize r = 0; r < M; r++) {                                                               \
        const float *xr = xin + r * ldx;                                                            \
        const i16 *hi = (const i16 *)(xr + 2 * groups);                                             \
        PANEL(w + p * panel, hi, hi + K, y + r * ldy + 8 * p, K, G, bp, xr, xr + groups, limit);     \
      }                                                                                             \
    }                                                                                               \
  }
MATVEC_ROWS_Q_EXPORT(matvec_rows_q8, matvec_panel_q8, 8)
MATVEC_ROWS_Q_EXPORT(matvec_rows_q4, matvec_panel_q4, 4)

// matmul_q<b>(w, x, y, M, N, K, ldy, panel_begin, panel_end, bias, scratch, G): as matmul_<dt>,
// for a qpanel-8 W. Each KC-long panel block (whole groups: G divides KC) is dequantized once into
// scratch as f32 (s·q rounded, + b rounded: gather_row's values) and run through the f32 register
// tile, so the result is matmul_f32's on the dequantized weights, bit for bit.

/** kc k steps (whole groups) of a panel, starting at group block w → f32 panel-8 at out. */
static void dequant_q8(const u8 *w, float *out, usize kc, usize G) {
  usize block = qblock_bytes(G, 8);
  for (usize k0 = 0; k0 < kc; k0 += G, w += block) {
    const float *sb = (const float *)w;
    v128_t s0 = wasm_v128_load(sb), s1 = wasm_v128_load(sb + 4), b0 = wasm_v128_load(sb + 8), b1 = wasm_v128_load(sb + 12);
    const u8 *c = w + 64;
    for (usize t = 0; t < G / 2; t++, c += 16, out += 16) {
      v128_t v = wasm_v128_load(c), m = qmask(0xff);
      wasm_v128_store(out + 0, madd(b0, s0, cvt(wasm_v128_and(v, m))));
      wasm_v128_store(out + 4, madd(b1, s1, cvt(wasm_v128_and(wasm_u32x4_shr(v, 8), m))));
      wasm_v128_store(out + 8, madd(b0, s0, cvt(wasm_v128_and(wasm_u32x4_shr(v, 16), m))));
      wasm_v128_store(out + 12, madd(b1, s1, cvt(wasm_u32x4_shr(v, 24))));
    }
  }
}
static void dequant_q4(const u8 *w, float *out, usize kc, usize G) {
  usize block = qblock_bytes(G, 4);
  for (usize k0 = 0; k0 < kc; k0 += G, w += block) {
    const float *sb = (const float *)w;
    v128_t s0 = wasm_v128_load(sb), s1 = wasm_v128_load(sb + 4), b0 = wasm_v128_load(sb + 8), b1 = wasm_v128_load(sb + 12);
    const u8 *c = w + 64;
    for (usize t = 0; t < G / 4; t++, c += 16, out += 32) {
      v128_t v = wasm_v128_load(c), m = qmask(0xf);
      wasm_v128_store(out + 0, madd(b0, s0, cvt(wasm_v128_and(v, m))));
      wasm_v128_store(out + 4, madd(b1, s1, cvt(wasm_v128_and(wasm_u32x4_shr(v, 4), m))));
      wasm_v128_store(out + 8, madd(b0, s0, cvt(wasm_v128_and(wasm_u32x4_shr(v, 8), m))));
      wasm_v128_store(out + 12, madd(b1, s1, cvt(wasm_v128_and(wasm_u32x4_shr(v, 12), m))));
      wasm_v128_store(out + 16, madd(b0, s0, cvt(wasm_v128_and(wasm_u32x4_shr(v, 16), m))));
      wasm_v128_store(out + 20, madd(b1, s1, cvt(wasm_v128_and(wasm_u32x4_shr(v, 20), m))));
      wasm_v128_store(out + 24, madd(b0, s0, cvt(wasm_v128_and(wasm_u32x4_shr(v, 24), m))));
      wasm_v128_store(out + 28, madd(b1, s1, cvt(wasm_u32x4_shr(v, 28))));
    }
  }
}

#define MATMUL_Q(NAME, DEQUANT, BITS)                                                               \
  void EXPORT(NAME)(const u8 *w, const float *x, float *y, usize M, usize N, usize K, usize ldy, usize pb, \
                    usize pe, const float *bias, float *scratch, usize G) {                         \
    usize block = qblock_bytes(G, BITS), panel = (K / G) * block;                                   \
    for (usize m0 = 0; m0 < M; m0 += MC) {                                                          \
      usize m1 = MIN(M, m0 + MC);                                                                   \
      for (usize p = pb; p < pe; p++) {                                                             \
        const u8 *wp = w + p * panel;                                                               \
        const float *bp = bias ? bias + 8 * p : 0;                                                  \
        for (usize k0 = 0; k0 < K; k0 += KC) {                                                      \
          usize kc = MIN(KC, K - k0);                                                               \
          DEQUANT(wp + (k0 / G) * block, scratch, kc, G);                                           \
          tiles(scratch, x, K, y + 8 * p, ldy, m0, m1, MIN(8, N - 8 * p), k0, kc, bp);              \
        }                                                                                           \
      }                                                                                             \
    }                                                                                               \
  }
MATMUL_Q(matmul_q8, dequant_q8, 8)
MATMUL_Q(matmul_q4, dequant_q4, 4)

// ---------------------------------------------------------------------------------------------
// quantize_q<b>(src, codes, scales, biases, K, G, row_begin, row_end, check, status): MLX's affine
// quantizer as its GPU kernels run it (Metal quantized.h / CUDA affine_quantize.cu), bit for bit:
// the JS reference is quantizeRows with mlxBackend 'gpu' (src/quant/mlx-affine.ts, derived in
// docs/notes/mlx-quantization.md). Rows [begin, end) of a row-major f32 [N, K] at src →
//   codes:  MLX's layout, each row a little-endian bit stream of K·b/8 bytes at codes + r·K·b/8
//           (b = 4: code 2j in the low nibble of byte j, 2j + 1 in the high one; b = 8: byte j);
//   scales, biases: f32 [N, K/G] (not rounded to the weights' dtype: the caller does that).
// Per group of G values, in f32, every operation rounded on its own (no fast math; wasm has no
// scalar fma, so nothing is contracted):
//   w_min = the group's minimum, w_max = max(0, the group's maximum)  (the GPU kernels start w_max at 0)
//   range = w_max − w_min; side = |w_min| > |w_max|; mag = max(range / n_bins, 1e-7)
//   scale = side ? mag : −mag; edge = side ? w_min : w_max; q0 = round(edge / scale)
//   q0 ≠ 0: scale = edge / q0, bias = edge; else bias = 0
//   code = clamp(round((w − bias) / scale), 0, n_bins)      round: ties away from zero
// Min and max are taken with pmin/pmax (w < acc ? w : acc, the reference's comparison); a −0
// against +0 can come out either way, which changes nothing (w_min = ±0 is never the edge and
// w_max − (±0) is the same number). Clamping before rounding gives the same code (0 and n_bins
// are integers and round is monotone), and a clamped v in [0, n_bins] is rounded exactly as
// trunc(v) + (v − trunc(v) ≥ 0.5). (w − bias) / scale is a true division: a multiply by the
// reciprocal would round differently.
//
// check: which values are allowed besides finite f32 ones: 0 any, 1 bf16 values only (low 16 bits
// zero), 2 f16 values only (exactly representable in f16). A row with a NaN, an infinity, a value
// that fails `check` or a group whose range overflows to infinity is not finished: the kernel
// stores its row index into *status if smaller (status: the calling thread's own word, set to
// 0xffffffff by the caller; each thread keeps the smallest bad row it met) and returns, leaving
// the rest of its rows undone. The caller then finds the reference's error message itself.

#define QUANT_EPS 1e-7f
#define F32_MAX 0x1.fffffep127f

/** Metal's and CUDA's round: to nearest, ties away from zero. x − trunc(x) is exact. */
static inline float round_away(float x) {
  float t = __builtin_truncf(x);
  float d = x - t;
  if (__builtin_fabsf(d) >= 0.5f) {
    float one = x < 0 ? -1.0f : 1.0f;
    t = t + one;
  }
  return t;
}

/** Nonzero bits in a lane whose value is NaN or fails `check` (infinities show up in the range). */
static inline v128_t quant_bad(v128_t w, int check) {
  v128_t bad = wasm_f32x4_ne(w, w);
  if (check == 1) {
    bad = wasm_v128_or(bad, wasm_v128_and(w, wasm_i32x4_const_splat(0xffff)));
  } else if (check == 2) {
    // |w| ≤ 65504; at or above 2^-14 (f16 normal) the low 13 mantissa bits are zero; below it w is
    // a multiple of 2^-24 (f16 subnormal): w·2^24 (exact) is an integer.
    v128_t a = wasm_v128_and(w, wasm_i32x4_const_splat(0x7fffffff));
    v128_t big = wasm_i32x4_gt(a, wasm_i32x4_const_splat(0x477fe000));
    v128_t sub = wasm_i32x4_lt(a, wasm_i32x4_const_splat(0x38800000));
    v128_t normal_bad = wasm_v128_and(a, wasm_i32x4_const_splat(0x1fff));
    v128_t y = wasm_f32x4_mul(a, wasm_f32x4_const_splat(0x1p24f));
    v128_t sub_bad = wasm_f32x4_ne(y, wasm_f32x4_trunc(y));
    bad = wasm_v128_or(bad, wasm_v128_or(big, wasm_v128_bitselect(sub_bad, normal_bad, sub)));
  }
  return bad;
}

/** The codes of 4 values as i32 lanes (see the rounding above). */
static inline v128_t quant_codes(v128_t w, v128_t bias, v128_t scale, v128_t nbins) {
  v128_t v = wasm_f32x4_div(wasm_f32x4_sub(w, bias), scale);
  v = wasm_f32x4_pmin(wasm_f32x4_pmax(v, wasm_f32x4_const_splat(0)), nbins);
  v128_t i = wasm_i32x4_trunc_sat_f32x4(v);
  v128_t frac = wasm_f32x4_sub(v, wasm_f32x4_convert_i32x4(i));
  return wasm_i32x4_sub(i, wasm_f32x4_ge(frac, wasm_f32x4_const_splat(0.5f))); // true lanes are −1
}

/** 16 codes of values x[0..15] as 16 bytes. */
static inline v128_t quant_bytes16(const float *x, v128_t bias, v128_t scale, v128_t nbins) {
  v128_t c0 = quant_codes(wasm_v128_load(x), bias, scale, nbins), c1 = quant_codes(wasm_v128_load(x + 4), bias, scale, nbins);
  v128_t c2 = quant_codes(wasm_v128_load(x + 8), bias, scale, nbins), c3 = quant_codes(wasm_v128_load(x + 12), bias, scale, nbins);
  return wasm_u8x16_narrow_i16x8(wasm_u16x8_narrow_i32x4(c0, c1), wasm_u16x8_narrow_i32x4(c2, c3));
}

static inline __attribute__((always_inline)) void quantize_rows(const float *src, u8 *codes, float *scales, float *biases, usize K,
                                                                 usize G, usize rb, usize re, int check, u32 *status, int bits) {
  const float nbins = bits == 4 ? 15.0f : 255.0f;
  const v128_t nb = wasm_f32x4_splat(nbins), zero = wasm_f32x4_const_splat(0);
  usize groups = K / G;
  for (usize r = rb; r < re; r++) {
    const float *x = src + r * K;
    u8 *out = codes + r * (K * bits / 8);
    for (usize g = 0; g < groups; g++, x += G, out += G * bits / 8) {
      // Pass 1: min, max (from 0) and the value checks, four accumulators each.
      v128_t lo0 = wasm_v128_load(x), lo1 = wasm_v128_load(x + 4), lo2 = wasm_v128_load(x + 8), lo3 = wasm_v128_load(x + 12);
      v128_t hi0 = wasm_f32x4_pmax(zero, lo0), hi1 = wasm_f32x4_pmax(zero, lo1);
      v128_t hi2 = wasm_f32x4_pmax(zero, lo2), hi3 = wasm_f32x4_pmax(zero, lo3);
      v128_t bad = wasm_v128_or(wasm_v128_or(quant_bad(lo0, check), quant_bad(lo1, check)),
                                wasm_v128_or(quant_bad(lo2, check), quant_bad(lo3, check)));
      for (usize k = 16; k < G; k += 16) {
        v128_t w0 = wasm_v128_load(x + k), w1 = wasm_v128_load(x + k + 4);
        v128_t w2 = wasm_v128_load(x + k + 8), w3 = wasm_v128_load(x + k + 12);
        lo0 = wasm_f32x4_pmin(lo0, w0), lo1 = wasm_f32x4_pmin(lo1, w1), lo2 = wasm_f32x4_pmin(lo2, w2), lo3 = wasm_f32x4_pmin(lo3, w3);
        hi0 = wasm_f32x4_pmax(hi0, w0), hi1 = wasm_f32x4_pmax(hi1, w1), hi2 = wasm_f32x4_pmax(hi2, w2), hi3 = wasm_f32x4_pmax(hi3, w3);
        bad = wasm_v128_or(bad, wasm_v128_or(wasm_v128_or(quant_bad(w0, check), quant_bad(w1, check)),
                                             wasm_v128_or(quant_bad(w2, check), quant_bad(w3, check))));
      }
      v128_t lo = wasm_f32x4_pmin(wasm_f32x4_pmin(lo0, lo1), wasm_f32x4_pmin(lo2, lo3));
      v128_t hi = wasm_f32x4_pmax(wasm_f32x4_pmax(hi0, hi1), wasm_f32x4_pmax(hi2, hi3));
      lo = wasm_f32x4_pmin(lo, wasm_i32x4_shuffle(lo, lo, 2, 3, 0, 1));
      hi = wasm_f32x4_pmax(hi, wasm_i32x4_shuffle(hi, hi, 2, 3, 0, 1));
      lo = wasm_f32x4_pmin(lo, wasm_i32x4_shuffle(lo, lo, 1, 0, 3, 2));
      hi = wasm_f32x4_pmax(hi, wasm_i32x4_shuffle(hi, hi, 1, 0, 3, 2));
      float wmin = wasm_f32x4_extract_lane(lo, 0), wmax = wasm_f32x4_extract_lane(hi, 0);
      float range = wmax - wmin;
      if (wasm_v128_any_true(bad) || !(range <= F32_MAX)) {
        if (r < *status) *status = r;
        return;
      }
      // The group's scale and bias.
      int side = __builtin_fabsf(wmin) > __builtin_fabsf(wmax);
      float mag = range / nbins;
      if (mag < QUANT_EPS) mag = QUANT_EPS;
      float scale = side ? mag : -mag;
      float edge = side ? wmin : wmax;
      float q0 = round_away(edge / scale);
      float bias = 0.0f;
      if (q0 != 0.0f) {
        scale = edge / q0;
        bias = edge;
      }
      scales[r * groups + g] = scale;
      biases[r * groups + g] = bias;
      // Pass 2: the codes.
      v128_t S = wasm_f32x4_splat(scale), B = wasm_f32x4_splat(bias);
      if (bits == 8) {
        for (usize k = 0; k < G; k += 16) wasm_v128_store(out + k, quant_bytes16(x + k, B, S, nb));
      } else {
        // Bytes of codes 2j, 2j + 1 as 16-bit lanes c | c'·256 → c | c'·16 in the low byte.
        const v128_t low = wasm_i16x8_const_splat(0xff);
        for (usize k = 0; k < G; k += 32) {
          v128_t a = quant_bytes16(x + k, B, S, nb), b = quant_bytes16(x + k + 16, B, S, nb);
          a = wasm_v128_and(wasm_v128_or(a, wasm_u16x8_shr(a, 4)), low);
          b = wasm_v128_and(wasm_v128_or(b, wasm_u16x8_shr(b, 4)), low);
          wasm_v128_store(out + k / 2, wasm_u8x16_narrow_i16x8(a, b));
        }
      }
    }
  }
}

#define QUANTIZE_EXPORT(NAME, BITS)                                                                 \
  void EXPORT(NAME)(const float *src, u8 *codes, float *scales, float *biases, usize K, usize G, usize rb, \
                    usize re, usize check, u32 *status) {                                           \
    if (check == 1) quantize_rows(src, codes, scales, biases, K, G, rb, re, 1, status, BITS);       \
    else if (check == 2) quantize_rows(src, codes, scales, biases, K, G, rb, re, 2, status, BITS);  \
    else quantize_rows(src, codes, scales, biases, K, G, rb, re, 0, status, BITS);                  \
  }
QUANTIZE_EXPORT(quantize_q8, 8)
QUANTIZE_EXPORT(quantize_q4, 4)

// ---------------------------------------------------------------------------------------------
// rows_dot_f32(a, lda, rows, b, n, out): out[r] = Σ_{i<n} a[r·lda + i]·b[i] for r < rows, f32
// row-major a (any lda, any alignment). One token's attention over a KV cache: q·k down the keys
// [C, D] and p·v along the transposed values [D, C] (layers/heap-attention.ts, on the tfjs heap).
// Eight lanes of partial sums, added pairwise, then the tail of n in order: an f32 dot product of
// n terms (≤ n roundings, as any summation order).

void EXPORT(rows_dot_f32)(const float *a, usize lda, usize rows, const float *b, usize n, float *out) {
  for (usize r = 0; r < rows; r++, a += lda) {
    v128_t s0 = wasm_f32x4_const_splat(0), s1 = s0;
    usize i = 0;
    for (; i + 8 <= n; i += 8) {
      s0 = madd(s0, wasm_v128_load(a + i), wasm_v128_load(b + i));
      s1 = madd(s1, wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4));
    }
    if (i + 4 <= n) {
      s0 = madd(s0, wasm_v128_load(a + i), wasm_v128_load(b + i));
      i += 4;
    }
    s0 = wasm_f32x4_add(s0, s1);
    s0 = wasm_f32x4_add(s0, wasm_i32x4_shuffle(s0, s0, 2, 3, 0, 1));
    float t = wasm_f32x4_extract_lane(s0, 0) + wasm_f32x4_extract_lane(s0, 1);
    for (; i < n; i++) t += a[i] * b[i];
    out[r] = t;
  }
}
