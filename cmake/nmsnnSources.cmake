# The library's and the nmsnn command's source files, relative to the repository root. They live
# here, not in CMakeLists.txt, because two projects build them: the library itself, and the CUDA
# emulation (tests/cuda_emulation), which compiles the CUDA engine as C++ on the CPU.
include_guard(GLOBAL)

# host/ is grouped by concept: core (errors, limits), network (the front end, the spec and the
# engine interface), cpu and cuda (the engines; kernels/ holds the CUDA kernels), io (data and
# file formats), training (losses, optimisers, the trainer, model files), report (metrics),
# distributed (communicators for data parallelism; MPI and NCCL are components of their own).
set(NMSNN_HOST_SOURCES
  host/core/error.cpp
  host/core/limits.cpp
  host/core/finite.cpp
  host/network/spec.cpp
  host/network/network.cpp
  host/network/initialize.cpp
  host/io/idx.cpp
  host/io/dataset.cpp
  host/io/csv.cpp
  host/io/preprocess.cpp
  host/io/files.cpp
  host/io/json.cpp
  host/io/safetensors.cpp
  host/io/spec_json.cpp
  host/training/loss.cpp
  host/training/optimizer.cpp
  host/training/trainer.cpp
  host/training/train_step.cpp
  host/training/checkpoint.cpp
  host/training/model.cpp
  host/training/presets.cpp
  host/report/metrics.cpp
  host/distributed/communicator.cpp
  host/cpu/kernel_set.cpp
  host/cpu/thread_pool.cpp
  host/cpu/cpu_engine.cpp
)

# The CUDA engine: its host side and its kernels, each kernel with its launch wrapper.
set(NMSNN_CUDA_SOURCES
  host/cuda/cuda_device.cu
  host/cuda/cuda_engine.cu
  host/cuda/cuda.cu
  host/cuda/workspace_layout.cu
  kernels/noise_mask.cu
  kernels/masked_linear.cu
  kernels/sample_cluster.cu
  kernels/lif_forward.cu
  kernels/lif_backward.cu
  kernels/bias.cu
  kernels/activation.cu
  kernels/spiking_activation.cu
  kernels/lowpass.cu
  kernels/train_step.cu
  kernels/gather_rows.cu
  kernels/time_axis.cu
  kernels/cublas_gemm.cu
  kernels/optimizer_update.cu
  kernels/nll_loss.cu
  kernels/conv2d.cu
  kernels/pool2d.cu
)

# The plots (nmsnn::plot), a component of their own so that a program embedding the engine does
# not link them.
set(NMSNN_PLOT_SOURCES
  host/report/plot.cpp
)

# The nmsnn command (tools/).
set(NMSNN_CLI_SOURCES
  tools/nmsnn_main.cpp
  tools/cli_args.cpp
  tools/cli_common.cpp
  tools/cli_train.cpp
  tools/cli_eval.cpp
  tools/cli_predict.cpp
  tools/cli_plot.cpp
  tools/cli_distributed.cpp
)
