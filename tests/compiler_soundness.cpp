// compiler_soundness.cpp — does the compiler, with the flags nmsnn is built with, generate correct
// code for small constant vector initialisers?
//
// Debian 12's GCC 12.2 with AVX-512 enabled (-march=x86-64-v4, or -march=native on an AVX-512
// CPU) at -O2/-O3 compiles `std::vector<int64_t> v{1, 1, 1, 0}` into a broadcast of 1 to every
// element: the library and its tests would be silently miscompiled. CMake compiles and runs this
// file at configure time with the CPU flags it is about to use (and drops AVX-512 when it fails),
// and ctest runs it again, built with the library's exact flags (test `compiler_soundness`).
// Prints the cases that came out wrong and exits 1, or exits 0.
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <iterator>
#include <vector>

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
  return wrong == 0 ? 0 : 1;
}
