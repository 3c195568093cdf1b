// float_bits.cuh — a float's bits as an integer, on the host and the device: the compact saved
// state (lif_saved.cuh) and the tensor-core operands (mma_sync.cuh) take them.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

namespace nmsnn::kernels {

// memcpy: defined behaviour in C++, a register move on the device.
__host__ __device__ inline uint32_t float_bits(float x) {
  uint32_t b;
  memcpy(&b, &x, sizeof b);
  return b;
}

}  // namespace nmsnn::kernels
