// lif_backward.cu — the spiking layer's backward time loop and its helpers (see lif_backward.cuh).
//
// As in lif_forward.cu: one thread per (b, h), h fastest; the loop reads 16 steps of the gates
// and d_spikes ahead (8 fused; they do not depend on the recurrence) before running them, newest
// first.
//
// Bytes moved per neuron-step (hidden layer): read the saved state, read d_spikes (4), write
// du (4): 12 with the FP32 saved state, 10 with spike16 codes, 8.1 with gate bits (the word of
// 32 steps is read once from memory; its other 31 reads hit the cache). Rebuilding the spikes
// for the layer above's backward reads 4 (u) or 2 (spike16) and writes 4.
//
// Fused with the layer above (LifBackwardArgs::du_above): d_spikes is made from the above
// layer's du (above floats per sample-step, read by all H threads of the sample: cache hits)
// and its weight column, held in registers, and the spikes x from the saved state; so per
// neuron-step 6 bytes (spike16) or 8 (u), against 10 + 4 (the product's dx write) + 6 (rebuild)
// + 4 (dW's read of x) = 24 for the four kernels it replaces. Its FLOP (4 x above per
// neuron-step) run on the CUDA cores in FP32 whatever the precision: they are bound by memory.
#include "cuda_check.cuh"
#include "launch.cuh"
#include "lif_backward.cuh"
#include "lif_saved.cuh"

