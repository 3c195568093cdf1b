// lif_forward.cuh — a spiking layer's whole time loop on the device, one thread per (b, h), the
// neuron state in registers (SPEC.md 2, 3). CPU twin: cpu/lif.hpp lif_forward, plus the readout
// of cpu/cpu_network.hpp.
//
// Layout: time-major [T, B, H] row-major, element (t, b, h) at (t*B + b)*H + h.
// Per step:  u = a + bias + decay * v;   s = relu(u - threshold);   g = s > 0;
//            v = u - (penalty/threshold) u g   (scale)   or   u - (penalty + s) g   (subtract)
// The layer returns (v, s) of step t at step t+1 with delay (zeros at step 0), else at step t.
//
// What it keeps for backward: u in FP32 (in place of a), or the compact state of lif_saved.cuh
// (spike16 codes or gate bits, made at step t and stored at step t), leaving a unchanged.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "nmsnn/spec.hpp"

namespace nmsnn::kernels {

struct LifForwardArgs {
  int T = 0, B = 0, H = 0;
  const float* bias = nullptr;  // [H], or null: no bias (a Lif layer)
  // [T, B, H]. In: a = input · W^T without bias. Out, when write_u: the pre-reset state u
  // (overwritten in place; each element is read once, before it is written, by the same thread).
  float* u = nullptr;
  // [T, B, H] or null: read a from here instead of from u (a Lif layer takes the previous
  // layer's output as its current, so its a is not a buffer of its own). Must not alias spikes.
  const float* a = nullptr;
  bool write_u = true;  // false with a compact saved state: a is scratch, u is not kept
  // Compact saved state (lif_saved.cuh), at most one of them: s[t] as spike16 [T, B, H], or the
  // gates g[t] as bits [ceil(T/32), B, H].
  uint16_t* saved_spikes = nullptr;
  uint32_t* saved_gates = nullptr;
  // [T, B, H] or null: returned spikes (the next layer's input). May be the same buffer as u
  // when !write_u: each element of a is read before the spike of its step is written there.
  float* spikes = nullptr;
  float* trace_state = nullptr;   // [T, B, H] or null: returned state, for a recorded pass
  float* trace_spikes = nullptr;  // [T, B, H] or null: returned spikes, for a recorded pass
  // [B, H] or null: firing rate in spikes per step, the fraction of the T steps with u > threshold
  // (as the CPU engine's LifLayer measures it, over every step whether returned or not).
  float* rates = nullptr;
  // Readout (last layer only): logits[b, h] = readout_scale * sum over returned steps
  // t >= begin_eval of the returned state. Null for other layers.
  float* logits = nullptr;  // [B, H]
  int begin_eval = 0;
  float readout_scale = 1.0f;  // 1, or 1 / (T - begin_eval) for the mean
};

// Fails, naming `what`, on arguments no time loop can run: a size < 1, the spikes in a kept u's
// buffer, a separate a sharing an output's buffer, both compact saved states.
void check_lif_forward_args(const char* what, const LifForwardArgs& args);

// block_size: threads per block, a multiple of 32 in [32, 1024] (launch.cuh).
void lif_forward(const SpikingLayer& layer, const LifForwardArgs& args, cudaStream_t stream,
                 int block_size = 256);

}  // namespace nmsnn::kernels
