// Vector math shared by every kernel: exp, sigmoid, tanh. Written once against the operation set
// of csrc/simd/vec_*.h and compiled once per SIMD target (per-target namespace FASTACT_NS).
// No include guard: each target's translation unit includes it once, inside its own namespace.

#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>

#include "poly_coefficients.h"

// For the small helpers of a hot loop that the compiler would otherwise call out of line (a call
// and a vzeroupper per short softmax row; in the Release build GCC 12 called exp out of line in
// the softmax exp loop, with its constants spilled around the call: 1.64 against 1.15 TSC cycles
// per element on rows of 1024 floats).
#ifndef FASTACT_INLINE
#if defined(__GNUC__) || defined(__clang__)
#define FASTACT_INLINE __attribute__((always_inline))
#else
#define FASTACT_INLINE
#endif
#endif

// For a rare path called from a hot loop: never inlined, placed apart.
#ifndef FASTACT_COLD
#if defined(__GNUC__) || defined(__clang__)
#define FASTACT_COLD __attribute__((noinline, cold))
#else
#define FASTACT_COLD
#endif
#endif

// A branch a hot loop almost never takes (exp's range check): its target is placed apart, so that the
// common path falls through.
#ifndef FASTACT_UNLIKELY
#if defined(__GNUC__) || defined(__clang__)
#define FASTACT_UNLIKELY(c) __builtin_expect(!!(c), 0)
#else
#define FASTACT_UNLIKELY(c) (c)
#endif
#endif

// A hint to fetch the cache line holding p (no fault, whatever p points at).
#ifndef FASTACT_PREFETCH
#if defined(__GNUC__) || defined(__clang__)
#define FASTACT_PREFETCH(p) __builtin_prefetch(p)
#else
#define FASTACT_PREFETCH(p) ((void)0)
#endif
#endif

