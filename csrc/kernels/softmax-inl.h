// Softmax, log_softmax and their gradients over slices, written once over a vector type V.
// No include guard: included once per target inside namespace FASTACT_NS (see math-inl.h), after
// elementwise-inl.h, whose map_unary writes the long slices' output.
//
// Every slice is reduced by one call in a fixed order, so results do not depend on how the
// caller splits the work between threads. Sums are accumulated in double (float input too),
// so their error does not grow with the slice length; float terms are first added in pairs in
// float (see softmax_row_exp_sum), which adds at most half an ulp of the sum.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <type_traits>
#include <utility>
#include <vector>

#include "online_softmax.h"

namespace fastact {
namespace FASTACT_NS {

// (a + b) - s exactly, for s = a + b rounded (Knuth's TwoSum): for double lanes and plain doubles.
template <class D>
inline D two_sum_error(D a, D b, D s) {
  const D b_part = s - a;
  return (a - (s - b_part)) + (b - b_part);
}

// A double sum accumulated by TwoSum, with the compensation added once at the end.
struct CompensatedSum {
  double sum = 0, err = 0;
  // Adds v, and err_v known to be lost from it.
  void add(double v, double err_v) {
    const double s = sum + v;
    err += two_sum_error(sum, v, s) + err_v;
    sum = s;
  }
  // An infinite term makes err NaN (inf - inf); the sum itself is then the answer.
  double value() const { return std::isnan(err) ? sum : sum + err; }
};

// Per-lane sums of V vectors, accumulated in double: float lanes are widened (exact) and
// added in double; double lanes are added with a compensation term (TwoSum, and the exact
// error of each product), so a long double-precision slice sums as if in twice the precision.
template <class V>
struct WideSum {
  static constexpr bool kFloat = std::is_same_v<typename V::Elem, float>;
  // Lanes written by store_lanes(): enough for both halves of a widened float vector.
  static constexpr std::size_t kLanes = (V::N > 2 * F64::N) ? V::N : 2 * F64::N;
  // float: sums of the low and high halves; double: the sum and its compensation.
  F64 lo = F64::splat(0.0), hi = F64::splat(0.0);

  void add(V v) {
    if constexpr (kFloat) {
      lo = lo + widen_lo(v);
      hi = hi + widen_hi(v);
    } else {
      add_compensated(v, F64::splat(0.0));
    }
  }
  // a + b: float lanes are added in float first (see softmax_row_exp_sum), double lanes one by one.
  void add_pair(V a, V b) {
    if constexpr (kFloat) {
      add(a + b);
    } else {
      add(a);
      add(b);
    }
  }
  void add_product(V a, V b) {
    if constexpr (kFloat) {
      lo = mul_add(widen_lo(a), widen_lo(b), lo);
      hi = mul_add(widen_hi(a), widen_hi(b), hi);
    } else {
      const V p = a * b;
      add_compensated(p, F64::splat(0.0) - residual(p, a, b));  // a * b - p, exactly
    }
  }
  // a1 * b1 + a2 * b2: for float lanes one fused multiply-add in float (as add_pair), double lanes one by one.
  void add_product_pair(V a1, V b1, V a2, V b2) {
    if constexpr (kFloat) {
      add(mul_add(a1, b1, a2 * b2));
    } else {
      add_product(a1, b1);
      add_product(a2, b2);
    }
  }
  // The pairs of one vector's halves (lane k with lane k + N/2), as add_pair: a row of exactly N
  // elements pairs these (softmax_backward_sum), with no tails. Float: the pair sums are the low half
  // of v + swap_halves(v); the high half would repeat them.
  void add_halves(V v) {
    if constexpr (kFloat) {
      lo = lo + halves(v);
    } else {
      add(v);
    }
  }
  // The same for products, as add_product_pair: a_k b_k + a_(k+N/2) b_(k+N/2), the second product rounded.
  void add_product_halves(V a, V b) {
    if constexpr (kFloat) {
      lo = lo + product_halves(a, b);
    } else {
      add_product(a, b);
    }
  }
  // Float: the pair sums that add_halves and add_product_halves add, in double lanes.
  static F64 halves(V v) { return widen_lo(v + swap_halves(v)); }
  static F64 product_halves(V a, V b) { return widen_lo(mul_add(a, b, swap_halves(a * b))); }
  // Adds other's lanes into these (in double: its sum by TwoSum, its compensation to ours).
  void merge(const WideSum& other) {
    if constexpr (kFloat) {
      lo = lo + other.lo;
      hi = hi + other.hi;
    } else {
      add_compensated(other.lo, other.hi);
    }
  }
  // Multiplies each lane's sum by e^(old_max - new_max), computed in double: the online pass's
  // rescale when a lane's running max rises, with no float rounding added. Lanes whose max did not
  // rise keep their sum (for a max still at -inf, old - new would be NaN). Float lanes only: the
  // two-pass form that calls it is float32-only (see softmax_row).
  void rescale(V old_max, V new_max) {
    static_assert(kFloat, "the online rescale is for float lanes");
    const auto factor = [](F64 old_m, F64 new_m) {
      return select(lt(old_m, new_m), exp<F64, true>(old_m - new_m), F64::splat(1.0));
    };
    lo = lo * factor(widen_lo(old_max), widen_lo(new_max));
    hi = hi * factor(widen_hi(old_max), widen_hi(new_max));
  }
  // The sum of all lanes. double: the lanes' sums and compensations are added by TwoSum into one
  // sum and one compensation, rounded once at the end. A plain reduction would add a rounding per
  // lane pair: over 8 lanes (AVX-512) that lifted float64 softmax to 4.14 ULP on rows of 1000.
  double total() const {
    if constexpr (kFloat) {
      return reduce_add(sum());
    } else {
      double sums[F64::N], errs[F64::N];
      store(sums, lo);
      store(errs, hi);
      CompensatedSum acc;
      for (std::size_t k = 0; k < F64::N; ++k) acc.add(sums[k], errs[k]);
      return acc.value();
    }
  }
  // Lane k's sum and its compensation (0 for float lanes), for k < V::N: for callers that add
  // lanes of several vectors into one slice's sum (softmax_narrow_cols).
  void store_lanes(double* sums, double* errs) const {
    if constexpr (kFloat) {
      store_lanes(sums);
      std::fill(errs, errs + V::N, 0.0);
    } else {
      store(sums, lo);
      store(errs, hi);
    }
  }
  // The F64::N lanes that total() reduces (float: reduce_add of these), for callers that reduce a
  // batch of rows at once (row_totals).
  void store_sum(double* out) const { store(out, sum()); }
  // The same lanes in a register.
  F64 lane_sums() const { return sum(); }
  // out[k] = the sum of lane k, for k < V::N.
  void store_lanes(double* out) const {
    if constexpr (kFloat) {
      store(out, lo);
      store(out + F64::N, hi);
    } else {
      store(out, sum());
    }
  }

 private:
  // The lanes' sums. double: the sum plus its compensation, except where the compensation is NaN: once a
  // lane's sum is infinite (an infinite input, or an overflow) TwoSum's error term is inf - inf, and the
  // infinite sum itself is the answer (as in the float path and the formula).
  F64 sum() const {
    if constexpr (kFloat) {
      return lo + hi;
    } else {
      return select(is_nan(hi), lo, lo + hi);
    }
  }

  // lo + v by TwoSum; its rounding error (and `err`, known to be lost from v) go to hi.
  void add_compensated(F64 v, F64 err) {
    const F64 s = lo + v;
    hi = hi + (two_sum_error(lo, v, s) + err);
    lo = s;
  }
};

template <class V>
using Elem = typename V::Elem;

// The output of a NaN slice.
template <class T>
inline void fill_nan(T* y, std::size_t n) {
  std::fill(y, y + n, std::numeric_limits<T>::quiet_NaN());
}

// e / sum: float multiplies by 1/sum computed in double and rounded once (the product's
// rounding is then the only other one); double divides, since its reciprocal would add a
// rounding of the same size as the result's.
template <class T>
inline T normalizer(double sum) {
  if constexpr (std::is_same_v<T, float>) {
    return static_cast<float>(1.0 / sum);
  } else {
    return sum;
  }
}
template <class V>
inline V normalize(V e, V scale) {
  if constexpr (std::is_same_v<typename V::Elem, float>) {
    return e * scale;
  } else {
    return e / scale;
  }
}

// ---- one contiguous slice ------------------------------------------------------------------

// Element i of a slice of length len is summed paired with element i + len/2 (the last one, for
// odd len, alone): float pairs are added in float first, which halves the widening work, with an
// error of at most half an ulp of the sum, independent of the slice length. The row and column
// kernels pair the same elements, so layouts give the same bits wherever the double sums of the
// pairs are exact (roughly: logits within 18 of the slice's max, whose e span fewer than 26 bits);
// beyond, the layouts add those doubles in different orders, and the sums may differ by a rounding.
//
// e = exp(x - vm) stored (for softmax) and summed. Short slices: one loop with two independent exp
// chains per step (elements k and k + half). Long slices: e is stored first, then summed in a
// second, cheap loop over y (in L1 or L2): the exp chain alone lets the out-of-order window overlap
// more vectors (rows of 1024 floats: 1.12 TSC cycles per element, 1.30 with the sum in the exp
// loop). log_softmax borrows y for this unless y is x, which its last pass still reads; in place,
// the one loop adds the same pairs in the same order, so the results are the same. Tails (padded
// with -inf, whose e is 0) go last. (Slices shorter than 3N elements go to softmax_short_rows.)
//
// beside(k, half) runs in each step of the long slices' exp loop, which is bound by multiply-adds:
// other rows' loads, maxima and stores fit beside it (softmax_long_rows).
template <class V, bool kLog, bool kInRange, class Beside>
inline FASTACT_INLINE WideSum<V> softmax_row_exp_sum_with(const Elem<V>* x, Elem<V>* y, std::size_t len, V vm,
                                                          Beside beside) {
  constexpr std::size_t N = V::N;
  constexpr Elem<V> kInf = std::numeric_limits<Elem<V>>::infinity();
  WideSum<V> sum;
  const std::size_t half = len / 2;
  std::size_t k = 0;
  if (len >= 16 * N && (!kLog || x != y)) {
    for (; k + N <= half; k += N) {
      beside(k, half);
      store(y + k, exp_nonpositive<V, kInRange>(V::load(x + k) - vm));
      store(y + k + half, exp_nonpositive<V, kInRange>(V::load(x + k + half) - vm));
    }
    for (std::size_t j = 0; j < k; j += N) sum.add_pair(V::load(y + j), V::load(y + j + half));
  } else {
    for (; k + N <= half; k += N) {
      const V e1 = exp_nonpositive<V, kInRange>(V::load(x + k) - vm);
      const V e2 = exp_nonpositive<V, kInRange>(V::load(x + k + half) - vm);
      if constexpr (!kLog) store(y + k, e1), store(y + k + half, e2);
      sum.add_pair(e1, e2);
    }
  }
  if (k < half) {
    const std::size_t n = half - k;
    const V e1 = exp<V, true>(load_tail<V>(x + k, n, -kInf) - vm);
    const V e2 = exp<V, true>(load_tail<V>(x + k + half, n, -kInf) - vm);
    if constexpr (!kLog) store_tail(y + k, n, e1), store_tail(y + k + half, n, e2);
    sum.add_pair(e1, e2);
  }
  if (len % 2 != 0) {
    const V e = exp<V, true>(load_tail<V>(x + len - 1, 1, -kInf) - vm);
    if constexpr (!kLog) store_tail(y + len - 1, 1, e);
    sum.add(e);
  }
  return sum;
}

// Lane by lane, the maxima of a slice's elements (-inf for len 0) and, with kMin, their minima: when
// every x - max of the slice is within exp_normal's range, the exp loop drops exp's per-vector check
// (AVX2 float32 log_softmax rows of 128 and 256: 1.46 and 1.34 -> 1.30 and 1.15 TSC cycles per
// element; softmax level). Not for the table form, which has no check, nor in softmax_long_rows,
// whose max loop runs beside the exp loop: there the minima cost what the check did (the check alone
// dropped, softmax rows of 1024 1.09 -> 0.97; with the minima, 1.02). NaN is not looked for here: exp
// passes it to the sum, which marks the slice. (Operand order: x86 keeps the accumulator when the new
// value is NaN; NEON returns NaN, caught by the caller's isfinite.)
template <class V, bool kMin = !V::has_exp_table>
struct LaneRange {
  using T = Elem<V>;
  V hi = splat<V>(-std::numeric_limits<T>::infinity()), lo = splat<V>(std::numeric_limits<T>::infinity());

