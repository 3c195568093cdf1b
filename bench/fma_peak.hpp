// fma_peak.hpp — the FP32 multiply-add peak of one core for each CPU kernel set, in CPU time.
//
// Shared by cpu_peak.cpp and bench_cpu_engine.cpp, so the engine's GFLOP/s is put against the
// peak of the instructions its kernel set uses: 512-bit FMAs for avx512, 256-bit FMAs for avx2,
// 128-bit multiply and add (no FMA in x86-64's baseline) for baseline. 12 independent chains
// per thread cover two FMA pipes of 4-5 cycles' latency.
//
// Rates are FLOP per second of the measuring thread's CPU time (CLOCK_THREAD_CPUTIME_ID), not of
// wall time: on a machine shared with other work the wall-clock rate falls with every time slice
// another process takes, while the CPU-time rate measures the core itself. Compare it with the
// engine's FLOP per CPU-second of the whole process (all its threads).
#pragma once

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace fma_peak {

inline double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}
inline double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

constexpr int kChains = 12;
inline volatile float sink = 0;

// acc = acc * m + c converges (m < 1): no overflow, no denormals however long it runs.
template <class V>
[[gnu::always_inline]] inline float chains(std::uint64_t iterations, const V& m, const V& c,
                                           const V& start) {
  V a[kChains];
  for (int k = 0; k < kChains; ++k) a[k] = start + V{} + float(k) * 0.01f;
  for (std::uint64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
    for (int k = 0; k < kChains; ++k) a[k] = a[k] * m + c;
  }
  V s = a[0];
  for (int k = 1; k < kChains; ++k) s += a[k];
  return s[0];
}

typedef float v4f __attribute__((vector_size(16)));
inline float run128(std::uint64_t it) {
  return chains<v4f>(it, v4f{} + 0.999999f, v4f{} + 1e-6f, v4f{} + 0.5f);
}
#if defined(__x86_64__) || defined(__i386__)
typedef float v8f __attribute__((vector_size(32)));
typedef float v16f __attribute__((vector_size(64)));
__attribute__((target("avx2,fma"), noinline)) inline float run256(std::uint64_t it) {
  return chains<v8f>(it, v8f{} + 0.999999f, v8f{} + 1e-6f, v8f{} + 0.5f);
}
__attribute__((target("avx2,fma,avx512f"), noinline)) inline float run512(std::uint64_t it) {
  return chains<v16f>(it, v16f{} + 0.999999f, v16f{} + 1e-6f, v16f{} + 0.5f);
}
#endif

// Lanes of the set's vectors and whether it has FMA; 0 lanes if this CPU cannot run it.
inline int lanes_of(const std::string& set) {
#if defined(__x86_64__) || defined(__i386__)
  if (set == "avx512") return __builtin_cpu_supports("avx512f") ? 16 : 0;
  if (set == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 8 : 0;
#endif
  return set == "baseline" ? 4 : 0;
}

// GFLOP per CPU-second of one thread with `set`'s vectors (best of `reps` runs of about
// `seconds` each); 0 where the CPU lacks the set. A multiply-add counts 2 FLOP.
inline double gflops_per_core(const std::string& set, double seconds = 0.2, int reps = 5) {
  const int lanes = lanes_of(set);
  if (lanes == 0) return 0;
  auto run = [&](std::uint64_t it) {
#if defined(__x86_64__) || defined(__i386__)
    if (lanes == 16) return run512(it);
    if (lanes == 8) return run256(it);
#endif
    return run128(it);
  };
  std::uint64_t it = 1u << 16;
  for (;;) {  // calibrate
    const double t0 = thread_cpu_seconds();
    sink = sink + run(it);
    const double s = thread_cpu_seconds() - t0;
    if (s > 0.02) {
      it = std::max<std::uint64_t>(it, std::uint64_t(double(it) * seconds / s));
      break;
    }
    it *= 4;
  }
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    const double t0 = thread_cpu_seconds();
    sink = sink + run(it);
    const double s = thread_cpu_seconds() - t0;
    best = std::max(best, 2.0 * lanes * kChains * double(it) / s / 1e9);
  }
  return best;
}

}  // namespace fma_peak
