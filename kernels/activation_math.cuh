// activation_math.cuh — the element-wise functions of Activation and SpikingActivation and their
// derivatives, for device code (relu'(0) = 0, as in PyTorch). CPU twin: cpu/activations.hpp.
// tanhf and expf are within a few ulps of the CPU's std::tanh and std::exp, far inside the
// 1e-5 the engine tests allow.
#pragma once

#include <cuda_runtime.h>

#include "nmsnn/spec.hpp"

namespace nmsnn::kernels {

__device__ inline float activate(ActivationKind kind, float x) {
  switch (kind) {
    case ActivationKind::relu: return x > 0.0f ? x : 0.0f;
    case ActivationKind::tanh: return tanhf(x);
    case ActivationKind::sigmoid: return 1.0f / (1.0f + expf(-x));
  }
  return x;
}

__device__ inline float activate_grad(ActivationKind kind, float x) {
  switch (kind) {
    case ActivationKind::relu: return x > 0.0f ? 1.0f : 0.0f;
    case ActivationKind::tanh: {
      const float y = tanhf(x);
      return 1.0f - y * y;
    }
    case ActivationKind::sigmoid: {
      const float y = 1.0f / (1.0f + expf(-x));
      return y * (1.0f - y);
    }
  }
  return 1.0f;
}

}  // namespace nmsnn::kernels
