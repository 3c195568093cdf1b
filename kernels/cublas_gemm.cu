// cublas_gemm.cu — row-major products on column-major cuBLAS.
//
// cuBLAS reads a matrix as column-major. A row-major R x C array with leading dimension C is,
// read column-major, its transpose: a C x R matrix with leading dimension C. So each row-major
// product below is issued as the column-major product of the transposes, worked out at each call.
#include "cublas_gemm.cuh"
#include "nmsnn/error.hpp"

namespace nmsnn::kernels {

namespace {

// C (column-major m x n, ldc) = op(A) (m x k) · op(B) (k x n).
void gemm(cublasHandle_t handle, MatmulPrecision math, cublasOperation_t op_a, cublasOperation_t op_b,
          int m, int n, int k, const float* A, int lda, const float* B, int ldb, float* C, int ldc,
          const char* what, int M, int N, int K, const char* line) {
  if (M < 1 || N < 1 || K < 1)
    ::nmsnn::detail::fail(what, ": matrix sizes must be >= 1, got M=", M, ", N=", N, ", K=", K);
  const float alpha = 1.0f, beta = 0.0f;
  // The operands and the result stay FP32 in memory; the FAST compute types let cuBLAS round the
  // operands to TF32 or BF16 for the tensor cores and accumulate in FP32.
  const cublasComputeType_t compute = math == MatmulPrecision::tf32   ? CUBLAS_COMPUTE_32F_FAST_TF32
                                      : math == MatmulPrecision::bf16 ? CUBLAS_COMPUTE_32F_FAST_16BF
                                                                      : CUBLAS_COMPUTE_32F;
  const cublasStatus_t status =
      cublasGemmEx(handle, op_a, op_b, m, n, k, &alpha, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb,
                   &beta, C, CUDA_R_32F, ldc, compute, CUBLAS_GEMM_DEFAULT);
  if (status != CUBLAS_STATUS_SUCCESS)
    ::nmsnn::detail::fail("cublasGemmEx for ", what, " (", line, " with M=", M, ", N=", N,
                          ", K=", K, ", ", to_string(math), ") failed at ",
                          __FILE__, ": ", cublasGetStatusName(status), " (",
                          cublasGetStatusString(status), ")");
}

}  // namespace

void gemm_forward(cublasHandle_t handle, MatmulPrecision math, int M, int N, int K, const float* X,
                  const float* W, float* Y, const char* what) {
  // Row-major Y[M, N] = X[M, K] W[N, K]^T is column-major Y^T (N x M) = W (N x K) · X^T (K x M).
  // Column-major reads: W's array is W^T (K x N, ld K), so op T gives W; X's array is X^T
  // (K x M, ld K), op N. Y's array as column-major is Y^T (N x M, ld N).
  gemm(handle, math, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, W, K, X, K, Y, N, what, M, N, K,
       "Y[M,N] = X[M,K] W[N,K]^T");
}

void gemm_weight_grad(cublasHandle_t handle, MatmulPrecision math, int M, int N, int K, const float* dY,
                      const float* X, float* dW, const char* what) {
  // Row-major dW[N, K] = dY[M, N]^T X[M, K] is column-major dW^T (K x N) = X^T (K x M) · dY (M x N).
  // X's array is X^T (K x M, ld K): op N. dY's array is dY^T (N x M, ld N): op T gives dY.
  // dW's array as column-major is dW^T (K x N, ld K).
  gemm(handle, math, CUBLAS_OP_N, CUBLAS_OP_T, K, N, M, X, K, dY, N, dW, K, what, M, N, K,
       "dW[N,K] = dY[M,N]^T X[M,K]");
}

void gemm_input_grad(cublasHandle_t handle, MatmulPrecision math, int M, int N, int K, const float* dY,
                     const float* W, float* dX, const char* what) {
  // Row-major dX[M, K] = dY[M, N] W[N, K] is column-major dX^T (K x M) = W^T (K x N) · dY^T (N x M).
  // W's array is W^T (K x N, ld K): op N. dY's array is dY^T (N x M, ld N): op N.
  // dX's array as column-major is dX^T (K x M, ld K).
  gemm(handle, math, CUBLAS_OP_N, CUBLAS_OP_N, K, M, N, W, K, dY, N, dX, K, what, M, N, K,
       "dX[M,K] = dY[M,N] W[N,K]");
}

}  // namespace nmsnn::kernels
