// cpu/kernel_set.hpp — which compiled variant of the CPU engine's hot kernels runs on this CPU.
//
// The library is built for a portable baseline (any x86-64, or any CPU of another architecture);
// its hot kernels (the tiled product, tile_gemm.hpp, and the noise masks, noise_blocks.hpp) are
// compiled again for AVX2+FMA and for AVX-512 on x86-64, each copy inside a function with its own
// target attribute, and the variant is chosen at run time from the CPU's features: the widest
// the CPU has. The environment variable NMSNN_CPU_KERNELS=baseline|avx2|avx512 forces one (for
// tests and comparisons; asking for a set the CPU lacks is an error). Results within one set are
// bit-identical from run to run; across sets they differ by rounding (fused multiply-adds round
// once, and the sets sum the products in the same order but with or without FMA).
//
// The avx512 set exists only where CMake found the compiler sound for its kernels
// (NMSNN_CPU_AVX512, cmake/CpuFlags.cmake): GCC 12.2 miscompiles some constant vectors with
// AVX-512 enabled (tests/compiler_soundness.cpp), which these kernels do not contain.
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#define NMSNN_CPU_X86 1
// The instruction sets of the two x86 kernel sets, as function attributes.
#define NMSNN_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define NMSNN_TARGET_AVX512 \
  __attribute__((target("avx2,fma,avx512f,avx512vl,avx512dq,avx512bw")))
#endif

namespace nmsnn::cpu {

enum class KernelSet { baseline, avx2, avx512 };

// The set in use, decided once per process (environment, then CPU features).
KernelSet active_kernel_set();
const char* to_string(KernelSet set);  // "baseline", "avx2", "avx512"
// Whether this CPU (and this build) can run the set.
bool kernel_set_supported(KernelSet set);

}  // namespace nmsnn::cpu