  FASTACT_INLINE void add(V v) {
    hi = max(v, hi);
    if constexpr (kMin) lo = min(v, lo);
  }
  FASTACT_INLINE void merge(const LaneRange& other) {
    hi = max(other.hi, hi);
    if constexpr (kMin) lo = min(other.lo, lo);
  }
  T max_value() const { return reduce_max(hi); }
  // Whether, lane by lane, every x - that lane's max is within the range (short-row blocks, whose
  // lanes are separate rows).
  bool each_lane_in_range() const {
    if constexpr (kMin) {
      return !any(lt(lo - hi, splat<V>(-MathConsts<T>::normal_arg_max)));
    } else {
      return false;
    }
  }
  // Whether x - m, rounded as the exp loop rounds it, is >= -normal_arg_max for every element (false
  // for a NaN minimum, and on targets that keep no minima).
  bool exp_in_range(T m) const {
    if constexpr (kMin) {
      const T least = -reduce_max(splat<V>(0) - lo);
      return least - m >= -MathConsts<T>::normal_arg_max;
    } else {
      return false;
    }
  }
};

template <class V, bool kMin = !V::has_exp_table>
inline FASTACT_INLINE LaneRange<V, kMin> lane_range(const Elem<V>* x, std::size_t len) {
  constexpr std::size_t N = V::N;
  LaneRange<V, kMin> r0, r1, r2, r3;
  std::size_t i = 0;
  for (; i + 4 * N <= len; i += 4 * N) {
    r0.add(V::load(x + i)), r1.add(V::load(x + i + N));
    r2.add(V::load(x + i + 2 * N)), r3.add(V::load(x + i + 3 * N));
  }
  for (; i + N <= len; i += N) r0.add(V::load(x + i));
  if (i < len) r0.add(load_tail<V>(x + i, len - i, x[i]));  // padded with an element of the slice
  r0.merge(r1), r2.merge(r3), r0.merge(r2);
  return r0;
}

template <class V, bool kLog, class Beside>
inline FASTACT_INLINE WideSum<V> softmax_row_exp_sum(const Elem<V>* x, Elem<V>* y, std::size_t len, V vm,
                                                     bool in_range, Beside beside) {
  // The whole vectors' exp without its range check where the caller found every x - max inside it
  // (LaneRange); the tails, padded with -inf, keep it.
  if (!V::has_exp_table && in_range) return softmax_row_exp_sum_with<V, kLog, true>(x, y, len, vm, beside);
  return softmax_row_exp_sum_with<V, kLog, false>(x, y, len, vm, beside);
}

// Three passes: max; e = exp(x - max) stored and summed; scale (or, for log_softmax,
// x - max - log(sum)). softmax_row_reduce does the first two: it sets m to the max and sum to the
// sum, or returns false for a NaN, +inf or all -inf slice (m not finite), whose output is NaN.
template <class V, bool kLog>
inline FASTACT_INLINE bool softmax_row_reduce(const Elem<V>* x, Elem<V>* y, std::size_t len, Elem<V>& m,
                                              WideSum<V>& sum) {
  const LaneRange<V> range = lane_range<V>(x, len);
  m = range.max_value();
  if (!std::isfinite(m)) return false;
  // The same elements of the next row (if any; a prefetch never faults), fetched while a long row's
  // exp loop is bound by arithmetic: the next row's max loop then reads L1, not L2 (rows of 1024
  // floats: 0.84 -> 0.78 TSC cycles per element; rows of 4096 and 100000 unchanged).
  const auto prefetch_next = [x, len](std::size_t k, std::size_t half) {
    FASTACT_PREFETCH(x + len + k);
    FASTACT_PREFETCH(x + len + k + half);
  };
  sum = softmax_row_exp_sum<V, kLog>(x, y, len, splat<V>(m), range.exp_in_range(m), prefetch_next);
  return true;
}

// The same, returning the sum's total (NaN for a NaN slice).
template <class V, bool kLog>
inline FASTACT_INLINE double softmax_row_total(const Elem<V>* x, Elem<V>* y, std::size_t len, Elem<V>& m) {
  WideSum<V> sum;
  return softmax_row_reduce<V, kLog>(x, y, len, m, sum) ? sum.total() : std::numeric_limits<double>::quiet_NaN();
}

// What the last pass applies to n slices, given their sums: log(sum) for log_softmax, else
// normalizer(sum). For float results both are computed in double vectors (log: log_for_float), so
// every layout and slice length gets the same bits; the log, a call of about 20 cycles each, made
// log_softmax 1.6x slower than softmax on rows of 16 floats and on 16-row slices along axis 0.
// The factors of float slices, from their sums in double lanes: log(sum), or 1/sum, still in double.
template <bool kLog>
inline FASTACT_INLINE F64 float_factors(F64 totals) {
  return kLog ? log_for_float(totals) : splat<F64>(1.0) / totals;
}

template <class T, bool kLog>
inline void softmax_factors(const double* totals, T* out, std::size_t n) {
  if constexpr (std::is_same_v<T, float>) {
    for (std::size_t i = 0; i < n; i += F64::N) {
      const std::size_t count = std::min(F64::N, n - i);
      const F64 t = load_tail<F64>(totals + i, count, 1.0);
      double lanes[F64::N];
      store(lanes, float_factors<kLog>(t));
      for (std::size_t k = 0; k < count; ++k) out[i + k] = static_cast<float>(lanes[k]);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) out[i] = kLog ? std::log(totals[i]) : normalizer<T>(totals[i]);
  }
}

// The same for one slice.
template <class T, bool kLog>
inline T softmax_row_factor(double total) {
  T factor;
  softmax_factors<T, kLog>(&total, &factor, 1);
  return factor;
}

// The same for the V::N slices whose sums are the lanes of `sum`, in their lanes of a vector. Float
// factors are computed and narrowed in registers, as rounded_lanes does.
template <class V, bool kLog>
inline FASTACT_INLINE V lane_factors(const WideSum<V>& sum) {
  using T = Elem<V>;
  if constexpr (WideSum<V>::kFloat) {
    // A one-lane target's sum is all in lo.
    return narrow_pair(float_factors<kLog>(sum.lo), V::N > F64::N ? float_factors<kLog>(sum.hi) : sum.hi);
  } else {
    double totals[WideSum<V>::kLanes];
    alignas(64) T factors[V::N];
    sum.store_lanes(totals);
    softmax_factors<T, kLog>(totals, factors, V::N);
    return V::load(factors);
  }
}

// f(std::integral_constant<std::size_t, n>) if kMin <= n <= kMax, and whether it was called: a count
// known at run time made a compile-time constant, for kernels that unroll on it.
template <std::size_t kMin, class F, std::size_t... kOffsets>
inline FASTACT_INLINE bool with_constant(std::size_t n, F f, std::index_sequence<kOffsets...>) {
  return ((n == kMin + kOffsets && (f(std::integral_constant<std::size_t, kMin + kOffsets>{}), true)) || ...);
}

template <std::size_t kMin, std::size_t kMax, class F>
inline FASTACT_INLINE bool with_constant(std::size_t n, F f) {
  return with_constant<kMin>(n, f, std::make_index_sequence<kMax - kMin + 1>{});
}

// y[0, len) = value(at, n) for the vectors at = 0, N, 2N, ... (n = N but for a tail): the last pass of
// a row, elementwise, whose inputs may be y itself. A tail of a row longer than N is the whole vector
// ending at len, computed before the loop overwrites the lanes it shares with the last full vector:
// a masked store of the tail stalled the next row's first load (AMD; softmax rows of 100 floats
// 1.43-1.52 -> 1.31-1.37 TSC cycles per element).
template <class V, class Value>
inline FASTACT_INLINE void store_row(Elem<V>* y, std::size_t len, Value value) {
  constexpr std::size_t N = V::N;
  const bool whole_tail = len > N && len % N != 0;
  const V last = whole_tail ? value(len - N, N) : V{};
  std::size_t i = 0;
  for (; i + N <= len; i += N) store(y + i, value(i, N));
  if (whole_tail) {
    store(y + len - N, last);
  } else if (i < len) {
    store_tail(y + i, len - i, value(i, len - i));
  }
}

// The last pass, given the max, the sum and its factor; a NaN sum makes the slice NaN.
template <class V, bool kLog>
inline FASTACT_INLINE void softmax_row_apply(const Elem<V>* x, Elem<V>* y, std::size_t len, Elem<V> m, double total,
                                             Elem<V> factor) {
  if (std::isnan(total)) return fill_nan(y, len);
  const V vm = splat<V>(m), f = splat<V>(factor);
  if constexpr (kLog) {
    store_row<V>(y, len, [&](std::size_t at, std::size_t n) FASTACT_INLINE { return (load_tail<V>(x + at, n, 0) - vm) - f; });
  } else {
    store_row<V>(y, len, [&](std::size_t at, std::size_t n) FASTACT_INLINE { return normalize(load_tail<V>(y + at, n, 0), f); });
  }
}

// ---- one slice too long for the cache: two passes --------------------------------------------

// Past the cache, every pass over a slice streams it from memory, and the three passes above read x
// twice and y twice and write y twice. Here pass 1 reads x once, block by block: each lane keeps its
// running max and the sum of exp(x - that max) in double, rescaled (in double) when a block raises
// the max; the lanes are combined at the end. Pass 2 reads x again and writes y once: exp(x - max) /
// sum, computed a second time (compute is cheaper than the memory traffic it saves), or, for
// log_softmax, x - max - log(sum).
//
// Which slices take this form, and how pass 1's chunks are joined: online_softmax.h.
//
// Blocks of kOnlineBlock elements stay in L1 between their max loop and their exp loop.
constexpr std::size_t kOnlineBlock = 2048;

// Per lane: the max so far and the sum of exp(x - that max), rescaled when a block raises the max.
// float32 only (see softmax_row): the sum is in double, so the roundings of its rescale factors (one
// per raising block, even on a slice that rises throughout) stay far below a float ulp.
template <class V>
struct OnlineExpSum {
  using T = Elem<V>;
  static constexpr T kInf = std::numeric_limits<T>::infinity();
  V running_max = splat<V>(-kInf);
  WideSum<V> sum;

  // n elements, a multiple of N; element k paired with k + n/2 when n is a multiple of 2N. `ahead`
  // elements of the slice follow the block.
  void add_block(const T* x, std::size_t n, std::size_t ahead) {
    constexpr std::size_t N = V::N;
    V m0 = running_max, m1 = running_max;
    std::size_t i = 0;
    for (; i + 2 * N <= n; i += 2 * N) m0 = max(V::load(x + i), m0), m1 = max(V::load(x + i + N), m1);
    if (i < n) m0 = max(V::load(x + i), m0);
    const V new_max = max(m0, m1);
    if (any(gt(new_max, running_max))) sum.rescale(running_max, new_max);
    running_max = new_max;
    // A lane that has seen only -inf subtracts 0 (-inf - -inf would be NaN): its terms stay e^-inf = 0.
    const V shift = select(gt(running_max, splat<V>(-kInf)), running_max, splat<V>(0));
    // exp stored, then summed: two short loops overlap more vectors than one (see softmax_row_exp_sum).
    alignas(64) T e[kOnlineBlock];
    // The next block's lines are requested meanwhile: else its max loop waits on memory while this
    // exp loop leaves the memory idle (1.2x on slices of 16M floats).
    for (std::size_t k = 0; k < n; k += N) {
      if (k < ahead) FASTACT_PREFETCH(x + n + k);
      store(e + k, exp<V, true>(V::load(x + k) - shift));
    }
    if (n % (2 * N) == 0) {
      const std::size_t half = n / 2;
      for (std::size_t k = 0; k < half; k += N) sum.add_pair(V::load(e + k), V::load(e + k + half));
    } else {
      for (std::size_t k = 0; k < n; k += N) sum.add(V::load(e + k));
    }
  }

