// test_network_api.cpp — the public Network API: parameters, input kinds, traces, and clear
// errors on every kind of bad input (never a crash, never silent garbage).
#include <gtest/gtest.h>

#include "throws_with.hpp"

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "nmsnn/nmsnn.hpp"

namespace {

using nmsnn::Input;
using nmsnn::Network;
using nmsnn::NetworkSpec;

// Runs fn and checks that it throws nmsnn::Error whose message contains every piece.
NetworkSpec small(int T = 4) { return NetworkSpec::spiking(6, {5}, 3, T); }

std::vector<float> ramp(size_t n, float scale = 0.1f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * float(i % 7);
  return v;
}

}  // namespace

TEST(NetworkApi, ParametersAreNamedAndShapedLikePyTorch) {
  Network net(small());
  const auto& params = net.parameters();
  ASSERT_EQ(params.size(), 4u);
  EXPECT_EQ(params[0].name, "layers.0.weight");
  EXPECT_EQ(params[0].shape, (std::vector<int>{5, 6}));
  EXPECT_EQ(params[1].name, "layers.0.bias");
  EXPECT_EQ(params[2].shape, (std::vector<int>{3, 5}));
  EXPECT_EQ(params[3].size, 3u);
  std::vector<float> w = ramp(30);
  net.set_parameter("layers.0.weight", w);
  EXPECT_EQ(net.parameter("layers.0.weight"), w);
}

TEST(NetworkApi, InitialisationFollowsXavierAndPyTorchLinearBounds) {
  Network net(NetworkSpec::seed_mnist(), {nmsnn::Engine::cpu, 3, 1});
  const auto w = net.parameter("layers.0.weight");  // [100, 784]
  const auto b = net.parameter("layers.0.bias");
  const double xavier = std::sqrt(6.0 / (784 + 100)), linear = 1.0 / std::sqrt(784.0);
  double sum = 0, sum2 = 0, maxw = 0;
  for (float v : w) sum += v, sum2 += double(v) * v, maxw = std::max(maxw, double(std::abs(v)));
  EXPECT_LE(maxw, xavier);
  EXPECT_GT(maxw, 0.99 * xavier);  // the bound is reached, not a narrower range
  EXPECT_NEAR(sum / w.size(), 0.0, 0.002);
  EXPECT_NEAR(sum2 / w.size(), xavier * xavier / 3, 0.0005);  // variance of U(-a, a)
  for (float v : b) EXPECT_LE(std::abs(v), linear);
  // Same seed, same values; another seed, other values.
  Network same(NetworkSpec::seed_mnist(), {nmsnn::Engine::cpu, 3, 1});
  Network other(NetworkSpec::seed_mnist(), {nmsnn::Engine::cpu, 4, 1});
  EXPECT_EQ(same.parameter("layers.0.weight"), w);
  EXPECT_NE(other.parameter("layers.0.weight"), w);
}

TEST(NetworkApi, NoiseMasksAreReplayableAndAdvancePerPass) {
  Network net(small(6), {nmsnn::Engine::cpu, 9, 2});
  const std::vector<float> x = ramp(2 * 6, 1.0f);
  auto a = net.forward(Input::noisy(x, 2));
  auto b = net.forward(Input::noisy(x, 2));
  EXPECT_EQ(a.noise_pass(), 0u);
  EXPECT_EQ(b.noise_pass(), 1u);
  EXPECT_NE(a.logits(), b.logits());  // fresh masks
  nmsnn::ForwardOptions replay;
  replay.use_noise_pass = true;
  replay.noise_pass = 0;
  EXPECT_EQ(net.forward(Input::noisy(x, 2), replay).logits(), a.logits());
  EXPECT_EQ(net.noise_passes(), 2u);  // a replay does not advance the counter
}

// A noisy input must equal the same masks applied by hand and given as a sequence.
TEST(NetworkApi, NoisyInputEqualsTheMaskedSequence) {
  const int T = 5, B = 3, I = 6;
  Network net(small(T), {nmsnn::Engine::cpu, 11, 1});
  std::vector<float> x = ramp(B * I, 0.5f);
  x[2] = 0.0f;
  std::vector<float> xi(T * B * I);
  for (int t = 0; t < T; ++t)
    for (int b = 0; b < B; ++b)
      for (int i = 0; i < I; ++i)
        xi[(t * B + b) * I + i] = nmsnn::noise_mask({11, 0}, t, b, i) * x[b * I + i];
  const auto noisy = net.forward(Input::noisy(x, B)).logits();
  const auto seq = net.forward(Input::sequence(xi, B)).logits();
  ASSERT_EQ(noisy.size(), seq.size());
  for (size_t k = 0; k < noisy.size(); ++k) EXPECT_NEAR(noisy[k], seq[k], 1e-5f * (1 + std::abs(seq[k])));
}

