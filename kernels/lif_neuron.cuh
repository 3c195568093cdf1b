// lif_neuron.cuh — one neuron's forward time loop (SPEC.md 2, 3), shared by the two kernels that
// run it: lif_forward (its current a[t] read from global memory) and the TF32/BF16 masked
// forward with the time loop fused in (masked_linear.cu, a[t] from the block's shared tile).
// Both run the same arithmetic in the same order, so the two paths give bit-identical state,
// spikes, saved state and logits (tests/test_cuda_kernels.cpp compares them).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "lif_forward.cuh"
#include "lif_saved.cuh"

namespace nmsnn::kernels {

constexpr int kLifAhead = 16;  // steps whose current is loaded before they run (16 registers)

// The neuron's constants, as the kernels take them (SpikingLayer's numbers, by value).
struct LifConstants {
  float decay = 0.9f, threshold = 1.0f, penalty = 1.5f;
  bool delay = true;
};

inline LifConstants lif_constants(const SpikingLayer& layer) {
  return {layer.decay, layer.threshold, layer.penalty, layer.delay};
}

// Which per-step outputs a loop writes, as a compile-time set (bits below), or kLifAnyOutputs:
// tested at every step. The tests and their branches were half of the loop's instructions in the
// SASS, so the kernel where the loop competes with a product for issue (the fused forward) picks
// a fixed set for the common cases (lif_outputs, then a switch).
constexpr int kLifU = 1, kLifCodes = 2, kLifGates = 4, kLifSpikes = 8, kLifTraceState = 16,
              kLifTraceSpikes = 32;
constexpr int kLifAnyOutputs = -1;

inline __host__ __device__ int lif_outputs(const LifForwardArgs& a) {
  return (a.write_u ? kLifU : 0) | (a.saved_spikes ? kLifCodes : 0) |
         (a.saved_gates ? kLifGates : 0) | (a.spikes ? kLifSpikes : 0) |
         (a.trace_state ? kLifTraceState : 0) | (a.trace_spikes ? kLifTraceSpikes : 0);
}

// A loop's extra destination for the spikes it returns, beside a.spikes: sink(t, s) at step t.
// The fused forward (masked_linear.cu) puts them in its shared tile, in place of the currents,
// for the layer above's product; the other loops have none.
struct NoSpikeSink {
  __device__ void operator()(int, float) const {}
};

// Neuron (b, h) of a [T, B, H] layer: at0 = b*H + h, `step` = B*H from (t, b, h) to (t+1, b, h).
// current(t) is a[t] without the bias. The currents do not depend on the state, so they are
// loaded kLifAhead steps ahead of the loop that runs them (loads in flight instead of one
// dependent load a step). Every a[t] is read before anything of step t is written, so the
// returned spikes may overwrite a (lif_forward.cuh), through a.spikes or the sink. kOut: the
// outputs, as lif_outputs(a) gives them, or kLifAnyOutputs.
template <ResetRule Rule, int kOut, class Current, class Sink = NoSpikeSink>
__device__ inline void lif_neuron(const LifForwardArgs& a, const LifConstants& c, size_t at0,
                                  size_t step, int h, Current current, Sink sink = {}) {
  // Everything the loop reads as locals: the stores below could alias a struct behind a
  // reference, and the compiler would load it again after each.
  const float bias = a.bias ? a.bias[h] : 0.0f;
  const float decay = c.decay, threshold = c.threshold, penalty = c.penalty;
  const bool delay = c.delay;
  const float scale_factor = penalty / threshold;
  const int T = a.T;
  // Whether output `bit` is written: fixed by kOut, or tested (its pointer) at every step.
  auto has = [](int bit, bool runtime) {
    return kOut == kLifAnyOutputs ? runtime : (kOut & bit) != 0;
  };
  // The outputs at this neuron's step 0, stepped along (one add a step).
  float* u_out = has(kLifU, a.write_u) ? a.u + at0 : nullptr;
  uint16_t* codes = has(kLifCodes, a.saved_spikes) ? a.saved_spikes + at0 : nullptr;
  uint32_t* gate_words = has(kLifGates, a.saved_gates) ? a.saved_gates + at0 : nullptr;
  float* spikes = has(kLifSpikes, a.spikes) ? a.spikes + at0 : nullptr;
  float* trace_state = has(kLifTraceState, a.trace_state) ? a.trace_state + at0 : nullptr;
  float* trace_spikes = has(kLifTraceSpikes, a.trace_spikes) ? a.trace_spikes + at0 : nullptr;
  const int begin_eval = a.begin_eval;

  float v = 0.0f;        // v[t-1]
  float s_last = 0.0f;   // s[t-1]: with delay, (v[t-1], s[t-1]) is what step t returns
  float readout = 0.0f;  // sum of the returned state over t >= begin_eval
  float fired = 0.0f;    // steps with a spike (exact in float up to 2^24 steps)
  uint32_t gates = 0;    // this word's gate bits so far (compact state of a last layer)
  size_t at = 0;         // t * step
  // Step t with its current `in`.
  auto run = [&](int t, float in) {
    const float u = (in + bias) + decay * v;
    const float s = fmaxf(u - threshold, 0.0f);
    const float g = s > 0.0f ? 1.0f : 0.0f;
    const float next =
        Rule == ResetRule::scale ? u - scale_factor * u * g : u - (penalty + s) * g;
    if (has(kLifU, u_out != nullptr)) u_out[at] = u;
    if (has(kLifCodes, codes != nullptr)) codes[at] = encode_spike16(s);
    if (has(kLifGates, gate_words != nullptr)) {
      gates |= uint32_t(s > 0.0f) << (t % kGateBits);
      if (t % kGateBits == kGateBits - 1 || t == T - 1) {  // a word is full, or the last one
        gate_words[size_t(t / kGateBits) * step] = gates;
        gates = 0;
      }
    }
    fired += g;
    // What step t returns, written at t (after a[t] was read, so spikes may be a's buffer).
    // With delay step 0 returns zeros, and adding that 0 to the readout changes nothing.
    const float returned_s = delay ? s_last : s, returned_v = delay ? v : next;
    if (has(kLifSpikes, spikes != nullptr)) spikes[at] = returned_s;
    if (has(kLifTraceState, trace_state != nullptr)) trace_state[at] = returned_v;
    if (has(kLifTraceSpikes, trace_spikes != nullptr)) trace_spikes[at] = returned_s;
    sink(t, returned_s);
    if (t >= begin_eval) readout += returned_v;
    v = next;
    s_last = s;
    at += step;
  };
  // Whole groups of kLifAhead steps, their currents loaded first; then the last T % kLifAhead
  // steps likewise (their loads in flight together too), each checked against T.
  int t0 = 0;
  for (; t0 + kLifAhead <= T; t0 += kLifAhead) {
    float in[kLifAhead];
#pragma unroll
    for (int j = 0; j < kLifAhead; ++j) in[j] = current(t0 + j);
#pragma unroll
    for (int j = 0; j < kLifAhead; ++j) run(t0 + j, in[j]);
  }
  if (t0 < T) {
    float in[kLifAhead];
#pragma unroll
    for (int j = 0; j < kLifAhead; ++j) in[j] = t0 + j < T ? current(t0 + j) : 0.0f;
#pragma unroll
    for (int j = 0; j < kLifAhead; ++j)
      if (t0 + j < T) run(t0 + j, in[j]);
  }
  if (a.logits) a.logits[at0] = readout * a.readout_scale;  // [B, H]: at0 is b*H + h there too
  if (a.rates) a.rates[at0] = fired / float(T);
}

}  // namespace nmsnn::kernels
