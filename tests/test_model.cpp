// test_model.cpp — predictive models: JSON network descriptions, training with preprocessing,
// save/load round trips that predict identically, and rejected model files.
#include <gtest/gtest.h>

#include "throws_with.hpp"

#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
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