TEST(NetworkApi, TraceRecordsEveryLayerOverTime) {
  Network net(small(4));
  nmsnn::ForwardOptions rec;
  rec.record = true;
  const std::vector<float> x = ramp(2 * 6, 2.0f);
  auto pass = net.forward(Input::noisy(x, 2), rec);
  ASSERT_EQ(pass.trace().size(), 2u);
  EXPECT_EQ(pass.trace()[0].state.size(), 4u * 2 * 5);
  EXPECT_EQ(pass.trace()[1].spikes.size(), 4u * 2 * 3);
  // The readout (mean over t of the last layer's returned state) equals the recorded trace's mean.
  const auto& out = pass.trace()[1];
  for (int b = 0; b < 2; ++b)
    for (int c = 0; c < 3; ++c) {
      float sum = 0;
      for (int t = 0; t < 4; ++t) sum += out.state[(t * 2 + b) * 3 + c];
      EXPECT_NEAR(pass.logits()[b * 3 + c], sum / 4, 1e-6f);
    }
  // Spikes are never negative; the delayed first step is exactly zero.
  for (float s : pass.trace()[0].spikes) EXPECT_GE(s, 0.0f);
  for (int k = 0; k < 2 * 5; ++k) EXPECT_EQ(pass.trace()[0].state[k], 0.0f);
  EXPECT_GT(pass.saved_bytes(), 0u);
}

TEST(NetworkApi, InferencePassesKeepNothingAndCannotBeDifferentiated) {
  Network net(small());
  nmsnn::ForwardOptions inference;
  inference.training = false;
  const std::vector<float> x = ramp(6);
  auto pass = net.forward(Input::noisy(x, 1), inference);
  EXPECT_EQ(pass.saved_bytes(), 0u);
  expect_throws([&] { net.backward(pass, std::vector<float>(3, 0.1f)); }, {"training = false"});
}

// ---- bad specs -----------------------------------------------------------------------------
TEST(NetworkErrors, BadSpecsNameTheField) {
  auto spec = small();
  spec.time_steps = 0;
  expect_throws([&] { Network n(spec); }, {"time_steps", ">= 1", "0"});
  spec = small();
  spec.readout.begin_eval = 4;
  expect_throws([&] { Network n(spec); }, {"begin_eval", "[0, 4)", "got 4"});
  spec = small();
  spec.readout.begin_eval = -1;
  expect_throws([&] { Network n(spec); }, {"begin_eval"});
  spec = small();
  std::get<nmsnn::SpikingLayer>(spec.layers[0]).size = 0;
  expect_throws([&] { Network n(spec); }, {"layer 0", "size", "> 0"});
  spec = small();
  spec.inputs = 0;
  expect_throws([&] { Network n(spec); }, {"inputs", "> 0"});
  spec = small();
  spec.layers.clear();
  expect_throws([&] { Network n(spec); }, {"at least one layer"});
  spec = small();
  std::get<nmsnn::SpikingLayer>(spec.layers[1]).threshold = 0;
  expect_throws([&] { Network n(spec); }, {"layer 1", "threshold"});
  spec = small();
  std::get<nmsnn::SpikingLayer>(spec.layers[0]).decay = 1.5f;
  expect_throws([&] { Network n(spec); }, {"layer 0", "decay", "[0, 1]"});
  spec = small();
  std::get<nmsnn::SpikingLayer>(spec.layers[0]).penalty = std::nanf("");
  expect_throws([&] { Network n(spec); }, {"layer 0", "penalty"});
  expect_throws([&] { Network n(small(), {nmsnn::Engine::cpu, 0, -2}); }, {"threads"});
}

