// wgmma.cuh — Hopper's warpgroup tensor-core instruction (PTX ISA "Asynchronous Warpgroup Level
// Matrix Multiply-Accumulate", sm_90a only) in the one form the masked forward issues: A from
// registers, B from shared memory through a matrix descriptor, FP32 accumulators.
//
//   wgmma.mma_async.sync.aligned.m64n{8 NT}k8.f32.tf32.tf32    (NT = 8, 13, 16: N = 64, 104, 128)
//   wgmma.mma_async.sync.aligned.m64n{8 NT}k16.f32.bf16.bf16
//
// The 4 warps of a warpgroup issue it together; warp w supplies rows 16w .. 16w+15 of the m64
// tile and gets the same rows of D. Per warp the registers are laid out as mma.sync's
// (mma_sync.cuh): A as the m16n8k8 (TF32) or m16n8k16 (BF16) A fragment, D as n8 tile j's four
// accumulators c0..c3 in d[j][0..3]. So a kernel that issued, per warp, two m16 row tiles times
// NT n8 tiles of mma.sync issues instead one wgmma per row tile and k step, with the same
// registers: only B moves, from per-lane fragments to a shared-memory tile the instruction reads.
//
// B in shared memory, "K-major" (the only layout TF32 allows), without swizzling: core matrices
// of 8 rows (n) x 16 bytes (4 TF32 or 8 BF16 values along k), each 128 contiguous bytes, row n % 8
// at byte 16 (n % 8). The descriptor gives the core matrix of (k, n) at
//     start + (k / kPerCore) * lbo + (n / 8) * sbo        (kPerCore = 4 TF32, 8 BF16)
// (bits 0-13 start >> 4, 16-29 lbo >> 4, 32-45 sbo >> 4, 62-63 swizzle = 0). Memory written by
// ordinary stores must be made visible to the instruction (the async proxy) with
// wgmma_fence_shared() in each writing thread before the barrier that publishes it.
//
// The instruction is asynchronous: wgmma_fence() before it (registers written since the last one),
// wgmma_commit() after a group, wgmma_wait_all() before the accumulators or A's registers are
// touched again and before the shared tile is rewritten. Between issue and wait the warp may do
// other work: the masked forward makes the next stage's masks there.
//
// The CUDA emulation (tests/cuda_emulation/warp_mma.cpp) implements it from these layouts, per
// warp: it records each lane's registers, the tile's address and the descriptor's offsets, and
// applies the product at the block's next __syncthreads, as it does mma.sync. This layout is the
// PTX ISA's as read here; it has not yet run on a GPU (bench/RESULTS.md says when it has).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "wgmma_descriptor.hpp"

#if defined(NMSNN_EMULATED_CUDA)
namespace emulated {  // tests/cuda_emulation/include/emulated_kernel.hpp
void wgmma_m64(float* d, int n, const uint32_t (&a)[4], const void* tile, uint64_t desc,
               bool bf16);
}
#endif

namespace nmsnn::kernels {

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define NMSNN_WGMMA_DEVICE 1
#endif

// Orders this thread's earlier register writes before the next wgmma (wgmma.fence).
__device__ inline void wgmma_fence() {
#if defined(NMSNN_WGMMA_DEVICE)
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
// Closes the group of the wgmma issued since the last commit.
__device__ inline void wgmma_commit() {
#if defined(NMSNN_WGMMA_DEVICE)
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
// Waits for every committed group: their accumulators are then final, A's registers and the
// shared tiles free.
__device__ inline void wgmma_wait_all() {
#if defined(NMSNN_WGMMA_DEVICE)
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#endif
}
// Makes this thread's ordinary shared-memory stores visible to the next wgmma that reads them.
__device__ inline void wgmma_fence_shared() {
#if defined(NMSNN_WGMMA_DEVICE)
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// The shared-window address of a __shared__ pointer.
__device__ inline uint32_t shared_address(const void* p) {
#if defined(__CUDA_ARCH__)
  return uint32_t(__cvta_generic_to_shared(p));
#else
  (void)p;
  return 0;  // the emulation passes the pointer itself (see wgmma_m64 below)
#endif
}

// The accumulator operand lists: NMSNN_WGMMA_D<N> the registers %0 .. %(N/2 - 1) as PTX writes a
// vector, NMSNN_WGMMA_D<N>_OPERANDS the matching "+f" bindings of d[NT][4], NMSNN_WGMMA_A<N> the
// four A registers and the descriptor that follow them.
#define NMSNN_WGMMA_D64 \
  "{" \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15" ", " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31" \
  "}"
#define NMSNN_WGMMA_D64_OPERANDS \
  "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), \
  "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), \
  "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), \
  "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])
// A and the descriptor follow the 32 accumulators.
#define NMSNN_WGMMA_A64 "{%32, %33, %34, %35}, %36"
#define NMSNN_WGMMA_D104 \
  "{" \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15" ", " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31" ", " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47" ", " \
  "%48, %49, %50, %51" \
  "}"
