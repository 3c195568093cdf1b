// gradient_check.hpp — backpropagation through time against central finite differences, for
// one network spec, loss and input kind (test_gradients.cpp, test_conv_layers.cpp).
//
// The CPU engine's templated code runs in double here. Every parameter and input element is
// perturbed by +-1e-6 and the loss's central difference compared with the analytic gradient.
// Error measure: for each tensor, max_k |analytic_k - numeric_k| / max_k |numeric_k|, which must
// be < 1e-6. (Central differences at h = 1e-6 in double carry ~1e-10 absolute error, far below.)
// The loss includes the pass's regularization terms, whose gradients backward adds itself.
// Gates are piecewise constant: a perturbation that moved a spiking or lif layer's u across its
// threshold would make the difference meaningless, so check_all() first checks that no u lies
// within 1e-4 of it. Max pooling is piecewise too (its gradient goes to one entry per window):
// likewise no window's largest entry may lie within 1e-4 of another (ties at 0, spikes that did
// not fire, are exempt: both entries stay 0 under the perturbation).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_network.hpp"
#include "nmsnn/loss.hpp"
#include "training/loss_math.hpp"

namespace nmsnn_test {

struct GradientCase {
  std::string name;
  nmsnn::NetworkSpec spec;
  nmsnn::Loss loss = nmsnn::Loss::nll;
  nmsnn::Input::Kind input = nmsnn::Input::Kind::sequence;
};

inline void PrintTo(const GradientCase& c, std::ostream* os) { *os << c.name; }

class GradientCheck {
 public:
  static constexpr int kB = 3;  // samples per batch

  // Random parameters (padding zero, as the engine keeps it), inputs, labels and targets, all
  // from a fixed seed.
  explicit GradientCheck(const GradientCase& c) : case_(c) {
    c.spec.validate();
    net_ = std::make_unique<nmsnn::cpu::CpuNetwork<double>>(c.spec, pool_);
    std::mt19937_64 rng(1234);
    std::uniform_real_distribution<double> w(-1.2, 1.2), x(0.0, 2.0);
    for (auto& layer : net_->layers) {
      for (auto& p : layer->params)
        for (size_t i = 0; i < p.value.size(); ++i) p.value[i] = w(rng);
      if (std::string(layer->kind()) != "lowpass" && !layer->params.empty())
        for (auto& v : layer->params[1].value) v *= 0.3;  // smaller biases
      zero_padding(*layer);
    }
    const int T = c.spec.time_steps, I = c.spec.inputs;
    const bool sequence = c.input == nmsnn::Input::Kind::sequence;
    input_.assign(sequence ? size_t(T) * kB * I : size_t(kB) * I, 0.0);
    for (auto& v : input_) v = x(rng);
    input_[1] = 0.0;  // a zero input exercises the skip-zero paths
    const int C = c.spec.outputs();
    labels_ = {0, C - 1, C > 1 ? 1 : 0};
    targets_.resize(size_t(kB) * C);
    for (auto& v : targets_) v = c.loss == nmsnn::Loss::bce ? (x(rng) > 1 ? 1.0 : 0.0) : x(rng);
  }

  // Zero every engine entry that has no public counterpart (padded rows, columns and channels):
  // from_public of ones marks the public entries.
  static void zero_padding(nmsnn::cpu::CpuLayer<double>& layer) {
    for (size_t k = 0; k < layer.params.size(); ++k) {
      auto& p = layer.params[k];
      size_t n = 1;
      for (int d : p.public_shape) n *= size_t(d);
      const std::vector<float> ones(n, 1.0f);
      std::vector<double> mask(p.value.size(), 0.0);
      layer.from_public(int(k), ones.data(), mask.data());
      for (size_t i = 0; i < mask.size(); ++i) p.value[i] *= mask[i];
    }
  }

  nmsnn::cpu::CpuNetwork<double>& net() { return *net_; }
  std::vector<double>& input() { return input_; }

  nmsnn::cpu::Pass<double> batch_input() const {
    nmsnn::cpu::Pass<double> in;
    in.kind = case_.input;
    in.data = input_.data();
    in.batch = kB;
    in.key = {99, 5};
    in.training = true;
    return in;
  }

