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

#include <cstddef>

#include "nmsnn/matmul_precision.hpp"

namespace nmsnn::kernels {

// Device memory where a bf16 product puts its two operands as BF16 arrays (at least
// gemm_bf16_bytes of the product's shape), or none. `rounded`: they are there already, left by
// an earlier call of the same product on the same operands and memory (bench_cuda's floor, which
// times the products alone).
struct Bf16Operands {
  void* data = nullptr;
  size_t bytes = 0;
  bool rounded = false;
};
// The bytes any of the three products of shape (M, N, K) needs for its BF16 operands (the
// largest pair of X [M, K], W [N, K] and dY [M, N]), each array 256-byte aligned.
size_t gemm_bf16_bytes(long long M, int N, int K);

// fp32: CUBLAS_COMPUTE_32F with the handle in CUBLAS_DEFAULT_MATH (IEEE FP32 products);
// tf32: CUBLAS_COMPUTE_32F_FAST_TF32 (tensor cores, TF32 inputs, FP32 accumulation);
// bf16: tensor cores, BF16 inputs, FP32 accumulation. With `bf16` scratch, both operands are
//   rounded to BF16 arrays there first (to nearest even) and the product reads those
//   (CUDA_R_16BF, CUBLAS_COMPUTE_32F): half the bytes, and BF16's tensor-core rate. Without it,
//   cuBLAS rounds FP32 arrays as it loads them (CUBLAS_COMPUTE_32F_FAST_16BF), which the H200
//   ran at TF32's rate (277 TFLOP/s on W2, 2026-12-04). The same rounded operands either way.
// Outputs are FP32 arrays. `what` names the product in error messages ("layer 1 forward"). The
// handle must already be bound to the caller's stream, in host pointer mode (see CublasScope in
// host/cuda/cuda.cu); the conversions run on that stream.
void gemm_forward(cublasHandle_t handle, MatmulPrecision math, int M, int N, int K, const float* X,
                  const float* W, float* Y, const char* what, Bf16Operands bf16 = {});
void gemm_weight_grad(cublasHandle_t handle, MatmulPrecision math, int M, int N, int K, const float* dY,
                      const float* X, float* dW, const char* what, Bf16Operands bf16 = {});
void gemm_input_grad(cublasHandle_t handle, MatmulPrecision math, int M, int N, int K, const float* dY,
                     const float* W, float* dX, const char* what, Bf16Operands bf16 = {});

}  // namespace nmsnn::kernels
