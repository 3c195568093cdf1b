// test_presets.cpp — the library's ready-made predictive networks and training presets
// (presets.hpp), which the command line and the Python estimators both build from.
#include <gtest/gtest.h>

#include "throws_with.hpp"

#include <string>
#include <variant>
#include <vector>

#include "nmsnn/nmsnn.hpp"

namespace {

using namespace nmsnn;

SpikingLayer custom_neuron() {
  SpikingLayer n;
  n.size = 999;  // ignored: each layer keeps its own size
  n.decay = 0.7f;
  n.threshold = 0.5f;
  n.penalty = 1.0f;
  n.reset = ResetRule::subtract;
  n.delay = false;
  return n;
}

void expect_neuron(const LayerSpec& layer, int size, const SpikingLayer& n) {
  ASSERT_TRUE(std::holds_alternative<SpikingLayer>(layer));
  const SpikingLayer& s = std::get<SpikingLayer>(layer);
  EXPECT_EQ(s.size, size);
  EXPECT_EQ(s.decay, n.decay);
  EXPECT_EQ(s.threshold, n.threshold);
  EXPECT_EQ(s.penalty, n.penalty);
  EXPECT_EQ(s.reset, n.reset);
  EXPECT_EQ(s.delay, n.delay);
}

}  // namespace

TEST(Presets, MulticlassSpikingNetworkIsTheSeedsWithTheNeuronSettings) {
  const SpikingLayer n = custom_neuron();
  const NetworkDescription d =
      predictive_network(TaskKind::classification, ModelKind::snn, 4, 3, {16, 8}, 20, n);
  EXPECT_EQ(d.spec.inputs, 4);
  EXPECT_EQ(d.spec.time_steps, 20);
  EXPECT_EQ(d.spec.outputs(), 3);
  EXPECT_EQ(d.encoding, Input::Kind::noisy);
  ASSERT_EQ(d.spec.layers.size(), 3u);
  expect_neuron(d.spec.layers[0], 16, n);
  expect_neuron(d.spec.layers[1], 8, n);
  expect_neuron(d.spec.layers[2], 3, n);  // the seed's readout: the output layer's state
  EXPECT_EQ(d.spec.readout.reduce, Reduce::mean);
  EXPECT_EQ(d.spec.readout.begin_eval, 0);
}

TEST(Presets, DefaultNeuronIsTheSeeds) {
  const NetworkDescription d =
      predictive_network(TaskKind::classification, ModelKind::snn, 784, 10, {100}, 128);
  const NetworkSpec seed = NetworkSpec::seed_mnist();
  EXPECT_EQ(description_to_json(d).dump(),
            description_to_json(NetworkDescription{seed, Input::Kind::noisy}).dump());
}

TEST(Presets, BinaryAndRegressionSpikingNetworksReadADenseOutput) {
  const SpikingLayer n = custom_neuron();
  for (TaskKind task : {TaskKind::binary, TaskKind::regression}) {
    const int outputs = task == TaskKind::binary ? 1 : 2;
    const NetworkDescription d = predictive_network(task, ModelKind::snn, 5, outputs, {12}, 16, n);
    ASSERT_EQ(d.spec.layers.size(), 2u) << to_string(task);
    expect_neuron(d.spec.layers[0], 12, n);
    ASSERT_TRUE(std::holds_alternative<Dense>(d.spec.layers[1])) << to_string(task);
    EXPECT_EQ(std::get<Dense>(d.spec.layers[1]).size, outputs);
    EXPECT_EQ(d.spec.outputs(), outputs);
    EXPECT_EQ(d.encoding, Input::Kind::noisy);
  }
}

