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

// Column c of part [rows, cols] into out[c], by one block: thread i sums rows i, i + blockDim.x,
// ... in order; the partial sums fold onto the largest power of two p <= blockDim.x (sums[i] +=
// sums[i + p]), then a fixed tree adds those. The array is sized for the largest block, so any
// valid block size works.
__device__ void column_sum(const float* part, int rows, int cols, int c, float* out) {
  __shared__ float sums[kMaxBlockSize];
  const int threads = int(blockDim.x);
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

// One block per column.
__global__ void bias_grad_reduce_kernel(const float* part, int rows, int cols, float* out) {
  column_sum(part, rows, cols, blockIdx.x, out);
}

// One block per column of sums.job[0], then of job[1], ...
struct ColumnSumsBatch {
  ColumnSums job[kMaxColumnSums];
  int count;
};
__global__ void bias_grad_reduce_batch_kernel(ColumnSumsBatch sums) {
  int c = blockIdx.x, j = 0;
  while (j + 1 < sums.count && c >= sums.job[j].cols) c -= sums.job[j++].cols;
  const ColumnSums& s = sums.job[j];
  column_sum(s.part, s.rows, s.cols, c, s.out);
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

void bias_grad_reduce_batch(const ColumnSums* sums, int count, cudaStream_t stream,
                            int block_size) {
  check_block_size("bias_grad_reduce_batch", block_size);
  if (count < 1 || count > kMaxColumnSums)
    ::nmsnn::detail::fail("bias_grad_reduce_batch: 1 to ", kMaxColumnSums, " sums, got ", count);
  ColumnSumsBatch batch{};
  batch.count = count;
  long long columns = 0;
  for (int j = 0; j < count; ++j) {
    if (sums[j].rows < 1 || sums[j].cols < 1)
      ::nmsnn::detail::fail("bias_grad_reduce_batch: rows and cols must be >= 1, got ",
                            sums[j].rows, ", ", sums[j].cols, " (sum ", j, ")");
    batch.job[j] = sums[j];
    columns += sums[j].cols;
  }
  if (columns > 0x7fffffffLL)
    ::nmsnn::detail::fail("bias_grad_reduce_batch: ", columns, " columns in all");
  bias_grad_reduce_batch_kernel<<<unsigned(columns), block_size, 0, stream>>>(batch);
  NMSNN_CHECK_LAUNCH("bias_grad_reduce_batch", count, " sums, ", columns, " columns");
}

}  // namespace nmsnn::kernels
