// network/engine.hpp — EngineImpl, the interface every engine (cpu, cuda) implements behind nmsnn::Network.
//
// Network validates arguments and owns the noise counter; an engine owns the parameters,
// gradients and optimiser state in its own memory (host for cpu, device for cuda) and runs the
// math. Parameters cross this interface in the public layout ("layers.l.weight" is [H, I]).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "nmsnn/error.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/optimizer.hpp"
#include "nmsnn/philox.hpp"

namespace nmsnn::detail {

// What a forward pass leaves for backward. Engines derive from it to keep their saved tensors.
struct ForwardState {
  virtual ~ForwardState() = default;
  const void* owner = nullptr;  // the engine that made it; backward refuses others
  Input input;                  // caller-owned input, needed again by backward
  NoiseKey noise;
  bool training = false;
  int batch = 0, outputs = 0;
  size_t saved_bytes = 0;
  std::vector<float> logits;  // [B, C]
  std::vector<LayerTrace> trace;
  std::vector<LayerRates> rates;
  double regularization = 0;
};

struct OptimizerState {
  virtual ~OptimizerState() = default;
};

class EngineImpl {
 public:
  virtual ~EngineImpl() = default;

  virtual void read_parameter(size_t index, float* out) const = 0;
  virtual void write_parameter(size_t index, const float* values) = 0;
  virtual void read_gradient(size_t index, float* out) const = 0;

  // `input` has been checked against the spec by Network.
  virtual std::shared_ptr<ForwardState> forward(const Input& input, NoiseKey noise,
                                                const ForwardOptions& options) = 0;
  // dinput: [T, B, I] or null.
  virtual void backward(ForwardState& state, const float* dlogits, float* dinput) = 0;

  // Network::set_dt has checked that `layer` is a SpikingActivation and dt > 0.
  virtual void set_dt(int layer, float dt) {
    (void)layer, (void)dt;
    detail::fail("this engine cannot change dt after construction");
  }

  virtual std::unique_ptr<OptimizerState> make_optimizer_state() = 0;
  // One update of every parameter; `step` counts from 1.
  virtual void optimizer_step(OptimizerState& state, const OptimizerSpec& spec, int64_t step) = 0;
  // Buffer `which` of the optimiser state for parameter `index`, in the public layout: 0 is SGD's
  // momentum or Adam's first moment, 1 is Adam's second moment. What a checkpoint saves.
  virtual void read_optimizer_buffer(const OptimizerState& state, int which, size_t index,
                                     float* out) const = 0;
  virtual void write_optimizer_buffer(OptimizerState& state, int which, size_t index,
                                      const float* values) = 0;
};

// The trainable tensors of a spec, in order: for each layer with weights its weight [H, I] then
// bias [H]; for each Lowpass its smoothing logits then initial level.
std::vector<ParameterInfo> parameter_layout(const NetworkSpec& spec);

std::unique_ptr<EngineImpl> make_cpu_engine(const NetworkSpec& spec, int threads);
// Throws nmsnn::Error saying why when the build has no CUDA engine or no device is usable.
std::unique_ptr<EngineImpl> make_cuda_engine(const NetworkSpec& spec, MatmulPrecision matmul);

}  // namespace nmsnn::detail
