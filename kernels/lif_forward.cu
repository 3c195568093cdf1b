// lif_forward.cu — the spiking layer's forward time loop (see lif_forward.cuh for the math).
//
// One thread per neuron of one sample, (b, h) with h fastest, so a warp reads and writes 32
// consecutive floats at every step. The inputs a[t] do not depend on the state, so the loop
// loads 16 steps ahead before it runs them: 16 loads in flight per thread instead of one
// dependent load per step (a small layer, the seed's 10-neuron output with 10,000 threads, waits
// one DRAM round trip per 16 steps; it took 4 until 2026-12-03). Reads of a[t] all happen
// before the writes of u[t] and of what step t returns, so the returned spikes may overwrite a
// (lif_forward.cuh).
//
// Bytes moved per neuron-step (hidden layer, training): read a (4), write the returned spike
// (4), and keep u in place of a (4): 12 with the FP32 saved state; with the compact one the
// spike16 code (2) or the gate bit (1/8) replaces u: 10 or 8.1. An inference pass keeps
// nothing (write_u = false): 8.
#include "cuda_check.cuh"
#include "launch.cuh"
#include "lif_forward.cuh"
#include "lif_saved.cuh"

namespace nmsnn::kernels {

namespace {

constexpr int kAhead = 16;  // steps loaded per group (registers: 16 floats)

template <ResetRule Rule>
__global__ void lif_forward_kernel(LifForwardArgs a, float decay, float threshold, float penalty,
                                   bool delay) {
  const long long n = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (n >= (long long)a.B * a.H) return;
  const int h = int(n % a.H);
  const size_t step = size_t(a.B) * a.H;  // from (t, b, h) to (t+1, b, h)
  const size_t at0 = size_t(n);           // (0, b, h): n = b*H + h
  const float bias = a.bias ? a.bias[h] : 0.0f;
  const float* current = a.a ? a.a : a.u;  // a[t]
  const float scale_factor = penalty / threshold;
  const int T = a.T;

  float v = 0.0f;        // v[t-1]
  float s_last = 0.0f;   // s[t-1]: with delay, (v[t-1], s[t-1]) is what step t returns
  float readout = 0.0f;  // sum of the returned state over t >= begin_eval
  float fired = 0.0f;    // steps with a spike (exact in float up to 2^24 steps)
  uint32_t gates = 0;    // this word's gate bits so far (compact state of a last layer)
  for (int t0 = 0; t0 < T; t0 += kAhead) {
    float in[kAhead];
#pragma unroll
    for (int j = 0; j < kAhead; ++j)
      in[j] = t0 + j < T ? current[at0 + size_t(t0 + j) * step] : 0.0f;
#pragma unroll
    for (int j = 0; j < kAhead; ++j) {
      const int t = t0 + j;
      if (t >= T) break;
      const float u = (in[j] + bias) + decay * v;
      const float s = fmaxf(u - threshold, 0.0f);
      const float g = s > 0.0f ? 1.0f : 0.0f;
      const float next = Rule == ResetRule::scale ? u - scale_factor * u * g : u - (penalty + s) * g;
      if (a.write_u) a.u[at0 + size_t(t) * step] = u;
      if (a.saved_spikes) a.saved_spikes[at0 + size_t(t) * step] = encode_spike16(s);
      if (a.saved_gates) {
        gates |= uint32_t(s > 0.0f) << (t % kGateBits);
        if (t % kGateBits == kGateBits - 1 || t == T - 1) {  // a word is full, or the last one
          a.saved_gates[at0 + size_t(t / kGateBits) * step] = gates;
          gates = 0;
        }
      }
      fired += g;
      // What step t returns, written at t (after a[t] was read, so spikes may be a's buffer).
      // With delay step 0 returns zeros, and adding that 0 to the readout changes nothing.
      const float returned_s = delay ? s_last : s, returned_v = delay ? v : next;
      const size_t at = at0 + size_t(t) * step;
      if (a.spikes) a.spikes[at] = returned_s;
      if (a.trace_state) a.trace_state[at] = returned_v;
      if (a.trace_spikes) a.trace_spikes[at] = returned_s;
      if (t >= a.begin_eval) readout += returned_v;
      v = next;
      s_last = s;
    }
  }
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
  if (args.spikes == args.u && args.write_u)
    ::nmsnn::detail::fail("lif_forward: the spikes may share u's buffer only when u is not kept");
  if (args.a && (args.a == args.spikes || args.a == args.u))
    ::nmsnn::detail::fail(
        "lif_forward: a separate input a must not share u's or the spikes' buffer");
  if (args.saved_spikes && args.saved_gates)
    ::nmsnn::detail::fail("lif_forward: keep either spike16 codes or gate bits, not both");
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
