// test_training.cpp — losses, optimisers and the trainer: hand-computed PyTorch formulas,
// bit-identical reproducibility from a seed, and learning on real MNIST data.
#include <gtest/gtest.h>

#include "throws_with.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "nmsnn/nmsnn.hpp"
#include "training_fixtures.hpp"

namespace {

}  // namespace

// ---- losses --------------------------------------------------------------------------------
TEST(Losses, NllOfLogSoftmaxByHand) {
  // Row 0: logits (0, 0) label 0 -> log 2; grad (0.5 - 1, 0.5) / 2.
  // Row 1: logits (ln 3, 0) label 1 -> p = (3/4, 1/4), loss ln 4; grad (3/4, 1/4 - 1) / 2.
  const auto l = nmsnn::nll_log_softmax({0.0f, 0.0f, float(std::log(3.0)), 0.0f}, 2, 2, {0, 1});
  EXPECT_NEAR(l.value, (std::log(2.0) + std::log(4.0)) / 2, 1e-7);
  EXPECT_NEAR(l.grad[0], -0.25f, 1e-7f);
  EXPECT_NEAR(l.grad[1], 0.25f, 1e-7f);
  EXPECT_NEAR(l.grad[2], 0.375f, 1e-7f);
  EXPECT_NEAR(l.grad[3], -0.375f, 1e-7f);
  // Large logits do not overflow (log-sum-exp from the max).
  const auto big = nmsnn::nll_log_softmax({1000.0f, 0.0f}, 1, 2, {0});
  EXPECT_NEAR(big.value, 0.0, 1e-12);
  expect_throws([] { nmsnn::nll_log_softmax({0.0f, 0.0f}, 1, 2, {2}); }, {"label[0] = 2", "[0, 2)"});
  expect_throws([] { nmsnn::nll_log_softmax({0.0f}, 1, 2, {0}); }, {"logits has 1 values"});
}

TEST(Losses, BceWithLogitsByHand) {
  // z = 0, y = 1: log 2, grad sigmoid(0) - 1 = -0.5; z = 2, y = 0: 2 + log(1 + e^-2).
  const auto l = nmsnn::bce_with_logits({0.0f, 2.0f}, {1.0f, 0.0f});
  EXPECT_NEAR(l.value, (std::log(2.0) + 2 + std::log1p(std::exp(-2.0))) / 2, 1e-7);
  EXPECT_NEAR(l.grad[0], -0.25f, 1e-7f);
  EXPECT_NEAR(l.grad[1], float(1 / (1 + std::exp(-2.0)) / 2), 1e-7f);
  EXPECT_NEAR(nmsnn::bce_with_logits({-100.0f}, {0.0f}).value, 0.0, 1e-12);  // stable
  expect_throws([] { nmsnn::bce_with_logits({0.0f}, {2.0f}); }, {"target[0] = 2", "[0, 1]"});
}

TEST(Losses, MseByHand) {
  const auto l = nmsnn::mse({1.0f, 3.0f}, {0.0f, 0.0f});
  EXPECT_DOUBLE_EQ(l.value, 5.0);  // (1 + 9) / 2
  EXPECT_EQ(l.grad, (std::vector<float>{1.0f, 3.0f}));  // 2 (p - y) / N
  expect_throws([] { nmsnn::mse({1.0f}, {0.0f, 1.0f}); }, {"1 predictions but 2 targets"});
}

// ---- optimiser update rules ----------------------------------------------------------------
TEST(Optimizers, SgdMomentumMatchesTorchByHand) {
  // torch.optim.SGD(lr=0.1, momentum=0.5, weight_decay=0.01), p = 1, grads 2 then 4:
  //   step 1: d = 2 + 0.01*1 = 2.01; buf = 2.01; p = 1 - 0.201 = 0.799
  //   step 2: d = 4 + 0.00799 = 4.00799; buf = 0.5*2.01 + 4.00799 = 5.01299; p = 0.799 - 0.501299
  nmsnn::Sgd sgd{0.1, 0.5, 0.0, 0.01, false};
  float p = 1, buf = 0;
  float g = 2;
  nmsnn::sgd_update(sgd, &p, &g, &buf, 1, 1);
  EXPECT_FLOAT_EQ(buf, 2.01f);
  EXPECT_FLOAT_EQ(p, 0.799f);
  g = 4;
  nmsnn::sgd_update(sgd, &p, &g, &buf, 1, 2);
  EXPECT_FLOAT_EQ(buf, 5.01299f);
  EXPECT_FLOAT_EQ(p, 0.297701f);
  // Nesterov: d = g + momentum * buf. Dampening: buf = m*buf + (1-dampening)*d.
  nmsnn::Sgd nes{0.1, 0.5, 0.0, 0.0, true};
  p = 1, buf = 0, g = 2;
  nmsnn::sgd_update(nes, &p, &g, &buf, 1, 1);  // buf = 2, d = 2 + 1 = 3
  EXPECT_FLOAT_EQ(p, 0.7f);
  nmsnn::Sgd damp{0.1, 0.5, 0.25, 0.0, false};
  p = 1, buf = 0, g = 2;
  nmsnn::sgd_update(damp, &p, &g, &buf, 1, 1);  // first step: buf = d (no dampening)
  nmsnn::sgd_update(damp, &p, &g, &buf, 1, 2);  // buf = 1 + 0.75*2 = 2.5
  EXPECT_FLOAT_EQ(buf, 2.5f);
  EXPECT_FLOAT_EQ(p, 1 - 0.2f - 0.25f);
}

