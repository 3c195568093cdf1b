// launch.cuh — grid sizes and the check after every kernel launch.
//
// A launch returns no status; cudaGetLastError() right after it reports a bad configuration
// (too many threads, too much shared memory, no kernel image for this GPU). Errors that happen
// while the kernel runs (a bad address) surface at the next synchronising call, which is checked
// where it is made. The message names the kernel, where it was launched and its shapes, so
// "masked_linear_forward (M=128000, N=100, K=784) failed at ..." says what was running.
#pragma once

#include <cuda_runtime.h>

#include <climits>

#include "nmsnn/error.hpp"

namespace nmsnn::kernels {

// Blocks of `threads` threads covering n items (n >= 1), within the x-dimension limit.
inline unsigned grid_for(long long n, int threads) {
  const long long blocks = (n + threads - 1) / threads;
  if (blocks > INT_MAX) ::nmsnn::detail::fail("grid_for: ", n, " items need ", blocks, " blocks");
  return unsigned(blocks < 1 ? 1 : blocks);
}

template <class... Shape>
void check_launch(const char* kernel, const char* file, int line, const Shape&... shape) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess)
    ::nmsnn::detail::fail(kernel, " (", shape..., ") failed at ", file, ":", line, ": ",
                          cudaGetErrorName(status), " (", cudaGetErrorString(status),
                          "); an earlier asynchronous error would also be reported here");
}

}  // namespace nmsnn::kernels

// NMSNN_CHECK_LAUNCH("lif_forward", "T=", T, ", B=", B) right after kernel<<<...>>>(...).
#define NMSNN_CHECK_LAUNCH(kernel, ...) \
  ::nmsnn::kernels::check_launch(kernel, __FILE__, __LINE__, __VA_ARGS__)
