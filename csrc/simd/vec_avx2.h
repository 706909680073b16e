// AVX2 + FMA: 8 floats / 4 doubles per vector (Haswell and later, Zen and later).
#pragma once
#include <immintrin.h>

#include <cstddef>

namespace fastact::avx2 {

struct M32 { __m256 m; };
struct M64 { __m256d m; };

struct F32 {
  using Elem = float;
  using Mask = M32;
  static constexpr std::size_t N = 8;
  static constexpr bool has_fma = true;
  static constexpr bool has_masked_memory = true;
  static constexpr bool has_exp_table = false;
  static constexpr bool has_permute2 = false;
  static constexpr bool has_native_transpose = true;
  __m256 v;
  static F32 load(const float* p) { return {_mm256_loadu_ps(p)}; }
  static F32 splat(float x) { return {_mm256_set1_ps(x)}; }
};
struct F64 {
  using Elem = double;
  using Mask = M64;
  static constexpr std::size_t N = 4;
  static constexpr bool has_fma = true;
  static constexpr bool has_masked_memory = true;
  static constexpr bool has_exp_table = false;
  static constexpr bool has_permute2 = false;
  static constexpr bool has_native_transpose = true;
  static constexpr bool has_reduce_add_rows = true;
  // Four rows' reduce_add at once (defined below reduce_add).
  static F64 reduce_add_rows(const F64* rows);
  __m256d v;
  static F64 load(const double* p) { return {_mm256_loadu_pd(p)}; }
  static F64 splat(double x) { return {_mm256_set1_pd(x)}; }
};

inline void store(float* p, F32 a) { _mm256_storeu_ps(p, a.v); }
inline void store(double* p, F64 a) { _mm256_storeu_pd(p, a.v); }
// Non-temporal stores to 32-byte aligned addresses (see vec_sse2.h).
inline void store_stream(float* p, F32 a) { _mm256_stream_ps(p, a.v); }
inline void store_stream(double* p, F64 a) { _mm256_stream_pd(p, a.v); }
inline void stream_fence() { _mm_sfence(); }

// The first n lanes (n <= N) from or to memory; the lanes past n are `pad` (load) or left untouched
// (store). Masked lanes are never accessed, so p + n may be the end of the array. The mask is a
// window of a table: -1 in the first n lanes, 0 after.
inline __m256i first_lanes(std::size_t n, std::size_t lanes_per_vector) {
  alignas(32) static const int kWindow[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  const std::size_t skip = (8 - n * (8 / lanes_per_vector));
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kWindow + skip));
}
inline F32 load_partial(const float* p, std::size_t n, F32 pad) {
  const __m256i m = first_lanes(n, 8);
  return {_mm256_blendv_ps(pad.v, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m))};
}
inline F64 load_partial(const double* p, std::size_t n, F64 pad) {
  const __m256i m = first_lanes(n, 4);
  return {_mm256_blendv_pd(pad.v, _mm256_maskload_pd(p, m), _mm256_castsi256_pd(m))};
}
inline void store_partial(float* p, std::size_t n, F32 a) { _mm256_maskstore_ps(p, first_lanes(n, 8), a.v); }
inline void store_partial(double* p, std::size_t n, F64 a) { _mm256_maskstore_pd(p, first_lanes(n, 4), a.v); }

