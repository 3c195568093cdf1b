// sample_cluster.cuh — a noise-encoded network of two spiking layers (the seed's MNIST shape,
// I-H-C) one sample at a time per thread-block cluster: its forward pass, and its training step
// (forward, the loss's gradient, backpropagation through time, the gradients), with the sample's
// masked input kept in the cluster's shared memory from the forward to the weight gradient
// (SPEC.md 1-4).
//
// Why: the layered path (cuda.cu) sends every [T, B, H] tensor through global memory several
// times per pass and makes every Philox mask twice per training step (SPEC.md 1 forbids storing
// them across the batch). Here nothing of a sample but its input row, label and logits leaves the
// chip, and its masks are made once per step: the change that can bring the predicted W1 step
// within 3x of the TF32 floor (bench/RESULTS.md, "Predicted"). As built, a cluster takes its
// samples, and each sample's phases, one after another; the two large products run in FP32 on
// the CUDA cores or in TF32 or BF16 on the tensor cores (MatmulPrecision). Predicted faster
// than the layered kernels for small batches only, so DeviceOptions and
// NetworkOptions::sample_clusters make it opt-in.
//
// A cluster of kClusterBlocks blocks (sm_90 thread-block clusters, distributed shared memory)
// splits the features: block r owns a run of whole Philox blocks (4 features each), makes their
// masks xi[t, i] = m(t, b, i) x[b, i] into its shared memory and multiplies them with its columns
// of W0: partial currents p_r[t, h] over its features. Block r also owns a run of hidden neurons:
// it adds their partials over the cluster in rank order, a0[t, h] = sum_r p_r[t, h], and runs
// their time loop (lif_forward.cuh's arithmetic). The output layer's currents are reduced the
// same way (each block's partial over its own neurons' spikes) and rank 0 runs its time loop and
// the readout. Training continues on the same split: rank 0 the loss's gradient (loss_rows.cuh)
// and the output layer's backward loop (lif_backward.cuh's arithmetic); each block its neurons'
// columns of dW1, their dL/dspikes and backward loop; then every block gathers all du0[t, h] and
// multiplies them with its kept masked input: its columns of dW0. Gradients accumulate in shared
// memory over a cluster's samples and leave as one partial per cluster, added in cluster order
// (deterministic). CPU twin: the cpu engine; the sums differ from it only in order.
//
// Needs compute capability 9.0 (clusters); sample_cluster_fits says whether a network and device
// can take it (DeviceNetwork::runs_by_sample; the layered kernels run otherwise).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "nmsnn/loss.hpp"
#include "nmsnn/matmul_precision.hpp"
#include "nmsnn/philox.hpp"
#include "nmsnn/spec.hpp"

namespace nmsnn::kernels {

constexpr int kClusterBlocks = 8;     // blocks per cluster: the portable maximum
constexpr int kClusterThreads = 256;  // threads per block

struct SampleClusterArgs {
  int T = 0, B = 0, I = 0, H = 0, C = 0;
  NoiseKey key;                 // the pass's masks (key.rows / key.pass_at device memory)
  const float* x = nullptr;     // [B, I]
  const float* W0 = nullptr;    // [H, I]
  const float* b0 = nullptr;    // [H]
  const float* W1 = nullptr;    // [C, H]
  const float* b1 = nullptr;    // [C]
  SpikingLayer hidden, output;  // neuron settings (sizes H and C)
  int begin_eval = 0;
  float readout_scale = 1.0f;   // 1 (sum) or 1 / (T - begin_eval) (mean)
  float* logits = nullptr;      // [B, C] out
  // The arithmetic of the products with W0's shape (the currents and dW0).
  MatmulPrecision math = MatmulPrecision::fp32;
  // At most this many time steps per chunk of partial currents (rounded down to a whole tile of
  // 16 in tf32); 0: as many as fit (sample_cluster_time_chunk). Smaller chunks only add cluster
  // barriers: the tests set it to run the chunked path on small shapes.
  int max_time_chunk = 0;

  // The training step only. The loss of each sample is its share of the mean over the B rows
  // (over B x C values for mse), as step_partial computes it.
  Loss loss = Loss::nll;
  const int* labels = nullptr;     // [B]: nll, and bce when targets is null
  const float* targets = nullptr;  // [B, C]: mse; [B]: bce
  // Gradients out (overwritten), the parameters' layout: dW0 [H, I], db0 [H], dW1 [C, H],
  // db1 [C]; and scratch of sample_cluster_scratch_floats(B, I, H, C) floats for the clusters'
  // partial sums.
  float *dW0 = nullptr, *db0 = nullptr, *dW1 = nullptr, *db1 = nullptr;
  float* scratch = nullptr;
};

// Dynamic shared memory a block of the cluster needs for these shapes, in bytes.
size_t sample_cluster_shared_bytes(int T, int I, int H, int C, bool train, MatmulPrecision math);

// Time steps per chunk of the partial currents (T when the whole sample's currents fit beside
// the kept masks; fewer chunks, fewer cluster barriers), for SampleClusterArgs::max_time_chunk.
int sample_cluster_time_chunk(int T, int I, int H, int C, bool train, MatmulPrecision math,
                              int max_time_chunk = 0);

// Whether `device` can run the kernels for these shapes: compute capability >= 9.0 and the
// shared memory above within what a block may opt into. `why`, when not null, says what
// is missing.
bool sample_cluster_fits(int T, int I, int H, int C, bool train, MatmulPrecision math, int device,
                         const char** why = nullptr);

// Whether `spec` is what the kernels compute (a pair of spiking layers) and fits `device`
// (sample_cluster_fits). The callers also require a noise-encoded input.
bool sample_cluster_supports(const NetworkSpec& spec, bool train, MatmulPrecision math,
                             int device);

// The arguments for B samples of `spec` (sample_cluster_supports) in arithmetic `math` from its
// parameter table (W0, b0, W1, b1, device memory), the pass's noise key and input x [B, I], into
// logits [B, C]. The training step's fields (loss, labels or targets, gradients, scratch) are
// left to the caller.
SampleClusterArgs sample_cluster_args(const NetworkSpec& spec, MatmulPrecision math,
                                      const float* const* params, NoiseKey key, const float* x,
                                      int B, float* logits);

// Scratch floats the training step needs for B samples: one partial gradient per cluster.
size_t sample_cluster_scratch_floats(int B, int I, int H, int C);

// logits for every sample of the batch. Every pointer is device memory.
void sample_cluster_forward(const SampleClusterArgs& args, cudaStream_t stream);

// logits and the gradients of the batch's mean loss. Every pointer is device memory.
void sample_cluster_step(const SampleClusterArgs& args, cudaStream_t stream);

}  // namespace nmsnn::kernels
