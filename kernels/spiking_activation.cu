// spiking_activation.cu — SpikingActivation forward and backward (see spiking_activation.cuh).
//
// Forward: one thread per (b, h), h fastest, so a warp reads 32 consecutive floats per step; the
// voltage and the rate's running sum stay in registers for the whole loop. Backward has no
// recurrence (straight-through), so it is one thread per element.
#include "activation_math.cuh"
#include "launch.cuh"
#include "spiking_activation.cuh"

namespace nmsnn::kernels {

namespace {

__global__ void spiking_activation_forward_kernel(SpikingActivationForwardArgs a,
                                                  ActivationKind kind, float dt,
                                                  bool random_voltage, bool sequences) {
  const long long n = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (n >= (long long)a.B * a.H) return;
  const size_t step = size_t(a.B) * a.H;
  const int b = int(n / a.H), h = int(n % a.H);
  float v = 0.0f;
  if (a.spikes && random_voltage)
    v = uniform_from_bits(noise_block(a.voltage_key, uint32_t(h) >> 2, uint32_t(b), 0).v[h & 3]);
  float sum = 0.0f;
  for (int t = 0; t < a.T; ++t) {
    const float f = activate(kind, a.x[size_t(n) + size_t(t) * step]);
    float out = f;
    if (a.spikes) {
      // Rounded as the CPU engine's v += f * dt (no fused multiply-add), so both engines make
      // the same spikes away from the integer boundaries.
      v = __fadd_rn(v, __fmul_rn(f, dt));
      const float count = floorf(v);
      v -= count;
      out = count / dt;
    }
    sum += out;
    if (sequences || t == a.T - 1) {
      const size_t at = size_t(n) + (sequences ? size_t(t) * step : 0);
      a.y[at] = out;
      if (a.trace_state) a.trace_state[at] = a.spikes ? v : out;
    }
  }
  if (a.rates) a.rates[n] = sum / float(a.T);
}

__global__ void spiking_activation_backward_kernel(SpikingActivationBackwardArgs a,
                                                   ActivationKind kind, bool sequences,
                                                   float reg_scale, float target) {
  const size_t step = size_t(a.B) * a.H, count = size_t(a.T) * step;
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < count;
       e += size_t(gridDim.x) * blockDim.x) {
    const int t = int(e / step);
    const size_t n = e - size_t(t) * step;
    float dy = sequences ? a.dy[e] : (t == a.T - 1 ? a.dy[n] : 0.0f);
    // The regularizer weight * (rate - target)^2 / B with rate = mean_t y[t], through y[t].
    if (a.rates) dy += reg_scale * (a.rates[n] - target) / (float(a.B) * float(a.T));
    a.dx[e] = activate_grad(kind, a.x[e]) * dy;
  }
}

// Thread i sums elements i, i + blockDim.x, ... in order; then the partial sums fold onto the
// largest power of two p <= blockDim.x (sums[i] += sums[i + p]) and a fixed tree adds those.
// The array is sized for the largest block (8 KiB of doubles), so any valid block size works.
__global__ void rate_regularization_kernel(const float* rates, size_t count, float target,
                                           float weight, int B, bool accumulate, float* out) {
  __shared__ double sums[kMaxBlockSize];
  const unsigned threads = blockDim.x;
  double sum = 0;
  for (size_t e = threadIdx.x; e < count; e += threads) {
    const double d = double(rates[e]) - double(target);
    sum += d * d;
  }
  sums[threadIdx.x] = sum;
  __syncthreads();
  unsigned p = 1;
  while (2 * p <= threads) p *= 2;
  if (threadIdx.x + p < threads) sums[threadIdx.x] += sums[threadIdx.x + p];
  __syncthreads();
  for (unsigned width = p / 2; width > 0; width /= 2) {
    if (threadIdx.x < width) sums[threadIdx.x] += sums[threadIdx.x + width];
    __syncthreads();
  }
  if (threadIdx.x == 0)
    out[0] = float((accumulate ? double(out[0]) : 0.0) + double(weight) * sums[0] / B);
}

void check(const char* what, int T, int B, int H) {
  if (T < 1 || B < 1 || H < 1)
    ::nmsnn::detail::fail(what, ": T, B and H must be >= 1, got ", T, ", ", B, ", ", H);
}

}  // namespace

void spiking_activation_forward(const SpikingActivation& layer,
                                const SpikingActivationForwardArgs& args, cudaStream_t stream,
                                int block_size) {
  check_block_size("spiking_activation_forward", block_size);
  check("spiking_activation_forward", args.T, args.B, args.H);
  const long long n = (long long)args.B * args.H;
  spiking_activation_forward_kernel<<<grid_for(n, block_size), block_size, 0, stream>>>(
      args, layer.activation, layer.dt, layer.random_initial_voltage, layer.return_sequences);
  NMSNN_CHECK_LAUNCH("spiking_activation_forward", "T=", args.T, ", B=", args.B, ", H=", args.H,
                     ", dt=", layer.dt, args.spikes ? ", spiking" : ", activation (training)");
}

void spiking_activation_backward(const SpikingActivation& layer,
                                 const SpikingActivationBackwardArgs& args, cudaStream_t stream,
                                 int block_size) {
  check_block_size("spiking_activation_backward", block_size);
  check("spiking_activation_backward", args.T, args.B, args.H);
  if (layer.rate_weight > 0 && !args.rates)
    ::nmsnn::detail::fail("spiking_activation_backward: a regularized layer needs its rates");
  const long long count = (long long)args.T * args.B * args.H;
  SpikingActivationBackwardArgs a = args;
  if (!(layer.rate_weight > 0)) a.rates = nullptr;
  spiking_activation_backward_kernel<<<grid_stride_for(count, block_size), block_size, 0,
                                       stream>>>(
      a, layer.activation, layer.return_sequences, 2.0f * layer.rate_weight, layer.rate_target);
  NMSNN_CHECK_LAUNCH("spiking_activation_backward", "T=", args.T, ", B=", args.B, ", H=", args.H);
}

void rate_regularization_loss(const SpikingActivation& layer, const float* rates, int B, int H,
                              bool accumulate, float* out, cudaStream_t stream, int block_size) {
  check_block_size("rate_regularization_loss", block_size);
  check("rate_regularization_loss", 1, B, H);
  rate_regularization_kernel<<<1, block_size, 0, stream>>>(
      rates, size_t(B) * H, layer.rate_target, layer.rate_weight, B, accumulate, out);
  NMSNN_CHECK_LAUNCH("rate_regularization_loss", "B=", B, ", H=", H);
}

}  // namespace nmsnn::kernels
