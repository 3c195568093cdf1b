// gpu_timing.cuh — what the CUDA benchmarks share: a checked-call macro, skipping without a GPU,
// counted device allocations, a stream with a cuBLAS handle, and GPU-event timing loops.
#pragma once

#include <benchmark/benchmark.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "nmsnn/nmsnn.hpp"

namespace bench {

#define CHECK(call)                                                                              \
  do {                                                                                           \
    const cudaError_t e_ = (call);                                                               \
    if (e_ != cudaSuccess)                                                                       \
      throw nmsnn::Error(std::string(#call) + " failed: " + cudaGetErrorString(e_));           \
  } while (0)

inline bool have_gpu(benchmark::State& state) {
  std::string why;
  if (nmsnn::cuda_available(&why)) return true;
  state.SkipWithError(("no CUDA device: " + why).c_str());
  return false;
}

// Uniform values in [lo, hi) from a hash of (seed, index) (splitmix64's finaliser), made on the
// device: W2's rows each filled ~1.6 GB through the host's mt19937 first, ~10 s a row, and the
// H200 run of 2026-12-04 spent 195 s on 19 rows (its first full run was cut off at 200 s).
// (A template so that each benchmark file including this header may instantiate it.)
template <class Float>
__global__ void fill_uniform_kernel(Float* p, size_t n, Float lo, Float hi, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + i;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    p[i] = lo + (hi - lo) * Float(float(z >> 40) * (1.0f / 16777216.0f));
  }
}

// Device allocations of one benchmark, counted, freed together. The fills (fill_uniform_kernel,
// cudaMemset) run asynchronously on the legacy default stream, which a benchmark's non-blocking
// stream does not wait for: the timing loops below synchronise the whole device before they
// start.
class Arena {
 public:
  ~Arena() {
    for (void* p : blocks_) cudaFree(p);
  }
  float* floats(size_t n, float lo = 0, float hi = 0, uint64_t seed = 1) {
    float* p = static_cast<float*>(bytes(n * sizeof(float)));
    if (lo != hi) {
      fill_uniform_kernel<float><<<1024, 256>>>(p, n, lo, hi, seed);
      CHECK(cudaGetLastError());
    } else {
      CHECK(cudaMemset(p, 0, n * sizeof(float)));
    }
    return p;
  }
  void* bytes(size_t n) {
    void* p = nullptr;
    CHECK(cudaMalloc(&p, std::max<size_t>(n, 256)));
    blocks_.push_back(p);
    total_ += n;
    return p;
  }
  double megabytes() const { return total_ / 1e6; }

 private:
  std::vector<void*> blocks_;
  size_t total_ = 0;
};

inline size_t used_device_bytes() {
  size_t free_b = 0, total_b = 0;
  CHECK(cudaMemGetInfo(&free_b, &total_b));
  return total_b - free_b;
}

// GPU milliseconds of work queued on one stream, between two CUDA events.
class EventTimer {
 public:
  explicit EventTimer(cudaStream_t stream) : stream_(stream) {
    CHECK(cudaEventCreate(&start_));
    CHECK(cudaEventCreate(&stop_));
  }
  ~EventTimer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;

  template <class Body>
  float ms(Body&& body) {
    CHECK(cudaEventRecord(start_, stream_));
    body();
    CHECK(cudaEventRecord(stop_, stream_));
    CHECK(cudaEventSynchronize(stop_));
    float ms = 0;
    CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    return ms;
  }

 private:
  cudaStream_t stream_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

// Times `body` (queued on `stream`) with CUDA events as the benchmark's iteration time, and
// returns the mean milliseconds per iteration. (Counters are computed from it directly: Google
// Benchmark's rate counters divide by CPU time, which is meaningless for GPU work.)
template <class Body>
double timed_loop(benchmark::State& state, cudaStream_t stream, Body&& body) {
  EventTimer timer(stream);
  CHECK(cudaDeviceSynchronize());  // the set-up's fills and copies, on any stream, are done
  body();  // warm-up: first-use costs of cuBLAS and the kernels (workspace, module loading)
  CHECK(cudaDeviceSynchronize());
  double total_ms = 0;
  for (auto _ : state) {
    const float ms = timer.ms(body);
    state.SetIterationTime(ms / 1e3);
    total_ms += ms;
  }
  return total_ms / double(std::max<benchmark::IterationCount>(1, state.iterations()));
}

// Median GPU milliseconds of `reps` runs of body, after the set-up and one warm-up run finished.
template <class Body>
double median_ms(cudaStream_t stream, int reps, Body&& body) {
  EventTimer timer(stream);
  CHECK(cudaDeviceSynchronize());
  body();
  CHECK(cudaDeviceSynchronize());
  std::vector<float> times;
  for (int r = 0; r < reps; ++r) times.push_back(timer.ms(body));
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

struct Gpu {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  Gpu() {
    CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    if (cublasCreate(&cublas) != CUBLAS_STATUS_SUCCESS) throw nmsnn::Error("cublasCreate failed");
    cublasSetStream(cublas, stream);
  }
  ~Gpu() {
    cublasDestroy(cublas);
    cudaStreamDestroy(stream);
  }
};

}  // namespace bench