inline F32 operator+(F32 a, F32 b) { return {_mm256_add_ps(a.v, b.v)}; }
inline F32 operator-(F32 a, F32 b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline F32 operator*(F32 a, F32 b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline F32 operator/(F32 a, F32 b) { return {_mm256_div_ps(a.v, b.v)}; }
inline F64 operator+(F64 a, F64 b) { return {_mm256_add_pd(a.v, b.v)}; }
inline F64 operator-(F64 a, F64 b) { return {_mm256_sub_pd(a.v, b.v)}; }
inline F64 operator*(F64 a, F64 b) { return {_mm256_mul_pd(a.v, b.v)}; }
inline F64 operator/(F64 a, F64 b) { return {_mm256_div_pd(a.v, b.v)}; }

inline F32 mul_add(F32 a, F32 b, F32 c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
inline F64 mul_add(F64 a, F64 b, F64 c) { return {_mm256_fmadd_pd(a.v, b.v, c.v)}; }
inline F32 mul_add_exact(F32 a, F32 b, F32 c) { return mul_add(a, b, c); }
inline F64 mul_add_exact(F64 a, F64 b, F64 c) { return mul_add(a, b, c); }
inline F32 neg_mul_add(F32 a, F32 b, F32 c) { return {_mm256_fnmadd_ps(a.v, b.v, c.v)}; }
inline F64 neg_mul_add(F64 a, F64 b, F64 c) { return {_mm256_fnmadd_pd(a.v, b.v, c.v)}; }

inline F32 min(F32 a, F32 b) { return {_mm256_min_ps(a.v, b.v)}; }
inline F32 max(F32 a, F32 b) { return {_mm256_max_ps(a.v, b.v)}; }
inline F64 min(F64 a, F64 b) { return {_mm256_min_pd(a.v, b.v)}; }
inline F64 max(F64 a, F64 b) { return {_mm256_max_pd(a.v, b.v)}; }

inline F32 abs(F32 a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v)}; }
inline F64 abs(F64 a) { return {_mm256_andnot_pd(_mm256_set1_pd(-0.0), a.v)}; }
inline F32 neg_abs(F32 a) { return {_mm256_or_ps(_mm256_set1_ps(-0.0f), a.v)}; }
inline F64 neg_abs(F64 a) { return {_mm256_or_pd(_mm256_set1_pd(-0.0), a.v)}; }
inline F32 copysign(F32 mag, F32 sgn) {
  const __m256 s = _mm256_set1_ps(-0.0f);
  return {_mm256_or_ps(_mm256_andnot_ps(s, mag.v), _mm256_and_ps(s, sgn.v))};
}
inline F64 copysign(F64 mag, F64 sgn) {
  const __m256d s = _mm256_set1_pd(-0.0);
  return {_mm256_or_pd(_mm256_andnot_pd(s, mag.v), _mm256_and_pd(s, sgn.v))};
}

inline F32 pow2i(F32 n) {
  const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127));
  return {_mm256_castsi256_ps(_mm256_slli_epi32(e, 23))};
}
inline F64 pow2i(F64 n) {
  const __m256i k = _mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(n.v));
  return {_mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(k, _mm256_set1_epi64x(1023)), 52))};
}

// 2^k from the low bits of t's representation, read as a biased exponent (see exp).
inline F32 pow2_from_low_bits(F32 t) { return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t.v), 23))}; }
inline F64 pow2_from_low_bits(F64 t) { return {_mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(t.v), 52))}; }

inline M32 lt(F32 a, F32 b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ)}; }
inline M32 le(F32 a, F32 b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LE_OQ)}; }
inline M32 gt(F32 a, F32 b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ)}; }
inline M32 is_nan(F32 a) { return {_mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q)}; }
inline M64 lt(F64 a, F64 b) { return {_mm256_cmp_pd(a.v, b.v, _CMP_LT_OQ)}; }
inline M64 le(F64 a, F64 b) { return {_mm256_cmp_pd(a.v, b.v, _CMP_LE_OQ)}; }
inline M64 gt(F64 a, F64 b) { return {_mm256_cmp_pd(a.v, b.v, _CMP_GT_OQ)}; }
inline M64 is_nan(F64 a) { return {_mm256_cmp_pd(a.v, a.v, _CMP_UNORD_Q)}; }

inline F32 select(M32 m, F32 a, F32 b) { return {_mm256_blendv_ps(b.v, a.v, m.m)}; }
inline F64 select(M64 m, F64 a, F64 b) { return {_mm256_blendv_pd(b.v, a.v, m.m)}; }
inline M32 mask_or(M32 a, M32 b) { return {_mm256_or_ps(a.m, b.m)}; }
inline M64 mask_or(M64 a, M64 b) { return {_mm256_or_pd(a.m, b.m)}; }
inline bool any(M32 m) { return _mm256_movemask_ps(m.m) != 0; }
inline bool any(M64 m) { return _mm256_movemask_pd(m.m) != 0; }

inline float reduce_max(F32 a) {
  __m128 t = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  t = _mm_max_ps(t, _mm_movehl_ps(t, t));
  return _mm_cvtss_f32(_mm_max_ss(t, _mm_shuffle_ps(t, t, 1)));
}
inline double reduce_max(F64 a) {
  const __m128d t = _mm_max_pd(_mm256_castpd256_pd128(a.v), _mm256_extractf128_pd(a.v, 1));
  return _mm_cvtsd_f64(_mm_max_sd(t, _mm_unpackhi_pd(t, t)));
}
inline float reduce_add(F32 a) {
  __m128 t = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  t = _mm_add_ps(t, _mm_movehl_ps(t, t));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}
