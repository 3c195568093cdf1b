// activation.cuh — a non-spiking Activation layer on the device: y = f(x) element-wise over all
// steps, and its backward dx = f'(x) dy. CPU twin: cpu/activation_layer.hpp.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "nmsnn/spec.hpp"

namespace nmsnn::kernels {

// y[e] = f(x[e]) for e < n. y may equal x. block_size: threads per block, a multiple of 32 in
// [32, 1024] (launch.cuh), as for every wrapper below.
void activation_forward(ActivationKind kind, const float* x, size_t n, float* y,
                        cudaStream_t stream, int block_size = 256);
// dx[e] = f'(x[e]) * dy[e] for e < n. dx may equal dy.
void activation_backward(ActivationKind kind, const float* x, const float* dy, size_t n, float* dx,
                         cudaStream_t stream, int block_size = 256);

}  // namespace nmsnn::kernels
