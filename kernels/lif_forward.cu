// lif_forward.cu — the spiking layer's forward time loop (see lif_forward.cuh for the math).
//
// One thread per neuron of one sample, (b, h) with h fastest, so a warp reads and writes 32
// consecutive floats at every step. The inputs a[t] do not depend on the state, so the loop
// loads four steps ahead before it runs them: four loads in flight per thread instead of one
// dependent load per step. Reads of a[t] all happen before the write of u[t] at the same address.
#include "cuda_check.cuh"
#include "launch.cuh"
#include "lif_forward.cuh"

namespace nmsnn::kernels {

namespace {

constexpr int kAhead = 4;  // steps loaded per group

template <ResetRule Rule>
__global__ void lif_forward_kernel(LifForwardArgs a, float decay, float threshold, float penalty,
                                   bool delay) {
  const long long n = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (n >= (long long)a.B * a.H) return;
  const int h = int(n % a.H);
  const size_t step = size_t(a.B) * a.H;  // from (t, b, h) to (t+1, b, h)
  const size_t at0 = size_t(n);           // (0, b, h): n = b*H + h
  const float bias = a.bias[h];
  const float scale_factor = penalty / threshold;
  const int T = a.T;

  if (delay) {  // nothing is returned before the first step has run
    if (a.spikes) a.spikes[at0] = 0.0f;
    if (a.trace_state) a.trace_state[at0] = 0.0f;
    if (a.trace_spikes) a.trace_spikes[at0] = 0.0f;
  }
  float v = 0.0f;        // v[t-1]
  float readout = 0.0f;  // sum of the returned state over t >= begin_eval
  float fired = 0.0f;    // steps with a spike (exact in float up to 2^24 steps)
  for (int t0 = 0; t0 < T; t0 += kAhead) {
    float in[kAhead];
#pragma unroll
    for (int j = 0; j < kAhead; ++j) in[j] = t0 + j < T ? a.u[at0 + size_t(t0 + j) * step] : 0.0f;
#pragma unroll
    for (int j = 0; j < kAhead; ++j) {
      const int t = t0 + j;
      if (t >= T) break;
      const float u = (in[j] + bias) + decay * v;
      const float s = fmaxf(u - threshold, 0.0f);
      const float g = s > 0.0f ? 1.0f : 0.0f;
      const float next = Rule == ResetRule::scale ? u - scale_factor * u * g : u - (penalty + s) * g;
      a.u[at0 + size_t(t) * step] = u;
      fired += g;
      const int out = delay ? t + 1 : t;  // the step that returns this step's (v, s)
      if (out < T) {
        const size_t at = at0 + size_t(out) * step;
        if (a.spikes) a.spikes[at] = s;
        if (a.trace_state) a.trace_state[at] = next;
        if (a.trace_spikes) a.trace_spikes[at] = s;
        if (out >= a.begin_eval) readout += next;
      }
      v = next;
    }
  }
  // The returned state at step 0 with delay is 0; leaving it out of the sum changes nothing.
  if (a.logits) a.logits[n] = readout * a.readout_scale;
  if (a.rates) a.rates[n] = fired / float(T);
}

}  // namespace

void lif_forward(const SpikingLayer& layer, const LifForwardArgs& args, cudaStream_t stream,
                 int block_size) {
  check_block_size("lif_forward", block_size);
  if (args.T < 1 || args.B < 1 || args.H < 1)
    ::nmsnn::detail::fail("lif_forward: T, B and H must be >= 1, got ", args.T, ", ", args.B,
                          ", ", args.H);
  const long long n = (long long)args.B * args.H;
  const unsigned blocks = grid_for(n, block_size);
  if (layer.reset == ResetRule::scale)
    lif_forward_kernel<ResetRule::scale><<<blocks, block_size, 0, stream>>>(
        args, layer.decay, layer.threshold, layer.penalty, layer.delay);
  else
    lif_forward_kernel<ResetRule::subtract><<<blocks, block_size, 0, stream>>>(
        args, layer.decay, layer.threshold, layer.penalty, layer.delay);
  NMSNN_CHECK_LAUNCH("lif_forward", "T=", args.T, ", B=", args.B, ", H=", args.H, ", reset ",
                     to_string(layer.reset), layer.delay ? ", delay" : ", no delay");
}

}  // namespace nmsnn::kernels
