// cpu/cpu_engine.cpp — the `cpu` engine behind nmsnn::Network: CpuNetwork<float> plus
// parameter access in the public layout and the optimisers' state in host memory.
#include <algorithm>
#include <cmath>
#include <memory>
#include <variant>

#include "network/engine.hpp"
#include "cpu/cpu_network.hpp"
#include "cpu/thread_pool.hpp"
#include "nmsnn/error.hpp"

namespace nmsnn::detail {
namespace {

struct CpuForwardState : ForwardState {
  using ForwardState::ForwardState;
  cpu::SavedStates<float> saved;
};

// Momentum buffers (SGD) or first and second moments (Adam), one per parameter tensor.
struct CpuOptimizerState : OptimizerState {
  std::vector<std::vector<float>> m, v;
};

class CpuEngine final : public EngineImpl {
 public:
  CpuEngine(const NetworkSpec& spec, int threads)
      : pool_(threads), net_(spec, pool_), spec_(spec), layout_(parameter_layout(spec)) {
    for (auto& layer : net_.layers)
      for (size_t k = 0; k < layer->params.size(); ++k) slots_.push_back({layer.get(), int(k)});
  }

  void read_parameter(size_t index, float* out) const override {
    const Slot& s = slots_[index];
    s.layer->to_public(s.k, s.layer->params[s.k].value.data(), out);
  }

  void write_parameter(size_t index, const float* values) override {
    const Slot& s = slots_[index];
    s.layer->from_public(s.k, values, s.layer->params[s.k].value.data());
  }

  void read_gradient(size_t index, float* out) const override {
    const Slot& s = slots_[index];
    s.layer->to_public(s.k, s.layer->params[s.k].grad.data(), out);
  }

  const NetworkSpec& spec() const override { return spec_; }

  std::shared_ptr<ForwardState> forward(const Input& input, NoiseKey noise,
                                        std::vector<uint32_t> row_keys,
                                        const ForwardOptions& options) override {
    auto state = std::make_shared<CpuForwardState>(this, input, noise, std::move(row_keys),
                                                   options.training, spec_.outputs());
    state->logits.resize(size_t(input.batch) * state->outputs);
    std::vector<std::vector<float>> rates;
    cpu::PassRecord record;
    record.trace = options.record ? &state->trace : nullptr;
    record.rates = options.rates ? &rates : nullptr;
    net_.forward(pass(*state), state->logits.data(),
                 options.training ? &state->saved : nullptr, &record);
    state->regularization = record.regularization;
    for (size_t l = 0; l < rates.size(); ++l) {
      if (rates[l].empty()) continue;
      const bool hertz = std::holds_alternative<SpikingActivation>(spec_.layers[l]);
      const int size = net_.layers[l]->out_real;
      state->rates.push_back({int(l), hertz, input.batch, size, std::move(rates[l])});
    }
    state->saved_bytes = state->saved.bytes();
    return state;
  }

  void backward(ForwardState& state, const float* dlogits, float* dinput) override {
    auto& s = static_cast<CpuForwardState&>(state);
    net_.backward(pass(s), s.saved, dlogits, dinput);
  }

  std::shared_ptr<ForwardState> forward_backward(const Input& input, NoiseKey noise,
                                                 std::vector<uint32_t> row_keys,
                                                 const RowGrad& row_grad) override {
    auto state = std::make_shared<CpuForwardState>(this, input, noise, std::move(row_keys),
                                                   true, spec_.outputs());
    state->logits.resize(size_t(input.batch) * state->outputs);
    state->regularization = net_.train_pass(pass(*state), state->logits.data(), row_grad);
    return state;
  }

  void set_dt(int layer, float dt) override {
    auto* a = dynamic_cast<cpu::SpikingActivationLayer<float>*>(net_.layers[layer].get());
    if (!a) fail("set_dt: layer ", layer, " is not a spiking activation");
    a->set_dt(dt);
    std::get<SpikingActivation>(spec_.layers[size_t(layer)]).dt = dt;
  }

