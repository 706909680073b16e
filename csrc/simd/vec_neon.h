// AArch64 Advanced SIMD (NEON): 4 floats / 2 doubles per vector, fused multiply-add.
#pragma once
#include <arm_neon.h>

#include <cstddef>

namespace fastact::neon {

struct M32 { uint32x4_t m; };
struct M64 { uint64x2_t m; };

struct F32 {
  using Elem = float;
  using Mask = M32;
  static constexpr std::size_t N = 4;
  static constexpr bool has_fma = true;
  static constexpr bool has_masked_memory = false;
  static constexpr bool has_exp_table = false;
  static constexpr bool has_permute2 = false;
  static constexpr bool has_native_transpose = false;
  float32x4_t v;
  static F32 load(const float* p) { return {vld1q_f32(p)}; }
  static F32 splat(float x) { return {vdupq_n_f32(x)}; }
};
struct F64 {
  using Elem = double;
  using Mask = M64;
  static constexpr std::size_t N = 2;
  static constexpr bool has_fma = true;
  static constexpr bool has_masked_memory = false;
  static constexpr bool has_exp_table = false;
  static constexpr bool has_permute2 = false;
  static constexpr bool has_native_transpose = false;
  static constexpr bool has_reduce_add_rows = false;
  float64x2_t v;
  static F64 load(const double* p) { return {vld1q_f64(p)}; }
  static F64 splat(double x) { return {vdupq_n_f64(x)}; }
};

inline void store(float* p, F32 a) { vst1q_f32(p, a.v); }
inline void store(double* p, F64 a) { vst1q_f64(p, a.v); }
// No portable non-temporal vector store in ACLE: a plain store (the fence is then a no-op).
inline void store_stream(float* p, F32 a) { vst1q_f32(p, a.v); }
inline void store_stream(double* p, F64 a) { vst1q_f64(p, a.v); }
inline void stream_fence() {}

inline F32 operator+(F32 a, F32 b) { return {vaddq_f32(a.v, b.v)}; }
inline F32 operator-(F32 a, F32 b) { return {vsubq_f32(a.v, b.v)}; }
inline F32 operator*(F32 a, F32 b) { return {vmulq_f32(a.v, b.v)}; }
inline F32 operator/(F32 a, F32 b) { return {vdivq_f32(a.v, b.v)}; }
inline F64 operator+(F64 a, F64 b) { return {vaddq_f64(a.v, b.v)}; }
inline F64 operator-(F64 a, F64 b) { return {vsubq_f64(a.v, b.v)}; }
inline F64 operator*(F64 a, F64 b) { return {vmulq_f64(a.v, b.v)}; }
inline F64 operator/(F64 a, F64 b) { return {vdivq_f64(a.v, b.v)}; }

inline F32 mul_add(F32 a, F32 b, F32 c) { return {vfmaq_f32(c.v, a.v, b.v)}; }
inline F64 mul_add(F64 a, F64 b, F64 c) { return {vfmaq_f64(c.v, a.v, b.v)}; }
inline F32 mul_add_exact(F32 a, F32 b, F32 c) { return mul_add(a, b, c); }
inline F64 mul_add_exact(F64 a, F64 b, F64 c) { return mul_add(a, b, c); }
inline F32 neg_mul_add(F32 a, F32 b, F32 c) { return {vfmsq_f32(c.v, a.v, b.v)}; }
inline F64 neg_mul_add(F64 a, F64 b, F64 c) { return {vfmsq_f64(c.v, a.v, b.v)}; }

// The x86 rule (second operand when either is NaN), so every target agrees.
inline F32 min(F32 a, F32 b) { return {vbslq_f32(vcltq_f32(a.v, b.v), a.v, b.v)}; }
inline F32 max(F32 a, F32 b) { return {vbslq_f32(vcgtq_f32(a.v, b.v), a.v, b.v)}; }
inline F64 min(F64 a, F64 b) { return {vbslq_f64(vcltq_f64(a.v, b.v), a.v, b.v)}; }
inline F64 max(F64 a, F64 b) { return {vbslq_f64(vcgtq_f64(a.v, b.v), a.v, b.v)}; }

inline F32 abs(F32 a) { return {vabsq_f32(a.v)}; }
inline F64 abs(F64 a) { return {vabsq_f64(a.v)}; }
inline F32 neg_abs(F32 a) { return {vnegq_f32(vabsq_f32(a.v))}; }
inline F64 neg_abs(F64 a) { return {vnegq_f64(vabsq_f64(a.v))}; }
inline F32 copysign(F32 mag, F32 sgn) { return {vbslq_f32(vdupq_n_u32(0x80000000u), sgn.v, mag.v)}; }
inline F64 copysign(F64 mag, F64 sgn) { return {vbslq_f64(vdupq_n_u64(0x8000000000000000ull), sgn.v, mag.v)}; }

inline F32 pow2i(F32 n) {
  const int32x4_t e = vaddq_s32(vcvtq_s32_f32(n.v), vdupq_n_s32(127));
  return {vreinterpretq_f32_s32(vshlq_n_s32(e, 23))};
}
inline F64 pow2i(F64 n) {
  const int64x2_t e = vaddq_s64(vcvtq_s64_f64(n.v), vdupq_n_s64(1023));
  return {vreinterpretq_f64_s64(vshlq_n_s64(e, 52))};
}

// 2^k from the low bits of t's representation, read as a biased exponent (see exp).
inline F32 pow2_from_low_bits(F32 t) { return {vreinterpretq_f32_u32(vshlq_n_u32(vreinterpretq_u32_f32(t.v), 23))}; }
inline F64 pow2_from_low_bits(F64 t) { return {vreinterpretq_f64_u64(vshlq_n_u64(vreinterpretq_u64_f64(t.v), 52))}; }

inline M32 lt(F32 a, F32 b) { return {vcltq_f32(a.v, b.v)}; }
inline M32 le(F32 a, F32 b) { return {vcleq_f32(a.v, b.v)}; }
inline M32 gt(F32 a, F32 b) { return {vcgtq_f32(a.v, b.v)}; }
inline M32 is_nan(F32 a) { return {vmvnq_u32(vceqq_f32(a.v, a.v))}; }
inline M64 lt(F64 a, F64 b) { return {vcltq_f64(a.v, b.v)}; }
inline M64 le(F64 a, F64 b) { return {vcleq_f64(a.v, b.v)}; }
inline M64 gt(F64 a, F64 b) { return {vcgtq_f64(a.v, b.v)}; }
inline M64 is_nan(F64 a) {
  return {vreinterpretq_u64_u32(vmvnq_u32(vreinterpretq_u32_u64(vceqq_f64(a.v, a.v))))};
}

inline F32 select(M32 m, F32 a, F32 b) { return {vbslq_f32(m.m, a.v, b.v)}; }
inline F64 select(M64 m, F64 a, F64 b) { return {vbslq_f64(m.m, a.v, b.v)}; }
inline M32 mask_or(M32 a, M32 b) { return {vorrq_u32(a.m, b.m)}; }
inline M64 mask_or(M64 a, M64 b) { return {vorrq_u64(a.m, b.m)}; }
inline bool any(M32 m) { return vmaxvq_u32(m.m) != 0; }
inline bool any(M64 m) { return (vgetq_lane_u64(m.m, 0) | vgetq_lane_u64(m.m, 1)) != 0; }

inline float reduce_max(F32 a) { return vmaxvq_f32(a.v); }
inline double reduce_max(F64 a) { return vmaxvq_f64(a.v); }
inline float reduce_add(F32 a) { return vaddvq_f32(a.v); }
inline double reduce_add(F64 a) { return vaddvq_f64(a.v); }

// Lanes k and k + N/2 exchanged.
inline F32 swap_halves(F32 a) { return {vextq_f32(a.v, a.v, 2)}; }
// Lane k and lane k ^ kDistance exchanged (kDistance 1 or 2), and every lane of a group of kGroup (2
// or 4) set to the group's first: one permute each for the backward's rows of 2 and 4 floats
// (softmax-inl.h, softmax_backward_lane_rows).
template <std::size_t kDistance>
inline F32 swap_lanes(F32 a) {
  static_assert(kDistance == 1 || kDistance == 2, "swap_lanes: distance 1 or 2");
  if constexpr (kDistance == 1) {
    return {vrev64q_f32(a.v)};
  } else {
    return swap_halves(a);
  }
}
template <std::size_t kGroup>
inline F32 broadcast_group_first(F32 a) {
  static_assert(kGroup == 2 || kGroup == 4, "broadcast_group_first: groups of 2 or 4");
  if constexpr (kGroup == 2) {
    return {vtrn1q_f32(a.v, a.v)};
  } else {
    return {vdupq_laneq_f32(a.v, 0)};
  }
}
// The lanes of a and b alternated, a's first: the first halves (interleave_lo) or the second halves
// (interleave_hi). Rounds of them transpose a square of vectors (softmax-inl.h, transpose_square).
inline F32 interleave_lo(F32 a, F32 b) { return {vzip1q_f32(a.v, b.v)}; }
inline F32 interleave_hi(F32 a, F32 b) { return {vzip2q_f32(a.v, b.v)}; }
inline F64 interleave_lo(F64 a, F64 b) { return {vzip1q_f64(a.v, b.v)}; }
inline F64 interleave_hi(F64 a, F64 b) { return {vzip2q_f64(a.v, b.v)}; }
// Lanes 0, 2, 4, ... (deinterleave_even) or 1, 3, 5, ... (deinterleave_odd) of a followed by b: the
// inverse of interleave_lo/hi (softmax-inl.h, load_transposed).
inline F32 deinterleave_even(F32 a, F32 b) { return {vuzp1q_f32(a.v, b.v)}; }
inline F32 deinterleave_odd(F32 a, F32 b) { return {vuzp2q_f32(a.v, b.v)}; }
inline F64 deinterleave_even(F64 a, F64 b) { return {vuzp1q_f64(a.v, b.v)}; }
inline F64 deinterleave_odd(F64 a, F64 b) { return {vuzp2q_f64(a.v, b.v)}; }
// For positive normal x (as F64 lanes): x = significand_of(x) * 2^exponent_of(x), the significand in
// [1, 2) and the exponent an integer-valued double (vector log's range reduction).
// The exponent field becomes the low bits of 2^52's significand: (2^52 + field) - (2^52 + 1023).
inline F64 exponent_of(F64 x) {
  const uint64x2_t field = vshrq_n_u64(vreinterpretq_u64_f64(x.v), 52);
  const float64x2_t biased = vreinterpretq_f64_u64(vorrq_u64(field, vreinterpretq_u64_f64(vdupq_n_f64(0x1p52))));
  return {vsubq_f64(biased, vdupq_n_f64(0x1p52 + 1023))};
}
inline F64 significand_of(F64 x) {
  const uint64x2_t frac = vandq_u64(vreinterpretq_u64_f64(x.v), vdupq_n_u64(0x000fffffffffffffULL));
  return {vreinterpretq_f64_u64(vorrq_u64(frac, vreinterpretq_u64_f64(vdupq_n_f64(1.0))))};
}

inline F64 widen_lo(F32 a) { return {vcvt_f64_f32(vget_low_f32(a.v))}; }
inline F64 widen_hi(F32 a) { return {vcvt_high_f64_f32(a.v)}; }
// The inverse of widen_lo/widen_hi: lo's lanes then hi's, each rounded to float.
inline F32 narrow_pair(F64 lo, F64 hi) { return {vcvt_high_f32_f64(vcvt_f32_f64(lo.v), hi.v)}; }

}  // namespace fastact::neon
