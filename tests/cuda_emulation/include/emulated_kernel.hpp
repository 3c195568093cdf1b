// emulated_kernel.hpp (emulated) — CUDA's kernel vocabulary on CPU threads, included first by
// every .cu file that rewrite_launches.py turns into C++.
//
// A launch runs the grid's blocks one after another (or is recorded, on a stream being captured); the threads of a block are real threads,
// and __syncthreads is a barrier among them. __shared__ variables become function statics,
// shared by the threads of the running block (blocks never overlap, so that is exact).
// A cluster launch (cudaLaunchKernelEx with a cluster dimension) runs the blocks of one cluster
// at once, each block's threads real threads, and the clusters one after another. Its kernels
// use dynamic shared memory only (`extern __shared__`, which rewrite_launches.py turns into a
// pointer to the running block's own buffer): a static __shared__ variable would be one for the
// whole cluster, which ThreadSanitizer reports as a race. Dynamic shared memory starts filled
// with 0xFF bytes (NaN as floats), so a read before any write shows in the results.
// Warp-synchronous code without __syncthreads is not emulated faithfully; the kernels here use
// none, but for mma.sync (kernels/mma_sync.cuh), which the emulation implements lane by lane:
// the 32 lanes of a warp meet at a barrier of their own and read each other's registers.
#pragma once

// NMSNN_EMULATED_CUDA is defined for the whole emulated build (CMakeLists.txt).

#include <math.h>

#include <atomic>
#include <barrier>
#include <cstdint>
#include <functional>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

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
void apply_pending_mma();  // mma.sync's results, applied after a barrier (see Warp below)
inline void syncthreads() {
  block_barrier->arrive_and_wait();
  apply_pending_mma();
}

// The cluster of the running block (null outside a cluster launch): its blocks run at once.
struct Cluster {
  dim3 dim;                             // blocks per cluster
  std::barrier<>* barrier;              // every thread of every block of the cluster
  std::vector<unsigned char*> shared;   // each block's dynamic shared memory, by rank
  size_t shared_bytes;
};
extern thread_local Cluster* cluster;
extern thread_local unsigned cluster_rank;
extern thread_local unsigned char* dynamic_shared;  // the running block's, or null
// The lanes of one warp, for mma.sync (warp_mma.cpp). A lane cannot compute its accumulators
// alone (they need every lane's operands), and making all 32 threads meet at every mma.sync took
// 30 minutes of futex waits in the test suite, so an mma.sync only records the lane's operands
// and where its accumulators are, and the block's next __syncthreads applies them: once every
// thread has arrived, each lane reads the others' records of the same instructions and updates
// its own accumulators, in order. So an mma.sync's result can be read after the next
// __syncthreads, not before (the kernels here read their accumulators only after their loops'
// last barrier); a block that ends with results pending aborts. Records alternate between two
// lists by the parity of the lane's barriers: a list is cleared only after the barrier that
// follows everyone's reading of it.
struct Warp {
  struct Mma {
    float* d;  // the lane's four accumulators (mma.sync) or n / 2 (wgmma)
    uint32_t a[4], b[2];
    bool bf16;  // m16n8k16 (mma.sync) or m64nNk16 (wgmma) BF16, else k8 TF32
    // wgmma only: its N (0 for mma.sync), B's tile in shared memory and the descriptor's
    // offsets, and the lane's columns of B (2t, 2t + 1 of each n8 tile, by k) as the tile held
    // them at issue: the kernel may not change the tile before its wait, while here the lanes
    // apply their records after the barrier one by one.
    int n = 0;
    const unsigned char* tile = nullptr;
    uint32_t lbo = 0, sbo = 0;
    std::vector<float> b_columns;  // [n / 8][2][k]
  };
  explicit Warp(unsigned n) : lanes(n) {}
  unsigned lanes;  // 32, or fewer in a block whose size is not a multiple of 32
  std::vector<Mma> pending[2][32];  // [parity][lane]
};
extern thread_local Warp* warp;       // the running thread's warp
extern thread_local unsigned lane;    // and its lane
extern thread_local unsigned barriers;  // __syncthreads this thread has passed
// One Warp per 32 threads of a block of `threads`.
std::vector<std::unique_ptr<Warp>> make_warps(unsigned threads);
// d += A B as mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 and
// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (layouts in kernels/mma_sync.cuh), applied
// at the next __syncthreads.
void mma_tf32_m16n8k8(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);
void mma_bf16_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);
// d[0 .. n/2) += A B as wgmma.mma_async.sync.aligned.m64n<n>k8.f32.tf32.tf32 (or k16 .bf16) with
// A in registers and B at `tile` in shared memory as `desc` lays it out (kernels/wgmma.cuh; the
// descriptor's start address is ignored: the emulation has the pointer), for this warp's 16 rows
// of the m64 tile; applied at the next __syncthreads, as mma.sync.
void wgmma_m64(float* d, int n, const uint32_t (&a)[4], const void* tile, uint64_t desc,
               bool bf16);
// At the end of a block: aborts if mma.sync results are pending.
void check_no_pending_mma();

// Runs body() once per thread of every block of `grid`, the blocks of each `cluster` at once.
void launch_cluster(dim3 grid, dim3 block, dim3 cluster, size_t shared_bytes,
                    const std::function<void()>& body);
}  // namespace emulated

// The launch with attributes, as the runtime's C++ template declares it: the arguments are
// converted to the kernel's parameter types and copied (a recorded launch keeps its values).
// It fails as the device would on a grid that is not a whole number of clusters, a cluster of
// more than the portable 8 blocks, or more dynamic shared memory than the kernel was allowed.
template <class... Expected, class... Actual>
cudaError_t cudaLaunchKernelEx(const cudaLaunchConfig_t* config, void (*kernel)(Expected...),
                               Actual&&... args) {
  dim3 cluster(1, 1, 1);
  for (unsigned i = 0; i < config->numAttrs; ++i)
    if (config->attrs[i].id == cudaLaunchAttributeClusterDimension) {
      const auto& d = config->attrs[i].val.clusterDim;
      cluster = dim3(d.x, d.y, d.z);
    }
  const dim3 grid = config->gridDim, block = config->blockDim;
  const unsigned threads = block.x * block.y * block.z;
  const unsigned blocks = cluster.x * cluster.y * cluster.z;
  if (threads == 0 || threads > 1024 || grid.x * grid.y * grid.z == 0 || blocks == 0 ||
      blocks > 8 || grid.x % cluster.x || grid.y % cluster.y || grid.z % cluster.z)
    return cudaErrorInvalidConfiguration;
  const int allowed = std::max(emulated::kDefaultDynamicShared,
                               emulated::max_dynamic_shared(reinterpret_cast<const void*>(kernel)));
  if (config->dynamicSmemBytes > size_t(allowed)) return cudaErrorInvalidValue;
  std::function<void()> body = [kernel, copied = std::tuple<Expected...>(
                                            std::forward<Actual>(args)...)] {
    std::apply(kernel, copied);
  };
  const size_t bytes = config->dynamicSmemBytes;
  emulated::enqueue(config->stream,
                    [=] { emulated::launch_cluster(grid, block, cluster, bytes, body); });
  return cudaSuccess;
}

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
