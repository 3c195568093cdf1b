// wmma_shape.cuh — the WMMA fragment shape of each tensor-core operand type, for the kernel that
// multiplies with WMMA (sample_cluster.cu; the masked products use mma.sync, mma_sync.cuh): TF32
// operands are loaded from floats as m16n16k8 fragments and rounded there (round_tf32); BF16 ones
// are m16n16k16 fragments of values rounded when they were stored. Accumulation is FP32 in both.
// WMMA with TF32 or BF16 needs sm_80 or newer; the library is built for 80 and 90.
#pragma once

#include <cuda_bf16.h>
#include <mma.h>

#include <type_traits>

namespace nmsnn::kernels {

template <class T>
struct WmmaShape;
template <>
struct WmmaShape<float> {
  static constexpr int k = 8;
  using Precision = nvcuda::wmma::precision::tf32;
};
template <>
struct WmmaShape<__nv_bfloat16> {
  static constexpr int k = 16;
  using Precision = __nv_bfloat16;
};

// A fragment's elements rounded to TF32 where it holds floats (a TF32 operand fragment); nothing
// for a BF16 one.
template <class F>
__device__ inline void round_tf32(F& f) {
  using Element = std::remove_cv_t<std::remove_reference_t<decltype(f.x[0])>>;
  if constexpr (std::is_same<Element, float>::value) {
#pragma unroll
    for (int e = 0; e < f.num_elements; ++e) f.x[e] = nvcuda::wmma::__float_to_tf32(f.x[e]);
  }
}

}  // namespace nmsnn::kernels
