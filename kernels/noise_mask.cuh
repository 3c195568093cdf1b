// noise_mask.cuh — the encoder's noise masks on the device. The fused products of layers with
// weights make masks in registers and never store them; these write them out, for tests and for
// networks whose first layer has no weights (an activation or filter straight on the input).
#pragma once

#include <cuda_runtime.h>

#include "nmsnn/philox.hpp"

namespace nmsnn::kernels {

// out[t, b, i] = noise_mask(key, t, b, i) for t < T, b < B, i < I, on `stream`.
void noise_mask(NoiseKey key, int T, int B, int I, float* out, cudaStream_t stream);

// out[t, b, i] = noise_mask(key, t, b, i) * x[b, i]: the encoded input, x[B, I] on the device.
void masked_input(NoiseKey key, const float* x, int T, int B, int I, float* out,
                  cudaStream_t stream);

}  // namespace nmsnn::kernels
