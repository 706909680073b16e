// Portable one-lane "vector" types: the reference target, and the fallback for CPUs (or
// architectures) without a SIMD target. Same operation set as every other vec_*.h.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace fastact::scalar {

template <class T>
struct Lane {
  using Elem = T;
  using Mask = bool;
  static constexpr std::size_t N = 1;
  static constexpr bool has_fma = false;
  static constexpr bool has_masked_memory = false;
  static constexpr bool has_exp_table = false;
  static constexpr bool has_permute2 = false;
  static constexpr bool has_native_transpose = false;
  static constexpr bool has_reduce_add_rows = false;
  T v;
  static Lane load(const T* p) { return {*p}; }
  static Lane splat(T x) { return {x}; }
};
using F32 = Lane<float>;
using F64 = Lane<double>;

template <class T> inline void store(T* p, Lane<T> a) { *p = a.v; }
// Streaming (non-temporal) store of a whole vector to a vector-aligned address, and the fence
// that orders such stores; a plain store here.
template <class T> inline void store_stream(T* p, Lane<T> a) { *p = a.v; }
inline void stream_fence() {}
template <class T> inline Lane<T> operator+(Lane<T> a, Lane<T> b) { return {a.v + b.v}; }
template <class T> inline Lane<T> operator-(Lane<T> a, Lane<T> b) { return {a.v - b.v}; }
template <class T> inline Lane<T> operator*(Lane<T> a, Lane<T> b) { return {a.v * b.v}; }
template <class T> inline Lane<T> operator/(Lane<T> a, Lane<T> b) { return {a.v / b.v}; }
// Unfused, like every target without FMA (the build passes -ffp-contract=off).
template <class T> inline Lane<T> mul_add(Lane<T> a, Lane<T> b, Lane<T> c) { return {a.v * b.v + c.v}; }
// Correctly rounded a*b+c on every target (libm's fma).
template <class T> inline Lane<T> mul_add_exact(Lane<T> a, Lane<T> b, Lane<T> c) {
  return {std::fma(a.v, b.v, c.v)};
}
// c - a * b, unfused here; fused (one rounding) on the targets with FMA.
template <class T> inline Lane<T> neg_mul_add(Lane<T> a, Lane<T> b, Lane<T> c) { return {c.v - a.v * b.v}; }
// x86 min/max semantics: the second operand is returned when either is NaN.
template <class T> inline Lane<T> min(Lane<T> a, Lane<T> b) { return {a.v < b.v ? a.v : b.v}; }
template <class T> inline Lane<T> max(Lane<T> a, Lane<T> b) { return {a.v > b.v ? a.v : b.v}; }
template <class T> inline Lane<T> abs(Lane<T> a) { return {std::fabs(a.v)}; }
// -|a|: the sign bit set.
template <class T> inline Lane<T> neg_abs(Lane<T> a) { return {-std::fabs(a.v)}; }
template <class T> inline Lane<T> copysign(Lane<T> mag, Lane<T> sgn) { return {std::copysign(mag.v, sgn.v)}; }
// 2^n for an integer-valued n within the normal exponent range.
inline F32 pow2i(F32 n) {
  const std::uint32_t bits = static_cast<std::uint32_t>(static_cast<std::int32_t>(n.v) + 127) << 23;
  float r;
  std::memcpy(&r, &bits, sizeof r);
  return {r};
}
inline F64 pow2i(F64 n) {
  const std::uint64_t bits = static_cast<std::uint64_t>(static_cast<std::int64_t>(n.v) + 1023) << 52;
  double r;
  std::memcpy(&r, &bits, sizeof r);
  return {r};
}

template <class T> inline bool lt(Lane<T> a, Lane<T> b) { return a.v < b.v; }
template <class T> inline bool le(Lane<T> a, Lane<T> b) { return a.v <= b.v; }
template <class T> inline bool gt(Lane<T> a, Lane<T> b) { return a.v > b.v; }
template <class T> inline bool is_nan(Lane<T> a) { return a.v != a.v; }
template <class T> inline Lane<T> select(bool m, Lane<T> a, Lane<T> b) { return m ? a : b; }
inline bool mask_or(bool a, bool b) { return a || b; }
inline bool any(bool m) { return m; }

template <class T> inline T reduce_max(Lane<T> a) { return a.v; }
template <class T> inline T reduce_add(Lane<T> a) { return a.v; }

// 2^k from the low bits of t's representation, read as a biased exponent k + bias (the
// magic-number rounding in exp leaves it there).
inline F32 pow2_from_low_bits(F32 t) {
  std::uint32_t bits;
  std::memcpy(&bits, &t.v, sizeof bits);
  bits <<= 23;
  float r;
  std::memcpy(&r, &bits, sizeof r);
  return {r};
}
inline F64 pow2_from_low_bits(F64 t) {
  std::uint64_t bits;
  std::memcpy(&bits, &t.v, sizeof bits);
  bits <<= 52;
  double r;
  std::memcpy(&r, &bits, sizeof r);
  return {r};
}

// For positive normal x (as F64 lanes): x = significand_of(x) * 2^exponent_of(x), the significand in
// [1, 2) and the exponent an integer-valued double (vector log's range reduction). Any other x (a NaN
// slice's sum) gives values the caller discards, without negating ilogb's INT_MIN for NaN (undefined).
inline F64 exponent_of(F64 x) { return {std::isnormal(x.v) ? static_cast<double>(std::ilogb(x.v)) : 0.0}; }
inline F64 significand_of(F64 x) { return {std::isnormal(x.v) ? std::scalbn(x.v, -std::ilogb(x.v)) : x.v}; }

// float lanes [0, N/2) and [N/2, N) widened to double; with one lane the high half is empty.
inline F64 widen_lo(F32 a) { return {static_cast<double>(a.v)}; }
inline F64 widen_hi(F32) { return {0.0}; }
// The inverse of widen_lo/widen_hi: the one lane, rounded to float.
inline F32 narrow_pair(F64 lo, F64) { return {static_cast<float>(lo.v)}; }
// Declared only, so that the kernels that shuffle lanes within groups parse: a vector of one lane
// holds no group of two, and they are never instantiated here (softmax_backward_lane_rows).
template <std::size_t kDistance>
F32 swap_lanes(F32 a);
template <std::size_t kGroup>
F32 broadcast_group_first(F32 a);

}  // namespace fastact::scalar
