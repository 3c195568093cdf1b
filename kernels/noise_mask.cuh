// noise_mask.cuh — the encoder's noise masks on the device (for tests and debugging; the fused
// kernels generate masks in registers and never store them).
#pragma once

#include <cuda_runtime.h>

#include "nmsnn/philox.hpp"

namespace nmsnn::kernels {

// out[t, b, i] = noise_mask(key, t, b, i) for t < T, b < B, i < I, on `stream`.
void noise_mask(NoiseKey key, int T, int B, int I, float* out, cudaStream_t stream);

}  // namespace nmsnn::kernels
