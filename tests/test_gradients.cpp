// test_gradients.cpp — backpropagation through time against central finite differences.
//
// The CPU engine's templated code runs in double here. For each configuration (reset rule, delay,
// readout, begin_eval, loss, input kind) every weight, bias and input-sequence element is
// perturbed by +-1e-6 and the loss's central difference compared with the analytic gradient.
// Error measure: for each tensor, max_k |analytic_k - numeric_k| / max_k |numeric_k|, which must
// be < 1e-6. (Central differences at h = 1e-6 in double carry ~1e-10 absolute error, far below.)
// The gate g is piecewise constant: a perturbation that moves some u across the threshold would
// make the difference meaningless, so the test checks no u lies within 1e-4 of it.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "cpu/cpu_network.hpp"
#include "losses.hpp"
#include "nmsnn/loss.hpp"

namespace {

using nmsnn::cpu::BatchInput;
using nmsnn::cpu::CpuNetwork;
using nmsnn::cpu::SavedStates;

struct Config {
  nmsnn::ResetRule reset;
  bool delay;
  nmsnn::Reduce reduce;
  int begin_eval;
  nmsnn::Loss loss;
  bool noisy;
  std::string name() const {
    std::string s = std::string(nmsnn::to_string(reset)) + (delay ? "_delay" : "_nodelay") + "_" +
                    nmsnn::to_string(reduce) + "_begin" + std::to_string(begin_eval) + "_" +
                    nmsnn::to_string(loss) + (noisy ? "_noisy" : "_sequence");
    return s;
  }
};

constexpr int kT = 7, kB = 3, kI = 5;

nmsnn::NetworkSpec make_spec(const Config& c) {
  const int outputs = c.loss == nmsnn::Loss::bce ? 1 : 3;
  nmsnn::NetworkSpec spec = nmsnn::NetworkSpec::spiking(kI, {6, 4}, outputs, kT);
  for (auto& layer : spec.layers) {
    auto& s = std::get<nmsnn::SpikingLayer>(layer);
    s.reset = c.reset;
    s.delay = c.delay;
    s.decay = 0.8f;
    s.threshold = 0.5f;
    s.penalty = 0.75f;
  }
  spec.readout.reduce = c.reduce;
  spec.readout.begin_eval = c.begin_eval;
  spec.validate();
  return spec;
}

class Gradients : public ::testing::TestWithParam<Config> {
 protected:
  void SetUp() override {
    const Config& c = GetParam();
    spec_ = make_spec(c);
    net_ = std::make_unique<CpuNetwork<double>>(spec_, pool_);
    std::mt19937_64 rng(1234);
    std::uniform_real_distribution<double> w(-1.2, 1.2), x(0.0, 2.0);
    for (auto& p : net_->layers) {
      for (auto& v : p.WT) v = w(rng);
      for (auto& v : p.bias) v = 0.3 * w(rng);
    }
    input_.assign(c.noisy ? kB * kI : kT * kB * kI, 0.0);
    for (auto& v : input_) v = x(rng);
    input_[1] = 0.0;  // a zero input exercises the skip-zero paths
    const int C = spec_.outputs();
    labels_ = {0, C - 1, C > 1 ? 1 : 0};
    targets_.resize(kB * C);
    for (auto& v : targets_) v = c.loss == nmsnn::Loss::bce ? (x(rng) > 1 ? 1.0 : 0.0) : x(rng);
  }

  BatchInput<double> batch_input() const {
    BatchInput<double> in;
    in.noisy = GetParam().noisy;
    in.data = input_.data();
    in.batch = kB;
    in.key = {99, 5};
    return in;
  }

  // The loss at the current parameters and input; optionally its gradient dL/dlogits.
  double loss(SavedStates<double>* saved, std::vector<double>* dlogits) {
    const int C = spec_.outputs();
    std::vector<double> logits(kB * C), grad(kB * C);
    net_->forward(batch_input(), logits.data(), saved, nullptr);
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
    return value;
  }

  // Smallest |u - threshold| over every neuron and step.
  double margin() {
    SavedStates<double> saved;
    loss(&saved, nullptr);
    double m = 1e9;
    for (size_t l = 0; l < saved.u.size(); ++l) {
      const double th = std::get<nmsnn::SpikingLayer>(spec_.layers[l]).threshold;
      for (double u : saved.u[l]) m = std::min(m, std::abs(u - th));
    }
    return m;
  }

  // max |analytic - numeric| / max |numeric| over the values of one tensor.
  double check(std::vector<double>& values, const std::vector<double>& analytic,
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
    const double rel = worst / std::max(scale, 1e-300);
    EXPECT_LT(rel, 1e-6) << what << ": max abs error " << worst << ", scale " << scale;
    return rel;
  }

  nmsnn::cpu::ThreadPool pool_{2};
  nmsnn::NetworkSpec spec_;
  std::unique_ptr<CpuNetwork<double>> net_;
  std::vector<double> input_, targets_;
  std::vector<int> labels_;
};

TEST_P(Gradients, MatchCentralDifferences) {
  ASSERT_GT(margin(), 1e-4) << "a state sits on the threshold; pick another seed";
  SavedStates<double> saved;
  std::vector<double> dlogits;
  loss(&saved, &dlogits);
  std::vector<double> dinput(GetParam().noisy ? 0 : input_.size(), 0.0);
  net_->backward(batch_input(), saved, dlogits.data(), dinput.empty() ? nullptr : dinput.data());

  for (size_t l = 0; l < net_->layers.size(); ++l) {
    auto& p = net_->layers[l];
    const std::vector<double> dW = p.dWT, db = p.dbias;
    check(p.WT, dW, "layer " + std::to_string(l) + " weight");
    check(p.bias, db, "layer " + std::to_string(l) + " bias");
  }
  if (!GetParam().noisy) check(input_, dinput, "input sequence");
}

std::vector<Config> configs() {
  using nmsnn::Loss;
  using nmsnn::Reduce;
  using nmsnn::ResetRule;
  std::vector<Config> out;
  // Every reset rule x delay x readout, with begin_eval 0 and 2, on the multiclass loss.
  for (ResetRule r : {ResetRule::scale, ResetRule::subtract})
    for (bool delay : {true, false})
      for (Reduce red : {Reduce::sum, Reduce::mean})
        for (int begin : {0, 2}) out.push_back({r, delay, red, begin, Loss::nll, false});
  // The other two losses, and the noise encoder's path (weights and biases only).
  for (Loss loss : {Loss::bce, Loss::mse}) {
    out.push_back({ResetRule::scale, true, Reduce::sum, 0, loss, false});
    out.push_back({ResetRule::subtract, false, Reduce::mean, 1, loss, false});
  }
  out.push_back({ResetRule::scale, true, Reduce::sum, 0, Loss::nll, true});
  out.push_back({ResetRule::subtract, false, Reduce::mean, 3, Loss::mse, true});
  return out;
}

INSTANTIATE_TEST_SUITE_P(AllOptions, Gradients, ::testing::ValuesIn(configs()),
                         [](const auto& info) { return info.param.name(); });

}  // namespace
