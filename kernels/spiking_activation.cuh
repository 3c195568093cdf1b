// spiking_activation.cuh — PyTorchSpiking's SpikingActivation over the whole time loop on the
// device, one thread per (b, h) with its voltage in a register (SPEC.md 5). CPU twin:
// cpu/spiking_activation_layer.hpp.
//
//   voltage += f(x[t]) * dt;  n = floor(voltage);  voltage -= n;  y[t] = n / dt
//
// Backward is straight-through: dx[t] = f'(x[t]) (dy[t] + the rate regularizer's share), so it
// needs only the layer's input (and the saved rates when regularized), never the spikes.
// Layout: time-major [T, B, H], element (t, b, h) at (t*B + b)*H + h.
#pragma once

#include <cuda_runtime.h>

#include "nmsnn/philox.hpp"
#include "nmsnn/spec.hpp"

namespace nmsnn::kernels {

struct SpikingActivationForwardArgs {
  int T = 0, B = 0, H = 0;
  const float* x = nullptr;  // [T, B, H]
  float* y = nullptr;        // [T, B, H], or [B, H] (the last step) without return_sequences
  // false: y = f(x), the training pass of a layer without spiking-aware training.
  bool spikes = true;
  // The initial voltage U[0, 1) of (b, h) is noise_mask(voltage_key, 0, b, h) when
  // random_initial_voltage is on (the host derives the key as the CPU engine does).
  NoiseKey voltage_key;
  float* trace_state = nullptr;  // like y, or null: the voltage after each step (y when !spikes)
  float* rates = nullptr;        // [B, H] or null: mean over all T steps of y (Hz)
};

// block_size: threads per block, a multiple of 32 in [32, 1024] (launch.cuh), here and below.
void spiking_activation_forward(const SpikingActivation& layer,
                                const SpikingActivationForwardArgs& args, cudaStream_t stream,
                                int block_size = 256);

struct SpikingActivationBackwardArgs {
  int T = 0, B = 0, H = 0;
  const float* x = nullptr;      // [T, B, H], the forward pass's input
  const float* dy = nullptr;     // like the forward pass's y
  const float* rates = nullptr;  // [B, H]: the forward pass's rates (regularized layers only)
  float* dx = nullptr;           // [T, B, H]
};

void spiking_activation_backward(const SpikingActivation& layer,
                                 const SpikingActivationBackwardArgs& args, cudaStream_t stream,
                                 int block_size = 256);

// The rate regularizer's loss: *out = (accumulate ? *out : 0) + weight * sum over b, h of
// (rates[b, h] - target)^2 / B, summed in double in a fixed order (fixed for a given block
// size). One block: it is called once per regularized layer and pass, on B * H values.
void rate_regularization_loss(const SpikingActivation& layer, const float* rates, int B, int H,
                              bool accumulate, float* out, cudaStream_t stream,
                              int block_size = 256);

}  // namespace nmsnn::kernels
