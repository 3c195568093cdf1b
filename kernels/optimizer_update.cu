// optimizer_update.cu — SGD (momentum, dampening, nesterov, weight decay) and Adam, elementwise.
// The expressions are host/optimizer.cpp's, term for term, so the only differences from the CPU
// engine are where a compiler fuses a multiply and an add (both sides may): a few ulps.
#include <cmath>

#include "cuda_check.cuh"
#include "launch.cuh"
#include "optimizer_update.cuh"

namespace nmsnn::kernels {

namespace {

// The hyperparameters as host/optimizer.cpp rounds them to float before its loop (they are
// double in the public structs).
struct SgdFloats {
  float wd, momentum, keep, lr;  // keep = 1 - dampening
  bool use_momentum, nesterov;
};
struct AdamFloats {
  float step_size, bias2_sqrt, b1, b2, one_minus_b1, one_minus_b2, eps, wd;
};

__global__ void sgd_kernel(SgdFloats o, float* param, const float* grad, float* buf, size_t n,
                           bool first_step) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    float d = grad[i] + o.wd * param[i];
    if (o.use_momentum) {
      buf[i] = first_step ? d : o.momentum * buf[i] + o.keep * d;
      d = o.nesterov ? d + o.momentum * buf[i] : buf[i];
    }
    param[i] -= o.lr * d;
  }
}

__global__ void adam_kernel(AdamFloats o, float* param, const float* grad, float* m, float* v,
                            size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    const float g = grad[i] + o.wd * param[i];
    m[i] = o.b1 * m[i] + o.one_minus_b1 * g;
    v[i] = o.b2 * v[i] + o.one_minus_b2 * g * g;
    param[i] -= o.step_size * m[i] / (sqrtf(v[i]) / o.bias2_sqrt + o.eps);
  }
}

}  // namespace

void sgd_update(const Sgd& sgd, float* param, const float* grad, float* momentum_buffer, size_t n,
                int64_t step, cudaStream_t stream, int block_size) {
  check_block_size("sgd_update", block_size);
  if (n == 0) return;
  SgdFloats o;
  o.wd = float(sgd.weight_decay);
  o.momentum = float(sgd.momentum);
  o.keep = float(1.0 - sgd.dampening);
  o.lr = float(sgd.lr);
  o.use_momentum = sgd.momentum != 0;
  o.nesterov = sgd.nesterov;
  sgd_kernel<<<grid_stride_for((long long)n, block_size, 8192), block_size, 0, stream>>>(
      o, param, grad, momentum_buffer, n, step == 1);
  NMSNN_CHECK_LAUNCH("sgd_update", "n=", n, ", step=", step);
}

void adam_update(const Adam& adam, float* param, const float* grad, float* m, float* v, size_t n,
                 int64_t step, cudaStream_t stream, int block_size) {
  check_block_size("adam_update", block_size);
  if (n == 0) return;
  // As host/optimizer.cpp: bias corrections in double, then rounded to float once.
  const double bias1 = 1.0 - std::pow(double(adam.beta1), double(step));
  const double bias2 = 1.0 - std::pow(double(adam.beta2), double(step));
  AdamFloats o;
  o.step_size = float(adam.lr / bias1);
  o.bias2_sqrt = float(std::sqrt(bias2));
  o.b1 = float(adam.beta1);
  o.b2 = float(adam.beta2);
  o.one_minus_b1 = float(1.0 - adam.beta1);
  o.one_minus_b2 = float(1.0 - adam.beta2);
  o.eps = float(adam.eps);
  o.wd = float(adam.weight_decay);
  adam_kernel<<<grid_stride_for((long long)n, block_size, 8192), block_size, 0, stream>>>(
      o, param, grad, m, v, n);
  NMSNN_CHECK_LAUNCH("adam_update", "n=", n, ", step=", step);
}

}  // namespace nmsnn::kernels
