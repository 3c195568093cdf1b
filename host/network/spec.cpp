// network/spec.cpp — validating network descriptions, the seed presets, and enum names.
#include "nmsnn/spec.hpp"

#include <cmath>

#include "nmsnn/error.hpp"
#include "nmsnn/limits.hpp"

namespace nmsnn {

using detail::fail;

namespace {

// What a layer returns per step, given what it receives: width and steps, and [C, H, W] when
// they are feature maps (c = 0: a flat vector).
struct Shape {
  int width, steps;
  int c = 0, h = 0, w = 0;
  bool maps() const { return c > 0; }
};

Shape maps(int c, std::array<int, 2> hw, int steps) {
  return {int(int64_t(c) * hw[0] * hw[1]), steps, c, hw[0], hw[1]};
}

Shape output_shape(const LayerSpec& layer, Shape in) {
  if (auto* s = std::get_if<SpikingLayer>(&layer)) return {s->size, in.steps};
  if (auto* d = std::get_if<Dense>(&layer)) return {d->size, in.steps};
  if (auto* a = std::get_if<SpikingActivation>(&layer)) {
    in.steps = a->return_sequences ? in.steps : 1;
    return in;
  }
  if (auto* f = std::get_if<Lowpass>(&layer)) {
    in.steps = f->return_sequences ? in.steps : 1;
    return in;
  }
  if (std::holds_alternative<TemporalAvgPool>(layer)) {
    in.steps = 1;
    return in;
  }
  if (auto* c = std::get_if<Conv2d>(&layer))
    return maps(c->out_channels, window_output({in.h, in.w}, c->kernel, c->stride, c->padding),
                in.steps);
  if (auto* p = std::get_if<AvgPool2d>(&layer))
    return maps(in.c, window_output({in.h, in.w}, p->kernel, pool_stride(p->kernel, p->stride),
                                    {0, 0}),
                in.steps);
  if (auto* p = std::get_if<MaxPool2d>(&layer))
    return maps(in.c, window_output({in.h, in.w}, p->kernel, pool_stride(p->kernel, p->stride),
                                    {0, 0}),
                in.steps);
  if (std::holds_alternative<Flatten>(layer)) return {in.width, in.steps};
  return in;  // Activation, Lif
}

Shape input_shape_of(const NetworkSpec& spec) {
  Shape s{spec.inputs, spec.time_steps};
  if (spec.input_shape.size() == 3) {
    s.c = spec.input_shape[0];
    s.h = spec.input_shape[1];
    s.w = spec.input_shape[2];
  }
  return s;
}

Shape shape_after(const NetworkSpec& spec, int layer) {
  Shape shape = input_shape_of(spec);
  for (int l = 0; l <= layer; ++l) shape = output_shape(spec.layers[l], shape);
  return shape;
}

std::string shape_string(const Shape& s) {
  if (!s.maps()) return "[" + std::to_string(s.width) + "]";
  return "[" + std::to_string(s.c) + ", " + std::to_string(s.h) + ", " + std::to_string(s.w) + "]";
}

bool positive(float x) { return std::isfinite(x) && x > 0; }

}  // namespace

const char* layer_kind(const LayerSpec& layer) {
  static const char* names[] = {"spiking",    "dense",      "activation", "spiking_activation",
                                "lowpass",    "temporal_avg_pool",        "conv2d",
                                "avg_pool2d", "max_pool2d", "flatten",    "lif"};
  static_assert(sizeof(names) / sizeof(names[0]) == std::variant_size_v<LayerSpec>);
  return names[layer.index()];
}

bool fires(const LayerSpec& layer) {
  return std::holds_alternative<SpikingLayer>(layer) ||
         std::holds_alternative<SpikingActivation>(layer) || std::holds_alternative<Lif>(layer);
}

std::array<int, 2> window_output(std::array<int, 2> in, std::array<int, 2> kernel,
                                 std::array<int, 2> stride, std::array<int, 2> padding) {
  std::array<int, 2> out{};
  for (int d = 0; d < 2; ++d) {
    const int64_t span = int64_t(in[d]) + 2 * int64_t(padding[d]) - kernel[d];
    out[d] = span < 0 || stride[d] <= 0 ? 0 : int(span / stride[d] + 1);
  }
  return out;
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
  if (!input_shape.empty()) {
    if (input_shape.size() != 3)
      fail("network spec: input_shape must be [channels, height, width], got ",
           input_shape.size(), " numbers");
    int64_t n = 1;
    for (int d : input_shape) {
      if (d <= 0 || d > kMaxLayerSize)
        fail("network spec: input_shape entries must be in [1, ", kMaxLayerSize, "], got ", d);
      n *= d;
    }
    if (n != inputs)
      fail("network spec: input_shape [", input_shape[0], ", ", input_shape[1], ", ",
           input_shape[2], "] has ", n, " features but inputs is ", inputs);
  }
  Shape shape = input_shape_of(*this);
  for (size_t l = 0; l < layers.size(); ++l) {
    const LayerSpec& layer = layers[l];
    const std::string what = std::string(" (") + layer_kind(layer) + ")";
    // Convolutions and pools need feature maps; dense layers need a flat input, as nn.Linear
    // would otherwise act on the last axis only.
    const bool spatial = std::holds_alternative<Conv2d>(layer) ||
                         std::holds_alternative<AvgPool2d>(layer) ||
                         std::holds_alternative<MaxPool2d>(layer);
    if (spatial && !shape.maps())
      fail("layer ", l, what, ": needs [channels, height, width] feature maps but receives ",
           shape_string(shape),
           l == 0 ? " (give the network an input_shape)" : " (a flat vector)");
    if ((std::holds_alternative<SpikingLayer>(layer) || std::holds_alternative<Dense>(layer)) &&
        shape.maps())
      fail("layer ", l, what, ": receives feature maps ", shape_string(shape),
           "; put a flatten layer before it");
    if (spatial) {
      std::array<int, 2> kernel{}, stride{}, padding{0, 0};
      if (auto* c = std::get_if<Conv2d>(&layer)) {
        if (c->out_channels <= 0 || c->out_channels > kMaxLayerSize)
          fail("layer ", l, what, ": out_channels must be in [1, ", kMaxLayerSize, "], got ",
               c->out_channels);
        kernel = c->kernel, stride = c->stride, padding = c->padding;
      } else if (auto* p = std::get_if<AvgPool2d>(&layer)) {
        kernel = p->kernel, stride = pool_stride(p->kernel, p->stride);
        if (p->stride[0] < 0 || p->stride[1] < 0)
          fail("layer ", l, what, ": stride must be >= 1 (or 0 for the kernel size)");
      } else if (auto* p = std::get_if<MaxPool2d>(&layer)) {
        kernel = p->kernel, stride = pool_stride(p->kernel, p->stride);
        if (p->stride[0] < 0 || p->stride[1] < 0)
          fail("layer ", l, what, ": stride must be >= 1 (or 0 for the kernel size)");
      }
      for (int d = 0; d < 2; ++d) {
        if (kernel[d] < 1 || kernel[d] > kMaxLayerSize)
          fail("layer ", l, what, ": kernel sizes must be in [1, ", kMaxLayerSize, "], got ",
               kernel[d]);
        if (stride[d] < 1 || stride[d] > kMaxLayerSize)
          fail("layer ", l, what, ": strides must be in [1, ", kMaxLayerSize, "], got ",
               stride[d]);
        if (padding[d] < 0 || padding[d] > kMaxLayerSize)
          fail("layer ", l, what, ": padding must be in [0, ", kMaxLayerSize, "], got ",
               padding[d]);
      }
      const auto out = window_output({shape.h, shape.w}, kernel, stride, padding);
      if (out[0] < 1 || out[1] < 1)
        fail("layer ", l, what, ": a ", kernel[0], "x", kernel[1], " window",
             padding[0] || padding[1] ? " with padding " + std::to_string(padding[0]) + "x" +
                                            std::to_string(padding[1])
                                      : std::string(),
             " does not fit its ", shape.h, "x", shape.w, " input");
      const int channels = std::holds_alternative<Conv2d>(layer)
                               ? std::get<Conv2d>(layer).out_channels
                               : shape.c;
      const int64_t width = int64_t(channels) * out[0] * out[1];
      if (width > kMaxLayerSize)
        fail("layer ", l, what, ": its output [", channels, ", ", out[0], ", ", out[1], "] has ",
             width, " features, at most ", kMaxLayerSize, " are supported");
      if (std::holds_alternative<Conv2d>(layer) &&
          int64_t(shape.c) * kernel[0] * kernel[1] > kMaxLayerSize)
        fail("layer ", l, what, ": its window of ", shape.c, "x", kernel[0], "x", kernel[1],
             " inputs is larger than ", kMaxLayerSize);
    }
    if (auto* n = std::get_if<Lif>(&layer)) {
      if (!std::isfinite(n->decay) || n->decay < 0 || n->decay > 1)
        fail("layer ", l, what, ": decay must be in [0, 1], got ", n->decay);
      if (!positive(n->threshold))
        fail("layer ", l, what, ": threshold must be > 0, got ", n->threshold);
      if (!std::isfinite(n->penalty) || n->penalty < 0)
        fail("layer ", l, what, ": penalty must be >= 0, got ", n->penalty);
    }
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

std::vector<int> NetworkSpec::layer_shape(int layer) const {
  const Shape s = layer < 0 ? input_shape_of(*this) : shape_after(*this, layer);
  if (s.maps()) return {s.c, s.h, s.w};
  return {s.width};
}

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
  Shape shape = input_shape_of(spec);
  for (size_t l = 0; l < spec.layers.size(); ++l) {
    const LayerSpec& layer = spec.layers[l];
    const std::string prefix = "layers." + std::to_string(l) + ".";
    const int width = spec.layer_width(int(l));
    if (auto* c = std::get_if<Conv2d>(&layer)) {
      const int o = c->out_channels, kh = c->kernel[0], kw = c->kernel[1];
      out.push_back({prefix + "weight", {o, shape.c, kh, kw}, size_t(o) * shape.c * kh * kw,
                     int(l)});
      out.push_back({prefix + "bias", {o}, size_t(o), int(l)});
    } else if (std::holds_alternative<SpikingLayer>(layer) || std::holds_alternative<Dense>(layer)) {
      out.push_back({prefix + "weight", {width, in}, size_t(width) * in, int(l)});
      out.push_back({prefix + "bias", {width}, size_t(width), int(l)});
    } else if (std::holds_alternative<Lowpass>(layer)) {
      out.push_back({prefix + "smoothing", {width}, size_t(width), int(l)});
      out.push_back({prefix + "initial_level", {width}, size_t(width), int(l)});
    }
    in = width;
    shape = output_shape(layer, shape);
  }
  return out;
}

}  // namespace nmsnn