TEST(Optimizers, AdamMatchesTorchByHand) {
  // torch.optim.Adam(lr=0.1, betas=(0.9, 0.999), eps=1e-8), p = 1, grads 2 then -1:
  //   step 1: m = 0.2, v = 0.004; m/(1-0.9) = 2, sqrt(v/(1-0.999)) = 2 -> p = 1 - 0.1 * 2/(2+eps)
  //   step 2: m = 0.18 - 0.1 = 0.08, v = 0.003996 + 0.001 = 0.004996
  //           p -= 0.1/(1-0.81) * 0.08 / (sqrt(0.004996)/sqrt(1-0.998001) + 1e-8)
  nmsnn::Adam adam{0.1, 0.9, 0.999, 1e-8, 0.0};
  float p = 1, m = 0, v = 0, g = 2;
  nmsnn::adam_update(adam, &p, &g, &m, &v, 1, 1);
  EXPECT_FLOAT_EQ(m, 0.2f);
  EXPECT_FLOAT_EQ(v, 0.004f);
  EXPECT_FLOAT_EQ(p, 0.9f);
  g = -1;
  nmsnn::adam_update(adam, &p, &g, &m, &v, 1, 2);
  const double step2 = 0.1 / 0.19 * 0.08 / (std::sqrt(0.004996) / std::sqrt(1 - 0.998001) + 1e-8);
  EXPECT_NEAR(p, 0.9 - step2, 2e-7);
  // Weight decay adds wd * p to the gradient before the moments (torch's L2 form).
  nmsnn::Adam wd{0.1, 0.9, 0.999, 1e-8, 0.5};
  p = 2, m = 0, v = 0, g = 0;
  nmsnn::adam_update(wd, &p, &g, &m, &v, 1, 1);
  EXPECT_FLOAT_EQ(m, 0.1f);  // (1 - 0.9) * (0 + 0.5 * 2)
}

TEST(Optimizers, StepAppliesTheLastGradientToEveryParameter) {
  nmsnn::Network net(nmsnn::NetworkSpec::spiking(4, {3}, 2, 5), {nmsnn::Engine::cpu, 5, 1});
  const std::vector<float> x = {1, 0.5f, 0, 2, 0.2f, 1, 1, 0};
  auto pass = net.forward(nmsnn::Input::noisy(x, 2));
  auto loss = nmsnn::nll_log_softmax(pass.logits(), 2, 2, {0, 1});
  net.backward(pass, loss.grad);
  std::vector<std::vector<float>> before, grads;
  for (const auto& p : net.parameters()) {
    before.push_back(net.parameter(p.name));
    grads.push_back(net.gradient(p.name));
  }
  nmsnn::Optimizer opt(net, nmsnn::Sgd{0.5});
  opt.step();
  bool moved = false;
  for (size_t k = 0; k < before.size(); ++k) {
    const auto after = net.parameter(net.parameters()[k].name);
    for (size_t i = 0; i < after.size(); ++i) {
      EXPECT_FLOAT_EQ(after[i], before[k][i] - 0.5f * grads[k][i]);
      moved |= grads[k][i] != 0;
    }
  }
  EXPECT_TRUE(moved);
  expect_throws([&] { opt.set_lr(-1); }, {"learning rate", ">= 0"});
  expect_throws([&] { nmsnn::Optimizer bad(net, nmsnn::Adam{0.1, 1.0}); }, {"beta1"});
}

