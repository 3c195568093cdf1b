// time_axis.cuh — sums over the time axis and broadcasts along it, for time-major [T, R] arrays
// (R = B * width): TemporalAvgPool, the readout of layers other than spiking layers, and inputs
// repeated at every step. CPU twins: cpu/temporal_pool_layer.hpp, the readout and
// write_input_grad of cpu/cpu_network.hpp.
#pragma once

#include <cuda_runtime.h>

namespace nmsnn::kernels {

// y[r] = scale * sum over t = begin .. T-1 of x[t, r], t in increasing order.
// block_size: threads per block, a multiple of 32 in [32, 1024] (launch.cuh).
void time_sum(const float* x, int T, long long R, int begin, float scale, float* y,
              cudaStream_t stream, int block_size = 256);

// x[t, r] = scale * y[r] for t >= begin, 0 for t < begin.
void time_broadcast(const float* y, int T, long long R, int begin, float scale, float* x,
                    cudaStream_t stream, int block_size = 256);

}  // namespace nmsnn::kernels
