// Softmax of float32 slices too long for the cache, in two passes (softmax-inl.h): the sizes and the
// one scalar step that joins the chunks of pass 1. Shared by the kernels, which run a slice's chunks
// in turn, and by ops.cpp, which runs them on threads: both join the same chunks in the same order,
// so the result does not depend on the thread count.
#pragma once
#include <cmath>
#include <cstddef>
#include <limits>

namespace fastact {

// float32 slices of at least 16 MB (4M elements) take the two-pass form. Measured (Zen 3: 512 KB L2,
// 32 MB L3; one thread, TSC cycles per element, three passes / two): softmax 1M elements 0.81x, 4M
// 1.08x, 16M 1.23x, 64M 1.38x; log_softmax 0.98x, 1.54x, 1.67x, 1.90x. Below, the slice stays in
// cache between passes and the second exp costs more than the traffic it saves.
inline constexpr std::size_t kOnlineMinLen = (std::size_t{16} << 20) / sizeof(float);

// Pass 1 works in chunks of this many elements, a fixed split (not one per thread).
inline constexpr std::size_t kOnlineChunk = std::size_t{1} << 20;

// One chunk's pass 1: its max and the sum of exp(x - max) over it, in double. A chunk of only -inf
// has max -inf and sum 0; one holding NaN or +inf has sum NaN.
struct OnlinePartial {
  float max;
  double sum;
};

// The slice's sum of exp(x - m), with m its max, from its chunks' partials in order; NaN for a NaN,
// +inf or all -inf slice.
inline double join_online_partials(const OnlinePartial* parts, std::size_t count, float& m) {
  m = -std::numeric_limits<float>::infinity();
  for (std::size_t c = 0; c < count; ++c) m = parts[c].max > m ? parts[c].max : m;
  if (!std::isfinite(m)) return std::numeric_limits<double>::quiet_NaN();
  double total = 0;
  for (std::size_t c = 0; c < count; ++c) total += parts[c].sum * std::exp(static_cast<double>(parts[c].max) - m);
  return total;
}

}  // namespace fastact
