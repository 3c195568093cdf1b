// nmsnn/cuda.hpp — the spiking network on device memory, for CUDA programs that embed nmsnn.
//
// The only public header that names CUDA types; include it from code built with the CUDA toolkit
// on its include path. Everything here works on memory the caller owns, on the caller's stream:
//
//   nmsnn::cuda::DeviceNetwork net(spec, cublas);                 // holds the spec, no memory
//   size_t bytes = net.workspace_bytes(batch, nmsnn::Input::Kind::noisy, /*training=*/true);
//   cudaMalloc(&workspace, bytes);                                // caller's scratch
//   net.forward(params, input, logits, true, {workspace, bytes}, stream);
//   ... dL/dlogits on the device ...
//   net.backward(params, input, dlogits, grads, nullptr, {workspace, bytes}, stream);
//   nmsnn::cuda::sgd_update(sgd, param, grad, buffer, n, step, stream);
//
// Nothing here allocates device memory, keeps global state, or synchronises the device or the
// stream: every kernel and cuBLAS call is queued on `stream` and the functions return at once.
// Argument and launch errors throw nmsnn::Error naming the call and the shapes; errors that
// happen while the kernels run appear at the caller's next synchronisation.
//
// Parameters and gradients are passed as a table of device pointers in the order of
// Network::parameters() (DeviceNetwork::parameters() lists them): for a stack of spiking layers
// layer 0 weight [H0, I], layer 0 bias [H0], layer 1 weight [H1, H0], ...; Lowpass layers add
// their smoothing logits and initial level (row-major, the same layout as the host API). Device arrays of floats should be 16-byte aligned
// (cudaMalloc gives 256) for the fastest cuBLAS kernels; any 4-byte alignment is correct.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "nmsnn/network.hpp"
#include "nmsnn/optimizer.hpp"
#include "nmsnn/philox.hpp"
#include "nmsnn/spec.hpp"

namespace nmsnn::cuda {

struct DeviceOptions {
  MatmulPrecision matmul = MatmulPrecision::fp32;  // the products' arithmetic (matmul_precision.hpp)
  // What training passes keep of spiking layers for backward (saved_state.hpp): u in FP32 (4 bytes
  // per neuron per step), or compact: the spike in 16 bits where a layer above reads it in its
  // backward, the gate bit alone elsewhere (at most 2 bytes per neuron per step).
  SavedState saved = SavedState::fp32;
  // true: inference passes (training = false, no trace) of a noise-encoded network of two
  // spiking layers run one sample per thread-block cluster, the whole pass on chip, where the
  // device can (compute capability 9.0; products in any MatmulPrecision): see
  // DeviceNetwork::runs_by_sample. (The cuda engine's training step, StepLoop, then runs by sample
  // clusters too, each mask made once per step: NetworkOptions::sample_clusters.) Off by default:
  // the kernel runs a cluster's samples and their phases one after another, so it is predicted
  // faster than the layers only for small batches (bench/RESULTS.md, 2026-12-03; not yet
  // measured on a GPU).
  bool sample_clusters = false;
  // true: the backward of a spiking layer of at most 16 neurons over a spiking layer (the seed's
  // 10-neuron output over its 100) runs inside the lower layer's backward time loop: its input and
  // weight gradients without cuBLAS and without rebuilding the lower layer's spikes in FP32
  // (kernels/lif_backward.cuh; those small products then run in FP32 whatever `matmul` says).
  // Forward, over a noisy first layer whose time loop runs in its product's kernel (TF32 and
  // BF16, T dividing 128, at most 128 neurons), the small layer's product runs in that kernel too,
  // on the tensor cores in `matmul`, so the lower layer's spikes never reach memory.
  // false: layer by layer, as every other pair.
  bool fuse_small_layers = true;
};

// The input of one pass, in device memory.
struct DeviceInput {
  Input::Kind kind = Input::Kind::noisy;
  const float* data = nullptr;  // noisy and repeated: x[B, I]; sequence: xi[T, B, I] (row-major)
  int batch = 0;
  // The pass's seed and counter: the encoder's masks (noisy inputs) and the random initial
  // voltages of SpikingActivation layers (any input kind). noise.rows, when not null, is a device
  // array [B] of row keys (ForwardOptions::noise_by_row).
  NoiseKey noise;
};

// Caller-owned scratch memory: device memory of at least workspace_bytes(batch, kind, training)
// bytes, 256-byte aligned (as cudaMalloc returns it).
struct Workspace {
  void* data = nullptr;
  size_t bytes = 0;
};

// Optional per-layer recording, as LayerTrace and LayerRates describe it: what each layer
// returned at each step, device arrays [steps_l, B, H_l] (NetworkSpec::layer_steps and
// layer_width); firing rates [B, H_l] of spiking layers (spikes per step) and spiking
// activations (Hz). An empty vector or a null entry records nothing there. `regularization`, a
// device float or null, receives the pass's rate-regularization loss (0 without regularized
// layers).
struct DeviceTrace {
  std::vector<float*> state, spikes, rates;
  float* regularization = nullptr;
};

class DeviceNetwork {
 public:
  // Validates the spec. `cublas` is the caller's handle; see forward() for what is done to it.
  DeviceNetwork(const NetworkSpec& spec, cublasHandle_t cublas, const DeviceOptions& options = {});