namespace nmsnn::kernels {

namespace {

// Steps whose loads are in flight at once: the loop reads them (they do not depend on the
// recurrence) before it runs them, newest first. 16 makes a small layer (the seed's output: 10,000
// threads) wait for one round trip every 16 steps instead of 4; the fused loop, which also holds
// the layer above's weights and gradients, takes 8 to stay near 100 registers.
constexpr int kAhead = 16, kAheadFused = 8;

enum class Saved { u, spike16, gate_bits };  // which of LifBackwardArgs' saved states is set

// The gate g[t] of element at0 + t*step (t >= 0): 1.0f or 0.0f.
template <Saved S>
__device__ inline float gate(const LifBackwardArgs& a, size_t at0, size_t step, int t,
                             float threshold) {
  if (S == Saved::u) return a.u[at0 + size_t(t) * step] - threshold > 0.0f ? 1.0f : 0.0f;
  if (S == Saved::spike16) return a.saved_spikes[at0 + size_t(t) * step] != 0 ? 1.0f : 0.0f;
  const uint32_t word = a.saved_gates[at0 + size_t(t / kGateBits) * step];
  return (word >> (t % kGateBits)) & 1u ? 1.0f : 0.0f;
}

// The spike x[t] this neuron made at step t (returned at t, or at t + 1 with delay), from the
// saved state: relu(u - threshold), or the spike16 code decoded.
template <Saved S>
__device__ inline float spike_value(const LifBackwardArgs& a, size_t at, float threshold) {
  if (S == Saved::u) return fmaxf(a.u[at] - threshold, 0.0f);
  return decode_spike16(a.saved_spikes[at]);
}

template <ResetRule Rule, Saved S, bool kFused>
__global__ void lif_backward_kernel(LifBackwardArgs a, float decay, float threshold,
                                    float penalty, bool delay) {
  const long long n = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (n >= (long long)a.B * a.H) return;
  const size_t step = size_t(a.B) * a.H;
  const size_t at0 = size_t(n);  // (0, b, h)
  const int T = a.T;
  const float scale_factor = penalty / threshold;
  // The readout's gradient reaches the returned state at every counted step.
  const float d_readout = a.dlogits ? a.dlogits[n] * a.readout_scale : 0.0f;

  // Fused: the above layer's weights from this neuron, and its weight gradient's share.
  const int b = int(n / a.H), h = int(n - (long long)b * a.H);
  float w[kFused ? kMaxFusedAbove : 1], dw[kFused ? kMaxFusedAbove : 1];
  if (kFused) {
#pragma unroll
    for (int i = 0; i < kMaxFusedAbove; ++i) {
      w[i] = i < a.above ? a.w_above[size_t(i) * a.H + h] : 0.0f;
      dw[i] = 0.0f;
    }
  }

  float dv_next = 0.0f;  // decay * dL/du[t+1]
  float dbias = 0.0f;
  constexpr int ahead = kFused ? kAheadFused : kAhead;
  for (int t1 = T - 1; t1 >= 0; t1 -= ahead) {
    float gs[ahead], ds[ahead];
#pragma unroll
    for (int j = 0; j < ahead; ++j) {
      const int t = t1 - j;
      const int out = delay ? t + 1 : t;
      gs[j] = t >= 0 ? gate<S>(a, at0, step, t, threshold) : 0.0f;
      if (!kFused) {
        ds[j] = (t >= 0 && out < T && a.d_spikes) ? a.d_spikes[at0 + size_t(out) * step] : 0.0f;
        continue;
      }
      // The spike made at t was returned at `out`, where the layer above read it: its du
      // there gives this spike's gradient and, times the spike, its weights' gradient. None
      // was returned at out = T (delay).
      ds[j] = 0.0f;
      if (t >= 0 && out < T) {
        const float x = spike_value<S>(a, at0 + size_t(t) * step, threshold);
        const float* d = a.du_above + (size_t(out) * a.B + b) * a.above;
#pragma unroll
        for (int i = 0; i < kMaxFusedAbove; ++i) {
          if (i < a.above) {
            const float di = d[i];
            ds[j] = fmaf(di, w[i], ds[j]);
            dw[i] = fmaf(di, x, dw[i]);
          }
        }
      }
    }
#pragma unroll
    for (int j = 0; j < ahead; ++j) {
      const int t = t1 - j;
      if (t < 0) break;
      const int out = delay ? t + 1 : t;
      const float g = gs[j];
      const float dv_du = Rule == ResetRule::scale ? 1.0f - scale_factor * g : 1.0f - g;
      float du;
      if (out >= T) {
        du = dv_next * dv_du;  // v[T-1], s[T-1] were never returned
      } else {
        const float d_state = out >= a.begin_eval ? d_readout : 0.0f;
        du = (dv_next + d_state) * dv_du + ds[j] * g;
      }
      a.du[at0 + size_t(t) * step] = du;
      dv_next = decay * du;
      dbias += du;
    }
  }
  if (a.dbias_part) a.dbias_part[n] = dbias;  // a Lif layer has no bias
  if (kFused) {
#pragma unroll
    for (int i = 0; i < kMaxFusedAbove; ++i)
      if (i < a.above) a.dw_above_part[(size_t(b) * a.above + i) * a.H + h] = dw[i];
  }
}

__global__ void spikes_from_u_kernel(const float* u, size_t count, size_t step, float threshold,
                                     bool delay, float* spikes) {
  for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < count;
       e += (size_t)gridDim.x * blockDim.x) {
    // With delay, the spike returned at (t, b, h) was made at (t-1, b, h), one `step` earlier.
    if (delay)
      spikes[e] = e < step ? 0.0f : fmaxf(u[e - step] - threshold, 0.0f);
    else
      spikes[e] = fmaxf(u[e] - threshold, 0.0f);
  }
}

__global__ void spikes_from_spike16_kernel(const uint16_t* codes, size_t count, size_t step,
                                           bool delay, float* spikes) {
  for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < count;
       e += (size_t)gridDim.x * blockDim.x) {
    if (delay)
      spikes[e] = e < step ? 0.0f : decode_spike16(codes[e - step]);
    else
      spikes[e] = decode_spike16(codes[e]);
  }
}

template <ResetRule Rule>
void launch_backward(const SpikingLayer& layer, const LifBackwardArgs& args, long long n,
                     int block_size, cudaStream_t stream) {
  const bool fused = args.du_above != nullptr;
  const auto kernel = args.u && fused             ? lif_backward_kernel<Rule, Saved::u, true>
                      : args.u                    ? lif_backward_kernel<Rule, Saved::u, false>
                      : args.saved_spikes && fused ? lif_backward_kernel<Rule, Saved::spike16, true>
                      : args.saved_spikes ? lif_backward_kernel<Rule, Saved::spike16, false>
                                          : lif_backward_kernel<Rule, Saved::gate_bits, false>;
  block_size = fit_block_size(kernel, "lif_backward", block_size);
  kernel<<<grid_for(n, block_size), block_size, 0, stream>>>(args, layer.decay, layer.threshold,
                                                             layer.penalty, layer.delay);
}

}  // namespace

