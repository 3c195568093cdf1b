// optimizer_update.cuh — PyTorch's SGD and Adam updates on device arrays, one thread per value.
// CPU twins: nmsnn::sgd_update and nmsnn::adam_update (host/optimizer.cpp), the same arithmetic
// in the same order; the Adam bias corrections are computed on the host in double, as there.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "nmsnn/optimizer.hpp"

namespace nmsnn::kernels {

// param, grad, momentum_buffer: n floats each. `step` counts from 1. block_size: threads per
// block, a multiple of 32 in [32, 1024] (launch.cuh).
void sgd_update(const Sgd& sgd, float* param, const float* grad, float* momentum_buffer, size_t n,
                int64_t step, cudaStream_t stream, int block_size = 256);
void adam_update(const Adam& adam, float* param, const float* grad, float* m, float* v, size_t n,
                 int64_t step, cudaStream_t stream, int block_size = 256);

}  // namespace nmsnn::kernels