  const NetworkSpec& spec() const { return spec_; }
  const DeviceOptions& options() const { return options_; }
  // The parameter tensors in pointer-table order, with their shapes and sizes.
  const std::vector<ParameterInfo>& parameters() const { return layout_; }

  // Changes the dt of SpikingActivation layer `layer` for later passes.
  void set_dt(int layer, float dt);

  // Scratch bytes a pass of `batch` samples of this input kind needs. A training workspace also
  // holds what backward needs: for spiking layers the pre-reset state u of every neuron at every
  // step (4 bytes per neuron per step) and nothing else, or with DeviceOptions::saved = compact
  // the spike (2 bytes) or the gate (1 bit); Lowpass levels, the rates of regularized spiking
  // activations, and the outputs of other layers that feed a next layer. Its scratch part is
  // reused by backward.
  size_t workspace_bytes(int batch, Input::Kind kind, bool training) const;
  // The part of a training workspace that forward fills and backward reads: for a stack of
  // spiking layers 4*T*B*sum(H_l), or compact 2*T*B*sum(H_l below the last) + 4*ceil(T/32)*B*H_last
  // (each array rounded up to 256 bytes).
  size_t saved_bytes(int batch) const;

  // logits[B, C] (device) for `input`. With training = true, the workspace keeps the saved state
  // for backward(): pass backward the same parameters, input, batch and workspace, and do not
  // change them (or run another pass in that workspace) in between.
  //
  // The cuBLAS handle: if it is not already bound to `stream`, it is bound for the call and
  // rebound to its previous stream afterwards (cuBLAS then drops a workspace set with
  // cublasSetWorkspace: bind the handle to `stream` yourself to keep one). Pointer mode, math
  // mode and atomics mode are set for the call and restored. Use a handle from one thread at a
  // time.
  void forward(const float* const* params, const DeviceInput& input, float* logits, bool training,
               Workspace workspace, cudaStream_t stream, const DeviceTrace* trace = nullptr) const;
  // Whether that forward runs the network one sample per thread-block cluster (the option
  // sample_clusters above) rather than layer by layer. Both compute the same function; their sums
  // differ in order only.
  bool runs_by_sample(const DeviceInput& input, bool training,
                      const DeviceTrace* trace = nullptr) const;

  // Gradients of every parameter from dlogits[B, C] (device); overwrites grads (a table like
  // params). `dinput` (may be null) receives dL/dxi [T, B, I] for a sequence input, dL/dx [B, I]
  // (the sum over steps) for a repeated one. Leaves the saved state intact, so backward may run
  // again for the same forward pass.
  void backward(const float* const* params, const DeviceInput& input, const float* dlogits,
                float* const* grads, float* dinput, Workspace workspace,
                cudaStream_t stream) const;

 private:
  NetworkSpec spec_;
  cublasHandle_t cublas_;
  DeviceOptions options_;
  std::vector<ParameterInfo> layout_;
};

// PyTorch's optimiser updates on device arrays of n floats (the arithmetic of nmsnn::sgd_update
// and nmsnn::adam_update). Buffers start at zero; `step` counts from 1.
void sgd_update(const Sgd& sgd, float* param, const float* grad, float* momentum_buffer, size_t n,
                int64_t step, cudaStream_t stream);
void adam_update(const Adam& adam, float* param, const float* grad, float* m, float* v, size_t n,
                 int64_t step, cudaStream_t stream);

// The multiclass loss on the device: dlogits[B, C] = d(mean_b NLL(log_softmax(logits[b])))/dlogits
// and, when `losses` is not null, losses[b] = the loss of sample b. labels[B] is device memory.
void nll_log_softmax(const float* logits, const int* labels, int batch, int classes,
                     float* dlogits, float* losses, cudaStream_t stream);

}  // namespace nmsnn::cuda
