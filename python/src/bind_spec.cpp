// bind_spec.cpp — network descriptions (the model-file JSON of spec_json.hpp), the models and
// training presets the command line builds from its flags (presets.hpp), and what this build and
// machine offer.
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <charconv>
#include <cstdlib>

#include "convert.hpp"
#include "nmsnn/json.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/presets.hpp"
#include "nmsnn/spec_json.hpp"
#include "nmsnn/task.hpp"

namespace nmsnn::py {

namespace {

// A description as JSON text, checked and with every default written out.
std::string normalized(const std::string& text, int inputs) {
  const NetworkDescription d = description_from_json(parse_json(text, "spec"), "spec", inputs);
  return description_to_json(d).dump();
}

// The network `nmsnn train --model snn|mlp` builds for a task from the same flags: the library's
// predictive_network (presets.hpp), then the CLI's --encoding, --readout and --begin-eval.
std::string cli_description(const std::string& model, const std::string& task_name, int inputs,
                            int outputs, const std::vector<int>& hidden, int time_steps,
                            double decay, double threshold, double penalty,
                            const std::string& reset, bool delay, const std::string& encoding,
                            const std::string& readout, int begin_eval) {
  SpikingLayer neuron;
  neuron.decay = float(decay);
  neuron.threshold = float(threshold);
  neuron.penalty = float(penalty);
  neuron.reset = parse_reset_rule(reset);
  neuron.delay = delay;
  NetworkDescription desc = predictive_network(parse_task_kind(task_name), parse_model_kind(model),
                                               inputs, outputs, hidden, time_steps, neuron);
  if (!encoding.empty()) desc.encoding = parse_encoding(encoding);
  if (!readout.empty()) desc.spec.readout.reduce = parse_reduce(readout);
  desc.spec.readout.begin_eval = begin_eval;
  desc.spec.validate();
  return description_to_json(desc).dump();
}

// A float setting as the shortest decimal that reads back as the same float (0.9f -> 0.9), so
// that Python shows the defaults as they are written in C++.
double shortest(float v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::strtod(std::string(buf, r.ptr).c_str(), nullptr);
}

nb::dict preset_dict(const std::string& name) {
  const TrainingPreset p = training_preset(name);
  nb::dict d;
  d["name"] = p.name;
  d["input_scale"] = p.input_scale;
  d["epochs"] = p.epochs;
  d["batch_size"] = p.batch_size;
  d["time_steps"] = p.time_steps;
  d["hidden"] = p.hidden;
  d["optimizer"] = p.optimizer;
  d["lr"] = p.lr;
  d["lr_step_epochs"] = p.lr_step_epochs;
  d["lr_gamma"] = p.lr_gamma;
  d["momentum"] = p.momentum;
  d["fresh_optimizer_each_epoch"] = p.fresh_optimizer_each_epoch;
  return d;
}

}  // namespace

void bind_spec(nb::module_& m) {
  m.def("normalize_spec", &normalized, nb::arg("spec_json"), nb::arg("inputs") = 0,
        "Checks a network description (JSON text) and returns it with every default written out.");
  m.def("cli_description", &cli_description, nb::arg("model"), nb::arg("task"), nb::arg("inputs"),
        nb::arg("outputs"), nb::arg("hidden"), nb::arg("time_steps"), nb::arg("decay"),
        nb::arg("threshold"), nb::arg("penalty"), nb::arg("reset"), nb::arg("delay"),
        nb::arg("encoding") = "", nb::arg("readout") = "", nb::arg("begin_eval") = 0,
        "The description `nmsnn train --model snn|mlp` builds from the same settings (JSON text).");
  m.def("training_preset", &preset_dict, nb::arg("name"),
        "The settings of `nmsnn train --preset NAME` (default, seed or tabular) as a dict.");
  m.def("training_preset_names", &training_preset_names);
  m.def("cpu_kernel_set", [] { return std::string(cpu_kernel_set()); },
        "The CPU engine's kernel set on this machine: 'avx2' or 'baseline'.");
  m.def("cuda_available", [] {
        std::string why;
        const bool ok = cuda_available(&why);
        return std::make_pair(ok, why);
      },
      "(True, '') when this build has the CUDA engine and a GPU is present, else (False, why).");
  const SpikingLayer neuron;
  nb::dict defaults;
  defaults["decay"] = shortest(neuron.decay);
  defaults["threshold"] = shortest(neuron.threshold);
  defaults["penalty"] = shortest(neuron.penalty);
  defaults["reset"] = std::string(to_string(neuron.reset));
  defaults["delay"] = neuron.delay;
  m.attr("SPIKING_DEFAULTS") = defaults;
}

}  // namespace nmsnn::py
