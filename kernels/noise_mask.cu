// noise_mask.cu — writes the encoder's noise masks m[t, b, i], or the masked inputs
// m[t, b, i] * x[b, i], to device memory, one Philox block per thread (four features).
#include "cuda_check.cuh"
#include "launch.cuh"
#include "noise_mask.cuh"

namespace nmsnn::kernels {

__global__ void noise_mask_kernel(NoiseKey key, const float* x, int T, int B, int I, float* out) {
  const int quads = (I + 3) / 4;
  const long long n = (long long)T * B * quads;
  for (long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x; k < n;
       k += (long long)gridDim.x * blockDim.x) {
    const int q = int(k % quads);
    const int b = int((k / quads) % B);
    const int t = int(k / ((long long)quads * B));
    const Philox4x32 r = noise_block(key, uint32_t(q), uint32_t(b), uint32_t(t));
    for (int j = 0; j < 4 && 4 * q + j < I; ++j) {
      const float m = uniform_from_bits(r.v[j]);
      out[((long long)t * B + b) * I + 4 * q + j] = x ? m * x[(long long)b * I + 4 * q + j] : m;
    }
  }
}

namespace {
void launch(NoiseKey key, const float* x, int T, int B, int I, float* out, cudaStream_t stream,
            const char* what, int block_size) {
  check_block_size(what, block_size);
  if (T < 1 || B < 1 || I < 1)
    ::nmsnn::detail::fail(what, ": T, B and I must be >= 1, got ", T, ", ", B, ", ", I);
  const long long work = (long long)T * B * ((I + 3) / 4);
  noise_mask_kernel<<<grid_stride_for(work, block_size), block_size, 0, stream>>>(key, x, T, B, I,
                                                                                  out);
  NMSNN_CHECK_LAUNCH(what, "T=", T, ", B=", B, ", I=", I);
}
}  // namespace

void noise_mask(NoiseKey key, int T, int B, int I, float* out, cudaStream_t stream,
                int block_size) {
  launch(key, nullptr, T, B, I, out, stream, "noise_mask", block_size);
}

void masked_input(NoiseKey key, const float* x, int T, int B, int I, float* out,
                  cudaStream_t stream, int block_size) {
  launch(key, x, T, B, I, out, stream, "masked_input", block_size);
}

}  // namespace nmsnn::kernels
