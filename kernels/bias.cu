// bias.cu — adding a bias to every row, and the deterministic column sums of its gradient.
#include "bias.cuh"
#include "launch.cuh"

namespace nmsnn::kernels {

namespace {

__global__ void add_bias_kernel(float* y, size_t count, int cols, const float* bias) {
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < count;
       e += size_t(gridDim.x) * blockDim.x)
    y[e] += bias[e % size_t(cols)];
}

// One block per column c: thread i sums rows i, i + blockDim.x, ... in order; the partial sums
// fold onto the largest power of two p <= blockDim.x (sums[i] += sums[i + p]), then a fixed tree
// adds those. The array is sized for the largest block, so any valid block size works.
__global__ void bias_grad_reduce_kernel(const float* part, int rows, int cols, float* out) {
  __shared__ float sums[kMaxBlockSize];
  const int threads = int(blockDim.x);
  const int c = blockIdx.x;
  float sum = 0.0f;
  for (int r = threadIdx.x; r < rows; r += threads) sum += part[size_t(r) * cols + c];
  sums[threadIdx.x] = sum;
  __syncthreads();
  int p = 1;
  while (2 * p <= threads) p *= 2;
  if (int(threadIdx.x) + p < threads) sums[threadIdx.x] += sums[threadIdx.x + p];
  __syncthreads();
  for (int width = p / 2; width > 0; width /= 2) {
    if (int(threadIdx.x) < width) sums[threadIdx.x] += sums[threadIdx.x + width];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[c] = sums[0];
}

}  // namespace

void add_bias(float* y, long long rows, int cols, const float* bias, cudaStream_t stream,
              int block_size) {
  check_block_size("add_bias", block_size);
  if (rows < 1 || cols < 1)
    ::nmsnn::detail::fail("add_bias: rows and cols must be >= 1, got ", rows, ", ", cols);
  const size_t count = size_t(rows) * size_t(cols);
  add_bias_kernel<<<grid_stride_for((long long)count, block_size), block_size, 0, stream>>>(
      y, count, cols, bias);
  NMSNN_CHECK_LAUNCH("add_bias", "rows=", rows, ", cols=", cols);
}

void bias_grad_reduce(const float* part, int rows, int cols, float* out, cudaStream_t stream,
                      int block_size) {
  check_block_size("bias_grad_reduce", block_size);
  if (rows < 1 || cols < 1)
    ::nmsnn::detail::fail("bias_grad_reduce: rows and cols must be >= 1, got ", rows, ", ", cols);
  bias_grad_reduce_kernel<<<unsigned(cols), block_size, 0, stream>>>(part, rows, cols, out);
  NMSNN_CHECK_LAUNCH("bias_grad_reduce", "rows=", rows, ", cols=", cols);
}

}  // namespace nmsnn::kernels
