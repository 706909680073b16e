// AVX-512F: 16 floats / 8 doubles per vector, opmask registers for comparisons.
// Only AVX512F instructions are used, so Skylake-X, Ice Lake, Zen 4 and later all qualify.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace fastact::avx512 {

struct M32 { __mmask16 m; };
struct M64 { __mmask8 m; };

struct F32 {
  using Elem = float;
  using Mask = M32;
  static constexpr std::size_t N = 16;
  static constexpr bool has_fma = true;
  static constexpr bool has_masked_memory = true;
  // A 16-lane permute and vscalefps: exp in its table form (math-inl.h, exp_table16).
  static constexpr bool has_exp_table = true;
  // A two-source lane permute with the indices in a vector (vpermt2ps): permute2 below.
  static constexpr bool has_permute2 = true;
  static constexpr bool has_native_transpose = false;
  using LaneIndex = std::int32_t;
  __m512 v;
  static F32 load(const float* p) { return {_mm512_loadu_ps(p)}; }
  static F32 splat(float x) { return {_mm512_set1_ps(x)}; }
};
struct F64 {
  using Elem = double;
  using Mask = M64;
  static constexpr std::size_t N = 8;
  static constexpr bool has_fma = true;
  static constexpr bool has_masked_memory = true;
  static constexpr bool has_exp_table = false;
  static constexpr bool has_reduce_add_rows = true;
  static constexpr bool has_permute2 = true;
  static constexpr bool has_native_transpose = false;
  using LaneIndex = std::int64_t;
  __m512d v;
  static F64 load(const double* p) { return {_mm512_loadu_pd(p)}; }
  static F64 splat(double x) { return {_mm512_set1_pd(x)}; }
  // Eight rows' reduce_add at once (defined below reduce_add).
  static F64 reduce_add_rows(const F64* rows);
};

inline void store(float* p, F32 a) { _mm512_storeu_ps(p, a.v); }
inline void store(double* p, F64 a) { _mm512_storeu_pd(p, a.v); }
// Non-temporal stores to 64-byte aligned addresses (see vec_sse2.h).
inline void store_stream(float* p, F32 a) { _mm512_stream_ps(p, a.v); }
inline void store_stream(double* p, F64 a) { _mm512_stream_pd(p, a.v); }
inline void stream_fence() { _mm_sfence(); }

// The first n lanes (n <= N) from or to memory; the lanes past n are `pad` (load) or left untouched
// (store). Masked lanes are never accessed, so p + n may be the end of the array.
inline __mmask16 first_lanes16(std::size_t n) { return static_cast<__mmask16>((1u << n) - 1); }
inline __mmask8 first_lanes8(std::size_t n) { return static_cast<__mmask8>((1u << n) - 1); }
inline F32 load_partial(const float* p, std::size_t n, F32 pad) { return {_mm512_mask_loadu_ps(pad.v, first_lanes16(n), p)}; }
inline F64 load_partial(const double* p, std::size_t n, F64 pad) { return {_mm512_mask_loadu_pd(pad.v, first_lanes8(n), p)}; }
inline void store_partial(float* p, std::size_t n, F32 a) { _mm512_mask_storeu_ps(p, first_lanes16(n), a.v); }
inline void store_partial(double* p, std::size_t n, F64 a) { _mm512_mask_storeu_pd(p, first_lanes8(n), a.v); }

