// cpu/cpu_backend.cpp — the `cpu` engine behind nmsnn::Network: CpuNetwork<float> plus
// parameter access in the public layout and the optimisers' state in host memory.
#include <memory>
#include <variant>

#include "backend.hpp"
#include "cpu/cpu_network.hpp"
#include "cpu/thread_pool.hpp"
#include "nmsnn/error.hpp"

namespace nmsnn::detail {
namespace {

struct CpuForwardState : ForwardState {
  cpu::SavedStates<float> saved;
};

// Momentum buffers (SGD) or first and second moments (Adam), one per parameter tensor.
struct CpuOptimizerState : OptimizerState {
  std::vector<std::vector<float>> m, v;
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(const NetworkSpec& spec, int threads)
      : pool_(threads), net_(spec, pool_), spec_(spec) {}

  // Public layout: weight [out, in_real], bias [out]. Engine layout: WT [in, width] (transposed,
  // neurons padded to width; for l > 0 the rows past the previous layer's real size are padding).
  void read_parameter(size_t index, float* out) const override {
    const auto& p = net_.layers[index / 2];
    if (index % 2 == 0)
      from_engine(p, p.WT.data(), index / 2, out);
    else
      std::copy(p.bias.begin(), p.bias.begin() + p.out, out);
  }

  void write_parameter(size_t index, const float* values) override {
    auto& p = net_.layers[index / 2];
    if (index % 2 == 0) {
      const int in_real = real_inputs(index / 2);
      for (int h = 0; h < p.out; ++h)
        for (int i = 0; i < in_real; ++i)
          p.WT[size_t(i) * p.width + h] = values[size_t(h) * in_real + i];
    } else {
      std::copy(values, values + p.out, p.bias.begin());
    }
  }

  void read_gradient(size_t index, float* out) const override {
    const auto& p = net_.layers[index / 2];
    if (index % 2 == 0)
      from_engine(p, p.dWT.data(), index / 2, out);
    else
      std::copy(p.dbias.begin(), p.dbias.begin() + p.out, out);
  }

  std::shared_ptr<ForwardState> forward(const Input& input, NoiseKey noise,
                                        const ForwardOptions& options) override {
    auto state = std::make_shared<CpuForwardState>();
    state->batch = input.batch;
    state->outputs = spec_.outputs();
    state->logits.resize(size_t(input.batch) * state->outputs);
    net_.forward(batch_input(input, noise), state->logits.data(),
                 options.training ? &state->saved : nullptr,
                 options.record ? &state->trace : nullptr);
    state->saved_bytes = state->saved.bytes();
    return state;
  }

  void backward(ForwardState& state, const float* dlogits, float* dinput) override {
    auto& s = static_cast<CpuForwardState&>(state);
    net_.backward(batch_input(s.input, s.noise), s.saved, dlogits, dinput);
  }

  std::unique_ptr<OptimizerState> make_optimizer_state() override {
    auto state = std::make_unique<CpuOptimizerState>();
    for (const auto& p : net_.layers) {
      for (size_t n : {p.WT.size(), p.bias.size()}) {
        state->m.emplace_back(n, 0.0f);
        state->v.emplace_back(n, 0.0f);
      }
    }
    return state;
  }

  void optimizer_step(OptimizerState& state, const OptimizerSpec& spec, int64_t step) override {
    auto& s = static_cast<CpuOptimizerState&>(state);
    for (size_t l = 0; l < net_.layers.size(); ++l) {
      auto& p = net_.layers[l];
      update(spec, p.WT.data(), p.dWT.data(), s, 2 * l, p.WT.size(), step);
      update(spec, p.bias.data(), p.dbias.data(), s, 2 * l + 1, p.bias.size(), step);
    }
  }

 private:
  int real_inputs(size_t layer) const {
    return layer == 0 ? spec_.inputs : net_.layers[layer - 1].out;
  }

  void from_engine(const cpu::LayerParams<float>& p, const float* WT, size_t layer,
                   float* out) const {
    const int in_real = real_inputs(layer);
    for (int h = 0; h < p.out; ++h)
      for (int i = 0; i < in_real; ++i) out[size_t(h) * in_real + i] = WT[size_t(i) * p.width + h];
  }

  static cpu::BatchInput<float> batch_input(const Input& input, NoiseKey noise) {
    cpu::BatchInput<float> in;
    in.noisy = input.kind == Input::Kind::noisy;
    in.data = input.data;
    in.batch = input.batch;
    in.key = noise;
    return in;
  }

  static void update(const OptimizerSpec& spec, float* param, const float* grad,
                     CpuOptimizerState& s, size_t k, size_t n, int64_t step) {
    if (const Sgd* sgd = std::get_if<Sgd>(&spec))
      sgd_update(*sgd, param, grad, s.m[k].data(), n, step);
    else
      adam_update(std::get<Adam>(spec), param, grad, s.m[k].data(), s.v[k].data(), n, step);
  }

  cpu::ThreadPool pool_;
  cpu::CpuNetwork<float> net_;
  NetworkSpec spec_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const NetworkSpec& spec, int threads) {
  return std::make_unique<CpuBackend>(spec, threads);
}

}  // namespace nmsnn::detail
