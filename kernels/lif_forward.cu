// lif_forward.cu — the spiking layer's forward time loop (see lif_forward.cuh for the math).
//
// One thread per neuron of one sample, (b, h) with h fastest, so a warp reads and writes 32
// consecutive floats at every step; the loop itself is lif_neuron.cuh's. The inputs a[t] do not
// depend on the state, so the loop loads 16 steps ahead before it runs them: 16 loads in flight
// per thread instead of one dependent load per step (a small layer, the seed's 10-neuron output
// with 10,000 threads, waits one DRAM round trip per 16 steps; it took 4 until 2026-12-03).
// Reads of a[t] all happen before the writes of u[t] and of what step t returns, so the
// returned spikes may overwrite a (lif_forward.cuh).
//
// Bytes moved per neuron-step (hidden layer, training): read a (4), write the returned spike
// (4), and keep u in place of a (4): 12 with the FP32 saved state; with the compact one the
// spike16 code (2) or the gate bit (1/8) replaces u: 10 or 8.1. An inference pass keeps
// nothing (write_u = false): 8.
#include "cuda_check.cuh"
#include "launch.cuh"
#include "lif_forward.cuh"
#include "lif_neuron.cuh"

namespace nmsnn::kernels {

namespace {

template <ResetRule Rule>
__global__ void lif_forward_kernel(LifForwardArgs a, LifConstants c) {
  const long long n = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (n >= (long long)a.B * a.H) return;
  const size_t step = size_t(a.B) * a.H;  // from (t, b, h) to (t+1, b, h)
  const size_t at0 = size_t(n);           // (0, b, h): n = b*H + h
  const float* current = a.a ? a.a : a.u;  // a[t]
  lif_neuron<Rule, kLifAnyOutputs>(a, c, at0, step, int(n % a.H),
                   [&](int t) { return current[at0 + size_t(t) * step]; });
}

}  // namespace

void check_lif_forward_args(const char* what, const LifForwardArgs& args) {
  if (args.T < 1 || args.B < 1 || args.H < 1)
    ::nmsnn::detail::fail(what, ": T, B and H must be >= 1, got ", args.T, ", ", args.B, ", ",
                          args.H);
  if (args.spikes == args.u && args.write_u)
    ::nmsnn::detail::fail(what, ": the spikes may share u's buffer only when u is not kept");
  if (args.a && (args.a == args.spikes || args.a == args.u))
    ::nmsnn::detail::fail(what, ": a separate input a must not share u's or the spikes' buffer");
  if (args.saved_spikes && args.saved_gates)
    ::nmsnn::detail::fail(what, ": keep either spike16 codes or gate bits, not both");
}

void lif_forward(const SpikingLayer& layer, const LifForwardArgs& args, cudaStream_t stream,
                 int block_size) {
  check_block_size("lif_forward", block_size);
  check_lif_forward_args("lif_forward", args);
  const long long n = (long long)args.B * args.H;
  const auto kernel = layer.reset == ResetRule::scale ? lif_forward_kernel<ResetRule::scale>
                                                      : lif_forward_kernel<ResetRule::subtract>;
  block_size = fit_block_size(kernel, "lif_forward", block_size);
  kernel<<<grid_for(n, block_size), block_size, 0, stream>>>(args, lif_constants(layer));
  NMSNN_CHECK_LAUNCH("lif_forward", "T=", args.T, ", B=", args.B, ", H=", args.H, ", reset ",
                     to_string(layer.reset), layer.delay ? ", delay" : ", no delay");
}

}  // namespace nmsnn::kernels
