// test_cuda_layers.cpp — the cuda engine against the cpu engine for every layer kind: dense,
// activation, SpikingActivation, Lowpass and TemporalAvgPool, mixed with the seed's spiking
// layers, and the convolutional ones (conv2d, lif, avg/max_pool2d, flatten) on image inputs,
// under all three input kinds (noise-encoded, given sequence, repeated), in training and
// inference passes. Max pooling's choice of a window's first largest entry is a discontinuity
// too: a sample with two nonzero entries of a window within the margin below is left out.
//
// Compared, through the public Network API: logits, every parameter's gradient, dL/dinput
// (sequence and repeated inputs), recorded traces and firing rates, and the rate-regularization
// loss. Tolerance: max |cpu - cuda| / max |cpu| <= 1e-5 per tensor (FP32 on both engines; they
// differ in summation order and in a few ulps of tanh/exp).
//
// Spikes are discontinuous: a spiking layer's state within rounding of its threshold, or a
// SpikingActivation voltage within rounding of an integer, may fire on one engine and not on the
// other. As in test_cuda_engine.cpp, a recorded pass of the cpu engine gives each sample's margin
// (the smallest distance to such a boundary) and samples with a margin under 1e-4 are left out:
// not compared, and dL/dlogits = 0 for them. Regularized layers couple every sample through the
// loss, so those cases need every sample safe.
//
// The compact saved state (NetworkOptions::saved = compact, kernels/lif_saved.cuh) runs every
// case again (LayerStacks.CompactMatchesCpu) plus stacks of spiking layers at awkward T and H
// (CompactSpiking): forward is unchanged, so logits, traces and rates keep the 1e-5 above, and
// a cuda pass with the compact state gives the same bits as one with the FP32 state. Gradients
// differ from the FP32 state only where a backward reads the spikes a spiking layer returned
// (the weight gradient of the layer above, an activation or Lowpass above it, and what flows
// down from those), as the spikes were rounded to 9 significant bits: |error| <= 2^-9 |s| per
// spike, so a weight gradient sum_tb du s is off by at most 2^-9 sum_tb |du s|. The tolerance,
// 2^-8 of max|ref| per tensor, leaves a factor 2 for cancellation within those sums (measured
// worst over these cases: 1.1e-3). The gates are exact, so bias gradients, dL/dinput and the
// first layer's weight gradient of a stack of spiking and dense layers match the FP32 state's
// bit for bit.
//
// Every test skips with "no CUDA device: ..." without a GPU, except LayerStacks.HarnessOnCpu,
// which runs the same comparisons between two CPU networks so the harness is checked in CI.
// Without a GPU, scripts/test_cuda_emulated.sh (ctest: cuda_emulation) runs the CUDA tests here
// against an emulation of the CUDA runtime on the CPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine_compare.hpp"
#include "nmsnn/error.hpp"
#include "nmsnn/model.hpp"
#include "nmsnn/network.hpp"
#include "require_cuda.hpp"

