// cuda/cuda_device.cu — finding a usable CUDA device, and the `cuda` engine's factory.
#include <string>

#include "network/engine.hpp"
#include "cuda_check.cuh"

namespace nmsnn {

bool cuda_available(std::string* why) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    if (why) *why = std::string("no usable CUDA device: ") + cudaGetErrorString(status);
    cudaGetLastError();  // clear the sticky error so later calls are not confused by it
    return false;
  }
  if (count == 0) {
    if (why) *why = "no CUDA device found";
    return false;
  }
  return true;
}

namespace detail {
std::unique_ptr<EngineImpl> make_cuda_engine_impl(const NetworkSpec& spec,
                                                MatmulPrecision matmul,
                                                SavedState saved);  // cuda_engine.cu

std::unique_ptr<EngineImpl> make_cuda_engine(const NetworkSpec& spec, MatmulPrecision matmul,
                                             SavedState saved) {
  std::string why;
  if (!cuda_available(&why)) fail("cannot use the cuda engine: ", why);
  return make_cuda_engine_impl(spec, matmul, saved);
}
}  // namespace detail
}  // namespace nmsnn
