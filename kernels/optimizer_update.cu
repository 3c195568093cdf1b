// optimizer_update.cu — SGD (momentum, dampening, nesterov, weight decay) and Adam, elementwise.
// The expressions are host/optimizer.cpp's, term for term, so the only differences from the CPU
// engine are where a compiler fuses a multiply and an add (both sides may): a few ulps.
#include <cmath>

#include "cuda_check.cuh"
#include "launch.cuh"
#include "optimizer_update.cuh"

namespace nmsnn::kernels {

namespace {

// One value's update: the expressions of host/optimizer.cpp.
__device__ inline void sgd_one(const SgdFloats& o, float* param, const float* grad, float* buf,
                               size_t i) {
  float d = grad[i] + o.wd * param[i];
  if (o.use_momentum) {
    buf[i] = o.first_step ? d : o.momentum * buf[i] + o.keep * d;
    d = o.nesterov ? d + o.momentum * buf[i] : buf[i];
  }
  param[i] -= o.lr * d;
}

__device__ inline void adam_one(const AdamFloats& o, float* param, const float* grad, float* m,
                                float* v, size_t i) {
  const float g = grad[i] + o.wd * param[i];
  m[i] = o.b1 * m[i] + o.one_minus_b1 * g;
  v[i] = o.b2 * v[i] + o.one_minus_b2 * g * g;
  param[i] -= o.step_size * m[i] / (sqrtf(v[i]) / o.bias2_sqrt + o.eps);
}

__global__ void sgd_kernel(SgdFloats o, float* param, const float* grad, float* buf, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    sgd_one(o, param, grad, buf, i);
}

__global__ void adam_kernel(AdamFloats o, float* param, const float* grad, float* m, float* v,
                            size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    adam_one(o, param, grad, m, v, i);
}

__global__ void sgd_guarded_kernel(const SgdFloats* floats, const int* halt, float* param,
                                   float* prev, const float* grad, float* buf, size_t n,
                                   unsigned long long* bad_index) {
  if (*halt) return;
  const SgdFloats o = *floats;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    prev[i] = param[i];
    sgd_one(o, param, grad, buf, i);
    if (!isfinite(param[i])) atomicMin(bad_index, (unsigned long long)i);
  }
}

__global__ void adam_guarded_kernel(const AdamFloats* floats, const int* halt, float* param,
                                    float* prev, const float* grad, float* m, float* v, size_t n,
                                    unsigned long long* bad_index) {
  if (*halt) return;
  const AdamFloats o = *floats;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    prev[i] = param[i];
    adam_one(o, param, grad, m, v, i);
    if (!isfinite(param[i])) atomicMin(bad_index, (unsigned long long)i);
  }
}

}  // namespace

SgdFloats sgd_floats(const Sgd& sgd, int64_t step) {
  SgdFloats o;
  o.wd = float(sgd.weight_decay);
  o.momentum = float(sgd.momentum);
  o.keep = float(1.0 - sgd.dampening);
  o.lr = float(sgd.lr);
  o.use_momentum = sgd.momentum != 0;
  o.nesterov = sgd.nesterov;
  o.first_step = step == 1;
  return o;
}

AdamFloats adam_floats(const Adam& adam, int64_t step) {
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
  return o;
}

void sgd_update(const Sgd& sgd, float* param, const float* grad, float* momentum_buffer, size_t n,
                int64_t step, cudaStream_t stream, int block_size) {
  check_block_size("sgd_update", block_size);
  if (n == 0) return;
  sgd_kernel<<<grid_stride_for((long long)n, block_size, 8192), block_size, 0, stream>>>(
      sgd_floats(sgd, step), param, grad, momentum_buffer, n);
  NMSNN_CHECK_LAUNCH("sgd_update", "n=", n, ", step=", step);
}

void adam_update(const Adam& adam, float* param, const float* grad, float* m, float* v, size_t n,
                 int64_t step, cudaStream_t stream, int block_size) {
  check_block_size("adam_update", block_size);
  if (n == 0) return;
  adam_kernel<<<grid_stride_for((long long)n, block_size, 8192), block_size, 0, stream>>>(
      adam_floats(adam, step), param, grad, m, v, n);
  NMSNN_CHECK_LAUNCH("adam_update", "n=", n, ", step=", step);
}

void sgd_update_guarded(const SgdFloats* floats, const int* halt, float* param, float* prev,
                        const float* grad, float* momentum_buffer, size_t n,
                        unsigned long long* bad_index, cudaStream_t stream, int block_size) {
  check_block_size("sgd_update_guarded", block_size);
  if (n == 0) return;
  sgd_guarded_kernel<<<grid_stride_for((long long)n, block_size, 8192), block_size, 0, stream>>>(
      floats, halt, param, prev, grad, momentum_buffer, n, bad_index);
  NMSNN_CHECK_LAUNCH("sgd_update_guarded", "n=", n);
}

void adam_update_guarded(const AdamFloats* floats, const int* halt, float* param, float* prev,
                         const float* grad, float* m, float* v, size_t n,
                         unsigned long long* bad_index, cudaStream_t stream, int block_size) {
  check_block_size("adam_update_guarded", block_size);
  if (n == 0) return;
  adam_guarded_kernel<<<grid_stride_for((long long)n, block_size, 8192), block_size, 0, stream>>>(
      floats, halt, param, prev, grad, m, v, n, bad_index);
  NMSNN_CHECK_LAUNCH("adam_update_guarded", "n=", n);
}

}  // namespace nmsnn::kernels
