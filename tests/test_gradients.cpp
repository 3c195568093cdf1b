// test_gradients.cpp — backpropagation through time against central finite differences.
//
// The CPU engine's templated code runs in double here. For each case (layer stack, reset rule,
// delay, readout, begin_eval, loss, input kind) every parameter and input element is perturbed by
// +-1e-6 and the loss's central difference compared with the analytic gradient.
// Error measure: for each tensor, max_k |analytic_k - numeric_k| / max_k |numeric_k|, which must
// be < 1e-6. (Central differences at h = 1e-6 in double carry ~1e-10 absolute error, far below.)
// The loss includes the pass's regularization terms, whose gradients backward adds itself.
// Gates are piecewise constant: a perturbation that moved a spiking layer's u across its
// threshold would make the difference meaningless, so each case checks that no u lies within
// 1e-4 of it. SpikingActivation is tested in its smooth training form (spiking-aware training
// off, where y = f(x)); its spiking form has a straight-through gradient by definition, checked
// in test_pytorch_spiking.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>

#include "cpu/cpu_network.hpp"
#include "training/loss_math.hpp"
#include "nmsnn/loss.hpp"

namespace {

using nmsnn::Input;
using nmsnn::cpu::Pass;
using nmsnn::cpu::CpuNetwork;
using nmsnn::cpu::SavedStates;

constexpr int kT = 7, kB = 3, kI = 5;

struct Case {
  std::string name;
  nmsnn::NetworkSpec spec;
  nmsnn::Loss loss = nmsnn::Loss::nll;
  Input::Kind input = Input::Kind::sequence;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// The seed's spiking layers with every option combination.
nmsnn::NetworkSpec spiking_spec(nmsnn::ResetRule reset, bool delay, nmsnn::Reduce reduce,
                                int begin_eval, int outputs) {
  nmsnn::NetworkSpec spec = nmsnn::NetworkSpec::spiking(kI, {6, 4}, outputs, kT);
  for (auto& layer : spec.layers) {
    auto& s = std::get<nmsnn::SpikingLayer>(layer);
    s.reset = reset;
    s.delay = delay;
    s.decay = 0.8f;
    s.threshold = 0.5f;
    s.penalty = 0.75f;
  }
  spec.readout.reduce = reduce;
  spec.readout.begin_eval = begin_eval;
  return spec;
}

nmsnn::NetworkSpec stack(std::vector<nmsnn::LayerSpec> layers, nmsnn::Reduce reduce,
                         int begin_eval = 0) {
  nmsnn::NetworkSpec spec;
  spec.inputs = kI;
  spec.time_steps = kT;
  spec.layers = std::move(layers);
  spec.readout.reduce = reduce;
  spec.readout.begin_eval = begin_eval;
  return spec;
}

std::vector<Case> cases() {
  using nmsnn::Loss;
  using nmsnn::Reduce;
  using nmsnn::ResetRule;
  std::vector<Case> out;
  auto name = [](ResetRule r, bool delay, Reduce red, int begin, Loss loss, Input::Kind in) {
    static const char* kinds[] = {"noisy", "sequence", "repeated"};
    return std::string(nmsnn::to_string(r)) + (delay ? "_delay_" : "_nodelay_") +
           nmsnn::to_string(red) + "_begin" + std::to_string(begin) + "_" + nmsnn::to_string(loss) +
           "_" + kinds[int(in)];
  };
  auto add = [&](ResetRule r, bool delay, Reduce red, int begin, Loss loss, Input::Kind in) {
    out.push_back({name(r, delay, red, begin, loss, in),
                   spiking_spec(r, delay, red, begin, loss == Loss::bce ? 1 : 3), loss, in});
  };
  // Every reset rule x delay x readout, with begin_eval 0 and 2, on the multiclass loss.
  for (ResetRule r : {ResetRule::scale, ResetRule::subtract})
    for (bool delay : {true, false})
      for (Reduce red : {Reduce::sum, Reduce::mean})
        for (int begin : {0, 2}) add(r, delay, red, begin, Loss::nll, Input::Kind::sequence);
  // The other two losses, the noise encoder's path (weights only) and a repeated input.
  for (Loss loss : {Loss::bce, Loss::mse}) {
    add(ResetRule::scale, true, Reduce::sum, 0, loss, Input::Kind::sequence);
    add(ResetRule::subtract, false, Reduce::mean, 1, loss, Input::Kind::sequence);
  }
  add(ResetRule::scale, true, Reduce::sum, 0, Loss::nll, Input::Kind::noisy);
  add(ResetRule::subtract, false, Reduce::mean, 3, Loss::mse, Input::Kind::noisy);
  add(ResetRule::scale, false, Reduce::mean, 0, Loss::nll, Input::Kind::repeated);

  // PyTorchSpiking layers (SPEC.md 5) and plain ones.
  using namespace nmsnn;
  Lowpass lp;
  lp.tau = 0.02f;
  lp.dt = 0.01f;
  Lowpass lp_last = lp;
  lp_last.return_sequences = false;
  SpikingActivation smooth;  // trained without spiking awareness: y = f(x) in training passes
  smooth.spiking_aware_training = false;
  smooth.activation = ActivationKind::tanh;
  smooth.dt = 0.01f;
  SpikingActivation regularized = smooth;
  regularized.activation = ActivationKind::sigmoid;
  regularized.rate_weight = 0.3f;
  regularized.rate_target = 0.4f;
  out.push_back({"dense_tanh_lowpass_dense", stack({Dense{6}, Activation{ActivationKind::tanh},
                                                    Lowpass{lp}, Dense{3}}, Reduce::mean, 2)});
  out.push_back({"dense_lowpass_last_step_dense",
                 stack({Dense{6}, Lowpass{lp_last}, Dense{3}}, Reduce::sum)});
  out.push_back({"lowpass_first_on_repeated_input",
                 stack({Lowpass{lp}, Dense{4}}, Reduce::sum), Loss::mse, Input::Kind::repeated});
  out.push_back({"spiking_activation_pool_dense",
                 stack({Dense{6}, SpikingActivation{smooth}, TemporalAvgPool{}, Dense{3}},
                       Reduce::sum)});
  out.push_back({"rate_regularization",
                 stack({Dense{6}, SpikingActivation{regularized}, TemporalAvgPool{}, Dense{3}},
                       Reduce::sum)});
  out.push_back({"mlp_on_noisy_input", stack({Dense{6}, Activation{ActivationKind::sigmoid},
                                              Dense{3}}, Reduce::mean), Loss::nll,
                 Input::Kind::noisy});
  out.push_back({"spiking_then_lowpass", stack({SpikingLayer{6, 0.8f, 0.5f, 0.75f},
                                                Lowpass{lp}, Dense{1}}, Reduce::mean),
                 Loss::bce});
  std::get<SpikingLayer>(out.back().spec.layers[0]).delay = false;
  return out;
}

class Gradients : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Case& c = GetParam();
    c.spec.validate();
    net_ = std::make_unique<CpuNetwork<double>>(c.spec, pool_);
    std::mt19937_64 rng(1234);
    std::uniform_real_distribution<double> w(-1.2, 1.2), x(0.0, 2.0);
    for (auto& layer : net_->layers) {
      for (auto& p : layer->params)
        for (size_t i = 0; i < p.value.size(); ++i) p.value[i] = w(rng);
      if (std::string(layer->kind()) != "lowpass" && !layer->params.empty())
        for (auto& v : layer->params[1].value) v *= 0.3;  // smaller biases
      // Zero the padding (rows and columns past the real sizes), as the engine keeps it.
      zero_padding(*layer);
    }
    const bool sequence = c.input == Input::Kind::sequence;
    input_.assign(sequence ? kT * kB * kI : kB * kI, 0.0);
    for (auto& v : input_) v = x(rng);
    input_[1] = 0.0;  // a zero input exercises the skip-zero paths
    const int C = c.spec.outputs();
    labels_ = {0, C - 1, C > 1 ? 1 : 0};
    targets_.resize(kB * C);
    for (auto& v : targets_) v = c.loss == nmsnn::Loss::bce ? (x(rng) > 1 ? 1.0 : 0.0) : x(rng);
  }

