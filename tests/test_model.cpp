// test_model.cpp — predictive models: JSON network descriptions, training with preprocessing,
// save/load round trips that predict identically, and rejected model files.
#include <gtest/gtest.h>

#include "throws_with.hpp"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>

#include "nmsnn/nmsnn.hpp"

namespace {

using namespace nmsnn;

NetworkDescription parse(const std::string& text, int inputs = 0) {
  return description_from_json(parse_json(text), "test.json", inputs);
}

std::string temp_path(const std::string& name) { return NMSNN_BINARY_DIR "/" + name; }

Dataset iris() {
  CsvOptions csv;
  csv.target = "target";
  return load_csv(NMSNN_SOURCE_DIR "/data/csv/iris_data.csv", csv);
}

}  // namespace

// ---- network descriptions ------------------------------------------------------------------
TEST(Descriptions, ParseEveryLayerKindAndRoundTrip) {
  const NetworkDescription d = parse(R"({
    "time_steps": 12, "encoding": "repeated",
    "readout": {"reduce": "sum", "begin_eval": 0},
    "layers": [
      {"type": "dense", "size": 16},
      {"type": "spiking_activation", "activation": "tanh", "dt": 0.01,
       "spiking_aware_training": false, "rate_target": 20, "rate_weight": 0.001},
      {"type": "lowpass", "tau": 0.05, "dt": 0.01, "units": 16, "apply_during_training": false},
      {"type": "spiking", "size": 8, "decay": 0.8, "threshold": 0.5, "penalty": 1, "reset": "subtract",
       "delay": false},
      {"type": "activation", "function": "sigmoid"},
      {"type": "temporal_avg_pool"},
      {"type": "dense", "size": 3}
    ]})", 4);
  EXPECT_EQ(d.spec.inputs, 4);
  EXPECT_EQ(d.spec.time_steps, 12);
  EXPECT_EQ(d.encoding, Input::Kind::repeated);
  EXPECT_EQ(d.spec.readout.reduce, Reduce::sum);
  ASSERT_EQ(d.spec.layers.size(), 7u);
  const auto& sa = std::get<SpikingActivation>(d.spec.layers[1]);
  EXPECT_EQ(sa.activation, ActivationKind::tanh);
  EXPECT_FALSE(sa.spiking_aware_training);
  EXPECT_FLOAT_EQ(sa.rate_target, 20);
  const auto& s = std::get<SpikingLayer>(d.spec.layers[3]);
  EXPECT_EQ(s.reset, ResetRule::subtract);
  EXPECT_FALSE(s.delay);
  EXPECT_FLOAT_EQ(s.threshold, 0.5f);
  EXPECT_FALSE(std::get<Lowpass>(d.spec.layers[2]).apply_during_training);
  // Writing it out and reading it back gives the same description.
  const std::string text = description_to_json(d).dump();
  EXPECT_EQ(description_to_json(parse(text)).dump(), text);
  // The seed's defaults fill what a description leaves out.
  const NetworkDescription minimal = parse(R"({"layers": [{"type": "spiking", "size": 3}]})", 5);
  EXPECT_EQ(minimal.spec.time_steps, 128);
  EXPECT_EQ(minimal.encoding, Input::Kind::noisy);
  EXPECT_FLOAT_EQ(std::get<SpikingLayer>(minimal.spec.layers[0]).decay, 0.9f);
}

TEST(Descriptions, BadDescriptionsNameThePathAndTheProblem) {
  expect_throws([] { parse(R"({"layers": [{"type": "dense", "size": 4, "sise": 3}]})", 2); },
              {"test.json", "layers[0].sise", "unknown key", "size"});
  expect_throws([] { parse(R"({"layerz": []})", 2); }, {"layerz", "unknown key"});
  expect_throws([] { parse(R"({"time_steps": 4})", 2); }, {"layers", "missing"});
  expect_throws([] { parse(R"({"layers": [{"type": "conv", "size": 4}]})", 2); },
              {"layers[0].type", "unknown layer type 'conv'"});
  expect_throws([] { parse(R"({"layers": [{"size": 4}]})", 2); }, {"layers[0].type", "missing"});
  expect_throws([] { parse(R"({"layers": [{"type": "dense"}]})", 2); }, {"layers[0].size", "required"});
  expect_throws([] { parse(R"({"layers": [{"type": "dense", "size": "ten"}]})", 2); },
              {"layers[0].size", "whole number"});
  expect_throws([] { parse(R"({"layers": [{"type": "lowpass", "tau": -1}]})", 2); },
              {"test.json", "layer 0", "tau must be > 0"});
  expect_throws([] { parse(R"({"layers": [{"type": "spiking_activation", "dt": 0}]})", 2); },
              {"dt must be > 0"});
  expect_throws([] { parse(R"({"layers": [{"type": "lowpass", "units": 7}]})", 2); },
              {"7 units", "2 features"});
  expect_throws([] { parse(R"({"layers": [{"type": "spiking", "size": 2, "reset": "zero"}]})", 2); },
              {"layers[0].reset", "'zero'"});
  expect_throws([] { parse(R"({"encoding": "poisson", "layers": [{"type": "dense", "size": 2}]})", 2); },
              {"encoding", "'poisson'"});
  expect_throws([] { parse(R"({"time_steps": 0, "layers": [{"type": "dense", "size": 2}]})", 2); },
              {"time_steps"});
  expect_throws([] { parse(R"({"inputs": 3, "layers": [{"type": "dense", "size": 2}]})", 2); },
              {"inputs", "3", "2 features"});
}

