// lowpass.cu — the Lowpass filter's forward and backward time loops (see lowpass.cuh). One thread
// per (b, h), h fastest, so a warp reads and writes 32 consecutive floats per step.
#include "launch.cuh"
#include "lowpass.cuh"

namespace nmsnn::kernels {

namespace {

__device__ inline float smoothing_of(float p) { return 1.0f / (1.0f + expf(-p)); }

__global__ void lowpass_forward_kernel(LowpassForwardArgs a) {
  const long long n = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (n >= (long long)a.B * a.H) return;
  const size_t step = size_t(a.B) * a.H;
  const int h = int(n % a.H);
  const float sm = smoothing_of(a.p[h]);
  float level = a.initial[h];
  for (int t = 0; t < a.T; ++t) {
    const size_t at = size_t(n) + size_t(t) * step;
    level = (1.0f - sm) * a.x[at] + sm * level;
    if (a.level) a.level[at] = level;
    if (a.return_sequences)
      a.y[at] = level;
    else if (t == a.T - 1)
      a.y[n] = level;
  }
}

__global__ void lowpass_backward_kernel(LowpassBackwardArgs a) {
  const long long n = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (n >= (long long)a.B * a.H) return;
  const size_t step = size_t(a.B) * a.H;
  const int h = int(n % a.H);
  const float sm = smoothing_of(a.p[h]);
  float G = 0.0f, dsm = 0.0f;
  for (int t = a.T - 1; t >= 0; --t) {
    const size_t at = size_t(n) + size_t(t) * step;
    const float dy = a.return_sequences ? a.dy[at] : (t == a.T - 1 ? a.dy[n] : 0.0f);
    G = dy + sm * G;
    const float prev = t == 0 ? a.initial[h] : a.level[at - step];
    dsm += G * (prev - a.x[at]);
    if (a.dx) a.dx[at] = (1.0f - sm) * G;
  }
  a.dp_part[n] = dsm * sm * (1.0f - sm);
  a.dinitial_part[n] = sm * G;  // G now holds dL/dlevel[0]
}

void check(const char* what, int T, int B, int H) {
  if (T < 1 || B < 1 || H < 1)
    ::nmsnn::detail::fail(what, ": T, B and H must be >= 1, got ", T, ", ", B, ", ", H);
}

}  // namespace

void lowpass_forward(const LowpassForwardArgs& args, cudaStream_t stream, int block_size) {
  check_block_size("lowpass_forward", block_size);
  check("lowpass_forward", args.T, args.B, args.H);
  const long long n = (long long)args.B * args.H;
  lowpass_forward_kernel<<<grid_for(n, block_size), block_size, 0, stream>>>(args);
  NMSNN_CHECK_LAUNCH("lowpass_forward", "T=", args.T, ", B=", args.B, ", H=", args.H);
}

void lowpass_backward(const LowpassBackwardArgs& args, cudaStream_t stream, int block_size) {
  check_block_size("lowpass_backward", block_size);
  check("lowpass_backward", args.T, args.B, args.H);
  const long long n = (long long)args.B * args.H;
  lowpass_backward_kernel<<<grid_for(n, block_size), block_size, 0, stream>>>(args);
  NMSNN_CHECK_LAUNCH("lowpass_backward", "T=", args.T, ", B=", args.B, ", H=", args.H);
}

}  // namespace nmsnn::kernels
