// distributed/mpi_communicator.cpp — Communicator over MPI_COMM_WORLD (the nmsnn::mpi component).
#include "nmsnn/mpi.hpp"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "nmsnn/error.hpp"

namespace nmsnn {

using detail::fail;

namespace {

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, size_t(length));
}

// Starts MPI once; finalizes it at exit if this library started it.
struct MpiRuntime {
  MpiRuntime() {
    int started = 0;
    MPI_Initialized(&started);
    if (!started) {
      int provided = 0;
      const int status = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      if (status != MPI_SUCCESS) fail("MPI could not start: ", mpi_error_text(status));
      owner = true;
    }
    // Errors come back as codes, which become nmsnn::Error, instead of aborting the process.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  }
  ~MpiRuntime() {
    int finished = 0;
    MPI_Finalized(&finished);
    if (owner && !finished) MPI_Finalize();
  }
  bool owner = false;
};

MpiRuntime& runtime() {
  static MpiRuntime instance;
  return instance;
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    runtime();
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "MPI"; }

  void allreduce_sum(float* data, size_t n) override { sum(data, n, MPI_FLOAT); }
  void allreduce_sum(double* data, size_t n) override { sum(data, n, MPI_DOUBLE); }

  void broadcast(void* data, size_t bytes, int root) override {
    if (root < 0 || root >= size_) fail("broadcast: root ", root, " is not a rank of ", size_);
    for (size_t done = 0; done < bytes;) {
      const size_t part = std::min(bytes - done, kMaxCount);
      MPI_Request request;
      check(MPI_Ibcast(static_cast<char*>(data) + done, int(part), MPI_BYTE, root,
                       MPI_COMM_WORLD, &request),
            "broadcast");
      wait(request, "broadcast");
      done += part;
    }
  }

  void barrier() override {
    MPI_Request request;
    check(MPI_Ibarrier(MPI_COMM_WORLD, &request), "barrier");
    wait(request, "barrier");
  }

 private:
  static constexpr size_t kMaxCount = size_t(1) << 30;  // elements per MPI call (int counts)

  // A reduce-scatter then an all-gather of equal chunks (the data padded with zeros to a multiple
  // of the rank count), in pieces of at most kMaxCount elements.
  template <class T>
  void sum(T* data, size_t n, MPI_Datatype type) {
    if (size_ == 1 || n == 0) return;
    const size_t ranks = size_t(size_);
    const size_t piece_max = std::max<size_t>(1, kMaxCount / ranks) * ranks;
    for (size_t done = 0; done < n;) {
      const size_t piece = std::min(n - done, piece_max);
      const size_t chunk = (piece + ranks - 1) / ranks;
      padded_.assign(chunk * ranks * sizeof(T), 0);
      std::memcpy(padded_.data(), data + done, piece * sizeof(T));
      mine_.resize(chunk * sizeof(T));
      MPI_Request request;
      check(MPI_Ireduce_scatter_block(padded_.data(), mine_.data(), int(chunk), type, MPI_SUM,
                                      MPI_COMM_WORLD, &request),
            "allreduce (reduce-scatter)");
      wait(request, "allreduce (reduce-scatter)");
      check(MPI_Iallgather(mine_.data(), int(chunk), type, padded_.data(), int(chunk), type,
                           MPI_COMM_WORLD, &request),
            "allreduce (all-gather)");
      wait(request, "allreduce (all-gather)");
      std::memcpy(data + done, padded_.data(), piece * sizeof(T));
      done += piece;
    }
  }

  void check(int status, const char* what) const {
    if (status != MPI_SUCCESS)
      fail("rank ", rank_, " of ", size_, ": MPI ", what, " failed: ", mpi_error_text(status));
  }

  // Polls rather than MPI_Wait, so that a rank that has died or hangs costs the others at most
  // the timeout, not forever.
  void wait(MPI_Request& request, const char* what) const {
    const auto start = std::chrono::steady_clock::now();
    for (long polls = 0;; ++polls) {
      int done = 0;
      check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), what);
      if (done) return;
      if (polls % 1024 == 1023) {
        const double waited =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (waited > timeout_seconds())
          fail("rank ", rank_, " of ", size_, ": MPI ", what, " waited more than ",
               timeout_seconds(), " s for the other ranks (one has stopped or is stuck)");
        std::this_thread::yield();
      }
    }
  }

  int rank_ = 0, size_ = 1;
  std::vector<unsigned char> padded_, mine_;
};

}  // namespace

std::shared_ptr<Communicator> mpi_communicator() { return std::make_shared<MpiCommunicator>(); }

void mpi_abort(int code) {
  int started = 0, finished = 0;
  MPI_Initialized(&started);
  MPI_Finalized(&finished);
  if (started && !finished) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

}  // namespace nmsnn