  // The max of the elements added and the sum of exp(x - max) over them (see OnlinePartial).
  OnlinePartial finish() const {
    constexpr std::size_t N = V::N;
    T lane_max[N];
    double lane_sum[WideSum<V>::kLanes];
    store(lane_max, running_max);
    sum.store_lanes(lane_sum);
    const T m = reduce_max(running_max);
    if (m == -kInf) return {m, 0.0};
    if (!std::isfinite(m)) return {m, std::numeric_limits<double>::quiet_NaN()};
    double total = 0;
    for (std::size_t l = 0; l < N; ++l) total += lane_sum[l] * std::exp(static_cast<double>(lane_max[l]) - m);
    return {m, total};
  }
};

// Pass 1 over one chunk of a slice (n elements).
template <class V>
OnlinePartial softmax_online_partial(const Elem<V>* x, std::size_t n) {
  using T = Elem<V>;
  constexpr std::size_t N = V::N;
  OnlineExpSum<V> acc;
  std::size_t i = 0;
  for (; i + kOnlineBlock <= n; i += kOnlineBlock) acc.add_block(x + i, kOnlineBlock, n - i - kOnlineBlock);
  const std::size_t rest = (n - i) / N * N;
  if (rest) acc.add_block(x + i, rest, 0);
  i += rest;
  if (i < n) {  // the last elements, padded with -inf (whose exp is 0)
    T pad[N];
    for (std::size_t k = 0; k < N; ++k) pad[k] = k < n - i ? x[i + k] : -std::numeric_limits<T>::infinity();
    acc.add_block(pad, N, 0);
  }
  return acc.finish();
}

// Pass 2 over any part of a slice, given the slice's max and sum (from join_online_partials):
// exp(x - m) / sum, or x - m - log(sum); all NaN for a NaN sum.
template <class V, bool kLog>
void softmax_online_apply(const Elem<V>* x, Elem<V>* y, std::size_t n, Elem<V> m, double total) {
  using T = Elem<V>;
  if (std::isnan(total)) return fill_nan(y, n);
  const V vm = splat<V>(m), f = splat<V>(softmax_row_factor<T, kLog>(total));
  if constexpr (kLog) {
    map_unary<V>(x, y, n, [vm, f](V v) { return (v - vm) - f; });
  } else {
    map_unary<V>(x, y, n, [vm, f](V v) { return normalize(exp(v - vm), f); });
  }
}

// The whole two-pass form on one thread; ops.cpp runs the same chunks on several.
template <class V, bool kLog>
void softmax_row_two_pass(const Elem<V>* x, Elem<V>* y, std::size_t len) {
  std::vector<OnlinePartial> parts;
  for (std::size_t i = 0; i < len; i += kOnlineChunk) {
    parts.push_back(softmax_online_partial<V>(x + i, std::min(kOnlineChunk, len - i)));
  }
  float m;
  const double total = join_online_partials(parts.data(), parts.size(), m);
  softmax_online_apply<V, kLog>(x, y, len, m, total);
}

// float64 slices keep three passes: their sum must be good to an ulp of a float64 result, and the two
// ways to run a max online both lose that on slices of 2M elements (against 4 ULP allowed): rescaling
// the sum whenever a block raises the max rounds it once per block (5 ULP on a rising slice); moving
// the max rarely makes terms round against a point other than the slice's max (4.1 ULP).
// Rows shorter than this many vectors go to softmax_short_rows. (AVX-512 float32 rows of 33, 40 and
// 47 there: 2.5, 2.4 and 2.4 -> 1.8, 1.6 and 1.5-1.8 TSC cycles per element; with one more vector,
// rows of 48 to 64, whose tails are short or none, lost: 1.6 -> 1.8 and 1.2 -> 1.5. AVX2, with its
// cheaper transpose and dearer horizontal sums, gains up to 8 vectors: rows of 24, 31, 36, 44 and 55
// 3.1, 3.9, 3.0, 2.6 and 2.8 -> 1.7 each, 48 1.5 -> 1.6; SSE2 rows of 12, 14, 20 and 31 13, 18, 9.6
// and 12 -> 4.5-4.9, 16 4.3 -> 4.5; 16 vectors lost on AVX2, 1.45 -> 1.75 on rows of 64.)
template <class V>
constexpr std::size_t kShortRowVectors = V::has_exp_table ? 3 : 8;

template <class V, bool kLog>
void softmax_short_rows(const Elem<V>* x, Elem<V>* y, std::size_t rows, std::size_t len);

template <class V, bool kLog>
void softmax_row(const Elem<V>* x, Elem<V>* y, std::size_t len) {
  if constexpr (V::N > 1) {
    if (len < kShortRowVectors<V> * V::N) return softmax_short_rows<V, kLog>(x, y, 1, len);
  }
  if constexpr (std::is_same_v<Elem<V>, float>) {
    if (len >= kOnlineMinLen) return softmax_row_two_pass<V, kLog>(x, y, len);
  }
  Elem<V> m;
  const double total = softmax_row_total<V, kLog>(x, y, len, m);
  softmax_row_apply<V, kLog>(x, y, len, m, total, softmax_row_factor<Elem<V>, kLog>(total));
}

// Rows of 16 vectors or more (float: short of the two-pass form; not log_softmax in place, whose exp
// loop stores nothing), one after another, with two other rows' passes run inside each row's exp loop (softmax_row_exp_sum's
// `beside`): the next row's max and the previous row's last pass. That loop is bound by multiply-adds,
// and the max loop (loads and maxima) and the last pass (a load, a multiply and a store a vector)
// mostly use other units; run apart, they took about a quarter of the row's time. (AVX-512 float32,
// TSC cycles per element, alternating runs: 256 x 1024 0.91 -> 0.85, 64 x 4096 1.01 -> 0.93,
// 3 x 100000 0.82-0.94 -> 0.76-0.86, 512 x 512 0.85-0.98 -> 0.82.) The elements outside that
// loop's vectors (the tails) and rows whose max is not finite take the passes as softmax_row does.
// Same arithmetic per element as softmax_row, so the same bits.
template <class V, bool kLog>
void softmax_long_rows(const Elem<V>* x, Elem<V>* y, std::size_t rows, std::size_t len) {
  using T = Elem<V>;
  constexpr std::size_t N = V::N;
  // The exp loop's k runs over [0, paired) (with k + half); the other rows' passes beside it take
  // [2k, 2k + 2N), not k and k + half: with rows a multiple of 1024 floats, k and k + half of four rows
  // would fall in one set of L1 (4 KB apart), more lines than its 8 ways.
  const std::size_t half = len / 2, paired = half / N * N;
  // The previous row, its last pass still to do.
  const T* prev_x = nullptr;
  T* prev_y = nullptr;
  T prev_m = 0, prev_factor = 0;
  double prev_total = 0;
  auto apply_prev = [&](std::size_t from, std::size_t to) {
    softmax_row_apply<V, kLog>(prev_x + from, prev_y + from, to - from, prev_m, prev_total, prev_factor);
  };
  if (rows == 0) return;
  LaneRange<V, false> range = lane_range<V, false>(x, len);
  T m = range.max_value();
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * len;
    T* yr = y + r * len;
    const T* next = r + 1 < rows ? xr + len : xr;  // (the last row reads itself again)
    if (prev_x && std::isnan(prev_total)) apply_prev(0, len), prev_x = nullptr;
    LaneRange<V, false> next0, next1;
    double total = std::numeric_limits<double>::quiet_NaN();
    std::size_t done = 0;  // the other rows' elements [0, done) were done beside the exp loop
    if (std::isfinite(m)) {
      auto next_max = [&](std::size_t k, std::size_t) {
        next0.add(V::load(next + 2 * k)), next1.add(V::load(next + 2 * k + N));
      };
      if (prev_x) {
        const V pm = splat<V>(prev_m), pf = splat<V>(prev_factor);
        auto last_pass = [&](std::size_t at) {
          if constexpr (kLog) {
            store(prev_y + at, (V::load(prev_x + at) - pm) - pf);
          } else {
            store(prev_y + at, normalize(V::load(prev_y + at), pf));
          }
        };
        total = softmax_row_exp_sum<V, kLog>(xr, yr, len, splat<V>(m), false, [&](std::size_t k, std::size_t h) {
                  next_max(k, h);
                  last_pass(2 * k), last_pass(2 * k + N);
                }).total();
      } else {
        total = softmax_row_exp_sum<V, kLog>(xr, yr, len, splat<V>(m), false, next_max).total();
      }
      done = 2 * paired;
    }
    if (prev_x) apply_prev(done, len);
    next0.merge(next1);
    if (done < len) next0.merge(lane_range<V, false>(next + done, len - done));
    prev_x = xr, prev_y = yr, prev_m = m, prev_total = total;
    prev_factor = softmax_row_factor<T, kLog>(total);
    range = next0;
    m = range.max_value();
  }
  if (prev_x) apply_prev(0, len);
}

// Short rows go in batches of kRowBatch: reduce(row, k) for every row of the batch, then
// prepare(batch size) once, then apply(row, k). Row by row, each row's chain (its reduction, a
// horizontal add, the pass that needs the result) is long next to its work and only a few rows
// overlap; batched, the reductions are independent of each other, and the batch's rows stay in
// L1 between the loops. (Backward rows of 16 floats: 1.22 -> 1.01 TSC cycles per element.)
constexpr std::size_t kRowBatch = 8;

// A batch's float sums, kept as WideSum::store_sum's lanes (F64::N a row) until the batch is reduced
// at once, F64::N rows in one reduce_add_rows (AVX-512: 8, AVX2: 4), with the same bits as total() row by row:
// the horizontal add at the end of each short row's chain was the hottest code of softmax on rows of
// 16 floats (2.20 -> 2.02 TSC cycles per element; log_softmax 2.58 -> 2.40; rows of 64 4% faster),
// before rows shorter than 3N moved to softmax_short_rows. Not for the backward
// rows, whose sums are not on such a chain: there the lanes' store and reload cost 5% (rows of one
// vector keep the lanes in registers instead: softmax_backward_vector_rows).
template <class V>
constexpr bool kBatchTotals = WideSum<V>::kFloat && F64::has_reduce_add_rows;

// totals[r] = reduce_add(row r's lanes), for r < rows.
template <class V64>
inline void row_totals(const double* lanes, double* totals, std::size_t rows) {
  std::size_t r = 0;
  if constexpr (V64::has_reduce_add_rows) {
    for (; r + V64::N <= rows; r += V64::N) {
      V64 batch[V64::N];
      for (std::size_t k = 0; k < V64::N; ++k) batch[k] = V64::load(lanes + (r + k) * V64::N);
      store(totals + r, V64::reduce_add_rows(batch));
    }
  }
  for (; r < rows; ++r) totals[r] = reduce_add(V64::load(lanes + r * V64::N));
}

template <class Reduce, class Prepare, class Apply>
inline FASTACT_INLINE void in_row_batches(std::size_t rows, Reduce reduce, Prepare prepare, Apply apply) {
  for (std::size_t r0 = 0; r0 < rows; r0 += kRowBatch) {
    const std::size_t batch = std::min(kRowBatch, rows - r0);
    for (std::size_t k = 0; k < batch; ++k) reduce(r0 + k, k);
    prepare(batch);
    for (std::size_t k = 0; k < batch; ++k) apply(r0 + k, k);
  }
}

// The shortest rows, in vectors, that softmax_long_rows takes. Running other rows' passes inside the exp
// loop pays where that loop leaves the load, store and add units idle, bound by multiply-adds: on
// AVX-512 (Zen 4: one 512-bit multiply-add a cycle) from 16 vectors. On AVX2 (Zen 3, two 256-bit
// multiply-add pipes; TSC cycles per element, rows kept apart / fused) softmax gains from 16 vectors
// (rows of 128 floats 1.37 / 1.39, 256 1.22 / 1.22, 1024 1.25 / 1.08) but log_softmax only from about
// 96 (128 floats 1.40 / 1.74, 512 1.21 / 1.27, 768 1.30 / 1.27); without FMA (SSE2: multiplies and adds
// on separate pipes) it never did (softmax rows of 128 to 2048 floats 3.0-3.2 / 3.6-3.8, log_softmax
// 3.05-3.3 / 3.9-4.5). Shorter rows go in batches, up to kBatchMaxLen.
template <class V, bool kLog>
constexpr std::size_t kLongRowVectors =
    !V::has_fma ? std::numeric_limits<std::size_t>::max() : (V::has_exp_table || !kLog) ? 16 : 96;

// Softmax rows of kShortRowVectors to kCompiledRowVectors whole vectors run their batches with the
// length a compile-time constant: the passes' loops unroll and their tail branches compile away.
// AVX-512 float32, TSC cycles per element, alternating builds, best of 300 calls: rows of 48 1.72 ->
// 1.47, 80 1.35 -> 1.17, 96 1.07 -> 0.98, 128 0.95 -> 0.89 (up to 8 vectors: not measured further,
// and from 16 softmax_long_rows takes them). AVX2: rows of 96 and 128 floats (12 and 16 vectors)
// 1.60 / 1.47 -> 1.45 / 1.33, ahead of softmax_long_rows too. log_softmax was level or slower
// (AVX-512 rows of 48 1.64 -> 1.71), so it keeps the one form.
template <class V>
constexpr std::size_t kCompiledRowVectors = V::has_exp_table ? 8 : 16;

template <class V, bool kLog>
constexpr bool compiled_length(std::size_t len) {
  return !kLog && len % V::N == 0 && len / V::N >= kShortRowVectors<V> && len / V::N <= kCompiledRowVectors<V>;
}

// Rows longer than this take softmax_long_rows on every target: a batch's rows would no longer stay in
// L2 between its passes, and one by one they ran slower still (SSE2 rows of 8192 floats, TSC cycles per
// element: fused 3.56, one by one 3.86).
constexpr std::size_t kBatchMaxLen = 4096;

template <class V, bool kLog>
void softmax_rows_kernel(const Elem<V>* x, Elem<V>* y, std::size_t rows, std::size_t len) {
  using T = Elem<V>;
  if constexpr (V::N > 1) {
    if (len < kShortRowVectors<V> * V::N) return softmax_short_rows<V, kLog>(x, y, rows, len);
  }
  if (len >= 16 * V::N) {
    const bool huge = std::is_same_v<T, float> && len >= kOnlineMinLen;  // softmax_row's two passes
    const bool batched = (len < kLongRowVectors<V, kLog> * V::N || compiled_length<V, kLog>(len)) && len <= kBatchMaxLen;
    if ((!kLog || x != y) && !huge && !batched) return softmax_long_rows<V, kLog>(x, y, rows, len);
    if (!batched) {
      for (std::size_t r = 0; r < rows; ++r) softmax_row<V, kLog>(x + r * len, y + r * len, len);
      return;
    }
  }
  // The factors (a log or a division each) for the whole batch at once, between the vector passes.
  // Same arithmetic per row as softmax_row.
  auto batches = [&](auto len) {
    double totals[kRowBatch];
    double lanes[kBatchTotals<V> ? kRowBatch * F64::N : 1];
    T maxima[kRowBatch], factors[kRowBatch];
    in_row_batches(
        rows,
        [&](std::size_t r, std::size_t k) FASTACT_INLINE {
          if constexpr (kBatchTotals<V>) {
            WideSum<V> sum;
            if (softmax_row_reduce<V, kLog>(x + r * len, y + r * len, len, maxima[k], sum)) {
              sum.store_sum(lanes + k * F64::N);
            } else {
              std::fill(lanes + k * F64::N, lanes + (k + 1) * F64::N, std::numeric_limits<double>::quiet_NaN());
            }
          } else {
            totals[k] = softmax_row_total<V, kLog>(x + r * len, y + r * len, len, maxima[k]);
          }
        },
        [&](std::size_t batch) FASTACT_INLINE {
          if constexpr (kBatchTotals<V>) row_totals<F64>(lanes, totals, batch);
          softmax_factors<T, kLog>(totals, factors, batch);
        },
        [&](std::size_t r, std::size_t k) FASTACT_INLINE {
          softmax_row_apply<V, kLog>(x + r * len, y + r * len, len, maxima[k], totals[k], factors[k]);
        });
  };
  if constexpr (!kLog) {
    if (compiled_length<V, kLog>(len) && with_constant<kShortRowVectors<V>, kCompiledRowVectors<V>>(len / V::N, [&](auto k) {
          batches(std::integral_constant<std::size_t, decltype(k)::value * V::N>{});
        })) {
      return;
    }
  }
  batches(len);
}

// The sum of a row of exactly one vector: its halves are the pairs (see WideSum::add_halves).
template <class V, bool kLog>
inline FASTACT_INLINE WideSum<V> softmax_backward_vector_sum(V g, V v) {
  WideSum<V> sum;
  if constexpr (kLog) {
    sum.add_halves(g);
  } else {
    sum.add_product_halves(g, v);
  }
  return sum;
}

// One step of the backward's sum: the terms g1 v1 and g2 v2 added as a pair, or g v alone; for
// log_softmax, whose sum is of g, g1 and g2, or g (v unused).
template <class V, bool kLog>
inline FASTACT_INLINE void add_backward_pair(WideSum<V>& sum, V g1, V v1, V g2, V v2) {
  if constexpr (kLog) {
    sum.add_pair(g1, g2);
  } else {
    sum.add_product_pair(g1, v1, g2, v2);
  }
}

template <class V, bool kLog>
inline FASTACT_INLINE void add_backward_term(WideSum<V>& sum, V g, V v) {
  if constexpr (kLog) {
    sum.add(g);
  } else {
    sum.add_product(g, v);
  }
}

// The sum's lanes, each rounded to the element type: the backward's factor, lane by lane. Float lanes
// are narrowed in registers: stored, converted one by one and reloaded, each block of short rows
// waited on a failed store-to-load forward.
template <class V>
inline FASTACT_INLINE V rounded_lanes(const WideSum<V>& sum) {
  if constexpr (WideSum<V>::kFloat) {
    return narrow_pair(sum.lo, sum.hi);
  } else {
    return sum.lane_sums();
  }
}

// grad of softmax: y * (g - sum(g * y)); of log_softmax: g - exp(log_y) * sum(g).
// The row's sum: sum(g * y), or sum(g) for log_softmax, its terms paired (i with i + len/2) as in
// the forward sum, so that the column kernel, pairing the same terms, gives the same bits (where the
// double sums are exact, as above).
template <class V, bool kLog>
inline FASTACT_INLINE WideSum<V> softmax_backward_sum(const Elem<V>* g, const Elem<V>* v, std::size_t len) {
  constexpr std::size_t N = V::N;
  // Two accumulators on long rows: one chain of dependent adds would bound the pass by its latency.
  // (Named, not an array, so they stay in registers.)
  WideSum<V> s0, s1;
  if constexpr (N >= 2) {
    if (len == N) return softmax_backward_vector_sum<V, kLog>(V::load(g), V::load(v));
  }
  // (Called directly: through a pointer to it, GCC called add_backward_pair out of line, the sums
  // stored and reloaded each step, AVX2 rows of 1024 floats at 0.76 TSC cycles per element.)
  auto accumulate_at = [&](WideSum<V>& acc, std::size_t at, std::size_t half) FASTACT_INLINE {
    add_backward_pair<V, kLog>(acc, V::load(g + at), V::load(v + at), V::load(g + at + half), V::load(v + at + half));
  };
  const std::size_t half = len / 2;
  std::size_t k = 0;
  for (; k + 2 * N <= half; k += 2 * N) accumulate_at(s0, k, half), accumulate_at(s1, k + N, half);
  for (; k + N <= half; k += N) accumulate_at(s0, k, half);
  if (k < half) {  // the tail pairs, padded with zeros
    const std::size_t n = half - k;
    add_backward_pair<V, kLog>(s0, load_tail<V>(g + k, n, 0), load_tail<V>(v + k, n, 0),
                               load_tail<V>(g + k + half, n, 0), load_tail<V>(v + k + half, n, 0));
  }
  if (len % 2 != 0) {
    add_backward_term<V, kLog>(s0, load_tail<V>(g + len - 1, 1, 0), load_tail<V>(v + len - 1, 1, 0));
  }
  s0.merge(s1);
  return s0;
}

// The gradient of one vector, given the row's sum s (rounded to the element type).
template <class V, bool kLog>
inline FASTACT_INLINE V softmax_backward_grad(V gv, V vv, V s) {
  if constexpr (kLog) {
    return minus_exp_times(gv, vv, s);
  } else {
    return vv * (gv - s);
  }
}

// out = the gradient, given the row's sum.
template <class V, bool kLog>
inline FASTACT_INLINE void softmax_backward_apply(const Elem<V>* g, const Elem<V>* v, Elem<V>* out, std::size_t len, double total) {
  using T = Elem<V>;
  const V s = splat<V>(static_cast<T>(total));
  store_row<V>(out, len, [&](std::size_t at, std::size_t n) FASTACT_INLINE {
    return softmax_backward_grad<V, kLog>(load_tail<V>(g + at, n, 0), load_tail<V>(v + at, n, 0), s);
  });
}

// Backward rows that go to softmax_backward_short_rows: shorter than a vector, whose length the
// block then knows at compile time (with_row_length). (Transposed with the length known only at run
// time, AVX-512 float32 rows of 12, 16 and 24 lost to the row kernel: 1.4, 0.68 and 0.82 -> 1.9, 0.97
// and 1.7 TSC cycles per element. Known at compile time, rows of 3, 5, 10 and 15 gained: 7.9, 4.8,
// 2.5 and 2.0 -> 4.7, 2.9, 2.0 and 1.55; AVX2 rows of 3, 5 and 7 9.7, 7.5 and 4.4 -> 3.7, 2.3 and 1.7.)
template <class V>
inline bool backward_short_row(std::size_t len) {
  return len < V::N;
}

template <class V, bool kLog>
void softmax_backward_short_rows(const Elem<V>* g, const Elem<V>* v, Elem<V>* out, std::size_t rows, std::size_t len);

template <class V, bool kLog>
void softmax_backward_row(const Elem<V>* g, const Elem<V>* v, Elem<V>* out, std::size_t len) {
  if constexpr (V::N > 1) {
    if (backward_short_row<V>(len)) return softmax_backward_short_rows<V, kLog>(g, v, out, 1, len);
  }
  softmax_backward_apply<V, kLog>(g, v, out, len, softmax_backward_sum<V, kLog>(g, v, len).total());
}

// Backward rows of 2 or 4 floats (at most a vector), N / kLen rows to a vector, left in place: no
// transpose. A row's sum has one or two pair terms (P_j = g_j y_j + g_(j+2) y_(j+2) with the second
// product rounded, or g_j + g_(j+2)), found in the row's own lanes by in-lane shuffles. Two floats
// added in double and rounded to float give the float sum (double has more than 2 * 24 + 1 bits, so
// the double rounding is innocuous), so P_0 + P_1 in float is the total the transposed blocks round
// from their double sum, and rows get the bits of softmax_backward_short_rows; the + 0 makes a sum
// of -0 terms +0, as the double sum, which starts at +0, has it. (AVX2, rows 16 bytes off a cache
// line, TSC cycles per element: softmax_backward rows of 2 / 4, transposed, 1.12 / 1.44.)
template <class V, std::size_t kLen>
constexpr bool kBackwardLaneRows = WideSum<V>::kFloat && (kLen == 2 || kLen == 4) && kLen <= V::N;

template <class V, bool kLog, std::size_t kLen>
void softmax_backward_lane_rows(const Elem<V>* g, const Elem<V>* v, Elem<V>* out, std::size_t rows) {
  constexpr std::size_t N = V::N;
  const auto grad = [](V gv, V vv) FASTACT_INLINE {
    // Lane j < kLen/2 of each row: its pair term.
    const V pairs = kLog ? gv + swap_lanes<kLen / 2>(gv) : mul_add(gv, vv, swap_lanes<kLen / 2>(gv * vv));
    const V total = kLen == 4 ? pairs + swap_lanes<1>(pairs) : pairs;
    return softmax_backward_grad<V, kLog>(gv, vv, broadcast_group_first<kLen>(total + splat<V>(0)));
  };
  const std::size_t n = rows * kLen;
  std::size_t i = 0;
  for (; i + N <= n; i += N) store(out + i, grad(V::load(g + i), V::load(v + i)));
  if (i < n) store_tail(out + i, n - i, grad(load_tail<V>(g + i, n - i, 0), load_tail<V>(v + i, n - i, 0)));
}

// Backward rows of exactly one float vector (AVX-512: rows of 16, AVX2: 8), F64::N at a time, held in
// registers between the sum and the last pass: the rows' totals come from one reduce_add_rows, the
// same additions as total() makes for one row, so the same bits as a row alone. Row by row, each row's
// horizontal add cost more than its vector work, and the batch form's store and reload of the lanes
// (kBatchTotals) cost as much again. (16384 x 16 floats, TSC cycles per element, alternating runs:
// softmax_backward 0.56-0.57 -> 0.50-0.51, log_softmax_backward 0.96 -> 0.81-0.84; the totals
// rounded and spread by vector ops, narrow and broadcast_lane, then 0.50 -> 0.47.) The pair sums go
// in unaccumulated, and + 0 after the reduction does what the accumulators' start at +0 does for one
// row (a total of -0 terms is +0; nothing else changes): AVX2 rows of 8 floats 0.64 -> 0.62.
template <class V>
constexpr bool kBackwardVectorRows = WideSum<V>::kFloat && F64::has_reduce_add_rows;

template <class V, bool kLog, class V64 = F64>
void softmax_backward_vector_rows(const Elem<V>* g, const Elem<V>* v, Elem<V>* out, std::size_t rows) {
  constexpr std::size_t N = V::N, kBatch = V64::N;
  std::size_t r = 0;
  for (; r + kBatch <= rows; r += kBatch) {
    V gs[kBatch], vs[kBatch];
    V64 lanes[kBatch];
    for (std::size_t k = 0; k < kBatch; ++k) {
      gs[k] = V::load(g + (r + k) * N), vs[k] = V::load(v + (r + k) * N);
      lanes[k] = kLog ? WideSum<V>::halves(gs[k]) : WideSum<V>::product_halves(gs[k], vs[k]);
    }
    // The totals rounded to float together (as static_cast rounds each), then spread one a row.
    const V sums = narrow(V64::reduce_add_rows(lanes) + splat<V64>(0));
    for (std::size_t k = 0; k < kBatch; ++k) {
      store(out + (r + k) * N, softmax_backward_grad<V, kLog>(gs[k], vs[k], broadcast_lane(sums, k)));
    }
  }
  for (; r < rows; ++r) softmax_backward_row<V, kLog>(g + r * N, v + r * N, out + r * N, N);
}

// Backward rows of 2 to 8 whole vectors, with the length a compile-time constant: each row's sum
// and last pass are straight-line code, and all of the row's loads come before its stores, so the
// last pass reads the vectors the sum loaded (or L1) rather than waiting behind the stores of the
// batch form. The same sum (softmax_backward_sum) and formula, so the same bits. (TSC cycles per
// element, AVX-512 float32, rows 16 bytes off a cache line, alternating runs: rows of 32 0.52-0.70 ->
// 0.39-0.48, 48 0.51 -> 0.43, 64 0.43 -> 0.35, 128 0.41 -> 0.37; log_softmax_backward 0.67-1.07 ->
// 0.60-0.77; AVX2 rows of 16 and 32 0.64 / 0.61 -> 0.55 / 0.52, longer rows level.)
template <class V, bool kLog, std::size_t kVectors>
void softmax_backward_whole_vector_rows(const Elem<V>* g, const Elem<V>* v, Elem<V>* out, std::size_t rows) {
  using T = Elem<V>;
  constexpr std::size_t N = V::N, kLen = kVectors * N;
  for (std::size_t r = 0; r < rows; ++r) {
    const T* gr = g + r * kLen;
    const T* vr = v + r * kLen;
    const double total = softmax_backward_sum<V, kLog>(gr, vr, kLen).total();
    V gs[kVectors], vs[kVectors];
    for (std::size_t i = 0; i < kVectors; ++i) gs[i] = V::load(gr + i * N), vs[i] = V::load(vr + i * N);
    const V s = splat<V>(static_cast<T>(total));
    for (std::size_t i = 0; i < kVectors; ++i) store(out + r * kLen + i * N, softmax_backward_grad<V, kLog>(gs[i], vs[i], s));
  }
}

template <class V, bool kLog>
void softmax_backward_rows_kernel(const Elem<V>* g, const Elem<V>* v, Elem<V>* out, std::size_t rows,
                                  std::size_t len) {
  if constexpr (kBackwardLaneRows<V, 2>) {
    if (len == 2) return softmax_backward_lane_rows<V, kLog, 2>(g, v, out, rows);
  }
  if constexpr (kBackwardLaneRows<V, 4>) {
    if (len == 4) return softmax_backward_lane_rows<V, kLog, 4>(g, v, out, rows);
  }
  if constexpr (V::N > 1) {
    if (backward_short_row<V>(len)) return softmax_backward_short_rows<V, kLog>(g, v, out, rows, len);
  }
  if constexpr (kBackwardVectorRows<V>) {
    if (len == V::N) return softmax_backward_vector_rows<V, kLog>(g, v, out, rows);
  }
  const std::size_t whole_vectors = len % V::N == 0 ? len / V::N : 0;
  if (with_constant<2, 8>(whole_vectors, [&](auto fixed) {
        softmax_backward_whole_vector_rows<V, kLog, decltype(fixed)::value>(g, v, out, rows);
      })) {
    return;
  }
  if (len >= 16 * V::N) {
    for (std::size_t r = 0; r < rows; ++r) softmax_backward_row<V, kLog>(g + r * len, v + r * len, out + r * len, len);
    return;
  }
  double totals[kRowBatch];
  in_row_batches(
      rows,
      [&](std::size_t r, std::size_t k) FASTACT_INLINE {
        totals[k] = softmax_backward_sum<V, kLog>(g + r * len, v + r * len, len).total();
      },
      [](std::size_t) {},
      [&](std::size_t r, std::size_t k) FASTACT_INLINE {
        softmax_backward_apply<V, kLog>(g + r * len, v + r * len, out + r * len, len, totals[k]);
      });
}

// ---- K*N adjacent slices along a strided axis, one lane per slice ---------------------------

// Rows a multiple of this apart share a few cache sets (see pack_block).
constexpr std::size_t kAliasingStrideBytes = 1024;

// A pass over a block at row j (of len, stride apart) requests the `width` elements of row j + 8:
// rows a page or more apart are where the hardware prefetchers stop, and without the request each row
// waits on L3 or memory (axis 0 of 2048 x 1000 and 4096 x 1000 floats: softmax 1.3-1.7x faster with
// it, 256 x 1000 1.06x). Not for contiguous rows (the hardware fetches them) nor at strides that alias
// in the cache, where the lines requested evict the ones in use.
constexpr std::size_t kRowsAhead = 8;

// Requests the cache lines of the `width` elements at p.
template <class T>
inline FASTACT_INLINE void prefetch_span(const T* p, std::size_t width) {
  for (std::size_t k = 0; k < width; k += 64 / sizeof(T)) FASTACT_PREFETCH(p + k);
}

template <class T>
struct RowPrefetch {
  const std::size_t len, stride, width;
  const bool on = stride != width && stride * sizeof(T) % kAliasingStrideBytes != 0;
  FASTACT_INLINE void operator()(const T* base, std::size_t j) const {
    if (on && j + kRowsAhead < len) prefetch_span(base + (j + kRowsAhead) * stride, width);
  }
};

// The columns a block reads and writes: K whole vectors a row, or (kPartial, K = 1) the first `lanes`
// of one vector, for the last columns of an array too few to fill a vector. Their other lanes read
// as 0, a slice of finite values, and are never written.
template <class V, std::size_t K, bool kPartial>
struct BlockLanes {
  static_assert(!kPartial || K == 1, "a partial block is one vector wide");
  std::size_t lanes = V::N;
  FASTACT_INLINE V load(const Elem<V>* p) const {
    if constexpr (kPartial) {
      return load_tail<V>(p, lanes, 0);
    } else {
      return V::load(p);
    }
  }
  FASTACT_INLINE void put(Elem<V>* p, V v) const {
    if constexpr (kPartial) {
      store_tail(p, lanes, v);
    } else {
      store(p, v);
    }
  }
};

// Slice c's element j is read at x[j * stride + c], c < K * N, and its result written at
// out[j * out_stride + c]; y (same stride as x, may be x) holds exp between the passes. The same
// three passes as softmax_row, each lane reducing its own slice; K vectors side by side so a pass
// reads whole cache lines.
template <class V, bool kLog, std::size_t K, bool kPartial = false>
void softmax_col_block(const Elem<V>* x, Elem<V>* y, std::size_t len, std::size_t stride, Elem<V>* out,
                       std::size_t out_stride, BlockLanes<V, K, kPartial> cols = {}) {
  using T = Elem<V>;
  constexpr std::size_t N = V::N;
  constexpr T kInf = std::numeric_limits<T>::infinity();
  V m[K];
  WideSum<V> sum[K];
  for (std::size_t k = 0; k < K; ++k) m[k] = splat<V>(-kInf);
  // No NaN mask: as in softmax_row_reduce, exp carries a NaN to the lane's sum.
  const RowPrefetch<T> ahead{len, stride, K * N};
  for (std::size_t j = 0; j < len; ++j) {
    const T* row = x + j * stride;
    ahead(x, j);
    for (std::size_t k = 0; k < K; ++k) m[k] = max(cols.load(row + k * N), m[k]);
  }
  // Element j paired with element j + len/2, as in softmax_row_reduce. e is stored first (log_softmax
  // borrows y unless y is x) and summed in a second pass: the exp loop then runs K chains, not 2K.
  auto exp_at = [&](std::size_t j, std::size_t k) { return exp(cols.load(x + j * stride + k * N) - m[k]); };
  const std::size_t half = len / 2;
  if (!kLog || x != y) {
    for (std::size_t j = 0; j < len; ++j) {
      ahead(x, j);
      for (std::size_t k = 0; k < K; ++k) cols.put(y + j * stride + k * N, exp_at(j, k));
    }
    for (std::size_t j = 0; j < half; ++j) {
      ahead(y, j), ahead(y, j + half);
      for (std::size_t k = 0; k < K; ++k) {
        sum[k].add_pair(cols.load(y + j * stride + k * N), cols.load(y + (j + half) * stride + k * N));
      }
    }
    if (len % 2 != 0) {
      for (std::size_t k = 0; k < K; ++k) sum[k].add(cols.load(y + (len - 1) * stride + k * N));
    }
  } else {
    for (std::size_t j = 0; j < half; ++j) {
      for (std::size_t k = 0; k < K; ++k) sum[k].add_pair(exp_at(j, k), exp_at(j + half, k));
    }
    if (len % 2 != 0) {
      for (std::size_t k = 0; k < K; ++k) sum[k].add(exp_at(len - 1, k));
    }
  }
  // The scale (or log-sum) of each slice, in registers as the short-row blocks find it: NaN for a NaN,
  // +inf or all -inf slice (m not finite: m - m is NaN; a NaN sum gives a NaN factor). (Lane by lane
  // through memory, the finish took most of a short slice's time: AVX2 float32 4 x 65536 along axis 0,
  // TSC cycles per element, softmax 1.89, log_softmax 3.10.)
  V scale[K];
  for (std::size_t k = 0; k < K; ++k) {
    scale[k] = select(is_nan(m[k] - m[k]), splat<V>(std::numeric_limits<T>::quiet_NaN()), lane_factors<V, kLog>(sum[k]));
  }
  for (std::size_t j = 0; j < len; ++j) {
    const T* row = x + j * stride;
    const T* e = y + j * stride;
    T* dst = out + j * out_stride;
    ahead(kLog ? x : y, j);
    for (std::size_t k = 0; k < K; ++k) {
      if constexpr (kLog) {
        cols.put(dst + k * N, (cols.load(row + k * N) - m[k]) - scale[k]);
      } else {
        cols.put(dst + k * N, normalize(cols.load(e + k * N), scale[k]));
      }
    }
  }
}

// kBlocks blocks of N short rows each, transposed: lane l of t[b * kBlockVectors + j] is element j of
// row l of block b, j < len. Each lane goes through softmax_col_block's arithmetic (max, e paired j
// with j + len/2, the same factors), so a short row gets the bits of the same slice along axis 0.
// The results replace t. A block's steps are a chain (max, exp, sum, factor, scale) too long for the
// out-of-order window to overlap with the next block's, so two blocks go step by step together
// (AVX2 float32 rows of 4, 8 and 16: 2.6, 2.7 and 2.5 -> 2.4, 2.2 and 2.1 TSC cycles per element).
constexpr std::size_t kShortRowBlocks = 2;

template <class V, bool kLog, std::size_t kBlocks>
inline FASTACT_INLINE void softmax_transposed_blocks(V* t, std::size_t len) {
  using T = Elem<V>;
  constexpr std::size_t kBlockVectors = kShortRowVectors<V> * V::N;
  V m[kBlocks], e[kBlocks][kBlockVectors], f[kBlocks];
  WideSum<V> sum[kBlocks];
  LaneRange<V> range[kBlocks];
  for (std::size_t j = 0; j < len; ++j) {
    for (std::size_t b = 0; b < kBlocks; ++b) range[b].add(t[b * kBlockVectors + j]);
  }
  bool in_range = true;
  for (std::size_t b = 0; b < kBlocks; ++b) {
    m[b] = range[b].hi;
    in_range = in_range && range[b].each_lane_in_range();
  }
  // Every lane's x - max within exp_normal's range (see LaneRange): exp without its check.
  const auto exps = [&](auto unchecked) FASTACT_INLINE {
    for (std::size_t j = 0; j < len; ++j) {
      for (std::size_t b = 0; b < kBlocks; ++b) {
        e[b][j] = exp_nonpositive<V, decltype(unchecked)::value>(t[b * kBlockVectors + j] - m[b]);
      }
    }
  };
  if (in_range) {
    exps(std::true_type{});
  } else {
    exps(std::false_type{});
  }
  const std::size_t half = len / 2;
  for (std::size_t j = 0; j < half; ++j) {
    for (std::size_t b = 0; b < kBlocks; ++b) sum[b].add_pair(e[b][j], e[b][j + half]);
  }
  if (len % 2 != 0) {
    for (std::size_t b = 0; b < kBlocks; ++b) sum[b].add(e[b][len - 1]);
  }
  // A NaN, +inf or all -inf row (m not finite: m - m is NaN) is NaN.
  for (std::size_t b = 0; b < kBlocks; ++b) {
    f[b] = select(is_nan(m[b] - m[b]), splat<V>(std::numeric_limits<T>::quiet_NaN()), lane_factors<V, kLog>(sum[b]));
  }
  for (std::size_t j = 0; j < len; ++j) {
    for (std::size_t b = 0; b < kBlocks; ++b) {
      V& out = t[b * kBlockVectors + j];
      out = kLog ? (out - m[b]) - f[b] : normalize(e[b][j], f[b]);
    }
  }
}

constexpr bool is_power_of_two(std::size_t n) { return n != 0 && (n & (n - 1)) == 0; }

// How many of the N elements at `at` lie before `end`: a short-rows block reads and writes a row's
// vector whole where that stays inside the block, else only up to its end (the rows after it may be
// another thread's, or past the array). One masked access on AVX-512, either way.
template <class V>
inline std::size_t lanes_before(std::size_t at, std::size_t end) {
  return at >= end ? 0 : std::min(V::N, end - at);
}

// log2(M) rounds over v[0..M) (M a power of two), each interleaving the first half of the vectors
// with the second. Element l of v[i] sits at bit string i l; a round rotates that string left by one
// bit. deinterleave_rounds undoes them (each of its rounds rotates right by one).
template <class V, std::size_t M>
inline FASTACT_INLINE void interleave_rounds(V* v) {
  for (std::size_t round = 1; round < M; round *= 2) {
    V w[M];
    for (std::size_t i = 0; i < M / 2; ++i) {
      w[2 * i] = interleave_lo(v[i], v[i + M / 2]);
      w[2 * i + 1] = interleave_hi(v[i], v[i + M / 2]);
    }
    std::copy(w, w + M, v);
  }
}

template <class V, std::size_t M>
inline FASTACT_INLINE void deinterleave_rounds(V* v) {
  for (std::size_t round = 1; round < M; round *= 2) {
    V w[M];
    for (std::size_t i = 0; i < M / 2; ++i) {
      w[i] = deinterleave_even(v[2 * i], v[2 * i + 1]);
      w[i + M / 2] = deinterleave_odd(v[2 * i], v[2 * i + 1]);
    }
    std::copy(w, w + M, v);
  }
}

// v[0..N), the rows of an N x N matrix, replaced by its columns: the target's own transpose where it
// has a cheaper one (AVX2: 3 shuffles a vector, not 6), else log2(N) rounds taking bit string i k to k i.
template <class V>
inline FASTACT_INLINE void transpose_square(V* v) {
  if constexpr (V::has_native_transpose) {
    native_transpose(v);
  } else {
    interleave_rounds<V, V::N>(v);
  }
}

// A fixed move of lanes among kLen vectors, as chains of two-source permutes (permute2): out[o] takes
// its lanes from the source vectors in increasing order, the first two in one permute, each further
// one in a permute with the lanes placed so far. Move::from(o, p) is the source (vector, lane) of lane p
// of out[o]. Tables built at compile time; the first step's sources are src[o][0] and src[o][1], step
// k's (k > 0) the lanes so far and src[o][k + 1].
template <class Index, std::size_t kLen, std::size_t N>
struct PermuteChains {
  Index index[kLen][kLen][N] = {};
  std::size_t src[kLen][kLen + 1] = {};
  std::size_t steps[kLen] = {};
};

template <class Index, std::size_t kLen, std::size_t N, class Move>
constexpr PermuteChains<Index, kLen, N> permute_chains() {
  PermuteChains<Index, kLen, N> c{};
  for (std::size_t o = 0; o < kLen; ++o) {
    bool used[kLen] = {};
    for (std::size_t p = 0; p < N; ++p) used[Move::from(o, p).first] = true;
    std::size_t count = 0;
    for (std::size_t q = 0; q < kLen; ++q) {
      if (used[q]) c.src[o][count++] = q;
    }
    if (count == 1) c.src[o][count++] = c.src[o][0];
    c.steps[o] = count - 1;
    for (std::size_t k = 0; k < count - 1; ++k) {
      for (std::size_t p = 0; p < N; ++p) {
        const auto [q, lane] = Move::from(o, p);
        std::size_t placed = p;  // a lane placed by an earlier step, or not yet (either way, any lane)
        if (k == 0 && q == c.src[o][0]) placed = lane;
        if (q == c.src[o][k + 1]) placed = N + lane;
        c.index[o][k][p] = static_cast<Index>(placed);
      }
    }
  }
  return c;
}

template <class V, std::size_t kLen, class Move>
inline FASTACT_INLINE void permute_vectors(const V* in, V* out) {
  static constexpr auto c = permute_chains<typename V::LaneIndex, kLen, V::N, Move>();
  for (std::size_t o = 0; o < kLen; ++o) {
    V acc = permute2(in[c.src[o][0]], in[c.src[o][1]], c.index[o][0]);
    for (std::size_t k = 1; k < c.steps[o]; ++k) acc = permute2(acc, in[c.src[o][k + 1]], c.index[o][k]);
    out[o] = acc;
  }
}

// Element e of a block of N rows of kLen elements is lane e % N of vector e / N in memory order, and
// lane e / kLen of vector e % kLen transposed (lane l holds row l).
template <std::size_t kLen, std::size_t N>
struct RowsToLanes {
  static constexpr std::pair<std::size_t, std::size_t> from(std::size_t j, std::size_t l) {
    return {(l * kLen + j) / N, (l * kLen + j) % N};
  }
};
template <std::size_t kLen, std::size_t N>
struct LanesToRows {
  static constexpr std::pair<std::size_t, std::size_t> from(std::size_t q, std::size_t p) {
    return {(q * N + p) % kLen, (q * N + p) / kLen};
  }
};

// Whether blocks of rows of kLen elements are transposed by permute chains: kLen (kLen - 1) permutes
// each way, against N log2(N) shuffles for the square transposes (powers of two have their own
// rounds). A permute in a chain cost about three of those shuffles (AVX-512 float32, TSC cycles per
// element, softmax rows of 3 / 5 / 6 / 7: 4.4 / 3.0 / 2.5 / 2.2 -> 1.4 / 1.5-1.6 / 2.5 / 2.9;
// softmax_backward 4.6 / 2.9 / 2.4-3.2 / 2.1 -> 0.8 / 1.2 / 2.7 / 2.9).
template <class V, std::size_t kLen>
constexpr bool permute_transposed() {
  if constexpr (V::has_permute2 && kLen > 1 && !is_power_of_two(kLen)) {
    std::size_t log2n = 0;
    while ((std::size_t{1} << log2n) < V::N) ++log2n;
    return 3 * kLen * (kLen - 1) <= V::N * log2n;
  } else {
    return false;
  }
}

// A block of n <= N rows of len elements (contiguous, fewer than kShortRowVectors * N), to and from
// vectors t with lane l of t[j] holding element j of row l; rows past n read as zeros, and lanes past
// len are ignored. kLen is len when it is known at compile time (up to N), else 0. A power of two
// makes the block kLen whole vectors in memory, and log2(kLen) rounds of deinterleaving (each
// rotating an element's index bits right by one) put element l kLen + j in lane l of t[j]:
// 2 kLen log2(kLen) permutes each way, where a square takes 2 N log2(N) (rows of 4 floats on
// AVX-512: 16, not 128). Other lengths take one N x N square per vector of a row.
template <class V, std::size_t kLen>
inline FASTACT_INLINE void load_transposed(const Elem<V>* src, std::size_t len, std::size_t n, V* t) {
  constexpr std::size_t N = V::N;
  const std::size_t end = n * len;
  if constexpr (is_power_of_two(kLen) || permute_transposed<V, kLen>()) {
    V v[kLen];
    for (std::size_t q = 0; q < kLen; ++q) v[q] = load_tail<V>(src + std::min(q * N, end), lanes_before<V>(q * N, end), 0);
    if constexpr (kLen == N) {  // each row one vector: a square
      transpose_square(v);
      std::copy(v, v + kLen, t);
    } else if constexpr (is_power_of_two(kLen)) {
      deinterleave_rounds<V, kLen>(v);
      std::copy(v, v + kLen, t);
    } else {
      permute_vectors<V, kLen, RowsToLanes<kLen, N>>(v, t);
    }
  } else {
    for (std::size_t c = 0; c < kShortRowVectors<V> && c * N < len; ++c) {
      for (std::size_t l = 0; l < N; ++l) {
        const std::size_t at = std::min(l * len + c * N, end);
        t[c * N + l] = load_tail<V>(src + at, lanes_before<V>(at, end), 0);
      }
      transpose_square(t + c * N);
    }
  }
}

// The inverse: t (destroyed) to the block's rows at dst. Rows are written in order, so lanes past a
// row's end are overwritten by the rows after it.
template <class V, std::size_t kLen>
inline FASTACT_INLINE void store_transposed(Elem<V>* dst, std::size_t len, std::size_t n, V* t) {
  constexpr std::size_t N = V::N;
  const std::size_t end = n * len;
  if constexpr (is_power_of_two(kLen) || permute_transposed<V, kLen>()) {
    V v[kLen];
    if constexpr (kLen == N) {
      transpose_square(t);
      std::copy(t, t + kLen, v);
    } else if constexpr (is_power_of_two(kLen)) {
      interleave_rounds<V, kLen>(t);
      std::copy(t, t + kLen, v);
    } else {
      permute_vectors<V, kLen, LanesToRows<kLen, N>>(t, v);
    }
    for (std::size_t q = 0; q < kLen; ++q) {
      if (q * N < end) store_tail(dst + q * N, lanes_before<V>(q * N, end), v[q]);
    }
  } else {
    for (std::size_t c = 0; c < kShortRowVectors<V> && c * N < len; ++c) transpose_square(t + c * N);
    for (std::size_t l = 0; l < n; ++l) {
      for (std::size_t c = 0; c < kShortRowVectors<V> && c * N < len; ++c) {
        const std::size_t at = l * len + c * N;
        store_tail(dst + at, lanes_before<V>(at, end), t[c * N + l]);
      }
    }
  }
}

// f(std::integral_constant<std::size_t, kLen>) with kLen = len for len up to N, else kLen = 0: the
// blocks of rows no longer than a vector compile to straight-line code (AVX-512 float32 rows of 10:
// 2.3-2.6 -> 1.75-2.1 TSC cycles per element, with len known only at run time; powers of two gain
// more, 2x-3x, as their blocks also skip the square transposes).
template <class V, class F>
inline FASTACT_INLINE void with_row_length(std::size_t len, F f) {
  if (!with_constant<1, V::N>(len, f)) f(std::integral_constant<std::size_t, 0>{});
}

// Rows of fewer than kShortRowVectors * N elements, N rows at a time, transposed (load_transposed) so
// that each row is reduced in its own lane and every vector operation works on N rows. (Row by row,
// a vector held one row of a few elements, and its horizontal max and sum cost more than the row:
// rows of 4 floats took 16 TSC cycles per element on AVX-512, rows of 17 5.6.)
template <class V, bool kLog>
void softmax_short_rows(const Elem<V>* x, Elem<V>* y, std::size_t rows, std::size_t len) {
  constexpr std::size_t N = V::N;
  with_row_length<V>(len, [&](auto fixed) {
    constexpr std::size_t kLen = decltype(fixed)::value;
    const std::size_t n_elems = kLen ? kLen : len;
    constexpr std::size_t kBlockVectors = kShortRowVectors<V> * N;
    V t[kShortRowBlocks * kBlockVectors];
    std::size_t r0 = 0;
    for (; r0 + kShortRowBlocks * N <= rows; r0 += kShortRowBlocks * N) {
      for (std::size_t b = 0; b < kShortRowBlocks; ++b) {
        load_transposed<V, kLen>(x + (r0 + b * N) * n_elems, n_elems, N, t + b * kBlockVectors);
      }
      softmax_transposed_blocks<V, kLog, kShortRowBlocks>(t, n_elems);
      for (std::size_t b = 0; b < kShortRowBlocks; ++b) {
        store_transposed<V, kLen>(y + (r0 + b * N) * n_elems, n_elems, N, t + b * kBlockVectors);
      }
    }
    for (; r0 < rows; r0 += N) {
      const std::size_t n = std::min(N, rows - r0);
      load_transposed<V, kLen>(x + r0 * n_elems, n_elems, n, t);
      softmax_transposed_blocks<V, kLog, 1>(t, n_elems);
      store_transposed<V, kLen>(y + r0 * n_elems, n_elems, n, t);
    }
  });
}

// The backward ops on the same blocks, for rows shorter than N (backward_short_row):
// g and y (or log_y) transposed, each row's sum in its lane with softmax_backward_col_block's
// arithmetic (so a row gets the bits of the same slice along axis 0), the gradient computed in the
// same layout and transposed back. (AVX-512 float32 rows of 2, 4 and 8: 9.7, 4.9 and 2.0 TSC cycles
// per element before, row by row.)
template <class V, bool kLog>
void softmax_backward_short_rows(const Elem<V>* g, const Elem<V>* v, Elem<V>* out, std::size_t rows,
                                 std::size_t len) {
  constexpr std::size_t N = V::N;
  with_row_length<V>(len, [&](auto fixed) {
    constexpr std::size_t kLen = decltype(fixed)::value;
    constexpr std::size_t n_elems = kLen, half = kLen / 2;
    if constexpr (kLen == 0) return;  // (a row of N or more: never called)
    V gt[N], vt[N];
    for (std::size_t r0 = 0; r0 < rows; r0 += N) {
      const std::size_t n = std::min(N, rows - r0), first = r0 * n_elems;
      load_transposed<V, kLen>(g + first, n_elems, n, gt);
      load_transposed<V, kLen>(v + first, n_elems, n, vt);
      WideSum<V> sum;
      for (std::size_t j = 0; j < half; ++j) add_backward_pair<V, kLog>(sum, gt[j], vt[j], gt[j + half], vt[j + half]);
      if (n_elems % 2 != 0) add_backward_term<V, kLog>(sum, gt[n_elems - 1], vt[n_elems - 1]);
      const V s = rounded_lanes(sum);
      for (std::size_t j = 0; j < n_elems; ++j) gt[j] = softmax_backward_grad<V, kLog>(gt[j], vt[j], s);
      store_transposed<V, kLen>(out + first, n_elems, n, gt);
    }
  });
}

// The two passes of the backward over a block of K*N slices (element j of a slice at j * stride), as
// steps over a row or a pair of rows, so that one loop can run the steps of two blocks.
template <class V, bool kLog, std::size_t K, bool kPartial = false>
struct BackwardColumnSteps {
  using T = Elem<V>;
  static constexpr std::size_t N = V::N;
  std::size_t len, stride, half;
  BlockLanes<V, K, kPartial> cols;
  RowPrefetch<T> ahead;