TEST(NetworkErrors, BadInputsNameTheProblem) {
  Network net(small(4));
  const std::vector<float> x = ramp(2 * 6);
  expect_throws([&] { net.forward(Input::noisy(ramp(11), 2)); },
              {"input x has 11 values", "batch*inputs", "12"});
  expect_throws([&] { net.forward(Input::sequence(x, 2)); },
              {"input sequence has 12 values", "time_steps*batch*inputs", "48"});
  expect_throws([&] { net.forward(Input::noisy(x, 0)); },
                {"forward: batch must be in [1, 16777216], got 0"});
  expect_throws([&] { net.forward(Input::noisy(x, -3)); }, {"batch", "got -3"});
  // Past kMaxBatchSize: refused by its size, before the count or the memory is looked at.
  expect_throws([&] { net.forward(Input::noisy(x, (1 << 24) + 1)); },
                {"forward: batch must be in [1, 16777216], got 16777217"});
  expect_throws([&] { net.forward(Input::noisy(nullptr, 12, 2)); }, {"null"});
  std::vector<float> bad = x;
  bad[7] = std::numeric_limits<float>::quiet_NaN();
  expect_throws([&] { net.forward(Input::noisy(bad, 2)); }, {"x[1, 1]", "nan", "finite"});
  std::vector<float> seq = ramp(4 * 2 * 6);
  seq[4 * 2 * 6 - 1] = std::numeric_limits<float>::infinity();
  expect_throws([&] { net.forward(Input::sequence(seq, 2)); }, {"xi[3, 1, 5]", "inf"});
  // The check runs over chunks of 4096 values: the first bad value is named wherever it falls,
  // at a chunk's last value, in a later chunk with another after it, a negative NaN too.
  std::vector<float> big = ramp(1000 * 6);
  big[4095] = -std::numeric_limits<float>::quiet_NaN();
  expect_throws([&] { net.forward(Input::noisy(big, 1000)); }, {"x[682, 3]", "nan", "finite"});
  big[4095] = 0.5f;
  big[4101] = -std::numeric_limits<float>::infinity();
  big[5999] = std::numeric_limits<float>::quiet_NaN();
  expect_throws([&] { net.forward(Input::noisy(big, 1000)); }, {"x[683, 3]", "-inf", "finite"});
}

TEST(NetworkErrors, BadBackwardAndParameterCallsNameTheProblem) {
  Network net(small(4));
  Network other(small(4));
  const std::vector<float> x = ramp(2 * 6);
  auto pass = net.forward(Input::noisy(x, 2));
  expect_throws([&] { net.backward(pass, std::vector<float>(5, 0.0f)); },
              {"dlogits has 5 values", "6"});
  std::vector<float> nan_grad(6, 0.0f);
  nan_grad[4] = std::nanf("");
  expect_throws([&] { net.backward(pass, nan_grad); }, {"dlogits[1, 1]", "finite"});
  expect_throws([&] { other.backward(pass, std::vector<float>(6, 0.0f)); }, {"another network"});
  std::vector<float> dx;
  expect_throws([&] { net.backward(pass, std::vector<float>(6, 0.0f), &dx); },
              {"only for sequence and repeated inputs"});
  expect_throws([&] { net.backward(nmsnn::ForwardPass(), std::vector<float>(6, 0.0f)); }, {"empty"});
  expect_throws([&] { net.parameter("layers.2.weight"); },
              {"no parameter named 'layers.2.weight'", "layers.0.weight"});
  expect_throws([&] { net.set_parameter("layers.0.bias", {1.0f}); }, {"got 1 values", "has 5"});
  expect_throws([&] { net.set_parameter("layers.1.bias", {0.0f, INFINITY, 0.0f}); },
              {"value 1", "finite"});
}

TEST(NetworkErrors, CudaEngineWithoutAGpuSaysWhy) {
  std::string why;
  if (nmsnn::cuda_available(&why)) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_FALSE(why.empty());
  expect_throws([&] { Network n(small(), {nmsnn::Engine::cuda}); }, {"cannot use the cuda engine"});
}

TEST(NetworkErrors, EnumNamesAreParsedStrictly) {
  EXPECT_EQ(nmsnn::parse_engine("cuda"), nmsnn::Engine::cuda);
  EXPECT_EQ(nmsnn::parse_reset_rule("subtract"), nmsnn::ResetRule::subtract);
  EXPECT_EQ(nmsnn::parse_reduce("mean"), nmsnn::Reduce::mean);
  EXPECT_EQ(nmsnn::parse_loss("bce"), nmsnn::Loss::bce);
  expect_throws([] { nmsnn::parse_engine("gpu"); }, {"'gpu'", "cpu or cuda"});
  expect_throws([] { nmsnn::parse_reset_rule("zero"); }, {"'zero'"});
  expect_throws([] { nmsnn::parse_reduce("max"); }, {"'max'"});
  expect_throws([] { nmsnn::parse_loss("ce"); }, {"'ce'"});
  // A name from the user is quoted and escaped, so a message stays one line.
  expect_throws([] { nmsnn::parse_engine("gpu\n\x1b[2J"); }, {"'gpu\\n\\x1b[2J'"});
  expect_throws([] { nmsnn::parse_activation(std::string(1000, 'r')); }, {"...' (1000 bytes)"});
}