  // The loss (task + regularization) at the current values; optionally dL/dlogits.
  double loss(nmsnn::cpu::SavedStates<double>* saved, std::vector<double>* dlogits,
              std::vector<nmsnn::LayerTrace>* trace = nullptr) {
    const int C = case_.spec.outputs();
    std::vector<double> logits(size_t(kB) * C), grad(size_t(kB) * C);
    nmsnn::cpu::PassRecord record;
    record.trace = trace;
    net_->forward(batch_input(), logits.data(), saved, &record);
    double value = 0;
    switch (case_.loss) {
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

  // Smallest |u - threshold| over every spiking and lif neuron and step.
  double margin() {
    nmsnn::cpu::SavedStates<double> saved;
    loss(&saved, nullptr);
    double m = 1e9;
    const auto& spec = case_.spec;
    for (size_t l = 0; l < spec.layers.size(); ++l) {
      double threshold;
      if (const auto* s = std::get_if<nmsnn::SpikingLayer>(&spec.layers[l]))
        threshold = s->threshold;
      else if (const auto* n = std::get_if<nmsnn::Lif>(&spec.layers[l]))
        threshold = n->threshold;
      else
        continue;
      const size_t n = net_->layers[l]->saved_floats();
      for (int b = 0; b < kB; ++b) {
        const double* u = net_->saved_of(saved, int(l), b);
        for (size_t k = 0; k < n; ++k) m = std::min(m, std::abs(u[k] - threshold));
      }
    }
    return m;
  }

  // Smallest gap between a max-pooling window's largest entry and any other of its entries
  // (1e9 without max pooling); exact ties at 0 do not count.
  double pool_margin() {
    std::vector<nmsnn::LayerTrace> trace;
    loss(nullptr, nullptr, &trace);
    double m = 1e9;
    const auto& spec = case_.spec;
    for (size_t l = 1; l < spec.layers.size(); ++l) {
      const auto* pool = std::get_if<nmsnn::MaxPool2d>(&spec.layers[l]);
      if (!pool) continue;
      const std::vector<int> in = spec.layer_shape(int(l) - 1);
      const auto stride = nmsnn::pool_stride(pool->kernel, pool->stride);
      const auto out = nmsnn::window_output({in[1], in[2]}, pool->kernel, stride, {0, 0});
      const nmsnn::LayerTrace& x = trace[l - 1];  // the pool's input: what layer l-1 returned
      for (int t = 0; t < x.steps; ++t)
        for (int b = 0; b < kB; ++b)
          for (int c = 0; c < in[0]; ++c)
            for (int oy = 0; oy < out[0]; ++oy)
              for (int ox = 0; ox < out[1]; ++ox) {
                std::vector<double> v;
                for (int ky = 0; ky < pool->kernel[0]; ++ky)
                  for (int kx = 0; kx < pool->kernel[1]; ++kx) {
                    const int y = oy * stride[0] + ky, xx = ox * stride[1] + kx;
                    v.push_back(x.spikes[(size_t(t) * kB + b) * x.size +
                                         (size_t(c) * in[1] + y) * in[2] + xx]);
                  }
                std::sort(v.rbegin(), v.rend());
                if (v.size() > 1 && !(v[0] == 0 && v[1] == 0)) m = std::min(m, v[0] - v[1]);
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

  // Every parameter's gradient, and the input's (sequence and repeated inputs).
  void check_all() {
    ASSERT_GT(margin(), 1e-4) << "a state sits on the threshold; pick another seed";
    ASSERT_GT(pool_margin(), 1e-4) << "a max-pooling window nearly ties; pick another seed";
    nmsnn::cpu::SavedStates<double> saved;
    std::vector<double> dlogits;
    loss(&saved, &dlogits);
    const bool has_input_grad = case_.input != nmsnn::Input::Kind::noisy;
    std::vector<double> dinput(has_input_grad ? input_.size() : 0, 0.0);
    net_->backward(batch_input(), saved, dlogits.data(), has_input_grad ? dinput.data() : nullptr);

    for (size_t l = 0; l < net_->layers.size(); ++l) {
      auto& layer = *net_->layers[l];
      for (size_t k = 0; k < layer.params.size(); ++k) {
        const std::vector<double> analytic = layer.params[k].grad;
        check(layer.params[k].value, analytic,
              "layer " + std::to_string(l) + " (" + layer.kind() + ") parameter " +
                  std::to_string(k));
      }
    }
    if (has_input_grad) check(input_, dinput, "input");
  }

 private:
  GradientCase case_;
  nmsnn::cpu::ThreadPool pool_{2};
  std::unique_ptr<nmsnn::cpu::CpuNetwork<double>> net_;
  std::vector<double> input_, targets_;
  std::vector<int> labels_;
};

}  // namespace nmsnn_test
