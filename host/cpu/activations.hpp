// cpu/activations.hpp — the element-wise functions of Activation and SpikingActivation, and
// their derivatives (relu'(0) = 0, as in PyTorch).
#pragma once

#include <cmath>

#include "nmsnn/spec.hpp"

namespace nmsnn::cpu {

template <class Real>
inline Real activate(ActivationKind kind, Real x) {
  switch (kind) {
    case ActivationKind::relu: return x > 0 ? x : Real(0);
    case ActivationKind::tanh: return std::tanh(x);
    case ActivationKind::sigmoid: return Real(1) / (Real(1) + std::exp(-x));
  }
  return x;
}

template <class Real>
inline Real activate_grad(ActivationKind kind, Real x) {
  switch (kind) {
    case ActivationKind::relu: return x > 0 ? Real(1) : Real(0);
    case ActivationKind::tanh: {
      const Real y = std::tanh(x);
      return Real(1) - y * y;
    }
    case ActivationKind::sigmoid: {
      const Real y = Real(1) / (Real(1) + std::exp(-x));
      return y * (Real(1) - y);
    }
  }
  return Real(1);
}

}  // namespace nmsnn::cpu