inline double reduce_add(F64 a) {
  const __m128d t = _mm_add_pd(_mm256_castpd256_pd128(a.v), _mm256_extractf128_pd(a.v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(t, _mm_unpackhi_pd(t, t)));
}
// Lane r = reduce_add(rows[r]) for r < 4, bit for bit (lanes k + k+2 first, then 0 + 1), across the
// rows: 9 operations for the four (softmax-inl.h, row_totals and softmax_backward_vector_rows).
inline F64 F64::reduce_add_rows(const F64* rows) {
  const auto pairs = [](__m256d a, __m256d b) {  // a0+a2 a1+a3 b0+b2 b1+b3
    return _mm256_add_pd(_mm256_permute2f128_pd(a, b, 0x20), _mm256_permute2f128_pd(a, b, 0x31));
  };
  const __m256d ac = pairs(rows[0].v, rows[2].v), bd = pairs(rows[1].v, rows[3].v);
  return {_mm256_add_pd(_mm256_unpacklo_pd(ac, bd), _mm256_unpackhi_pd(ac, bd))};
}

// Lanes k and k + N/2 exchanged.
inline F32 swap_halves(F32 a) { return {_mm256_permute2f128_ps(a.v, a.v, 0x01)}; }
// Lane k and lane k ^ kDistance exchanged (kDistance 1 or 2), and every lane of a group of kGroup (2
// or 4) set to the group's first: shuffles within 128 bits for the backward's rows of 2 and 4 floats
// (softmax-inl.h, softmax_backward_lane_rows).
template <std::size_t kDistance>
inline F32 swap_lanes(F32 a) {
  static_assert(kDistance == 1 || kDistance == 2, "swap_lanes: distance 1 or 2");
  return {_mm256_permute_ps(a.v, kDistance == 1 ? _MM_SHUFFLE(2, 3, 0, 1) : _MM_SHUFFLE(1, 0, 3, 2))};
}
template <std::size_t kGroup>
inline F32 broadcast_group_first(F32 a) {
  static_assert(kGroup == 2 || kGroup == 4, "broadcast_group_first: groups of 2 or 4");
  return {kGroup == 2 ? _mm256_moveldup_ps(a.v) : _mm256_permute_ps(a.v, 0)};
}
// The lanes of a and b alternated, a's first: the first halves (interleave_lo) or the second halves
// (interleave_hi). Rounds of them transpose a square of vectors (softmax-inl.h, transpose_square).
// (unpack works within 128-bit halves; the halves are then put in order.)
inline F32 interleave_lo(F32 a, F32 b) {
  return {_mm256_permute2f128_ps(_mm256_unpacklo_ps(a.v, b.v), _mm256_unpackhi_ps(a.v, b.v), 0x20)};
}
inline F32 interleave_hi(F32 a, F32 b) {
  return {_mm256_permute2f128_ps(_mm256_unpacklo_ps(a.v, b.v), _mm256_unpackhi_ps(a.v, b.v), 0x31)};
}
inline F64 interleave_lo(F64 a, F64 b) {
  return {_mm256_permute2f128_pd(_mm256_unpacklo_pd(a.v, b.v), _mm256_unpackhi_pd(a.v, b.v), 0x20)};
}
inline F64 interleave_hi(F64 a, F64 b) {
  return {_mm256_permute2f128_pd(_mm256_unpacklo_pd(a.v, b.v), _mm256_unpackhi_pd(a.v, b.v), 0x31)};
}
// v[0..N), the rows of an N x N matrix, replaced by its columns: two rounds of in-lane shuffles and one
// of 128-bit lane swaps, 3 shuffles a vector, where rounds of interleave_lo/hi (each crossing lanes)
// take 6 (softmax-inl.h, transpose_square).
inline void native_transpose(F32* v) {
  __m256 t[8], s[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(v[i].v, v[i + 1].v);      // rows i, i+1: elements 0 0 1 1 | 4 4 5 5
    t[i + 1] = _mm256_unpackhi_ps(v[i].v, v[i + 1].v);  // 2 2 3 3 | 6 6 7 7
  }
  for (int i = 0; i < 8; i += 4) {
    s[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));  // rows i..i+3: element 0 | 4
    s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));  // 1 | 5
    s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));  // 2 | 6
    s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));  // 3 | 7
  }
  for (int j = 0; j < 4; ++j) {
    v[j].v = _mm256_permute2f128_ps(s[j], s[j + 4], 0x20);
    v[j + 4].v = _mm256_permute2f128_ps(s[j], s[j + 4], 0x31);
  }
}
inline void native_transpose(F64* v) {
  const __m256d t0 = _mm256_unpacklo_pd(v[0].v, v[1].v), t1 = _mm256_unpackhi_pd(v[0].v, v[1].v);  // 0 0 | 2 2, 1 1 | 3 3
  const __m256d t2 = _mm256_unpacklo_pd(v[2].v, v[3].v), t3 = _mm256_unpackhi_pd(v[2].v, v[3].v);
  v[0].v = _mm256_permute2f128_pd(t0, t2, 0x20);
  v[1].v = _mm256_permute2f128_pd(t1, t3, 0x20);
  v[2].v = _mm256_permute2f128_pd(t0, t2, 0x31);
  v[3].v = _mm256_permute2f128_pd(t1, t3, 0x31);
}
// Lanes 0, 2, 4, ... (deinterleave_even) or 1, 3, 5, ... (deinterleave_odd) of a followed by b: the
// inverse of interleave_lo/hi (softmax-inl.h, load_transposed).
// (shuffle works within 128-bit halves: its 64-bit quarters 0, 2, 1, 3 are then put in order.)
inline F32 deinterleave_even(F32 a, F32 b) {
  return {_mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a.v, b.v, _MM_SHUFFLE(2, 0, 2, 0))), 0xd8))};
}
inline F32 deinterleave_odd(F32 a, F32 b) {
  return {_mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a.v, b.v, _MM_SHUFFLE(3, 1, 3, 1))), 0xd8))};
}
inline F64 deinterleave_even(F64 a, F64 b) { return {_mm256_permute4x64_pd(_mm256_unpacklo_pd(a.v, b.v), 0xd8)}; }
inline F64 deinterleave_odd(F64 a, F64 b) { return {_mm256_permute4x64_pd(_mm256_unpackhi_pd(a.v, b.v), 0xd8)}; }
// For positive normal x (as F64 lanes): x = significand_of(x) * 2^exponent_of(x), the significand in
// [1, 2) and the exponent an integer-valued double (vector log's range reduction).
// The exponent field becomes the low bits of 2^52's significand: (2^52 + field) - (2^52 + 1023).
inline F64 exponent_of(F64 x) {
  const __m256i field = _mm256_srli_epi64(_mm256_castpd_si256(x.v), 52);
  const __m256d biased = _mm256_castsi256_pd(_mm256_or_si256(field, _mm256_castpd_si256(_mm256_set1_pd(0x1p52))));
  return {_mm256_sub_pd(biased, _mm256_set1_pd(0x1p52 + 1023))};
}
inline F64 significand_of(F64 x) {
  const __m256i frac = _mm256_and_si256(_mm256_castpd_si256(x.v), _mm256_set1_epi64x(0x000fffffffffffffLL));
  return {_mm256_castsi256_pd(_mm256_or_si256(frac, _mm256_castpd_si256(_mm256_set1_pd(1.0))))};
}

