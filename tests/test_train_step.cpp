// test_train_step.cpp — StepLoop (nmsnn/train_step.hpp), the whole training step as one call, on
// both engines: it must give the parameters, losses and accuracies of the step-by-step API
// (Network::forward, the loss, Network::backward, Optimizer::step), exactly on the cpu engine and
// within a stated tolerance on the cuda engine; a CUDA graph's replay must equal the uncaptured
// step bit for bit; and divergence must halt it as nmsnn::train's checks did. The cuda cases skip
// without a device; in the CUDA emulation they run against the emulated runtime.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "nmsnn/loss.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/optimizer.hpp"
#include "nmsnn/train_step.hpp"
#include "nmsnn/trainer.hpp"
#include "require_cuda.hpp"
#include "step_records.cuh"
#include "throws_with.hpp"

namespace {

using nmsnn::Engine;
using nmsnn::Input;
using nmsnn::Loss;
using nmsnn::Network;
using nmsnn::NetworkSpec;

// A batch of random data for `loss`: x in [-1, 1] (every input nonzero, as centred data), labels
// or targets to match.
struct Batch {
  int B = 0;
  std::vector<float> x, targets;
  std::vector<int> labels;
};

Batch make_batch(const NetworkSpec& spec, Loss loss, int B, uint32_t seed) {
  Batch b;
  b.B = B;
  uint32_t s = seed * 2654435761u + 12345u;
  auto next = [&] {
    s = s * 1664525u + 1013904223u;
    return float(s >> 8) / 16777216.0f;
  };
  const int C = spec.outputs();
  for (int i = 0; i < B * spec.inputs; ++i) b.x.push_back(2 * next() - 1);
  for (int i = 0; i < B; ++i) {
    if (loss == Loss::nll) b.labels.push_back(int(next() * C) % C);
    if (loss == Loss::bce) b.labels.push_back(next() > 0.5f ? 1 : 0);
  }
  if (loss == Loss::mse)
    for (int i = 0; i < B * C; ++i) b.targets.push_back(next());
  return b;
}

nmsnn::LossValue host_loss(Loss loss, const std::vector<float>& logits, const Batch& b, int C) {
  if (loss == Loss::nll) return nmsnn::nll_log_softmax(logits, b.B, C, b.labels);
  if (loss == Loss::bce)
    return nmsnn::bce_with_logits(logits, std::vector<float>(b.labels.begin(), b.labels.end()));
  return nmsnn::mse(logits, b.targets);
}

int host_correct(Loss loss, const std::vector<float>& logits, const Batch& b, int C) {
  int correct = 0;
  for (int i = 0; i < b.B; ++i) {
    const float* z = logits.data() + size_t(i) * C;
    if (loss == Loss::nll) correct += int(std::max_element(z, z + C) - z) == b.labels[size_t(i)];
    if (loss == Loss::bce) correct += (z[0] > 0) == (b.labels[size_t(i)] > 0);
  }
  return correct;
}

std::vector<float> all_parameters(const Network& net) {
  std::vector<float> out;
  for (const auto& p : net.parameters()) {
    const std::vector<float> v = net.parameter(p.name);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, scale = 1e-30;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  return diff / scale;
}

std::string name(Engine e) { return e == Engine::cpu ? "cpu" : "cuda"; }

class StepLoopOn : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    if (GetParam() == Engine::cuda) REQUIRE_CUDA();
  }
  nmsnn::NetworkOptions options(uint64_t seed) const { return {GetParam(), seed, 1}; }
};

