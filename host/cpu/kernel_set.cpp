// cpu/kernel_set.cpp — choosing the CPU kernel set at run time (see kernel_set.hpp).
#include "cpu/kernel_set.hpp"

#include <cstdlib>
#include <string>

#include "nmsnn/error.hpp"
#include "nmsnn/network.hpp"

namespace nmsnn::cpu {

bool kernel_set_supported(KernelSet set) {
  switch (set) {
    case KernelSet::baseline: return true;
#if defined(NMSNN_CPU_X86)
    case KernelSet::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case KernelSet::avx512:
#if defined(NMSNN_CPU_AVX512)
      return kernel_set_supported(KernelSet::avx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512bw");
#else
      return false;  // not built: the compiler was not sound for it (cmake/CpuFlags.cmake)
#endif
#endif
    default: return false;
  }
}

const char* to_string(KernelSet set) {
  switch (set) {
    case KernelSet::avx2: return "avx2";
    case KernelSet::avx512: return "avx512";
    default: return "baseline";
  }
}

namespace {
KernelSet choose() {
  const char* env = std::getenv("NMSNN_CPU_KERNELS");
  const std::string want = env ? env : "";
  if (want.empty() || want == "auto") {
    for (KernelSet set : {KernelSet::avx512, KernelSet::avx2})
      if (kernel_set_supported(set)) return set;
    return KernelSet::baseline;
  }
  for (KernelSet set : {KernelSet::baseline, KernelSet::avx2, KernelSet::avx512}) {
    if (want != to_string(set)) continue;
    if (!kernel_set_supported(set))
      detail::fail("NMSNN_CPU_KERNELS=", want, ", but this CPU (or this build) cannot run the ",
                   want, " kernels",
                   set == KernelSet::avx512 ? " (AVX-512 F/VL/DQ/BW, and a compiler found sound "
                                              "for them at configure time)"
                                            : " (AVX2 and FMA)");
    return set;
  }
  detail::fail("environment variable NMSNN_CPU_KERNELS: expected auto, baseline, avx2 or avx512, "
               "got ", detail::quote(want));
}
}  // namespace

KernelSet active_kernel_set() {
  static const KernelSet set = choose();
  return set;
}

}  // namespace nmsnn::cpu

namespace nmsnn {
const char* cpu_kernel_set() { return cpu::to_string(cpu::active_kernel_set()); }
}  // namespace nmsnn
