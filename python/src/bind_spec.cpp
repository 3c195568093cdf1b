// bind_spec.cpp — network descriptions (the model-file JSON of spec_json.hpp), the models the
// command line builds from its flags, and what this build and machine offer.
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <variant>

#include "convert.hpp"
#include "nmsnn/json.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/spec_json.hpp"
#include "nmsnn/task.hpp"

namespace nmsnn::py {

namespace {

// A description as JSON text, checked and with every default written out.
std::string normalized(const std::string& text, int inputs) {
  const NetworkDescription d = description_from_json(parse_json(text, "spec"), "spec", inputs);
  return description_to_json(d).dump();
}

// The network `nmsnn train --model snn|mlp` builds for a task (tools/cli_train.cpp, run_train:
// "data and model"), from the same flags. Kept in step with it by hand until the library has
// one function for both (see python/README notes in the top README's Python section).
std::string cli_description(const std::string& model, const std::string& task_name, int inputs,
                            int outputs, const std::vector<int>& hidden, int time_steps,
                            double decay, double threshold, double penalty,
                            const std::string& reset, bool delay, const std::string& encoding,
                            const std::string& readout, int begin_eval) {
  const TaskKind task = parse_task_kind(task_name);
  NetworkDescription desc;
  if (model == "mlp") {
    desc.spec = NetworkSpec::mlp(inputs, hidden, outputs);
    desc.encoding = Input::Kind::repeated;
  } else if (model == "snn") {
    SpikingLayer neuron;
    neuron.decay = float(decay);
    neuron.threshold = float(threshold);
    neuron.penalty = float(penalty);
    neuron.reset = parse_reset_rule(reset);
    neuron.delay = delay;
    desc.spec = NetworkSpec::spiking(inputs, hidden, outputs, time_steps);
    for (auto& layer : desc.spec.layers) {
      SpikingLayer& s = std::get<SpikingLayer>(layer);
      const int size = s.size;
      s = neuron;
      s.size = size;
    }
    // Binary and regression models read their one output linearly from the last spiking
    // layer's spikes (an output neuron's state is bounded by its threshold), as the CLI does.
    if (task != TaskKind::classification) desc.spec.layers.back() = Dense{outputs};
  } else {
    detail::fail("unknown model ", detail::quote(model), " (expected snn or mlp)");
  }
  if (!encoding.empty()) desc.encoding = parse_encoding(encoding);
  if (!readout.empty()) desc.spec.readout.reduce = parse_reduce(readout);
  desc.spec.readout.begin_eval = begin_eval;
  desc.spec.validate();
  return description_to_json(desc).dump();
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
  defaults["decay"] = double(neuron.decay);
  defaults["threshold"] = double(neuron.threshold);
  defaults["penalty"] = double(neuron.penalty);
  defaults["reset"] = std::string(to_string(neuron.reset));
  defaults["delay"] = neuron.delay;
  m.attr("SPIKING_DEFAULTS") = defaults;
}

}  // namespace nmsnn::py
