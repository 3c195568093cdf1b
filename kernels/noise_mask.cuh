// noise_mask.cuh — the encoder's noise masks on the device. The fused products of layers with
// weights make masks in registers and never store them; these write them out, for tests and for
// networks whose first layer has no weights (an activation or filter straight on the input).
#pragma once

#include <cuda_runtime.h>

#include "nmsnn/philox.hpp"

namespace nmsnn::kernels {

// out[t, b, i] = noise_mask(key, t, b, i) for t < T, b < B, i < I, on `stream`. block_size:
// threads per block, a multiple of 32 in [32, 1024] (launch.cuh), here and below.
void noise_mask(NoiseKey key, int T, int B, int I, float* out, cudaStream_t stream,
                int block_size = 256);

// out[t, b, i] = noise_mask(key, t, b, i) * x[b, i]: the encoded input, x[B, I] on the device.
void masked_input(NoiseKey key, const float* x, int T, int B, int I, float* out,
                  cudaStream_t stream, int block_size = 256);

}  // namespace nmsnn::kernels
