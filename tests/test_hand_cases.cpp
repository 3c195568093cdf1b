// test_hand_cases.cpp — two-step networks of one or two neurons, worked out by hand.
//
// Settings throughout: decay 0.5, threshold 1, penalty 1.5, W = 1, bias = 0, input sequence
// xi = [2, 0.5] (T = 2, B = 1, I = 1), unless a test says otherwise.
//
// One neuron, no delay:
//   t=0: u = 2, s = relu(2 - 1) = 1, g = 1
//        scale:    v = 2 - 1.5 * 2 = -1          subtract: v = 2 - (1.5 + 1) = -0.5
//   t=1: u = 0.5 + 0.5 * v0
//        scale:    u = 0,    s = 0, v = 0        subtract: u = 0.25, s = 0, v = 0.25
// The readout sums the returned state: without delay v0 + v1, with delay 0 + v0.
#include <gtest/gtest.h>

#include "nmsnn/network.hpp"

namespace {

using nmsnn::Input;
using nmsnn::Network;
using nmsnn::NetworkSpec;
using nmsnn::ResetRule;
using nmsnn::SpikingLayer;

SpikingLayer neuron(ResetRule reset, bool delay) {
  SpikingLayer l;
  l.size = 1;
  l.decay = 0.5f;
  l.threshold = 1.0f;
  l.penalty = 1.5f;
  l.reset = reset;
  l.delay = delay;
  return l;
}

Network make(std::vector<SpikingLayer> layers, nmsnn::Reduce reduce = nmsnn::Reduce::sum,
             int begin_eval = 0) {
  NetworkSpec spec;
  spec.inputs = 1;
  spec.time_steps = 2;
  for (auto& l : layers) spec.layers.push_back(l);
  spec.readout.reduce = reduce;
  spec.readout.begin_eval = begin_eval;
  Network net(spec);
  for (size_t l = 0; l < layers.size(); ++l) {
    net.set_parameter("layers." + std::to_string(l) + ".weight", {1.0f});
    net.set_parameter("layers." + std::to_string(l) + ".bias", {0.0f});
  }
  return net;
}

struct Result {
  float logit;
  std::vector<float> dW, db, dx;
};

Result run(Network& net, std::vector<float> xi, int layer = 0) {
  auto pass = net.forward(Input::sequence(xi, 1));
  std::vector<float> dx;
  net.backward(pass, {1.0f}, &dx);
  const std::string p = "layers." + std::to_string(layer) + ".";
  return {pass.logits()[0], net.gradient(p + "weight"), net.gradient(p + "bias"), dx};
}

}  // namespace

TEST(HandCases, ScaleResetNoDelay) {
  Network net = make({neuron(ResetRule::scale, false)});
  const Result r = run(net, {2.0f, 0.5f});
  EXPECT_EQ(r.logit, -1.0f);  // v0 + v1 = -1 + 0
  // Backward with dlogits = 1: du1 = 1; du0 = (1 + 0.5 * du1) * (1 - 1.5) = -0.75.
  EXPECT_EQ(r.dW[0], -1.0f);  // 2 * -0.75 + 0.5 * 1
  EXPECT_EQ(r.db[0], 0.25f);
  EXPECT_EQ(r.dx, (std::vector<float>{-0.75f, 1.0f}));
}

TEST(HandCases, SubtractResetNoDelay) {
  Network net = make({neuron(ResetRule::subtract, false)});
  const Result r = run(net, {2.0f, 0.5f});
  EXPECT_EQ(r.logit, -0.25f);  // -0.5 + 0.25
  // du1 = 1; du0 = 1.5 * (1 - g) = 0: after a spike the subtract rule's v no longer depends on u.
  EXPECT_EQ(r.dW[0], 0.5f);
  EXPECT_EQ(r.db[0], 1.0f);
  EXPECT_EQ(r.dx, (std::vector<float>{0.0f, 1.0f}));
}

TEST(HandCases, ScaleResetWithDelay) {
  Network net = make({neuron(ResetRule::scale, true)});
  const Result r = run(net, {2.0f, 0.5f});
  EXPECT_EQ(r.logit, -1.0f);  // returned states are [0, v0]
  // Only v0 is read: du0 = 1 * (1 - 1.5) = -0.5, and v1 (never returned) gets nothing.
  EXPECT_EQ(r.dW[0], -1.0f);
  EXPECT_EQ(r.db[0], -0.5f);
  EXPECT_EQ(r.dx, (std::vector<float>{-0.5f, 0.0f}));
}

