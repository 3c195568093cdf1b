// runtime.cpp (emulated) — device memory with bounds checks, and kernel launches on host threads.
//
// Device memory is host memory, 256-byte aligned like cudaMalloc's. Every allocation is recorded
// so that the emulated cuBLAS can check that a product stays inside its operands; kernels' own
// accesses are checked by AddressSanitizer, which the emulated build always uses.
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "emulated_kernel.hpp"

namespace emulated {

thread_local uint3 thread_index, block_index;
thread_local dim3 block_dim, grid_dim;
thread_local std::barrier<>* block_barrier;
thread_local Cluster* cluster;
thread_local unsigned cluster_rank;
thread_local unsigned char* dynamic_shared;
thread_local Warp* warp;
thread_local unsigned lane;
thread_local unsigned barriers;

std::vector<std::unique_ptr<Warp>> make_warps(unsigned threads) {
  std::vector<std::unique_ptr<Warp>> warps;
  for (unsigned first = 0; first < threads; first += 32)
    warps.push_back(std::make_unique<Warp>(std::min(32u, threads - first)));
  return warps;
}

namespace {
std::mutex mutex;
std::map<const char*, size_t> allocations;  // start -> bytes
}  // namespace

int& max_dynamic_shared(const void* kernel) {
  static std::map<const void*, int> allowed;
  std::lock_guard<std::mutex> lock(mutex);
  return allowed[kernel];
}

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
  const auto warps = make_warps(threads);
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      block_barrier = &barrier;
      warp = warps[t / 32].get();
      lane = t % 32;
      block_dim = block;
      grid_dim = grid;
      thread_index = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
      for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
          for (unsigned x = 0; x < grid.x; ++x) {
            block_index = {x, y, z};
            body();
            check_no_pending_mma();
            barrier.arrive_and_wait();  // the block ends together: its statics are free again
          }
    });
  for (auto& thread : pool) thread.join();
}

void launch_cluster(dim3 grid, dim3 block, dim3 dims, size_t shared_bytes,
                    const std::function<void()>& body) {
  const unsigned threads = block.x * block.y * block.z;
  const unsigned blocks = dims.x * dims.y * dims.z;
  std::barrier<> whole(threads * blocks);
  std::vector<std::unique_ptr<std::barrier<>>> barriers;
  std::vector<std::vector<std::unique_ptr<Warp>>> warps;  // by rank
  std::vector<std::unique_ptr<unsigned char, void (*)(void*)>> memory;
  Cluster c{dims, &whole, {}, shared_bytes};
  for (unsigned r = 0; r < blocks; ++r) {
    barriers.push_back(std::make_unique<std::barrier<>>(threads));
    warps.push_back(make_warps(threads));
    const size_t rounded = (shared_bytes + 127) / 128 * 128;
    auto* bytes = static_cast<unsigned char*>(std::aligned_alloc(128, rounded ? rounded : 128));
    memory.emplace_back(bytes, std::free);
    c.shared.push_back(memory.back().get());
  }
  std::vector<std::thread> pool;
  pool.reserve(size_t(threads) * blocks);
  for (unsigned r = 0; r < blocks; ++r)
    for (unsigned t = 0; t < threads; ++t)
      pool.emplace_back([&, r, t] {
        block_barrier = barriers[r].get();
        warp = warps[r][t / 32].get();
        lane = t % 32;
        block_dim = block;
        grid_dim = grid;
        thread_index = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
        cluster = &c;
        cluster_rank = r;
        dynamic_shared = c.shared[r];
        const uint3 in = {r % dims.x, (r / dims.x) % dims.y, r / (dims.x * dims.y)};
        for (unsigned z = 0; z < grid.z; z += dims.z)
          for (unsigned y = 0; y < grid.y; y += dims.y)
            for (unsigned x = 0; x < grid.x; x += dims.x) {
              block_index = {x + in.x, y + in.y, z + in.z};
              if (t == 0) std::memset(dynamic_shared, 0xFF, shared_bytes);  // undefined: NaNs
              block_barrier->arrive_and_wait();
              body();
              check_no_pending_mma();
              whole.arrive_and_wait();  // the cluster ends together: its memory is free again
            }
        cluster = nullptr;
        dynamic_shared = nullptr;
      });
  for (auto& thread : pool) thread.join();
}

}  // namespace emulated
