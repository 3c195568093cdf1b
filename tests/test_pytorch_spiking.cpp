// test_pytorch_spiking.cpp — SpikingActivation, Lowpass, TemporalAvgPool and spike rates
// (SPEC.md section 5) through the public API, on cases worked out by hand.
#include <gtest/gtest.h>

#include "throws_with.hpp"

#include <cmath>
#include <functional>
#include <string>

#include "nmsnn/nmsnn.hpp"

namespace {

using namespace nmsnn;

// One feature through [layer] with a sum readout over T steps; returns the recorded output.
struct Outcome {
  std::vector<float> y, state, logits;
  ForwardPass pass;
};

NetworkSpec single(const LayerSpec& layer, int T, int inputs = 1) {
  NetworkSpec spec;
  spec.inputs = inputs;
  spec.time_steps = T;
  spec.layers = {layer};
  spec.readout.reduce = Reduce::sum;
  return spec;
}

Outcome run(Network& net, const std::vector<float>& xi, int batch, bool training) {
  ForwardOptions o;
  o.record = true;
  o.rates = true;
  o.training = training;
  Outcome r;
  r.pass = net.forward(Input::sequence(xi, batch), o);
  r.y = r.pass.trace()[0].spikes;
  r.state = r.pass.trace()[0].state;
  r.logits = r.pass.logits();
  return r;
}

SpikingActivation spiking(ActivationKind f, float dt) {
  SpikingActivation a;
  a.activation = f;
  a.dt = dt;
  a.random_initial_voltage = false;  // start at 0 so the counts can be worked out by hand
  return a;
}

}  // namespace

// relu, dt = 0.5, x = [3, 0.6, -1, 4.2], voltage from 0:
//   t0: v = 1.5 -> n = 1, v = 0.5, y = 1 / 0.5 = 2
//   t1: v = 0.5 + 0.3 = 0.8 -> n = 0
//   t2: relu(-1) = 0, v = 0.8 -> n = 0
//   t3: v = 0.8 + 2.1 = 2.9 -> n = 2 (two spikes in one step), v = 0.9, y = 4
TEST(SpikingActivation, CountsSpikesByHand) {
  Network net(single(spiking(ActivationKind::relu, 0.5f), 4));
  const Outcome r = run(net, {3.0f, 0.6f, -1.0f, 4.2f}, 1, false);
  EXPECT_EQ(r.y, (std::vector<float>{2, 0, 0, 4}));
  ASSERT_EQ(r.state.size(), 4u);  // the voltage after each step
  EXPECT_NEAR(r.state[0], 0.5f, 1e-6f);
  EXPECT_NEAR(r.state[1], 0.8f, 1e-6f);
  EXPECT_NEAR(r.state[3], 0.9f, 1e-5f);
  EXPECT_EQ(r.logits[0], 6.0f);
  // Rate in Hz: 3 spikes in T * dt = 2 simulated seconds.
  ASSERT_EQ(r.pass.rates().size(), 1u);
  EXPECT_TRUE(r.pass.rates()[0].hertz);
  EXPECT_FLOAT_EQ(r.pass.rates()[0].rates[0], 1.5f);
}

// tanh, dt = 1, x = [-2, -2, 3]: negative activations drive the voltage below 0, which floor()
// turns into negative spikes, as in PyTorchSpiking.
//   t0: v = -0.96403 -> n = -1, v = 0.03597, y = -1
//   t1: v = 0.03597 - 0.96403 = -0.92806 -> n = -1, v = 0.07194, y = -1
//   t2: v = 0.07194 + 0.99505 = 1.06699 -> n = 1, y = 1
TEST(SpikingActivation, NegativeActivationsGiveNegativeSpikes) {
  Network net(single(spiking(ActivationKind::tanh, 1.0f), 3));
  const Outcome r = run(net, {-2.0f, -2.0f, 3.0f}, 1, false);
  EXPECT_EQ(r.y, (std::vector<float>{-1, -1, 1}));
  EXPECT_NEAR(r.state[1], 2 - 2 * std::tanh(2.0), 1e-5);
}

