// distributed/nccl_communicator.cu — the nmsnn::nccl component: a Communicator whose device sums
// (the cuda engine's gradients and its data-parallel step's statistics) are ncclAllReduce calls,
// its host collectives the bootstrap's.
//
// NCCL's communicator needs an id that one rank makes and every rank knows before it exists:
// rank 0 makes it and the bootstrap communicator (MPI, or a local group's threads) broadcasts it.
// The NCCL communicator is made non-blocking (config.blocking = 0) so that nothing here waits
// inside NCCL: every wait is a poll of NCCL's state, bounded by the communicator's timeout, after
// which the NCCL communicator is aborted and nmsnn::Error names the waiting rank, as the other
// communicators do, rather than the run hanging on a rank that died.
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "cuda_check.cuh"
#include "distributed/device_reducer.hpp"
#include "nmsnn/error.hpp"
#include "nmsnn/nccl.hpp"

namespace nmsnn {

using detail::fail;

namespace {

using Clock = std::chrono::steady_clock;

Clock::time_point deadline_after(double seconds) {
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

std::string nccl_error(const char* call, ncclResult_t result) {
  return std::string(call) + " failed: " + ncclGetErrorString(result) + " (" +
         ncclGetLastError(nullptr) + ")";
}

class NcclCommunicator final : public Communicator, public detail::DeviceReducer {
 public:
  NcclCommunicator(std::shared_ptr<Communicator> bootstrap, int device)
      : bootstrap_(std::move(bootstrap)), device_(device) {
    // Each stage ends in a collective check, so a failure on one rank is an error on all of them
    // (naming the lowest failing rank) instead of the others waiting for it.
    std::string error;
    int count = 0;
    cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
      error = std::string("NCCL communicator: no usable CUDA device: ") +
              cudaGetErrorString(status);
    } else if (device < 0 || device >= count) {
      error = "NCCL communicator: CUDA device " + std::to_string(device) +
              " requested, this machine has " + std::to_string(count);
    } else if ((status = cudaSetDevice(device)) != cudaSuccess) {
      error = "NCCL communicator: cudaSetDevice(" + std::to_string(device) + ") failed: " +
              cudaGetErrorString(status);
    }
    cudaGetLastError();  // a failure above is reported through `error`; do not leave it sticky
    bootstrap_->check(error);

    ncclUniqueId id{};
    if (rank() == 0) {
      const ncclResult_t r = ncclGetUniqueId(&id);
      if (r != ncclSuccess) error = nccl_error("ncclGetUniqueId", r);
    }
    bootstrap_->check(error);
    bootstrap_->broadcast(&id, sizeof id, 0);

    try {
      ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
      config.blocking = 0;
      const ncclResult_t r = ncclCommInitRankConfig(&comm_, size(), id, rank(), &config);
      if (r != ncclSuccess && r != ncclInProgress) {
        comm_ = nullptr;  // NCCL made none
        fail(nccl_error("ncclCommInitRankConfig", r));
      }
      wait_for_nccl("ncclCommInitRankConfig", deadline_after(timeout_seconds()));
      NMSNN_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
    } catch (const std::exception& e) {
      error = e.what();
    }
    try {
      bootstrap_->check(error);
    } catch (...) {
      release();
      throw;
    }
  }

  ~NcclCommunicator() override { release(); }

  int rank() const override { return bootstrap_->rank(); }
  int size() const override { return bootstrap_->size(); }
  std::string name() const override { return "NCCL"; }

  void allreduce_sum(float* data, size_t n) override { bootstrap_->allreduce_sum(data, n); }
  void allreduce_sum(double* data, size_t n) override { bootstrap_->allreduce_sum(data, n); }
  void broadcast(void* data, size_t bytes, int root) override {
    bootstrap_->broadcast(data, bytes, root);
  }
  void barrier() override { bootstrap_->barrier(); }

  void allreduce_sum_device(float* data, size_t n, void* cuda_stream) override {
    sum_on_device(data, n, ncclFloat, cuda_stream);
  }
  void allreduce_sum_device(double* data, size_t n, void* cuda_stream) override {
    sum_on_device(data, n, ncclDouble, cuda_stream);
  }

 private:
  // Queues the sum on `cuda_stream`, then waits for it (and the work queued before it), polling
  // NCCL for errors, so that a rank that never joins is a timeout here and not a hang. While the
  // stream is captured into a graph (the cuda engine's step) it only queues the sum: a captured
  // stream's work does not run, so there is nothing to wait for (a replay's sums are waited for
  // where the engine synchronises, without this timeout).
  void sum_on_device(void* data, size_t n, ncclDataType_t type, void* cuda_stream) {
    if (!comm_) fail("NCCL communicator: used after it was aborted (an earlier sum failed)");
    cudaPointerAttributes where{};
    NMSNN_CUDA_CHECK(cudaPointerGetAttributes(&where, data));
    if (where.type != cudaMemoryTypeDevice || where.device != device_)
      fail("NCCL communicator of CUDA device ", device_, ": the values to sum are ",
           where.type == cudaMemoryTypeDevice ? "on device " + std::to_string(where.device)
                                              : std::string("not in device memory"),
           "; run the network on the communicator's device (NetworkOptions::device)");
    if (n == 0) return;
    const auto deadline = deadline_after(timeout_seconds());
    auto stream = static_cast<cudaStream_t>(cuda_stream);
    const ncclResult_t r = ncclAllReduce(data, data, n, type, ncclSum, comm_, stream);
    if (r != ncclSuccess && r != ncclInProgress)
      abort_and_fail(nccl_error("ncclAllReduce", r));
    wait_for_nccl("ncclAllReduce", deadline);  // until the sum is queued on the stream
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    NMSNN_CUDA_CHECK(cudaStreamIsCapturing(stream, &capturing));
    if (capturing != cudaStreamCaptureStatusNone) return;
    NMSNN_CUDA_CHECK(cudaEventRecord(done_, stream));
    for (;;) {
      const cudaError_t status = cudaEventQuery(done_);
      if (status == cudaSuccess) return;
      if (status != cudaErrorNotReady)
        abort_and_fail(std::string("NCCL communicator: the sum failed on the device: ") +
                       cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
      check_progress("ncclAllReduce");
      if (Clock::now() > deadline) timed_out("ncclAllReduce");
      std::this_thread::yield();
    }
  }

  // Waits until the non-blocking communicator has finished what the last NCCL call started.
  void wait_for_nccl(const char* what, Clock::time_point deadline) {
    while (check_progress(what) == ncclInProgress) {
      if (Clock::now() > deadline) timed_out(what);
      std::this_thread::yield();
    }
  }

  // NCCL's state, ncclSuccess or ncclInProgress (the last call's work is not done); an error
  // (NCCL's own, or a peer's that reached this rank) aborts and throws.
  ncclResult_t check_progress(const char* what) {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t r = ncclCommGetAsyncError(comm_, &state);
    if (r != ncclSuccess) abort_and_fail(nccl_error("ncclCommGetAsyncError", r));
    if (state != ncclSuccess && state != ncclInProgress) abort_and_fail(nccl_error(what, state));
    return state;
  }

  [[noreturn]] void timed_out(const char* what) {
    abort();
    fail("rank ", rank(), " of an NCCL group waited more than ", timeout_seconds(), " s in ", what,
         " for the other ranks (one has stopped or is stuck)");
  }

  // A failed or stuck NCCL communicator cannot be used again: abort it, which also ends its
  // work queued on the device.
  [[noreturn]] void abort_and_fail(const std::string& message) {
    abort();
    fail(message);
  }
  void abort() noexcept {
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
  }

  // Finalize (which completes the queued sums) then destroy; abort when that fails or times out.
  void release() noexcept {
    if (comm_) {
      const ncclResult_t r = ncclCommFinalize(comm_);
      bool finished = r == ncclSuccess || r == ncclInProgress;
      const auto deadline = deadline_after(timeout_seconds());
      ncclResult_t state = ncclInProgress;
      while (finished && state == ncclInProgress) {
        if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess || Clock::now() > deadline)
          finished = false;
        std::this_thread::yield();
      }
      if (finished && state == ncclSuccess) ncclCommDestroy(comm_);
      else ncclCommAbort(comm_);
      comm_ = nullptr;
    }
    if (done_) cudaEventDestroy(done_);
    done_ = nullptr;
  }

  std::shared_ptr<Communicator> bootstrap_;
  const int device_;
  ncclComm_t comm_ = nullptr;
  cudaEvent_t done_ = nullptr;  // recorded after each sum, polled until it has run
};

}  // namespace

std::shared_ptr<Communicator> nccl_communicator(std::shared_ptr<Communicator> bootstrap,
                                                int device) {
  if (!bootstrap) fail("nccl_communicator: the bootstrap communicator is null");
  return std::make_shared<NcclCommunicator>(std::move(bootstrap), device);
}

int local_cuda_device() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    fail("local_cuda_device: no usable CUDA device: ", cudaGetErrorString(status));
  }
  if (count == 0) fail("local_cuda_device: no CUDA device found");
  return launch_environment().local_rank % count;
}

}  // namespace nmsnn
