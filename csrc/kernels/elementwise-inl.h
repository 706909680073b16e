// Elementwise activations and their gradients, written once over a vector type V.
// No include guard: included once per target inside namespace FASTACT_NS (see math-inl.h).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace fastact {
namespace FASTACT_NS {

// Outputs at least this large (per call, i.e. per thread's chunk) are written with streaming
// stores: far beyond the last-level cache, skipping the read-for-ownership of each output line
// saves a third of the memory traffic of a one-input op, as glibc's memcpy does at such sizes.
constexpr std::size_t kStreamingBytes = std::size_t{16} << 20;

// Where streaming stores can start: the number of leading elements (< N) before y is aligned
// to a whole vector, or n when y is not even element-aligned (then no streaming).
template <class V>
inline std::size_t streaming_start(const typename V::Elem* y, std::size_t n) {
  using T = typename V::Elem;
  if (n * sizeof(T) < kStreamingBytes) return n;
  const auto addr = reinterpret_cast<std::uintptr_t>(y);
  if (addr % sizeof(T)) return n;
  const std::size_t misaligned = (addr / sizeof(T)) % V::N;
  return misaligned ? V::N - misaligned : 0;
}

// x[0..n) (n <= N) in a vector whose other lanes are `pad`, and its first n lanes stored to y[0..n);
// nothing past n is read or written. n = N is a plain load or store. Masked loads and stores where
// the target has them, else a stack buffer: a vector load of a buffer just written element by
// element waits for the stores (no store forwarding), the hottest spot of short softmax rows.
template <class V>
inline FASTACT_INLINE V load_tail(const typename V::Elem* x, std::size_t n, typename V::Elem pad) {
  if (n == V::N) return V::load(x);
  if constexpr (V::has_masked_memory) {
    return load_partial(x, n, V::splat(pad));
  } else {
    typename V::Elem buf[V::N];
    for (std::size_t k = 0; k < V::N; ++k) buf[k] = k < n ? x[k] : pad;
    return V::load(buf);
  }
}

template <class V>
inline FASTACT_INLINE void store_tail(typename V::Elem* y, std::size_t n, V v) {
  if (n == V::N) return store(y, v);
  if constexpr (V::has_masked_memory) {
    store_partial(y, n, v);
  } else if constexpr (V::N > 1) {  // (one lane: n is 0 here)
    typename V::Elem buf[V::N];
    store(buf, v);
    std::memcpy(y, buf, n * sizeof(typename V::Elem));
  }
}

// out[0..n) = f(a[0..n)) for n < N, through a zero-padded vector, so the last elements get
// exactly the same arithmetic as the others.
template <class V, class F>
inline void map_unary_partial(const typename V::Elem* x, typename V::Elem* y, std::size_t n, F f) {
  if (n != 0) store_tail(y, n, f(load_tail<V>(x, n, 0)));
}

template <class V, class F>
inline void map_binary_partial(const typename V::Elem* a, const typename V::Elem* b, typename V::Elem* out,
                               std::size_t n, F f) {
  if (n != 0) store_tail(out, n, f(load_tail<V>(a, n, 0), load_tail<V>(b, n, 0)));
}

// y[i] = f(x[i]); y may equal x.
template <class V, class F>
inline void map_unary(const typename V::Elem* x, typename V::Elem* y, std::size_t n, F f) {
  constexpr std::size_t N = V::N;
  std::size_t i = 0;
  const std::size_t head = streaming_start<V>(y, n);
  if (head < n) {
    map_unary_partial<V>(x, y, head, f);
    for (i = head; i + N <= n; i += N) store_stream(y + i, f(V::load(x + i)));
    stream_fence();
  }
  for (; i + 2 * N <= n; i += 2 * N) {
    const V a = V::load(x + i), b = V::load(x + i + N);
    store(y + i, f(a));
    store(y + i + N, f(b));
  }
  for (; i + N <= n; i += N) store(y + i, f(V::load(x + i)));
  map_unary_partial<V>(x + i, y + i, n - i, f);
}

// Block length (elements) of the staged loops below: the stage buffer (1 KB for float) stays in L1.
constexpr std::size_t kStageBlock = 256;

// y[i] = finish(x[i], First::exact(x[i])); y may equal x. The two stages run as two loops over
// each block of kStageBlock elements rather than fused: one vector's exp-then-divide chain is ~70
// cycles long, and with only a few vectors in flight the out-of-order window, not the FP units,
// set the pace. Two shorter chains let it overlap more vectors (sigmoid: 17 -> 12 cycles per
// vector on Zen 3). The first stage runs its fast form over a block and redoes the block with
// exact() only if it says so (see math-inl.h), so results are bitwise those of the fused form,
// which the tail uses.
template <class V, class First, class Finish>
inline void map_unary_staged(const typename V::Elem* x, typename V::Elem* y, std::size_t n, Finish finish) {
  using T = typename V::Elem;
  constexpr std::size_t N = V::N;
  const auto fused = [&](V v) { return finish(v, First::exact(v)); };
  std::size_t i = 0;
  const std::size_t head = streaming_start<V>(y, n);
  const bool stream = head < n;
  if (stream) {
    map_unary_partial<V>(x, y, head, fused);
    i = head;
  }
  alignas(64) T stage[kStageBlock];
  while (i + N <= n) {
    const std::size_t len = std::min(kStageBlock, (n - i) / N * N);
    First first;
    for (std::size_t j = 0; j < len; j += N) store(stage + j, first.fast(V::load(x + i + j)));
    if (first.needs_exact()) {
      for (std::size_t j = 0; j < len; j += N) store(stage + j, First::exact(V::load(x + i + j)));
    }
    if (stream) {
      for (std::size_t j = 0; j < len; j += N) store_stream(y + i + j, finish(V::load(x + i + j), V::load(stage + j)));
    } else {
      for (std::size_t j = 0; j < len; j += N) store(y + i + j, finish(V::load(x + i + j), V::load(stage + j)));
    }
    i += len;
  }
  if (stream) stream_fence();
  map_unary_partial<V>(x + i, y + i, n - i, fused);
}

// out[i] = f(a[i], b[i]); out may equal either input.
template <class V, class F>
inline void map_binary(const typename V::Elem* a, const typename V::Elem* b, typename V::Elem* out,
                       std::size_t n, F f) {
  constexpr std::size_t N = V::N;
  std::size_t i = 0;
  const std::size_t head = streaming_start<V>(out, n);
  if (head < n) {
    map_binary_partial<V>(a, b, out, head, f);
    for (i = head; i + N <= n; i += N) store_stream(out + i, f(V::load(a + i), V::load(b + i)));
    stream_fence();
  }
  for (; i + 2 * N <= n; i += 2 * N) {
    const V a0 = V::load(a + i), b0 = V::load(b + i);
    const V a1 = V::load(a + i + N), b1 = V::load(b + i + N);
    store(out + i, f(a0, b0));
    store(out + i + N, f(a1, b1));
  }
  for (; i + N <= n; i += N) store(out + i, f(V::load(a + i), V::load(b + i)));
  map_binary_partial<V>(a + i, b + i, out + i, n - i, f);
}

// The formulas are PyTorch's, operation for operation, so results match it bit for bit.
template <class V>
void relu_kernel(const typename V::Elem* x, typename V::Elem* y, std::size_t n) {
  const V zero = splat<V>(0);
  map_unary<V>(x, y, n, [zero](V v) { return select(lt(v, zero), zero, v); });  // NaN, -0.0 pass
}

template <class V>
void leaky_relu_kernel(const typename V::Elem* x, typename V::Elem* y, std::size_t n,
                       typename V::Elem slope) {
  const V zero = splat<V>(0), s = splat<V>(slope);
  map_unary<V>(x, y, n, [zero, s](V v) { return select(gt(v, zero), v, v * s); });
}

template <class V>
void sigmoid_kernel(const typename V::Elem* x, typename V::Elem* y, std::size_t n) {
  map_unary_staged<V, SigmoidExp<V>>(x, y, n, [](V v, V e) { return sigmoid_finish(v, e); });
}

template <class V>
void tanh_kernel(const typename V::Elem* x, typename V::Elem* y, std::size_t n) {
  map_unary_staged<V, TanhExpm1<V>>(x, y, n, [](V v, V e) { return tanh_finish(v, e); });
}

// y <= 0 ? 0 : g: a select, so NaN or inf gradients pass where y > 0.
template <class V>
void relu_backward_kernel(const typename V::Elem* g, const typename V::Elem* y, typename V::Elem* out,
                          std::size_t n) {
  const V zero = splat<V>(0);
  map_binary<V>(g, y, out, n, [zero](V gv, V yv) { return select(le(yv, zero), zero, gv); });
}

template <class V>
void leaky_relu_backward_kernel(const typename V::Elem* g, const typename V::Elem* x,
                                typename V::Elem* out, std::size_t n, typename V::Elem slope) {
  const V zero = splat<V>(0), s = splat<V>(slope);
  map_binary<V>(g, x, out, n, [zero, s](V gv, V xv) { return select(gt(xv, zero), gv, gv * s); });
}

// g * (1 - y) * y, evaluated left to right.
template <class V>
void sigmoid_backward_kernel(const typename V::Elem* g, const typename V::Elem* y, typename V::Elem* out,
                             std::size_t n) {
  const V one = splat<V>(1);
  map_binary<V>(g, y, out, n, [one](V gv, V yv) { return (gv * (one - yv)) * yv; });
}

// g * fma(-y, y, 1): fused, as PyTorch's AVX2 build computes it, on every target.
template <class V>
void tanh_backward_kernel(const typename V::Elem* g, const typename V::Elem* y, typename V::Elem* out,
                          std::size_t n) {
  const V one = splat<V>(1), zero = splat<V>(0);
  map_binary<V>(g, y, out, n, [one, zero](V gv, V yv) { return gv * mul_add_exact(zero - yv, yv, one); });
}

}  // namespace FASTACT_NS
}  // namespace fastact
