// bind_network.cpp — nmsnn._core.Network: a layer stack from a description (the model-file JSON
// plus "inputs"), forward and backward on NumPy arrays for the three input kinds, parameters by
// their PyTorch names. The GIL is released while the engine runs.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <optional>

#include "convert.hpp"
#include "nmsnn/json.hpp"
#include "py_network.hpp"

namespace nmsnn::py {

namespace {

PyNetwork make_network(const std::string& spec_json, const std::string& engine, uint64_t seed,
                       int threads, const std::string& matmul) {
  PyNetwork p;
  p.description = description_from_json(parse_json(spec_json, "spec"), "spec", 0);
  NetworkOptions opts;
  opts.engine = parse_engine(engine);
  opts.seed = seed;
  opts.threads = threads;
  opts.matmul = parse_matmul_precision(matmul);
  {
    nb::gil_scoped_release release;
    p.own = std::make_unique<Network>(p.description.spec, opts);
  }
  p.net = p.own.get();
  return p;
}

std::vector<size_t> shape_of(const std::vector<int>& shape) {
  return std::vector<size_t>(shape.begin(), shape.end());
}

const ParameterInfo& info(const Network& net, const std::string& name) {
  for (const ParameterInfo& p : net.parameters())
    if (p.name == name) return p;
  std::string names;
  for (const ParameterInfo& p : net.parameters()) names += (names.empty() ? "" : ", ") + p.name;
  detail::fail("the network has no parameter ", detail::quote(name), " (it has ", names, ")");
}

PyPass forward(PyNetwork& self, const FloatArray& x, const std::string& kind, bool training,
               bool record, bool rates, std::optional<uint64_t> noise_pass, bool noise_by_row) {
  ForwardOptions opts;
  opts.training = training;
  opts.record = record;
  opts.rates = rates;
  opts.noise_by_row = noise_by_row;
  if (noise_pass) opts.use_noise_pass = true, opts.noise_pass = *noise_pass;
  return run_forward(self, x, kind, opts, /*copy=*/true, "array");
}

nb::list trace_list(const PyPass& p) {
  nb::list out;
  for (const LayerTrace& t : p.pass.trace()) {
    nb::dict d;
    const std::vector<size_t> shape{size_t(t.steps), size_t(t.batch), size_t(t.size)};
    d["state"] = to_numpy(std::vector<float>(t.state), shape);
    d["spikes"] = to_numpy(std::vector<float>(t.spikes), shape);
    out.append(d);
  }
  return out;
}

nb::list rates_list(const PyPass& p) {
  nb::list out;
  for (const LayerRates& r : p.pass.rates()) {
    nb::dict d;
    d["layer"] = r.layer;
    d["unit"] = r.hertz ? "Hz" : "spikes/step";
    d["rates"] = to_numpy(std::vector<float>(r.rates), {size_t(r.batch), size_t(r.size)});
    out.append(d);
  }
  return out;
}

}  // namespace

PyPass run_forward(PyNetwork& self, const FloatArray& x, const std::string& kind,
                   const ForwardOptions& options, bool copy, const char* noun) {
  PyPass p;
  p.kind = parse_encoding(kind);
  p.training = options.training;
  const int I = self.description.spec.inputs;
  if (p.kind == Input::Kind::sequence) {
    if (x.ndim() != 3)
      detail::fail("a sequence input must be a 3-D ", noun, " [T, B, I], got ", x.ndim(),
                   " dimensions");
    p.steps = int(x.shape(0));
    p.batch = int(x.shape(1));
    p.features = int(x.shape(2));
  } else {
    if (x.ndim() != 2)
      detail::fail("a ", kind, " input must be a 2-D ", noun, " [B, I], got ", x.ndim(),
                   " dimensions");
    p.batch = int(x.shape(0));
    p.features = int(x.shape(1));
  }
  if (p.features != I)
    detail::fail("the input has ", p.features, " features, the network expects ", I);
  Input in{p.kind, x.data(), x.size(), p.batch};
  if (copy) {
    p.copy = to_vector(x);
    in.data = p.copy.data();
  } else {
    p.view = x;
  }
  nb::gil_scoped_release release;
  p.pass = self.net->forward(in, options);
  return p;
}

std::optional<NumpyFloat> run_backward(PyNetwork& self, const PyPass& p, const FloatArray& dlogits,
                                       bool input_grad) {
  if (!p.training)
    detail::fail("backward needs a training pass (forward with training=True; nmsnn.torch "
                 "modules in eval mode make inference passes)");
  if (input_grad && p.kind == Input::Kind::noisy)
    detail::fail("a noisy input has no gradient (its masks are random); use a sequence or a "
                 "repeated input for dL/dinput");
  std::vector<float> d = to_vector(dlogits);
  std::vector<float> dinput;
  {
    nb::gil_scoped_release release;
    self.net->backward(p.pass, d, input_grad ? &dinput : nullptr);
  }
  if (!input_grad) return std::nullopt;
  if (p.kind == Input::Kind::sequence)
    return to_numpy(std::move(dinput), {size_t(p.steps), size_t(p.batch), size_t(p.features)});
  return to_numpy(std::move(dinput), {size_t(p.batch), size_t(p.features)});
}

void bind_network(nb::module_& m) {
  nb::class_<PyPass>(m, "ForwardPass", "One forward pass: its logits and what backward needs.")
      .def_prop_ro("logits", [](const PyPass& p) {
            return to_numpy(std::vector<float>(p.pass.logits()),
                            {size_t(p.pass.batch()), size_t(p.pass.outputs())});
          }, nb::rv_policy::move, "logits [B, C]")
      .def_prop_ro("batch", [](const PyPass& p) { return p.batch; })
      .def_prop_ro("kind", [](const PyPass& p) { return std::string(to_string(p.kind)); })
      .def_prop_ro("training", [](const PyPass& p) { return p.training; })
      .def_prop_ro("noise_pass", [](const PyPass& p) { return p.pass.noise_pass(); })
      .def_prop_ro("saved_bytes", [](const PyPass& p) { return p.pass.saved_bytes(); })
      .def_prop_ro("regularization_loss", [](const PyPass& p) { return p.pass.regularization_loss(); })
      .def_prop_ro("trace", &trace_list,
                   "Per layer, dicts of 'state' and 'spikes' [steps, B, H] (record=True).")
      .def_prop_ro("rates", &rates_list,
                   "Per spiking layer, dicts of 'layer', 'unit' and 'rates' [B, H] (rates=True).");

  nb::class_<PyNetwork>(m, "Network", "A layer stack on an engine (nmsnn::Network).")
      .def(nb::new_(&make_network), nb::arg("spec_json"), nb::arg("engine") = "cpu",
           nb::arg("seed") = 0, nb::arg("threads") = 0, nb::arg("matmul") = "fp32")
      .def_prop_ro("spec_json", [](const PyNetwork& p) { return description_to_json(p.description).dump(); })
      .def_prop_ro("inputs", [](const PyNetwork& p) { return p.description.spec.inputs; })
      .def_prop_ro("outputs", [](const PyNetwork& p) { return p.description.spec.outputs(); })
      .def_prop_ro("time_steps", [](const PyNetwork& p) { return p.description.spec.time_steps; })
      .def_prop_ro("encoding", [](const PyNetwork& p) { return std::string(to_string(p.description.encoding)); })
      .def_prop_ro("engine", [](const PyNetwork& p) { return std::string(to_string(p.net->engine())); })
      .def_prop_ro("seed", [](const PyNetwork& p) { return p.net->seed(); })
      .def_prop_rw("noise_passes", [](const PyNetwork& p) { return p.net->noise_passes(); },
                   [](PyNetwork& p, uint64_t n) { p.net->set_noise_passes(n); })
      .def("parameter_names", [](const PyNetwork& p) {
            std::vector<std::string> names;
            for (const ParameterInfo& i : p.net->parameters()) names.push_back(i.name);
            return names;
          })
      .def("parameter_shape", [](const PyNetwork& p, const std::string& name) {
            return info(*p.net, name).shape;
          }, nb::arg("name"))
      .def("parameter", [](const PyNetwork& p, const std::string& name) {
            return to_numpy(p.net->parameter(name), shape_of(info(*p.net, name).shape));
          }, nb::arg("name"))
      .def("set_parameter", [](PyNetwork& p, const std::string& name, const FloatArray& v) {
            p.net->set_parameter(name, to_vector(v));
          }, nb::arg("name"), nb::arg("values"))
      .def("gradient", [](const PyNetwork& p, const std::string& name) {
            return to_numpy(p.net->gradient(name), shape_of(info(*p.net, name).shape));
          }, nb::arg("name"))
      .def("initialize", [](PyNetwork& p, uint64_t seed) { p.net->initialize(seed); }, nb::arg("seed"))
      .def("set_dt", [](PyNetwork& p, int layer, float dt) { p.net->set_dt(layer, dt); },
           nb::arg("layer"), nb::arg("dt"))
      .def("forward", &forward, nb::arg("x"), nb::arg("kind"), nb::arg("training") = true,
           nb::arg("record") = false, nb::arg("rates") = false, nb::arg("noise_pass") = nb::none(),
           nb::arg("noise_by_row") = false)
      .def("backward", &run_backward, nb::arg("pass_"), nb::arg("dlogits"), nb::arg("input_grad") = false);
}

}  // namespace nmsnn::py
