// nmsnn/communicator.hpp — the ranks of a data-parallel run and the collectives training needs.
//
// Data parallelism: N ranks hold the same network; each step every rank is given the same global
// batch, computes the gradient of its share of the rows, the gradients are summed over the ranks,
// and every rank applies the same update. nmsnn::train and StepLoop do this when given a
// Communicator of more than one rank (TrainOptions::communicator, StepOptions::communicator).
//
//   auto comm = nmsnn::mpi_communicator();      // nmsnn/mpi.hpp, under `mpirun -np N`
//   nmsnn::TrainOptions opts;
//   opts.communicator = comm;
//   nmsnn::train(net, data, opts, &test);       // the same model as one process would train
//
// Implementations: single_process() (the default, rank 0 of 1), local_group() (ranks as threads of
// one process, for tests and for trying the code path without a launcher), MPI (nmsnn/mpi.hpp,
// the nmsnn::mpi component) and NCCL (nmsnn/nccl.hpp, the nmsnn::nccl component).
//
// Every collective is called by every rank in the same order. Results are the same bits on every
// rank (a value is reduced once and then copied), so ranks that start equal stay equal. A
// collective that waits longer than timeout_seconds() for the other ranks throws nmsnn::Error
// naming the waiting rank rather than hanging.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "nmsnn/error.hpp"

namespace nmsnn {

// An error that every rank raises at once with the same message (Communicator::check): a program
// reports it from one rank, and every rank can end normally.
class CollectiveError : public Error {
 public:
  using Error::Error;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;  // "single process", "local group", "MPI", "NCCL"

  // Element-wise sums over the ranks, in place, in host memory.
  virtual void allreduce_sum(float* data, size_t n) = 0;
  virtual void allreduce_sum(double* data, size_t n) = 0;
  // Copies `bytes` bytes at `data` from rank `root` to every rank.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;

  // Collective. Each rank passes "" or its own error; every rank gets "" when none failed, else
  // "rank r: <error>" of the lowest failing rank.
  std::string first_error(const std::string& error);
  // Collective: throws CollectiveError with first_error(error) when any rank failed.
  void check(const std::string& error);

  // How long a collective waits for the other ranks before it throws (NMSNN_COMM_TIMEOUT seconds
  // in the environment, default 300).
  double timeout_seconds() const { return timeout_seconds_; }
  void set_timeout_seconds(double seconds);

 protected:
  Communicator();

 private:
  double timeout_seconds_;
};

// One process: rank 0 of 1; the collectives return at once.
std::shared_ptr<Communicator> single_process();

// `ranks` communicators of one group whose ranks are threads of this process: rank r is the
// r-th; each thread uses its own. Sums are taken in rank order.
std::vector<std::shared_ptr<Communicator>> local_group(int ranks);

// The rows of a global batch of `batch` rows that rank `rank` of `ranks` computes: [first,
// first + count). Balanced: the counts differ by at most one; a rank gets none when batch < ranks.
struct Shard {
  int first = 0, count = 0;
};
Shard shard_of(int batch, int rank, int ranks);

// What a launcher (mpirun, mpiexec, srun) told this process through its environment, read without
// any MPI call: whether it is one rank of several, and its rank, size and index on its machine.
struct LaunchEnvironment {
  bool launched = false;  // a launcher's variables are set
  int rank = 0, size = 1, local_rank = 0;
};
LaunchEnvironment launch_environment();

}  // namespace nmsnn
