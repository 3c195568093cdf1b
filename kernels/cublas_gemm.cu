// cublas_gemm.cu — row-major products on column-major cuBLAS.
//
// cuBLAS reads a matrix as column-major. A row-major R x C array with leading dimension C is,
// read column-major, its transpose: a C x R matrix with leading dimension C. So each row-major
// product below is issued as the column-major product of the transposes, worked out at each call.
//
// A bf16 product with scratch rounds its operands into BF16 arrays first: for W2's forward
// (X [8000, 16384], W [16384, 16384]) that reads 1.6 GB and writes 0.8 GB, ~0.5 ms at the H200's
// 4.8 TB/s, against ~5.4 ms for the product at ~790 TFLOP/s of BF16 (predicted, not measured;
// the FP32 arrays ran at 277 TFLOP/s, 15.5 ms).
#include <cuda_bf16.h>

#include <algorithm>

#include "cublas_gemm.cuh"
#include "cuda_check.cuh"
#include "launch.cuh"
#include "nmsnn/error.hpp"

namespace nmsnn::kernels {

namespace {

size_t aligned(size_t bytes) { return (bytes + 255) / 256 * 256; }

__global__ void round_to_bf16_kernel(const float* x, size_t n, __nv_bfloat16* out) {
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < n;
       e += size_t(gridDim.x) * blockDim.x)
    out[e] = __float2bfloat16(x[e]);
}

// x[0..n) rounded to nearest even BF16 into out, on the handle's stream.
void round_to_bf16(cublasHandle_t handle, const float* x, size_t n, __nv_bfloat16* out) {
  cudaStream_t stream = nullptr;
  const cublasStatus_t status = cublasGetStream(handle, &stream);
  if (status != CUBLAS_STATUS_SUCCESS)
    ::nmsnn::detail::fail("cublasGetStream failed at ", __FILE__, ": ",
                          cublasGetStatusName(status));
  constexpr int kBlock = 256;
  round_to_bf16_kernel<<<grid_stride_for((long long)n, kBlock), kBlock, 0, stream>>>(x, n, out);
  NMSNN_CHECK_LAUNCH("round_to_bf16", "n=", n);
}

// C (column-major m x n, ldc) = op(A) (m x k) · op(B) (k x n). a_count and b_count: the floats
// of A's and B's arrays (their rows times their leading dimensions).
void gemm(cublasHandle_t handle, MatmulPrecision math, cublasOperation_t op_a, cublasOperation_t op_b,
          int m, int n, int k, const float* A, int lda, const float* B, int ldb, float* C, int ldc,
          size_t a_count, size_t b_count, Bf16Operands bf16, const char* what, int M, int N, int K,
          const char* line) {
  if (M < 1 || N < 1 || K < 1)
    ::nmsnn::detail::fail(what, ": matrix sizes must be >= 1, got M=", M, ", N=", N, ", K=", K);
  const float alpha = 1.0f, beta = 0.0f;
  const void* a = A;
  const void* b = B;
  cudaDataType operands = CUDA_R_32F;
  // FP32 arrays: the FAST compute types let cuBLAS round the operands to TF32 or BF16 for the
  // tensor cores; the sums are FP32 in every case.
  cublasComputeType_t compute = math == MatmulPrecision::tf32   ? CUBLAS_COMPUTE_32F_FAST_TF32
                                : math == MatmulPrecision::bf16 ? CUBLAS_COMPUTE_32F_FAST_16BF
                                                                : CUBLAS_COMPUTE_32F;
  if (math == MatmulPrecision::bf16 && bf16.data) {
    const size_t need = aligned(a_count * 2) + aligned(b_count * 2);
    if (bf16.bytes < need)
      ::nmsnn::detail::fail(what, ": the BF16 operands of ", line, " with M=", M, ", N=", N,
                            ", K=", K, " need ", need, " bytes of scratch, got ", bf16.bytes);
    auto* a16 = static_cast<__nv_bfloat16*>(bf16.data);
    auto* b16 = reinterpret_cast<__nv_bfloat16*>(static_cast<char*>(bf16.data) +
                                                 aligned(a_count * 2));
    if (!bf16.rounded) {
      round_to_bf16(handle, A, a_count, a16);
      round_to_bf16(handle, B, b_count, b16);
    }
    a = a16, b = b16;
    operands = CUDA_R_16BF;
    compute = CUBLAS_COMPUTE_32F;
  }
  const cublasStatus_t status =
      cublasGemmEx(handle, op_a, op_b, m, n, k, &alpha, a, operands, lda, b, operands, ldb,
                   &beta, C, CUDA_R_32F, ldc, compute, CUBLAS_GEMM_DEFAULT);
  if (status != CUBLAS_STATUS_SUCCESS)
    ::nmsnn::detail::fail("cublasGemmEx for ", what, " (", line, " with M=", M, ", N=", N,
                          ", K=", K, ", ", to_string(math), ") failed at ",
                          __FILE__, ": ", cublasGetStatusName(status), " (",
                          cublasGetStatusString(status), ")");
}

}  // namespace

