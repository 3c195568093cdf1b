// cpu/kernel_set.hpp — which compiled variant of the CPU engine's hot kernels runs on this CPU.
//
// The library is built for a portable baseline (any x86-64, or any CPU of another architecture);
// its hottest kernel, the tiled product (tile_gemm.hpp), is compiled a second time for AVX2+FMA
// on x86-64, and the variant is chosen at run time from the CPU's features. The environment
// variable NMSNN_CPU_KERNELS=baseline|avx2 forces one (for tests and comparisons; asking for
// avx2 on a CPU without it is an error). Results within one kernel set are bit-identical from
// run to run; across sets they differ by rounding (AVX2's fused multiply-adds round once).
#pragma once

namespace nmsnn::cpu {

enum class KernelSet { baseline, avx2 };

// The set in use, decided once per process (environment, then CPU features).
KernelSet active_kernel_set();
const char* to_string(KernelSet set);  // "baseline", "avx2"
// Whether this CPU (and this build) can run the set.
bool kernel_set_supported(KernelSet set);

}  // namespace nmsnn::cpu