TEST(HandCases, SubtractResetWithDelay) {
  Network net = make({neuron(ResetRule::subtract, true)});
  const Result r = run(net, {2.0f, 0.5f});
  EXPECT_EQ(r.logit, -0.5f);
  EXPECT_EQ(r.dW[0], 0.0f);
  EXPECT_EQ(r.db[0], 0.0f);
}

TEST(HandCases, DelayShiftsTheReturnedStateAndSpikesByOneStep) {
  Network net = make({neuron(ResetRule::scale, true)});
  nmsnn::ForwardOptions record;
  record.record = true;
  std::vector<float> xi = {2.0f, 0.5f};
  auto pass = net.forward(Input::sequence(xi, 1), record);
  const nmsnn::LayerTrace& tr = pass.trace().at(0);
  EXPECT_EQ(tr.state, (std::vector<float>{0.0f, -1.0f}));
  EXPECT_EQ(tr.spikes, (std::vector<float>{0.0f, 1.0f}));

  Network direct = make({neuron(ResetRule::scale, false)});
  auto pass2 = direct.forward(Input::sequence(xi, 1), record);
  EXPECT_EQ(pass2.trace().at(0).state, (std::vector<float>{-1.0f, 0.0f}));
  EXPECT_EQ(pass2.trace().at(0).spikes, (std::vector<float>{1.0f, 0.0f}));
}

TEST(HandCases, MeanReadoutAndBeginEval) {
  Network mean = make({neuron(ResetRule::scale, false)}, nmsnn::Reduce::mean);
  EXPECT_EQ(run(mean, {2.0f, 0.5f}).logit, -0.5f);  // (-1 + 0) / 2
  Network late = make({neuron(ResetRule::subtract, false)}, nmsnn::Reduce::sum, 1);
  const Result r = run(late, {2.0f, 0.5f});
  EXPECT_EQ(r.logit, 0.25f);  // v1 only
  // d v1 / d u1 = 1 and u1 = 0.5 W + b + 0.5 v0, with dv0/du0 = 0 after the spike.
  EXPECT_EQ(r.db[0], 1.0f);
  EXPECT_EQ(r.dW[0], 0.5f);
}

// Two layers of one neuron, no delay, scale reset, xi = [2.5, 0.5]:
//   hidden: u = [2.5, -0.125], s = [1.5, 0], v = [-1.25, -0.125]
//   output (input s): u = [1.5, -0.375], v = [-0.75, -0.375]; logit = -1.125
// Backward: output du = [-0.75, 1]; dW2 = 1.5 * -0.75 = -1.125; db2 = 0.25;
//   the hidden spikes get ds = W2 du = [-0.75, 1]; hidden du = [-0.75 * g0, 1 * g1] = [-0.75, 0];
//   dW1 = 2.5 * -0.75 = -1.875; db1 = -0.75.
TEST(HandCases, TwoLayersPassSpikesForwardAndGradientsBack) {
  Network net = make({neuron(ResetRule::scale, false), neuron(ResetRule::scale, false)});
  const Result out = run(net, {2.5f, 0.5f}, 1);
  EXPECT_EQ(out.logit, -1.125f);
  EXPECT_EQ(out.dW[0], -1.125f);
  EXPECT_EQ(out.db[0], 0.25f);
  EXPECT_EQ(net.gradient("layers.0.weight")[0], -1.875f);
  EXPECT_EQ(net.gradient("layers.0.bias")[0], -0.75f);
}

// Two neurons in one layer with different inputs: one fires, one does not.
TEST(HandCases, TwoNeuronsAreIndependent) {
  NetworkSpec spec;
  spec.inputs = 1;
  spec.time_steps = 2;
  SpikingLayer l = neuron(ResetRule::scale, false);
  l.size = 2;
  spec.layers.push_back(l);
  spec.readout.reduce = nmsnn::Reduce::sum;
  Network net(spec);
  net.set_parameter("layers.0.weight", {1.0f, 0.25f});  // W is [H=2, I=1]
  net.set_parameter("layers.0.bias", {0.0f, 0.0f});
  std::vector<float> xi = {2.0f, 0.5f};
  auto pass = net.forward(Input::sequence(xi, 1));
  // Neuron 0 is the one-neuron case (logit -1). Neuron 1: a = [0.5, 0.125] never fires:
  // v = [0.5, 0.125 + 0.25] and its logit is 0.875.
  EXPECT_EQ(pass.logits(), (std::vector<float>{-1.0f, 0.875f}));
}
