// SSE2: the x86-64 baseline, 4 floats / 2 doubles per vector, no FMA.
#pragma once
#include <emmintrin.h>

#include <cmath>
#include <cstddef>

namespace fastact::sse2 {

struct M32 { __m128 m; };
struct M64 { __m128d m; };

struct F32 {
  using Elem = float;
  using Mask = M32;
  static constexpr std::size_t N = 4;
  static constexpr bool has_fma = false;
  static constexpr bool has_masked_memory = false;
  static constexpr bool has_exp_table = false;
  static constexpr bool has_permute2 = false;
  static constexpr bool has_native_transpose = false;
  __m128 v;
  static F32 load(const float* p) { return {_mm_loadu_ps(p)}; }
  static F32 splat(float x) { return {_mm_set1_ps(x)}; }
};
struct F64 {
  using Elem = double;
  using Mask = M64;
  static constexpr std::size_t N = 2;
  static constexpr bool has_fma = false;
  static constexpr bool has_masked_memory = false;
  static constexpr bool has_exp_table = false;
  static constexpr bool has_permute2 = false;
  static constexpr bool has_native_transpose = false;
  static constexpr bool has_reduce_add_rows = false;
  __m128d v;
  static F64 load(const double* p) { return {_mm_loadu_pd(p)}; }
  static F64 splat(double x) { return {_mm_set1_pd(x)}; }
};

inline void store(float* p, F32 a) { _mm_storeu_ps(p, a.v); }
inline void store(double* p, F64 a) { _mm_storeu_pd(p, a.v); }
// Non-temporal stores (to 16-byte aligned addresses) bypass the cache: for outputs far larger
// than it they save the read-for-ownership, as memcpy does. stream_fence orders them.
inline void store_stream(float* p, F32 a) { _mm_stream_ps(p, a.v); }
inline void store_stream(double* p, F64 a) { _mm_stream_pd(p, a.v); }
inline void stream_fence() { _mm_sfence(); }

inline F32 operator+(F32 a, F32 b) { return {_mm_add_ps(a.v, b.v)}; }
inline F32 operator-(F32 a, F32 b) { return {_mm_sub_ps(a.v, b.v)}; }
inline F32 operator*(F32 a, F32 b) { return {_mm_mul_ps(a.v, b.v)}; }
inline F32 operator/(F32 a, F32 b) { return {_mm_div_ps(a.v, b.v)}; }
inline F64 operator+(F64 a, F64 b) { return {_mm_add_pd(a.v, b.v)}; }
inline F64 operator-(F64 a, F64 b) { return {_mm_sub_pd(a.v, b.v)}; }
inline F64 operator*(F64 a, F64 b) { return {_mm_mul_pd(a.v, b.v)}; }
inline F64 operator/(F64 a, F64 b) { return {_mm_div_pd(a.v, b.v)}; }

// No FMA unit: unfused multiply-add.
inline F32 mul_add(F32 a, F32 b, F32 c) { return a * b + c; }
inline F64 mul_add(F64 a, F64 b, F64 c) { return a * b + c; }
inline F32 neg_mul_add(F32 a, F32 b, F32 c) { return c - a * b; }
inline F64 neg_mul_add(F64 a, F64 b, F64 c) { return c - a * b; }

// Correctly rounded a*b+c, lane by lane through libm (used only where the formula demands it).
template <class V>
inline V mul_add_exact_lanes(V a, V b, V c) {
  using T = typename V::Elem;
  alignas(16) T ta[V::N], tb[V::N], tc[V::N];
  store(ta, a), store(tb, b), store(tc, c);
  for (std::size_t i = 0; i < V::N; ++i) ta[i] = std::fma(ta[i], tb[i], tc[i]);
  return V::load(ta);
}
inline F32 mul_add_exact(F32 a, F32 b, F32 c) { return mul_add_exact_lanes(a, b, c); }
inline F64 mul_add_exact(F64 a, F64 b, F64 c) { return mul_add_exact_lanes(a, b, c); }

// minps/maxps return the second operand when either is NaN.
inline F32 min(F32 a, F32 b) { return {_mm_min_ps(a.v, b.v)}; }
inline F32 max(F32 a, F32 b) { return {_mm_max_ps(a.v, b.v)}; }
inline F64 min(F64 a, F64 b) { return {_mm_min_pd(a.v, b.v)}; }
inline F64 max(F64 a, F64 b) { return {_mm_max_pd(a.v, b.v)}; }

inline F32 abs(F32 a) { return {_mm_andnot_ps(_mm_set1_ps(-0.0f), a.v)}; }
inline F64 abs(F64 a) { return {_mm_andnot_pd(_mm_set1_pd(-0.0), a.v)}; }
inline F32 neg_abs(F32 a) { return {_mm_or_ps(_mm_set1_ps(-0.0f), a.v)}; }
inline F64 neg_abs(F64 a) { return {_mm_or_pd(_mm_set1_pd(-0.0), a.v)}; }
inline F32 copysign(F32 mag, F32 sgn) {
  const __m128 s = _mm_set1_ps(-0.0f);
  return {_mm_or_ps(_mm_andnot_ps(s, mag.v), _mm_and_ps(s, sgn.v))};
}
inline F64 copysign(F64 mag, F64 sgn) {
  const __m128d s = _mm_set1_pd(-0.0);
  return {_mm_or_pd(_mm_andnot_pd(s, mag.v), _mm_and_pd(s, sgn.v))};
}

inline F32 pow2i(F32 n) {
  const __m128i e = _mm_add_epi32(_mm_cvtps_epi32(n.v), _mm_set1_epi32(127));
  return {_mm_castsi128_ps(_mm_slli_epi32(e, 23))};
}
inline F64 pow2i(F64 n) {
  // n + 1.5 * 2^52 holds n as an integer in its low mantissa bits; subtracting the
  // magic number's bit pattern as a 64-bit integer leaves n itself.
  const __m128d magic = _mm_set1_pd(0x1.8p52);
  const __m128i k = _mm_sub_epi64(_mm_castpd_si128(_mm_add_pd(n.v, magic)), _mm_castpd_si128(magic));
  return {_mm_castsi128_pd(_mm_slli_epi64(_mm_add_epi64(k, _mm_set1_epi64x(1023)), 52))};
}

// 2^k from the low bits of t's representation, read as a biased exponent (see exp).
inline F32 pow2_from_low_bits(F32 t) { return {_mm_castsi128_ps(_mm_slli_epi32(_mm_castps_si128(t.v), 23))}; }
inline F64 pow2_from_low_bits(F64 t) { return {_mm_castsi128_pd(_mm_slli_epi64(_mm_castpd_si128(t.v), 52))}; }

inline M32 lt(F32 a, F32 b) { return {_mm_cmplt_ps(a.v, b.v)}; }
inline M32 le(F32 a, F32 b) { return {_mm_cmple_ps(a.v, b.v)}; }
inline M32 gt(F32 a, F32 b) { return {_mm_cmpgt_ps(a.v, b.v)}; }
inline M32 is_nan(F32 a) { return {_mm_cmpunord_ps(a.v, a.v)}; }
inline M64 lt(F64 a, F64 b) { return {_mm_cmplt_pd(a.v, b.v)}; }
inline M64 le(F64 a, F64 b) { return {_mm_cmple_pd(a.v, b.v)}; }
inline M64 gt(F64 a, F64 b) { return {_mm_cmpgt_pd(a.v, b.v)}; }
inline M64 is_nan(F64 a) { return {_mm_cmpunord_pd(a.v, a.v)}; }

inline F32 select(M32 m, F32 a, F32 b) { return {_mm_or_ps(_mm_and_ps(m.m, a.v), _mm_andnot_ps(m.m, b.v))}; }
inline F64 select(M64 m, F64 a, F64 b) { return {_mm_or_pd(_mm_and_pd(m.m, a.v), _mm_andnot_pd(m.m, b.v))}; }
inline M32 mask_or(M32 a, M32 b) { return {_mm_or_ps(a.m, b.m)}; }
inline M64 mask_or(M64 a, M64 b) { return {_mm_or_pd(a.m, b.m)}; }
inline bool any(M32 m) { return _mm_movemask_ps(m.m) != 0; }
inline bool any(M64 m) { return _mm_movemask_pd(m.m) != 0; }

inline float reduce_max(F32 a) {
  const __m128 t = _mm_max_ps(a.v, _mm_movehl_ps(a.v, a.v));
  return _mm_cvtss_f32(_mm_max_ss(t, _mm_shuffle_ps(t, t, 1)));
}
inline double reduce_max(F64 a) { return _mm_cvtsd_f64(_mm_max_sd(a.v, _mm_unpackhi_pd(a.v, a.v))); }
inline float reduce_add(F32 a) {
  const __m128 t = _mm_add_ps(a.v, _mm_movehl_ps(a.v, a.v));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}
inline double reduce_add(F64 a) { return _mm_cvtsd_f64(_mm_add_sd(a.v, _mm_unpackhi_pd(a.v, a.v))); }

// Lanes k and k + N/2 exchanged.
inline F32 swap_halves(F32 a) { return {_mm_shuffle_ps(a.v, a.v, _MM_SHUFFLE(1, 0, 3, 2))}; }
// Lane k and lane k ^ kDistance exchanged (kDistance 1 or 2), and every lane of a group of kGroup (2
// or 4) set to the group's first: one shuffle each for the backward's rows of 2 and 4 floats
// (softmax-inl.h, softmax_backward_lane_rows).
template <std::size_t kDistance>
inline F32 swap_lanes(F32 a) {
  static_assert(kDistance == 1 || kDistance == 2, "swap_lanes: distance 1 or 2");
  return {_mm_shuffle_ps(a.v, a.v, kDistance == 1 ? _MM_SHUFFLE(2, 3, 0, 1) : _MM_SHUFFLE(1, 0, 3, 2))};
}
template <std::size_t kGroup>
inline F32 broadcast_group_first(F32 a) {
  static_assert(kGroup == 2 || kGroup == 4, "broadcast_group_first: groups of 2 or 4");
  return {_mm_shuffle_ps(a.v, a.v, kGroup == 2 ? _MM_SHUFFLE(2, 2, 0, 0) : 0)};
}
// The lanes of a and b alternated, a's first: the first halves (interleave_lo) or the second halves
// (interleave_hi). Rounds of them transpose a square of vectors (softmax-inl.h, transpose_square).
inline F32 interleave_lo(F32 a, F32 b) { return {_mm_unpacklo_ps(a.v, b.v)}; }
inline F32 interleave_hi(F32 a, F32 b) { return {_mm_unpackhi_ps(a.v, b.v)}; }
inline F64 interleave_lo(F64 a, F64 b) { return {_mm_unpacklo_pd(a.v, b.v)}; }
inline F64 interleave_hi(F64 a, F64 b) { return {_mm_unpackhi_pd(a.v, b.v)}; }
// Lanes 0, 2, 4, ... (deinterleave_even) or 1, 3, 5, ... (deinterleave_odd) of a followed by b: the
// inverse of interleave_lo/hi (softmax-inl.h, load_transposed).
inline F32 deinterleave_even(F32 a, F32 b) { return {_mm_shuffle_ps(a.v, b.v, _MM_SHUFFLE(2, 0, 2, 0))}; }
inline F32 deinterleave_odd(F32 a, F32 b) { return {_mm_shuffle_ps(a.v, b.v, _MM_SHUFFLE(3, 1, 3, 1))}; }
inline F64 deinterleave_even(F64 a, F64 b) { return {_mm_unpacklo_pd(a.v, b.v)}; }
inline F64 deinterleave_odd(F64 a, F64 b) { return {_mm_unpackhi_pd(a.v, b.v)}; }
// For positive normal x (as F64 lanes): x = significand_of(x) * 2^exponent_of(x), the significand in
// [1, 2) and the exponent an integer-valued double (vector log's range reduction).
// The exponent field becomes the low bits of 2^52's significand: (2^52 + field) - (2^52 + 1023).
inline F64 exponent_of(F64 x) {
  const __m128i field = _mm_srli_epi64(_mm_castpd_si128(x.v), 52);
  const __m128d biased = _mm_castsi128_pd(_mm_or_si128(field, _mm_castpd_si128(_mm_set1_pd(0x1p52))));
  return {_mm_sub_pd(biased, _mm_set1_pd(0x1p52 + 1023))};
}
inline F64 significand_of(F64 x) {
  const __m128i frac = _mm_and_si128(_mm_castpd_si128(x.v), _mm_set1_epi64x(0x000fffffffffffffLL));
  return {_mm_castsi128_pd(_mm_or_si128(frac, _mm_castpd_si128(_mm_set1_pd(1.0))))};
}

inline F64 widen_lo(F32 a) { return {_mm_cvtps_pd(a.v)}; }
inline F64 widen_hi(F32 a) { return {_mm_cvtps_pd(_mm_movehl_ps(a.v, a.v))}; }
// The inverse of widen_lo/widen_hi: lo's lanes then hi's, each rounded to float.
inline F32 narrow_pair(F64 lo, F64 hi) { return {_mm_movelh_ps(_mm_cvtpd_ps(lo.v), _mm_cvtpd_ps(hi.v))}; }

}  // namespace fastact::sse2
