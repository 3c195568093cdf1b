// runtime.cpp (emulated) — device memory with bounds checks, and kernel launches on host threads.
//
// Device memory is host memory, 256-byte aligned like cudaMalloc's. Every allocation is recorded
// so that the emulated cuBLAS can check that a product stays inside its operands; kernels' own
// accesses are checked by AddressSanitizer, which the emulated build always uses.
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "emulated_kernel.hpp"

namespace emulated {

thread_local uint3 thread_index, block_index;
thread_local dim3 block_dim, grid_dim;
thread_local std::barrier<>* block_barrier;

namespace {
std::mutex mutex;
std::map<const char*, size_t> allocations;  // start -> bytes
}  // namespace

int& captures_active() {
  static int active = 0;
  return active;
}

void* device_malloc(size_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, 256, bytes ? bytes : 1)) std::abort();
  std::lock_guard<std::mutex> lock(mutex);
  allocations[static_cast<const char*>(p)] = bytes;
  return p;
}

void device_free(void* p) {
  if (!p) return;
  {
    std::lock_guard<std::mutex> lock(mutex);
    allocations.erase(static_cast<const char*>(p));
  }
  std::free(p);
}

void check_range(const void* p, size_t bytes, const char* what) {
  std::lock_guard<std::mutex> lock(mutex);
  const char* c = static_cast<const char*>(p);
  auto it = allocations.upper_bound(c);
  if (it == allocations.begin()) {
    std::fprintf(stderr, "%s: pointer is not in a device allocation\n", what);
    std::abort();
  }
  --it;
  if (c + bytes > it->first + it->second) {
    std::fprintf(stderr, "%s: %zu bytes from offset %zu overrun an allocation of %zu\n", what,
                 bytes, size_t(c - it->first), it->second);
    std::abort();
  }
}

void launch(dim3 grid, dim3 block, const std::function<void()>& body) {
  const unsigned threads = block.x * block.y * block.z;
  std::barrier<> barrier(threads);
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      block_barrier = &barrier;
      block_dim = block;
      grid_dim = grid;
      thread_index = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
      for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
          for (unsigned x = 0; x < grid.x; ++x) {
            block_index = {x, y, z};
            body();
            barrier.arrive_and_wait();  // the block ends together: its statics are free again
          }
    });
  for (auto& thread : pool) thread.join();
}

}  // namespace emulated
