// lif_backward.cuh — backpropagation through a spiking layer's time loop, one thread per (b, h)
// running t from T-1 down to 0 with dL/dv in a register (SPEC.md 4), and the helpers backward
// needs around it. CPU twins: cpu/lif.hpp lif_backward and lif_spikes_from_u, and the readout
// backward of cpu/cpu_network.hpp. bias_grad_reduce (bias.cuh) sums dbias_part into the bias
// gradient.
//
// Layout: time-major [T, B, H], element (t, b, h) at (t*B + b)*H + h.
// With a small spiking layer above, its two backward products can be taken in too (the fused
// fields of LifBackwardArgs): one pass over the [T, B, H] arrays instead of four kernels.
// Only u was saved (or the compact state of lif_saved.cuh). From it:  g = (u - threshold > 0);
// ds/du = g;
//   dv/du = 1 - (penalty/threshold) g  (scale)   or   1 - g  (subtract)
//   du[t] = (dv_next + d_state[out]) * dv/du + d_spikes[out] * g,   dv_next = decay * du[t]
// where `out` is the step that returned this step's values (t+1 with delay, t without); steps
// whose values were never returned (t = T-1 with delay) get only dv_next.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "nmsnn/spec.hpp"

namespace nmsnn::kernels {

struct LifBackwardArgs {
  int T = 0, B = 0, H = 0;
  // The saved state, exactly one of: u [T, B, H] in FP32, the compact spike16 codes [T, B, H]
  // or the compact gate bits [ceil(T/32), B, H] (lif_forward's saved_spikes, saved_gates).
  // Only the gates are read: backward's arithmetic is the same for all three.
  const float* u = nullptr;
  const uint16_t* saved_spikes = nullptr;
  const uint32_t* saved_gates = nullptr;
  const float* d_spikes = nullptr;  // [T, B, H] or null: dL/d(returned spikes) (hidden layers)
  // Readout backward (last layer): dL/d(returned state at step t) = dlogits[b, h] * readout_scale
  // for t >= begin_eval. Null for other layers.
  const float* dlogits = nullptr;  // [B, H]
  int begin_eval = 0;
  float readout_scale = 1.0f;
  float* du = nullptr;          // [T, B, H] out: dL/du = dL/da (must not alias u or d_spikes)
  float* dbias_part = nullptr;  // [B, H] out or null: sum over t of du, per sample

  // Fused with the backward products of the spiking layer above (A of at most
  // kMaxFusedAbove neurons, reading this layer's returned spikes x as its input), instead of
  // d_spikes, cuBLAS and a rebuild of x in FP32:
  //   d_spikes[t, b, h]      = sum_j du_above[t, b, j] * w_above[j, h]       (A's dx = du W)
  //   dw_above_part[b, j, h] = sum_t du_above[t, b, j] * x[t, b, h]          (A's dW, per sample)
  // with x rebuilt in registers from the saved u or spike16 codes as spikes_from_u and
  // spikes_from_spike16 do (so gate bits will not do). bias_grad_reduce over b gives dW.
  const float* du_above = nullptr;  // [T, B, above]: A's dL/da
  const float* w_above = nullptr;   // [above, H]: A's weights
  int above = 0;
  float* dw_above_part = nullptr;   // [B, above, H] out
};

// The widest layer above whose backward products lif_backward takes in (its du and weights per
// neuron are held in registers).
constexpr int kMaxFusedAbove = 16;

// block_size: threads per block, a multiple of 32 in [32, 1024] (launch.cuh), here and below.
void lif_backward(const SpikingLayer& layer, const LifBackwardArgs& args, cudaStream_t stream,
                  int block_size = 256);

// The spikes a layer returned, recomputed from its saved u: spikes[t] = relu(u[t-1] - threshold)
// with delay (0 at t = 0), relu(u[t] - threshold) without. [T, B, H] each.
void spikes_from_u(const SpikingLayer& layer, int T, int B, int H, const float* u, float* spikes,
                   cudaStream_t stream, int block_size = 256);

// The same from the compact spike16 codes (lif_saved.cuh): spikes[t] = decode(codes[t-1]) with
// delay (0 at t = 0), decode(codes[t]) without; within 2^-9 relative of the forward's spikes.
void spikes_from_spike16(const SpikingLayer& layer, int T, int B, int H, const uint16_t* codes,
                         float* spikes, cudaStream_t stream, int block_size = 256);

}  // namespace nmsnn::kernels