TEST(SpikingActivation, BackwardIsTheActivationsGradient) {
  // Spiking forward, f'(x) backward: with a sum readout dL/dy[t] = 1, so dL/dx[t] = f'(x[t]).
  for (ActivationKind f : {ActivationKind::relu, ActivationKind::tanh, ActivationKind::sigmoid}) {
    Network net(single(spiking(f, 0.1f), 4));
    const std::vector<float> xi = {0.7f, -0.3f, 2.5f, 0.0f};
    auto pass = net.forward(Input::sequence(xi, 1));
    std::vector<float> dx;
    net.backward(pass, {1.0f}, &dx);
    for (int t = 0; t < 4; ++t) {
      const double x = xi[t];
      double g = 0;
      if (f == ActivationKind::relu) g = x > 0 ? 1 : 0;
      if (f == ActivationKind::tanh) g = 1 - std::tanh(x) * std::tanh(x);
      if (f == ActivationKind::sigmoid) g = 1 / (1 + std::exp(-x)) * (1 - 1 / (1 + std::exp(-x)));
      EXPECT_NEAR(dx[t], g, 1e-6) << to_string(f) << " t=" << t;
    }
  }
}

TEST(SpikingActivation, WithoutSpikingAwareTrainingTrainingPassesUseTheActivation) {
  SpikingActivation a = spiking(ActivationKind::relu, 0.5f);
  a.spiking_aware_training = false;
  Network net(single(a, 4));
  const std::vector<float> xi = {3.0f, 0.6f, -1.0f, 4.2f};
  EXPECT_EQ(run(net, xi, 1, true).y, (std::vector<float>{3.0f, 0.6f, 0.0f, 4.2f}));
  EXPECT_EQ(run(net, xi, 1, false).y, (std::vector<float>{2, 0, 0, 4}));  // inference spikes
  // With spiking-aware training the training pass spikes too.
  a.spiking_aware_training = true;
  Network aware(single(a, 4));
  EXPECT_EQ(run(aware, xi, 1, true).y, (std::vector<float>{2, 0, 0, 4}));
}

TEST(SpikingActivation, RandomInitialVoltageIsSeededAndRatesFollowTheActivation) {
  SpikingActivation a;  // relu, dt 0.001, random initial voltage
  const int T = 1000, B = 64;
  std::vector<float> xi(T * B);
  for (int t = 0; t < T; ++t)
    for (int b = 0; b < B; ++b) xi[t * B + b] = 20.0f;  // 20 Hz
  Network n1(single(a, T), {Engine::cpu, 5});
  Network n2(single(a, T), {Engine::cpu, 5});
  Network n3(single(a, T), {Engine::cpu, 6});
  const Outcome r1 = run(n1, xi, B, false), r2 = run(n2, xi, B, false), r3 = run(n3, xi, B, false);
  EXPECT_EQ(r1.y, r2.y);
  EXPECT_NE(r1.y, r3.y);
  // In 1 s of simulated time each neuron fires 20 times (19, 20 or 21 with its initial voltage).
  double mean = 0;
  for (float r : r1.pass.rates()[0].rates) {
    EXPECT_GE(r, 19.0f);
    EXPECT_LE(r, 21.0f);
    mean += r / B;
  }
  EXPECT_NEAR(mean, 20.0, 0.5);
}

TEST(SpikingActivation, DtCanChangeAtInference) {
  Network net(single(spiking(ActivationKind::relu, 0.5f), 4));
  const std::vector<float> xi = {3.0f, 0.6f, -1.0f, 4.2f};
  net.set_dt(0, 1.0f);
  // dt = 1: v = 3 -> n = 3; 0.6 -> n = 0 (v 0.6); 0; v = 4.8 -> n = 4.
  EXPECT_EQ(run(net, xi, 1, false).y, (std::vector<float>{3, 0, 0, 4}));
  EXPECT_EQ(std::get<SpikingActivation>(net.spec().layers[0]).dt, 1.0f);
  expect_throws([&] { net.set_dt(0, 0.0f); }, {"dt must be > 0"});
  Network lif(NetworkSpec::spiking(1, {}, 2, 3));
  expect_throws([&] { lif.set_dt(0, 0.1f); }, {"layer 0", "not a spiking activation"});
}

