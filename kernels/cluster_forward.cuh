// cluster_forward.cuh — the whole forward pass of a noise-encoded network of two spiking layers
// (the seed's MNIST shape, I-H-C), one sample at a time per thread-block cluster, with the
// sample's masked input kept in the cluster's shared memory (SPEC.md 1-3).
//
// Why: the layered path (cuda.cu) sends every [T, B, H] tensor through global memory several
// times per pass; here nothing of a sample but its input row and its logits leaves the chip. The
// masked input [T, I] that a cluster keeps is what the training step's weight gradient needs
// again (SPEC.md 4): kept, its Philox masks are made once per step instead of twice, the one
// change that can bring the predicted W1 step within 3x of the TF32 floor (bench/RESULTS.md,
// "Predicted"). This forward is the first half of that step; until the second half exists it
// serves passes that keep nothing for backward (inference), when DeviceOptions::sample_clusters
// asks for it. As built, a cluster takes its samples, and each sample's phases, one after
// another: predicted faster than the layered kernels for small batches only.
//
// A cluster of kClusterBlocks blocks (sm_90 thread-block clusters, distributed shared memory)
// splits the features: block r owns a run of whole Philox blocks (4 features each), makes their
// masks xi[t, i] = m(t, b, i) x[b, i] into its shared memory and multiplies them with its columns
// of W0: partial currents p_r[t, h] over its features. Block r also owns a run of hidden neurons:
// it adds their partials over the cluster in rank order, a0[t, h] = sum_r p_r[t, h], and runs
// their time loop (lif_forward.cuh's arithmetic). The output layer's currents are reduced the
// same way (each block's partial over its own neurons' spikes) and rank 0 runs its time loop and
// the readout. CPU twin: the cpu engine's forward; the sums differ from it only in order.
//
// Needs compute capability 9.0 (clusters); cluster_forward_fits says whether a network and device
// can take it (DeviceNetwork::runs_by_sample; the layered kernels run otherwise).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "nmsnn/philox.hpp"
#include "nmsnn/spec.hpp"

namespace nmsnn::kernels {

constexpr int kClusterBlocks = 8;     // blocks per cluster: the portable maximum
constexpr int kClusterThreads = 256;  // threads per block

struct ClusterForwardArgs {
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
  float* logits = nullptr;      // [B, C]
};

// Dynamic shared memory a block of the cluster needs for these shapes, in bytes.
size_t cluster_forward_shared_bytes(int T, int I, int H, int C);

// Whether `device` can run the kernel for these shapes: compute capability >= 9.0 and the shared
// memory above within what a block may opt into. `why`, when not null, says what is missing.
bool cluster_forward_fits(int T, int I, int H, int C, int device, const char** why = nullptr);

// logits for every sample of the batch. Every pointer is device memory.
void cluster_forward(const ClusterForwardArgs& args, cudaStream_t stream);

}  // namespace nmsnn::kernels