  BackwardColumnSteps(std::size_t len, std::size_t stride, BlockLanes<V, K, kPartial> cols = {}, bool prefetch = true)
      : len(len),
        stride(stride),
        half(len / 2),
        cols(cols),
        ahead(prefetch ? RowPrefetch<T>{len, stride, K * N} : RowPrefetch<T>{len, stride, K * N, false}) {}

  // Terms j and j + len/2 of each slice, added as a pair, as in softmax_backward_sum.
  FASTACT_INLINE void add_pair(const T* g, const T* v, std::size_t j, WideSum<V>* sum) const {
    ahead(g, j), ahead(g, j + half);
    if constexpr (!kLog) ahead(v, j), ahead(v, j + half);
    for (std::size_t k = 0; k < K; ++k) {
      const std::size_t at = j * stride + k * N, at2 = at + half * stride;
      add_backward_pair<V, kLog>(sum[k], cols.load(g + at), cols.load(v + at), cols.load(g + at2), cols.load(v + at2));
    }
  }
  // All the terms: the pairs, then the last one of an odd length.
  FASTACT_INLINE void add_all(const T* g, const T* v, WideSum<V>* sum) const {
    for (std::size_t j = 0; j < half; ++j) add_pair(g, v, j, sum);
    if (len % 2 != 0) add_last(g, v, sum);
  }
  FASTACT_INLINE void add_last(const T* g, const T* v, WideSum<V>* sum) const {
    for (std::size_t k = 0; k < K; ++k) {
      const std::size_t at = (len - 1) * stride + k * N;
      add_backward_term<V, kLog>(sum[k], cols.load(g + at), cols.load(v + at));
    }
  }
  // Each slice's sum rounded to T, in its lane of s; the sums restart from 0.
  static FASTACT_INLINE void finish(WideSum<V>* sum, V* s) {
    for (std::size_t k = 0; k < K; ++k) {
      s[k] = rounded_lanes(sum[k]);
      sum[k] = WideSum<V>();
    }
  }
  // Row j of the last pass.
  FASTACT_INLINE void apply(const T* g, const T* v, T* out, std::size_t j, const V* s) const {
    for (std::size_t k = 0; k < K; ++k) {
      const std::size_t at = j * stride + k * N;
      cols.put(out + at, softmax_backward_grad<V, kLog>(cols.load(g + at), cols.load(v + at), s[k]));
    }
  }
  // Both passes over one block.
  void block(const T* g, const T* v, T* out) const {
    WideSum<V> sum[K];
    V s[K];
    add_all(g, v, sum);
    finish(sum, s);
    for (std::size_t j = 0; j < len; ++j) {
      ahead(g, j), ahead(v, j);
      apply(g, v, out, j, s);
    }
  }
};

template <class V, bool kLog, std::size_t K, bool kPartial = false>
void softmax_backward_col_block(const Elem<V>* g, const Elem<V>* v, Elem<V>* out, std::size_t len,
                                std::size_t stride, BlockLanes<V, K, kPartial> cols = {}) {
  BackwardColumnSteps<V, kLog, K, kPartial>(len, stride, cols).block(g, v, out);
}

// Two blocks of g and v up to this size run their passes in one loop (below).
constexpr std::size_t kInterleavedBlocksBytes = std::size_t{128} << 10;

// `blocks` blocks of K*N slices side by side. Each block's sum reads g and v from L3 or memory and its
// last pass reads them again from L1 or L2 and writes out; one after the other, each pass leaves
// the other's path idle. So where two blocks fit in L2 with room to spare, block b's last pass runs in
// one loop with block b + 1's sum. Softmax backward along axis 0, float32, TSC cycles per element,
// alternating runs: AVX-512 16 x 16000 0.47 -> 0.42, 16 x 16384 0.52 -> 0.49-0.52, 128 x 1000 0.62
// -> 0.53, 128 x 2048 0.57 -> 0.48-0.52, 64 x 4096 0.58 -> 0.48-0.53; AVX2 16 x 16384 0.64-0.73 ->
// 0.51, 128 x 2048 0.64 -> 0.50. Bigger blocks lost (256 x 1000: 0.63 -> 0.81; 1024 x 256 at half
// the width: 0.60 -> 1.1). That loop requests no rows ahead: the other block's work covers the
// waits, and the requests cost more (200 x 1000: 0.62 -> 0.80).
// (Blocks too big for this go in chunks instead: backward_in_chunks.)
template <class V, bool kLog, std::size_t K>
void softmax_backward_col_blocks(const Elem<V>* g, const Elem<V>* v, Elem<V>* out, std::size_t len,
                                 std::size_t stride, std::size_t blocks) {
  constexpr std::size_t W = K * V::N;
  if (blocks < 2) return BackwardColumnSteps<V, kLog, K>(len, stride).block(g, v, out);
  const BackwardColumnSteps<V, kLog, K> step(len, stride, {}, false);
  WideSum<V> sum[K];
  V s[K];
  step.add_all(g, v, sum);
  step.finish(sum, s);
  for (std::size_t b = 0; b + 1 < blocks; ++b) {
    const std::size_t at = b * W, next = at + W;
    for (std::size_t j = 0; j < step.half; ++j) {
      step.add_pair(g + next, v + next, j, sum);
      step.apply(g + at, v + at, out + at, j, s);
      step.apply(g + at, v + at, out + at, j + step.half, s);
    }
    if (len % 2 != 0) {
      step.add_last(g + next, v + next, sum);
      step.apply(g + at, v + at, out + at, len - 1, s);
    }
    step.finish(sum, s);
  }
  const std::size_t at = (blocks - 1) * W;
  for (std::size_t j = 0; j < len; ++j) step.apply(g + at, v + at, out + at, j, s);
}

// Slices side by side, nv vectors of them, a row of the chunk at a time: the sum pass reads rows j and
// j + len/2 whole, with each vector's WideSum kept in memory (L1), then the last pass reads every row
// again. Per lane, the same operations in the same order as softmax_backward_col_block, so the same
// bits. The blocks of 4 vectors above read each row 256 bytes at a time. Where two such blocks are
// too big to overlap, or where g, y and out start near one page offset (as large NumPy arrays all
// do) and rows are a multiple of 2 KB apart, so that a block's rows of all three fall in a few cache
// sets and evict each other, rows of kColumnChunkBytes per pass stream instead. Softmax backward
// along axis 0, AVX-512 float32, data 16 bytes off a cache line, TSC cycles per element, the three
// arrays at one page offset: 21 x 4096 1.11 -> 0.74, 16 x 16384 1.27 -> 0.77, 128 x 2048 1.23 ->
// 0.69, 1024 x 1024 2.04 -> 0.81; 1 KB apart: 1024 x 1024 1.24 -> 0.76, 1024 x 256 0.89 -> 0.56. Short
// slices 1 KB apart keep the overlapped blocks (16 x 16000: 0.53-0.57 against 0.61-0.62 in chunks).
constexpr std::size_t kColumnChunkBytes = 4096;

// Whether blocks of `width` slices go in chunks (see softmax_backward_col_chunk).
template <class T>
inline bool backward_in_chunks(const T* g, const T* v, const T* out, std::size_t len, std::size_t stride,
                               std::size_t width) {
  if (2 * 2 * len * width * sizeof(T) > kInterleavedBlocksBytes) return true;
  const auto near = [&](const T* a, const T* b) {
    const std::size_t d = (reinterpret_cast<std::uintptr_t>(a) - reinterpret_cast<std::uintptr_t>(b)) % 4096;
    return d < width * sizeof(T) || d > 4096 - width * sizeof(T);
  };
  return stride * sizeof(T) % 2048 == 0 && (near(g, v) || near(g, out) || near(v, out));
}

template <class V, bool kLog>
void softmax_backward_col_chunk(const Elem<V>* g, const Elem<V>* v, Elem<V>* out, std::size_t len,
                                std::size_t stride, std::size_t nv) {
  using T = Elem<V>;
  constexpr std::size_t N = V::N;
  thread_local std::vector<WideSum<V>> sums;
  thread_local std::vector<T> factors;
  sums.assign(nv, WideSum<V>());
  factors.resize(nv * N);
  WideSum<V>* const sum = sums.data();
  T* const f = factors.data();
  // Terms j and j + len/2 paired, as in softmax_backward_sum.
  const std::size_t half = len / 2;
  for (std::size_t j = 0; j < half; ++j) {
    const T *g1 = g + j * stride, *g2 = g1 + half * stride, *v1 = v + j * stride, *v2 = v1 + half * stride;
    for (std::size_t q = 0; q < nv; ++q) {
      add_backward_pair<V, kLog>(sum[q], V::load(g1 + q * N), V::load(v1 + q * N), V::load(g2 + q * N),
                                 V::load(v2 + q * N));
    }
  }
  if (len % 2 != 0) {
    const T *g1 = g + (len - 1) * stride, *v1 = v + (len - 1) * stride;
    for (std::size_t q = 0; q < nv; ++q) add_backward_term<V, kLog>(sum[q], V::load(g1 + q * N), V::load(v1 + q * N));
  }
  for (std::size_t q = 0; q < nv; ++q) store(f + q * N, rounded_lanes(sum[q]));
  for (std::size_t j = 0; j < len; ++j) {
    const T *g1 = g + j * stride, *v1 = v + j * stride;
    T* o1 = out + j * stride;
    for (std::size_t q = 0; q < nv; ++q) {
      store(o1 + q * N, softmax_backward_grad<V, kLog>(V::load(g1 + q * N), V::load(v1 + q * N), V::load(f + q * N)));
    }
  }
}

// Runs blocks_k(count) over the first `count` blocks of K*N columns, block_1(c) over N columns at a
// time after them, and narrow(c, count) over the last width % N columns, too few to fill a vector.
template <class V, std::size_t K, class Blocks, class Block, class Narrow>
inline void for_column_blocks(std::size_t width, Blocks blocks_k, Block block_1, Narrow narrow) {
  constexpr std::size_t N = V::N;
  const std::size_t count = width / (K * N);
  if (count != 0) blocks_k(count);
  std::size_t c = count * K * N;
  for (; c + N <= width; c += N) block_1(c);
  if (c < width) narrow(c, width - c);
}

constexpr std::size_t kColumnVectors = 4;

// A reusable per-thread scratch buffer for single columns (no allocation per call).
template <class T>
inline T* column_scratch(std::size_t n) {
  thread_local std::vector<T> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// A block's rows are one stride apart. When that is a multiple of 1 KB (rows of 256 or 1024 floats),
// they fall in a few of L1's 64 sets (and of L2's), which hold fewer lines than the block: every
// pass over the block then misses to L3 (axis 0 of 256 x 1024 floats ran at 0.9 Gelem/s, 256 x 1000
// at 1.9). Such blocks are first copied to contiguous rows, if the copy fits in L2: softmax along
// axis 0 of 64 x 4096, 256 x 4096 and 2048 x 1024 floats 1.4-1.7x faster. Other strides are left
// alone: their rows spread over the sets, and the copy would only add a pass. The backward ops are
// not packed: with two passes, not three, the copy lost as much as it gained (0.64-1.95x).
constexpr std::size_t kPackedBlockBytes = std::size_t{256} << 10;

// Rows j < len of width elements (a multiple of N), stride apart, to contiguous rows in buf.
// The rows ahead are prefetched (here at aliasing strides too, unlike RowPrefetch: the copy reads each
// row once, so no line in use is evicted): each row starts a new page when the stride is 4 KB or more,
// where the hardware prefetchers stop, and the copy would otherwise wait on L3 once per row.
template <class V>
inline void pack_rows(const Elem<V>* x, std::size_t len, std::size_t stride, std::size_t width, Elem<V>* buf) {
  for (std::size_t j = 0; j < len; ++j) {
    if (j + kRowsAhead < len) prefetch_span(x + (j + kRowsAhead) * stride, width);
    for (std::size_t k = 0; k < width; k += V::N) store(buf + j * width + k, V::load(x + j * stride + k));
  }
}

template <class V, std::size_t K>
inline bool pack_block(std::size_t len, std::size_t stride) {
  constexpr std::size_t W = K * V::N;
  const std::size_t bytes = len * W * sizeof(Elem<V>);
  return stride * sizeof(Elem<V>) % kAliasingStrideBytes == 0 && bytes <= kPackedBlockBytes;
}

template <class V, bool kLog, std::size_t K>
void softmax_col_block_maybe_packed(const Elem<V>* x, Elem<V>* y, std::size_t len, std::size_t stride) {
  using T = Elem<V>;
  constexpr std::size_t W = K * V::N;
  if (!pack_block<V, K>(len, stride)) return softmax_col_block<V, kLog, K>(x, y, len, stride, y, stride);
  // softmax keeps exp in the packed copy of x; log_softmax still reads x in its last pass.
  T* buf = column_scratch<T>((kLog ? 2 : 1) * len * W);
  pack_rows<V>(x, len, stride, W, buf);
  softmax_col_block<V, kLog, K>(buf, kLog ? buf + len * W : buf, len, W, y, stride);
}

// Fewer than N slices whose rows are contiguous (len rows of w < N elements, e.g. axis 0 of a
// 100000 x 3 array): the array is read as flat vectors, lane l of the vector at offset i holding
// slice (i + l) mod w. That lane-to-slice map repeats every lcm(w, N) elements, so nv = lcm / N
// vectors of per-lane maxima, sums and factors cover every slice. Element j of a slice pairs with
// j + len/2, as in the row kernel: len/2 rows apart is len/2 * w elements, the same lanes of the
// same map, so results are the row kernel's. (The gather into rows, reduce and scatter this replaces
// ran at 2.7 TSC cycles per element on 100000 x 3 floats, against 1.1 for the row kernel alone.)
template <class V>
struct LanePattern {
  using T = Elem<V>;
  static constexpr std::size_t N = V::N;
  std::size_t w, nv, period;
  explicit LanePattern(std::size_t slices) : w(slices), nv(slices / std::gcd(slices, N)), period(nv * N) {}
  std::size_t slice(std::size_t v, std::size_t lane) const { return (v * N + lane) % w; }
  std::size_t next(std::size_t v) const { return v + 1 == nv ? 0 : v + 1; }
  // out[v] holds per_slice[slice(v, l)] in lane l.
  void spread(const T* per_slice, V* out) const {
    T lanes[N];
    for (std::size_t v = 0; v < nv; ++v) {
      for (std::size_t l = 0; l < N; ++l) lanes[l] = per_slice[slice(v, l)];
      out[v] = V::load(lanes);
    }
  }
  // Each slice's sum over its lanes of sums[0..nv), added by TwoSum (double lanes carry a compensation).
  void totals(const WideSum<V>* sums, double* per_slice) const {
    CompensatedSum acc[N];
    for (std::size_t v = 0; v < nv; ++v) {
      double lanes[WideSum<V>::kLanes], errs[WideSum<V>::kLanes];
      sums[v].store_lanes(lanes, errs);
      for (std::size_t l = 0; l < N; ++l) acc[slice(v, l)].add(lanes[l], errs[l]);
    }
    for (std::size_t c = 0; c < w; ++c) per_slice[c] = acc[c].value();
  }
  // For elements [0, len * w) in vectors: f(offset, n, v) for each vector of n <= N elements (n < N
  // only for the last), v its pattern vector.
  template <class F>
  void for_vectors(std::size_t total, F f) const {
    std::size_t i = 0, v = 0;
    for (; i + N <= total; i += N, v = next(v)) f(i, N, v);
    if (i < total) f(i, total - i, v);
  }
};

template <class V, bool kLog>
void softmax_narrow_cols(const Elem<V>* x, Elem<V>* y, std::size_t len, std::size_t w) {
  using T = Elem<V>;
  constexpr std::size_t N = V::N;
  constexpr T kInf = std::numeric_limits<T>::infinity();
  const LanePattern<V> lp(w);
  const std::size_t total = len * w, paired = len / 2 * w;

  // Pass 1: the max of each lane over the array, then of each slice over its lanes.
  V m[N];
  for (std::size_t v = 0; v < lp.nv; ++v) m[v] = splat<V>(-kInf);
  std::size_t i = 0;
  for (; i + lp.period <= total; i += lp.period)
    for (std::size_t v = 0; v < lp.nv; ++v) m[v] = max(V::load(x + i + v * N), m[v]);
  for (std::size_t v = 0; i < total; ++v, i += N) m[v] = max(load_tail<V>(x + i, std::min(N, total - i), -kInf), m[v]);
  T slice_max[N], shift_of[N];
  std::fill(slice_max, slice_max + w, -kInf);
  for (std::size_t v = 0; v < lp.nv; ++v) {
    T lanes[N];
    store(lanes, m[v]);
    for (std::size_t l = 0; l < N; ++l) {
      T& sm = slice_max[lp.slice(v, l)];
      if (std::isnan(lanes[l]) || lanes[l] > sm) sm = std::isnan(sm) ? sm : lanes[l];
    }
  }
  // A NaN, +inf, or all -inf slice is NaN (as in softmax_row_reduce); its shift is a stand-in.
  for (std::size_t c = 0; c < w; ++c) shift_of[c] = std::isfinite(slice_max[c]) ? slice_max[c] : T(0);
  V shift[N];
  lp.spread(shift_of, shift);

  // Pass 2: e = exp(x - max), elements len/2 rows apart paired; e kept in y for softmax.
  WideSum<V> sum[N];
  lp.for_vectors(paired, [&](std::size_t at, std::size_t n, std::size_t v) {
    const V e1 = exp<V, true>(load_tail<V>(x + at, n, -kInf) - shift[v]);
    const V e2 = exp<V, true>(load_tail<V>(x + at + paired, n, -kInf) - shift[v]);
    if constexpr (!kLog) store_tail(y + at, n, e1), store_tail(y + at + paired, n, e2);
    sum[v].add_pair(e1, e2);
  });
  if (len % 2 != 0) {  // the last row, alone: its lane l < w is slice l, as in pattern vector 0
    const std::size_t at = (len - 1) * w;
    const V e = exp<V, true>(load_tail<V>(x + at, w, -kInf) - shift[0]);
    if constexpr (!kLog) store_tail(y + at, w, e);
    sum[0].add(e);
  }
  double slice_sum[N];
  lp.totals(sum, slice_sum);

  // Pass 3: e scaled (or x - max - log(sum)) by its slice's factor; NaN slices filled last.
  T factor_of[N];
  softmax_factors<T, kLog>(slice_sum, factor_of, w);
  V factor[N];
  lp.spread(factor_of, factor);
  lp.for_vectors(total, [&](std::size_t at, std::size_t n, std::size_t v) {
    if constexpr (kLog) {
      store_tail(y + at, n, (load_tail<V>(x + at, n, 0) - shift[v]) - factor[v]);
    } else {
      store_tail(y + at, n, normalize(load_tail<V>(y + at, n, 0), factor[v]));
    }
  });
  for (std::size_t c = 0; c < w; ++c) {
    if (std::isfinite(slice_max[c]) && !std::isnan(slice_sum[c])) continue;
    for (std::size_t j = 0; j < len; ++j) y[j * w + c] = std::numeric_limits<T>::quiet_NaN();
  }
}

// The backward ops over the same layout: pass 1 sums g * y (log_softmax: g) in the row kernel's
// pairs, pass 2 applies softmax_backward_apply's formula with each lane's slice sum.
template <class V, bool kLog>
void softmax_backward_narrow_cols(const Elem<V>* g, const Elem<V>* y, Elem<V>* out, std::size_t len, std::size_t w) {
  using T = Elem<V>;
  constexpr std::size_t N = V::N;
  const LanePattern<V> lp(w);
  const std::size_t total = len * w, paired = len / 2 * w;
  WideSum<V> sum[N];
  lp.for_vectors(paired, [&](std::size_t at, std::size_t n, std::size_t v) {
    add_backward_pair<V, kLog>(sum[v], load_tail<V>(g + at, n, 0), load_tail<V>(y + at, n, 0),
                               load_tail<V>(g + at + paired, n, 0), load_tail<V>(y + at + paired, n, 0));
  });
  if (len % 2 != 0) {
    const std::size_t at = (len - 1) * w;
    add_backward_term<V, kLog>(sum[0], load_tail<V>(g + at, w, 0), load_tail<V>(y + at, w, 0));
  }
  double slice_sum[N];
  lp.totals(sum, slice_sum);
  T sum_of[N];
  for (std::size_t c = 0; c < w; ++c) sum_of[c] = static_cast<T>(slice_sum[c]);
  V s[N];
  lp.spread(sum_of, s);
  lp.for_vectors(total, [&](std::size_t at, std::size_t n, std::size_t v) {
    const V gv = load_tail<V>(g + at, n, 0), yv = load_tail<V>(y + at, n, 0);
    store_tail(out + at, n, softmax_backward_grad<V, kLog>(gv, yv, s[v]));
  });
}

// The last columns, too few to fill a vector, go in one partial vector (masked where the target has
// masked loads and stores). Gathered into contiguous slices for the row kernel and scattered back,
// as they were, they cost more than the rest of the array: axis 0 of 1024 x 250 floats, the last 10
// columns, backward 1.6 against 0.6 TSC cycles per element for 1024 x 256.
template <class V, bool kLog>
void softmax_cols_kernel(const Elem<V>* x, Elem<V>* y, std::size_t len, std::size_t width, std::size_t stride) {
  for_column_blocks<V, kColumnVectors>(
      width,
      [&](std::size_t count) {
        constexpr std::size_t W = kColumnVectors * V::N;
        for (std::size_t c = 0; c < count * W; c += W)
          softmax_col_block_maybe_packed<V, kLog, kColumnVectors>(x + c, y + c, len, stride);
      },
      [&](std::size_t c) { softmax_col_block_maybe_packed<V, kLog, 1>(x + c, y + c, len, stride); },
      [&](std::size_t c, std::size_t rem) {
        if constexpr (V::N > 1) {  // (one-lane targets have no narrow blocks)
          if (c == 0 && rem == stride) return softmax_narrow_cols<V, kLog>(x, y, len, rem);
        }
        softmax_col_block<V, kLog, 1, true>(x + c, y + c, len, stride, y + c, stride, {rem});
      });
}

template <class V, bool kLog>
void softmax_backward_cols_kernel(const Elem<V>* g, const Elem<V>* v, Elem<V>* out, std::size_t len,
                                  std::size_t width, std::size_t stride) {
  for_column_blocks<V, kColumnVectors>(
      width,
      [&](std::size_t count) {
        constexpr std::size_t W = kColumnVectors * V::N, chunk = kColumnChunkBytes / sizeof(Elem<V>) / V::N;
        if (!backward_in_chunks(g, v, out, len, stride, W)) {
          return softmax_backward_col_blocks<V, kLog, kColumnVectors>(g, v, out, len, stride, count);
        }
        for (std::size_t q = 0, nv = count * kColumnVectors; q < nv; q += chunk) {
          softmax_backward_col_chunk<V, kLog>(g + q * V::N, v + q * V::N, out + q * V::N, len, stride,
                                              std::min(chunk, nv - q));
        }
      },
      [&](std::size_t c) { softmax_backward_col_block<V, kLog, 1>(g + c, v + c, out + c, len, stride); },
      [&](std::size_t c, std::size_t rem) {
        if constexpr (V::N > 1) {
          if (c == 0 && rem == stride) return softmax_backward_narrow_cols<V, kLog>(g, v, out, len, rem);
        }
        softmax_backward_col_block<V, kLog, 1, true>(g + c, v + c, out + c, len, stride, {rem});
      });
}

}  // namespace FASTACT_NS
}  // namespace fastact
