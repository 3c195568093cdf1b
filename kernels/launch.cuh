// launch.cuh — block and grid sizes, and the check after every kernel launch.
//
// Every launch wrapper of a 1-D kernel takes its block size as a last argument (defaulting to
// the size the engine uses), so tests and benchmarks can run the same kernel at 32 .. 1024
// threads, as llm.c's dev/cuda does; check_block_size rejects anything else with the kernel's
// name.
//
// A launch returns no status; cudaGetLastError() right after it reports a bad configuration
// (too many threads, too much shared memory, no kernel image for this GPU). Errors that happen
// while the kernel runs (a bad address) surface at the next synchronising call, which is checked
// where it is made. The message names the kernel, where it was launched and its shapes, so
// "masked_linear_forward (M=128000, N=100, K=784) failed at ..." says what was running.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <climits>

#include "nmsnn/error.hpp"

namespace nmsnn::kernels {

// Blocks of `threads` threads covering n items (n >= 1), within the x-dimension limit.
inline unsigned grid_for(long long n, int threads) {
  const long long blocks = (n + threads - 1) / threads;
  if (blocks > INT_MAX) ::nmsnn::detail::fail("grid_for: ", n, " items need ", blocks, " blocks");
  return unsigned(blocks < 1 ? 1 : blocks);
}

// The block sizes a wrapper accepts: whole warps, up to the 1024 threads a block may hold.
// Kernels that reduce in shared memory size their arrays for kMaxBlockSize.
constexpr int kMaxBlockSize = 1024;
inline void check_block_size(const char* kernel, int block_size) {
  if (block_size < 32 || block_size > kMaxBlockSize || block_size % 32 != 0)
    ::nmsnn::detail::fail(kernel, ": block size must be a multiple of 32 in [32, ",
                          kMaxBlockSize, "], got ", block_size);
}

// The block size a kernel runs at: the one asked for, or fewer whole warps where the kernel's
// registers cap its blocks (65,536 registers a block: a kernel of more than 64 registers a thread
// cannot launch 1024 threads; the H200 refused lif_forward's 68 with "too many resources
// requested for launch"). The kernels that take a block size give the same results at any, so
// a request over the cap runs at the cap. Any kernel (at most 255 registers) launches 256
// threads, so only larger requests ask the runtime.
template <class Kernel>
int fit_block_size(Kernel* kernel, const char* name, int block_size) {
  if (block_size <= 256) return block_size;
  cudaFuncAttributes attr{};
  const cudaError_t status = cudaFuncGetAttributes(&attr, kernel);
  if (status != cudaSuccess)
    ::nmsnn::detail::fail(name, ": cudaFuncGetAttributes failed: ", cudaGetErrorName(status),
                          " (", cudaGetErrorString(status), ")");
  return std::min(block_size, attr.maxThreadsPerBlock / 32 * 32);
}

// Blocks for a grid-stride loop over n items (n >= 1): one item per thread, at most `cap`
// blocks (each thread then takes every gridDim.x * blockDim.x-th item).
inline unsigned grid_stride_for(long long n, int threads, long long cap = 65536) {
  return unsigned(std::clamp<long long>((n + threads - 1) / threads, 1, cap));
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
