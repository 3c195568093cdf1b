// test_conv_spec.cpp — convolutional network descriptions: shapes through the stack, the
// parameter layout PyTorch would have, validation errors, the model-file JSON and the initial
// weights' ranges. The layers' arithmetic is tested in test_conv_layers.cpp.
#include <gtest/gtest.h>

#include <cmath>

#include "network/initialize.hpp"
#include "nmsnn/spec.hpp"
#include "nmsnn/spec_json.hpp"
#include "throws_with.hpp"

namespace {

using namespace nmsnn;

// [1, 28, 28] -> conv 8x5x5 -> lif -> max 2 -> conv 16x3x3 s2 p1 -> avg 2 s1 -> flatten -> 10.
NetworkSpec small_cnn() {
  NetworkSpec spec;
  spec.inputs = 784;
  spec.input_shape = {1, 28, 28};
  spec.time_steps = 4;
  Conv2d c1;
  c1.out_channels = 8;
  c1.kernel = {5, 5};
  Conv2d c2;
  c2.out_channels = 16;
  c2.kernel = {3, 3};
  c2.stride = {2, 2};
  c2.padding = {1, 1};
  AvgPool2d avg;
  avg.kernel = {2, 2};
  avg.stride = {1, 1};
  spec.layers = {c1, Lif{}, MaxPool2d{}, c2, avg, Flatten{}, SpikingLayer{10}};
  return spec;
}

TEST(ConvSpec, ShapesFollowPyTorchsFormula) {
  const NetworkSpec spec = small_cnn();
  ASSERT_NO_THROW(spec.validate());
  EXPECT_EQ(spec.layer_shape(-1), (std::vector<int>{1, 28, 28}));
  EXPECT_EQ(spec.layer_shape(0), (std::vector<int>{8, 24, 24}));
  EXPECT_EQ(spec.layer_shape(1), (std::vector<int>{8, 24, 24}));
  EXPECT_EQ(spec.layer_shape(2), (std::vector<int>{8, 12, 12}));
  // (12 + 2 - 3) / 2 + 1 = 6
  EXPECT_EQ(spec.layer_shape(3), (std::vector<int>{16, 6, 6}));
  EXPECT_EQ(spec.layer_shape(4), (std::vector<int>{16, 5, 5}));
  EXPECT_EQ(spec.layer_shape(5), (std::vector<int>{400}));
  EXPECT_EQ(spec.layer_width(2), 8 * 12 * 12);
  EXPECT_EQ(spec.outputs(), 10);
  // Odd sizes, floor rounding, unequal kernel/stride/padding per axis.
  EXPECT_EQ(window_output({7, 5}, {3, 2}, {2, 1}, {1, 0}), (std::array<int, 2>{4, 4}));
  EXPECT_EQ(window_output({5, 5}, {2, 2}, {2, 2}, {0, 0}), (std::array<int, 2>{2, 2}));
  EXPECT_EQ(window_output({2, 2}, {3, 3}, {1, 1}, {0, 0}), (std::array<int, 2>{0, 0}));
  EXPECT_EQ(pool_stride({3, 2}, {0, 1}), (std::array<int, 2>{3, 1}));
}

TEST(ConvSpec, ParameterLayoutHasPyTorchsNamesAndShapes) {
  const auto layout = parameter_layout(small_cnn());
  ASSERT_EQ(layout.size(), 6u);
  EXPECT_EQ(layout[0].name, "layers.0.weight");
  EXPECT_EQ(layout[0].shape, (std::vector<int>{8, 1, 5, 5}));
  EXPECT_EQ(layout[0].size, 200u);
  EXPECT_EQ(layout[1].name, "layers.0.bias");
  EXPECT_EQ(layout[1].shape, (std::vector<int>{8}));
  EXPECT_EQ(layout[2].name, "layers.3.weight");
  EXPECT_EQ(layout[2].shape, (std::vector<int>{16, 8, 3, 3}));
  EXPECT_EQ(layout[4].name, "layers.6.weight");
  EXPECT_EQ(layout[4].shape, (std::vector<int>{10, 400}));
  EXPECT_EQ(layout[5].shape, (std::vector<int>{10}));
}

TEST(ConvSpec, InitialWeightsFollowTorchsConvDefault) {
  const NetworkSpec spec = small_cnn();
  const auto layout = parameter_layout(spec);
  const auto values = detail::initial_parameters(spec, 7);
  ASSERT_EQ(values.size(), layout.size());
  // nn.Conv2d: weight and bias U(+-1/sqrt(C kh kw)).
  for (int p : {0, 1, 2, 3}) {
    const std::vector<int>& w = layout[p % 2 == 0 ? p : p - 1].shape;
    const double bound = 1 / std::sqrt(double(w[1]) * w[2] * w[3]);
    float largest = 0;
    for (float v : values[p]) largest = std::max(largest, std::fabs(v));
    EXPECT_LE(largest, bound) << layout[p].name;
    EXPECT_GT(largest, 0.8 * bound) << layout[p].name;  // spread over the range, not all ~0
  }
}

TEST(ConvSpec, RefusesWhatDoesNotFit) {
  NetworkSpec spec = small_cnn();
  spec.input_shape = {1, 28, 27};
  expect_throws([&] { spec.validate(); }, {"input_shape", "756", "784"});
  spec.input_shape = {1, 784};
  expect_throws([&] { spec.validate(); }, {"input_shape", "[channels, height, width]"});

  spec = small_cnn();
  spec.input_shape.clear();
  expect_throws([&] { spec.validate(); }, {"layer 0 (conv2d)", "feature maps", "input_shape"});

  spec = small_cnn();
  spec.layers.erase(spec.layers.begin() + 5);  // no flatten before the spiking layer
  expect_throws([&] { spec.validate(); }, {"layer 5 (spiking)", "[16, 5, 5]", "flatten"});

  spec = small_cnn();
  std::get<Conv2d>(spec.layers[3]).kernel = {13, 3};  // (12 + 2 - 13) / 2 + 1 = 1 row fits,
  expect_throws([&] { spec.validate(); },             // but then the 2x2 pool does not
                {"layer 4 (avg_pool2d)", "2x2", "does not fit", "1x6"});
  std::get<Conv2d>(spec.layers[3]).kernel = {15, 3};
  expect_throws([&] { spec.validate(); }, {"layer 3 (conv2d)", "15x3", "does not fit", "12x12"});

  spec = small_cnn();
  std::get<Conv2d>(spec.layers[0]).stride = {0, 1};
  expect_throws([&] { spec.validate(); }, {"layer 0 (conv2d)", "stride"});
  spec = small_cnn();
  std::get<Conv2d>(spec.layers[0]).padding = {-1, 0};
  expect_throws([&] { spec.validate(); }, {"layer 0 (conv2d)", "padding"});
  spec = small_cnn();
  std::get<Conv2d>(spec.layers[0]).out_channels = 0;
  expect_throws([&] { spec.validate(); }, {"layer 0 (conv2d)", "out_channels"});

  spec = small_cnn();
  std::get<MaxPool2d>(spec.layers[2]).kernel = {0, 2};
  expect_throws([&] { spec.validate(); }, {"layer 2 (max_pool2d)", "kernel"});

  spec = small_cnn();
  std::get<Lif>(spec.layers[1]).threshold = 0;
  expect_throws([&] { spec.validate(); }, {"layer 1 (lif)", "threshold"});
  spec = small_cnn();
  std::get<Lif>(spec.layers[1]).decay = 1.5f;
  expect_throws([&] { spec.validate(); }, {"layer 1 (lif)", "decay"});

  // A pool on a flat vector.
  spec = small_cnn();
  spec.layers.insert(spec.layers.begin() + 6, MaxPool2d{});
  expect_throws([&] { spec.validate(); }, {"layer 6 (max_pool2d)", "[400]"});
}

TEST(ConvSpec, ModelFileRoundTrip) {
  NetworkDescription d;
  d.spec = small_cnn();
  d.encoding = Input::Kind::repeated;
  const Json j = description_to_json(d);
  const NetworkDescription back = description_from_json(j, "test");
  EXPECT_EQ(description_to_json(back).dump(), j.dump());
  EXPECT_EQ(back.spec.input_shape, d.spec.input_shape);
  const auto& c = std::get<Conv2d>(back.spec.layers[3]);
  EXPECT_EQ(c.stride, (std::array<int, 2>{2, 2}));
  EXPECT_EQ(c.padding, (std::array<int, 2>{1, 1}));
  EXPECT_TRUE(std::holds_alternative<Lif>(back.spec.layers[1]));
  EXPECT_TRUE(std::holds_alternative<Flatten>(back.spec.layers[5]));
}

TEST(ConvSpec, ModelFileTakesNumbersOrPairs) {
  const auto read = [](const std::string& text) {
    return description_from_json(parse_json(text, "t"), "model.json");
  };
  const NetworkDescription d = read(R"({"input_shape": [3, 9, 7], "time_steps": 2, "layers": [
      {"type": "conv2d", "out_channels": 4, "kernel": [3, 2], "stride": 2, "padding": [1, 0]},
      {"type": "avg_pool2d", "kernel": 2},
      {"type": "flatten"}, {"type": "dense", "size": 3}]})");
  EXPECT_EQ(d.spec.inputs, 3 * 9 * 7);  // taken from the shape
  const auto& c = std::get<Conv2d>(d.spec.layers[0]);
  EXPECT_EQ(c.kernel, (std::array<int, 2>{3, 2}));
  EXPECT_EQ(c.stride, (std::array<int, 2>{2, 2}));
  EXPECT_EQ(d.spec.layer_shape(0), (std::vector<int>{4, 5, 3}));  // (9+2-3)/2+1, (7-2)/2+1
  EXPECT_EQ(d.spec.layer_shape(1), (std::vector<int>{4, 2, 1}));

  expect_throws([&] { read(R"({"input_shape": [1, 4, 4], "layers": [
      {"type": "conv2d", "out_channels": 2, "kernel": [3]}]})"); },
                {"model.json", "layers[0].kernel", "[height, width]"});
  expect_throws([&] { read(R"({"input_shape": [1, 4, 4], "layers": [
      {"type": "conv2d", "out_channels": 2}]})"); },
                {"layers[0].kernel", "missing"});
  expect_throws([&] { read(R"({"input_shape": [1, 4, 4], "layers": [
      {"type": "conv2d", "out_channels": 2, "kernel": 0}]})"); },
                {"layers[0].kernel"});
  expect_throws([&] { read(R"({"input_shape": [1, 4, 4], "layers": [
      {"type": "conv2d", "out_channels": 2, "kernel": 3, "dilation": 2}]})"); },
                {"layers[0].dilation", "unknown key"});
  expect_throws([&] { read(R"({"input_shape": [1, 4], "layers": [{"type": "flatten"}]})"); },
                {"input_shape", "[channels, height, width]"});
  expect_throws([&] { read(R"({"inputs": 10, "input_shape": [1, 4, 4],
      "layers": [{"type": "flatten"}]})"); },
                {"input_shape", "16", "10"});
}

}  // namespace
