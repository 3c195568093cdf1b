// nll_loss.cu — NLL of log_softmax per sample, one thread per sample (C is small: the classes).
#include "cuda_check.cuh"
#include "launch.cuh"
#include "nll_loss.cuh"

namespace nmsnn::kernels {

namespace {

__global__ void nll_log_softmax_kernel(const float* logits, const int* labels, int B, int C,
                                       float* dlogits, float* losses) {
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= B) return;
  const float* z = logits + size_t(b) * C;
  float* grad = dlogits + size_t(b) * C;
  const int label = labels[b];
  if (label < 0 || label >= C) {
    for (int c = 0; c < C; ++c) grad[c] = nanf("");
    if (losses) losses[b] = nanf("");
    return;
  }
  float m = z[0];
  for (int c = 1; c < C; ++c) m = fmaxf(m, z[c]);
  float sum = 0.0f;
  for (int c = 0; c < C; ++c) sum += expf(z[c] - m);
  const float log_sum = m + logf(sum);
  for (int c = 0; c < C; ++c)
    grad[c] = (expf(z[c] - log_sum) - (c == label ? 1.0f : 0.0f)) / float(B);
  if (losses) losses[b] = log_sum - z[label];
}

}  // namespace

void nll_log_softmax(const float* logits, const int* labels, int B, int C, float* dlogits,
                     float* losses, cudaStream_t stream, int block_size) {
  check_block_size("nll_log_softmax", block_size);
  if (B < 1 || C < 1) ::nmsnn::detail::fail("nll_log_softmax: B and C must be >= 1, got ", B, ", ", C);
  nll_log_softmax_kernel<<<grid_for(B, block_size), block_size, 0, stream>>>(logits, labels, B, C,
                                                                            dlogits, losses);
  NMSNN_CHECK_LAUNCH("nll_log_softmax", "B=", B, ", C=", C);
}

}  // namespace nmsnn::kernels