// ---- convolutional descriptions ---------------------------------------------------------------
namespace {
const char* kConv = R"({"layers": [{"type": "conv2d", "out_channels": 2, "kernel": 5},
                                   {"type": "flatten"}, {"type": "dense", "size": 10}]})";
}  // namespace

TEST(Descriptions, ConvolutionalLayersParseAndRoundTrip) {
  const NetworkDescription d = parse(R"({
    "input_shape": [1, 8, 8], "time_steps": 4,
    "layers": [
      {"type": "conv2d", "out_channels": 3, "kernel": 3, "padding": [1, 0]},
      {"type": "lif", "decay": 0.8, "reset": "subtract", "delay": false},
      {"type": "max_pool2d", "kernel": [2, 3]},
      {"type": "avg_pool2d", "kernel": 2, "stride": 1},
      {"type": "flatten"},
      {"type": "dense", "size": 5}
    ]})");
  EXPECT_EQ(d.spec.inputs, 64);  // from input_shape
  const auto& c = std::get<Conv2d>(d.spec.layers[0]);
  EXPECT_EQ(c.kernel, (std::array<int, 2>{3, 3}));
  EXPECT_EQ(c.stride, (std::array<int, 2>{1, 1}));
  EXPECT_EQ(c.padding, (std::array<int, 2>{1, 0}));
  const auto& n = std::get<Lif>(d.spec.layers[1]);
  EXPECT_FLOAT_EQ(n.decay, 0.8f);
  EXPECT_FLOAT_EQ(n.threshold, 1.0f);
  EXPECT_EQ(n.reset, ResetRule::subtract);
  EXPECT_FALSE(n.delay);
  // [1, 8, 8] -> conv [3, 8, 6] -> max [3, 4, 2] (stride = kernel) -> avg [3, 3, 1] -> 9 -> 5.
  EXPECT_EQ(d.spec.layer_shape(0), (std::vector<int>{3, 8, 6}));
  EXPECT_EQ(d.spec.layer_shape(2), (std::vector<int>{3, 4, 2}));
  EXPECT_EQ(d.spec.layer_shape(3), (std::vector<int>{3, 3, 1}));
  EXPECT_EQ(d.spec.layer_shape(4), (std::vector<int>{9}));
  const std::vector<ParameterInfo> layout = parameter_layout(d.spec);
  ASSERT_EQ(layout.size(), 4u);
  EXPECT_EQ(layout[0].name, "layers.0.weight");
  EXPECT_EQ(layout[0].shape, (std::vector<int>{3, 1, 3, 3}));
  EXPECT_EQ(layout[1].shape, (std::vector<int>{3}));
  EXPECT_EQ(layout[2].name, "layers.5.weight");
  EXPECT_EQ(layout[2].shape, (std::vector<int>{5, 9}));
  // Written out with every default (pairs as [h, w]) and read back: the same description.
  const Json json = description_to_json(d);
  const std::string text = json.dump();
  EXPECT_NE(text.find("\"input_shape\":[1,8,8]"), std::string::npos) << text;
  EXPECT_NE(text.find("\"stride\":[0,0]"), std::string::npos) << text;  // the pools' default
  EXPECT_EQ(description_to_json(parse(text)).dump(), text);
}

TEST(Descriptions, ImagesGiveTheirShapeToConvolutions) {
  const NetworkDescription d = description_from_json(parse_json(kConv), "m.json", 784, {1, 28, 28});
  EXPECT_EQ(d.spec.input_shape, (std::vector<int>{1, 28, 28}));
  EXPECT_EQ(d.spec.layer_shape(0), (std::vector<int>{2, 24, 24}));
  // A network of dense layers takes none: it reads the pixels as a flat vector.
  const NetworkDescription flat = description_from_json(
      parse_json(R"({"layers": [{"type": "dense", "size": 10}]})"), "m.json", 784, {1, 28, 28});
  EXPECT_TRUE(flat.spec.input_shape.empty());
  // A table has no shape to give: the message says what is missing and where.
  expect_throws([] { parse(kConv, 4); },
                {"test.json", "input_shape", "missing", "layer 0 (conv2d)", "4 flat features",
                 "[channels, height, width]"});
  expect_throws([] { parse(kConv); }, {"test.json: input_shape: missing", "layer 0 (conv2d)"});
  // A shape of its own must be the data's.
  expect_throws(
      [] {
        description_from_json(parse_json(R"({"input_shape": [1, 14, 56], "layers": [
            {"type": "conv2d", "out_channels": 2, "kernel": 5}, {"type": "flatten"},
            {"type": "dense", "size": 10}]})"),
                              "m.json", 784, {1, 28, 28});
      },
      {"m.json: input_shape", "[1, 14, 56]", "does not match", "[1, 28, 28]"});
  EXPECT_EQ(description_from_json(parse_json(R"({"input_shape": [1, 28, 28], "layers": [
                {"type": "conv2d", "out_channels": 2, "kernel": 5}, {"type": "flatten"},
                {"type": "dense", "size": 10}]})"),
                                  "m.json", 784, {1, 28, 28})
                .spec.input_shape,
            (std::vector<int>{1, 28, 28}));
}

