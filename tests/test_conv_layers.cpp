// test_conv_layers.cpp — the CPU engine's convolutional layers (conv2d, avg_pool2d, max_pool2d,
// flatten, lif).
//
// 1. Forward of conv2d and the pools against straight nested loops written here from PyTorch's
//    definitions, at odd sizes, strides and paddings, for sequences and repeated inputs; max
//    pooling's ties (the gradient goes to the first largest entry in row-major order).
// 2. Backward against central finite differences through CpuNetwork<double>
//    (gradient_check.hpp), over stacks of the new layers with every input kind.
// 3. The public parameter layout (names, shapes [O, C, kh, kw], set/get round trip, padding kept
//    zero), a network's logits against the loops, and the spec's error for a dense layer right
//    after a convolution.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "cpu/conv2d_layer.hpp"
#include "cpu/pool2d_layer.hpp"
#include "gradient_check.hpp"
#include "nmsnn/network.hpp"
#include "throws_with.hpp"

namespace {

using nmsnn::Input;
using nmsnn::cpu::Conv2dLayer;
using nmsnn::cpu::LayerOutput;
using nmsnn::cpu::LayerScratch;
using nmsnn::cpu::Pass;
using nmsnn::cpu::PoolMode;
using nmsnn::cpu::Pool2dLayer;
using nmsnn::cpu::SampleInput;

// ---- the reference loops ---------------------------------------------------------------------

// torch.nn.functional.conv2d of one image: x [C, H, W], w [O, C, kh, kw], bias [O] ->
// [O, H', W'], zero padding.
std::vector<double> naive_conv(const std::vector<double>& x, int C, int H, int W,
                               const std::vector<double>& w, const std::vector<double>& bias,
                               const nmsnn::Conv2d& spec) {
  const int O = spec.out_channels, kh = spec.kernel[0], kw = spec.kernel[1];
  const int Ho = (H + 2 * spec.padding[0] - kh) / spec.stride[0] + 1;
  const int Wo = (W + 2 * spec.padding[1] - kw) / spec.stride[1] + 1;
  std::vector<double> y(size_t(O) * Ho * Wo);
  for (int o = 0; o < O; ++o)
    for (int oy = 0; oy < Ho; ++oy)
      for (int ox = 0; ox < Wo; ++ox) {
        double sum = bias[o];
        for (int c = 0; c < C; ++c)
          for (int ky = 0; ky < kh; ++ky)
            for (int kx = 0; kx < kw; ++kx) {
              const int iy = oy * spec.stride[0] - spec.padding[0] + ky;
              const int ix = ox * spec.stride[1] - spec.padding[1] + kx;
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
              sum += w[((size_t(o) * C + c) * kh + ky) * kw + kx] * x[(size_t(c) * H + iy) * W + ix];
            }
        y[(size_t(o) * Ho + oy) * Wo + ox] = sum;
      }
  return y;
}

// torch.nn.functional.avg_pool2d / max_pool2d of one image, no padding, floor rounding.
std::vector<double> naive_pool(const std::vector<double>& x, int C, int H, int W,
                               std::array<int, 2> k, std::array<int, 2> s, bool max) {
  const int Ho = (H - k[0]) / s[0] + 1, Wo = (W - k[1]) / s[1] + 1;
  std::vector<double> y(size_t(C) * Ho * Wo);
  for (int c = 0; c < C; ++c)
    for (int oy = 0; oy < Ho; ++oy)
      for (int ox = 0; ox < Wo; ++ox) {
        double acc = max ? -1e300 : 0;
        for (int ky = 0; ky < k[0]; ++ky)
          for (int kx = 0; kx < k[1]; ++kx) {
            const double v = x[(size_t(c) * H + oy * s[0] + ky) * W + ox * s[1] + kx];
            acc = max ? std::max(acc, v) : acc + v;
          }
        y[(size_t(c) * Ho + oy) * Wo + ox] = max ? acc : acc / (k[0] * k[1]);
      }
  return y;
}

std::vector<double> uniform(size_t n, std::mt19937_64& rng, double lo = -1, double hi = 1) {
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// The input of one layer: T steps of in_width values (a sequence), or one row (repeated).
SampleInput<double> layer_input(const std::vector<double>& x, int T, int in_width, bool repeated) {
  SampleInput<double> s;
  s.T = T;
  s.I = in_width;
  s.data = x.data();
  s.t_stride = repeated ? 0 : size_t(in_width);
  return s;
}

// ---- 1. forward against the loops -------------------------------------------------------------

struct ConvCase {
  int C, H, W;
  nmsnn::Conv2d spec;
};

class ConvForward : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvForward, MatchesDirectLoops) {
  const ConvCase& c = GetParam();
  const int T = 3, O = c.spec.out_channels;
  const int in_real = c.C * c.H * c.W, in_width = nmsnn::cpu::padded_width(in_real);
  std::mt19937_64 rng(7);
  for (bool repeated : {false, true}) {
    Conv2dLayer<double> layer(in_width, T, {c.C, c.H, c.W}, c.spec);
    const std::vector<double> w = uniform(size_t(O) * c.C * c.spec.kernel[0] * c.spec.kernel[1],
                                          rng);
    const std::vector<double> bias = uniform(O, rng);
    const std::vector<float> wf(w.begin(), w.end()), bf(bias.begin(), bias.end());
    layer.from_public(0, wf.data(), layer.params[0].value.data());
    layer.from_public(1, bf.data(), layer.params[1].value.data());
    layer.prepare_pass();
    // Padding at the end of each input step is zero, as the previous layer leaves it.
    std::vector<double> x = uniform(size_t(repeated ? 1 : T) * in_width, rng);
    for (int t = 0; t < (repeated ? 1 : T); ++t)
      std::fill(x.begin() + size_t(t) * in_width + in_real, x.begin() + size_t(t + 1) * in_width,
                0.0);
    std::vector<double> y(size_t(T) * layer.out_width, 99.0);
    LayerOutput<double> out;
    out.y = y.data();
    LayerScratch<double> scratch;
    layer.forward(layer_input(x, T, in_width, repeated), 0, Pass<double>{}, out, scratch);
    for (int t = 0; t < T; ++t) {
      const int src = repeated ? 0 : t;
      const std::vector<double> xt(x.begin() + size_t(src) * in_width,
                                   x.begin() + size_t(src) * in_width + in_real);
      // Weights and bias as the engine holds them (float-rounded by from_public).
      const std::vector<double> wr(wf.begin(), wf.end()), br(bf.begin(), bf.end());
      const std::vector<double> want = naive_conv(xt, c.C, c.H, c.W, wr, br, c.spec);
      ASSERT_EQ(int(want.size()), layer.out_real);
      for (int k = 0; k < layer.out_width; ++k) {
        const double got = y[size_t(t) * layer.out_width + k];
        if (k < layer.out_real)
          EXPECT_NEAR(got, want[k], 1e-12) << "step " << t << " output " << k;
        else
          EXPECT_EQ(got, 0.0) << "padding " << k << " of step " << t;
      }
    }
  }
}

nmsnn::Conv2d conv(int out, std::array<int, 2> k, std::array<int, 2> s = {1, 1},
                   std::array<int, 2> p = {0, 0}) {
  nmsnn::Conv2d c;
  c.out_channels = out;
  c.kernel = k;
  c.stride = s;
  c.padding = p;
  return c;
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ConvForward,
    ::testing::Values(ConvCase{3, 7, 5, conv(5, {3, 2}, {2, 1}, {1, 0})},
                      ConvCase{1, 6, 6, conv(4, {3, 3}, {1, 1}, {1, 1})},
                      ConvCase{2, 5, 7, conv(3, {1, 1})},
                      ConvCase{2, 9, 8, conv(17, {2, 3}, {3, 2}, {2, 1})},
                      ConvCase{4, 4, 4, conv(2, {4, 4})},
                      ConvCase{3, 5, 5, conv(1, {5, 3}, {1, 1}, {2, 0})},
                      // every window column in the padding: outputs are the bias alone
                      ConvCase{2, 4, 3, conv(3, {2, 2}, {1, 5}, {0, 2})}));

struct PoolCase {
  int C, H, W;
  std::array<int, 2> kernel, stride;  // stride as pool_stride gives it
};

class PoolForward : public ::testing::TestWithParam<PoolCase> {};

TEST_P(PoolForward, MatchesDirectLoops) {
  const PoolCase& c = GetParam();
  const int T = 2, in_real = c.C * c.H * c.W, in_width = nmsnn::cpu::padded_width(in_real);
  std::mt19937_64 rng(11);
  for (PoolMode mode : {PoolMode::avg, PoolMode::max}) {
    Pool2dLayer<double> layer(in_width, T, {c.C, c.H, c.W}, c.kernel, c.stride, mode);
    std::vector<double> x = uniform(size_t(T) * in_width, rng);
    std::vector<double> y(size_t(T) * layer.out_width, 99.0);
    LayerOutput<double> out;
    out.y = y.data();
    LayerScratch<double> scratch;
    layer.forward(layer_input(x, T, in_width, false), 0, Pass<double>{}, out, scratch);
    for (int t = 0; t < T; ++t) {
      const std::vector<double> xt(x.begin() + size_t(t) * in_width,
                                   x.begin() + size_t(t) * in_width + in_real);
      const auto want = naive_pool(xt, c.C, c.H, c.W, c.kernel, c.stride, mode == PoolMode::max);
      ASSERT_EQ(int(want.size()), layer.out_real);
      for (int k = 0; k < layer.out_width; ++k) {
        const double got = y[size_t(t) * layer.out_width + k];
        if (k < layer.out_real)
          EXPECT_NEAR(got, want[k], 1e-14) << layer.kind() << " step " << t << " output " << k;
        else
          EXPECT_EQ(got, 0.0) << layer.kind() << " padding " << k;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, PoolForward,
                         ::testing::Values(PoolCase{3, 7, 5, {2, 2}, {2, 2}},
                                           PoolCase{2, 6, 9, {3, 2}, {1, 2}},
                                           PoolCase{1, 5, 5, {2, 3}, {3, 1}},
                                           PoolCase{4, 4, 4, {4, 4}, {4, 4}}));

// Spike maps tie often: the gradient goes to the first largest entry in row-major order, and
// with overlapping windows an entry collects from every window it wins.
TEST(MaxPool, GradientGoesToFirstLargestEntry) {
  // One channel 3x4, windows 2x2 at stride 1x2 -> outputs 2x2.
  const std::vector<double> x = {0, 1, 2, 2,   //
                                 1, 1, 2, 0,   //
                                 0, 0, 0, 0};
  const int in_width = nmsnn::cpu::padded_width(12);
  std::vector<double> xs(in_width, 0.0);
  std::copy(x.begin(), x.end(), xs.begin());
  Pool2dLayer<double> layer(in_width, 1, {1, 3, 4}, {2, 2}, {1, 2}, PoolMode::max);
  ASSERT_EQ(layer.out_real, 4);
  std::vector<double> y(layer.out_width);
  LayerOutput<double> out;
  out.y = y.data();
  LayerScratch<double> scratch;
  const auto in = layer_input(xs, 1, in_width, false);
  layer.forward(in, 0, Pass<double>{}, out, scratch);
  EXPECT_EQ(y[0], 1.0);
  EXPECT_EQ(y[1], 2.0);
  EXPECT_EQ(y[2], 1.0);
  EXPECT_EQ(y[3], 2.0);

  std::vector<double> dy(layer.out_width, 0.0), dx(in_width, -7.0);
  dy[0] = 1, dy[1] = 10, dy[2] = 100, dy[3] = 1000;
  nmsnn::cpu::LayerGrad<double> g;
  g.dy = dy.data();
  g.dx = dx.data();
  layer.backward(in, 0, Pass<double>{}, nullptr, g, scratch);
  // Window (0,0) = {0,1 / 1,1}: first 1 at (0,1). Window (0,1) = {2,2 / 2,0}: (0,2).
  // Window (1,0) = {1,1 / 0,0}: (1,0). Window (1,1) = {2,0 / 0,0}: (1,2).
  std::vector<double> want(in_width, 0.0);
  want[1] = 1, want[2] = 10, want[4] = 100, want[6] = 1000;
  EXPECT_EQ(dx, want);

  // All zero (no neuron fired): the window's first entry gets it, and overlapping windows add.
  Pool2dLayer<double> overlap(in_width, 1, {1, 3, 4}, {2, 2}, {1, 1}, PoolMode::max);
  std::vector<double> zeros(in_width, 0.0), y2(overlap.out_width), dy2(overlap.out_width, 0.0);
  out.y = y2.data();
  overlap.forward(layer_input(zeros, 1, in_width, false), 0, Pass<double>{}, out, scratch);
  for (int k = 0; k < overlap.out_real; ++k) dy2[k] = 1;
  g.dy = dy2.data();
  overlap.backward(layer_input(zeros, 1, in_width, false), 0, Pass<double>{}, nullptr, g, scratch);
  // 2x3 windows, each giving 1 to its top-left corner (y, x) for y < 2, x < 3.
  std::vector<double> want2(in_width, 0.0);
  for (int yy = 0; yy < 2; ++yy)
    for (int xx = 0; xx < 3; ++xx) want2[yy * 4 + xx] = 1;
  EXPECT_EQ(dx, want2);
}

// ---- 2. gradients against finite differences ---------------------------------------------------

using Case = nmsnn_test::GradientCase;

// Images [2, 6, 5], T = 5.
nmsnn::NetworkSpec image_stack(std::vector<nmsnn::LayerSpec> layers,
                               nmsnn::Reduce reduce = nmsnn::Reduce::mean, int begin_eval = 0) {
  nmsnn::NetworkSpec spec;
  spec.inputs = 60;
  spec.input_shape = {2, 6, 5};
  spec.time_steps = 5;
  spec.layers = std::move(layers);
  spec.readout.reduce = reduce;
  spec.readout.begin_eval = begin_eval;
  return spec;
}

std::vector<Case> gradient_cases() {
  using namespace nmsnn;
  Lif scale;  // seed neurons, scale reset, delay
  scale.threshold = 0.7f;
  Lif subtract_now;
  subtract_now.reset = ResetRule::subtract;
  subtract_now.delay = false;
  subtract_now.decay = 0.8f;
  subtract_now.penalty = 0.6f;
  SpikingActivation smooth;
  smooth.spiking_aware_training = false;
  smooth.activation = ActivationKind::tanh;
  smooth.dt = 0.01f;
  Lowpass lp;
  lp.tau = 0.02f;
  lp.dt = 0.01f;
  MaxPool2d max2;
  AvgPool2d avg2_stride1;
  avg2_stride1.stride = {1, 1};
  SpikingLayer spiking{3, 0.8f, 0.5f, 0.75f};

  std::vector<Case> out;
  for (Input::Kind kind : {Input::Kind::sequence, Input::Kind::repeated, Input::Kind::noisy}) {
    static const char* names[] = {"noisy", "sequence", "repeated"};
    const std::string k = names[int(kind)];
    out.push_back({"conv_lif_maxpool_flatten_spiking_" + k,
                   image_stack({conv(3, {3, 2}), scale, max2, Flatten{}, spiking}), Loss::nll,
                   kind});
    out.push_back({"conv_stride_pad_lif_avgpool_flatten_dense_" + k,
                   image_stack({conv(4, {3, 3}, {2, 2}, {1, 1}), subtract_now, avg2_stride1,
                                Flatten{}, Dense{3}},
                               Reduce::sum, 1),
                   Loss::nll, kind});
  }
  out.push_back({"conv_spiking_activation_flatten_dense",
                 image_stack({conv(3, {2, 2}), smooth, Flatten{}, Dense{3}}), Loss::mse,
                 Input::Kind::sequence});
  out.push_back({"conv_lowpass_flatten_dense",
                 image_stack({conv(2, {3, 3}, {1, 2}), lp, Flatten{}, Dense{3}}), Loss::nll,
                 Input::Kind::repeated});
  // A last lif layer returns its state, after a max pool straight on a convolution's output.
  out.push_back({"conv_maxpool_flatten_dense_lif_last",
                 image_stack({conv(2, {3, 2}, {1, 1}, {0, 1}), max2, Flatten{}, Dense{4}, scale},
                             Reduce::sum),
                 Loss::nll, Input::Kind::sequence});
  // Layers without weights first: lif on the input itself, then a pool straight on the input.
  for (Input::Kind kind : {Input::Kind::noisy, Input::Kind::sequence, Input::Kind::repeated}) {
    static const char* names[] = {"noisy", "sequence", "repeated"};
    out.push_back({std::string("lif_first_conv_avgpool_flatten_dense_") + names[int(kind)],
                   image_stack({scale, conv(3, {2, 2}), AvgPool2d{}, Flatten{}, Dense{3}}),
                   Loss::nll, kind});
  }
  out.push_back({"maxpool_first_conv_flatten_lif_dense",
                 image_stack({max2, conv(3, {2, 2}), Flatten{}, scale, Dense{3}}), Loss::bce,
                 Input::Kind::sequence});
  out.back().spec.layers.back() = Dense{1};
  return out;
}

class ConvGradients : public ::testing::TestWithParam<Case> {};

TEST_P(ConvGradients, MatchCentralDifferences) {
  nmsnn_test::GradientCheck check(GetParam());
  check.check_all();
}

INSTANTIATE_TEST_SUITE_P(Stacks, ConvGradients, ::testing::ValuesIn(gradient_cases()),
                         [](const auto& info) { return info.param.name; });

// ---- 3. the public layout, a whole network, and bad specs --------------------------------------

// conv(5, 3x2, stride 2x1, pad 1x0) on [3, 7, 5] -> [5, 4, 4], flatten, dense(3).
nmsnn::NetworkSpec small_cnn() {
  nmsnn::NetworkSpec spec;
  spec.inputs = 105;
  spec.input_shape = {3, 7, 5};
  spec.time_steps = 4;
  spec.layers = {conv(5, {3, 2}, {2, 1}, {1, 0}), nmsnn::Flatten{}, nmsnn::Dense{3}};
  return spec;
}

// B images of `spec`'s input shape, uniform in [0, 1), as a batch of floats.
std::vector<float> random_images(const nmsnn::NetworkSpec& spec, int B, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto xd = uniform(size_t(B) * spec.inputs, rng, 0, 1);
  return std::vector<float>(xd.begin(), xd.end());
}

TEST(ConvLayout, PublicNamesShapesAndRoundTrip) {
  nmsnn::NetworkOptions options;
  options.threads = 1;
  nmsnn::Network net(small_cnn(), options);
  const auto& params = net.parameters();
  ASSERT_EQ(params.size(), 4u);
  EXPECT_EQ(params[0].name, "layers.0.weight");
  EXPECT_EQ(params[0].shape, (std::vector<int>{5, 3, 3, 2}));
  EXPECT_EQ(params[1].name, "layers.0.bias");
  EXPECT_EQ(params[1].shape, (std::vector<int>{5}));
  EXPECT_EQ(params[2].name, "layers.2.weight");
  EXPECT_EQ(params[2].shape, (std::vector<int>{3, 80}));

  std::mt19937_64 rng(3);
  std::vector<std::vector<float>> values;
  for (const auto& p : params) {
    const auto v = uniform(p.size, rng);
    values.emplace_back(v.begin(), v.end());
    net.set_parameter(p.name, values.back());
  }
  for (size_t i = 0; i < params.size(); ++i) EXPECT_EQ(net.parameter(params[i].name), values[i]);

  // The logits against the loops, with the public weights: conv, then (c, y, x) flattened into
  // the dense layer's [3, 80] weight, mean over the steps.
  const int T = 4, B = 2, I = 105;
  const auto xd = uniform(size_t(T) * B * I, rng, 0, 1);
  const std::vector<float> x(xd.begin(), xd.end());
  nmsnn::ForwardOptions fo;
  fo.training = false;
  const auto pass = net.forward(Input::sequence(x, B), fo);
  const std::vector<double> w(values[0].begin(), values[0].end()),
      bias(values[1].begin(), values[1].end());
  for (int b = 0; b < B; ++b) {
    std::vector<double> want(3, 0.0);
    for (int t = 0; t < T; ++t) {
      const std::vector<double> xt(x.begin() + (size_t(t) * B + b) * I,
                                   x.begin() + (size_t(t) * B + b + 1) * I);
      const auto maps =
          naive_conv(xt, 3, 7, 5, w, bias, std::get<nmsnn::Conv2d>(small_cnn().layers[0]));
      for (int h = 0; h < 3; ++h) {
        double a = values[3][h];
        for (int i = 0; i < 80; ++i) a += double(values[2][size_t(h) * 80 + i]) * maps[i];
        want[h] += a / T;
      }
    }
    for (int h = 0; h < 3; ++h)
      EXPECT_NEAR(pass.logits()[size_t(b) * 3 + h], want[h], 1e-4) << "sample " << b;
  }
}

// The engine layout's padding (channels past O, outputs past O*P) stays zero through a write of
// the public values and through backward's gradients.
TEST(ConvLayout, PaddingStaysZero) {
  nmsnn::cpu::ThreadPool pool(1);
  const nmsnn::NetworkSpec spec = small_cnn();
  nmsnn::cpu::CpuNetwork<double> net(spec, pool);
  auto& layer = *net.layers[0];
  ASSERT_STREQ(layer.kind(), "conv2d");
  std::mt19937_64 rng(5);
  for (int k = 0; k < 2; ++k) {
    auto& p = layer.params[k];
    size_t n = 1;
    for (int d : p.public_shape) n *= size_t(d);
    const auto v = uniform(n, rng);
    const std::vector<float> f(v.begin(), v.end());
    layer.from_public(k, f.data(), p.value.data());
    std::vector<float> back(n);
    layer.to_public(k, p.value.data(), back.data());
    EXPECT_EQ(back, f) << "parameter " << k;
  }
  auto& dense = *net.layers[2];  // random weights, so that gradients reach the convolution
  for (auto& p : dense.params) p.value = uniform(p.value.size(), rng);
  nmsnn_test::GradientCheck::zero_padding(dense);
  const int Opad = nmsnn::cpu::padded_width(5), K = 3 * 3 * 2;
  auto padding_is_zero = [&](const std::vector<double>& wt, const std::vector<double>& b) {
    for (int j = 0; j < K; ++j)
      for (int o = 5; o < Opad; ++o)
        if (wt[size_t(j) * Opad + o] != 0) return false;
    for (int o = 5; o < Opad; ++o)
      if (b[o] != 0) return false;
    return true;
  };
  EXPECT_TRUE(padding_is_zero(layer.params[0].value, layer.params[1].value));

  const int B = 2;
  const auto x = uniform(size_t(spec.time_steps) * B * spec.inputs, rng, 0, 1);
  Pass<double> in;
  in.kind = Input::Kind::sequence;
  in.data = x.data();
  in.batch = B;
  in.training = true;
  std::vector<double> logits(B * 3), dlogits(B * 3, 1.0), dinput(x.size());
  nmsnn::cpu::SavedStates<double> saved;
  net.forward(in, logits.data(), &saved);
  net.backward(in, saved, dlogits.data(), dinput.data());
  EXPECT_TRUE(padding_is_zero(layer.params[0].grad, layer.params[1].grad));
  double sum = 0;
  for (double g : layer.params[0].grad) sum += std::abs(g);
  EXPECT_GT(sum, 0);  // the check above is not vacuous
}

// Traces have every layer's real width (out_real, not the padded one) and rates come from the
// lif layer: conv -> lif (no delay) -> max_pool -> flatten -> dense on [3, 7, 5].
TEST(ConvNetwork, TracesAndRates) {
  nmsnn::NetworkSpec spec = small_cnn();
  nmsnn::Lif lif;
  lif.delay = false;
  lif.threshold = 0.3f;
  nmsnn::MaxPool2d pool;
  spec.layers = {conv(5, {3, 2}, {2, 1}, {1, 0}), lif, pool, nmsnn::Flatten{}, nmsnn::Dense{3}};
  nmsnn::NetworkOptions options;
  options.threads = 1;
  options.seed = 4;
  nmsnn::Network net(spec, options);
  const int T = spec.time_steps, B = 2;
  const std::vector<float> x = random_images(spec, B, 9);
  nmsnn::ForwardOptions fo;
  fo.record = true;
  fo.rates = true;
  const auto pass = net.forward(Input::repeated(x, B), fo);
  const auto& trace = pass.trace();
  ASSERT_EQ(trace.size(), 5u);
  const std::vector<int> sizes = {5 * 4 * 4, 5 * 4 * 4, 5 * 2 * 2, 5 * 2 * 2, 3};
  for (size_t l = 0; l < trace.size(); ++l) {
    EXPECT_EQ(trace[l].size, sizes[l]) << "layer " << l;
    EXPECT_EQ(trace[l].steps, T);
    EXPECT_EQ(trace[l].spikes.size(), size_t(T) * B * sizes[l]);
  }
  // The pool's trace is the max pool of the lif layer's spikes, and flatten's is the same.
  double fired = 0;
  for (int t = 0; t < T; ++t)
    for (int b = 0; b < B; ++b) {
      auto at = [&](const nmsnn::LayerTrace& tr) {
        return std::vector<double>(tr.spikes.begin() + (size_t(t) * B + b) * tr.size,
                                   tr.spikes.begin() + (size_t(t) * B + b + 1) * tr.size);
      };
      const auto spikes = at(trace[1]);
      for (double v : spikes) fired += v > 0;
      EXPECT_EQ(at(trace[2]), naive_pool(spikes, 5, 4, 4, {2, 2}, {2, 2}, true));
      EXPECT_EQ(at(trace[3]), at(trace[2]));
    }
  EXPECT_GT(fired, 0) << "no lif neuron fired: the comparisons above say little";
  // Rates: the lif layer only, the fraction of steps each neuron fired at (no delay: the trace's
  // spikes are this step's).
  ASSERT_EQ(pass.rates().size(), 1u);
  const nmsnn::LayerRates& r = pass.rates()[0];
  EXPECT_EQ(r.layer, 1);
  EXPECT_FALSE(r.hertz);
  ASSERT_EQ(r.size, 80);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < 80; ++h) {
      int n = 0;
      for (int t = 0; t < T; ++t) n += trace[1].spikes[(size_t(t) * B + b) * 80 + h] > 0;
      EXPECT_FLOAT_EQ(r.rates[size_t(b) * 80 + h], float(n) / T) << "sample " << b << " " << h;
    }
}

// A training pass keeps a layer's output only where the next layer reads it in backward: not a
// convolution's maps under a lif layer (its saved u is enough), nor an average pool's under a
// flatten. conv -> lif -> avg_pool -> flatten -> dense keeps the lif layer's u and the flatten's
// output (the dense layer's input), nothing else.
TEST(ConvNetwork, KeepsOnlyWhatBackwardReads) {
  nmsnn::NetworkSpec spec = small_cnn();
  nmsnn::AvgPool2d pool;
  pool.kernel = {2, 2};
  spec.layers = {conv(4, {2, 2}), nmsnn::Lif{}, pool, nmsnn::Flatten{}, nmsnn::Dense{3}};
  spec.validate();
  nmsnn::NetworkOptions options;
  options.threads = 1;
  nmsnn::Network net(spec, options);
  const int T = spec.time_steps, B = 3;
  const std::vector<float> x = random_images(spec, B, 5);
  const auto pass = net.forward(Input::repeated(x, B));
  const size_t maps = size_t(nmsnn::cpu::padded_width(4 * 6 * 4));    // conv and lif: [4, 6, 4]
  const size_t pooled = size_t(nmsnn::cpu::padded_width(4 * 3 * 2));  // pool and flatten
  EXPECT_EQ(pass.saved_bytes(), size_t(B) * T * (maps + pooled) * sizeof(float));
  // and backward still has what it needs: the gradients are those of the same network with
  // every output kept (checked against finite differences in ConvGradients); here, non-zero.
  const std::vector<float> dlogits(size_t(B) * 3, 1.0f);
  net.backward(pass, dlogits);
  double sum = 0;
  for (const auto& p : net.parameters())
    for (float v : net.gradient(p.name)) sum += std::abs(v);
  EXPECT_GT(sum, 0);
}

TEST(ConvSpec, DenseRightAfterConvolutionIsRefused) {
  nmsnn::NetworkSpec spec = small_cnn();
  spec.layers = {conv(2, {3, 3}), nmsnn::Dense{3}};
  expect_throws([&] { nmsnn::Network net(spec); },
                {"layer 1 (dense)", "receives feature maps [2, 5, 3]",
                 "put a flatten layer before it"});
}

}  // namespace
