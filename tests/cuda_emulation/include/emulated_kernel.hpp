// emulated_kernel.hpp (emulated) — CUDA's kernel vocabulary on CPU threads, included first by
// every .cu file that rewrite_launches.py turns into C++.
//
// A launch runs the grid's blocks one after another (or is recorded, on a stream being captured); the threads of a block are real threads,
// and __syncthreads is a barrier among them. __shared__ variables become function statics,
// shared by the threads of the running block (blocks never overlap, so that is exact).
// Warp-synchronous code without __syncthreads is not emulated faithfully; the kernels here use
// none.
#pragma once

#include <math.h>

#include <atomic>
#include <barrier>
#include <functional>

#include "cuda_runtime.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static
#define __restrict__

namespace emulated {
extern thread_local uint3 thread_index, block_index;
extern thread_local dim3 block_dim, grid_dim;
extern thread_local std::barrier<>* block_barrier;
// Runs body() once per thread of every block of `grid`.
void launch(dim3 grid, dim3 block, const std::function<void()>& body);
// A launch on `stream`: run now, or recorded while the stream is captured into a graph (the
// kernel's arguments are copied into `body`, as a launch copies them).
inline void launch_on(cudaStream_t stream, dim3 grid, dim3 block, std::function<void()> body) {
  enqueue(stream, [=] { launch(grid, block, body); });
}
inline void syncthreads() { block_barrier->arrive_and_wait(); }
}  // namespace emulated

#define threadIdx ::emulated::thread_index
#define blockIdx ::emulated::block_index
#define blockDim ::emulated::block_dim
#define gridDim ::emulated::grid_dim
#define __syncthreads() ::emulated::syncthreads()
#define __trap() std::abort()

inline float nanf(const char*) { return NAN; }
// The threads of a block are real threads: atomics are real atomics.
inline unsigned long long atomicMin(unsigned long long* address, unsigned long long value) {
  std::atomic_ref<unsigned long long> a(*address);
  unsigned long long old = a.load();
  while (value < old && !a.compare_exchange_weak(old, value)) {
  }
  return old;
}
// Round-to-nearest intrinsics: plain operations (the emulation is built without FMA contraction).
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
