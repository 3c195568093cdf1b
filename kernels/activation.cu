// activation.cu — element-wise activation forward and backward (see activation.cuh).
#include "activation.cuh"
#include "activation_math.cuh"
#include "launch.cuh"

namespace nmsnn::kernels {

namespace {

__global__ void activation_forward_kernel(ActivationKind kind, const float* x, size_t n, float* y) {
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < n;
       e += size_t(gridDim.x) * blockDim.x)
    y[e] = activate(kind, x[e]);
}

__global__ void activation_backward_kernel(ActivationKind kind, const float* x, const float* dy,
                                           size_t n, float* dx) {
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < n;
       e += size_t(gridDim.x) * blockDim.x)
    dx[e] = activate_grad(kind, x[e]) * dy[e];
}

}  // namespace

void activation_forward(ActivationKind kind, const float* x, size_t n, float* y,
                        cudaStream_t stream, int block_size) {
  check_block_size("activation_forward", block_size);
  if (n == 0) return;
  activation_forward_kernel<<<grid_stride_for((long long)n, block_size), block_size, 0, stream>>>(
      kind, x, n, y);
  NMSNN_CHECK_LAUNCH("activation_forward", "n=", n, ", ", to_string(kind));
}

void activation_backward(ActivationKind kind, const float* x, const float* dy, size_t n, float* dx,
                         cudaStream_t stream, int block_size) {
  check_block_size("activation_backward", block_size);
  if (n == 0) return;
  activation_backward_kernel<<<grid_stride_for((long long)n, block_size), block_size, 0, stream>>>(
      kind, x, dy, n, dx);
  NMSNN_CHECK_LAUNCH("activation_backward", "n=", n, ", ", to_string(kind));
}

}  // namespace nmsnn::kernels