TEST(NetworkErrors, ModelBatchSizesAreRangeChecked) {
  nmsnn::NetworkDescription d;
  d.spec = small();
  nmsnn::Model model = nmsnn::Model::make(nmsnn::TaskKind::classification, d);
  nmsnn::Dataset data;
  data.count = 2;
  data.features = 6;
  data.x = ramp(12);
  EXPECT_EQ(model.predict(data, 1).count, 2);
  expect_throws([&] { model.predict(data, 0); }, {"batch size must be in [1, 16777216], got 0"});
  expect_throws([&] { model.predict(data, 1 << 25); }, {"batch size", "got 33554432"});
}

// ---- noise keyed by the row's contents (ForwardOptions::noise_by_row) ------------------------

namespace {

// Rows `order` of x [*, I] as one batch.
std::vector<float> rows(const std::vector<float>& x, int I, const std::vector<int>& order) {
  std::vector<float> out;
  for (int r : order) out.insert(out.end(), x.begin() + size_t(r) * I, x.begin() + size_t(r + 1) * I);
  return out;
}

nmsnn::ForwardOptions keyed_by_row(bool by_row, bool training = false) {
  nmsnn::ForwardOptions o;
  o.training = training;
  o.use_noise_pass = true;
  o.noise_pass = 7;
  o.noise_by_row = by_row;
  return o;
}

}  // namespace

TEST(NoiseByRow, SameLogitsWhateverTheBatchAndPlace) {
  const int I = 6, C = 3;
  Network net(small(16), {nmsnn::Engine::cpu, 5, 2});
  std::vector<float> x = ramp(5 * I, 0.3f);
  for (size_t k = 0; k < x.size(); ++k) x[k] += 0.05f * float(k % 5);  // distinct rows
  const auto all = net.forward(Input::noisy(rows(x, I, {0, 1, 2, 3, 4}), 5), keyed_by_row(true));
  const auto shuffled = net.forward(Input::noisy(rows(x, I, {3, 0, 4, 2, 1}), 5), keyed_by_row(true));
  const auto one = net.forward(Input::noisy(rows(x, I, {2}), 1), keyed_by_row(true));
  const int where[5] = {1, 4, 3, 0, 2};  // row r's place in the shuffled batch
  for (int r = 0; r < 5; ++r)
    for (int c = 0; c < C; ++c)
      EXPECT_EQ(all.logits()[r * C + c], shuffled.logits()[where[r] * C + c]) << "row " << r;
  for (int c = 0; c < C; ++c) EXPECT_EQ(all.logits()[2 * C + c], one.logits()[c]);

  // Keyed by place instead, the same row moved gets other masks and so other logits.
  const auto by_place = net.forward(Input::noisy(rows(x, I, {0, 1, 2, 3, 4}), 5), keyed_by_row(false));
  const auto moved = net.forward(Input::noisy(rows(x, I, {3, 0, 4, 2, 1}), 5), keyed_by_row(false));
  double differ = 0;
  for (int r = 0; r < 5; ++r)
    for (int c = 0; c < C; ++c)
      differ += std::abs(by_place.logits()[r * C + c] - moved.logits()[where[r] * C + c]);
  EXPECT_GT(differ, 1e-3);
}

TEST(NoiseByRow, BackwardUsesTheSameMasksAsForward) {
  // A training pass keyed by row, its rows in two orders: the same loss terms, so the same
  // parameter gradients up to the order of the sum over rows.
  const int I = 6;
  std::vector<float> x = ramp(4 * I, 0.4f);
  for (size_t k = 0; k < x.size(); ++k) x[k] += 0.03f * float(k % 4);
  auto gradients = [&](const std::vector<int>& order, const std::vector<int>& labels) {
    Network net(small(16), {nmsnn::Engine::cpu, 5, 1});
    const std::vector<float> batch = rows(x, I, order);  // stays unchanged until backward
    const auto pass = net.forward(Input::noisy(batch, 4), keyed_by_row(true, true));
    const auto loss = nmsnn::nll_log_softmax(pass.logits(), 4, 3, labels);
    net.backward(pass, loss.grad);
    return net.gradient("layers.0.weight");
  };
  const auto a = gradients({0, 1, 2, 3}, {0, 1, 2, 0});
  const auto b = gradients({2, 0, 3, 1}, {2, 0, 0, 1});  // the same rows and labels, moved
  ASSERT_EQ(a.size(), b.size());
  double norm = 0;
  for (float v : a) norm = std::max(norm, double(std::abs(v)));
  ASSERT_GT(norm, 0);
  for (size_t k = 0; k < a.size(); ++k) EXPECT_NEAR(a[k], b[k], 1e-6 * norm) << "weight " << k;
}