TEST(Descriptions, TheExampleCnnsReadMnistImages) {
  // examples/cnn: each spiking CNN beside its non-spiking twin of the same shape (Fashion-MNIST's
  // pad their first convolution, keeping its maps 28x28).
  struct Example {
    const char* name;
    std::vector<int> pooled1, pooled2;  // the maps after each max pool
  } examples[] = {{"mnist.json", {16, 12, 12}, {64, 4, 4}},
                  {"mnist_spiking.json", {16, 12, 12}, {64, 4, 4}},
                  {"fashion.json", {16, 14, 14}, {64, 5, 5}},
                  {"fashion_spiking.json", {16, 14, 14}, {64, 5, 5}}};
  for (const Example& e : examples) {
    SCOPED_TRACE(e.name);
    const NetworkDescription d = read_description(
        std::string(NMSNN_SOURCE_DIR "/examples/cnn/") + e.name, 784, {1, 28, 28});
    EXPECT_EQ(d.spec.input_shape, (std::vector<int>{1, 28, 28}));
    EXPECT_EQ(d.spec.layer_shape(2), e.pooled1);
    EXPECT_EQ(d.spec.layer_shape(5), e.pooled2);
    EXPECT_EQ(d.spec.outputs(), 10);
    EXPECT_EQ(parameter_layout(d.spec)[2].shape, (std::vector<int>{64, 16, 5, 5}));
    EXPECT_EQ(d.encoding, Input::Kind::repeated);
  }
}

TEST(Descriptions, BadConvolutionalDescriptionsNameThePathAndTheProblem) {
  auto conv = [](const std::string& layer, const std::string& shape = "[1, 8, 8]") {
    return R"({"input_shape": )" + shape + R"(, "layers": [)" + layer +
           R"(, {"type": "flatten"}, {"type": "dense", "size": 2}]})";
  };
  struct Case {
    std::string text;
    std::vector<std::string> pieces;
  } cases[] = {
      {conv(R"({"type": "conv2d", "out_channels": 2, "kernel": [3]})"),
       {"layers[0].kernel", "expected a whole number or [height, width]", "an array"}},
      {conv(R"({"type": "conv2d", "out_channels": 2, "kernel": [3, 3, 3]})"),
       {"layers[0].kernel", "[height, width]"}},
      {conv(R"({"type": "conv2d", "out_channels": 2, "kernel": 0})"), {"layers[0].kernel", "0"}},
      {conv(R"({"type": "conv2d", "out_channels": 2, "kernel": [3, 0]})"),
       {"layers[0].kernel[1]", "0"}},
      {conv(R"({"type": "conv2d", "out_channels": 2, "kernel": "3x3"})"),
       {"layers[0].kernel", "'3x3'"}},
      {conv(R"({"type": "conv2d", "out_channels": 2})"), {"layers[0].kernel", "missing"}},
      {conv(R"({"type": "conv2d", "kernel": 3})"), {"layers[0].out_channels", "required"}},
      {conv(R"({"type": "conv2d", "out_channels": 2, "kernel": 3, "dilation": 2})"),
       {"layers[0].dilation", "unknown key", "out_channels, kernel, stride, padding"}},
      {conv(R"({"type": "conv2d", "out_channels": 2, "kernel": 3, "padding": -1})"),
       {"layers[0].padding", "-1"}},
      {conv(R"({"type": "conv2d", "out_channels": 2, "kernel": 3, "stride": 0})"),
       {"layers[0].stride", "0"}},
      {conv(R"({"type": "max_pool2d", "kernel": 2, "stride": -1})"), {"layers[0].stride", "-1"}},
      {conv(R"({"type": "avg_pool2d", "kernel": 2, "padding": 1})"),
       {"layers[0].padding", "unknown key"}},
      {conv(R"({"type": "max_pool2d"})"), {"layers[0].kernel", "missing"}},
      {conv(R"({"type": "flatten", "start_dim": 1})"), {"layers[0].start_dim", "unknown key"}},
      {conv(R"({"type": "lif", "size": 4})"), {"layers[0].size", "unknown key"}},
      {conv(R"({"type": "lif", "threshold": 0})"), {"layer 0 (lif)", "threshold must be > 0"}},
      {conv(R"({"type": "lif", "reset": "zero"})"), {"layers[0].reset", "'zero'"}},
      // Windows that do not fit their input.
      {conv(R"({"type": "conv2d", "out_channels": 2, "kernel": 9})"),
       {"layer 0 (conv2d)", "9x9 window", "does not fit its 8x8 input"}},
      {conv(R"({"type": "conv2d", "out_channels": 2, "kernel": [3, 12], "padding": 1})"),
       {"layer 0 (conv2d)", "3x12 window with padding 1x1", "8x8"}},
      {conv(R"({"type": "max_pool2d", "kernel": [2, 9]})"),
       {"layer 0 (max_pool2d)", "2x9 window", "8x8"}},
      // Dense layers need a flat input, convolutions feature maps.
      {R"({"input_shape": [1, 8, 8], "layers": [{"type": "conv2d", "out_channels": 2, "kernel": 3},
          {"type": "dense", "size": 2}]})",
       {"layer 1 (dense)", "receives feature maps [2, 6, 6]", "put a flatten layer before it"}},
      {R"({"input_shape": [1, 8, 8], "layers": [{"type": "conv2d", "out_channels": 2, "kernel": 3},
          {"type": "spiking", "size": 2}]})",
       {"layer 1 (spiking)", "put a flatten layer before it"}},
      {R"({"input_shape": [1, 8, 8], "layers": [{"type": "flatten"},
          {"type": "max_pool2d", "kernel": 2}, {"type": "dense", "size": 2}]})",
       {"layer 1 (max_pool2d)", "needs [channels, height, width] feature maps", "[64]"}},
      // input_shape itself.
      {conv(R"({"type": "flatten"})", "[1, 28]"), {"input_shape", "[channels, height, width]"}},
      {conv(R"({"type": "flatten"})", "[1, 0, 8]"), {"input_shape[1]", "0"}},
      {conv(R"({"type": "flatten"})", "784"), {"input_shape", "[channels, height, width]"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    expect_throws([&] { parse(c.text); }, c.pieces);
  }
  // input_shape and inputs must agree.
  expect_throws([&] { parse(R"({"inputs": 63, "input_shape": [1, 8, 8], "layers": [
                             {"type": "flatten"}, {"type": "dense", "size": 2}]})"); },
                {"input_shape", "64 features"});
}

