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

// ---- the device-resident step's updates (kernels/train_step.cuh) -------------------------------
// The hyperparameters of one update as host/optimizer.cpp rounds them to float, made on the host
// (Adam's bias corrections in double, as there) and read by the kernel from device memory, so a
// step captured into a CUDA graph replays with the values its host writes for each step.
struct SgdFloats {
  float wd, momentum, keep, lr;  // keep = 1 - dampening
  int use_momentum, nesterov, first_step;
};
struct AdamFloats {
  float step_size, bias2_sqrt, b1, b2, one_minus_b1, one_minus_b2, eps, wd;
};
SgdFloats sgd_floats(const Sgd& sgd, int64_t step);
AdamFloats adam_floats(const Adam& adam, int64_t step);

// The same updates, guarded: nothing happens when *halt != 0 (a step that failed its checks);
// otherwise each value is first copied to prev (the parameters to go back to if this update
// fails) and *bad_index is lowered to the index of every parameter the update leaves not finite
// (the host starts it at ~0ull).
void sgd_update_guarded(const SgdFloats* floats, const int* halt, float* param, float* prev,
                        const float* grad, float* momentum_buffer, size_t n,
                        unsigned long long* bad_index, cudaStream_t stream, int block_size = 256);
void adam_update_guarded(const AdamFloats* floats, const int* halt, float* param, float* prev,
                         const float* grad, float* m, float* v, size_t n,
                         unsigned long long* bad_index, cudaStream_t stream, int block_size = 256);

}  // namespace nmsnn::kernels
