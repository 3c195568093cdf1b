// distributed/device_reducer.hpp — what a Communicator also implements when it can sum device
// memory itself (NCCL), so the cuda engine's reduce_gradients skips the copies through the host
// and its data-parallel step stays on the device.
//
// Internal: the cuda engine asks for it with dynamic_cast on the Communicator it is given; a
// communicator without it (single process, local group, MPI) gets the gradients in host memory
// through Communicator::allreduce_sum. Plain C++ (no CUDA header), so a communicator may
// implement it in a file that the host compiler builds.
#pragma once

#include <cstddef>

namespace nmsnn::detail {

struct DeviceReducer {
  virtual ~DeviceReducer() = default;
  // Element-wise sum over the ranks, in place, of `n` floats of device memory at `device_data`,
  // queued on `cuda_stream` (a cudaStream_t): it reads what the work queued there before it
  // wrote, and work queued after it sees the sums. An implementation may also wait for the sum to
  // finish before returning (NCCL does, to honour the communicator's timeout), but not while the
  // stream is being captured into a CUDA graph (the cuda engine's step): then it only queues
  // stream-ordered work, which each replay of the graph runs. Every rank calls it with the same
  // n, in the same order as the communicator's other collectives.
  virtual void allreduce_sum_device(float* device_data, size_t n, void* cuda_stream) = 0;
  // The same for doubles: a data-parallel step's statistics (loss, correct count, guard flags).
  virtual void allreduce_sum_device(double* device_data, size_t n, void* cuda_stream) = 0;
};

}  // namespace nmsnn::detail