// ---- models --------------------------------------------------------------------------------
TEST(Models, TrainSaveLoadPredictIdentically) {
  const Dataset all = iris();
  const Split split = split_indices(all.count, 0.2, 0.0, 7, &all.labels);
  const Dataset train = subset(all, split.train), test = subset(all, split.test);
  NetworkDescription d;
  d.spec = NetworkSpec::spiking(4, {16}, 3, 16);
  Model model = Model::make(TaskKind::classification, d, {Engine::cpu, 3});
  TrainOptions opts;
  opts.epochs = 15;
  opts.batch_size = 16;
  opts.optimizer = Adam{3e-3};
  model.fit(train, opts);
  EXPECT_EQ(model.history.size(), 15u);
  EXPECT_EQ(model.class_names, (std::vector<std::string>{"0", "1", "2"}));
  // The scaler saw only the training rows.
  Standardizer expected;
  expected.fit(train);
  EXPECT_EQ(model.feature_scaler.mean, expected.mean);

  const Predictions before = model.predict(test);
  EXPECT_EQ(model.predict(test).values, before.values);  // predictions do not depend on history
  const ModelEvaluation e = model.evaluate(test);
  EXPECT_GT(e.classes.accuracy, 0.6);
  const std::string path = temp_path("model_roundtrip.nmsnn");
  model.save(path);
  Model loaded = Model::load(path);
  EXPECT_EQ(loaded.task(), TaskKind::classification);
  EXPECT_EQ(loaded.feature_names, model.feature_names);
  EXPECT_EQ(loaded.history.size(), 15u);
  const Predictions after = loaded.predict(test);
  EXPECT_EQ(after.values, before.values);
  EXPECT_EQ(after.classes, before.classes);
  // Probabilities sum to 1 per row.
  for (int s = 0; s < after.count; ++s) {
    double sum = 0;
    for (int c = 0; c < 3; ++c) sum += after.values[s * 3 + c];
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
}

TEST(Models, APredictionDoesNotDependOnTheBatchOrTheRowsBesideIt) {
  const Dataset all = iris();
  NetworkDescription d;
  d.spec = NetworkSpec::spiking(4, {8}, 3, 12);
  Model model = Model::make(TaskKind::classification, d, {Engine::cpu, 3, 2});
  TrainOptions opts;
  opts.epochs = 2;
  model.fit(all, opts);
  const Predictions whole = model.predict(all, 64);
  // Reversed, in batches of 7, and one row alone: row for row the same probabilities.
  std::vector<int> reversed(all.count);
  for (int s = 0; s < all.count; ++s) reversed[s] = all.count - 1 - s;
  const Predictions backwards = model.predict(subset(all, reversed), 7);
  for (int s = 0; s < all.count; ++s)
    for (int c = 0; c < 3; ++c)
      ASSERT_EQ(whole.values[s * 3 + c], backwards.values[(all.count - 1 - s) * 3 + c]) << "row " << s;
  const Predictions alone = model.predict(subset(all, {42}), 1);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(alone.values[c], whole.values[42 * 3 + c]);
}

TEST(Models, RegressionPredictsInOriginalUnits) {
  CsvOptions csv;
  csv.target = "house_price";
  csv.task = TaskKind::regression;
  const Dataset all = load_csv(NMSNN_SOURCE_DIR "/data/csv/house_price_data.csv", csv);
  NetworkDescription d;
  d.spec = NetworkSpec::spiking(3, {32}, 1, 16);
  d.spec.layers.back() = Dense{1};
  Model model = Model::make(TaskKind::regression, d, {Engine::cpu, 1});
  TrainOptions opts;
  opts.epochs = 40;
  opts.optimizer = Adam{3e-3};
  model.fit(all, opts);
  const ModelEvaluation e = model.evaluate(all);
  double mean_pred = 0, mean_truth = 0;
  for (int s = 0; s < all.count; ++s) {
    mean_pred += e.predictions.values[s] / all.count;
    mean_truth += all.targets[s] / all.count;
  }
  EXPECT_NEAR(mean_pred, mean_truth, 0.2 * mean_truth);  // prices, not standardised values
  EXPECT_GT(e.regression.r2, 0.3);
  const std::string path = temp_path("model_regression.nmsnn");
  model.save(path);
  EXPECT_EQ(Model::load(path).predict(all).values, e.predictions.values);
}

TEST(Models, CorruptTruncatedAndForeignFilesAreRejected) {
  NetworkDescription d;
  d.spec = NetworkSpec::spiking(4, {5}, 3, 4);
  Model model = Model::make(TaskKind::classification, d);
  const std::string good = temp_path("model_good.nmsnn");
  model.save(good);
  std::string bytes;
  {
    std::ifstream in(good, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    bytes = s.str();
  }
  auto write = [](const std::string& path, const std::string& data) {
    std::ofstream(path, std::ios::binary) << data;
    return path;
  };
  expect_throws([&] { Model::load(temp_path("no_such_model.nmsnn")); }, {"no_such_model.nmsnn"});
  expect_throws([&] { Model::load(write(temp_path("model_truncated.nmsnn"), bytes.substr(0, bytes.size() - 7))); },
              {"model_truncated.nmsnn"});
  expect_throws([&] { Model::load(write(temp_path("model_short.nmsnn"), bytes.substr(0, 5))); },
              {"model_short.nmsnn", "not a safetensors file"});
  std::string corrupt = bytes;
  corrupt[12] = '#';  // inside the JSON header
  expect_throws([&] { Model::load(write(temp_path("model_corrupt.nmsnn"), corrupt)); },
              {"model_corrupt.nmsnn"});
  expect_throws([&] { Model::load(write(temp_path("model_text.nmsnn"), "hello, I am a text file\n")); },
              {"not a safetensors file"});
  // A valid safetensors file that is not an nmsnn model.
  write_safetensors(temp_path("foreign.safetensors"), {{"w", {2}, {1.0f, 2.0f}}}, {{"format", "pt"}});
  expect_throws([&] { Model::load(temp_path("foreign.safetensors")); }, {"not an nmsnn model file"});
  // A model file whose tensor no longer fits the network it describes.
  write_safetensors(temp_path("model_mismatch.nmsnn"),
                    {{"layers.0.weight", {5, 3}, std::vector<float>(15, 0.0f)},
                     {"layers.0.bias", {5}, std::vector<float>(5, 0.0f)},
                     {"layers.1.weight", {3, 5}, std::vector<float>(15, 0.0f)},
                     {"layers.1.bias", {3}, std::vector<float>(3, 0.0f)}},
                    {{"format", "nmsnn-model"}, {"format_version", "1"}, {"task", "multiclass"},
                     {"network", description_to_json(d).dump()}});
  expect_throws([&] { Model::load(temp_path("model_mismatch.nmsnn")); },
              {"layers.0.weight", "wrong shape"});
  EXPECT_NO_THROW(Model::load(good));
}

// ---- model files checked on load -----------------------------------------------------------
// A valid model file, then one copy per defect, each rewritten through the safetensors API: every
// message must name the file and the key (or tensor) at fault.
class ModelFileChecks : public ::testing::Test {
 protected:
  void SetUp() override {
    NetworkDescription d;
    d.spec = NetworkSpec::spiking(4, {5}, 3, 4);
    Model model = Model::make(TaskKind::classification, d, {Engine::cpu, 7});
    model.feature_scaler.mean = {0.5f, 1.0f, -2.0f, 0.0f};
    model.feature_scaler.scale = {1.0f, 2.0f, 0.5f, 1.0f};
    model.feature_names = {"a", "b", "c", "d"};
    model.class_names = {"x", "y", "z"};
    EpochRecord r;
    r.epoch = 1;
    r.lr = 0.01;
    model.history.push_back(r);
    model.save(good);
  }

  // The good file with `change` applied, written as `name`; returns its path.
  std::string variant(const std::string& name, const std::function<void(SafetensorsFile&)>& change) {
    SafetensorsFile f = read_safetensors(good);
    change(f);
    const std::string path = temp_path(name);
    write_safetensors(path, f.tensors, f.metadata);
    return path;
  }
  std::string with_meta(const std::string& name, const std::string& key, const std::string& value) {
    return variant(name, [&](SafetensorsFile& f) { f.metadata[key] = value; });
  }
  static NamedTensor& tensor(SafetensorsFile& f, const std::string& name) {
    for (NamedTensor& t : f.tensors)
      if (t.name == name) return t;
    throw std::runtime_error("test: no tensor " + name);
  }

  const std::string good = temp_path("model_checks_good.nmsnn");
};

TEST_F(ModelFileChecks, TheGoodFileLoadsWithEverything) {
  const Model m = Model::load(good);
  EXPECT_EQ(m.network().seed(), 7u);
  EXPECT_EQ(m.feature_scaler.scale, (std::vector<float>{1.0f, 2.0f, 0.5f, 1.0f}));
  EXPECT_EQ(m.feature_names, (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(m.class_names, (std::vector<std::string>{"x", "y", "z"}));
  ASSERT_EQ(m.history.size(), 1u);
  EXPECT_EQ(m.history[0].epoch, 1);
  // The largest seed there is still reads back.
  EXPECT_EQ(Model::load(with_meta("model_seed_max.nmsnn", "seed", "18446744073709551615"))
                .network()
                .seed(),
            18446744073709551615ull);
}

TEST_F(ModelFileChecks, BadMetadataValuesNameTheFileAndTheKey) {
  expect_throws([&] { Model::load(with_meta("model_seed.nmsnn", "seed", "x")); },
                {"/model_seed.nmsnn': metadata 'seed': expected a whole number in [0, 2^64-1], "
                 "got 'x'"});
  for (const char* seed : {"-1", "18446744073709551616", "0x10", " 7", "7.5", ""})
    expect_throws([&] { Model::load(with_meta("model_seed.nmsnn", "seed", seed)); },
                  {"model_seed.nmsnn", "metadata 'seed'", "got '"});
  expect_throws([&] { Model::load(with_meta("model_version.nmsnn", "format_version", "2")); },
                {"model_version.nmsnn", "metadata 'format_version'", "'2'", "not supported"});
  expect_throws([&] { Model::load(with_meta("model_task.nmsnn", "task", "dance\n")); },
                {"model_task.nmsnn", "metadata 'task'", "got 'dance\\n'"});
  expect_throws([&] { Model::load(with_meta("model_net.nmsnn", "network", "{")); },
                {"model_net.nmsnn", "metadata 'network'", "invalid JSON"});
  expect_throws([&] {
    Model::load(with_meta("model_net.nmsnn", "network",
                          R"({"inputs": 4, "layers": [{"type": "spiking", "size": 2147483648}]})"));
  }, {"model_net.nmsnn", "metadata 'network'", "layers[0].size", "[1, 16777216]", "2147483648"});
  expect_throws([&] {
    Model::load(with_meta("model_net.nmsnn", "network",
                          R"({"inputs": 4, "time_steps": 1e10, "layers": [{"type": "dense", "size": 3}]})"));
  }, {"model_net.nmsnn", "metadata 'network'", "time_steps", "10000000000"});
  expect_throws([&] {
    Model::load(variant("model_nonet.nmsnn", [](SafetensorsFile& f) { f.metadata.erase("network"); }));
  }, {"model_nonet.nmsnn", "lacks 'network'"});
  expect_throws([&] { Model::load(with_meta("model_std.nmsnn", "standardize_features", "yes")); },
                {"model_std.nmsnn", "metadata 'standardize_features'", "'yes'"});
  expect_throws([&] { Model::load(with_meta("model_pixel.nmsnn", "pixel_scale", "bogus")); },
                {"model_pixel.nmsnn", "metadata 'pixel_scale'", "'bogus'"});
  expect_throws([&] { Model::load(with_meta("model_names.nmsnn", "feature_names", R"({"a": 1})")); },
                {"model_names.nmsnn", "metadata 'feature_names'",
                 "expected a JSON array of strings, got an object"});
  expect_throws([&] { Model::load(with_meta("model_names.nmsnn", "class_names", "[\"x\", 1]")); },
                {"model_names.nmsnn", "metadata 'class_names'", "item 1 is a number"});
  expect_throws([&] { Model::load(with_meta("model_names.nmsnn", "target_names", "nope")); },
                {"model_names.nmsnn", "metadata 'target_names'", "invalid JSON"});
  expect_throws([&] { Model::load(with_meta("model_names.nmsnn", "feature_names", "[\"a\"]")); },
                {"model_names.nmsnn", "metadata 'feature_names'", "1 features", "4 inputs"});
  expect_throws([&] { Model::load(with_meta("model_history.nmsnn", "history", "{}")); },
                {"model_history.nmsnn", "metadata 'history'", "expected a JSON array"});
  expect_throws([&] {
    Model::load(with_meta("model_history.nmsnn", "history",
                          R"([{"epoch": "one", "lr": 1, "train_loss": 1, "train_accuracy": 1, "seconds": 1}])"));
  }, {"model_history.nmsnn", "metadata 'history'", "entry 0", "'epoch'", "expected a number"});
  expect_throws([&] {
    Model::load(with_meta("model_history.nmsnn", "history",
                          R"([{"epoch": 1e12, "lr": 1, "train_loss": 1, "train_accuracy": 1, "seconds": 1}])"));
  }, {"model_history.nmsnn", "metadata 'history'", "entry 0", "'epoch'", "1000000000000"});
}

TEST_F(ModelFileChecks, BadTensorsNameTheFileAndTheTensor) {
  expect_throws([&] {
    Model::load(variant("model_nan.nmsnn", [](SafetensorsFile& f) {
      tensor(f, "layers.0.weight").data[17] = std::nanf("");
    }));
  }, {"model_nan.nmsnn': tensor 'layers.0.weight' has a non-finite value (nan) at index 17"});
  expect_throws([&] {
    Model::load(variant("model_inf.nmsnn", [](SafetensorsFile& f) {
      tensor(f, "layers.1.bias").data[2] = -INFINITY;
    }));
  }, {"model_inf.nmsnn': tensor 'layers.1.bias' has a non-finite value (-inf) at index 2"});
  expect_throws([&] {
    Model::load(variant("model_scale.nmsnn", [](SafetensorsFile& f) {
      tensor(f, "preprocess.feature_scale").data[1] = 0.0f;
    }));
  }, {"model_scale.nmsnn", "tensor 'preprocess.feature_scale'", "scale 0 at index 1", "> 0"});
  expect_throws([&] {
    Model::load(variant("model_scale.nmsnn", [](SafetensorsFile& f) {
      tensor(f, "preprocess.feature_scale").data[3] = -1.0f;
    }));
  }, {"model_scale.nmsnn", "tensor 'preprocess.feature_scale'", "scale -1 at index 3"});
  expect_throws([&] {
    Model::load(variant("model_mean.nmsnn", [](SafetensorsFile& f) {
      tensor(f, "preprocess.feature_mean").data[0] = INFINITY;
    }));
  }, {"model_mean.nmsnn", "tensor 'preprocess.feature_mean'", "non-finite value (inf) at index 0"});
  expect_throws([&] {
    Model::load(variant("model_meanshape.nmsnn", [](SafetensorsFile& f) {
      NamedTensor& t = tensor(f, "preprocess.feature_mean");
      t.shape = {5};
      t.data.push_back(0.0f);
    }));
  }, {"model_meanshape.nmsnn", "tensor 'preprocess.feature_mean'", "shape [5], expected [4]"});
  expect_throws([&] {
    Model::load(variant("model_halfscaler.nmsnn", [](SafetensorsFile& f) {
      f.tensors.erase(f.tensors.begin() + (&tensor(f, "preprocess.feature_scale") - f.tensors.data()));
    }));
  }, {"model_halfscaler.nmsnn", "only one of", "preprocess.feature_scale"});
  expect_throws([&] {
    Model::load(variant("model_noweight.nmsnn", [](SafetensorsFile& f) {
      f.tensors.erase(f.tensors.begin());  // layers.0.weight
    }));
  }, {"model_noweight.nmsnn", "no tensor 'layers.0.weight'"});
  expect_throws([&] {
    Model::load(variant("model_shape.nmsnn", [](SafetensorsFile& f) {
      tensor(f, "layers.0.weight").shape = {4, 5};
    }));
  }, {"model_shape.nmsnn", "tensor 'layers.0.weight'", "wrong shape", "[4, 5], expected [5, 4]"});
}

TEST_F(ModelFileChecks, ANetworkTooLargeToHoldIsRefusedBeforeAllocating) {
  // Valid sizes, but 2^48 weights (4 PiB with gradients and optimiser state): no machine holds
  // that, and the error says so instead of std::bad_alloc.
  const std::string path = with_meta(
      "model_huge.nmsnn", "network",
      R"({"inputs": 4, "layers": [{"type": "dense", "size": 16777216},
                                  {"type": "dense", "size": 16777216}]})");
  expect_throws([&] { Model::load(path); },
                {"model_huge.nmsnn", "storing a network of 2 layers (4-16777216-16777216)",
                 "needs 4.0 PiB", "more than the memory limit"});
}

// ---- the model file as bytes, and the logits behind predictions ------------------------------
TEST(Models, ToBytesIsTheFileAndFromBytesPredictsIdentically) {
  Dataset all = iris();
  for (int& label : all.labels) label = label == 0 ? 1 : 0;  // setosa or not: a binary task
  all.classes = 2;
  all.class_names = {"other", "setosa"};
  Model model = Model::make(TaskKind::binary,
                            predictive_network(TaskKind::binary, ModelKind::snn, 4, 1, {12}, 10),
                            {Engine::cpu, 5});
  TrainOptions opts;
  opts.epochs = 3;
  opts.batch_size = 16;
  model.fit(all, opts);

  const std::string bytes = model.to_bytes();
  const std::string path = temp_path("model_bytes.nmsnn");
  model.save(path);
  EXPECT_EQ(read_file(path), bytes);  // save writes exactly these bytes

  Model back = Model::from_bytes(bytes, "pickled model");
  EXPECT_EQ(back.task(), TaskKind::binary);
  EXPECT_EQ(back.class_names, model.class_names);
  EXPECT_EQ(back.feature_names, model.feature_names);
  EXPECT_EQ(back.feature_scaler.mean, model.feature_scaler.mean);
  EXPECT_EQ(back.history.size(), 3u);
  EXPECT_EQ(back.network().seed(), 5u);
  EXPECT_EQ(description_to_json(back.description()).dump(),
            description_to_json(model.description()).dump());
  const Predictions a = model.predict(all), b = back.predict(all);
  EXPECT_EQ(b.values, a.values);
  EXPECT_EQ(b.classes, a.classes);
  EXPECT_EQ(b.logits, a.logits);
  EXPECT_EQ(back.to_bytes(), bytes);  // and back to the same bytes

  // Bad bytes name their source, as a bad file names its path.
  expect_throws([&] { Model::from_bytes(bytes.substr(0, 5), "pickled model"); },
                {"'pickled model'", "not a safetensors file"});
  expect_throws([&] { Model::from_bytes(bytes.substr(0, bytes.size() - 4), "pickled model"); },
                {"'pickled model'"});
}

TEST(Models, PredictionsCarryTheNetworksLogits) {
  const Dataset all = iris();
  Model multi = Model::make(
      TaskKind::classification,
      predictive_network(TaskKind::classification, ModelKind::snn, 4, 3, {8}, 10), {Engine::cpu, 2});
  TrainOptions opts;
  opts.epochs = 2;
  multi.fit(all, opts);
  const Predictions p = multi.predict(all);
  ASSERT_EQ(p.logits.size(), size_t(all.count) * 3);
  // The probabilities are the softmax of the logits; the class their argmax.
  for (int s = 0; s < all.count; ++s) {
    const float* z = &p.logits[size_t(s) * 3];
    double sum = 0;
    for (int c = 0; c < 3; ++c) sum += std::exp(double(z[c]));
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(p.values[s * 3 + c], std::exp(double(z[c])) / sum, 1e-6);
    EXPECT_EQ(p.classes[s], int(std::max_element(z, z + 3) - z));
  }
  // They are the network's outputs: the evaluation's loss is computed from the same numbers.
  EXPECT_EQ(multi.evaluate(all).predictions.logits, p.logits);

  // Binary: one logit per row, finite where the probability rounds to exactly 0 or 1.
  Dataset two = all;
  for (int& label : two.labels) label = label == 0 ? 1 : 0;
  two.classes = 2;
  two.class_names = {"0", "1"};
  Model binary = Model::make(TaskKind::binary,
                             predictive_network(TaskKind::binary, ModelKind::snn, 4, 1, {8}, 10),
                             {Engine::cpu, 2});
  binary.fit(two, opts);
  for (const char* name : {"layers.1.weight", "layers.1.bias"}) {
    std::vector<float> w = binary.network().parameter(name);
    for (float& v : w) v *= 1000;  // logits far beyond float's sigmoid range
    binary.network().set_parameter(name, w);
  }
  const Predictions q = binary.predict(two);
  ASSERT_EQ(q.logits.size(), size_t(two.count));
  int saturated = 0;
  for (int s = 0; s < two.count; ++s) {
    EXPECT_TRUE(std::isfinite(q.logits[s])) << "row " << s;
    EXPECT_EQ(q.classes[s], q.logits[s] > 0 ? 1 : 0);
    saturated += q.values[s] == 0.0f || q.values[s] == 1.0f;
  }
  EXPECT_GT(saturated, 0);  // the case the logits are for

  // Regression: the logits are the standardised targets, the values those in original units.
  CsvOptions csv;
  csv.target = "house_price";
  csv.task = TaskKind::regression;
  const Dataset houses = load_csv(NMSNN_SOURCE_DIR "/data/csv/house_price_data.csv", csv);
  Model reg = Model::make(TaskKind::regression,
                          predictive_network(TaskKind::regression, ModelKind::mlp, 3, 1, {8}, 1),
                          {Engine::cpu, 2});
  reg.fit(houses, opts);
  const Predictions r = reg.predict(houses);
  std::vector<float> units = r.logits;
  reg.target_scaler.inverse_transform(units);
  EXPECT_EQ(units, r.values);
  EXPECT_NE(r.logits, r.values);
}

TEST(Models, ImagesMustHaveTheNetworksInputShape) {
  // A 1x4x4 image network; data of 16 features, flat, as 4x4 images and as 2x8 images.
  const NetworkDescription d = parse(R"({"input_shape": [1, 4, 4], "time_steps": 2,
      "encoding": "repeated", "layers": [{"type": "conv2d", "out_channels": 2, "kernel": 3},
      {"type": "flatten"}, {"type": "dense", "size": 2}]})");
  Dataset data;
  data.count = 4;
  data.features = 16;
  data.classes = 2;
  data.labels = {0, 1, 0, 1};
  for (int i = 0; i < 64; ++i) data.x.push_back(float(i % 5) / 4);
  Model model = Model::make(TaskKind::classification, d, {Engine::cpu, 1});
  TrainOptions opts;
  opts.epochs = 1;
  opts.batch_size = 2;
  model.fit(data, opts);  // rows without a shape: taken as the network's
  data.shape = {1, 4, 4};
  model.fit(data, opts);
  EXPECT_EQ(model.predict(data).count, 4);
  data.shape = {1, 2, 8};
  expect_throws([&] { model.fit(data, opts); },
                {"training data holds images of shape [1, 2, 8]", "network reads [1, 4, 4]"});
  expect_throws([&] { model.predict(data); }, {"the data holds images of shape [1, 2, 8]"});
  expect_throws([&] { model.evaluate(data); }, {"the data holds images of shape [1, 2, 8]"});
}