inline F64 widen_lo(F32 a) { return {_mm256_cvtps_pd(_mm256_castps256_ps128(a.v))}; }
inline F64 widen_hi(F32 a) { return {_mm256_cvtps_pd(_mm256_extractf128_ps(a.v, 1))}; }
// The inverse of widen_lo/widen_hi: lo's lanes then hi's, each rounded to float.
inline F32 narrow_pair(F64 lo, F64 hi) { return {_mm256_set_m128(_mm256_cvtpd_ps(hi.v), _mm256_cvtpd_ps(lo.v))}; }
// For a batch's totals (softmax-inl.h, softmax_backward_vector_rows, with reduce_add_rows): a's
// lanes rounded to float in lanes 0-3 (the rest 0), and lane k of a float vector in every lane. The
// lane goes through memory: a load broadcasts it without a shuffle, and the shuffle pipes are what
// the batch waits on (backward rows of 8 floats, TSC cycles per element: vpermps 0.75, this 0.68).
inline F32 narrow(F64 a) { return {_mm256_zextps128_ps256(_mm256_cvtpd_ps(a.v))}; }
inline F32 broadcast_lane(F32 a, std::size_t k) {
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, a.v);
  return {_mm256_broadcast_ss(lanes + k)};
}

}  // namespace fastact::avx2
