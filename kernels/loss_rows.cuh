// loss_rows.cuh — one sample's loss and its gradient for NLL (log-softmax), BCE (with logits)
// and MSE, in double: loss_math.hpp's expressions, for device code (step_partial over a batch,
// the sample-cluster step per sample). `N` is the mean's divisor, so each row's gradient is its
// share of the batch's mean loss.
#pragma once

#include <cuda_runtime.h>

#include <math.h>

namespace nmsnn::kernels {

// Each returns the sample's loss and writes its dlogits row (and whether it was classified right).
__device__ inline double nll_sample(const float* z, int C, int label, double B, float* grad,
                                   int* correct) {
  double m = z[0];
  int arg = 0;
  for (int c = 1; c < C; ++c)
    if (z[c] > z[arg]) arg = c;  // the first maximum, as std::max_element
  m = z[arg];
  double sum = 0;
  for (int c = 0; c < C; ++c) sum += exp(double(z[c]) - m);
  const double log_sum = m + log(sum);
  for (int c = 0; c < C; ++c) {
    const double p = exp(double(z[c]) - log_sum);
    grad[c] = float((p - (c == label ? 1.0 : 0.0)) / B);
  }
  *correct = arg == label;
  return -(double(z[label]) - log_sum);
}

__device__ inline double bce_sample(float zf, double y, double N, float* grad, int* correct) {
  const double z = zf;
  const double loss = fmax(z, 0.0) - z * y + log1p(exp(-fabs(z)));
  const double sigmoid = z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
  *grad = float((sigmoid - y) / N);
  *correct = (zf > 0) == (y > 0.5);
  return loss;
}

__device__ inline double mse_sample(const float* p, const float* y, int C, double N, float* grad) {
  double total = 0;
  for (int c = 0; c < C; ++c) {
    const double d = double(p[c]) - double(y[c]);
    total += d * d;
    grad[c] = float(2.0 * d / N);
  }
  return total;
}

}  // namespace nmsnn::kernels
