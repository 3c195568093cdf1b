// training/loss_math.hpp — the losses' math, templated so the gradient tests can run it in double.
// Each returns the mean loss and writes dL/dz into grad (same shape as z).
#pragma once

#include <algorithm>
#include <cmath>

namespace nmsnn::detail {

// z[B, C], labels[B]: -mean_b log_softmax(z[b])[label], computed from the max for stability.
template <class Real>
Real nll_log_softmax(const Real* z, int B, int C, const int* labels, Real* grad) {
  Real total = 0;
  for (int b = 0; b < B; ++b) {
    const Real* zb = z + size_t(b) * C;
    const Real m = *std::max_element(zb, zb + C);
    Real sum = 0;
    for (int c = 0; c < C; ++c) sum += std::exp(zb[c] - m);
    const Real log_sum = m + std::log(sum);
    total -= zb[labels[b]] - log_sum;
    for (int c = 0; c < C; ++c) {
      const Real p = std::exp(zb[c] - log_sum);
      grad[size_t(b) * C + c] = (p - (c == labels[b] ? Real(1) : Real(0))) / Real(B);
    }
  }
  return total / Real(B);
}

// z[N], y[N]: mean of max(z,0) - z*y + log(1 + exp(-|z|)) (PyTorch's BCEWithLogitsLoss).
template <class Real>
Real bce_with_logits(const Real* z, const Real* y, int N, Real* grad) {
  Real total = 0;
  for (int n = 0; n < N; ++n) {
    total += std::max(z[n], Real(0)) - z[n] * y[n] + std::log1p(std::exp(-std::abs(z[n])));
    const Real sigmoid = z[n] >= 0 ? Real(1) / (Real(1) + std::exp(-z[n]))
                                   : std::exp(z[n]) / (Real(1) + std::exp(z[n]));
    grad[n] = (sigmoid - y[n]) / Real(N);
  }
  return total / Real(N);
}

// p[N], y[N]: mean (p - y)^2.
template <class Real>
Real mse(const Real* p, const Real* y, int N, Real* grad) {
  Real total = 0;
  for (int n = 0; n < N; ++n) {
    const Real d = p[n] - y[n];
    total += d * d;
    grad[n] = Real(2) * d / Real(N);
  }
  return total / Real(N);
}

}  // namespace nmsnn::detail
