// nmsnn/presets.hpp — the library's ready-made predictive models and training recipes: the
// networks `nmsnn train --model snn|mlp` builds for a task, and the settings of its presets.
// The command line and the Python estimators both take them from here, so they cannot drift.
//
//   SpikingLayer neuron;                 // the seed's neuron settings; change any of them
//   NetworkDescription d = nmsnn::predictive_network(TaskKind::binary, ModelKind::snn,
//                                                    /*inputs=*/30, /*outputs=*/1, {100}, 64, neuron);
//   TrainingPreset p = nmsnn::training_preset("tabular");  // T=64, 100 hidden, Adam 1e-3, ...
#pragma once

#include <string>
#include <vector>

#include "nmsnn/spec.hpp"
#include "nmsnn/spec_json.hpp"
#include "nmsnn/task.hpp"

namespace nmsnn {

// snn: the seed's spiking network; mlp: its non-spiking baseline (Dense + ReLU, same sizes).
enum class ModelKind { snn, mlp };

const char* to_string(ModelKind kind);
// "snn" or "mlp"; anything else throws "unknown model 'cnn' (expected snn or mlp)".
ModelKind parse_model_kind(const std::string& name);

// The network of `kind` for `task`, with `inputs` features and `outputs` outputs (the classes of
// a multiclass task, 1 for binary, the targets of a regression):
//   snn: `hidden` spiking layers and a spiking output layer over `time_steps` steps, every
//        spiking layer with `neuron`'s settings (its size ignored), noisy encoding. Multiclass
//        models read their logits from the output layer's state, as the seed does; binary and
//        regression models read their one output linearly from the last spiking layer's spikes
//        (a Dense output layer): an output neuron's state is bounded above by its threshold (it
//        resets when it fires), which cannot express a confident logit or a large value.
//   mlp: Dense + ReLU per hidden layer and a Dense output, inputs repeated (time_steps unused).
// The description is validated; bad sizes or neuron settings throw naming the problem.
NetworkDescription predictive_network(TaskKind task, ModelKind kind, int inputs, int outputs,
                                      const std::vector<int>& hidden, int time_steps,
                                      const SpikingLayer& neuron = {});

// A named training recipe: everything `nmsnn train --preset NAME` sets before its flags.
struct TrainingPreset {
  std::string name;
  std::string input_scale;   // images: "unit" (x/255) or "centered" (x/255 - 0.5)
  int epochs = 0;
  int batch_size = 0;
  int time_steps = 0;
  std::vector<int> hidden;   // hidden layer sizes
  std::string optimizer;     // "sgd" or "adam"
  std::vector<double> lr;    // one per epoch, or one base lr for the step schedule
  int lr_step_epochs = 0;    // multiply the lr by lr_gamma every this many epochs (0: never)
  double lr_gamma = 1.0;
  double momentum = 0.0;     // SGD only
  bool fresh_optimizer_each_epoch = false;
};

// The presets, by name:
//   default  (images) 784-100-10, T=128, inputs x/255, Adam lr 2e-3 halved every 3 epochs,
//            batch 100, 10 epochs: the library's MNIST recipe (about 0.975 test accuracy)
//   seed     (images) the seed's MNIST script exactly: inputs x/255 - 0.5, batch 1000, SGD
//            momentum 0.5 with a fresh optimiser per epoch, lr 0.1, 0.05, 0.01 over 3 epochs
//   tabular  (CSV) standardised features, T=64, 100 hidden, Adam lr 1e-3, batch 32, 100 epochs
// Anything else throws "unknown preset 'x' (expected default, seed or tabular)".
TrainingPreset training_preset(const std::string& name);
std::vector<std::string> training_preset_names();  // {"default", "seed", "tabular"}

}  // namespace nmsnn
