// lowpass.cuh — PyTorchSpiking's Lowpass filter over the whole time loop on the device, one
// thread per (b, h) with the level in a register (SPEC.md 5). CPU twin: cpu/lowpass_layer.hpp.
//
//   smoothing = sigmoid(p[h]);  level[t] = (1 - smoothing) x[t] + smoothing level[t-1]
//   level[-1] = initial[h]
// Backward, with G[t] = dL/dlevel[t] = dy[t] + smoothing G[t+1]:
//   dx[t] = (1 - smoothing) G[t];  dL/dp = sum_t G[t] (level[t-1] - x[t]) smoothing (1 - smoothing)
//   dL/dinitial = smoothing G[0]
// It saves level [T, B, H] for backward. The parameter gradients come out per sample, [B, H], and
// are summed over b by bias_grad_reduce (bias.cuh), in a fixed order.
// Layout: time-major [T, B, H], element (t, b, h) at (t*B + b)*H + h.
#pragma once

#include <cuda_runtime.h>

namespace nmsnn::kernels {

struct LowpassForwardArgs {
  int T = 0, B = 0, H = 0;
  const float* p = nullptr;        // [H] smoothing logits
  const float* initial = nullptr;  // [H]
  const float* x = nullptr;        // [T, B, H]
  // [T, B, H], or [B, H] (the last step) without return_sequences. May equal `level` when
  // returning sequences.
  float* y = nullptr;
  float* level = nullptr;  // [T, B, H] or null: saved for backward
  bool return_sequences = true;
};

// block_size: threads per block, a multiple of 32 in [32, 1024] (launch.cuh).
void lowpass_forward(const LowpassForwardArgs& args, cudaStream_t stream, int block_size = 256);

struct LowpassBackwardArgs {
  int T = 0, B = 0, H = 0;
  const float* p = nullptr;
  const float* initial = nullptr;
  const float* x = nullptr;      // [T, B, H]
  const float* level = nullptr;  // [T, B, H] from forward
  const float* dy = nullptr;     // like y
  bool return_sequences = true;
  float* dx = nullptr;             // [T, B, H] or null
  float* dp_part = nullptr;        // [B, H] out: dL/dp per sample
  float* dinitial_part = nullptr;  // [B, H] out: dL/dinitial per sample
};

void lowpass_backward(const LowpassBackwardArgs& args, cudaStream_t stream, int block_size = 256);

}  // namespace nmsnn::kernels