  static void zero_padding(nmsnn::cpu::CpuLayer<double>& layer) {
    if (layer.params.empty()) return;
    if (std::string(layer.kind()) == "lowpass") {
      for (auto& p : layer.params)
        for (int h = layer.out_real; h < layer.out_width; ++h) p.value[h] = 0;
      return;
    }
    auto& linear = static_cast<nmsnn::cpu::LinearLayer<double>&>(layer);
    const int W = layer.out_width;
    for (int i = 0; i < layer.in_width; ++i)
      for (int h = 0; h < W; ++h)
        if (i >= linear.in_real || h >= layer.out_real) layer.params[0].value[size_t(i) * W + h] = 0;
    for (int h = layer.out_real; h < W; ++h) layer.params[1].value[h] = 0;
  }

  Pass<double> batch_input() const {
    Pass<double> in;
    in.kind = GetParam().input;
    in.data = input_.data();
    in.batch = kB;
    in.key = {99, 5};
    in.training = true;
    return in;
  }

  // The loss (task + regularization) at the current values; optionally dL/dlogits.
  double loss(SavedStates<double>* saved, std::vector<double>* dlogits) {
    const int C = GetParam().spec.outputs();
    std::vector<double> logits(kB * C), grad(kB * C);
    nmsnn::cpu::PassRecord record;
    net_->forward(batch_input(), logits.data(), saved, &record);
    double value = 0;
    switch (GetParam().loss) {
      case nmsnn::Loss::nll:
        value = nmsnn::detail::nll_log_softmax(logits.data(), kB, C, labels_.data(), grad.data());
        break;
      case nmsnn::Loss::bce:
        value = nmsnn::detail::bce_with_logits(logits.data(), targets_.data(), kB, grad.data());
        break;
      case nmsnn::Loss::mse:
        value = nmsnn::detail::mse(logits.data(), targets_.data(), kB * C, grad.data());
        break;
    }
    if (dlogits) *dlogits = grad;
    return value + record.regularization;
  }

