// cli_distributed.cpp — the nmsnn command as one rank of a data-parallel run.
#include "cli_distributed.hpp"

#include <cstdio>
#include <cstdlib>

#include "nmsnn/error.hpp"
#ifdef NMSNN_CLI_WITH_MPI
#include "nmsnn/mpi.hpp"
#endif
#ifdef NMSNN_CLI_WITH_NCCL
#include "nmsnn/nccl.hpp"
#endif

namespace nmsnn::cli {

namespace {
std::shared_ptr<Communicator> current;
}

std::shared_ptr<Communicator> launch_communicator(const std::string& kind,
                                                 NetworkOptions* options) {
  if (kind != "auto" && kind != "mpi" && kind != "nccl" && kind != "none")
    detail::fail("flag --communicator: expected auto, mpi, nccl or none, got ", detail::quote(kind));
  const LaunchEnvironment env = launch_environment();
  const bool several = env.launched && env.size > 1;
  if (kind == "none" || (kind == "auto" && !several)) return nullptr;
  const bool cuda = options->engine == Engine::cuda;
  if (kind == "nccl" && !cuda) detail::fail("flag --communicator nccl needs --device cuda");
  // The ranks: MPI's when a launcher started several; one NCCL rank needs none.
  std::shared_ptr<Communicator> ranks;
  if (several || kind == "mpi") {
#ifdef NMSNN_CLI_WITH_MPI
    ranks = mpi_communicator();
#else
    const char* no_mpi =
        "this nmsnn was built without MPI (install OpenMPI's development files, e.g. "
        "libopenmpi-dev, and build again)";
    if (several)
      detail::fail("this process is rank ", env.rank, " of ", env.size,
                   " started by an MPI launcher, but ", no_mpi);
    detail::fail("flag --communicator mpi: ", no_mpi);
#endif
  } else {
    ranks = single_process();
  }
  current = ranks;
#ifdef NMSNN_CLI_WITH_NCCL
  if (cuda) {
    options->device = local_cuda_device();
    if (kind != "mpi") current = nccl_communicator(ranks, options->device);
  }
#else
  if (kind == "nccl")
    detail::fail("flag --communicator nccl: this nmsnn was built without NCCL (the nmsnn::nccl "
                 "component needs the CUDA engine and NCCL's headers and library)");
  if (cuda) options->device = env.local_rank;  // gradients summed through host memory
#endif
  return current;
}

Communicator* run_communicator() { return current.get(); }

void abort_other_ranks(const std::string& line) {
  if (!current || current->size() == 1) return;
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
#ifdef NMSNN_CLI_WITH_MPI
  mpi_abort(1);
#else
  std::_Exit(1);
#endif
}

Fault fault_from_environment() {
  Fault f;
  const char* text = std::getenv("NMSNN_FAULT");
  if (!text || !*text) return f;
  char kind[16] = {0};
  if (std::sscanf(text, "rank=%d,batch=%d,kind=%15s", &f.rank, &f.batch, kind) != 3)
    detail::fail("NMSNN_FAULT must be rank=R,batch=K,kind=KIND, got ", detail::quote(text));
  f.kind = kind;
  if (f.kind != "kill" && f.kind != "throw" && f.kind != "diverge" && f.kind != "data")
    detail::fail("NMSNN_FAULT: kind must be kill, throw, diverge or data, got ", detail::quote(kind));
  return f;
}

}  // namespace nmsnn::cli
