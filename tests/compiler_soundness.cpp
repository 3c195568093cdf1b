// compiler_soundness.cpp — does the compiler, with the flags nmsnn is built with, generate correct
// code for small constant vector initialisers?
//
// Debian 12's GCC 12.2 with AVX-512 enabled (-march=x86-64-v4, or -march=native on an AVX-512
// CPU) at -O2/-O3 compiles `std::vector<int64_t> v{1, 1, 1, 0}` into a broadcast of 1 to every
// element: the library and its tests would be silently miscompiled. CMake compiles and runs this
// file at configure time with the CPU flags it is about to use (and drops AVX-512 when it fails),
// and ctest runs it again, built with the library's exact flags (test `compiler_soundness`).
// Prints the cases that came out wrong and exits 1, or exits 0.
//
// The construct, found by reading the assembly: a 256-bit constant vector of 64-bit integers
// whose nonzero elements are all equal and are followed by zeros ({1, 1, 1, 0}, {1, 1, 0, 0})
// becomes a broadcast of that value (`vpbroadcastq`), the zeros lost. It needs AVX-512F enabled
// (a -march flag or a function's target attribute); with AVX2 alone the constant is loaded
// from memory and right. 32-bit and float vectors of the same shape came out right.
//
// With NMSNN_SOUNDNESS_KERNELS (CMake defines it, with host/ and include/ on the include path)
// it also runs the avx512 kernel set's code (host/cpu/tile_gemm.hpp, noise_blocks.hpp), whose
// functions carry an AVX-512 target attribute, against the avx2 set and the scalar Philox on this
// CPU: that set is built only when this passes (cmake/CpuFlags.cmake, NMSNN_CPU_AVX512). The
// same cases under the AVX-512 attribute are reported but not failed: the kernels contain no
// such constant (they are written without constant vectors), and this run checks their output.
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <iterator>
#include <vector>

#if defined(NMSNN_SOUNDNESS_KERNELS)
#include "cpu/noise_blocks.hpp"
#include "cpu/tile_gemm.hpp"
#include "nmsnn/philox.hpp"
#endif

namespace {

// Out of line, so each initialiser is materialised in memory as in real code, not folded away.
template <class T>
__attribute__((noinline)) bool equals(const std::vector<T>& v, std::initializer_list<T> want) {
  return v == std::vector<T>(want);
}

__attribute__((noinline)) bool int64_tail4() {
  std::vector<int64_t> v{1, 1, 1, 0};
  return equals<int64_t>(v, {1, 1, 1, 0});
}
__attribute__((noinline)) bool int64_tail8() {
  std::vector<int64_t> v{1, 1, 1, 1, 1, 1, 1, 0};
  return equals<int64_t>(v, {1, 1, 1, 1, 1, 1, 1, 0});
}
__attribute__((noinline)) bool int32_tail8() {
  std::vector<int32_t> v{2, 2, 2, 2, 2, 2, 2, 0};
  return equals<int32_t>(v, {2, 2, 2, 2, 2, 2, 2, 0});
}
__attribute__((noinline)) bool double_tail4() {
  std::vector<double> v{1, 1, 1, 0};
  return equals<double>(v, {1, 1, 1, 0});
}
__attribute__((noinline)) bool float_tail16() {
  std::vector<float> v{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
  return equals<float>(v, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0});
}

#if defined(NMSNN_SOUNDNESS_KERNELS) && (defined(__x86_64__) || defined(__i386__))
// The construct under the avx512 kernel set's target attribute, without -march.
NMSNN_TARGET_AVX512 __attribute__((noinline)) bool int64_tail4_avx512() {
  std::vector<int64_t> v{1, 1, 1, 0};
  return equals<int64_t>(v, {1, 1, 1, 0});
}

bool cpu_has_avx512() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
}

float value(uint64_t i) {  // deterministic values in [-1, 1)
  return nmsnn::uniform_from_bits(uint32_t(i * 0x9E3779B97F4A7C15ull >> 32)) * 2 - 1;
}

// The avx512 product equals the avx2 one bit for bit (both fuse every multiply-add and add over
// j in the same order), at widths that use every column tile and row counts that use every
// short row tile; and the avx512 noise blocks equal the scalar Philox.
int avx512_kernels_wrong() {
  using nmsnn::cpu::RowsOf;
  int wrong = 0;
  for (int rows : {1, 5, 8, 13}) {
    for (int width : {8, 16, 24, 40, 48, 104, 200}) {
      const int J = 133;
      std::vector<float> A(size_t(rows) * J), B(size_t(J) * width), C1(size_t(rows) * width),
          C2;
      for (size_t i = 0; i < A.size(); ++i) A[i] = value(i);
      for (size_t i = 0; i < B.size(); ++i) B[i] = value(i + 7777);
      for (size_t i = 0; i < C1.size(); ++i) C1[i] = value(i + 99);
      C2 = C1;
      nmsnn::cpu::gemm_accumulate_avx2<float>(rows, J, width, A.data(), J, 1,
                                              {B.data(), size_t(width), nullptr},
                                              {C1.data(), size_t(width), nullptr});
      nmsnn::cpu::gemm_accumulate_avx512<float>(rows, J, width, A.data(), J, 1,
                                                {B.data(), size_t(width), nullptr},
                                                {C2.data(), size_t(width), nullptr});
      if (C1 != C2) {
        std::printf("miscompiled: avx512 tiled product, %d rows, width %d\n", rows, width);
        ++wrong;
      }
    }
  }
  const nmsnn::NoiseKey key{0x0123456789abcdefull, 42};
  for (int T : {1, 9, 128}) {
    std::vector<uint32_t> bits(4 * size_t(T));
    nmsnn::cpu::noise_blocks_over_time_avx512(key, 5, 3, T, bits.data());
    for (int t = 0; t < T; ++t)
      for (int j = 0; j < 4; ++j)
        if (bits[size_t(j) * T + t] != nmsnn::noise_block(key, 5, 3, uint32_t(t)).v[j]) {
          std::printf("miscompiled: avx512 noise blocks, T=%d t=%d word %d\n", T, t, j);
          return wrong + 1;
        }
  }
  return wrong;
}
#endif

}  // namespace

int main() {
  struct Case {
    const char* name;
    bool (*run)();
  };
  const Case cases[] = {{"std::vector<int64_t>{1, 1, 1, 0}", int64_tail4},
                        {"std::vector<int64_t>{1 x7, 0}", int64_tail8},
                        {"std::vector<int32_t>{2 x7, 0}", int32_tail8},
                        {"std::vector<double>{1, 1, 1, 0}", double_tail4},
                        {"std::vector<float>{1 x15, 0}", float_tail16}};
  int wrong = 0;
  for (const Case& c : cases)
    if (!c.run()) std::printf("miscompiled: %s\n", c.name), ++wrong;
  if (wrong == 0) std::printf("compiler_soundness: %zu cases correct\n", std::size(cases));
#if defined(NMSNN_SOUNDNESS_KERNELS) && (defined(__x86_64__) || defined(__i386__))
  if (!cpu_has_avx512()) {
    std::printf("avx512 kernel set: not run (this CPU has no AVX-512)\n");
  } else {
    if (!int64_tail4_avx512())
      std::printf("known: with the AVX-512 attribute this compiler miscompiles "
                  "std::vector<int64_t>{1, 1, 1, 0} (the kernels contain no such constant)\n");
    const int kernels_wrong = avx512_kernels_wrong();
    if (kernels_wrong == 0) std::printf("avx512 kernel set: product and noise blocks correct\n");
    wrong += kernels_wrong;
  }
#endif
  return wrong == 0 ? 0 : 1;
}