  std::unique_ptr<OptimizerState> make_optimizer_state() override {
    auto state = std::make_unique<CpuOptimizerState>();
    for (const Slot& s : slots_) {
      const size_t n = s.layer->params[s.k].value.size();
      state->m.emplace_back(n, 0.0f);
      state->v.emplace_back(n, 0.0f);
    }
    return state;
  }

  void optimizer_step(OptimizerState& state, const OptimizerSpec& spec, int64_t step) override {
    auto& st = static_cast<CpuOptimizerState&>(state);
    for (size_t i = 0; i < slots_.size(); ++i) {
      auto& p = slots_[i].layer->params[slots_[i].k];
      if (const Sgd* sgd = std::get_if<Sgd>(&spec))
        sgd_update(*sgd, p.value.data(), p.grad.data(), st.m[i].data(), p.value.size(), step);
      else
        adam_update(std::get<Adam>(spec), p.value.data(), p.grad.data(), st.m[i].data(),
                    st.v[i].data(), p.value.size(), step);
    }
  }

  // One collective for all the gradients, gathered into one buffer in the public layout (the
  // cuda engine's too, so ranks on either engine sum the same values in the same places).
  void reduce_gradients(Communicator& comm, float weight) override {
    if (!(std::isfinite(weight) && weight >= 0))
      fail("cpu engine: reduce_gradients: weight must be finite and >= 0, got ", weight);
    size_t total = 0;
    for (const ParameterInfo& p : layout_) total += p.size;
    reduce_buffer_.assign(total, 0.0f);  // weight 0: zeros, whatever the gradients held
    size_t at = 0;
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (weight != 0) {
        read_gradient(i, reduce_buffer_.data() + at);
        for (size_t k = 0; k < layout_[i].size; ++k) reduce_buffer_[at + k] *= weight;
      }
      at += layout_[i].size;
    }
    comm.allreduce_sum(reduce_buffer_.data(), total);
    at = 0;
    for (size_t i = 0; i < slots_.size(); ++i) {
      const Slot& s = slots_[i];
      // The engine layout's padding gets zeros: no rank's own values stay behind there.
      std::vector<float>& grad = s.layer->params[s.k].grad;
      std::fill(grad.begin(), grad.end(), 0.0f);
      s.layer->from_public(s.k, reduce_buffer_.data() + at, grad.data());
      at += layout_[i].size;
    }
  }

  // The buffers have the engine layout of their parameter.
  void read_optimizer_buffer(const OptimizerState& state, int which, size_t index,
                             float* out) const override {
    const auto& st = static_cast<const CpuOptimizerState&>(state);
    const Slot& s = slots_[index];
    s.layer->to_public(s.k, (which == 0 ? st.m : st.v)[index].data(), out);
  }

  void write_optimizer_buffer(OptimizerState& state, int which, size_t index,
                              const float* values) override {
    auto& st = static_cast<CpuOptimizerState&>(state);
    const Slot& s = slots_[index];
    s.layer->from_public(s.k, values, (which == 0 ? st.m : st.v)[index].data());
  }

 private:
  // Public parameter `index` is parameter k of a layer.
  struct Slot {
    cpu::CpuLayer<float>* layer;
    int k;
  };

  // The pass as the CPU network runs it, forward and again backward.
  static cpu::Pass<float> pass(const ForwardState& s) {
    cpu::Pass<float> in;
    in.kind = s.input.kind;
    in.data = s.input.data;
    in.batch = s.input.batch;
    in.key = s.noise;
    in.key.rows = s.row_keys.empty() ? nullptr : s.row_keys.data();
    in.training = s.training;
    return in;
  }

  cpu::ThreadPool pool_;
  cpu::CpuNetwork<float> net_;
  NetworkSpec spec_;
  std::vector<ParameterInfo> layout_;  // the public layout, which reduce_gradients sums in
  std::vector<Slot> slots_;
  std::vector<float> reduce_buffer_;
};

}  // namespace

std::unique_ptr<EngineImpl> make_cpu_engine(const NetworkSpec& spec, int threads) {
  return std::make_unique<CpuEngine>(spec, threads);
}

}  // namespace nmsnn::detail
