// The kernel set one SIMD target provides: plain function pointers over contiguous memory,
// filled in by each target's translation unit (csrc/targets/kernels.cpp) and chosen at import.
#pragma once
#include <cstddef>

#include "online_softmax.h"

namespace fastact {

template <class T>
struct KernelSet {
  // y[i] = f(x[i]) for i < n; y may equal x.
  using Unary = void (*)(const T* x, T* y, std::size_t n);
  using UnaryParam = void (*)(const T* x, T* y, std::size_t n, T param);
  // out[i] = f(grad[i], v[i]); out may equal either input.
  using Binary = void (*)(const T* grad, const T* v, T* out, std::size_t n);
  using BinaryParam = void (*)(const T* grad, const T* v, T* out, std::size_t n, T param);
  // Softmax over `rows` contiguous slices of length `len` (slice r starts at r * len).
  using Rows = void (*)(const T* x, T* y, std::size_t rows, std::size_t len);
  // Softmax over `width` adjacent slices of length `len`: element j of slice c is at
  // j * stride + c. Vectorised across the slices, for reductions along a non-last axis.
  using Cols = void (*)(const T* x, T* y, std::size_t len, std::size_t width, std::size_t stride);
  using RowsBackward = void (*)(const T* grad, const T* v, T* out, std::size_t rows, std::size_t len);
  using ColsBackward = void (*)(const T* grad, const T* v, T* out, std::size_t len, std::size_t width,
                                std::size_t stride);

  Unary relu, sigmoid, tanh;
  UnaryParam leaky_relu;
  Binary relu_backward, sigmoid_backward, tanh_backward;
  BinaryParam leaky_relu_backward;
  Rows softmax_rows, log_softmax_rows;
  Cols softmax_cols, log_softmax_cols;
  RowsBackward softmax_backward_rows, log_softmax_backward_rows;
  ColsBackward softmax_backward_cols, log_softmax_backward_cols;
};

// Two-pass softmax of float32 slices too long for the cache (online_softmax.h): pass 1 over one
// chunk of a slice, and pass 2 over any part of it given the joined max and sum.
struct OnlineSoftmaxKernels {
  OnlinePartial (*partial)(const float* x, std::size_t n);
  void (*softmax_apply)(const float* x, float* y, std::size_t n, float max, double sum);
  void (*log_softmax_apply)(const float* x, float* y, std::size_t n, float max, double sum);
};

struct KernelTable {
  const char* name;
  KernelSet<float> f32;
  KernelSet<double> f64;
  OnlineSoftmaxKernels online;

  template <class T>
  const KernelSet<T>& get() const {
    if constexpr (sizeof(T) == sizeof(float)) {
      return f32;
    } else {
      return f64;
    }
  }
};

}  // namespace fastact
