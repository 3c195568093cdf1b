// cooperative_groups.h (emulated) — the thread-block cluster of sm_90 (this_cluster()), the part
// nmsnn's cluster kernels use: ranks, the cluster-wide barrier and distributed shared memory.
// The blocks of a cluster run at once on host threads (emulated_kernel.hpp), so another block's
// shared memory is plain memory, and cluster.sync() is a barrier over all their threads.
#pragma once
#include <cstdio>
#include <cstdlib>

#include "emulated_kernel.hpp"

namespace cooperative_groups {

class cluster_group {
 public:
  static void sync() { ::emulated::cluster->barrier->arrive_and_wait(); }
  static unsigned block_rank() { return ::emulated::cluster_rank; }
  static unsigned num_blocks() {
    const dim3 d = ::emulated::cluster->dim;
    return d.x * d.y * d.z;
  }
  static dim3 dim_blocks() { return ::emulated::cluster->dim; }
  // The address in block `rank`'s shared memory that `addr` has in this block's. Only dynamic
  // shared memory is emulated; anything else, or a rank outside the cluster, stops the program.
  template <class T>
  static T* map_shared_rank(T* addr, int rank) {
    const ::emulated::Cluster& c = *::emulated::cluster;
    const auto* p = reinterpret_cast<const unsigned char*>(addr);
    const unsigned char* base = ::emulated::dynamic_shared;
    if (rank < 0 || unsigned(rank) >= num_blocks() || p < base || p > base + c.shared_bytes) {
      std::fprintf(stderr, "map_shared_rank: rank %d of %u, or an address outside this block's "
                           "dynamic shared memory\n", rank, num_blocks());
      std::abort();
    }
    return reinterpret_cast<T*>(c.shared[size_t(rank)] + (p - base));
  }
};

inline cluster_group this_cluster() {
  if (!::emulated::cluster) {
    std::fprintf(stderr, "this_cluster(): the kernel was not launched with a cluster dimension\n");
    std::abort();
  }
  return {};
}

}  // namespace cooperative_groups
