// One kernel set: compiled once per SIMD target by CMake (with that target's flags and
// FASTACT_TARGET_<NAME> defined), each copy in its own namespace, as Highway and PyTorch do.
#if defined(FASTACT_TARGET_SCALAR)
#include "simd/vec_scalar.h"
#define FASTACT_NS scalar
#elif defined(FASTACT_TARGET_SSE2)
#include "simd/vec_sse2.h"
#define FASTACT_NS sse2
#elif defined(FASTACT_TARGET_AVX2)
#include "simd/vec_avx2.h"
#define FASTACT_NS avx2
#elif defined(FASTACT_TARGET_AVX512)
#include "simd/vec_avx512.h"
#define FASTACT_NS avx512
#elif defined(FASTACT_TARGET_NEON)
#include "simd/vec_neon.h"
#define FASTACT_NS neon
#else
#error "define FASTACT_TARGET_<NAME> (see CMakeLists.txt)"
#endif

#include "kernels/kernel_table.h"
#include "kernels/math-inl.h"
#include "kernels/elementwise-inl.h"
#include "kernels/softmax-inl.h"

#define FASTACT_STR2(x) #x
#define FASTACT_STR(x) FASTACT_STR2(x)

namespace fastact {
namespace FASTACT_NS {

template <class V>
KernelSet<typename V::Elem> make_kernel_set() {
  KernelSet<typename V::Elem> k{};
  k.relu = relu_kernel<V>;
  k.leaky_relu = leaky_relu_kernel<V>;
  k.sigmoid = sigmoid_kernel<V>;
  k.tanh = tanh_kernel<V>;
  k.relu_backward = relu_backward_kernel<V>;
  k.leaky_relu_backward = leaky_relu_backward_kernel<V>;
  k.sigmoid_backward = sigmoid_backward_kernel<V>;
  k.tanh_backward = tanh_backward_kernel<V>;
  k.softmax_rows = softmax_rows_kernel<V, false>;
  k.log_softmax_rows = softmax_rows_kernel<V, true>;
  k.softmax_cols = softmax_cols_kernel<V, false>;
  k.log_softmax_cols = softmax_cols_kernel<V, true>;
  k.softmax_backward_rows = softmax_backward_rows_kernel<V, false>;
  k.log_softmax_backward_rows = softmax_backward_rows_kernel<V, true>;
  k.softmax_backward_cols = softmax_backward_cols_kernel<V, false>;
  k.log_softmax_backward_cols = softmax_backward_cols_kernel<V, true>;
  return k;
}

const KernelTable& kernel_table() {
  static const KernelTable table{
      FASTACT_STR(FASTACT_NS), make_kernel_set<F32>(), make_kernel_set<F64>(),
      {softmax_online_partial<F32>, softmax_online_apply<F32, false>, softmax_online_apply<F32, true>}};
  return table;
}

}  // namespace FASTACT_NS
}  // namespace fastact