inline F32 operator+(F32 a, F32 b) { return {_mm512_add_ps(a.v, b.v)}; }
inline F32 operator-(F32 a, F32 b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline F32 operator*(F32 a, F32 b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline F32 operator/(F32 a, F32 b) { return {_mm512_div_ps(a.v, b.v)}; }
inline F64 operator+(F64 a, F64 b) { return {_mm512_add_pd(a.v, b.v)}; }
inline F64 operator-(F64 a, F64 b) { return {_mm512_sub_pd(a.v, b.v)}; }
inline F64 operator*(F64 a, F64 b) { return {_mm512_mul_pd(a.v, b.v)}; }
inline F64 operator/(F64 a, F64 b) { return {_mm512_div_pd(a.v, b.v)}; }

inline F32 mul_add(F32 a, F32 b, F32 c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
inline F64 mul_add(F64 a, F64 b, F64 c) { return {_mm512_fmadd_pd(a.v, b.v, c.v)}; }
inline F32 mul_add_exact(F32 a, F32 b, F32 c) { return mul_add(a, b, c); }
inline F64 mul_add_exact(F64 a, F64 b, F64 c) { return mul_add(a, b, c); }
inline F32 neg_mul_add(F32 a, F32 b, F32 c) { return {_mm512_fnmadd_ps(a.v, b.v, c.v)}; }
inline F64 neg_mul_add(F64 a, F64 b, F64 c) { return {_mm512_fnmadd_pd(a.v, b.v, c.v)}; }

// vminps/vmaxps keep the x86 rule: the second operand when either is NaN.
inline F32 min(F32 a, F32 b) { return {_mm512_min_ps(a.v, b.v)}; }
inline F32 max(F32 a, F32 b) { return {_mm512_max_ps(a.v, b.v)}; }
inline F64 min(F64 a, F64 b) { return {_mm512_min_pd(a.v, b.v)}; }
inline F64 max(F64 a, F64 b) { return {_mm512_max_pd(a.v, b.v)}; }

inline F32 abs(F32 a) {
  return {_mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(0x7fffffff)))};
}
inline F64 abs(F64 a) {
  return {_mm512_castsi512_pd(
      _mm512_and_si512(_mm512_castpd_si512(a.v), _mm512_set1_epi64(0x7fffffffffffffffLL)))};
}
inline F32 neg_abs(F32 a) {
  return {_mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(static_cast<int>(0x80000000u))))};
}
inline F64 neg_abs(F64 a) {
  return {_mm512_castsi512_pd(
      _mm512_or_si512(_mm512_castpd_si512(a.v), _mm512_set1_epi64(static_cast<long long>(0x8000000000000000ull))))};
}
inline F32 copysign(F32 mag, F32 sgn) {
  const __m512i s = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  return {_mm512_castsi512_ps(_mm512_or_si512(_mm512_andnot_si512(s, _mm512_castps_si512(mag.v)),
                                              _mm512_and_si512(s, _mm512_castps_si512(sgn.v))))};
}
inline F64 copysign(F64 mag, F64 sgn) {
  const __m512i s = _mm512_set1_epi64(static_cast<long long>(0x8000000000000000ull));
  return {_mm512_castsi512_pd(_mm512_or_si512(_mm512_andnot_si512(s, _mm512_castpd_si512(mag.v)),
                                              _mm512_and_si512(s, _mm512_castpd_si512(sgn.v))))};
}

inline F32 pow2i(F32 n) {
  const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n.v), _mm512_set1_epi32(127));
  return {_mm512_castsi512_ps(_mm512_slli_epi32(e, 23))};
}
inline F64 pow2i(F64 n) {
  const __m512i k = _mm512_cvtepi32_epi64(_mm512_cvtpd_epi32(n.v));
  return {_mm512_castsi512_pd(_mm512_slli_epi64(_mm512_add_epi64(k, _mm512_set1_epi64(1023)), 52))};
}

// 2^k from the low bits of t's representation, read as a biased exponent (see exp).
inline F32 pow2_from_low_bits(F32 t) { return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(t.v), 23))}; }
inline F64 pow2_from_low_bits(F64 t) { return {_mm512_castsi512_pd(_mm512_slli_epi64(_mm512_castpd_si512(t.v), 52))}; }

// exp's table form: lane i of `table` at the index held in the low four bits of the representation
// of index's lane i; and a * 2^floor(k), rounded once (subnormal results included, overflow to inf).
inline F32 lookup16(F32 table, F32 index) { return {_mm512_permutexvar_ps(_mm512_castps_si512(index.v), table.v)}; }
inline F32 scale_by_pow2(F32 a, F32 k) { return {_mm512_scalef_ps(a.v, k.v)}; }

// Lane l of the result: lane index[l] of a, or of b for index[l] - N (index[l] < 2N).
inline F32 permute2(F32 a, F32 b, const std::int32_t* index) {
  return {_mm512_permutex2var_ps(a.v, _mm512_loadu_si512(index), b.v)};
}
inline F64 permute2(F64 a, F64 b, const std::int64_t* index) {
  return {_mm512_permutex2var_pd(a.v, _mm512_loadu_si512(index), b.v)};
}

