#include "ops.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "dispatch.h"
#include "kernels/online_softmax.h"
#include "parallel.h"

namespace fastact {
namespace {

// Chunk boundaries on 64-element multiples keep every chunk's vectors whole and cache-line
// aligned relative to the start; the split never changes results (elementwise math).
constexpr std::size_t kAlign = 64;

// Elements of softmax work below which a call stays on one thread (see parallel.h).
constexpr std::size_t kSoftmaxGrain = kGrainCompute;

// Column block width for reductions along a non-last axis: a multiple of every target's
// kernel block (4 vectors of up to 16 floats), small enough to spread across threads.
constexpr std::size_t kColumnBlock = 256;

}  // namespace

template <class T>
void run_unary(Unary op, const T* x, T* y, std::size_t n, T param) {
  const KernelSet<T>& k = active_target().get<T>();
  const bool memory_bound = op == Unary::relu || op == Unary::leaky_relu;
  parallel_for(n, memory_bound ? kGrainMemoryBound : kGrainCompute, kAlign, [&](std::size_t b, std::size_t e) {
    switch (op) {
      case Unary::relu: k.relu(x + b, y + b, e - b); break;
      case Unary::leaky_relu: k.leaky_relu(x + b, y + b, e - b, param); break;
      case Unary::sigmoid: k.sigmoid(x + b, y + b, e - b); break;
      case Unary::tanh: k.tanh(x + b, y + b, e - b); break;
    }
  });
}

template <class T>
void run_binary(Binary op, const T* grad, const T* v, T* out, std::size_t n, T param) {
  const KernelSet<T>& k = active_target().get<T>();
  parallel_for(n, kGrainMemoryBound, kAlign, [&](std::size_t b, std::size_t e) {
    switch (op) {
      case Binary::relu_backward: k.relu_backward(grad + b, v + b, out + b, e - b); break;
      case Binary::leaky_relu_backward: k.leaky_relu_backward(grad + b, v + b, out + b, e - b, param); break;
      case Binary::sigmoid_backward: k.sigmoid_backward(grad + b, v + b, out + b, e - b); break;
      case Binary::tanh_backward: k.tanh_backward(grad + b, v + b, out + b, e - b); break;
    }
  });
}

// Splits an (outer, len, inner) reduction into work items and runs them on the threads:
// rows(offset, count) for slices along the last axis (inner == 1), or cols(offset, width) for
// adjacent slices of a non-last axis, items of kColumnBlock slices. A thread's run of items in one
// outer index is one call, so the kernel sees all of its columns at once (the backward reads rows of
// up to 4 KB of them: softmax_backward_col_chunk). Each slice is reduced whole by one kernel call,
// with the same arithmetic in any block, so any split between threads gives the same bits.
template <class Rows, class Cols>
void for_slices(std::size_t outer, std::size_t len, std::size_t inner, Rows rows, Cols cols) {
  if (inner == 1) {
    const std::size_t grain = len >= kSoftmaxGrain ? 1 : kSoftmaxGrain / len;
    parallel_for(outer, grain, 1, [&](std::size_t b, std::size_t e) { rows(b * len, e - b); });
    return;
  }
  const std::size_t blocks = (inner + kColumnBlock - 1) / kColumnBlock;
  const std::size_t per_item = len * (inner < kColumnBlock ? inner : kColumnBlock);
  const std::size_t grain = per_item >= kSoftmaxGrain ? 1 : kSoftmaxGrain / per_item;
  parallel_for(outer * blocks, grain, 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t item = b; item < e;) {
      const std::size_t o = item / blocks, last = std::min(e, (o + 1) * blocks);
      const std::size_t c = (item - o * blocks) * kColumnBlock;
      cols(o * len * inner + c, std::min(inner, (last - o * blocks) * kColumnBlock) - c);
      item = last;
    }
  });
}