  // Smallest |u - threshold| over every spiking-layer neuron and step.
  double margin() {
    SavedStates<double> saved;
    loss(&saved, nullptr);
    double m = 1e9;
    const auto& spec = GetParam().spec;
    for (size_t l = 0; l < spec.layers.size(); ++l) {
      const auto* s = std::get_if<nmsnn::SpikingLayer>(&spec.layers[l]);
      if (!s) continue;
      const size_t n = net_->layers[l]->saved_floats();
      for (int b = 0; b < kB; ++b) {
        const double* u = net_->saved_of(saved, int(l), b);
        for (size_t k = 0; k < n; ++k) m = std::min(m, std::abs(u[k] - s->threshold));
      }
    }
    return m;
  }

  // max |analytic - numeric| / max |numeric| over the values of one tensor.
  void check(std::vector<double>& values, const std::vector<double>& analytic,
             const std::string& what) {
    const double h = 1e-6;
    double worst = 0, scale = 0;
    for (size_t k = 0; k < values.size(); ++k) {
      const double keep = values[k];
      values[k] = keep + h;
      const double up = loss(nullptr, nullptr);
      values[k] = keep - h;
      const double down = loss(nullptr, nullptr);
      values[k] = keep;
      const double numeric = (up - down) / (2 * h);
      worst = std::max(worst, std::abs(analytic[k] - numeric));
      scale = std::max(scale, std::abs(numeric));
    }
    EXPECT_GT(scale, 1e-6) << what << ": gradient is zero everywhere, the check would be empty";
    EXPECT_LT(worst / std::max(scale, 1e-300), 1e-6)
        << what << ": max abs error " << worst << ", scale " << scale;
  }

  nmsnn::cpu::ThreadPool pool_{2};
  std::unique_ptr<CpuNetwork<double>> net_;
  std::vector<double> input_, targets_;
  std::vector<int> labels_;
};

TEST_P(Gradients, MatchCentralDifferences) {
  ASSERT_GT(margin(), 1e-4) << "a state sits on the threshold; pick another seed";
  SavedStates<double> saved;
  std::vector<double> dlogits;
  loss(&saved, &dlogits);
  const bool has_input_grad = GetParam().input != Input::Kind::noisy;
  std::vector<double> dinput(has_input_grad ? input_.size() : 0, 0.0);
  net_->backward(batch_input(), saved, dlogits.data(), has_input_grad ? dinput.data() : nullptr);

  for (size_t l = 0; l < net_->layers.size(); ++l) {
    auto& layer = *net_->layers[l];
    for (size_t k = 0; k < layer.params.size(); ++k) {
      const std::vector<double> analytic = layer.params[k].grad;
      check(layer.params[k].value, analytic,
            "layer " + std::to_string(l) + " (" + layer.kind() + ") parameter " + std::to_string(k));
    }
  }
  if (has_input_grad) check(input_, dinput, "input");
}

INSTANTIATE_TEST_SUITE_P(AllOptions, Gradients, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
