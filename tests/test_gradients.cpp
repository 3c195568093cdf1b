// test_gradients.cpp — backpropagation through time against central finite differences
// (gradient_check.hpp: the method, tolerance and guards) for the dense and spiking layers.
//
// Cases: every layer stack, reset rule, delay, readout, begin_eval, loss and input kind.
// SpikingActivation is tested in its smooth training form (spiking-aware training off, where
// y = f(x)); its spiking form has a straight-through gradient by definition, checked in
// test_pytorch_spiking.cpp.
#include <gtest/gtest.h>

#include <string>

#include "gradient_check.hpp"

namespace {

using nmsnn::Input;
using Case = nmsnn_test::GradientCase;

constexpr int kT = 7, kI = 5;

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

class Gradients : public ::testing::TestWithParam<Case> {};

TEST_P(Gradients, MatchCentralDifferences) {
  nmsnn_test::GradientCheck check(GetParam());
  check.check_all();
}

INSTANTIATE_TEST_SUITE_P(AllOptions, Gradients, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