// Lowpass, tau = 0.1, dt = 0.1: smoothing a = exp(-1) initially; level[t] = (1-a) x[t] + a level[t-1].
TEST(Lowpass, FiltersByHand) {
  Lowpass lp;
  lp.tau = 0.1f;
  lp.dt = 0.1f;
  Network net(single(lp, 3));
  const double a = std::exp(-1.0);
  EXPECT_NEAR(net.parameter("layers.0.smoothing")[0], std::log(a / (1 - a)), 1e-6);
  EXPECT_EQ(net.parameter("layers.0.initial_level")[0], 0.0f);
  const Outcome r = run(net, {1.0f, 1.0f, 0.0f}, 1, false);
  const double l0 = 1 - a, l1 = (1 - a) + a * l0, l2 = a * l1;
  EXPECT_NEAR(r.y[0], l0, 1e-6);
  EXPECT_NEAR(r.y[1], l1, 1e-6);
  EXPECT_NEAR(r.y[2], l2, 1e-6);
  // return_sequences off: only the last level; apply_during_training off: identity in training.
  lp.return_sequences = false;
  lp.apply_during_training = false;
  Network last(single(lp, 3));
  EXPECT_NEAR(run(last, {1.0f, 1.0f, 0.0f}, 1, false).y[0], l2, 1e-6);
  EXPECT_EQ(run(last, {1.0f, 1.0f, 0.5f}, 1, true).y, (std::vector<float>{0.5f}));
  // The initial level is a parameter: starting at 2 adds a^(t+1) * 2.
  net.set_parameter("layers.0.initial_level", {2.0f});
  EXPECT_NEAR(run(net, {1.0f, 1.0f, 0.0f}, 1, false).y[2], l2 + 2 * a * a * a, 1e-6);
}

TEST(TemporalAvgPool, AveragesOverTime) {
  Network net(single(TemporalAvgPool{}, 4, 2));
  const Outcome r = run(net, {1, 10, 2, 20, 3, 30, 6, 40}, 1, false);  // xi[t, 0, i]
  EXPECT_EQ(r.logits, (std::vector<float>{3.0f, 25.0f}));
  EXPECT_EQ(r.pass.trace()[0].steps, 1);
}

// Rate regularization: loss += weight * mean_b sum_h (rate[b,h] - target)^2.
TEST(RateRegularization, AddsTheTermAndItsGradient) {
  SpikingActivation a = spiking(ActivationKind::relu, 0.5f);
  a.rate_weight = 0.01f;
  a.rate_target = 1.0f;
  Network net(single(a, 4));
  // Sample 0 spikes [2, 0, 0, 4] (rate 1.5 Hz); sample 1 (x = 0.1, voltage 0.05 per step)
  // never fires (rate 0).
  std::vector<float> xi = {3.0f, 0.1f, 0.6f, 0.1f, -1.0f, 0.1f, 4.2f, 0.1f};  // [t, b]
  auto pass = net.forward(Input::sequence(xi, 2));
  EXPECT_NEAR(pass.regularization_loss(), 0.01 * ((1.5 - 1) * (1.5 - 1) + 1.0) / 2, 1e-7);
  // Its gradient reaches x through f': d/dy[t] = 2 * 0.01 * (rate - target) / (B * T).
  std::vector<float> dx;
  net.backward(pass, {0.0f, 0.0f}, &dx);
  const float g0 = 2 * 0.01f * 0.5f / 8, g1 = 2 * 0.01f * -1.0f / 8;
  EXPECT_NEAR(dx[0], g0, 1e-8);    // t0, sample 0: relu'(3) = 1
  EXPECT_NEAR(dx[4], 0.0f, 1e-8);  // t2, sample 0: relu'(-1) = 0
  EXPECT_NEAR(dx[1], g1, 1e-8);    // t0, sample 1: relu'(0.1) = 1, pushed up towards the target
  EXPECT_NEAR(dx[7], g1, 1e-8);    // t3, sample 1
}

TEST(PytorchSpikingErrors, BadConfigurationsAreRejected) {
  SpikingActivation a;
  a.dt = 0;
  expect_throws([&] { Network n(single(a, 4)); }, {"layer 0", "spiking activation", "dt must be > 0"});
  a.dt = -0.1f;
  expect_throws([&] { Network n(single(a, 4)); }, {"dt must be > 0", "-0.1"});
  Lowpass lp;
  lp.tau = 0;
  expect_throws([&] { Network n(single(lp, 4)); }, {"lowpass", "tau must be > 0"});
  lp.tau = 0.1f;
  lp.units = 3;
  expect_throws([&] { Network n(single(lp, 4, 2)); }, {"lowpass", "3 units", "2 features"});
  lp.units = 0;
  lp.dt = -1;
  expect_throws([&] { Network n(single(lp, 4)); }, {"lowpass", "dt must be > 0"});
  expect_throws([&] { Network n(single(TemporalAvgPool{}, 0)); }, {"time_steps", ">= 1"});
  // After pooling there is one step: the readout cannot begin later.
  NetworkSpec pooled = single(TemporalAvgPool{}, 5);
  pooled.readout.begin_eval = 2;
  expect_throws([&] { Network n(pooled); }, {"begin_eval", "[0, 1)"});
}