// Several steps (the last batch smaller) for each loss and optimiser: StepLoop against the
// step-by-step API on the same engine. The cpu engine must agree exactly: it runs the same calls.
// The cuda engine computes the loss on the device in double, summed in another order, and its
// dlogits are the same doubles rounded to float; a last-ulp difference there is within 1e-6 of
// each gradient, so 1e-5 of the largest parameter after four updates.
// The comparison below, for `engine`; `clusters`: the StepLoop's network runs its steps by sample
// clusters (NetworkOptions::sample_clusters, kernels/sample_cluster.cuh), the step-by-step one
// layer by layer. Their sums then differ in order (~1e-7 of the logits), so the loss is compared
// to 1e-6 and the parameters to 1e-5; a spiking decision that rounding could flip is unlikely at
// these sizes (a flip would show as a difference of order one).
void check_step_matches_api(Engine engine, bool clusters) {
  const NetworkSpec spiking = NetworkSpec::spiking(12, {16}, 4, 7);
  const NetworkSpec binary = NetworkSpec::spiking(12, {16}, 1, 7);
  const std::vector<nmsnn::OptimizerSpec> optimizers = {nmsnn::Sgd{0.2, 0.9},
                                                        nmsnn::Adam{1e-2}};
  for (Loss loss : {Loss::nll, Loss::bce, Loss::mse}) {
    const NetworkSpec& spec = loss == Loss::bce ? binary : spiking;
    const int C = spec.outputs();
    for (const auto& o : optimizers) {
      SCOPED_TRACE(std::string(nmsnn::to_string(loss)) + " " + nmsnn::describe(o) + " on " +
                   name(engine) + (clusters ? " by sample clusters" : ""));
      nmsnn::NetworkOptions stepped{engine, 5, 1};
      stepped.sample_clusters = clusters;
      Network a(spec, stepped), b(spec, {engine, 5, 1});
      nmsnn::Optimizer oa(a, o), ob(b, o);
      nmsnn::StepLoop loop(a, oa, loss);
      std::vector<double> losses;
      std::vector<int> corrects;
      const int sizes[] = {9, 9, 9, 5};
      for (int k = 0; k < 4; ++k) {
        const Batch batch = make_batch(spec, loss, sizes[k], uint32_t(k + 1));
        const Input input = Input::noisy(batch.x, batch.B);
        loop.step(input, batch.labels.empty() ? nullptr : batch.labels.data(),
                  batch.targets.empty() ? nullptr : batch.targets.data());
        nmsnn::ForwardPass pass = b.forward(input);
        const nmsnn::LossValue v = host_loss(loss, pass.logits(), batch, C);
        losses.push_back(v.value + pass.regularization_loss());
        corrects.push_back(host_correct(loss, pass.logits(), batch, C));
        b.backward(pass, v.grad);
        ob.step();
      }
      const nmsnn::StepReport r = loop.read();
      EXPECT_EQ(r.halt, nmsnn::HaltReason::none);
      ASSERT_EQ(r.steps.size(), 4u);
      const double loss_tolerance = clusters ? 1e-6 : 1e-9;
      for (size_t k = 0; k < 4; ++k) {
        EXPECT_EQ(r.steps[k].batch, sizes[k]);
        EXPECT_EQ(r.steps[k].correct, corrects[k]) << "step " << k;
        if (engine == Engine::cpu)
          EXPECT_EQ(r.steps[k].loss, losses[k]) << "step " << k;
        else
          EXPECT_NEAR(r.steps[k].loss, losses[k], loss_tolerance * std::max(1.0, losses[k]))
              << k;
      }
      EXPECT_EQ(r.first_loss, r.steps[0].loss);
      EXPECT_EQ(a.noise_passes(), b.noise_passes());
      EXPECT_EQ(oa.steps(), ob.steps());
      if (engine == Engine::cpu)
        EXPECT_TRUE(all_parameters(a) == all_parameters(b));
      else
        EXPECT_LE(relative_error(all_parameters(a), all_parameters(b)), 1e-5);
    }
  }
}

TEST_P(StepLoopOn, MatchesTheStepByStepApi) { check_step_matches_api(GetParam(), false); }

// The cuda engine's step by sample clusters (compute capability 9.0; the emulation is one).
TEST(StepLoopCuda, BySampleClustersMatchesTheStepByStepApi) {
  REQUIRE_CUDA();
  check_step_matches_api(Engine::cuda, true);
}