TEST(Trainer, LrSchedules) {
  nmsnn::LrSchedule list{{0.1f, 0.05f, 0.01f}};
  EXPECT_FLOAT_EQ(list.lr_at(0, 9), 0.1f);
  EXPECT_FLOAT_EQ(list.lr_at(2, 9), 0.01f);
  EXPECT_FLOAT_EQ(list.lr_at(7, 9), 0.01f);  // the last repeats
  nmsnn::LrSchedule step{{}, 2, 0.5f};
  EXPECT_FLOAT_EQ(step.lr_at(0, 0.2f), 0.2f);
  EXPECT_FLOAT_EQ(step.lr_at(1, 0.2f), 0.2f);
  EXPECT_FLOAT_EQ(step.lr_at(2, 0.2f), 0.1f);
  EXPECT_FLOAT_EQ(step.lr_at(5, 0.2f), 0.05f);
}

// ---- training on MNIST ---------------------------------------------------------------------
namespace {
const nmsnn::Dataset& mnist_train() {
  static const nmsnn::Dataset d =
      nmsnn::load_mnist(NMSNN_SOURCE_DIR "/data/mnist", true, nmsnn::PixelScale::unit, 3000);
  return d;
}

std::vector<float> train_and_get_weights(uint64_t seed, int threads, int samples) {
  const nmsnn::Dataset data = mnist_train().slice(0, samples);
  nmsnn::Network net(nmsnn::NetworkSpec::spiking(784, {24}, 10, 16), {nmsnn::Engine::cpu, seed, threads});
  nmsnn::TrainOptions opts;
  opts.epochs = 2;
  opts.batch_size = 100;  // 78,400 values a batch: gathered on another thread (trainer.cpp)
  opts.seed = seed;
  nmsnn::train(net, data, opts);
  return all_parameters(net);
}
}  // namespace

TEST(Trainer, OneSeedGivesBitIdenticalWeightsWhateverTheThreadCount) {
  const auto a = train_and_get_weights(42, 1, 400);
  const auto b = train_and_get_weights(42, 1, 400);
  const auto c = train_and_get_weights(42, 3, 400);
  const auto d = train_and_get_weights(43, 1, 400);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_TRUE(a == b) << "same seed, same thread count: weights differ";
  EXPECT_TRUE(a == c) << "same seed, 1 vs 3 threads: weights differ";
  size_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += a[i] != d[i];
  EXPECT_GT(differ, a.size() / 2) << "another seed should change most weights";
}

// The trainer's steps are StepLoop's steps on its batches in order, each batch gathered on
// another thread while the step before it is queued (trainer.cpp): without shuffling, training
// must give exactly the parameters of StepLoop fed the dataset's slices one after another.
TEST(Trainer, StepsThroughItsBatchesInOrder) {
  const nmsnn::Dataset data = mnist_train().slice(0, 300);
  const nmsnn::NetworkSpec spec = nmsnn::NetworkSpec::spiking(784, {16}, 10, 8);
  nmsnn::Network trained(spec, {nmsnn::Engine::cpu, 5, 1});
  nmsnn::TrainOptions opts;
  opts.epochs = 1;
  opts.batch_size = 100;  // 78,400 values a batch: gathered on another thread
  opts.shuffle = false;
  opts.optimizer = nmsnn::Sgd{0.1f, 0.5f};
  nmsnn::train(trained, data, opts);

  nmsnn::Network stepped(spec, {nmsnn::Engine::cpu, 5, 1});
  nmsnn::Optimizer optimizer(stepped, nmsnn::Sgd{0.1f, 0.5f});
  nmsnn::StepLoop loop(stepped, optimizer, nmsnn::Loss::nll);
  for (int k = 0; k < 3; ++k) {
    const std::vector<float> x(data.x.begin() + k * 100 * 784, data.x.begin() + (k + 1) * 100 * 784);
    loop.step(nmsnn::Input::noisy(x, 100), data.labels.data() + k * 100);
    loop.read();
  }
  EXPECT_TRUE(all_parameters(trained) == all_parameters(stepped));
}

