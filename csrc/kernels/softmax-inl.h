// Softmax, log_softmax and their gradients over slices, written once over a vector type V.
// No include guard: included once per target inside namespace FASTACT_NS (see math-inl.h).
//
// Every slice is reduced by one call in a fixed order, so results do not depend on how the
// caller splits the work between threads. Sums are accumulated in double (float input too),
// so their error does not grow with the slice length.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

namespace fastact {
namespace FASTACT_NS {

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
  void add_product(V a, V b) {
    if constexpr (kFloat) {
      lo = mul_add(widen_lo(a), widen_lo(b), lo);
      hi = mul_add(widen_hi(a), widen_hi(b), hi);
    } else {
      const V p = a * b;
      add_compensated(p, F64::splat(0.0) - residual(p, a, b));  // a * b - p, exactly
    }
  }
  // Adds other's lanes into these (in double: its sum by TwoSum, its compensation to ours).
  void merge(const WideSum& other) {
    if constexpr (kFloat) {
      lo = lo + other.lo;
      hi = hi + other.hi;
    } else {
      add_compensated(other.lo, other.hi);
    }
  }
  double total() const { return reduce_add(sum()); }
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

  // lo + v by Knuth's TwoSum; its rounding error (and `err`, known to be lost from v) go to hi.
  void add_compensated(F64 v, F64 err) {
    const F64 s = lo + v;
    const F64 vv = s - lo;
    const F64 lost = (lo - (s - vv)) + (v - vv);
    lo = s;
    hi = hi + (lost + err);
  }
};

template <class V>
using Elem = typename V::Elem;

// A whole slice is NaN when it holds a NaN or +inf, or is entirely -inf (max is +-inf).
template <class T>
inline bool slice_is_nan(bool has_nan, T max) {
  return has_nan || std::isinf(max);
}

// Loads x[0..n) (n < N) into a vector padded with `pad`.
template <class V>
inline V load_tail(const Elem<V>* x, std::size_t n, Elem<V> pad) {
  Elem<V> buf[V::N];
  for (std::size_t k = 0; k < V::N; ++k) buf[k] = k < n ? x[k] : pad;
  return V::load(buf);
}

template <class V>
inline void store_tail(Elem<V>* y, std::size_t n, V v) {
  Elem<V> buf[V::N];
  store(buf, v);
  std::memcpy(y, buf, n * sizeof(Elem<V>));
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

// Three passes: max (4 accumulators); e = exp(x - max) stored and summed; scale (or, for
// log_softmax, x - max - log(sum)). softmax_row_reduce does the first two: it returns the sum
// (NaN for a NaN slice) and sets m to the max.
template <class V, bool kLog>
inline FASTACT_INLINE double softmax_row_reduce(const Elem<V>* x, Elem<V>* y, std::size_t len, Elem<V>& m) {
  using T = Elem<V>;
  constexpr std::size_t N = V::N;
  constexpr T kInf = std::numeric_limits<T>::infinity();
  const V ninf = splat<V>(-kInf);

  V m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf;
  auto bad = is_nan(splat<V>(0));
  std::size_t i = 0;
  for (; i + 4 * N <= len; i += 4 * N) {
    const V a = V::load(x + i), b = V::load(x + i + N), c = V::load(x + i + 2 * N), d = V::load(x + i + 3 * N);
    bad = mask_or(bad, mask_or(mask_or(is_nan(a), is_nan(b)), mask_or(is_nan(c), is_nan(d))));
    m0 = max(m0, a), m1 = max(m1, b), m2 = max(m2, c), m3 = max(m3, d);
  }
  for (; i + N <= len; i += N) {
    const V a = V::load(x + i);
    bad = mask_or(bad, is_nan(a));
    m0 = max(m0, a);
  }
  if (i < len) {
    const V a = load_tail<V>(x + i, len - i, -kInf);
    bad = mask_or(bad, is_nan(a));
    m0 = max(m0, a);
  }
  m = reduce_max(max(max(m0, m1), max(m2, m3)));
  if (slice_is_nan(any(bad), m)) return std::numeric_limits<double>::quiet_NaN();

  const V vm = splat<V>(m);
  WideSum<V> sum, sum2;  // two sums on long slices, so that consecutive adds do not wait on each other
  if (len < 16 * N) {
    // Short slices: one loop, one sum; a second loop and a merge would cost more than they save.
    for (i = 0; i + N <= len; i += N) {
      const V e = exp<V, true>(V::load(x + i) - vm);
      if constexpr (!kLog) store(y + i, e);
      sum.add(e);
    }
  } else if (!kLog || x != y) {
    // e is stored first and summed in a second, cheap loop over y (in L1 or L2): the exp chain
    // alone is short enough for the out-of-order window to overlap several vectors. log_softmax
    // borrows y for this unless y is x, which its last pass still reads.
    for (i = 0; i + N <= len; i += N) store(y + i, exp<V, true>(V::load(x + i) - vm));
    std::size_t k = 0;
    for (; k + 2 * N <= i; k += 2 * N) sum.add(V::load(y + k)), sum2.add(V::load(y + k + N));
    if (k < i) sum.add(V::load(y + k));
  } else {
    // The same vectors into the same sums as above, so in-place results equal out-of-place ones.
    for (i = 0; i + 2 * N <= len; i += 2 * N) {
      sum.add(exp<V, true>(V::load(x + i) - vm));
      sum2.add(exp<V, true>(V::load(x + i + N) - vm));
    }
    if (i + N <= len) sum.add(exp<V, true>(V::load(x + i) - vm)), i += N;
  }
  if (i < len) {
    const V e = exp<V, true>(load_tail<V>(x + i, len - i, -kInf) - vm);  // padding adds e = 0
    if constexpr (!kLog) store_tail(y + i, len - i, e);
    sum.add(e);
  }
  sum.merge(sum2);
  return sum.total();
}

// What the last pass applies: log(sum) for log_softmax, else normalizer(sum).
template <class T, bool kLog>
inline T softmax_row_factor(double total) {
  if constexpr (kLog) {
    return static_cast<T>(std::log(total));
  } else {
    return normalizer<T>(total);
  }
}

// The last pass, given the max, the sum and its factor; a NaN sum makes the slice NaN.
template <class V, bool kLog>
inline FASTACT_INLINE void softmax_row_apply(const Elem<V>* x, Elem<V>* y, std::size_t len, Elem<V> m, double total,
                                             Elem<V> factor) {
  using T = Elem<V>;
  constexpr std::size_t N = V::N;
  if (std::isnan(total)) {
    for (std::size_t k = 0; k < len; ++k) y[k] = std::numeric_limits<T>::quiet_NaN();
    return;
  }
  const V vm = splat<V>(m), f = splat<V>(factor);
  std::size_t i = 0;
  if constexpr (kLog) {
    for (; i + N <= len; i += N) store(y + i, (V::load(x + i) - vm) - f);
    if (i < len) store_tail(y + i, len - i, (load_tail<V>(x + i, len - i, 0) - vm) - f);
  } else {
    for (; i + N <= len; i += N) store(y + i, normalize(V::load(y + i), f));
    if (i < len) store_tail(y + i, len - i, normalize(load_tail<V>(y + i, len - i, 0), f));
  }
}

template <class V, bool kLog>
void softmax_row(const Elem<V>* x, Elem<V>* y, std::size_t len) {
  Elem<V> m;
  const double total = softmax_row_reduce<V, kLog>(x, y, len, m);
  softmax_row_apply<V, kLog>(x, y, len, m, total, softmax_row_factor<Elem<V>, kLog>(total));
}

template <class V, bool kLog>
void softmax_rows_kernel(const Elem<V>* x, Elem<V>* y, std::size_t rows, std::size_t len) {
  using T = Elem<V>;
  // Short rows in batches: the sums of kBatch rows, then their factors (a log or a division each,
  // in a scalar loop: a call to log between vector passes would spill every vector register),
  // then their outputs. Row by row, the chain of each row is long next to its work. Same
  // arithmetic per row as softmax_row.
  constexpr std::size_t kBatch = 8;
  if (len >= 16 * V::N) {
    for (std::size_t r = 0; r < rows; ++r) softmax_row<V, kLog>(x + r * len, y + r * len, len);
    return;
  }
  double totals[kBatch];
  T maxima[kBatch], factors[kBatch];
  for (std::size_t r0 = 0; r0 < rows; r0 += kBatch) {
    const std::size_t batch = std::min(kBatch, rows - r0);
    for (std::size_t k = 0; k < batch; ++k) {
      const std::size_t off = (r0 + k) * len;
      totals[k] = softmax_row_reduce<V, kLog>(x + off, y + off, len, maxima[k]);
    }
    for (std::size_t k = 0; k < batch; ++k) factors[k] = softmax_row_factor<T, kLog>(totals[k]);
    for (std::size_t k = 0; k < batch; ++k) {
      const std::size_t off = (r0 + k) * len;
      softmax_row_apply<V, kLog>(x + off, y + off, len, maxima[k], totals[k], factors[k]);
    }
  }
}

// grad of softmax: y * (g - sum(g * y)); of log_softmax: g - exp(log_y) * sum(g).
// The row's sum: sum(g * y), or sum(g) for log_softmax.
template <class V, bool kLog>
inline FASTACT_INLINE double softmax_backward_sum(const Elem<V>* g, const Elem<V>* v, std::size_t len) {
  constexpr std::size_t N = V::N;
  // Four accumulators on long rows: one chain of dependent adds would bound the pass by its
  // latency. (Named, not an array, so they stay in registers.) Products of floats are exact in
  // double, so the sum matches the column kernel's (layouts give the same bits).
  WideSum<V> s0, s1, s2, s3;
  auto accumulate = [](WideSum<V>& acc, V gv, V vv) {
    if constexpr (kLog) {
      (void)vv;
      acc.add(gv);
    } else {
      acc.add_product(gv, vv);
    }
  };
  std::size_t i = 0;
  const bool long_row = len >= 8 * N;
  if (long_row) {
    for (; i + 4 * N <= len; i += 4 * N) {
      accumulate(s0, V::load(g + i), V::load(v + i));
      accumulate(s1, V::load(g + i + N), V::load(v + i + N));
      accumulate(s2, V::load(g + i + 2 * N), V::load(v + i + 2 * N));
      accumulate(s3, V::load(g + i + 3 * N), V::load(v + i + 3 * N));
    }
  }
  for (; i + N <= len; i += N) accumulate(s0, V::load(g + i), V::load(v + i));
  if (i < len) accumulate(s0, load_tail<V>(g + i, len - i, 0), load_tail<V>(v + i, len - i, 0));
  return long_row ? (s0.total() + s1.total()) + (s2.total() + s3.total()) : s0.total();
}

// out = the gradient, given the row's sum.
template <class V, bool kLog>
inline FASTACT_INLINE void softmax_backward_apply(const Elem<V>* g, const Elem<V>* v, Elem<V>* out, std::size_t len, double total) {
  using T = Elem<V>;
  constexpr std::size_t N = V::N;
  const V s = splat<V>(static_cast<T>(total));
  auto f = [s](V gv, V vv) {
    if constexpr (kLog) {
      return gv - exp(vv) * s;
    } else {
      return vv * (gv - s);
    }
  };
  std::size_t i = 0;
  for (; i + N <= len; i += N) store(out + i, f(V::load(g + i), V::load(v + i)));
  if (i < len) store_tail(out + i, len - i, f(load_tail<V>(g + i, len - i, 0), load_tail<V>(v + i, len - i, 0)));
}

template <class V, bool kLog>
void softmax_backward_row(const Elem<V>* g, const Elem<V>* v, Elem<V>* out, std::size_t len) {
  softmax_backward_apply<V, kLog>(g, v, out, len, softmax_backward_sum<V, kLog>(g, v, len));
}

template <class V, bool kLog>
void softmax_backward_rows_kernel(const Elem<V>* g, const Elem<V>* v, Elem<V>* out, std::size_t rows,
                                  std::size_t len) {
  // Short rows in batches: the sums of kBatch rows, then their outputs. Row by row, each row's
  // chain (sum, horizontal add, then the second pass) is long next to its work and only a few rows
  // overlap; batched, the sums are independent of each other (rows of 16 floats, with the inlining:
  // 1.22 -> 1.01 TSC cycles per element).
  // The batch's rows stay in L1 between the two loops. Same arithmetic per row as unbatched.
  constexpr std::size_t kBatch = 8;
  if (len >= 16 * V::N) {
    for (std::size_t r = 0; r < rows; ++r) softmax_backward_row<V, kLog>(g + r * len, v + r * len, out + r * len, len);
    return;
  }
  double totals[kBatch];
  for (std::size_t r0 = 0; r0 < rows; r0 += kBatch) {
    const std::size_t batch = std::min(kBatch, rows - r0);
    for (std::size_t k = 0; k < batch; ++k) {
      const std::size_t off = (r0 + k) * len;
      totals[k] = softmax_backward_sum<V, kLog>(g + off, v + off, len);
    }
    for (std::size_t k = 0; k < batch; ++k) {
      const std::size_t off = (r0 + k) * len;
      softmax_backward_apply<V, kLog>(g + off, v + off, out + off, len, totals[k]);
    }
  }
}

// ---- K*N adjacent slices along a strided axis, one lane per slice ---------------------------

// Slice c's element j is at j * stride + c, c < K * N. The same three passes as softmax_row,
// each lane reducing its own slice; K vectors side by side so a pass reads whole cache lines.
template <class V, bool kLog, std::size_t K>
void softmax_col_block(const Elem<V>* x, Elem<V>* y, std::size_t len, std::size_t stride) {
  using T = Elem<V>;
  constexpr std::size_t N = V::N;
  constexpr T kInf = std::numeric_limits<T>::infinity();
  V m[K];
  WideSum<V> sum[K];
  for (std::size_t k = 0; k < K; ++k) m[k] = splat<V>(-kInf);
  V nan_lanes[K];
  for (std::size_t k = 0; k < K; ++k) nan_lanes[k] = splat<V>(0);

  for (std::size_t j = 0; j < len; ++j) {
    const T* row = x + j * stride;
    for (std::size_t k = 0; k < K; ++k) {
      const V a = V::load(row + k * N);
      nan_lanes[k] = select(is_nan(a), splat<V>(1), nan_lanes[k]);
      m[k] = max(m[k], a);
    }
  }
  for (std::size_t j = 0; j < len; ++j) {
    const T* row = x + j * stride;
    T* out = y + j * stride;
    for (std::size_t k = 0; k < K; ++k) {
      const V e = exp(V::load(row + k * N) - m[k]);
      if constexpr (!kLog) store(out + k * N, e);
      sum[k].add(e);
    }
  }
  // Per-lane finish: the scale (or log-sum) of each slice, NaN for a NaN slice.
  V scale[K];
  for (std::size_t k = 0; k < K; ++k) {
    T mk[N], nk[N], sk[N];
    double totals[WideSum<V>::kLanes];
    store(mk, m[k]);
    store(nk, nan_lanes[k]);
    sum[k].store_lanes(totals);
    for (std::size_t l = 0; l < N; ++l) {
      if (slice_is_nan(nk[l] != 0, mk[l])) {
        sk[l] = std::numeric_limits<T>::quiet_NaN();
      } else {
        sk[l] = kLog ? static_cast<T>(std::log(totals[l])) : normalizer<T>(totals[l]);
      }
    }
    scale[k] = V::load(sk);
  }
  for (std::size_t j = 0; j < len; ++j) {
    const T* row = x + j * stride;
    T* out = y + j * stride;
    for (std::size_t k = 0; k < K; ++k) {
      if constexpr (kLog) {
        store(out + k * N, (V::load(row + k * N) - m[k]) - scale[k]);
      } else {
        store(out + k * N, normalize(V::load(out + k * N), scale[k]));
      }
    }
  }
}

template <class V, bool kLog, std::size_t K>
void softmax_backward_col_block(const Elem<V>* g, const Elem<V>* v, Elem<V>* out, std::size_t len,
                                std::size_t stride) {
  using T = Elem<V>;
  constexpr std::size_t N = V::N;
  WideSum<V> sum[K];
  for (std::size_t j = 0; j < len; ++j) {
    for (std::size_t k = 0; k < K; ++k) {
      const std::size_t at = j * stride + k * N;
      if constexpr (kLog) {
        sum[k].add(V::load(g + at));
      } else {
        sum[k].add_product(V::load(g + at), V::load(v + at));
      }
    }
  }
  V s[K];
  for (std::size_t k = 0; k < K; ++k) {
    double totals[WideSum<V>::kLanes];
    T sk[N];
    sum[k].store_lanes(totals);
    for (std::size_t l = 0; l < N; ++l) sk[l] = static_cast<T>(totals[l]);
    s[k] = V::load(sk);
  }
  for (std::size_t j = 0; j < len; ++j) {
    for (std::size_t k = 0; k < K; ++k) {
      const std::size_t at = j * stride + k * N;
      const V gv = V::load(g + at), vv = V::load(v + at);
      if constexpr (kLog) {
        store(out + at, gv - exp(vv) * s[k]);
      } else {
        store(out + at, vv * (gv - s[k]));
      }
    }
  }
}

// Runs `block` (K*N columns, and then N columns at a time) across `width` columns; the last
// width % N columns, too few to fill a vector, go to narrow(first column, count).
template <class V, std::size_t K, class Block, class Narrow, class Rest>
inline void for_column_blocks(std::size_t width, Block block_k, Narrow block_1, Rest narrow) {
  constexpr std::size_t N = V::N;
  std::size_t c = 0;
  for (; c + K * N <= width; c += K * N) block_k(c);
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

// Columns too few to fill a vector are gathered (all in one pass over their rows) into
// contiguous slices, reduced by the row kernel, and scattered back.
template <class V, bool kLog>
void softmax_cols_kernel(const Elem<V>* x, Elem<V>* y, std::size_t len, std::size_t width, std::size_t stride) {
  using T = Elem<V>;
  for_column_blocks<V, kColumnVectors>(
      width, [&](std::size_t c) { softmax_col_block<V, kLog, kColumnVectors>(x + c, y + c, len, stride); },
      [&](std::size_t c) { softmax_col_block<V, kLog, 1>(x + c, y + c, len, stride); },
      [&](std::size_t c, std::size_t rem) {
        T* buf = column_scratch<T>(rem * len);
        for (std::size_t j = 0; j < len; ++j)
          for (std::size_t l = 0; l < rem; ++l) buf[l * len + j] = x[j * stride + c + l];
        for (std::size_t l = 0; l < rem; ++l) softmax_row<V, kLog>(buf + l * len, buf + l * len, len);
        for (std::size_t j = 0; j < len; ++j)
          for (std::size_t l = 0; l < rem; ++l) y[j * stride + c + l] = buf[l * len + j];
      });
}

template <class V, bool kLog>
void softmax_backward_cols_kernel(const Elem<V>* g, const Elem<V>* v, Elem<V>* out, std::size_t len,
                                  std::size_t width, std::size_t stride) {
  using T = Elem<V>;
  for_column_blocks<V, kColumnVectors>(
      width,
      [&](std::size_t c) { softmax_backward_col_block<V, kLog, kColumnVectors>(g + c, v + c, out + c, len, stride); },
      [&](std::size_t c) { softmax_backward_col_block<V, kLog, 1>(g + c, v + c, out + c, len, stride); },
      [&](std::size_t c, std::size_t rem) {
        T* gb = column_scratch<T>(2 * rem * len);
        T* vb = gb + rem * len;
        for (std::size_t j = 0; j < len; ++j) {
          for (std::size_t l = 0; l < rem; ++l) {
            gb[l * len + j] = g[j * stride + c + l];
            vb[l * len + j] = v[j * stride + c + l];
          }
        }
        for (std::size_t l = 0; l < rem; ++l)
          softmax_backward_row<V, kLog>(gb + l * len, vb + l * len, gb + l * len, len);
        for (std::size_t j = 0; j < len; ++j)
          for (std::size_t l = 0; l < rem; ++l) out[j * stride + c + l] = gb[l * len + j];
      });
}

}  // namespace FASTACT_NS
}  // namespace fastact