namespace {

using engine_compare::difference;
using engine_compare::max_abs;
using engine_compare::safe_rows;
using nmsnn::ActivationKind;
using nmsnn::Dense;
using nmsnn::Engine;
using nmsnn::Input;
using nmsnn::Lowpass;
using nmsnn::Network;
using nmsnn::NetworkSpec;
using nmsnn::SpikingActivation;
using nmsnn::SpikingLayer;
using nmsnn::TemporalAvgPool;

constexpr double kMargin = 1e-4;
constexpr double kTolerance = 1e-5;
constexpr double kCompactTolerance = 1.0 / 256;  // gradients with the compact saved state
constexpr uint64_t kNetSeed = 9;

struct StackCase {
  std::string name;
  NetworkSpec spec;
  Input::Kind kind = Input::Kind::repeated;
  int batch = 5;
  bool training = true;   // the compared pass; training passes also compare gradients
  bool all_safe = false;  // every sample must be safe (regularized layers)
  // A SpikingActivation must fire several spikes in one step somewhere (+2), or negative ones (-1).
  int extreme_spikes = 0;
};
void PrintTo(const StackCase& c, std::ostream* os) { *os << c.name; }

SpikingActivation spiking_activation(ActivationKind f, float dt, bool aware = true) {
  SpikingActivation a;
  a.activation = f;
  a.dt = dt;
  a.spiking_aware_training = aware;
  return a;
}

NetworkSpec stack(int inputs, int steps, std::vector<nmsnn::LayerSpec> layers, int begin = 0,
                  nmsnn::Reduce reduce = nmsnn::Reduce::mean, std::vector<int> input_shape = {}) {
  NetworkSpec s;
  s.inputs = inputs;
  s.input_shape = std::move(input_shape);
  s.time_steps = steps;
  s.layers = std::move(layers);
  s.readout.begin_eval = begin;
  s.readout.reduce = reduce;
  s.validate();
  return s;
}

std::vector<StackCase> stack_cases() {
  using K = Input::Kind;
  std::vector<StackCase> out;
  SpikingLayer lif;
  lif.size = 19;
  SpikingLayer lif_nodelay = lif;
  lif_nodelay.delay = false;
  lif_nodelay.reset = nmsnn::ResetRule::subtract;
  SpikingLayer after_pool = lif_nodelay;  // one step of small pooled rates: a low threshold
  after_pool.threshold = 0.25f;
  Lowpass lowpass;
  lowpass.tau = 0.01f;
  lowpass.dt = 0.002f;
  Lowpass last_step = lowpass;
  last_step.return_sequences = false;
  Lowpass bypass = lowpass;
  bypass.apply_during_training = false;
  SpikingActivation tanh_last = spiking_activation(ActivationKind::tanh, 0.05f);
  tanh_last.return_sequences = false;
  tanh_last.random_initial_voltage = false;
  SpikingActivation regularized = spiking_activation(ActivationKind::relu, 0.1f);
  regularized.rate_target = 20.0f;
  regularized.rate_weight = 1e-3f;

  // The toolkit's models: MLP, and spiking layers read out by a dense layer (binary, regression).
  out.push_back({"mlp_noisy", NetworkSpec::mlp(13, {33}, 3), K::noisy, 17});
  out.push_back({"mlp_repeated", NetworkSpec::mlp(13, {33, 9}, 1), K::repeated, 17});
  out.push_back({"mlp_inference", NetworkSpec::mlp(13, {33}, 3), K::repeated, 17, false});
  out.push_back({"spiking_then_dense_noisy", stack(21, 12, {lif, Dense{1}}), K::noisy, 33});
  out.push_back(
      {"spiking_then_dense_repeated", stack(21, 12, {lif_nodelay, Dense{2}}, 3), K::repeated, 9});
  out.push_back({"dense_then_spiking_sequence", stack(21, 7, {Dense{11}, lif}), K::sequence, 9});
  out.push_back(
      {"spiking_pool_spiking", stack(21, 9, {lif, TemporalAvgPool{}, after_pool}), K::noisy, 9});
  // The Fashion-MNIST tutorial's models (repeated images, dense + SpikingActivation + pool).
  const auto tutorial = [&](SpikingActivation a,
                            std::vector<nmsnn::LayerSpec> tail = {TemporalAvgPool{}}) {
    std::vector<nmsnn::LayerSpec> layers = {Dense{24}, a};
    layers.insert(layers.end(), tail.begin(), tail.end());
    layers.push_back(Dense{10});
    return stack(30, 10, layers);
  };
  out.push_back(
      {"tutorial_aware", tutorial(spiking_activation(ActivationKind::relu, 0.1f)), K::repeated, 7});
  out.push_back({"tutorial_swap_training",
                 tutorial(spiking_activation(ActivationKind::relu, 0.01f, false)), K::repeated, 7});
  out.push_back({"tutorial_swap_inference",
                 tutorial(spiking_activation(ActivationKind::relu, 0.1f, false)), K::repeated, 7,
                 false});
  out.push_back({"tutorial_regularized", tutorial(regularized), K::repeated, 4, true, true});
  out.push_back(
      {"tutorial_regularized_inference", tutorial(regularized), K::repeated, 4, false, true});
  out.push_back({"tutorial_lowpass",
                 tutorial(spiking_activation(ActivationKind::relu, 0.1f), {last_step}), K::repeated,
                 7});
  out.push_back(
      {"tutorial_lowpass_sequences",
       tutorial(spiking_activation(ActivationKind::sigmoid, 0.05f), {lowpass, TemporalAvgPool{}}),
       K::repeated, 7});
  out.push_back(
      {"tutorial_lowpass_bypassed",
       tutorial(spiking_activation(ActivationKind::relu, 0.1f), {bypass, TemporalAvgPool{}}),
       K::repeated, 7});
  out.push_back(
      {"tutorial_lowpass_bypassed_inference",
       tutorial(spiking_activation(ActivationKind::relu, 0.1f), {bypass, TemporalAvgPool{}}),
       K::repeated, 7, false});
  // Layers without weights straight on the input, and tanh spikes (negative counts).
  out.push_back({"activation_first_sequence",
                 stack(6, 5, {nmsnn::Activation{ActivationKind::tanh}, Dense{4}}, 1), K::sequence,
                 5});
  out.push_back({"spiking_activation_first_noisy",
                 stack(6, 8, {spiking_activation(ActivationKind::relu, 0.2f), Dense{4}}), K::noisy,
                 5});
  out.push_back({"lowpass_first_repeated", stack(6, 8, {lowpass, Dense{3}}, 2, nmsnn::Reduce::sum),
                 K::repeated, 5});
  out.push_back(
      {"pool_first_sequence", stack(6, 8, {TemporalAvgPool{}, Dense{3}}), K::sequence, 5});
  // dt = 1: relu of a large input fires several spikes in one step, tanh of a negative one fires
  // negative spikes.
  out.push_back({"several_spikes_per_step",
                 stack(9, 6, {Dense{12}, spiking_activation(ActivationKind::relu, 1.0f), Dense{3}}),
                 K::sequence, 6, true, false, 2});
  out.push_back({"negative_spikes",
                 stack(9, 6, {Dense{12}, spiking_activation(ActivationKind::tanh, 1.0f), Dense{3}}),
                 K::repeated, 6, true, false, -1});
  out.push_back(
      {"tanh_spikes_last_step", stack(9, 16, {Dense{12}, tanh_last, Dense{3}}), K::sequence, 6});
  out.push_back({"lowpass_last", stack(9, 6, {Dense{5}, lowpass}, 2), K::sequence, 6});

  // Convolutional stacks on image inputs [C, H, W] (kernels/conv2d.cuh, pool2d.cuh).
  const auto conv = [](int channels, std::array<int, 2> kernel, std::array<int, 2> stride = {1, 1},
                       std::array<int, 2> padding = {0, 0}) {
    nmsnn::Conv2d c;
    c.out_channels = channels;
    c.kernel = kernel;
    c.stride = stride;
    c.padding = padding;
    return c;
  };
  nmsnn::Lif neurons;
  neurons.threshold = 0.5f;
  nmsnn::Lif subtract = neurons;
  subtract.reset = nmsnn::ResetRule::subtract;
  subtract.delay = false;
  nmsnn::MaxPool2d max2;  // 2x2, stride 2
  nmsnn::AvgPool2d avg2;
  SpikingLayer out5;
  out5.size = 5;
  out5.threshold = 0.5f;
  const auto image = [&](std::vector<int> shape, int steps, std::vector<nmsnn::LayerSpec> layers) {
    return stack(shape[0] * shape[1] * shape[2], steps, std::move(layers), 0,
                 nmsnn::Reduce::mean, shape);
  };
  // conv -> lif -> max_pool -> flatten -> spiking under the three input kinds.
  const auto cnn = image({2, 7, 9}, 6, {conv(4, {3, 3}), neurons, max2, nmsnn::Flatten{}, out5});
  out.push_back({"conv_lif_maxpool_spiking_repeated", cnn, K::repeated, 5});
  out.push_back({"conv_lif_maxpool_spiking_noisy", cnn, K::noisy, 5});
  out.push_back({"conv_lif_maxpool_spiking_sequence", cnn, K::sequence, 5});
  out.push_back({"conv_lif_maxpool_spiking_inference", cnn, K::repeated, 5, false});
  // conv with stride 2 and padding 1 -> lif (subtract, no delay) -> avg_pool -> flatten -> dense.
  out.push_back({"conv_stride_pad_lif_avgpool_dense",
                 image({1, 8, 8}, 5,
                       {conv(3, {3, 3}, {2, 2}, {1, 1}), subtract, avg2, nmsnn::Flatten{},
                        Dense{4}}),
                 K::repeated, 5});
  // Odd sizes: a 3x2 kernel with strides and padding that differ per axis, an overlapping 3x3
  // max pool with stride [1, 2], and a lif layer last (its state v is the logits).
  nmsnn::MaxPool2d overlapping;
  overlapping.kernel = {3, 3};
  overlapping.stride = {1, 2};
  out.push_back({"conv_odd_sizes_lif_last",
                 image({3, 9, 7}, 5,
                       {conv(5, {3, 2}, {2, 1}, {0, 1}), subtract, overlapping, nmsnn::Flatten{},
                        Dense{6}, neurons}),
                 K::sequence, 4});
  // Two convolutions: the second reads the rebuilt spikes of a lif layer and gives it dL/dx.
  out.push_back({"two_convs_sequence",
                 image({1, 10, 10}, 4,
                       {conv(4, {3, 3}), neurons, max2, conv(6, {3, 3}), neurons,
                        nmsnn::Flatten{}, out5}),
                 K::sequence, 4});
  return out;
}

// ---- margins -----------------------------------------------------------------------------------

// Per sample, the smallest distance of any spiking decision to its boundary in a recorded pass.
std::vector<double> margins(const NetworkSpec& spec, const std::vector<nmsnn::LayerTrace>& trace,
                            int B, bool training) {
  std::vector<double> out(B, 1e300);
  for (size_t l = 0; l < trace.size(); ++l) {
    const nmsnn::LayerTrace& tr = trace[l];
    const auto* s = std::get_if<SpikingLayer>(&spec.layers[l]);
    const auto* n = std::get_if<nmsnn::Lif>(&spec.layers[l]);
    if (s || n) {
      const bool delay = s ? s->delay : n->delay;
      const double threshold = s ? s->threshold : n->threshold;
      // With delay, returned step 0 holds zeros; step t > 0 holds u[t-1] (see test_cuda_engine).
      for (int t = delay ? 1 : 0; t < tr.steps; ++t)
        for (int b = 0; b < B; ++b)
          for (int h = 0; h < tr.size; ++h) {
            const size_t at = (size_t(t) * B + b) * tr.size + h;
            const double sp = tr.spikes[at], v = tr.state[at];
            out[b] = std::min(out[b], sp > 0 ? sp : threshold - v);
          }
    } else if (auto* m = std::get_if<nmsnn::MaxPool2d>(&spec.layers[l])) {
      // Which entry of a window is the first largest: nearly equal nonzero entries may order
      // differently on the two engines (exact ties of zeros, silent neurons, do not).
      const nmsnn::LayerTrace& in = trace[l - 1];
      const std::vector<int> shape = spec.layer_shape(int(l) - 1), o = spec.layer_shape(int(l));
      const auto stride = nmsnn::pool_stride(m->kernel, m->stride);
      for (int t = 0; t < in.steps; ++t)
        for (int b = 0; b < B; ++b)
          for (int c = 0; c < shape[0]; ++c)
            for (int oy = 0; oy < o[1]; ++oy)
              for (int ox = 0; ox < o[2]; ++ox) {
                std::vector<double> v;
                for (int ky = 0; ky < m->kernel[0]; ++ky)
                  for (int kx = 0; kx < m->kernel[1]; ++kx)
                    v.push_back(in.spikes[(size_t(t) * B + b) * in.size +
                                          (size_t(c) * shape[1] + oy * stride[0] + ky) * shape[2] +
                                          ox * stride[1] + kx]);
                std::sort(v.rbegin(), v.rend());
                if (v.size() > 1 && v[0] != 0) out[b] = std::min(out[b], v[0] - v[1]);
              }
    } else if (auto* a = std::get_if<SpikingActivation>(&spec.layers[l])) {
      if (training && !a->spiking_aware_training) continue;  // f(x): continuous
      // The voltage after a step is in [0, 1); near 0 or 1 the floor was nearly an integer.
      // (An exact 0 is a voltage that never moved: relu of a negative input, no initial voltage.)
      for (int t = 0; t < tr.steps; ++t)
        for (int b = 0; b < B; ++b)
          for (int h = 0; h < tr.size; ++h) {
            const double v = tr.state[(size_t(t) * B + b) * tr.size + h];
            if (v != 0) out[b] = std::min({out[b], v, 1 - v});
          }
    }
  }
  return out;
}

// ---- one comparison ----------------------------------------------------------------------------

void compare(const StackCase& c, Engine tested, int tested_threads,
             nmsnn::SavedState saved = nmsnn::SavedState::fp32) {
  const NetworkSpec& spec = c.spec;
  const int B = c.batch, T = spec.time_steps, I = spec.inputs, C = spec.outputs();
  std::mt19937_64 rng(std::hash<std::string>{}(c.name));
  Network ref(spec, {Engine::cpu, kNetSeed, 0});
  nmsnn::NetworkOptions test_options;
  test_options.engine = tested;
  test_options.seed = kNetSeed;
  test_options.threads = tested_threads;
  test_options.saved = saved;
  Network test(spec, test_options);
  const double grad_tolerance =
      saved == nmsnn::SavedState::compact ? kCompactTolerance : kTolerance;
  const auto& layout = ref.parameters();
  for (size_t k = 0; k < layout.size(); ++k) {
    const auto& info = layout[k];
    std::vector<float> v(info.size);
    if (std::holds_alternative<Lowpass>(spec.layers[size_t(info.layer)])) {
      // Smoothing logits in [-1, 3] (smoothing 0.27 .. 0.95) and initial levels in [-0.5, 0.5].
      const bool smoothing = k == 0 || layout[k - 1].layer != info.layer;
      std::uniform_real_distribution<float> d(smoothing ? -1.0f : -0.5f, smoothing ? 3.0f : 0.5f);
      for (float& x : v) x = d(rng);
    } else {
      // Weights [H, I] or [O, C, kh, kw]: fan-in is the product past the first dimension.
      const bool weight = info.shape.size() >= 2;
      const auto& w_shape = weight ? info.shape : layout[k - 1].shape;
      double fan_in = 1;
      for (size_t d = 1; d < w_shape.size(); ++d) fan_in *= w_shape[d];
      std::uniform_real_distribution<float> w(float(-2.5 / std::sqrt(fan_in)),
                                              float(2.5 / std::sqrt(fan_in)));
      std::uniform_real_distribution<float> bias(-0.2f, 0.6f);
      for (float& x : v) x = weight ? w(rng) : bias(rng);
    }
    ref.set_parameter(info.name, v);
    test.set_parameter(info.name, v);
  }

  // Inputs, redrawn until enough samples are safe.
  const size_t n = c.kind == Input::Kind::sequence ? size_t(T) * B * I : size_t(B) * I;
  std::vector<float> x(n);
  std::vector<bool> safe;
  int safe_count = 0;
  uint64_t noise_pass = 0;
  auto make_input = [&]() {
    if (c.kind == Input::Kind::noisy) return Input::noisy(x, B);
    if (c.kind == Input::Kind::sequence) return Input::sequence(x, B);
    return Input::repeated(x, B);
  };
  nmsnn::ForwardOptions opts;
  opts.training = c.training;
  opts.use_noise_pass = true;
  for (int attempt = 0; attempt < 40; ++attempt) {
    std::uniform_real_distribution<float> d(c.kind == Input::Kind::noisy ? 0.0f : -1.0f, 1.5f),
        coin(0, 1);
    for (float& v : x) v = coin(rng) < 0.2f ? 0.0f : d(rng);
    noise_pass = 3 + uint64_t(attempt);
    nmsnn::ForwardOptions rec = opts;
    rec.record = true;
    rec.noise_pass = noise_pass;
    const auto pass = ref.forward(make_input(), rec);
    const auto m = margins(spec, pass.trace(), B, c.training);
    safe.assign(B, false);
    safe_count = 0;
    for (int b = 0; b < B; ++b)
      if (m[b] > kMargin) safe[b] = true, ++safe_count;
    if (c.all_safe ? safe_count == B : safe_count >= (B + 1) / 2) break;
  }
  ASSERT_GE(safe_count, c.all_safe ? B : (B + 1) / 2)
      << c.name << ": too few samples away from a spiking boundary";
  // The comparison means something only where layers that spike do fire, and not always.
  {
    nmsnn::ForwardOptions rec = opts;
    rec.record = true;
    rec.noise_pass = noise_pass;
    const auto pass = ref.forward(make_input(), rec);
    for (size_t l = 0; l < spec.layers.size(); ++l) {
      const auto* a = std::get_if<SpikingActivation>(&spec.layers[l]);
      const bool fires = std::holds_alternative<SpikingLayer>(spec.layers[l]) ||
                         std::holds_alternative<nmsnn::Lif>(spec.layers[l]) ||
                         (a && !(c.training && !a->spiking_aware_training));
      if (!fires) continue;
      const auto& spikes = pass.trace()[l].spikes;
      const double fired =
          double(std::count_if(spikes.begin(), spikes.end(), [](float v) { return v != 0; })) /
          double(spikes.size());
      EXPECT_GT(fired, 0.01) << c.name << ": layer " << l << " almost never fires";
      EXPECT_LT(fired, 0.95) << c.name << ": layer " << l << " fires almost always";
      if (a && c.extreme_spikes) {
        // Spike counts per step are y * dt.
        double most = 0, least = 0;
        for (float y : spikes)
          most = std::max(most, double(y) * a->dt), least = std::min(least, double(y) * a->dt);
        if (c.extreme_spikes > 0)
          EXPECT_GE(most, c.extreme_spikes)
              << c.name << ": no step fires " << c.extreme_spikes << " spikes";
        else
          EXPECT_LE(least, c.extreme_spikes) << c.name << ": no step fires a negative spike";
      }
    }
  }

  opts.noise_pass = noise_pass;
  opts.record = true;
  opts.rates = true;
  auto pass_ref = ref.forward(make_input(), opts);
  auto pass_test = test.forward(make_input(), opts);

  auto report = [&](const std::string& what, const std::vector<float>& a,
                    const std::vector<float>& b, double tolerance = kTolerance) {
    const auto d = difference(a, b);
    EXPECT_LE(d.relative, tolerance)
        << c.name << ": " << what << ": max|ref - test|/max|ref| = " << d.relative << ", worst at "
        << d.at << " of " << a.size() << ": ref " << d.a << ", test " << d.b << " (max|ref| "
        << max_abs(a) << ")";
  };
  report("logits", safe_rows(pass_ref.logits(), safe, C), safe_rows(pass_test.logits(), safe, C));
  ASSERT_EQ(pass_ref.trace().size(), pass_test.trace().size());
  for (size_t l = 0; l < pass_ref.trace().size(); ++l) {
    const auto& a = pass_ref.trace()[l];
    const auto& b = pass_test.trace()[l];
    ASSERT_EQ(a.steps, b.steps) << c.name << ": layer " << l;
    ASSERT_EQ(a.size, b.size) << c.name << ": layer " << l;
    const std::string layer =
        "layer " + std::to_string(l) + " (" + nmsnn::layer_kind(spec.layers[l]) + ")";
    report(layer + " traced state", safe_rows(a.state, safe, size_t(a.size)),
           safe_rows(b.state, safe, size_t(b.size)));
    report(layer + " traced output", safe_rows(a.spikes, safe, size_t(a.size)),
           safe_rows(b.spikes, safe, size_t(b.size)));
  }
  ASSERT_EQ(pass_ref.rates().size(), pass_test.rates().size()) << c.name;
  for (size_t k = 0; k < pass_ref.rates().size(); ++k) {
    const auto& a = pass_ref.rates()[k];
    const auto& b = pass_test.rates()[k];
    EXPECT_EQ(a.layer, b.layer);
    EXPECT_EQ(a.hertz, b.hertz);
    report("layer " + std::to_string(a.layer) + " rates", safe_rows(a.rates, safe, size_t(a.size)),
           safe_rows(b.rates, safe, size_t(b.size)));
  }
  EXPECT_NEAR(pass_test.regularization_loss(), pass_ref.regularization_loss(),
              kTolerance * std::max(1.0, std::abs(pass_ref.regularization_loss())))
      << c.name << ": regularization loss";
  if (!c.training) return;

  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> dlogits(size_t(B) * C, 0.0f);
  for (int b = 0; b < B; ++b)
    for (int k = 0; k < C; ++k)
      if (safe[b]) dlogits[size_t(b) * C + k] = d(rng);
  const bool has_dinput = c.kind != Input::Kind::noisy;
  std::vector<float> dx_ref, dx_test;
  ref.backward(pass_ref, dlogits, has_dinput ? &dx_ref : nullptr);
  test.backward(pass_test, dlogits, has_dinput ? &dx_test : nullptr);
  for (const auto& info : layout)
    report(info.name + " gradient", ref.gradient(info.name), test.gradient(info.name),
           grad_tolerance);
  if (has_dinput) {
    const size_t row = size_t(I);
    report("input gradient", safe_rows(dx_ref, safe, row), safe_rows(dx_test, safe, row),
           grad_tolerance);
  }
}

class LayerStacks : public ::testing::TestWithParam<StackCase> {};

TEST_P(LayerStacks, CudaMatchesCpu) {
  REQUIRE_CUDA();
  compare(GetParam(), Engine::cuda, 0);
}

// The compact saved state: forward as above, gradients within kCompactTolerance.
TEST_P(LayerStacks, CompactMatchesCpu) {
  REQUIRE_CUDA();
  compare(GetParam(), Engine::cuda, 0, nmsnn::SavedState::compact);
}

// The same comparisons between two CPU networks (1 thread vs all: bit-identical by design), so
// CI checks every case finds safe samples and the comparisons themselves run.
TEST_P(LayerStacks, HarnessOnCpu) { compare(GetParam(), Engine::cpu, 1); }

INSTANTIATE_TEST_SUITE_P(Mixed, LayerStacks, ::testing::ValuesIn(stack_cases()),
                         [](const auto& info) { return info.param.name; });

// ---- the compact saved state on stacks of spiking layers ---------------------------------------

// Both reset rules, delay on and off, T around the 32-step gate words (a partial word, exactly
// one, three) and H that are not multiples of 8 or 32. The last spiking layer keeps gate bits,
// the others spike16 codes; below a TemporalAvgPool gate bits too (spiking_pool_spiking above).
std::vector<StackCase> compact_cases() {
  using K = Input::Kind;
  const auto scale = nmsnn::ResetRule::scale, subtract = nmsnn::ResetRule::subtract;
  auto lif = [](int size, nmsnn::ResetRule reset, bool delay) {
    SpikingLayer s;
    s.size = size;
    s.reset = reset;
    s.delay = delay;
    return s;
  };
  std::vector<StackCase> out;
  out.push_back({"scale_delay_T37",
                 stack(11, 37, {lif(13, scale, true), lif(7, scale, true), lif(5, scale, true)}),
                 K::noisy, 6});
  out.push_back({"subtract_nodelay_T31",
                 stack(11, 31, {lif(9, subtract, false), lif(3, subtract, false)}, 4), K::sequence,
                 5});
  out.push_back({"scale_nodelay_T32", stack(10, 32, {lif(33, scale, false), lif(6, scale, false)}),
                 K::repeated, 5});
  out.push_back({"subtract_delay_T70",
                 stack(10, 70, {lif(17, subtract, true), lif(4, subtract, true)}, 3,
                       nmsnn::Reduce::sum),
                 K::sequence, 3});
  out.push_back({"mixed_rules_T9",
                 stack(7, 9, {lif(5, subtract, true), lif(11, scale, false), lif(2, scale, true)}),
                 K::repeated, 7});
  // An activation reads the rounded spikes in its backward; its gradient flows to layer 0.
  out.push_back({"spiking_then_tanh",
                 stack(9, 19,
                       {lif(12, scale, true), nmsnn::Activation{ActivationKind::tanh}, Dense{3}}),
                 K::noisy, 5});
  return out;
}

bool spiking_and_dense_only(const NetworkSpec& spec) {
  for (const auto& l : spec.layers)
    if (!std::holds_alternative<SpikingLayer>(l) && !std::holds_alternative<Dense>(l)) return false;
  return true;
}

class CompactSpiking : public ::testing::TestWithParam<StackCase> {};

TEST_P(CompactSpiking, MatchesCpu) {
  REQUIRE_CUDA();
  compare(GetParam(), Engine::cuda, 0, nmsnn::SavedState::compact);
}

TEST_P(CompactSpiking, HarnessOnCpu) { compare(GetParam(), Engine::cpu, 1); }

// The cuda engine with the compact state against itself with the FP32 state: the same forward
// bits; the same gradient bits wherever no backward reads a returned spike; within
// kCompactTolerance elsewhere. And the saved bytes: <= 2 per neuron-step (+ 256-byte alignment
// per array) with the compact state, 4 with the FP32 one.
TEST_P(CompactSpiking, SameBitsAsFp32State) {
  REQUIRE_CUDA();
  const StackCase& c = GetParam();
  const NetworkSpec& spec = c.spec;
  const int B = c.batch, T = spec.time_steps, I = spec.inputs, L = int(spec.layers.size());
  std::mt19937_64 rng(std::hash<std::string>{}(c.name) + 1);
  nmsnn::NetworkOptions options;
  options.engine = Engine::cuda;
  options.seed = kNetSeed;
  Network fp32(spec, options);
  options.saved = nmsnn::SavedState::compact;
  Network compact(spec, options);
  const auto& layout = fp32.parameters();
  for (size_t k = 0; k < layout.size(); ++k) {  // as compare() draws them: the layers fire
    const auto& info = layout[k];
    const bool weight = info.shape.size() == 2;
    const double fan_in = weight ? info.shape[1] : layout[k - 1].shape[1];
    std::uniform_real_distribution<float> w(float(-2.5 / std::sqrt(fan_in)),
                                            float(2.5 / std::sqrt(fan_in)));
    std::uniform_real_distribution<float> bias(-0.2f, 0.6f);
    std::vector<float> v(info.size);
    for (float& x : v) x = weight ? w(rng) : bias(rng);
    fp32.set_parameter(info.name, v);
    compact.set_parameter(info.name, v);
  }
  std::vector<float> x(c.kind == Input::Kind::sequence ? size_t(T) * B * I : size_t(B) * I);
  std::uniform_real_distribution<float> d(c.kind == Input::Kind::noisy ? 0.0f : -1.0f, 1.5f);
  for (float& v : x) v = d(rng);
  const Input input = c.kind == Input::Kind::noisy      ? Input::noisy(x, B)
                      : c.kind == Input::Kind::sequence ? Input::sequence(x, B)
                                                        : Input::repeated(x, B);
  nmsnn::ForwardOptions opts;
  opts.record = true;
  opts.rates = true;
  opts.use_noise_pass = true;
  opts.noise_pass = 5;
  const auto pass_fp32 = fp32.forward(input, opts);
  const auto pass_compact = compact.forward(input, opts);
  EXPECT_EQ(pass_fp32.logits(), pass_compact.logits()) << c.name;
  for (size_t l = 0; l < pass_fp32.trace().size(); ++l) {
    EXPECT_EQ(pass_fp32.trace()[l].state, pass_compact.trace()[l].state) << c.name << " " << l;
    EXPECT_EQ(pass_fp32.trace()[l].spikes, pass_compact.trace()[l].spikes) << c.name << " " << l;
  }
  for (size_t k = 0; k < pass_fp32.rates().size(); ++k)
    EXPECT_EQ(pass_fp32.rates()[k].rates, pass_compact.rates()[k].rates) << c.name;

  // Saved bytes: per spiking layer 4 (fp32); compact 2, or 4 per 32 steps for the gate words.
  size_t neuron_steps = 0, fp32_bytes = 0, compact_bytes = 0;
  auto aligned = [](size_t bytes) { return (bytes + 255) / 256 * 256; };
  for (int l = 0; l < L; ++l) {
    if (!std::holds_alternative<SpikingLayer>(spec.layers[size_t(l)])) continue;
    const size_t n = size_t(spec.layer_steps(l)) * B * spec.layer_width(l);
    const bool gates_only =
        l == L - 1 || std::holds_alternative<TemporalAvgPool>(spec.layers[size_t(l + 1)]);
    neuron_steps += n;
    fp32_bytes += aligned(4 * n);
    compact_bytes += aligned(gates_only ? size_t(4 * ((spec.layer_steps(l) + 31) / 32)) * B *
                                              spec.layer_width(l)
                                        : 2 * n);
  }
  if (spiking_and_dense_only(spec) &&
      std::holds_alternative<SpikingLayer>(spec.layers.back())) {  // nothing else is saved
    EXPECT_EQ(pass_fp32.saved_bytes(), fp32_bytes) << c.name;
    EXPECT_EQ(pass_compact.saved_bytes(), compact_bytes) << c.name;
    EXPECT_LE(pass_compact.saved_bytes(), 2 * neuron_steps + 256 * size_t(L)) << c.name;
  }
  EXPECT_EQ(pass_fp32.saved_bytes() - pass_compact.saved_bytes(), fp32_bytes - compact_bytes)
      << c.name;

  const int C = spec.outputs();
  std::vector<float> dlogits(size_t(B) * C);
  std::uniform_real_distribution<float> g(-1.0f, 1.0f);
  for (float& v : dlogits) v = g(rng);
  const bool has_dinput = c.kind != Input::Kind::noisy;
  std::vector<float> dx_fp32, dx_compact;
  fp32.backward(pass_fp32, dlogits, has_dinput ? &dx_fp32 : nullptr);
  compact.backward(pass_compact, dlogits, has_dinput ? &dx_compact : nullptr);
  // Which gradients see rounded spikes: the weight of a layer right above a spiking layer, and,
  // once a layer without weights reads rounded spikes, everything below it.
  const bool exact_below = spiking_and_dense_only(spec);
  for (const auto& info : layout) {
    const auto a = fp32.gradient(info.name), b = compact.gradient(info.name);
    const bool weight = info.shape.size() == 2;
    const bool reads_spikes =
        weight && info.layer > 0 &&
        std::holds_alternative<SpikingLayer>(spec.layers[size_t(info.layer - 1)]);
    if (exact_below && !reads_spikes) {
      EXPECT_EQ(a, b) << c.name << ": " << info.name << " gradient";
    } else {
      const auto diff = difference(a, b);
      EXPECT_LE(diff.relative, kCompactTolerance)
          << c.name << ": " << info.name << " gradient, worst at " << diff.at << ": fp32 "
          << diff.a << ", compact " << diff.b;
    }
  }
  if (has_dinput) {
    if (exact_below)
      EXPECT_EQ(dx_fp32, dx_compact) << c.name << ": input gradient";
    else
      EXPECT_LE(engine_compare::relative_error(dx_fp32, dx_compact), kCompactTolerance) << c.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Spiking, CompactSpiking, ::testing::ValuesIn(compact_cases()),
                         [](const auto& info) { return info.param.name; });

// The option's plumbing: the cpu engine ignores it (it always keeps fp32), and an inference pass
// keeps nothing under either.
TEST(CompactSavedState, CpuEngineIgnoresIt) {
  const NetworkSpec spec = NetworkSpec::spiking(6, {5}, 3, 10);
  nmsnn::NetworkOptions options;
  options.seed = 4;
  Network a(spec, options);
  options.saved = nmsnn::SavedState::compact;
  Network b(spec, options);
  std::vector<float> x(2 * 6, 0.8f);
  nmsnn::ForwardOptions opts;
  const auto pa = a.forward(Input::noisy(x, 2), opts), pb = b.forward(Input::noisy(x, 2), opts);
  EXPECT_EQ(pa.logits(), pb.logits());
  EXPECT_EQ(pa.saved_bytes(), pb.saved_bytes());
  EXPECT_EQ(nmsnn::parse_saved_state("compact"), nmsnn::SavedState::compact);
  EXPECT_EQ(std::string(nmsnn::to_string(nmsnn::SavedState::fp32)), "fp32");
  EXPECT_THROW(nmsnn::parse_saved_state("bf16"), nmsnn::Error);
}

// ---- dt at inference, and the toolkit's models end to end --------------------------------------

// Network::set_dt reaches the cuda engine: the rates follow the new dt as on the cpu engine.
TEST(CudaSpikingActivation, SetDtMatchesCpu) {
  REQUIRE_CUDA();
  const NetworkSpec spec =
      stack(8, 20, {Dense{6}, spiking_activation(ActivationKind::relu, 0.001f), TemporalAvgPool{}});
  Network cpu(spec, {Engine::cpu, 4, 0}), gpu(spec, {Engine::cuda, 4, 0});
  std::vector<float> x(3 * 8, 0.7f);
  nmsnn::ForwardOptions opts;
  opts.training = false;
  opts.rates = true;
  opts.use_noise_pass = true;
  for (float dt : {0.001f, 0.05f}) {
    cpu.set_dt(1, dt);
    gpu.set_dt(1, dt);
    const auto a = cpu.forward(Input::repeated(x, 3), opts);
    const auto b = gpu.forward(Input::repeated(x, 3), opts);
    EXPECT_LE(engine_compare::relative_error(a.logits(), b.logits()), kTolerance) << "dt " << dt;
  }
}

// The toolkit's binary, regression and MLP models (the shapes `nmsnn train` builds for CSV data)
// train on the cuda engine and land where the cpu engine's do. The runs drift apart once a spike
// flips, so the test compares outcomes: accuracy and R² on a separable problem.
TEST(CudaModels, TabularTasksTrainLikeCpu) {
  REQUIRE_CUDA();
  std::mt19937_64 rng(2);
  std::normal_distribution<float> g(0, 1);
  const int n = 400, features = 5;
  nmsnn::Dataset binary, regression;
  binary.count = regression.count = n;
  binary.features = regression.features = features;
  binary.classes = 2;
  regression.target_size = 1;
  for (int i = 0; i < n; ++i) {
    float z = 0;
    for (int f = 0; f < features; ++f) {
      const float v = g(rng);
      binary.x.push_back(v);
      z += float(f + 1) * v;
    }
    binary.labels.push_back(z > 0 ? 1 : 0);
    regression.targets.push_back(3.0f * z + 10.0f);
  }
  regression.x = binary.x;
  for (const bool spiking : {true, false})
    for (const auto task : {nmsnn::TaskKind::binary, nmsnn::TaskKind::regression}) {
      nmsnn::NetworkDescription desc;
      if (spiking) {
        desc.spec = NetworkSpec::spiking(features, {24}, 1, 16);
        desc.spec.layers.back() = Dense{1};
      } else {
        desc.spec = NetworkSpec::mlp(features, {24}, 1);
        desc.encoding = Input::Kind::repeated;
      }
      nmsnn::TrainOptions opts;
      opts.epochs = 8;
      opts.batch_size = 32;
      opts.optimizer = nmsnn::Adam{1e-2};
      const nmsnn::Dataset& data = task == nmsnn::TaskKind::binary ? binary : regression;
      double score[2];
      for (int e = 0; e < 2; ++e) {
        nmsnn::Model m =
            nmsnn::Model::make(task, desc, {e == 0 ? Engine::cpu : Engine::cuda, 3, 0});
        m.fit(data, opts);
        const auto ev = m.evaluate(data);
        score[e] = task == nmsnn::TaskKind::binary ? ev.classes.accuracy : ev.regression.r2;
      }
      const std::string what = std::string(spiking ? "snn " : "mlp ") + nmsnn::to_string(task);
      EXPECT_GT(score[1], 0.85) << what << " on cuda (cpu: " << score[0] << ")";
      EXPECT_NEAR(score[1], score[0], 0.05)
          << what << ": cpu " << score[0] << ", cuda " << score[1];
    }
}

}  // namespace