// Training a network whose outputs explode: the second step's loss is not finite, so the loop
// halts there with the initial parameters back (the first step's loss passed with them), the
// noise counter after two passes and the optimiser after one update, as nmsnn::train did.
TEST_P(StepLoopOn, HaltsWhenTheLossExplodes) {
  const NetworkSpec spec = NetworkSpec::spiking(6, {8}, 3, 6);
  Network net(spec, options(1));
  const std::vector<float> initial = all_parameters(net);
  nmsnn::Optimizer opt(net, nmsnn::Adam{1e30});
  nmsnn::StepLoop loop(net, opt, Loss::nll);
  for (int k = 0; k < 4; ++k) {
    const Batch batch = make_batch(spec, Loss::nll, 16, uint32_t(k + 7));
    loop.step(Input::noisy(batch.x, batch.B), batch.labels.data());
  }
  const nmsnn::StepReport r = loop.read();
  ASSERT_NE(r.halt, nmsnn::HaltReason::none);
  EXPECT_TRUE(r.halt == nmsnn::HaltReason::outputs_not_finite ||
              r.halt == nmsnn::HaltReason::loss_not_finite ||
              r.halt == nmsnn::HaltReason::loss_grew)
      << r.reason(1e6);
  EXPECT_EQ(r.halt_step, 1) << r.reason(1e6);
  EXPECT_EQ(r.steps.size(), 1u);
  EXPECT_TRUE(all_parameters(net) == initial);
  EXPECT_EQ(net.noise_passes(), 2u);
  EXPECT_EQ(opt.steps(), 1);
  EXPECT_EQ(r.reason(1e6).find("-nan"), std::string::npos) << r.reason(1e6);
}

// An update past the float range: the first step's update makes layers.0.weight[0] infinite; the
// loop halts at that step with the initial parameters back.
TEST_P(StepLoopOn, HaltsWhenAnUpdateOverflows) {
  const NetworkSpec spec = NetworkSpec::mlp(4, {}, 1);
  Network net(spec, options(1));
  const std::vector<float> initial = all_parameters(net);
  nmsnn::Optimizer opt(net, nmsnn::Sgd{1e38});
  nmsnn::StepLoop loop(net, opt, Loss::mse);
  std::vector<float> x, y;
  for (int i = 0; i < 8; ++i) {
    float sum = 0;
    for (int j = 0; j < 4; ++j) {
      x.push_back(0.5f + float((i * 7 + j * 3) % 11) / 11.0f);
      sum += x.back();
    }
    y.push_back(sum + 10);
  }
  loop.step(Input::repeated(x, 8), nullptr, y.data());
  loop.step(Input::repeated(x, 8), nullptr, y.data());
  const nmsnn::StepReport r = loop.read();
  ASSERT_EQ(r.halt, nmsnn::HaltReason::parameter_not_finite) << r.reason(1e6);
  EXPECT_EQ(r.halt_step, 0);
  EXPECT_TRUE(r.steps.empty());
  EXPECT_EQ(r.parameter, "layers.0.weight[0]");
  EXPECT_EQ(r.reason(1e6), "the update made a parameter not finite (layers.0.weight[0] is inf)");
  EXPECT_TRUE(all_parameters(net) == initial);
  EXPECT_EQ(opt.steps(), 1);
  EXPECT_EQ(net.noise_passes(), 1u);
  // The loop goes on from the restored parameters.
  opt.set_lr(1e-3);
  loop.step(Input::repeated(x, 8), nullptr, y.data());
  const nmsnn::StepReport next = loop.read();
  EXPECT_EQ(next.halt, nmsnn::HaltReason::none);
  ASSERT_EQ(next.steps.size(), 1u);
  EXPECT_TRUE(std::isfinite(next.steps[0].loss));
}

TEST_P(StepLoopOn, RejectsBadArguments) {
  const NetworkSpec spec = NetworkSpec::spiking(6, {8}, 3, 6);
  Network net(spec, options(1)), other(spec, options(2));
  nmsnn::Optimizer opt(net, nmsnn::Adam{1e-3}), foreign(other, nmsnn::Adam{1e-3});
  EXPECT_TRUE(throws_with([&] { nmsnn::StepLoop(net, foreign, Loss::nll); },
                          {"made for another network"}));
  EXPECT_TRUE(throws_with([&] { nmsnn::StepLoop(net, opt, Loss::bce); },
                          {"bce loss needs a network with 1 output"}));
  nmsnn::StepLoop loop(net, opt, Loss::nll);
  const Batch batch = make_batch(spec, Loss::nll, 4, 3);
  std::vector<int> bad = batch.labels;
  bad[2] = 3;
  EXPECT_TRUE(throws_with([&] { loop.step(Input::noisy(batch.x, 4), bad.data()); },
                          {"label[2] = 3 is outside [0, 3)"}));
  EXPECT_TRUE(throws_with([&] { loop.step(Input::noisy(batch.x, 4), nullptr); },
                          {"nll needs labels"}));
  EXPECT_TRUE(throws_with([&] { loop.step(Input::noisy(batch.x, 3), batch.labels.data()); },
                          {"input x has 24 values, expected batch*inputs = 3*6 = 18"}));
  std::vector<float> sequence(size_t(6) * 4 * 6, 0.5f);
  EXPECT_TRUE(throws_with([&] { loop.step(Input::sequence(sequence, 4), batch.labels.data()); },
                          {"sequence inputs are not supported"}));
  EXPECT_EQ(loop.pending(), 0);
  EXPECT_EQ(net.noise_passes(), 0u);  // a refused step draws no pass
}

