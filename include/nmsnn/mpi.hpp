// nmsnn/mpi.hpp — the MPI communicator: the nmsnn::mpi component, built when CMake finds MPI.
//
//   mpirun -np 4 ./my_training       // each process:
//   auto comm = nmsnn::mpi_communicator();   // MPI_COMM_WORLD, MPI started on first use
//
// Sums are a reduce-scatter then an all-gather: each element is reduced once, on one rank, and
// copied to the others, so every rank gets the same bits. Every wait is bounded by the
// communicator's timeout; an MPI error or a timeout throws nmsnn::Error naming the rank.
#pragma once

#include <memory>

#include "nmsnn/communicator.hpp"

namespace nmsnn {

// The ranks of MPI_COMM_WORLD. Starts MPI (MPI_THREAD_FUNNELED: only the thread that made it may
// use it) unless the program already has, and finalizes it at exit when it started it.
std::shared_ptr<Communicator> mpi_communicator();

// Ends every rank of the run at once with `code` (MPI_Abort): what a rank does after an error the
// others cannot know of, so that none waits for it.
[[noreturn]] void mpi_abort(int code);

}  // namespace nmsnn
