// cublas_v2.h (emulated) — the cuBLAS calls nmsnn uses: handle state, and cublasGemmEx with
// cuBLAS's argument conventions and leading-dimension checks. CUBLAS_COMPUTE_32F is a reference
// product in double (within any FP32 summation order's bound); the tensor-core compute types are
// emulated as the GPU computes them: each FP32 operand rounded to nearest even, to TF32 (11
// significant bits) or BF16 (8), every product of two rounded operands exact in FP32, and the
// sum accumulated in FP32; so are BF16 operand arrays (CUDA_R_16BF) under CUBLAS_COMPUTE_32F.
#pragma once
#include "cuda_bf16.h"
#include "cuda_runtime.h"
typedef enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_INVALID_VALUE = 7 } cublasStatus_t;
typedef enum { CUBLAS_OP_N, CUBLAS_OP_T } cublasOperation_t;
typedef enum { CUBLAS_POINTER_MODE_HOST, CUBLAS_POINTER_MODE_DEVICE } cublasPointerMode_t;
typedef enum { CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3 } cublasMath_t;
typedef enum { CUBLAS_ATOMICS_NOT_ALLOWED, CUBLAS_ATOMICS_ALLOWED } cublasAtomicsMode_t;
typedef enum {
  CUBLAS_COMPUTE_32F,
  CUBLAS_COMPUTE_32F_FAST_16BF,
  CUBLAS_COMPUTE_32F_FAST_TF32
} cublasComputeType_t;
typedef enum { CUDA_R_32F, CUDA_R_16BF } cudaDataType;
typedef enum { CUBLAS_GEMM_DEFAULT = -1 } cublasGemmAlgo_t;
struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasPointerMode_t pm = CUBLAS_POINTER_MODE_HOST;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
  cublasAtomicsMode_t at = CUBLAS_ATOMICS_NOT_ALLOWED;
};
typedef cublasContext* cublasHandle_t;
inline cublasStatus_t cublasCreate(cublasHandle_t* h) {
  *h = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasDestroy(cublasHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
  h->stream = s;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasGetStream(cublasHandle_t h, cudaStream_t* s) {
  *s = h->stream;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetPointerMode(cublasHandle_t h, cublasPointerMode_t m) {
  h->pm = m;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasGetPointerMode(cublasHandle_t h, cublasPointerMode_t* m) {
  *m = h->pm;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) {
  h->math = m;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasGetMathMode(cublasHandle_t h, cublasMath_t* m) {
  *m = h->math;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetAtomicsMode(cublasHandle_t h, cublasAtomicsMode_t m) {
  h->at = m;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasGetAtomicsMode(cublasHandle_t h, cublasAtomicsMode_t* m) {
  *m = h->at;
  return CUBLAS_STATUS_SUCCESS;
}
namespace emulated {
// An FP32 operand as the tensor cores of `compute` see it.
inline float tensor_operand(float v, cublasComputeType_t compute) {
  if (compute == CUBLAS_COMPUTE_32F_FAST_16BF) return __bfloat162float(__float2bfloat16(v));
  if (compute != CUBLAS_COMPUTE_32F_FAST_TF32 || !std::isfinite(v)) return v;
  uint32_t u;  // TF32: keep 10 of the 23 stored mantissa bits, ties to even
  std::memcpy(&u, &v, 4);
  u = (u + 0xFFFu + ((u >> 13) & 1u)) & ~0x1FFFu;
  std::memcpy(&v, &u, 4);
  return v;
}
}  // namespace emulated
inline const char* cublasGetStatusName(cublasStatus_t) { return "CUBLAS_STATUS_EMULATED"; }
inline const char* cublasGetStatusString(cublasStatus_t) { return "emulated"; }
// C (m x n, ldc) = alpha op(A) op(B) + beta C, all column-major; checks the leading dimensions as
// cuBLAS does and that every element touched is inside its allocation.
// A and B are FP32 or BF16 arrays (the same type: nmsnn passes no mixed pair; BF16 operands
// are the tensor cores' with FP32 sums, under CUBLAS_COMPUTE_32F as on the GPU); C is FP32.
inline cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                   int m, int n, int k, const void* alpha, const void* A,
                                   cudaDataType atype, int lda, const void* B, cudaDataType btype,
                                   int ldb, const void* beta, void* C, cudaDataType ctype, int ldc,
                                   cublasComputeType_t compute, cublasGemmAlgo_t) {
  if (h->pm != CUBLAS_POINTER_MODE_HOST) return CUBLAS_STATUS_INVALID_VALUE;
  if (atype != btype || ctype != CUDA_R_32F) return CUBLAS_STATUS_INVALID_VALUE;
  const bool bf16 = atype == CUDA_R_16BF;
  if (bf16 && compute != CUBLAS_COMPUTE_32F) return CUBLAS_STATUS_INVALID_VALUE;
  const int arows = ta == CUBLAS_OP_N ? m : k, acols = ta == CUBLAS_OP_N ? k : m;
  const int brows = tb == CUBLAS_OP_N ? k : n, bcols = tb == CUBLAS_OP_N ? n : k;
  if (lda < std::max(1, arows) || ldb < std::max(1, brows) || ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  const size_t bytes = bf16 ? 2 : 4;
  emulated::check_range(A, (size_t(acols - 1) * lda + arows) * bytes, "cublasGemmEx A");
  emulated::check_range(B, (size_t(bcols - 1) * ldb + brows) * bytes, "cublasGemmEx B");
  emulated::check_range(C, (size_t(n - 1) * ldc + m) * 4, "cublasGemmEx C");
  const float a = *(const float*)alpha, b = *(const float*)beta;
  float* Cf = (float*)C;
  // Element e of an operand array, as a float.
  auto element = [bf16](const void* array, size_t e) {
    return bf16 ? __bfloat162float(static_cast<const __nv_bfloat16*>(array)[e])
                : static_cast<const float*>(array)[e];
  };
  // Queued on the handle's stream like any cuBLAS call: run now, or recorded while the stream
  // is captured into a graph (alpha and beta are read now, as in host pointer mode).
  emulated::enqueue(h->stream, [=] {
    const bool tensor = compute != CUBLAS_COMPUTE_32F || bf16;
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        double s = 0;
        float s32 = 0;  // the tensor cores' FP32 accumulator
        for (int p = 0; p < k; ++p) {
          const float av = element(A, ta == CUBLAS_OP_N ? size_t(p) * lda + i : size_t(i) * lda + p);
          const float bv = element(B, tb == CUBLAS_OP_N ? size_t(j) * ldb + p : size_t(p) * ldb + j);
          if (tensor)
            s32 += emulated::tensor_operand(av, compute) * emulated::tensor_operand(bv, compute);
          else
            s += double(av) * bv;
        }
        if (tensor) s = s32;
        float& c = Cf[size_t(j) * ldc + i];
        c = b == 0 ? float(a * s) : float(a * s + b * c);
      }
  });
  return CUBLAS_STATUS_SUCCESS;
}