TEST(Trainer, LearnsMnistDigits) {
  // 2,500 images, 1 epoch of the default recipe on a smaller network: far above chance (0.1).
  const nmsnn::Dataset train = mnist_train().slice(0, 2500);
  const nmsnn::Dataset test = mnist_train().slice(2500, 500);
  nmsnn::Network net(nmsnn::NetworkSpec::spiking(784, {64}, 10, 32), {nmsnn::Engine::cpu, 1, 0});
  nmsnn::TrainOptions opts;
  opts.epochs = 2;
  int epochs_seen = 0;
  opts.on_epoch = [&](const nmsnn::EpochStats& e) {
    ++epochs_seen;
    EXPECT_TRUE(e.evaluated);
    EXPECT_GT(e.samples_per_second, 0);
  };
  const nmsnn::TrainResult r = nmsnn::train(net, train, opts, &test);
  EXPECT_EQ(epochs_seen, 2);
  EXPECT_LT(r.epochs[1].train_loss, r.epochs[0].train_loss);
  EXPECT_GT(r.epochs.back().eval.accuracy, 0.8) << "test accuracy after 2 epochs on 2,500 images";
  const nmsnn::Evaluation ev = nmsnn::evaluate(net, test, nmsnn::Loss::nll, 128);
  EXPECT_EQ(ev.count, 500);
  EXPECT_EQ(ev.predictions.size(), 500u);
  EXPECT_GT(ev.accuracy, 0.8);
}

TEST(Trainer, DataThatDoesNotFitTheNetworkIsRejected) {
  nmsnn::Network net(nmsnn::NetworkSpec::spiking(10, {4}, 3, 4));
  nmsnn::TrainOptions opts;
  expect_throws([&] { nmsnn::train(net, mnist_train().slice(0, 10), opts); },
              {"784 features", "expects 10 inputs"});
  nmsnn::Dataset d;
  d.name = "tiny";
  d.count = 2;
  d.features = 10;
  d.x.assign(20, 0.5f);
  d.labels = {0, 4};
  d.classes = 5;
  expect_throws([&] { nmsnn::train(net, d, opts); }, {"5 classes", "only 3 outputs"});
  d.labels = {0, 7};
  d.classes = 3;
  expect_throws([&] { nmsnn::train(net, d, opts); }, {"label", "7"});
  opts.epochs = 0;
  d.labels = {0, 1};
  expect_throws([&] { nmsnn::train(net, d, opts); }, {"epochs must be >= 1"});
  opts.epochs = 1;
  opts.loss = nmsnn::Loss::mse;
  expect_throws([&] { nmsnn::train(net, d, opts); }, {"no regression targets"});
}

// ---- divergence --------------------------------------------------------------------------

TEST(Divergence, AHugeLearningRateStopsTrainingAndKeepsTheLastGoodParameters) {
  const nmsnn::Dataset data = blobs(96, 6, 1);
  const nmsnn::NetworkSpec spec = nmsnn::NetworkSpec::spiking(6, {8}, 3, 6);
  nmsnn::Network net(spec, {nmsnn::Engine::cpu, 3, 1});
  const std::vector<float> initial = all_parameters(net);
  nmsnn::TrainOptions opts;
  opts.epochs = 3;
  opts.batch_size = 16;
  opts.optimizer = nmsnn::Adam{1e30};
  int batches_seen = 0;
  opts.on_batch = [&](const nmsnn::BatchStats&) { ++batches_seen; };
  try {
    nmsnn::train(net, data, opts);
    FAIL() << "training with lr 1e30 did not stop";
  } catch (const nmsnn::TrainingDiverged& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.epoch, 1);
    EXPECT_EQ(e.batch, 2) << msg;  // the first update already ruins the network
    EXPECT_EQ(e.lr, 1e30);
    EXPECT_NE(msg.find("training diverged at epoch 1, batch 2: "), std::string::npos) << msg;
    EXPECT_NE(msg.find("lower the learning rate (1e+30)"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_EQ(msg.find("-nan"), std::string::npos) << msg;
  }
  EXPECT_EQ(batches_seen, 1);
  // Batch 1's loss was good with the initial parameters; batch 2's was not with the updated ones.
  EXPECT_TRUE(all_parameters(net) == initial);
}

namespace {
// y = sum of 4 features in [0.5, 1.5), for a linear model (an mlp without hidden layers).
nmsnn::Dataset line() {
  nmsnn::Dataset d;
  d.name = "line";
  d.count = 64;
  d.features = 4;
  d.target_size = 1;
  for (int i = 0; i < d.count; ++i) {
    float sum = 0;
    for (int j = 0; j < 4; ++j) {
      const float v = float((i * 7 + j * 3) % 11) / 11.0f + 0.5f;
      d.x.push_back(v);
      sum += v;
    }
    d.targets.push_back(sum);
  }
  return d;
}

nmsnn::TrainOptions sgd_regression(double lr) {
  nmsnn::TrainOptions opts;
  opts.epochs = 20;
  opts.batch_size = 64;
  opts.loss = nmsnn::Loss::mse;
  opts.encoding = nmsnn::Input::Kind::repeated;
  opts.optimizer = nmsnn::Sgd{lr};
  return opts;
}
}  // namespace

TEST(Divergence, AnExplodingFiniteLossStopsTraining) {
  // Plain SGD on a linear regression with a step far past 2/curvature: each update multiplies
  // the error by about lr * |x|^2, so the loss grows by orders of magnitude while still finite.
  const nmsnn::Dataset d = line();
  nmsnn::Network net(nmsnn::NetworkSpec::mlp(4, {}, 1), {nmsnn::Engine::cpu, 1, 1});
  nmsnn::TrainOptions opts = sgd_regression(30.0);
  std::vector<double> losses;
  opts.on_batch = [&](const nmsnn::BatchStats& b) { losses.push_back(b.loss); };
  try {
    nmsnn::train(net, d, opts);
    FAIL() << "the loss grew without bound and training went on";
  } catch (const nmsnn::TrainingDiverged& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("the loss grew to "), std::string::npos) << msg;
    EXPECT_NE(msg.find("more than 1e+06 times its"), std::string::npos) << msg;
    EXPECT_NE(msg.find("lower the learning rate (30)"), std::string::npos) << msg;
    ASSERT_GE(losses.size(), 2u);
    EXPECT_EQ(e.epoch, int(losses.size()) + 1);  // one batch per epoch: the next one
    EXPECT_EQ(e.batch, 1);
    for (double l : losses) EXPECT_LE(l, 1e6 * std::max(losses[0], 1.0));
  }
  for (float v : all_parameters(net)) EXPECT_TRUE(std::isfinite(v));
}

