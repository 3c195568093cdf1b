// time_axis.cu — time sums and broadcasts (see time_axis.cuh). One thread per column r, so a warp
// reads 32 consecutive floats at every step.
#include "launch.cuh"
#include "time_axis.cuh"

namespace nmsnn::kernels {

namespace {

__global__ void time_sum_kernel(const float* x, int T, long long R, int begin, float scale,
                                float* y) {
  for (long long r = blockIdx.x * (long long)blockDim.x + threadIdx.x; r < R;
       r += (long long)gridDim.x * blockDim.x) {
    float sum = 0.0f;
    for (int t = begin; t < T; ++t) sum += x[size_t(t) * R + r];
    y[r] = sum * scale;
  }
}

__global__ void time_broadcast_kernel(const float* y, int T, long long R, int begin, float scale,
                                      float* x) {
  const size_t count = size_t(T) * R;
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < count;
       e += size_t(gridDim.x) * blockDim.x) {
    const int t = int(e / size_t(R));
    x[e] = t >= begin ? scale * y[e - size_t(t) * R] : 0.0f;
  }
}

void check(const char* what, int T, long long R, int begin) {
  if (T < 1 || R < 1 || begin < 0 || begin >= T)
    ::nmsnn::detail::fail(what, ": need T >= 1, R >= 1 and 0 <= begin < T, got T=", T, ", R=", R,
                          ", begin=", begin);
}

}  // namespace

void time_sum(const float* x, int T, long long R, int begin, float scale, float* y,
              cudaStream_t stream, int block_size) {
  check_block_size("time_sum", block_size);
  check("time_sum", T, R, begin);
  time_sum_kernel<<<grid_stride_for(R, block_size), block_size, 0, stream>>>(x, T, R, begin, scale,
                                                                            y);
  NMSNN_CHECK_LAUNCH("time_sum", "T=", T, ", R=", R, ", begin=", begin);
}

void time_broadcast(const float* y, int T, long long R, int begin, float scale, float* x,
                    cudaStream_t stream, int block_size) {
  check_block_size("time_broadcast", block_size);
  check("time_broadcast", T, R, begin);
  const long long count = (long long)T * R;
  time_broadcast_kernel<<<grid_stride_for(count, block_size), block_size, 0, stream>>>(
      y, T, R, begin, scale, x);
  NMSNN_CHECK_LAUNCH("time_broadcast", "T=", T, ", R=", R, ", begin=", begin);
}

}  // namespace nmsnn::kernels
