// training/presets.cpp — the ready-made predictive networks and training recipes (presets.hpp).
#include "nmsnn/presets.hpp"

#include <variant>

#include "nmsnn/error.hpp"

namespace nmsnn {

const char* to_string(ModelKind kind) { return kind == ModelKind::mlp ? "mlp" : "snn"; }

ModelKind parse_model_kind(const std::string& name) {
  if (name == "snn") return ModelKind::snn;
  if (name == "mlp") return ModelKind::mlp;
  detail::fail("unknown model ", detail::quote(name), " (expected snn or mlp)");
}

NetworkDescription predictive_network(TaskKind task, ModelKind kind, int inputs, int outputs,
                                      const std::vector<int>& hidden, int time_steps,
                                      const SpikingLayer& neuron) {
  NetworkDescription desc;
  if (kind == ModelKind::mlp) {
    desc.spec = NetworkSpec::mlp(inputs, hidden, outputs);
    desc.encoding = Input::Kind::repeated;
  } else {
    desc.spec = NetworkSpec::spiking(inputs, hidden, outputs, time_steps);
    for (auto& layer : desc.spec.layers) {
      SpikingLayer& s = std::get<SpikingLayer>(layer);
      const int size = s.size;
      s = neuron;
      s.size = size;
    }
    // The seed's readout, an output neuron's state, is bounded above by its threshold: binary
    // and regression models read their one output linearly from the last spiking layer's spikes.
    if (task != TaskKind::classification) desc.spec.layers.back() = Dense{outputs};
  }
  desc.spec.validate();
  return desc;
}

TrainingPreset training_preset(const std::string& name) {
  TrainingPreset p;
  p.name = name;
  if (name == "default") {
    p.input_scale = "unit";
    p.epochs = 10, p.batch_size = 100, p.time_steps = 128, p.hidden = {100};
    p.optimizer = "adam", p.lr = {2e-3}, p.lr_step_epochs = 3, p.lr_gamma = 0.5;
  } else if (name == "seed") {
    p.input_scale = "centered";
    p.epochs = 3, p.batch_size = 1000, p.time_steps = 128, p.hidden = {100};
    p.optimizer = "sgd", p.lr = {0.1, 0.05, 0.01}, p.momentum = 0.5;
    p.fresh_optimizer_each_epoch = true;
  } else if (name == "tabular") {
    p.input_scale = "unit";  // unused: CSV features are standardised
    p.epochs = 100, p.batch_size = 32, p.time_steps = 64, p.hidden = {100};
    p.optimizer = "adam", p.lr = {1e-3};
  } else {
    detail::fail("unknown preset ", detail::quote(name), " (expected default, seed or tabular)");
  }
  return p;
}

std::vector<std::string> training_preset_names() { return {"default", "seed", "tabular"}; }

}  // namespace nmsnn