inline M32 lt(F32 a, F32 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ)}; }
inline M32 le(F32 a, F32 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LE_OQ)}; }
inline M32 gt(F32 a, F32 b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ)}; }
inline M32 is_nan(F32 a) { return {_mm512_cmp_ps_mask(a.v, a.v, _CMP_UNORD_Q)}; }
inline M64 lt(F64 a, F64 b) { return {_mm512_cmp_pd_mask(a.v, b.v, _CMP_LT_OQ)}; }
inline M64 le(F64 a, F64 b) { return {_mm512_cmp_pd_mask(a.v, b.v, _CMP_LE_OQ)}; }
inline M64 gt(F64 a, F64 b) { return {_mm512_cmp_pd_mask(a.v, b.v, _CMP_GT_OQ)}; }
inline M64 is_nan(F64 a) { return {_mm512_cmp_pd_mask(a.v, a.v, _CMP_UNORD_Q)}; }

inline F32 select(M32 m, F32 a, F32 b) { return {_mm512_mask_blend_ps(m.m, b.v, a.v)}; }
inline F64 select(M64 m, F64 a, F64 b) { return {_mm512_mask_blend_pd(m.m, b.v, a.v)}; }
inline M32 mask_or(M32 a, M32 b) { return {static_cast<__mmask16>(a.m | b.m)}; }
inline M64 mask_or(M64 a, M64 b) { return {static_cast<__mmask8>(a.m | b.m)}; }
inline bool any(M32 m) { return m.m != 0; }
inline bool any(M64 m) { return m.m != 0; }

inline float reduce_max(F32 a) { return _mm512_reduce_max_ps(a.v); }
inline double reduce_max(F64 a) { return _mm512_reduce_max_pd(a.v); }
inline float reduce_add(F32 a) { return _mm512_reduce_add_ps(a.v); }
// Lanes k + k+4, then k + k+2, then 0 + 1: spelled out, as reduce_add_rows repeats these additions.
inline double reduce_add(F64 a) {
  const __m256d quads = _mm256_add_pd(_mm512_extractf64x4_pd(a.v, 1), _mm512_castpd512_pd256(a.v));
  const __m128d pairs = _mm_add_pd(_mm256_extractf128_pd(quads, 1), _mm256_castpd256_pd128(quads));
  return _mm_cvtsd_f64(_mm_add_sd(_mm_unpackhi_pd(pairs, pairs), pairs));
}
// Lane r = reduce_add(rows[r]) for r < 8, bit for bit, by the same additions made across the rows:
// about 21 operations for the eight, where eight horizontal reductions take 48 and end each row's
// chain (short softmax rows; see softmax-inl.h, row_totals and softmax_backward_vector_rows).
inline F64 F64::reduce_add_rows(const F64* rows) {
  __m512d quads[4], pairs[2];
  for (int i = 0; i < 4; ++i) {  // rows 2i and 2i+1: lanes k + k+4, in the low and high halves
    const __m512d a = rows[2 * i].v, b = rows[2 * i + 1].v;
    quads[i] = _mm512_add_pd(_mm512_shuffle_f64x2(a, b, 0xEE), _mm512_shuffle_f64x2(a, b, 0x44));
  }
  for (int i = 0; i < 2; ++i) {  // rows 4i..4i+3: k + k+2, two lanes a row
    const __m512d a = quads[2 * i], b = quads[2 * i + 1];
    pairs[i] = _mm512_add_pd(_mm512_shuffle_f64x2(a, b, 0xDD), _mm512_shuffle_f64x2(a, b, 0x88));
  }
  const __m512i odd = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15), even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
  return {_mm512_add_pd(_mm512_permutex2var_pd(pairs[0], odd, pairs[1]), _mm512_permutex2var_pd(pairs[0], even, pairs[1]))};
}


