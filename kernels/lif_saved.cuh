// lif_saved.cuh — the compact saved state of a spiking layer (DeviceOptions::saved = compact):
// what backward needs of each neuron-step, in at most 2 bytes instead of the 4 of an FP32 u.
//
// What backward reads (SPEC.md 4, lif_backward.cuh): the gate g = (u - threshold > 0), since
// ds/du = g and dv/du = 1 - (penalty/threshold) g (scale) or 1 - g (subtract) take no other
// value of u; and, when the layer above reads its input in backward (a weight gradient
// du^T x, an activation's f'(x), a Lowpass), the spike s = relu(u - threshold) it returned.
// So per neuron-step:
//   - a layer whose spikes some backward reads keeps s as `spike16` (2 bytes): s >= 0, so the
//     sign bit of a float is free; spike16 is bits 30..15 of the float (8 exponent bits and the
//     top 8 mantissa bits), rounded to nearest even. Relative error <= 2^-9 (bf16 keeps 7
//     mantissa bits, 2^-8). A positive s never rounds to 0 (the code is then 1, s ~ 2^-134), so
//     the gate code != 0 is exact, and so are ds/du and dv/du; only the spike values that a
//     backward reads as its input carry the rounding.
//   - the last layer (its returned state feeds the readout, its spikes nothing) and a layer
//     below a TemporalAvgPool or a bypassed Lowpass keep the gate only: 1 bit, packed along
//     time per neuron, word (w, b, h) of [ceil(T/32), B, H] uint32 holds g[32w + j] in bit j, so
//     the thread that owns (b, h) packs and unpacks its own bits (no cross-thread traffic) and a
//     warp reads 32 consecutive words.
// The forward arithmetic is unchanged: logits and traces are bit-identical to the FP32 mode.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

#include "float_bits.cuh"

namespace nmsnn::kernels {

constexpr int kGateBits = 32;  // steps per gate word

// s >= 0 (never NaN: fmaxf(x, 0) returns 0 for a NaN x). Round to nearest even on bit 15; a
// finite s within 2^-10 of FLT_MAX rounds to infinity, as a float-to-bf16 conversion does.
__host__ __device__ inline uint16_t encode_spike16(float s) {
  const uint32_t b = float_bits(s);
  const uint32_t code = (b + 0x3FFFu + ((b >> 15) & 1u)) >> 15;
  return uint16_t(code == 0 && s > 0.0f ? 1u : code);  // keep the gate: positive stays positive
}

__host__ __device__ inline float decode_spike16(uint16_t code) {
  const uint32_t b = uint32_t(code) << 15;
  float s;
  memcpy(&s, &b, sizeof s);
  return s;
}

}  // namespace nmsnn::kernels
