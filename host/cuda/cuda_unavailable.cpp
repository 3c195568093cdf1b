// cuda/cuda_unavailable.cpp — the `cuda` engine in a build without CUDA: it says so.
#include "network/engine.hpp"
#include "nmsnn/error.hpp"

namespace nmsnn {

bool cuda_available(std::string* why) {
  if (why) *why = "this build of nmsnn has no CUDA engine (no CUDA compiler was found, or it was "
                  "configured with -DNMSNN_CUDA=OFF)";
  return false;
}

namespace detail {
std::unique_ptr<EngineImpl> make_cuda_engine(const NetworkSpec&, MatmulPrecision, SavedState,
                                             bool /*sample_clusters*/, int /*device*/) {
  std::string why;
  cuda_available(&why);
  fail("cannot use the cuda engine: ", why);
}
}  // namespace detail
}  // namespace nmsnn
