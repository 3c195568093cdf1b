// bias.cuh — a layer's bias on the device: added to every row of its output, and its gradient as
// the sum of per-row gradients in a fixed order (deterministic, no atomics).
// CPU twins: cpu/linear_layer.hpp (Dense) and cpu/lif_layer.hpp (spiking layers).
#pragma once

#include <cuda_runtime.h>

namespace nmsnn::kernels {

// y[r, c] += bias[c] for r < rows, c < cols (row-major).
// block_size: threads per block, a multiple of 32 in [32, 1024] (launch.cuh), here and below.
void add_bias(float* y, long long rows, int cols, const float* bias, cudaStream_t stream,
              int block_size = 256);

// out[c] = sum over r of part[r, c], r in increasing order per thread and a fixed tree across
// threads, so the same input at the same block size always gives the same bits (another block
// size adds in another order). Used for bias gradients (part = per sample or per row gradients)
// and the Lowpass parameters' per-sample partial sums.
void bias_grad_reduce(const float* part, int rows, int cols, float* out, cudaStream_t stream,
                      int block_size = 128);

// Up to kMaxColumnSums such sums in one launch, each out[c] the same bits as its own
// bias_grad_reduce at the same block size: for sums that are ready together (a spiking layer's
// bias, the weights and bias of the small layer above, all made in its backward loop; a
// Lowpass layer's two parameters), one launch instead of several.
struct ColumnSums {
  const float* part;  // [rows, cols]
  int rows, cols;
  float* out;  // [cols]
};
constexpr int kMaxColumnSums = 3;
void bias_grad_reduce_batch(const ColumnSums* sums, int count, cudaStream_t stream,
                            int block_size = 128);

}  // namespace nmsnn::kernels
