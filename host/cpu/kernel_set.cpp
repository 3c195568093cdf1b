// cpu/kernel_set.cpp — choosing the CPU kernel set at run time (see kernel_set.hpp).
#include "cpu/kernel_set.hpp"

#include <cstdlib>
#include <string>

#include "nmsnn/error.hpp"
#include "nmsnn/network.hpp"

namespace nmsnn::cpu {

bool kernel_set_supported(KernelSet set) {
  if (set == KernelSet::baseline) return true;
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

const char* to_string(KernelSet set) { return set == KernelSet::avx2 ? "avx2" : "baseline"; }

namespace {
KernelSet choose() {
  const char* env = std::getenv("NMSNN_CPU_KERNELS");
  const std::string want = env ? env : "";
  if (want.empty() || want == "auto")
    return kernel_set_supported(KernelSet::avx2) ? KernelSet::avx2 : KernelSet::baseline;
  if (want == "baseline") return KernelSet::baseline;
  if (want == "avx2") {
    if (!kernel_set_supported(KernelSet::avx2))
      detail::fail("NMSNN_CPU_KERNELS=avx2, but this CPU (or this build) has no AVX2 and FMA");
    return KernelSet::avx2;
  }
  detail::fail("environment variable NMSNN_CPU_KERNELS: expected auto, baseline or avx2, got ",
               detail::quote(want));
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