TEST(Presets, MlpIsDenseReluWithRepeatedInputsForEveryTask) {
  for (TaskKind task : {TaskKind::classification, TaskKind::binary, TaskKind::regression}) {
    const int outputs = task == TaskKind::classification ? 3 : 1;
    const NetworkDescription d =
        predictive_network(task, ModelKind::mlp, 4, outputs, {10, 6}, 64, custom_neuron());
    EXPECT_EQ(description_to_json(d).dump(),
              description_to_json(
                  NetworkDescription{NetworkSpec::mlp(4, {10, 6}, outputs), Input::Kind::repeated})
                  .dump())
        << to_string(task);
  }
}

TEST(Presets, BadSizesAndSettingsAreRefusedNamingTheProblem) {
  expect_throws([] { predictive_network(TaskKind::classification, ModelKind::snn, 4, 3, {0}, 8); },
                {"layer 0", "size must be > 0"});
  expect_throws([] { predictive_network(TaskKind::classification, ModelKind::snn, 4, 3, {8}, 0); },
                {"time_steps (T) must be >= 1"});
  SpikingLayer bad;
  bad.threshold = 0;
  expect_throws(
      [&] { predictive_network(TaskKind::classification, ModelKind::snn, 4, 3, {8}, 8, bad); },
      {"threshold must be > 0"});
}

TEST(Presets, ModelKindNames) {
  EXPECT_EQ(parse_model_kind("snn"), ModelKind::snn);
  EXPECT_EQ(parse_model_kind("mlp"), ModelKind::mlp);
  EXPECT_STREQ(to_string(ModelKind::snn), "snn");
  EXPECT_STREQ(to_string(ModelKind::mlp), "mlp");
  expect_throws([] { parse_model_kind("cnn"); }, {"unknown model 'cnn'", "snn or mlp"});
}

TEST(Presets, TrainingPresetsHoldTheDocumentedRecipes) {
  const TrainingPreset d = training_preset("default");
  EXPECT_EQ(d.name, "default");
  EXPECT_EQ(d.input_scale, "unit");
  EXPECT_EQ(d.epochs, 10);
  EXPECT_EQ(d.batch_size, 100);
  EXPECT_EQ(d.time_steps, 128);
  EXPECT_EQ(d.hidden, std::vector<int>{100});
  EXPECT_EQ(d.optimizer, "adam");
  EXPECT_EQ(d.lr, std::vector<double>{2e-3});
  EXPECT_EQ(d.lr_step_epochs, 3);
  EXPECT_EQ(d.lr_gamma, 0.5);
  EXPECT_FALSE(d.fresh_optimizer_each_epoch);

  const TrainingPreset s = training_preset("seed");
  EXPECT_EQ(s.input_scale, "centered");
  EXPECT_EQ(s.epochs, 3);
  EXPECT_EQ(s.batch_size, 1000);
  EXPECT_EQ(s.optimizer, "sgd");
  EXPECT_EQ(s.lr, (std::vector<double>{0.1, 0.05, 0.01}));
  EXPECT_EQ(s.lr_step_epochs, 0);
  EXPECT_EQ(s.momentum, 0.5);
  EXPECT_TRUE(s.fresh_optimizer_each_epoch);

  const TrainingPreset t = training_preset("tabular");
  EXPECT_EQ(t.epochs, 100);
  EXPECT_EQ(t.batch_size, 32);
  EXPECT_EQ(t.time_steps, 64);
  EXPECT_EQ(t.hidden, std::vector<int>{100});
  EXPECT_EQ(t.optimizer, "adam");
  EXPECT_EQ(t.lr, std::vector<double>{1e-3});
  EXPECT_EQ(t.lr_step_epochs, 0);
  EXPECT_EQ(t.lr_gamma, 1.0);
  EXPECT_EQ(t.momentum, 0.0);

  EXPECT_EQ(training_preset_names(), (std::vector<std::string>{"default", "seed", "tabular"}));
  for (const std::string& name : training_preset_names()) EXPECT_EQ(training_preset(name).name, name);
  expect_throws([] { training_preset("fast"); },
                {"unknown preset 'fast'", "default, seed or tabular"});
}