TEST(Divergence, AnUpdateThatOverflowsAParameterStopsTraining) {
  // lr 1e38 times a gradient of several units is beyond the float range: the first update makes
  // the weights infinite, which is caught before another batch runs.
  nmsnn::Network net(nmsnn::NetworkSpec::mlp(4, {}, 1), {nmsnn::Engine::cpu, 1, 1});
  const std::vector<float> initial = all_parameters(net);
  nmsnn::TrainOptions opts = sgd_regression(1e38);
  int batches = 0;
  opts.on_batch = [&](const nmsnn::BatchStats&) { ++batches; };
  try {
    nmsnn::train(net, line(), opts);
    FAIL() << "training went on with infinite weights";
  } catch (const nmsnn::TrainingDiverged& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.epoch, 1);
    EXPECT_EQ(e.batch, 1);
    // The prediction starts below every target, so the gradient is negative: the weight
    // jumps to +inf.
    EXPECT_NE(msg.find(": the update made a parameter not finite (layers.0.weight[0] is inf); "
                       "lower the learning rate (1e+38)"),
              std::string::npos) << msg;
  }
  EXPECT_EQ(batches, 0);
  EXPECT_TRUE(all_parameters(net) == initial);
}

TEST(Divergence, AHealthyRunIsNotStopped) {
  const nmsnn::Dataset data = blobs(96, 6, 2);
  nmsnn::Network net(nmsnn::NetworkSpec::spiking(6, {8}, 3, 6), {nmsnn::Engine::cpu, 3, 1});
  nmsnn::TrainOptions opts;
  opts.epochs = 4;
  opts.batch_size = 16;
  opts.optimizer = nmsnn::Adam{1e-2};
  const nmsnn::TrainResult r = nmsnn::train(net, data, opts);
  EXPECT_EQ(r.epochs.size(), 4u);
  EXPECT_LT(r.epochs.back().train_loss, r.epochs.front().train_loss);
}

// Finite parameters whose outputs overflow on the data: evaluation says so in plain words, not
// through the loss function's input check.
TEST(Divergence, EvaluationWithOutputsThatOverflowIsAClearError) {
  const nmsnn::Dataset data = blobs(32, 6, 1);
  nmsnn::Network net(nmsnn::NetworkSpec::mlp(6, {8}, 3), {nmsnn::Engine::cpu, 3, 1});
  const std::string w = net.parameters()[0].name;
  net.set_parameter(w, std::vector<float>(net.parameters()[0].size, 3e38f));
  try {
    nmsnn::evaluate(net, data, nmsnn::Loss::nll, 16, nmsnn::Input::Kind::repeated);
    FAIL() << "evaluation with overflowing outputs did not fail";
  } catch (const nmsnn::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("evaluation on 'blobs': the network's output for sample 0 is not finite"),
              std::string::npos) << msg;
    EXPECT_EQ(msg.find("nll_log_softmax"), std::string::npos) << msg;
  }
}
