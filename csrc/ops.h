// The operations the bindings call: contiguous buffers in, the active SIMD target's kernels
// run over them, split between threads where the size pays for it. No Python here.
#pragma once
#include <cstddef>

namespace fastact {

enum class Unary { relu, leaky_relu, sigmoid, tanh };
enum class Binary { relu_backward, leaky_relu_backward, sigmoid_backward, tanh_backward };
enum class Softmax { softmax, log_softmax };

// y[i] = op(x[i]) for i < n; `param` is leaky_relu's slope. y may equal x.
template <class T>
void run_unary(Unary op, const T* x, T* y, std::size_t n, T param);

// out[i] = op(grad[i], v[i]). out may equal an input.
template <class T>
void run_binary(Binary op, const T* grad, const T* v, T* out, std::size_t n, T param);

// x, y: C-contiguous (outer, len, inner) blocks; the reduction runs along `len`.
template <class T>
void run_softmax(Softmax op, const T* x, T* y, std::size_t outer, std::size_t len, std::size_t inner);

// grad, v, out laid out as in run_softmax; v is softmax(x) (or log_softmax(x)).
template <class T>
void run_softmax_backward(Softmax op, const T* grad, const T* v, T* out, std::size_t outer, std::size_t len,
                          std::size_t inner);

// relu for integer dtypes (which keep their dtype, as in torch and np.maximum).
template <class I>
void run_relu_integer(const I* x, I* y, std::size_t n);

}  // namespace fastact