namespace {

// float32 rows too long for the cache (online_softmax.h), one at a time: pass 1's fixed chunks and
// then pass 2 split between the threads. The rows kernel runs the same chunks in turn (same bits).
void run_softmax_two_pass(bool log, const float* x, float* y, std::size_t rows, std::size_t len) {
  const OnlineSoftmaxKernels& k = active_target().online;
  const auto apply = log ? k.log_softmax_apply : k.softmax_apply;
  std::vector<OnlinePartial> parts((len + kOnlineChunk - 1) / kOnlineChunk);
  for (std::size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * len;
    float* yr = y + r * len;
    parallel_for(parts.size(), 1, 1, [&](std::size_t b, std::size_t e) {
      for (std::size_t c = b; c < e; ++c) {
        const std::size_t at = c * kOnlineChunk;
        parts[c] = k.partial(xr + at, std::min(kOnlineChunk, len - at));
      }
    });
    float m;
    const double total = join_online_partials(parts.data(), parts.size(), m);
    parallel_for(len, kGrainCompute, kAlign,
                 [&](std::size_t b, std::size_t e) { apply(xr + b, yr + b, e - b, m, total); });
  }
}

}  // namespace

template <class T>
void run_softmax(Softmax op, const T* x, T* y, std::size_t outer, std::size_t len, std::size_t inner) {
  const KernelSet<T>& k = active_target().get<T>();
  const bool log = op == Softmax::log_softmax;
  if constexpr (std::is_same_v<T, float>) {
    if (inner == 1 && len >= kOnlineMinLen) return run_softmax_two_pass(log, x, y, outer, len);
  }
  for_slices(
      outer, len, inner,
      [&](std::size_t at, std::size_t count) { (log ? k.log_softmax_rows : k.softmax_rows)(x + at, y + at, count, len); },
      [&](std::size_t at, std::size_t width) {
        (log ? k.log_softmax_cols : k.softmax_cols)(x + at, y + at, len, width, inner);
      });
}

template <class T>
void run_softmax_backward(Softmax op, const T* grad, const T* v, T* out, std::size_t outer, std::size_t len,
                          std::size_t inner) {
  const KernelSet<T>& k = active_target().get<T>();
  const bool log = op == Softmax::log_softmax;
  for_slices(
      outer, len, inner,
      [&](std::size_t at, std::size_t count) {
        (log ? k.log_softmax_backward_rows : k.softmax_backward_rows)(grad + at, v + at, out + at, count, len);
      },
      [&](std::size_t at, std::size_t width) {
        (log ? k.log_softmax_backward_cols : k.softmax_backward_cols)(grad + at, v + at, out + at, len, width, inner);
      });
}

template <class I>
void run_relu_integer(const I* x, I* y, std::size_t n) {
  parallel_for(n, kGrainMemoryBound, kAlign, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) y[i] = x[i] < I(0) ? I(0) : x[i];
  });
}

template void run_unary<float>(Unary, const float*, float*, std::size_t, float);
template void run_unary<double>(Unary, const double*, double*, std::size_t, double);
template void run_binary<float>(Binary, const float*, const float*, float*, std::size_t, float);
template void run_binary<double>(Binary, const double*, const double*, double*, std::size_t, double);
template void run_softmax<float>(Softmax, const float*, float*, std::size_t, std::size_t, std::size_t);
template void run_softmax<double>(Softmax, const double*, double*, std::size_t, std::size_t, std::size_t);
template void run_softmax_backward<float>(Softmax, const float*, const float*, float*, std::size_t, std::size_t,
                                          std::size_t);
template void run_softmax_backward<double>(Softmax, const double*, const double*, double*, std::size_t,
                                           std::size_t, std::size_t);
template void run_relu_integer<std::int8_t>(const std::int8_t*, std::int8_t*, std::size_t);
template void run_relu_integer<std::int16_t>(const std::int16_t*, std::int16_t*, std::size_t);
template void run_relu_integer<std::int32_t>(const std::int32_t*, std::int32_t*, std::size_t);
template void run_relu_integer<std::int64_t>(const std::int64_t*, std::int64_t*, std::size_t);
template void run_relu_integer<std::uint8_t>(const std::uint8_t*, std::uint8_t*, std::size_t);
template void run_relu_integer<std::uint16_t>(const std::uint16_t*, std::uint16_t*, std::size_t);
template void run_relu_integer<std::uint32_t>(const std::uint32_t*, std::uint32_t*, std::size_t);
template void run_relu_integer<std::uint64_t>(const std::uint64_t*, std::uint64_t*, std::size_t);

}  // namespace fastact