// ---- a kept training set (keep_data, step_rows) ---------------------------------------------

// Steps on rows of a kept training set against steps on the same rows gathered into batches by
// the test, on the same engine and network: the same bits, parameters and records. A gather (on
// the device or on the host) copies the rows, and the step then computes what it computes on a
// batch. Every loss, bce from labels and from targets, both static encodings, rows repeated and
// out of order, a last batch smaller; `graphs` replays the steps on the cuda engine (for two of
// the cases: each is ~10 s in the CUDA emulation, and a graph holds only addresses).
void check_kept_rows(Engine engine, bool graphs) {
  const NetworkSpec spiking = NetworkSpec::spiking(12, {16}, 4, 7);
  const NetworkSpec binary = NetworkSpec::spiking(12, {16}, 1, 7);
  const int count = 11;
  const std::vector<std::vector<int>> batches = {
      {3, 0, 7, 7, 10, 1, 4, 2, 9}, {5, 6, 8, 0, 1, 2, 3, 4, 9}, {10, 2, 5},
      {5, 6, 8, 0, 1, 2, 3, 4, 9}};
  struct Case {
    Loss loss;
    bool bce_targets;
    Input::Kind kind;
  };
  for (const Case c : {Case{Loss::nll, false, Input::Kind::noisy},
                       Case{Loss::bce, false, Input::Kind::noisy},
                       Case{Loss::bce, true, Input::Kind::repeated},
                       Case{Loss::mse, false, Input::Kind::repeated}}) {
    if (graphs && c.loss == Loss::bce && !c.bce_targets) continue;
    if (graphs && c.loss == Loss::mse) continue;
    SCOPED_TRACE(std::string(nmsnn::to_string(c.loss)) + (c.bce_targets ? " from targets" : "") +
                 (c.kind == Input::Kind::noisy ? ", noisy" : ", repeated") + " on " + name(engine) +
                 (graphs ? " with graphs" : ""));
    const NetworkSpec& spec = c.loss == Loss::bce ? binary : spiking;
    const int C = spec.outputs(), I = spec.inputs;
    Batch data = make_batch(spec, c.loss, count, 17);
    if (c.bce_targets) {
      for (int label : data.labels) data.targets.push_back(0.1f + 0.8f * float(label));
      data.labels.clear();
    }
    const size_t width = c.loss == Loss::mse ? size_t(C) : 1;
    std::vector<float> params[2];
    std::vector<nmsnn::StepRecord> records[2];
    for (int kept = 0; kept < 2; ++kept) {
      Network net(spec, {engine, 5, 1});
      nmsnn::Optimizer opt(net, nmsnn::Adam{1e-2});
      nmsnn::StepOptions options;
      options.graphs = graphs;
      nmsnn::StepLoop loop(net, opt, c.loss, options);
      if (kept) {
        const bool on_device = loop.keep_data(
            {c.kind, data.x.data(), count, data.labels.empty() ? nullptr : data.labels.data(),
             data.targets.empty() ? nullptr : data.targets.data()});
        EXPECT_EQ(on_device, engine == Engine::cuda);
        EXPECT_EQ(loop.data_on_device(), on_device);
      }
      for (const std::vector<int>& rows : batches) {
        const int B = int(rows.size());
        if (kept) {
          loop.step_rows(rows.data(), B);
          continue;
        }
        Batch b;
        for (int r : rows) {
          b.x.insert(b.x.end(), data.x.begin() + size_t(r) * I, data.x.begin() + size_t(r + 1) * I);
          if (!data.labels.empty()) b.labels.push_back(data.labels[size_t(r)]);
          if (!data.targets.empty())
            b.targets.insert(b.targets.end(), data.targets.begin() + r * width,
                             data.targets.begin() + (r + 1) * width);
        }
        loop.step({c.kind, b.x.data(), b.x.size(), B}, b.labels.empty() ? nullptr : b.labels.data(),
                  b.targets.empty() ? nullptr : b.targets.data());
      }
      const nmsnn::StepReport r = loop.read();
      ASSERT_EQ(r.halt, nmsnn::HaltReason::none);
      ASSERT_EQ(r.steps.size(), batches.size());
      EXPECT_EQ(net.noise_passes(), batches.size());
      EXPECT_EQ(opt.steps(), int64_t(batches.size()));
      params[kept] = all_parameters(net);
      records[kept] = r.steps;
    }
    EXPECT_TRUE(params[0] == params[1]);
    for (size_t k = 0; k < batches.size(); ++k) {
      EXPECT_EQ(records[1][k].batch, int(batches[k].size())) << k;
      EXPECT_EQ(records[1][k].loss, records[0][k].loss) << k;
      EXPECT_EQ(records[1][k].correct, records[0][k].correct) << k;
    }
  }
}