// Lanes k and k + N/2 exchanged.
inline F32 swap_halves(F32 a) { return {_mm512_shuffle_f32x4(a.v, a.v, 0x4e)}; }
// Lane k and lane k ^ kDistance exchanged (kDistance 1 or 2), and every lane of a group of kGroup (2
// or 4) set to the group's first: shuffles within 128 bits for the backward's rows of 2 and 4 floats
// (softmax-inl.h, softmax_backward_lane_rows).
template <std::size_t kDistance>
inline F32 swap_lanes(F32 a) {
  static_assert(kDistance == 1 || kDistance == 2, "swap_lanes: distance 1 or 2");
  return {_mm512_permute_ps(a.v, kDistance == 1 ? _MM_SHUFFLE(2, 3, 0, 1) : _MM_SHUFFLE(1, 0, 3, 2))};
}
template <std::size_t kGroup>
inline F32 broadcast_group_first(F32 a) {
  static_assert(kGroup == 2 || kGroup == 4, "broadcast_group_first: groups of 2 or 4");
  return {kGroup == 2 ? _mm512_moveldup_ps(a.v) : _mm512_permute_ps(a.v, 0)};
}
// The lanes of a and b alternated, a's first: the first halves (interleave_lo) or the second halves
// (interleave_hi). Rounds of them transpose a square of vectors (softmax-inl.h, transpose_square).
inline F32 interleave_lo(F32 a, F32 b) {
  return {_mm512_permutex2var_ps(a.v, _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), b.v)};
}
inline F32 interleave_hi(F32 a, F32 b) {
  return {_mm512_permutex2var_ps(a.v, _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), b.v)};
}
inline F64 interleave_lo(F64 a, F64 b) { return {_mm512_permutex2var_pd(a.v, _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11), b.v)}; }
inline F64 interleave_hi(F64 a, F64 b) { return {_mm512_permutex2var_pd(a.v, _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15), b.v)}; }
// Lanes 0, 2, 4, ... (deinterleave_even) or 1, 3, 5, ... (deinterleave_odd) of a followed by b: the
// inverse of interleave_lo/hi (softmax-inl.h, load_transposed).
inline F32 deinterleave_even(F32 a, F32 b) {
  return {_mm512_permutex2var_ps(a.v, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), b.v)};
}
inline F32 deinterleave_odd(F32 a, F32 b) {
  return {_mm512_permutex2var_ps(a.v, _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), b.v)};
}
inline F64 deinterleave_even(F64 a, F64 b) { return {_mm512_permutex2var_pd(a.v, _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14), b.v)}; }
inline F64 deinterleave_odd(F64 a, F64 b) { return {_mm512_permutex2var_pd(a.v, _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15), b.v)}; }
// For positive normal x (as F64 lanes): x = significand_of(x) * 2^exponent_of(x), the significand in
// [1, 2) and the exponent an integer-valued double (vector log's range reduction).
inline F64 exponent_of(F64 x) { return {_mm512_getexp_pd(x.v)}; }
inline F64 significand_of(F64 x) { return {_mm512_getmant_pd(x.v, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src)}; }

inline F64 widen_lo(F32 a) { return {_mm512_cvtps_pd(_mm512_castps512_ps256(a.v))}; }
inline F64 widen_hi(F32 a) {
  return {_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a.v), 1)))};
}
// For a batch's totals (softmax-inl.h, softmax_backward_vector_rows, with reduce_add_rows): a's
// lanes rounded to float in lanes 0-7 (the rest 0), and lane k of a float vector in every lane.
inline F32 narrow(F64 a) { return {_mm512_zextps256_ps512(_mm512_cvtpd_ps(a.v))}; }
// The inverse of widen_lo/widen_hi: lo's lanes then hi's, each rounded to float.
inline F32 narrow_pair(F64 lo, F64 hi) {
  const __m512d low = _mm512_castps_pd(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo.v)));
  return {_mm512_castpd_ps(_mm512_insertf64x4(low, _mm256_castps_pd(_mm512_cvtpd_ps(hi.v)), 1))};
}
inline F32 broadcast_lane(F32 a, std::size_t k) {
  return {_mm512_permutexvar_ps(_mm512_set1_epi32(static_cast<int>(k)), a.v)};
}

}  // namespace fastact::avx512
