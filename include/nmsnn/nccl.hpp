// nmsnn/nccl.hpp — the nmsnn::nccl component: data parallelism on GPUs, with the cuda engine's
// gradients summed over the ranks by NCCL in device memory instead of through the host.
//
//   auto mpi = nmsnn::mpi_communicator();               // nmsnn/mpi.hpp, under `mpirun -np N`
//   const int device = nmsnn::local_cuda_device();      // one GPU per rank of a machine
//   auto comm = nmsnn::nccl_communicator(mpi, device);
//   nmsnn::NetworkOptions net_options;
//   net_options.engine = nmsnn::Engine::cuda;
//   net_options.device = device;                        // the device NCCL sums on
//   nmsnn::TrainOptions opts;
//   opts.communicator = comm;
//
// Built when the CUDA engine is and NCCL is found (CMake option NMSNN_NCCL); a program links
// nmsnn::nccl (find_package(nmsnn COMPONENTS nccl)).
#pragma once

#include <memory>

#include "nmsnn/communicator.hpp"

namespace nmsnn {

// Collective over the ranks of `bootstrap`: a Communicator of the same ranks (rank(), size()),
// named "NCCL", whose gradient sums run on CUDA device `device` with ncclAllReduce. Rank 0 makes
// NCCL's id and `bootstrap` gives it to the others; host-memory collectives (allreduce_sum,
// broadcast, barrier) keep going through `bootstrap`. Each rank passes its own device (one device
// per rank: NCCL does not support two ranks on one device), and its networks must run there
// (NetworkOptions::device). A failure on any rank (a device that does not exist, NCCL's set-up)
// throws nmsnn::Error on every rank, naming the lowest failing one; a sum that waits longer than
// timeout_seconds() for the other ranks aborts the NCCL communicator and throws.
std::shared_ptr<Communicator> nccl_communicator(std::shared_ptr<Communicator> bootstrap,
                                                int device);

// The device a rank of a launched run uses: launch_environment().local_rank modulo the number of
// CUDA devices this process sees (device 0 when no launcher set the rank). Throws nmsnn::Error
// when there is no usable device.
int local_cuda_device();

}  // namespace nmsnn
