// training/loss_math.hpp — the losses' math, templated so the gradient tests can run it in double.
// Each returns the mean loss and writes dL/dz into grad (same shape as z).
#pragma once

#include <algorithm>
#include <cmath>

namespace nmsnn::detail {

// Each batch loss is the mean of per-row terms, and a row's gradient needs only that row: the
// *_row functions return row b's term and write its gradient, divided by `count` (the number of
// terms the mean is over). The batch functions are loops over them, so a caller that takes the
// rows one at a time (the cpu engine's training pass, cpu_network.hpp) gets the same bits.

// One row of nll_log_softmax: returns -log_softmax(z)[label]; grad = (softmax(z) - onehot) / count.
template <class Real>
Real nll_row(const Real* z, int C, int label, Real count, Real* grad) {
  const Real m = *std::max_element(z, z + C);
  Real sum = 0;
  for (int c = 0; c < C; ++c) sum += std::exp(z[c] - m);
  const Real log_sum = m + std::log(sum);
  for (int c = 0; c < C; ++c) {
    const Real p = std::exp(z[c] - log_sum);
    grad[c] = (p - (c == label ? Real(1) : Real(0))) / count;
  }
  return -(z[label] - log_sum);
}

// One logit of bce_with_logits.
template <class Real>
Real bce_row(Real z, Real y, Real count, Real* grad) {
  const Real sigmoid = z >= 0 ? Real(1) / (Real(1) + std::exp(-z))
                              : std::exp(z) / (Real(1) + std::exp(z));
  *grad = (sigmoid - y) / count;
  return std::max(z, Real(0)) - z * y + std::log1p(std::exp(-std::abs(z)));
}

// One value of mse.
template <class Real>
Real mse_row(Real p, Real y, Real count, Real* grad) {
  const Real d = p - y;
  *grad = Real(2) * d / count;
  return d * d;
}

// z[B, C], labels[B]: -mean_b log_softmax(z[b])[label], computed from the max for stability.
template <class Real>
Real nll_log_softmax(const Real* z, int B, int C, const int* labels, Real* grad) {
  Real total = 0;
  for (int b = 0; b < B; ++b)
    total += nll_row(z + size_t(b) * C, C, labels[b], Real(B), grad + size_t(b) * C);
  return total / Real(B);
}

// z[N], y[N]: mean of max(z,0) - z*y + log(1 + exp(-|z|)) (PyTorch's BCEWithLogitsLoss).
template <class Real>
Real bce_with_logits(const Real* z, const Real* y, int N, Real* grad) {
  Real total = 0;
  for (int n = 0; n < N; ++n) total += bce_row(z[n], y[n], Real(N), grad + n);
  return total / Real(N);
}

// p[N], y[N]: mean (p - y)^2.
template <class Real>
Real mse(const Real* p, const Real* y, int N, Real* grad) {
  Real total = 0;
  for (int n = 0; n < N; ++n) total += mse_row(p[n], y[n], Real(N), grad + n);
  return total / Real(N);
}

}  // namespace nmsnn::detail