#define NMSNN_WGMMA_D104_OPERANDS \
  "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), \
  "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), \
  "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), \
  "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3]), \
  "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]), "+f"(d[8][3]), "+f"(d[9][0]), "+f"(d[9][1]), "+f"(d[9][2]), "+f"(d[9][3]), \
  "+f"(d[10][0]), "+f"(d[10][1]), "+f"(d[10][2]), "+f"(d[10][3]), "+f"(d[11][0]), "+f"(d[11][1]), "+f"(d[11][2]), "+f"(d[11][3]), \
  "+f"(d[12][0]), "+f"(d[12][1]), "+f"(d[12][2]), "+f"(d[12][3])
// A and the descriptor follow the 52 accumulators.
#define NMSNN_WGMMA_A104 "{%52, %53, %54, %55}, %56"
#define NMSNN_WGMMA_D128 \
  "{" \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15" ", " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31" ", " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47" ", " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63" \
  "}"
#define NMSNN_WGMMA_D128_OPERANDS \
  "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), \
  "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), \
  "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), \
  "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3]), \
  "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]), "+f"(d[8][3]), "+f"(d[9][0]), "+f"(d[9][1]), "+f"(d[9][2]), "+f"(d[9][3]), \
  "+f"(d[10][0]), "+f"(d[10][1]), "+f"(d[10][2]), "+f"(d[10][3]), "+f"(d[11][0]), "+f"(d[11][1]), "+f"(d[11][2]), "+f"(d[11][3]), \
  "+f"(d[12][0]), "+f"(d[12][1]), "+f"(d[12][2]), "+f"(d[12][3]), "+f"(d[13][0]), "+f"(d[13][1]), "+f"(d[13][2]), "+f"(d[13][3]), \
  "+f"(d[14][0]), "+f"(d[14][1]), "+f"(d[14][2]), "+f"(d[14][3]), "+f"(d[15][0]), "+f"(d[15][1]), "+f"(d[15][2]), "+f"(d[15][3])
// A and the descriptor follow the 64 accumulators.
#define NMSNN_WGMMA_A128 "{%64, %65, %66, %67}, %68"

// d (this warp's 16 rows of D, N = 8 NT columns) += A (its 16 rows, k8 TF32 or k16 BF16, in
// registers) x B (the tile at `b`, core matrices lbo apart along k and sbo apart along n).
template <int NT>
struct WgmmaM64;

#if defined(NMSNN_WGMMA_DEVICE)
#define NMSNN_WGMMA_M64(NT, N)                                                                \
  template <>                                                                                 \
  struct WgmmaM64<NT> {                                                                       \
    __device__ static void tf32(float (&d)[NT][4], const uint32_t (&a)[4], uint64_t desc) {   \
      asm volatile("wgmma.mma_async.sync.aligned.m64n" #N "k8.f32.tf32.tf32 "                 \
                   NMSNN_WGMMA_D##N ", " NMSNN_WGMMA_A##N ", 1, 1, 1;\n"                      \
                   : NMSNN_WGMMA_D##N##_OPERANDS                                              \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc));                  \
    }                                                                                         \
    __device__ static void bf16(float (&d)[NT][4], const uint32_t (&a)[4], uint64_t desc) {   \
      asm volatile("wgmma.mma_async.sync.aligned.m64n" #N "k16.f32.bf16.bf16 "                \
                   NMSNN_WGMMA_D##N ", " NMSNN_WGMMA_A##N ", 1, 1, 1, 0;\n"                   \
                   : NMSNN_WGMMA_D##N##_OPERANDS                                              \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc));                  \
    }                                                                                         \
  };
NMSNN_WGMMA_M64(8, 64)
NMSNN_WGMMA_M64(13, 104)
NMSNN_WGMMA_M64(16, 128)
#undef NMSNN_WGMMA_M64
#endif

// One wgmma: d += A x B, B the tile at `b` (shared memory) with offsets lbo and sbo. Every thread
// of the warpgroup issues it.
template <int NT>
__device__ inline void wgmma_m64(float (&d)[NT][4], const uint32_t (&a)[4], const void* b,
                                 uint32_t lbo, uint32_t sbo, bool bf16) {
  const uint64_t desc = wgmma_descriptor(shared_address(b), lbo, sbo);
#if defined(NMSNN_WGMMA_DEVICE)
  if (bf16)
    WgmmaM64<NT>::bf16(d, a, desc);
  else
    WgmmaM64<NT>::tf32(d, a, desc);
#elif defined(NMSNN_EMULATED_CUDA)
  ::emulated::wgmma_m64(&d[0][0], 8 * NT, a, b, desc, bf16);
#else
  (void)d, (void)a, (void)desc, (void)bf16;
#if defined(__CUDA_ARCH__)
  __trap();  // not built for sm_90a: the host picks mma.sync there (masked_linear.cu)
#endif
#endif
}

}  // namespace nmsnn::kernels
