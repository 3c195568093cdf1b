// cublas_gemm.cuh — the three row-major matrix products of a dense layer, over all T*B rows at
// once, through cuBLAS (hidden layers, and the first layer under a given input sequence).
//
//   forward       Y[M, N]  = X[M, K] · W[N, K]^T      a = x W^T for every (t, b) row
//   weight grad   dW[N, K] = dY[M, N]^T · X[M, K]      summed over every t and b
//   input grad    dX[M, K] = dY[M, N] · W[N, K]
//
// Every matrix is row-major with its rows contiguous (leading dimension = its column count); W
// and dW are the public [neurons, inputs] layout. Each call overwrites its output (beta = 0).
// CPU twin: cpu/input_product.hpp (input_forward, input_weight_grad, input_grad).
#pragma once

#include <cublas_v2.h>

#include "nmsnn/matmul_precision.hpp"

namespace nmsnn::kernels {

// fp32: CUBLAS_COMPUTE_32F with the handle in CUBLAS_DEFAULT_MATH (IEEE FP32 products);
// tf32: CUBLAS_COMPUTE_32F_FAST_TF32 (tensor cores, TF32 inputs, FP32 accumulation);
// bf16: CUBLAS_COMPUTE_32F_FAST_16BF (tensor cores, BF16 inputs, FP32 accumulation). The
// operands and outputs are FP32 arrays in every case: cuBLAS rounds the operands as it loads them.
// `what` names the product in error messages ("layer 1 forward"). The handle must already be
// bound to the caller's stream, in host pointer mode (see CublasScope in host/cuda/cuda.cu).
void gemm_forward(cublasHandle_t handle, MatmulPrecision math, int M, int N, int K, const float* X,
                  const float* W, float* Y, const char* what);
void gemm_weight_grad(cublasHandle_t handle, MatmulPrecision math, int M, int N, int K, const float* dY,
                      const float* X, float* dW, const char* what);
void gemm_input_grad(cublasHandle_t handle, MatmulPrecision math, int M, int N, int K, const float* dY,
                     const float* W, float* dX, const char* what);

}  // namespace nmsnn::kernels
