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
                                                SavedState saved, bool sample_clusters,
                                                int device);  // cuda_engine.cu

std::unique_ptr<EngineImpl> make_cuda_engine(const NetworkSpec& spec, MatmulPrecision matmul,
                                             SavedState saved, bool sample_clusters, int device) {
  if (device < 0) fail("cannot use the cuda engine: the CUDA device must be >= 0, got ", device);
  std::string why;
  if (!cuda_available(&why)) fail("cannot use the cuda engine: ", why);
  int count = 0;
  NMSNN_CUDA_CHECK(cudaGetDeviceCount(&count));
  if (device >= count)
    fail("cannot use the cuda engine: CUDA device ", device, " requested, this machine has ", count,
         count == 1 ? " (device 0)" : " (devices 0 to " + std::to_string(count - 1) + ")",
         "; CUDA_VISIBLE_DEVICES, when set, limits which ones this process sees");
  return make_cuda_engine_impl(spec, matmul, saved, sample_clusters, device);
}
}  // namespace detail
}  // namespace nmsnn
