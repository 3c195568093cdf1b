// network/engine.hpp — EngineImpl, the interface the cpu and cuda engines implement behind Network.
//
// Network validates arguments and owns the noise counter; an engine owns the parameters,
// gradients and optimiser state in its own memory (host for cpu, device for cuda) and runs the
// math. Parameters cross this interface in the public layout ("layers.l.weight" is [H, I]).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "nmsnn/communicator.hpp"
#include "nmsnn/error.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/optimizer.hpp"
#include "nmsnn/philox.hpp"
#include "nmsnn/train_step.hpp"

namespace nmsnn::detail {

class EngineImpl;

// What a forward pass leaves for backward. Engines derive from it to keep their saved tensors.
// One writer: the engine whose forward() makes it. What the pass was asked is fixed at
// construction; what it produced is filled in by that forward() before it returns.
struct ForwardState {
  ForwardState(const EngineImpl* owner, const Input& input, NoiseKey noise,
               std::vector<uint32_t> row_keys, bool training, int outputs)
      : owner(owner), input(input), noise(noise), row_keys(std::move(row_keys)),
        training(training), batch(input.batch), outputs(outputs) {}
  virtual ~ForwardState() = default;

  const EngineImpl* const owner;  // backward refuses a state from another engine
  const Input input;  // caller-owned, read again by the cpu engine's backward
  const NoiseKey noise;
  const std::vector<uint32_t> row_keys;  // [B] (ForwardOptions::noise_by_row), or empty: row b is b
  const bool training;
  const int batch, outputs;

  size_t saved_bytes = 0;
  std::vector<float> logits;  // [B, C]
  std::vector<LayerTrace> trace;
  std::vector<LayerRates> rates;
  double regularization = 0;
};

struct OptimizerState {
  virtual ~OptimizerState() = default;
};

// What a StepLoop keeps on its engine between reads: the loss, the guard, the steps' records.
struct StepState {
  virtual ~StepState() = default;
};

class EngineImpl {
 public:
  virtual ~EngineImpl() = default;

  virtual void read_parameter(size_t index, float* out) const = 0;
  virtual void write_parameter(size_t index, const float* values) = 0;
  virtual void read_gradient(size_t index, float* out) const = 0;

  // The spec the engine runs: the only copy a Network keeps (set_dt changes it).
  virtual const NetworkSpec& spec() const = 0;

  // `input` has been checked against the spec by Network; `row_keys` is empty or has one key per
  // row, which the row's noise masks and initial voltages use in place of its index.
  virtual std::shared_ptr<ForwardState> forward(const Input& input, NoiseKey noise,
                                                std::vector<uint32_t> row_keys,
                                                const ForwardOptions& options) = 0;
  // dinput: [T, B, I] or null.
  virtual void backward(ForwardState& state, const float* dlogits, float* dinput) = 0;

  // A training pass with its backward, for the host training step: row_grad(b, logits, dlogits)
  // writes row b's dL/dlogits from row b's logits alone (each loss is a mean of per-row terms),
  // is called once per row, maybe from several threads at once, and must not throw. The default
  // is forward, every row's gradient, then backward; the cpu engine runs each sample's backward
  // straight after its forward (cpu_network.hpp). The returned state has the logits and the
  // regularization; it is not for backward().
  using RowGrad = std::function<void(int b, const float* logits, float* dlogits)>;
  virtual std::shared_ptr<ForwardState> forward_backward(const Input& input, NoiseKey noise,
                                                         std::vector<uint32_t> row_keys,
                                                         const RowGrad& row_grad);

  // Network::set_dt has checked that `layer` is a SpikingActivation and dt > 0. Updates the
  // engine's layers and its spec().
  virtual void set_dt(int layer, float dt) = 0;

  virtual std::unique_ptr<OptimizerState> make_optimizer_state() = 0;
  // One update of every parameter; `step` counts from 1.
  virtual void optimizer_step(OptimizerState& state, const OptimizerSpec& spec, int64_t step) = 0;
  // Buffer `which` of the optimiser state for parameter `index`, in the public layout: 0 is SGD's
  // momentum or Adam's first moment, 1 is Adam's second moment. What a checkpoint saves.
  virtual void read_optimizer_buffer(const OptimizerState& state, int which, size_t index,
                                     float* out) const = 0;
  virtual void write_optimizer_buffer(OptimizerState& state, int which, size_t index,
                                      const float* values) = 0;

  // ---- data parallelism (communicator.hpp) ------------------------------------------------------
  // Multiplies every parameter's gradient by `weight` (the share of the global batch this rank
  // computed), then sums the gradients over the ranks of `comm` in place. weight 0: this rank
  // computed no rows, its gradients count as zeros whatever they held.
  virtual void reduce_gradients(Communicator& comm, float weight) = 0;

  // ---- the whole training step (StepLoop, train_step.hpp) ---------------------------------------
  // The defaults are the host path (training/train_step.cpp): this engine's forward_backward,
  // the loss on the host and optimizer_step in sequence, with the checks after each; the cpu engine
  // uses it, the cuda engine runs the step on the device. StepLoop has checked the input, the
  // labels and targets; `step` counts the optimiser's updates from 1. With a communicator
  // (options.communicator) `input` and the labels or targets are the global batch, of which this
  // rank computes its shard: on the host path, or on the cuda engine's device-resident step when
  // the communicator sums device memory (distributed/device_reducer.hpp).
  virtual std::unique_ptr<StepState> make_step_state(Loss loss, const StepOptions& options);
  virtual void train_step(StepState& state, const Input& input, NoiseKey noise, const int* labels,
                          const float* targets, OptimizerState& optimizer,
                          const OptimizerSpec& spec, int64_t step);
  // Waits for the queued steps; on a halt the parameters are already back at the good ones.
  virtual StepReport read_steps(StepState& state);
  // A training set for train_step_rows (StepLoop::keep_data has checked it): true when the
  // engine keeps its own copy where its step runs (the cuda engine's device-resident step, in
  // device memory), false when it keeps none (the default) and StepLoop gathers each step's rows
  // on the host for train_step. Replaces any data kept before.
  virtual bool keep_step_data(StepState& state, const StepData& data);
  // train_step on rows[0..B) of the kept data (checked in range), after keep_step_data said true.
  virtual void train_step_rows(StepState& state, const int* rows, int B, NoiseKey noise,
                               OptimizerState& optimizer, const OptimizerSpec& spec,
                               int64_t step);
};

std::unique_ptr<EngineImpl> make_cpu_engine(const NetworkSpec& spec, int threads);
// Throws nmsnn::Error saying why when the build has no CUDA engine or no device is usable.
std::unique_ptr<EngineImpl> make_cuda_engine(const NetworkSpec& spec, MatmulPrecision matmul,
                                             SavedState saved, bool sample_clusters, int device);

// What both engines' backward passes need to know of a layer, from SPEC.md's gradients:
// whether a Lowpass is bypassed (apply_during_training false: the identity in training passes),
// and whether a layer's backward reads its input x. All do but TemporalAvgPool, a bypassed
// Lowpass, AvgPool2d, Flatten and Lif, whose gradients need only dy or their own saved state;
// below those, an engine keeps no output for backward (a spiking layer only its gates).
bool bypassed_lowpass(const LayerSpec& l, bool training);
bool backward_reads_input(const LayerSpec& l);

}  // namespace nmsnn::detail
