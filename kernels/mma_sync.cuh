// mma_sync.cuh — the two warp-wide tensor-core instructions the masked forward issues itself
// (mma.sync, PTX ISA "Warp-level matrix multiply-accumulate"), and their fragment layouts.
//
// Unlike WMMA, whose per-lane layout is opaque, mma.sync documents which lane holds which element,
// so a kernel can build its A operand in registers (the noise-masked input, straight from Philox)
// with no trip through shared memory. With g = lane / 4 and t = lane % 4:
//
//   m16n8k8, TF32 operands (each .b32 register one value), FP32 accumulators:
//     A 16 x 8   a0 (g, t)   a1 (g+8, t)   a2 (g, t+4)   a3 (g+8, t+4)
//     B  8 x 8   b0 (t, g)   b1 (t+4, g)
//   m16n8k16, BF16 operands (each .b32 register two values, the lower column in the low half):
//     A 16 x 16  a0 (g, 2t..2t+1)   a1 (g+8, 2t..2t+1)   a2 (g, 2t+8..)   a3 (g+8, 2t+8..)
//     B 16 x 8   b0 (2t..2t+1, g)   b1 (2t+8..2t+9, g)
//   both: C = D 16 x 8   c0 (g, 2t)   c1 (g, 2t+1)   c2 (g+8, 2t)   c3 (g+8, 2t+1)
//
// Every lane of the warp must issue the instruction (.aligned). A TF32 operand's low 13 bits are
// ignored, so callers round (cvt.rna) first. The CUDA emulation (tests/cuda_emulation) implements
// both from these layouts, lane by lane: it records each lane's registers and applies the
// products at the block's next __syncthreads, so kernels read their accumulators only after one.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>
#include <cstring>

#include "float_bits.cuh"

namespace nmsnn::kernels {

// Two floats as a BF16 pair in one register, each rounded to nearest even; lo in the low half.
__device__ inline uint32_t pack_bf16x2(float lo, float hi) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // one cvt.rn.bf16x2.f32
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return u;
#else
  const __nv_bfloat16 l = __float2bfloat16(lo), h = __float2bfloat16(hi);
  uint16_t lb, hb;
  std::memcpy(&lb, &l, 2);
  std::memcpy(&hb, &h, 2);
  return uint32_t(lb) | uint32_t(hb) << 16;
#endif
}

// d += A B, m16n8k8, TF32 operands.
__device__ inline void mma_tf32_m16n8k8(float (&d)[4], const uint32_t (&a)[4],
                                        const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#elif defined(__CUDA_ARCH__)
  __trap();  // not built for this architecture (the library targets 80 and 90)
#elif defined(NMSNN_EMULATED_CUDA)
  ::emulated::mma_tf32_m16n8k8(d, a, b);
#endif
}

// d += A B, m16n8k16, BF16 operands.
__device__ inline void mma_bf16_m16n8k16(float (&d)[4], const uint32_t (&a)[4],
                                         const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#elif defined(__CUDA_ARCH__)
  __trap();
#elif defined(NMSNN_EMULATED_CUDA)
  ::emulated::mma_bf16_m16n8k16(d, a, b);
#endif
}

}  // namespace nmsnn::kernels
