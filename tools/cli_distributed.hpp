// cli_distributed.hpp — `mpirun -np N nmsnn train ...`: the command as one rank of several.
#pragma once

#include <memory>
#include <string>

#include "nmsnn/communicator.hpp"
#include "nmsnn/network.hpp"

namespace nmsnn::cli {

// The run's communicator (--communicator KIND): `auto` gives one when a launcher started more than
// one rank (MPI for the cpu engine; NCCL for the cuda engine when built, else MPI through host
// memory), null otherwise; `mpi` or `nccl` that one even for a single rank (a one-GPU check of the
// NCCL path); `none` null. The cuda engine then runs on this rank's local device
// (options->device). Throws when the kind asked for, or a launcher's several ranks, need a
// component this build lacks.
std::shared_ptr<Communicator> launch_communicator(const std::string& kind, NetworkOptions* options);

// The communicator of this run, or null before launch_communicator (or without one).
Communicator* run_communicator();

// After an error on this rank that the others may not know of: prints it, naming the rank, and
// ends every rank (MPI_Abort). Returns only when this is a single process.
void abort_other_ranks(const std::string& line);

// Test hook, NMSNN_FAULT="rank=R,batch=K,kind=KIND": on rank R, after batch K of the first epoch,
// `kill` (SIGKILL itself), `throw` (an error only this rank sees) or `diverge` (the last
// parameter becomes 3e38, so the outputs overflow); kind `data` changes one training value on rank R before training. Nothing when unset.
struct Fault {
  int rank = -1, batch = 0;
  std::string kind;
};
Fault fault_from_environment();

}  // namespace nmsnn::cli