size_t gemm_bf16_bytes(long long M, int N, int K) {
  const size_t x = aligned(size_t(M) * size_t(K) * 2), w = aligned(size_t(N) * size_t(K) * 2);
  const size_t dy = aligned(size_t(M) * size_t(N) * 2);
  return std::max({x + w, dy + x, dy + w});
}

void gemm_forward(cublasHandle_t handle, MatmulPrecision math, int M, int N, int K, const float* X,
                  const float* W, float* Y, const char* what, Bf16Operands bf16) {
  // Row-major Y[M, N] = X[M, K] W[N, K]^T is column-major Y^T (N x M) = W (N x K) · X^T (K x M).
  // Column-major reads: W's array is W^T (K x N, ld K), so op T gives W; X's array is X^T
  // (K x M, ld K), op N. Y's array as column-major is Y^T (N x M, ld N).
  gemm(handle, math, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, W, K, X, K, Y, N, size_t(N) * K,
       size_t(M) * K, bf16, what, M, N, K, "Y[M,N] = X[M,K] W[N,K]^T");
}

void gemm_weight_grad(cublasHandle_t handle, MatmulPrecision math, int M, int N, int K, const float* dY,
                      const float* X, float* dW, const char* what, Bf16Operands bf16) {
  // Row-major dW[N, K] = dY[M, N]^T X[M, K] is column-major dW^T (K x N) = X^T (K x M) · dY (M x N).
  // X's array is X^T (K x M, ld K): op N. dY's array is dY^T (N x M, ld N): op T gives dY.
  // dW's array as column-major is dW^T (K x N, ld K).
  gemm(handle, math, CUBLAS_OP_N, CUBLAS_OP_T, K, N, M, X, K, dY, N, dW, K, size_t(M) * K,
       size_t(M) * N, bf16, what, M, N, K, "dW[N,K] = dY[M,N]^T X[M,K]");
}

void gemm_input_grad(cublasHandle_t handle, MatmulPrecision math, int M, int N, int K, const float* dY,
                     const float* W, float* dX, const char* what, Bf16Operands bf16) {
  // Row-major dX[M, K] = dY[M, N] W[N, K] is column-major dX^T (K x M) = W^T (K x N) · dY^T (N x M).
  // W's array is W^T (K x N, ld K): op N. dY's array is dY^T (N x M, ld N): op N.
  // dX's array as column-major is dX^T (K x M, ld K).
  gemm(handle, math, CUBLAS_OP_N, CUBLAS_OP_N, K, M, N, W, K, dY, N, dX, K, size_t(N) * K,
       size_t(M) * N, bf16, what, M, N, K, "dX[M,K] = dY[M,N] W[N,K]");
}

}  // namespace nmsnn::kernels