TEST_P(StepLoopOn, KeptRowsEqualBatchesGatheredByTheCaller) {
  check_kept_rows(GetParam(), false);
}

TEST_P(StepLoopOn, KeepDataAndStepRowsRefuseBadArguments) {
  const NetworkSpec spec = NetworkSpec::spiking(6, {8}, 3, 6);
  Network net(spec, options(1));
  nmsnn::Optimizer opt(net, nmsnn::Adam{1e-3});
  nmsnn::StepLoop loop(net, opt, Loss::nll);
  const Batch data = make_batch(spec, Loss::nll, 5, 3);
  const int rows[] = {0, 4, 2};
  EXPECT_TRUE(throws_with([&] { loop.step_rows(rows, 3); },
                          {"StepLoop::step_rows: no data kept; call keep_data first"}));
  std::vector<float> x = data.x;
  x[2 * 6 + 3] = std::nanf("");
  EXPECT_TRUE(
      throws_with([&] { loop.keep_data({Input::Kind::noisy, x.data(), 5, data.labels.data()}); },
                  {"StepLoop::keep_data: x[2, 3] is nan: inputs must be finite"}));
  std::vector<int> labels = data.labels;
  labels[4] = 3;
  EXPECT_TRUE(throws_with(
      [&] { loop.keep_data({Input::Kind::noisy, data.x.data(), 5, labels.data()}); },
      {"StepLoop::keep_data: label[4] = 3 is outside [0, 3)"}));
  EXPECT_TRUE(throws_with([&] { loop.keep_data({Input::Kind::noisy, data.x.data(), 5, nullptr}); },
                          {"StepLoop::keep_data: nll needs labels"}));
  EXPECT_TRUE(throws_with(
      [&] { loop.keep_data({Input::Kind::noisy, data.x.data(), 0, data.labels.data()}); },
      {"StepLoop::keep_data: count must be in [1, "}));
  EXPECT_TRUE(
      throws_with([&] { loop.keep_data({Input::Kind::noisy, nullptr, 5, data.labels.data()}); },
                  {"StepLoop::keep_data: x is null"}));
  EXPECT_TRUE(throws_with(
      [&] { loop.keep_data({Input::Kind::sequence, data.x.data(), 5, data.labels.data()}); },
      {"sequence inputs are not supported"}));
  // A refused keep_data keeps nothing, not even what was kept before.
  EXPECT_TRUE(throws_with([&] { loop.step_rows(rows, 3); }, {"no data kept"}));

  loop.keep_data({Input::Kind::noisy, data.x.data(), 5, data.labels.data()});
  const int outside[] = {0, 5, 2}, negative[] = {-1};
  EXPECT_TRUE(throws_with([&] { loop.step_rows(outside, 3); },
                          {"StepLoop::step_rows: rows[1] = 5 is outside the kept data's [0, 5)"}));
  EXPECT_TRUE(throws_with([&] { loop.step_rows(negative, 1); }, {"rows[0] = -1 is outside"}));
  EXPECT_TRUE(throws_with([&] { loop.step_rows(rows, 0); },
                          {"StepLoop::step_rows: batch must be in [1, "}));
  EXPECT_TRUE(throws_with([&] { loop.step_rows(nullptr, 3); }, {"rows is null"}));
  EXPECT_EQ(loop.pending(), 0);
  EXPECT_EQ(net.noise_passes(), 0u);  // a refused step draws no pass
  loop.step_rows(rows, 3);
  EXPECT_EQ(loop.read().steps.size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Engines, StepLoopOn, ::testing::Values(Engine::cpu, Engine::cuda),
                         [](const auto& info) { return name(info.param); });

// ---- cpu only ----------------------------------------------------------------------------------

// The cpu engine's step runs each sample's backward straight after its forward and keeps the
// first layer's input between them (CpuNetwork::train_pass): the masked inputs of a layer with
// weights, or the materialised input of a layer without. Every kind of first layer, every input
// kind a step takes, batches that split into several blocks, inputs too large to keep (their
// masks are made again), with several worker threads: the parameters and records must be those
// of the step-by-step API, bit for bit.
TEST(StepLoopCpu, EveryFirstLayerMatchesTheStepByStepApi) {
  using namespace nmsnn;
  struct Case {
    std::string name;
    NetworkSpec spec;
    Input::Kind kind;
    int B;
  };
  auto image = [](std::vector<LayerSpec> layers) {
    NetworkSpec spec;
    spec.inputs = 60;
    spec.input_shape = {2, 6, 5};
    spec.time_steps = 5;
    spec.layers = std::move(layers);
    return spec;
  };
  Conv2d conv;
  conv.out_channels = 3;
  conv.kernel = {3, 2};
  NetworkSpec dense_first;
  dense_first.inputs = 20;
  dense_first.time_steps = 6;
  dense_first.layers = {Dense{8}, Activation{ActivationKind::tanh}, SpikingLayer{4}};
  // 33,000 inputs x 128 steps: more masked values than a worker keeps (kMaxKeptValues).
  const std::vector<Case> cases = {
      {"spiking_noisy", NetworkSpec::spiking(300, {16, 8}, 4, 7), Input::Kind::noisy, 37},
      {"spiking_repeated", NetworkSpec::spiking(30, {16}, 4, 7), Input::Kind::repeated, 21},
      {"dense_first_noisy", dense_first, Input::Kind::noisy, 19},
      {"conv_first_noisy", image({conv, Lif{}, Flatten{}, SpikingLayer{4}}), Input::Kind::noisy,
       17},
      {"lif_first_noisy", image({Lif{}, conv, Flatten{}, Dense{4}}), Input::Kind::noisy, 11},
      {"too_large_to_keep", NetworkSpec::spiking(33000, {4}, 4, 128), Input::Kind::noisy, 3},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const int C = c.spec.outputs();
    NetworkOptions options{Engine::cpu, 9, 3};
    Network a(c.spec, options), b(c.spec, options);
    Optimizer oa(a, Sgd{0.1, 0.5}), ob(b, Sgd{0.1, 0.5});
    StepLoop loop(a, oa, Loss::nll);
    std::vector<double> losses;
    for (int k = 0; k < 3; ++k) {
      const Batch batch = make_batch(c.spec, Loss::nll, c.B - k, uint32_t(k + 11));
      const Input input = c.kind == Input::Kind::noisy ? Input::noisy(batch.x, batch.B)
                                                       : Input::repeated(batch.x, batch.B);
      loop.step(input, batch.labels.data());
      ForwardPass pass = b.forward(input);
      const LossValue v = host_loss(Loss::nll, pass.logits(), batch, C);
      losses.push_back(v.value + pass.regularization_loss());
      b.backward(pass, v.grad);
      ob.step();
    }
    const StepReport r = loop.read();
    ASSERT_EQ(r.halt, HaltReason::none) << r.reason(1e6);
    ASSERT_EQ(r.steps.size(), 3u);
    for (size_t k = 0; k < 3; ++k) EXPECT_EQ(r.steps[k].loss, losses[k]) << "step " << k;
    EXPECT_TRUE(all_parameters(a) == all_parameters(b));
    for (const auto& p : a.parameters()) EXPECT_TRUE(a.gradient(p.name) == b.gradient(p.name));
  }
}

// ---- cuda only ---------------------------------------------------------------------------------

// The step captured into a CUDA graph (a shape runs once uncaptured, then is captured, then
// replayed) must leave exactly the parameters and records of the uncaptured step: the same
// kernels on the same data, the per-step values read from device memory. The batch sizes change
// on the way (a new shape is run, captured and replayed too), with SGD and with Adam.
TEST(StepLoopCuda, GraphReplayEqualsTheUncapturedStep) {
  REQUIRE_CUDA();
  const NetworkSpec spec = NetworkSpec::spiking(12, {16, 8}, 4, 5);
  for (const nmsnn::OptimizerSpec& o : {nmsnn::OptimizerSpec(nmsnn::Sgd{0.1, 0.9}),
                                        nmsnn::OptimizerSpec(nmsnn::Adam{1e-2})}) {
    SCOPED_TRACE(nmsnn::describe(o));
    std::vector<float> params[2];
    std::vector<nmsnn::StepRecord> records[2];
    for (int graphs = 0; graphs < 2; ++graphs) {
      Network net(spec, {Engine::cuda, 9, 0});
      nmsnn::Optimizer opt(net, o);
      nmsnn::StepOptions options;
      options.graphs = graphs == 1;
      nmsnn::StepLoop loop(net, opt, Loss::nll, options);
      const int sizes[] = {8, 8, 8, 8, 3, 3, 3, 8};
      for (int k = 0; k < 8; ++k) {
        const Batch batch = make_batch(spec, Loss::nll, sizes[k], uint32_t(k + 1));
        loop.step(Input::noisy(batch.x, batch.B), batch.labels.data());
        if (k == 5) opt.set_lr(opt.lr() / 2);  // a replay must see the new rate
      }
      const nmsnn::StepReport r = loop.read();
      ASSERT_EQ(r.halt, nmsnn::HaltReason::none);
      params[graphs] = all_parameters(net);
      records[graphs] = r.steps;
    }
    EXPECT_TRUE(params[0] == params[1]);
    ASSERT_EQ(records[0].size(), records[1].size());
    for (size_t k = 0; k < records[0].size(); ++k) {
      EXPECT_EQ(records[0][k].loss, records[1][k].loss) << k;
      EXPECT_EQ(records[0][k].correct, records[1][k].correct) << k;
    }
  }
}

// Captured steps on kept rows replay as the uncaptured ones, and as steps on gathered batches.
TEST(StepLoopCuda, GraphReplayOnKeptRows) {
  REQUIRE_CUDA();
  check_kept_rows(Engine::cuda, true);
}

// nmsnn::train on the cuda engine keeps the training set on the device (TrainOptions::
// data_on_device): the same epochs, losses and parameters as with each batch gathered on the
// host and copied up, shuffled, with a last batch smaller, with graphs (which the cases above
// check against no graphs).
TEST(StepLoopCuda, TrainerOnKeptDataEqualsBatchesFromTheHost) {
  REQUIRE_CUDA();
  const NetworkSpec spec = NetworkSpec::spiking(4, {8}, 3, 5);
  nmsnn::Dataset data;
  data.count = 25, data.features = 4, data.classes = 3;
  const Batch b = make_batch(spec, Loss::nll, 25, 9);
  data.x = b.x, data.labels = b.labels;
  {
    const bool graphs = true;
    std::vector<float> params[2];
    nmsnn::TrainResult results[2];
    for (int on_device = 0; on_device < 2; ++on_device) {
      Network net(spec, {Engine::cuda, 3, 1});
      nmsnn::TrainOptions opts;
      opts.epochs = 2, opts.batch_size = 9, opts.seed = 4;
      opts.optimizer = nmsnn::Adam{1e-2};
      opts.cuda_graphs = graphs;
      opts.data_on_device = on_device == 1;
      results[on_device] = nmsnn::train(net, data, opts);
      params[on_device] = all_parameters(net);
    }
    EXPECT_FALSE(results[0].data_on_device);
    EXPECT_TRUE(results[1].data_on_device);
    EXPECT_TRUE(params[0] == params[1]);
    ASSERT_EQ(results[1].epochs.size(), 2u);
    for (size_t e = 0; e < 2; ++e) {
      EXPECT_EQ(results[1].epochs[e].train_loss, results[0].epochs[e].train_loss) << e;
      EXPECT_EQ(results[1].epochs[e].train_accuracy, results[0].epochs[e].train_accuracy) << e;
    }
  }
}

// More steps than the device keeps records for (kernels::kStepRecords: 256, 16 in the CUDA
// emulation) between two reads: the engine moves them to the host on the way, and every step is
// reported, with the losses of the cpu engine (a linear model: no spike can flip, so the engines
// agree to rounding).
TEST(StepLoopCuda, MoreStepsThanTheDeviceKeepsAreAllReported) {
  REQUIRE_CUDA();
  const int steps = nmsnn::kernels::kStepRecords + 44;
  const NetworkSpec spec = NetworkSpec::mlp(4, {}, 1);
  std::vector<double> losses[2];
  for (int e = 0; e < 2; ++e) {
    Network net(spec, {e == 0 ? Engine::cpu : Engine::cuda, 3, 1});
    nmsnn::Optimizer opt(net, nmsnn::Sgd{0.01});
    nmsnn::StepLoop loop(net, opt, Loss::mse);
    const Batch batch = make_batch(spec, Loss::mse, 4, 11);
    std::vector<nmsnn::StepRecord> all;
    for (int k = 0; k < steps; ++k) {
      loop.step(Input::repeated(batch.x, 4), nullptr, batch.targets.data());
      if (e == 0) {  // the cpu engine reads as often as the trainer does there
        const nmsnn::StepReport r = loop.read();
        all.insert(all.end(), r.steps.begin(), r.steps.end());
      }
    }
    const nmsnn::StepReport r = loop.read();
    all.insert(all.end(), r.steps.begin(), r.steps.end());
    ASSERT_EQ(all.size(), size_t(steps));
    for (const auto& s : all) losses[e].push_back(s.loss);
  }
  for (size_t k = 0; k < size_t(steps); ++k)
    EXPECT_NEAR(losses[1][k], losses[0][k], 1e-5 * std::max(1.0, losses[0][k])) << k;
  EXPECT_LT(losses[1].back(), losses[1][0]);  // and it learns
}

// nmsnn::train reads the device's queued steps only now and then (every 256 steps or half a
// second), so one read returns many: each batch's progress must still carry its own time, not
// the read's. Before 2026-12-04 every batch of a read got the read's time, and the rate on its
// progress line grew with the batch's index (3,172 samples/s on the first of an H200 epoch,
// 368,000 on its last, for one steady rate).
TEST(StepLoopCuda, ProgressTimesGrowBatchByBatch) {
  REQUIRE_CUDA();
  nmsnn::Dataset data;
  data.count = 24, data.features = 4, data.classes = 3;
  const Batch b = make_batch(NetworkSpec::mlp(4, {}, 3), Loss::nll, 24, 5);
  data.x = b.x, data.labels = b.labels;
  Network net(NetworkSpec::mlp(4, {}, 3), {Engine::cuda, 3, 1});
  nmsnn::TrainOptions opts;
  opts.epochs = 1, opts.batch_size = 2;
  std::vector<nmsnn::BatchStats> seen;
  double epoch_rate = 0;
  opts.on_batch = [&](const nmsnn::BatchStats& s) { seen.push_back(s); };
  opts.on_epoch = [&](const nmsnn::EpochStats& e) { epoch_rate = e.samples_per_second; };
  nmsnn::train(net, data, opts);
  ASSERT_EQ(seen.size(), 12u);
  for (size_t k = 1; k < seen.size(); ++k)
    EXPECT_GT(seen[k].elapsed_seconds, seen[k - 1].elapsed_seconds) << "batch " << k + 1;
  // The last batch's rate is the epoch's (its time is the last read's, taken just before the
  // epoch's end), and the first batch's is of the same order, not twelve times less.
  EXPECT_NEAR(seen.back().samples_per_second, epoch_rate, 0.05 * epoch_rate);
  EXPECT_GT(seen.front().samples_per_second, epoch_rate / 4);
}

}  // namespace
