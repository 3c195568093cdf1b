// network/spec.cpp — validating network descriptions, the seed presets, and enum names.
#include "nmsnn/spec.hpp"

#include <cmath>

#include "nmsnn/error.hpp"
#include "nmsnn/limits.hpp"

namespace nmsnn {

using detail::fail;

namespace {

// Width and steps a layer returns, given what it receives.
struct Shape {
  int width, steps;
};

Shape output_shape(const LayerSpec& layer, Shape in) {
  if (auto* s = std::get_if<SpikingLayer>(&layer)) return {s->size, in.steps};
  if (auto* d = std::get_if<Dense>(&layer)) return {d->size, in.steps};
  if (auto* a = std::get_if<SpikingActivation>(&layer))
    return {in.width, a->return_sequences ? in.steps : 1};
  if (auto* f = std::get_if<Lowpass>(&layer)) return {in.width, f->return_sequences ? in.steps : 1};
  if (std::holds_alternative<TemporalAvgPool>(layer)) return {in.width, 1};
  return in;  // Activation
}

Shape shape_after(const NetworkSpec& spec, int layer) {
  Shape shape{spec.inputs, spec.time_steps};
  for (int l = 0; l <= layer; ++l) shape = output_shape(spec.layers[l], shape);
  return shape;
}

bool positive(float x) { return std::isfinite(x) && x > 0; }

}  // namespace

const char* layer_kind(const LayerSpec& layer) {
  static const char* names[] = {"spiking", "dense", "activation", "spiking_activation", "lowpass",
                                "temporal_avg_pool"};
  return names[layer.index()];
}

void NetworkSpec::validate() const {
  // Upper bounds first: sizes past the limits (limits.hpp) would overflow products of sizes or
  // ask for absurd memory, so they are refused here, by name, before anything is allocated.
  if (inputs <= 0) fail("network spec: inputs must be > 0, got ", inputs);
  if (inputs > kMaxLayerSize)
    fail("network spec: inputs must be at most ", kMaxLayerSize, ", got ", inputs);
  if (time_steps < 1) fail("network spec: time_steps (T) must be >= 1, got ", time_steps);
  if (time_steps > kMaxTimeSteps)
    fail("network spec: time_steps (T) must be at most ", kMaxTimeSteps, ", got ", time_steps);
  if (layers.empty()) fail("network spec: needs at least one layer");
  if (int64_t(layers.size()) > kMaxLayers)
    fail("network spec: has ", layers.size(), " layers, at most ", kMaxLayers, " are supported");
  Shape shape{inputs, time_steps};
  for (size_t l = 0; l < layers.size(); ++l) {
    const LayerSpec& layer = layers[l];
    if (auto* s = std::get_if<SpikingLayer>(&layer)) {
      if (s->size <= 0) fail("layer ", l, ": size must be > 0, got ", s->size);
      if (s->size > kMaxLayerSize)
        fail("layer ", l, ": size must be at most ", kMaxLayerSize, ", got ", s->size);
      if (!std::isfinite(s->decay) || s->decay < 0 || s->decay > 1)
        fail("layer ", l, ": decay must be in [0, 1], got ", s->decay);
      if (!positive(s->threshold)) fail("layer ", l, ": threshold must be > 0, got ", s->threshold);
      if (!std::isfinite(s->penalty) || s->penalty < 0)
        fail("layer ", l, ": penalty must be >= 0, got ", s->penalty);
    } else if (auto* d = std::get_if<Dense>(&layer)) {
      if (d->size <= 0) fail("layer ", l, " (dense): size must be > 0, got ", d->size);
      if (d->size > kMaxLayerSize)
        fail("layer ", l, " (dense): size must be at most ", kMaxLayerSize, ", got ", d->size);
    } else if (auto* a = std::get_if<SpikingActivation>(&layer)) {
      if (!positive(a->dt)) fail("layer ", l, " (spiking activation): dt must be > 0, got ", a->dt);
      if (!std::isfinite(a->rate_weight) || a->rate_weight < 0)
        fail("layer ", l, " (spiking activation): rate_weight must be >= 0, got ", a->rate_weight);
      if (!std::isfinite(a->rate_target))
        fail("layer ", l, " (spiking activation): rate_target must be finite");
    } else if (auto* f = std::get_if<Lowpass>(&layer)) {
      if (!positive(f->tau)) fail("layer ", l, " (lowpass): tau must be > 0, got ", f->tau);
      if (!positive(f->dt)) fail("layer ", l, " (lowpass): dt must be > 0, got ", f->dt);
      if (f->units < 0) fail("layer ", l, " (lowpass): units must be >= 0, got ", f->units);
      if (f->units != 0 && f->units != shape.width)
        fail("layer ", l, " (lowpass): has ", f->units, " units but its input has ", shape.width,
             " features");
    }
    shape = output_shape(layer, shape);
  }
  if (readout.begin_eval < 0 || readout.begin_eval >= shape.steps)
    fail("network spec: readout begin_eval must be in [0, ", shape.steps,
         ") (the steps the last layer returns), got ", readout.begin_eval);
}

int NetworkSpec::outputs() const {
  if (layers.empty()) return 0;
  return shape_after(*this, int(layers.size()) - 1).width;
}

int NetworkSpec::layer_width(int layer) const { return shape_after(*this, layer).width; }
int NetworkSpec::layer_steps(int layer) const { return shape_after(*this, layer).steps; }

NetworkSpec NetworkSpec::mlp(int inputs, const std::vector<int>& hidden, int outputs) {
  NetworkSpec spec;
  spec.inputs = inputs;
  spec.time_steps = 1;
  for (int h : hidden) {
    spec.layers.push_back(Dense{h});
    spec.layers.push_back(Activation{ActivationKind::relu});
  }
  spec.layers.push_back(Dense{outputs});
  return spec;
}

NetworkSpec NetworkSpec::seed_mnist() {
  // The seed builds its readout with average_output=False, which in its inverted naming means
  // the mean over time (SPEC.md section 3): the Readout default.
  return spiking(784, {100}, 10, 128);
}

NetworkSpec NetworkSpec::spiking(int inputs, const std::vector<int>& hidden, int outputs,
                                 int time_steps) {
  NetworkSpec spec;
  spec.inputs = inputs;
  spec.time_steps = time_steps;
  for (int h : hidden) {
    SpikingLayer layer;
    layer.size = h;
    spec.layers.push_back(layer);
  }
  SpikingLayer out;
  out.size = outputs;
  spec.layers.push_back(out);
  return spec;
}

const char* to_string(ResetRule rule) { return rule == ResetRule::scale ? "scale" : "subtract"; }
const char* to_string(Reduce reduce) { return reduce == Reduce::sum ? "sum" : "mean"; }

ResetRule parse_reset_rule(const std::string& name) {
  if (name == "scale") return ResetRule::scale;
  if (name == "subtract") return ResetRule::subtract;
  fail("unknown reset rule ", detail::quote(name), " (expected scale or subtract)");
}

const char* to_string(ActivationKind kind) {
  switch (kind) {
    case ActivationKind::relu: return "relu";
    case ActivationKind::tanh: return "tanh";
    case ActivationKind::sigmoid: return "sigmoid";
  }
  return "?";
}

ActivationKind parse_activation(const std::string& name) {
  if (name == "relu") return ActivationKind::relu;
  if (name == "tanh") return ActivationKind::tanh;
  if (name == "sigmoid") return ActivationKind::sigmoid;
  fail("unknown activation ", detail::quote(name), " (expected relu, tanh or sigmoid)");
}

Reduce parse_reduce(const std::string& name) {
  if (name == "sum") return Reduce::sum;
  if (name == "mean") return Reduce::mean;
  fail("unknown readout reduction ", detail::quote(name), " (expected sum or mean)");
}

std::vector<ParameterInfo> parameter_layout(const NetworkSpec& spec) {
  std::vector<ParameterInfo> out;
  int in = spec.inputs;
  for (size_t l = 0; l < spec.layers.size(); ++l) {
    const LayerSpec& layer = spec.layers[l];
    const std::string prefix = "layers." + std::to_string(l) + ".";
    const int width = spec.layer_width(int(l));
    if (std::holds_alternative<SpikingLayer>(layer) || std::holds_alternative<Dense>(layer)) {
      out.push_back({prefix + "weight", {width, in}, size_t(width) * in, int(l)});
      out.push_back({prefix + "bias", {width}, size_t(width), int(l)});
    } else if (std::holds_alternative<Lowpass>(layer)) {
      out.push_back({prefix + "smoothing", {width}, size_t(width), int(l)});
      out.push_back({prefix + "initial_level", {width}, size_t(width), int(l)});
    }
    in = width;
  }
  return out;
}

}  // namespace nmsnn