namespace fastact {
namespace FASTACT_NS {

template <class T>
struct MathConsts;

template <>
struct MathConsts<float> {
  // exp's argument is clamped to [exp_lo, exp_hi]: below, the result rounds to 0; above, to inf.
  static constexpr float exp_lo = -104.0f, exp_hi = 89.0f;
  static constexpr float log2e = 0x1.715476p+0f;
  static constexpr float ln2_hi = coeff::kLn2HiF32, ln2_lo = coeff::kLn2LoF32;
  static constexpr float min_exp = -126.0f, max_exp = 127.0f;
  // |x| below this: e^x is normal, and n + 127 fits the exponent field.
  static constexpr float normal_arg_max = 87.0f;
  static constexpr float round_bias = 0x1.8p23f + 127.0f;  // rounds to an integer, adds the bias
  static constexpr float split = 4097.0f;  // Veltkamp splitter 2^12 + 1
  // tanh's |x| is capped where tanh already rounds to 1, so e^2|x| - 1 stays normal and finite.
  static constexpr float tanh_cap = 10.0f;
  static constexpr const float* exp_poly = coeff::kExpF32;
  static constexpr std::size_t exp_degree = sizeof(coeff::kExpF32) / sizeof(float);
};

template <>
struct MathConsts<double> {
  static constexpr double exp_lo = -746.0, exp_hi = 710.0;
  static constexpr double log2e = 0x1.71547652b82fep+0;
  static constexpr double ln2_hi = coeff::kLn2HiF64, ln2_lo = coeff::kLn2LoF64;
  static constexpr double min_exp = -1022.0, max_exp = 1023.0;
  static constexpr double normal_arg_max = 708.0;
  static constexpr double round_bias = 0x1.8p52 + 1023.0;
  static constexpr double split = 134217729.0;  // 2^27 + 1
  static constexpr double tanh_cap = 20.0;
  static constexpr const double* exp_poly = coeff::kExpF64;
  static constexpr std::size_t exp_degree = sizeof(coeff::kExpF64) / sizeof(double);
};

template <class V>
inline V splat(typename V::Elem x) {
  return V::splat(x);
}

// c[0] + c[1] x + ... + c[n-1] x^(n-1) by Estrin's scheme: as many operations as Horner's rule, but a dependency
// chain of about log2(n) fmas instead of n. Long chains, not operation counts, limit these kernels:
// the out-of-order window fills with waiting work. pw[k] holds x^(2^k).
template <std::size_t n, class V>
inline V estrin(const V* pw, const typename V::Elem* c) {
  if constexpr (n == 1) {
    return V::splat(c[0]);
  } else {
    constexpr std::size_t log2_half = n > 8 ? 3 : n > 4 ? 2 : n > 2 ? 1 : 0;
    constexpr std::size_t half = std::size_t{1} << log2_half;
    static_assert(n <= 16, "estrin: powers up to x^8 are formed");
    return mul_add(pw[log2_half], estrin<n - half>(pw, c + half), estrin<half>(pw, c));
  }
}

template <std::size_t n, class V>
inline V estrin(V x, V x2, const typename V::Elem* c) {
  const V x4 = x2 * x2;
  const V pw[4] = {x, x2, x4, x4 * x4};
  return estrin<n>(pw, c);
}

// The same polynomial by Horner's rule: one operation fewer than Estrin's scheme (no x^4), for short
// polynomials whose chain the out-of-order window still covers.
template <std::size_t n, class V>
inline V horner(V x, const typename V::Elem* c) {
  V p = V::splat(c[n - 1]);
  for (std::size_t k = n - 1; k-- > 0;) p = mul_add(p, x, V::splat(c[k]));
  return p;
}

// a - q * d, exact (to well below an ulp of the result) on every target: a hardware FMA where
// there is one, Dekker's product otherwise. The callers have a ~ q * d, so a - p is exact.
template <class V>
inline V residual(V a, V q, V d) {
  if constexpr (V::has_fma) {
    return neg_mul_add(q, d, a);
  } else {
    using C = MathConsts<typename V::Elem>;
    const V c = splat<V>(C::split);
    const V tq = c * q, td = c * d;
    const V qh = tq - (tq - q), dh = td - (td - d);
    const V ql = q - qh, dl = d - dh;
    const V p = q * d;
    const V err = ((qh * dh - p) + qh * dl + ql * dh) + ql * dl;
    return (a - p) - err;
  }
}

// Q of e^r - 1 = r + r^2 Q(r), for the reduced argument |r| <= ln2/2 (r2 = r^2). By Horner's rule
// where it is short (float: exp's multiply-add count bounds the softmax exp loop, 11 -> 10 per
// vector), else by Estrin's scheme, whose chain stays short.
template <class V>
inline FASTACT_INLINE V expm1_reduced_q(V r, V r2) {
  using C = MathConsts<typename V::Elem>;
  if constexpr (C::exp_degree <= 5) {
    return horner<C::exp_degree>(r, C::exp_poly);
  } else {
    return estrin<C::exp_degree>(r, r2, C::exp_poly);
  }
}

// e^r - 1 for the reduced argument.
template <class V>
inline FASTACT_INLINE V expm1_reduced(V r) {
  const V r2 = r * r;
  return mul_add(r2, expm1_reduced_q(r, r2), r);
}

// e^x = scale e^r, for x whose e^x is a normal number (|x| <= normal_arg_max, or NaN): the same
// reduction as exp_two_step with a cheaper scaling. n is rounded with the magic-number trick, which
// leaves n + bias in the low mantissa bits of t, and scale = 2^n is those bits shifted into the
// exponent field (exact and normal here).
template <class V>
inline FASTACT_INLINE void exp_reduce(V x, V& n, V& scale, V& r) {
  using C = MathConsts<typename V::Elem>;
  const V t = mul_add(x, splat<V>(C::log2e), splat<V>(C::round_bias));
  n = t - splat<V>(C::round_bias);
  r = mul_add(n, splat<V>(-C::ln2_hi), x);  // exact: n * ln2_hi has spare bits, Sterbenz
  r = mul_add(n, splat<V>(-C::ln2_lo), r);
  scale = pow2_from_low_bits(t);
}
template <class V>
inline FASTACT_INLINE void exp_reduce(V x, V& scale, V& r) {
  V n;
  exp_reduce(x, n, scale, r);
}

// exp_rr2_p4_twostep: e^x by two-constant Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2,
// a minimax polynomial 1 + r + r^2 Q(r), and a two-step scaling by 2^n so that results that
// overflow or are subnormal round once, correctly. About 1 ulp. NaN propagates. n and r are
// exp_reduce's (x log2e rounded once, by the multiply-add, not first to float): a lane whose result is
// normal then gets exp_normal's bits, 2^n (1 + m) with 2^n exact either way, so a vector's lanes do
// not depend on each other (a softmax row of a short-row block took this path when another row of
// the block had a subnormal term, and where the rounded product rounded to another n, its bits moved).
template <class V>
inline V exp_two_step(V x) {
  using C = MathConsts<typename V::Elem>;
  // Operand order matters: min/max return the second operand for NaN, so NaN passes.
  x = min(splat<V>(C::exp_hi), max(splat<V>(C::exp_lo), x));
  V n, scale, r;  // (scale, 2^n as exponent bits, is wrong past the normal range: unused here)
  exp_reduce(x, n, scale, r);
  const V p = expm1_reduced(r) + splat<V>(1);
  const V a = min(max(n, splat<V>(C::min_exp)), splat<V>(C::max_exp));
  return (p * pow2i(a)) * pow2i(n - a);
}

// e^x where every lane's result is normal: 2^n (1 + m) rounded once, as 2^n + 2^n m.
template <class V>
inline FASTACT_INLINE V exp_normal(V x) {
  V scale, r;
  exp_reduce(x, scale, r);
  return mul_add(expm1_reduced(r), scale, scale);
}

// e^x - 1 for 0 <= x <= normal_arg_max, as (2^n - 1 + 2^n r) + 2^n r^2 Q(r): r is not first rounded
// into e^r - 1, which for n = 1 and r < 0 (e^x - 1 = 1 + 2(e^r - 1), a cancellation) would lose
// most of an ulp. 2^n - 1 is exact while n < the mantissa width; beyond, its rounding is far below
// the result's ulp.
template <class V>
inline FASTACT_INLINE V expm1_nonnegative(V x) {
  V scale, r;
  exp_reduce(x, scale, r);
  const V r2 = r * r;
  const V head = mul_add(scale, r, scale - splat<V>(1));
  return mul_add(scale, r2 * expm1_reduced_q(r, r2), head);
}

// e^x for a vector with a lane outside exp_normal's range. Lanes below exp_lo, whose e^x rounds to 0
// (-inf among them: softmax pads, masked logits), are 0 and their exp_normal is discarded, so only a
// lane whose result is subnormal or overflows takes exp_two_step: its subnormal intermediates cost
// microcode assists (x86) of about 100 cycles a vector; the -inf padding of every short softmax row
// took that path. NaN propagates (lt is false for NaN).
template <class V>
inline FASTACT_INLINE V exp_outside_normal(V x) {
  using C = MathConsts<typename V::Elem>;
  const auto zero = lt(x, splat<V>(C::exp_lo));
  const V live = select(zero, splat<V>(0), x);
  if (any(gt(abs(live), splat<V>(C::normal_arg_max)))) return exp_two_step(x);
  return select(zero, splat<V>(0), exp_normal(live));
}

// exp's table form, for float vectors of 16 lanes with a lane permute and a scaling by 2^k
// (V::has_exp_table: AVX-512). x = (16k + j) ln2/16 + r with |r| <= ln2/32, and
// e^x = 2^k T[j] (1 + r + r^2 Q(r)): T[j] = 2^(j/16) is one permute of a 16-entry table, Q has degree
// 1 (r is 16 times narrower than exp_normal's), and vscalefps applies 2^k, rounding a subnormal
// result once and overflowing to inf, so no lane needs a range check or another path. 7 multiply-adds
// and a vscalefps a vector, where exp_normal takes 10, a shift and the range check's compare and
// branch: softmax's exp loop on rows of 1024 floats, 0.50 -> 0.38 TSC cycles per element. The table's
// rounding (2^-24.3) makes it about 1.06 ulp, 0.06 more than exp_normal, which softmax's 4-ulp bound
// affords; kLowParts adds what the rounding lost (a second permute and an add: 0.43 cycles), for
// about 0.55 ulp, which sigmoid's quotient needs. x is clamped to [exp_lo, exp_hi] first (-inf gives
// 0; kNonPositive: x <= 0 needs no upper clamp); NaN propagates (max and min return their second
// operand for NaN).
template <class V, bool kLowParts, bool kNonPositive>
inline FASTACT_INLINE V exp_table16(V x) {
  static_assert(std::is_same_v<typename V::Elem, float> && V::N == 16, "a table of 16 floats");
  using C = MathConsts<float>;
  // Magic-number rounding to a multiple of 1/16: t's ulp is 1/16, so t = bias + n/16 for
  // n = round(16 x / ln2), and the low four bits of t's representation are n mod 16 (the bias's are 0).
  // n/16 is then an exact subtraction (an add, which leaves the multiply-adds' pipes alone on Zen 4).
  constexpr float bias = 0x1.8p19f;
  x = max(splat<V>(C::exp_lo), x);
  if constexpr (!kNonPositive) x = min(splat<V>(C::exp_hi), x);
  const V t = mul_add(x, splat<V>(C::log2e), splat<V>(bias));
  const V n16 = t - splat<V>(bias);
  V r = mul_add(n16, splat<V>(-coeff::kLn2HiTable16F32), x);            // exact (Cody-Waite)
  r = mul_add(n16, splat<V>(-coeff::kLn2LoTable16F32), r);
  const V table = V::load(coeff::kExp2Table16F32);
  const V two_j16 = lookup16(table, t);  // 2^(j/16), j = n mod 16
  const V q = mul_add(splat<V>(coeff::kExpTable16F32[1]), r, splat<V>(coeff::kExpTable16F32[0]));
  const V one_rq = mul_add(q, r, splat<V>(1));
  // 2^(j/16) (1 + r (1 + r Q)), rounded once, then times 2^floor(n/16) = 2^k.
  if constexpr (kLowParts) {
    const V low = lookup16(V::load(coeff::kExp2Table16LoF32), t);
    return scale_by_pow2(two_j16 + mul_add(two_j16 * r, one_rq, low), n16);
  } else {
    return scale_by_pow2(mul_add(two_j16 * r, one_rq, two_j16), n16);
  }
}

// e^x for any x: exp_normal, except for vectors with a lane outside its range (rare: underflow,
// overflow), which take exp_outside_normal; or the table form where the target has it. NaN propagates.
// kNonPositive: the caller guarantees x <= 0 (or NaN), which saves the upper range check.
// kCloser: the table form with its low parts (see exp_table16).
template <class V, bool kNonPositive = false, bool kCloser = false>
inline FASTACT_INLINE V exp(V x) {
  using C = MathConsts<typename V::Elem>;
  if constexpr (V::has_exp_table) return exp_table16<V, kCloser, kNonPositive>(x);
  const auto outside = kNonPositive ? lt(x, splat<V>(-C::normal_arg_max)) : gt(abs(x), splat<V>(C::normal_arg_max));
  if (FASTACT_UNLIKELY(any(outside))) return exp_outside_normal(x);
  return exp_normal(x);
}

// e^x for x <= 0 (or NaN): exp<V, true>, or with kInRange, for x the caller knows to be at least
// -normal_arg_max in every lane (softmax's LaneRange), exp_normal without the per-vector range check
// (the table form has none to drop).
template <class V, bool kInRange>
inline FASTACT_INLINE V exp_nonpositive(V x) {
  if constexpr (kInRange && !V::has_exp_table) {
    return exp_normal(x);
  } else {
    return exp<V, true>(x);
  }
}

// e^v s for one lane whose e^v is not a normal number (|v| > normal_arg_max), while the product may
// be: the two are formed in double as 2^(k + e) (e^r m), from v = k ln2 + r and s = m 2^e, and
// rounded to T once (by ldexp for double, by the conversion for float). A cold path, taken per lane,
// so it is written in scalar code on every target. Infinite or NaN v or s keep e^v s's IEEE meaning.
template <class T>
inline T exp_times_outside_normal(T v, T s) {
  if (std::isnan(v) || std::isinf(v) || !std::isfinite(s)) {
    return std::isinf(s) && std::isfinite(v) ? s : static_cast<T>(std::exp(v) * s);
  }
  // Beyond +-1500, e^v s is 0 or inf for every finite s of either type.
  const double x = std::fmin(1500.0, std::fmax(-1500.0, static_cast<double>(v)));
  int e = 0;
  const double m = std::frexp(static_cast<double>(s), &e);
  const double k = std::nearbyint(x * 0x1.71547652b82fep+0);
  // x - k ln2 with ln2 as a double and its remainder: the fused step leaves r within an ulp of itself.
  double r = std::fma(-k, 0x1.62e42fefa39efp-1, x);
  r = std::fma(-k, 0x1.abc9e3b39803fp-56, r);
  return static_cast<T>(std::ldexp(std::exp(r) * m, static_cast<int>(k) + e));
}

// minus_exp_times for a vector with a lane outside exp_normal's range: those lanes of `fast` redone
// one by one. Kept out of line: inlined, its stack arrays cost the hot loops their registers
// (log_softmax_backward rows of 1024 floats 30% slower).
template <class V>
FASTACT_COLD V minus_exp_times_outside_normal(V a, V v, V s, V fast) {
  using C = MathConsts<typename V::Elem>;
  using T = typename V::Elem;
  alignas(64) T as[V::N], vs[V::N], ss[V::N], lanes[V::N];
  store(as, a);
  store(vs, v);
  store(ss, s);
  store(lanes, fast);
  for (std::size_t l = 0; l < V::N; ++l) {
    if (std::fabs(vs[l]) > C::normal_arg_max) lanes[l] = as[l] - exp_times_outside_normal(vs[l], ss[l]);
  }
  return V::load(lanes);
}

// a - e^v s, the product not rounded on its own where the target fuses a multiply-add, and never
// through a subnormal, 0 or inf e^v while e^v s is a normal number: log_softmax's backward,
// g - exp(log_y) sum(g), where rounding a subnormal e^v first and then scaling it by a large sum lost
// every significant bit (g = [0, 54], log_y = [-103, 0]: -7.6e-44 for -1.0e-43). Lanes inside
// exp_normal's range take the fast form; any other lane is redone alone, so a lane's result never
// depends on its neighbours.
template <class V>
inline FASTACT_INLINE V minus_exp_times(V a, V v, V s) {
  using C = MathConsts<typename V::Elem>;
  const auto outside = gt(abs(v), splat<V>(C::normal_arg_max));
  V e;  // exp's fast form; its lanes outside the range are replaced below
  if constexpr (V::has_exp_table) {
    e = exp_table16<V, false, false>(v);
  } else {
    e = exp_normal(v);
  }
  const V fast = neg_mul_add(e, s, a);
  return any(outside) ? minus_exp_times_outside_normal(a, v, s, fast) : fast;
}

// log(x) for double lanes holding positive normal x (softmax sums, which are >= 1), within 2^-45 of
// log x + 2^-50 |log x|: for results rounded to float (log_softmax's log of the sum), where a call to
// std::log per slice cost more than the rest of a slice of 16 floats. x = m 2^e, m in [sqrt(1/2),
// sqrt(2)), log m = 2 atanh(s) for s = (m - 1)/(m + 1), |s| < 0.172, by its series in s^2 (the terms
// left out are below 2^-45). NaN propagates.
template <class V64>
inline V64 log_for_float(V64 x) {
  static constexpr double kAtanhSeries[] = {1.0,       1.0 / 3,  1.0 / 5,  1.0 / 7,
                                            1.0 / 9,   1.0 / 11, 1.0 / 13, 1.0 / 15};
  V64 e = exponent_of(x), m = significand_of(x);
  const auto high = gt(m, splat<V64>(0x1.6a09e667f3bcdp+0));  // sqrt(2)
  m = select(high, m * splat<V64>(0.5), m);
  e = select(high, e + splat<V64>(1.0), e);
  const V64 f = m - splat<V64>(1.0);
  const V64 s = f / (f + splat<V64>(2.0));
  const V64 series = horner<8>(s * s, kAtanhSeries);
  const V64 r = mul_add(e, splat<V64>(0x1.62e42fefa39efp-1), (s + s) * series);  // e ln2 + log m
  return select(is_nan(x), x, r);
}

// sigmoid and tanh come in two stages, the exponential (SigmoidExp, TanhExpm1) and the rest
// (sigmoid_finish, tanh_finish), so that the kernels can run them as two short loops over a block
// held in L1: one long chain per vector stalls the out-of-order window (see elementwise-inl.h).
// A first stage has exact(x), right for any vector, and fast(x) for a block of vectors, whose
// results equal exact's whenever needs_exact() is false afterwards (else the block is redone).

// sigmoid_rr2_p4_divc: e = e^-|x|; then 1/(1+e) for x >= 0 and e/(1+e) for x < 0, with the
// rounding of the quotient corrected (a plain division reaches 2.26 ulp; see sigmoid_finish).
template <class V>
struct SigmoidExp {
  static V exact(V x) { return exp<V, true, true>(neg_abs(x)); }
  // exp's fast path for every vector, with the smallest argument kept, so that a whole block is
  // checked once rather than each vector compared and branched on. min(z, lo) keeps lo when z is
  // NaN (NaN passes through the fast path anyway).
  // exp's table form has no range check to defer.
  V fast(V x) {
    if constexpr (V::has_exp_table) return exact(x);
    const V z = neg_abs(x);
    lo = min(z, lo);
    return exp_normal(z);
  }
  bool needs_exact() const {
    if constexpr (V::has_exp_table) return false;
    return any(lt(lo, splat<V>(-MathConsts<typename V::Elem>::normal_arg_max)));
  }
  V lo = splat<V>(0);
};

// q = num * (1/d) is within about an ulp of num / (1 + e); its residual num - q (1 + e) is
// computed without forming 1 + e: num - q is exact (Sterbenz: q lies in [num/2, num] as
// 0 <= e <= 1), and the fused num - q - q e rounds once, a tiny correction. Then q + res / d,
// with 1/d standing in for 1/(1 + e): about 0.5 ulp + the error of e.
template <class V>
inline V sigmoid_finish(V x, V e) {
  const V one = splat<V>(1);
  const V inv = one / (one + e);
  const V num = select(lt(x, splat<V>(0)), e, one);
  const V q = num * inv;
  return mul_add(residual(num - q, q, e), inv, q);
}

// tanh_expm1_div: E = e^{2|x|} - 1, then tanh|x| = E / (E + 2), with |x| capped where tanh rounds
// to 1 and the sign restored last (tanh(-0) = -0). One exponential and no second polynomial for
// small |x| (E / (E + 2) does not cancel there: E ~ 2|x|): 15 multiply-adds per vector where the
// earlier polynomial-or-1 - 2/(1 + e^2|x|) form took 20 (float 1.47 -> 1.37, double 4.5 -> 3.5 TSC
// cycles per element). The rounding of E + 2 and of the quotient are corrected as in sigmoid_finish.
// Every finite float32: at most 1.79 ULP (avx2, sse2, scalar); float64, 40M samples: 1.84 ULP.
// Subnormal x give x exactly (E = 2x, E + 2 = 2).
template <class V>
struct TanhExpm1 {
  static V exact(V x) {
    using C = MathConsts<typename V::Elem>;
    const V z = min(splat<V>(C::tanh_cap), abs(x));
    return expm1_nonnegative(z + z);
  }
  static V fast(V x) { return exact(x); }
  static constexpr bool needs_exact() { return false; }
};

template <class V>
inline V tanh_finish(V x, V em1) {
  const V two = splat<V>(2);
  const V d = em1 + two;
  // d's rounding error, exactly: d - 2 and em1 - (d - 2) are exact while d < 2^mantissa bits (above,
  // tanh rounds to 1 whatever the correction).
  const V d_err = em1 - (d - two);
  const V inv = splat<V>(1) / d;
  const V q = em1 * inv;
  // em1 - q (d + d_err), the true denominator's residual: exact but for q * d_err, itself tiny.
  const V res = residual(em1, q, d) - q * d_err;
  return copysign(mul_add(res, inv, q), x);
}

}  // namespace FASTACT_NS
}  // namespace fastact