void lif_backward(const SpikingLayer& layer, const LifBackwardArgs& args, cudaStream_t stream,
                  int block_size) {
  check_block_size("lif_backward", block_size);
  if (args.T < 1 || args.B < 1 || args.H < 1)
    ::nmsnn::detail::fail("lif_backward: T, B and H must be >= 1, got ", args.T, ", ", args.B,
                          ", ", args.H);
  const int states = int(args.u != nullptr) + int(args.saved_spikes != nullptr) +
                     int(args.saved_gates != nullptr);
  if (states != 1)
    ::nmsnn::detail::fail("lif_backward: exactly one saved state (u, spike16 codes or gate bits) "
                          "must be given, got ", states);
  if (args.du_above || args.w_above || args.dw_above_part || args.above != 0) {
    if (!args.du_above || !args.w_above || !args.dw_above_part)
      ::nmsnn::detail::fail("lif_backward: fused with the layer above, du_above, w_above and "
                            "dw_above_part must all be given");
    if (args.above < 1 || args.above > kMaxFusedAbove)
      ::nmsnn::detail::fail("lif_backward: fused with a layer above of ", args.above,
                            " neurons; 1 to ", kMaxFusedAbove, " can be");
    if (args.d_spikes)
      ::nmsnn::detail::fail("lif_backward: fused with the layer above, d_spikes must be null "
                            "(it is made from du_above)");
    if (args.saved_gates)
      ::nmsnn::detail::fail("lif_backward: fused with the layer above needs the spikes' values "
                            "(u or spike16 codes), not gate bits");
  }
  const long long n = (long long)args.B * args.H;
  if (layer.reset == ResetRule::scale)
    launch_backward<ResetRule::scale>(layer, args, n, block_size, stream);
  else
    launch_backward<ResetRule::subtract>(layer, args, n, block_size, stream);
  NMSNN_CHECK_LAUNCH("lif_backward", "T=", args.T, ", B=", args.B, ", H=", args.H, ", reset ",
                     to_string(layer.reset), layer.delay ? ", delay" : ", no delay");
}

void spikes_from_u(const SpikingLayer& layer, int T, int B, int H, const float* u, float* spikes,
                   cudaStream_t stream, int block_size) {
  check_block_size("spikes_from_u", block_size);
  if (T < 1 || B < 1 || H < 1)
    ::nmsnn::detail::fail("spikes_from_u: T, B and H must be >= 1, got ", T, ", ", B, ", ", H);
  const size_t step = size_t(B) * H, count = size_t(T) * step;
  spikes_from_u_kernel<<<grid_stride_for((long long)count, block_size), block_size, 0, stream>>>(
      u, count, step, layer.threshold, layer.delay, spikes);
  NMSNN_CHECK_LAUNCH("spikes_from_u", "T=", T, ", B=", B, ", H=", H);
}

void spikes_from_spike16(const SpikingLayer& layer, int T, int B, int H, const uint16_t* codes,
                         float* spikes, cudaStream_t stream, int block_size) {
  check_block_size("spikes_from_spike16", block_size);
  if (T < 1 || B < 1 || H < 1)
    ::nmsnn::detail::fail("spikes_from_spike16: T, B and H must be >= 1, got ", T, ", ", B, ", ",
                          H);
  const size_t step = size_t(B) * H, count = size_t(T) * step;
  spikes_from_spike16_kernel<<<grid_stride_for((long long)count, block_size), block_size, 0,
                               stream>>>(codes, count, step, layer.delay, spikes);
  NMSNN_CHECK_LAUNCH("spikes_from_spike16", "T=", T, ", B=", B, ", H=", H);
}

}  // namespace nmsnn::kernels
