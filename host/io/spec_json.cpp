// io/spec_json.cpp — reading and writing network descriptions as JSON, with strict checking.
#include "nmsnn/spec_json.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "nmsnn/error.hpp"
#include "nmsnn/limits.hpp"

namespace nmsnn {

using detail::fail;

const char* to_string(Input::Kind kind) {
  switch (kind) {
    case Input::Kind::noisy: return "noisy";
    case Input::Kind::sequence: return "sequence";
    case Input::Kind::repeated: return "repeated";
  }
  return "?";
}

Input::Kind parse_encoding(const std::string& name) {
  if (name == "noisy") return Input::Kind::noisy;
  if (name == "sequence") return Input::Kind::sequence;
  if (name == "repeated") return Input::Kind::repeated;
  fail("unknown input encoding ", detail::quote(name), " (expected noisy, repeated or sequence)");
}

namespace {

// A key as it appears in a path: plain names as they are, anything else (a newline, a long or
// odd key from the file) quoted, so a path in a message stays one readable line.
std::string path_key(const std::string& key) {
  const bool plain = !key.empty() && key.size() <= 40 &&
                     std::all_of(key.begin(), key.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                     });
  return plain ? key : detail::quote(key, 40);
}

// A JSON value in a message: numbers and literals as written, strings quoted, containers by
// their kind (an array may be megabytes long).
std::string shown(const Json& v) {
  if (v.is_string()) return detail::quote(v.as_string());
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return v.dump();
}

// Reads the members of one JSON object, remembering which were used, so that leftovers can be
// reported as unknown keys.
class Fields {
 public:
  Fields(const Json& json, std::string path, const std::string& source)
      : json_(json), path_(std::move(path)), source_(source) {
    if (!json.is_object()) fail(where(""), "expected an object, got ", shown(json));
  }

  const Json* get(const std::string& key) const { return json_.find(key); }
  double number(const std::string& key, double fallback) {
    const Json* v = get(key);
    if (!v) return fallback;
    if (!v->is_number()) fail(where(key), "expected a number, got ", shown(*v));
    return v->as_number();
  }
  // A whole number in [lo, hi], range-checked as a double before it becomes an int (a size of
  // 1e10 must be an error, not an out-of-range conversion).
  int integer(const std::string& key, int fallback, int64_t lo, int64_t hi) {
    const Json* v = get(key);
    if (!v) return fallback;
    if (!v->is_number()) fail(where(key), "expected a whole number, got ", shown(*v));
    return int(detail::checked_integer(name(key), v->as_number(), lo, hi));
  }
  int required_integer(const std::string& key, int64_t lo, int64_t hi) {
    if (!json_.contains(key)) fail(where(key), "missing (it is required)");
    return integer(key, 0, lo, hi);
  }
  // A [height, width] pair written as one whole number n (meaning [n, n], as PyTorch takes it)
  // or as an array of two.
  std::array<int, 2> pair(const std::string& key, std::array<int, 2> fallback, int64_t lo,
                          int64_t hi) {
    const Json* v = get(key);
    if (!v) return fallback;
    if (v->is_number()) {
      const int n = integer(key, 0, lo, hi);
      return {n, n};
    }
    if (!v->is_array() || v->size() != 2 || !v->at(0).is_number() || !v->at(1).is_number())
      fail(where(key), "expected a whole number or [height, width], got ", shown(*v));
    return {int(detail::checked_integer(name(key) + "[0]", v->at(0).as_number(), lo, hi)),
            int(detail::checked_integer(name(key) + "[1]", v->at(1).as_number(), lo, hi))};
  }
  bool boolean(const std::string& key, bool fallback) {
    const Json* v = get(key);
    if (!v) return fallback;
    if (!v->is_bool()) fail(where(key), "expected true or false, got ", shown(*v));
    return v->as_bool();
  }
  std::string string(const std::string& key, const std::string& fallback) {
    const Json* v = get(key);
    if (!v) return fallback;
    if (!v->is_string()) fail(where(key), "expected a string, got ", shown(*v));
    return v->as_string();
  }
  // Throws naming the first key that is not in `known`, listing the known ones. Called before
  // reading, so a misspelt key is reported as such rather than as a missing one.
  void only(const std::vector<std::string>& known) const {
    for (const auto& [key, value] : json_.as_object()) {
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      fail(where(key), "unknown key (known keys here: ", list, ")");
    }
  }
  // "source: layers[1].size: ", the prefix of a message about `key` ("" for the object).
  std::string where(const std::string& key) const {
    const std::string p = path(key);
    return source_ + ": " + (p.empty() ? "" : p + ": ");
  }
  // "source: layers[1].size", the subject of a message about `key`.
  std::string name(const std::string& key) const { return source_ + ": " + path(key); }

 private:
  std::string path(const std::string& key) const {
    std::string p = path_;
    if (!key.empty()) p += (p.empty() ? "" : ".") + path_key(key);
    return p;
  }

  const Json& json_;
  std::string path_;
  const std::string& source_;
};

// Value errors from the enum parsers name the path too.
template <class F>
auto named(const Fields& f, const std::string& key, F&& parse) {
  try {
    return parse();
  } catch (const Error& e) {
    fail(f.where(key), e.what());
  }
}

LayerSpec layer_from_json(const Json& json, const std::string& path, const std::string& source) {
  Fields f(json, path, source);
  const std::string type = f.string("type", "");
  if (type == "spiking") {
    f.only({"type", "size", "decay", "threshold", "penalty", "reset", "delay"});
    SpikingLayer s;
    s.size = f.required_integer("size", 1, kMaxLayerSize);
    s.decay = float(f.number("decay", s.decay));
    s.threshold = float(f.number("threshold", s.threshold));
    s.penalty = float(f.number("penalty", s.penalty));
    const std::string reset = f.string("reset", to_string(s.reset));
    s.reset = named(f, "reset", [&] { return parse_reset_rule(reset); });
    s.delay = f.boolean("delay", s.delay);
    return s;
  }
  if (type == "dense") {
    f.only({"type", "size"});
    Dense d;
    d.size = f.required_integer("size", 1, kMaxLayerSize);
    return d;
  }
  if (type == "activation") {
    f.only({"type", "function"});
    Activation a;
    const std::string fn = f.string("function", to_string(a.kind));
    a.kind = named(f, "function", [&] { return parse_activation(fn); });
    return a;
  }
  if (type == "spiking_activation") {
    f.only({"type", "activation", "dt", "spiking_aware_training", "random_initial_voltage",
              "return_sequences", "rate_target", "rate_weight"});
    SpikingActivation a;
    const std::string fn = f.string("activation", to_string(a.activation));
    a.activation = named(f, "activation", [&] { return parse_activation(fn); });
    a.dt = float(f.number("dt", a.dt));
    a.spiking_aware_training = f.boolean("spiking_aware_training", a.spiking_aware_training);
    a.random_initial_voltage = f.boolean("random_initial_voltage", a.random_initial_voltage);
    a.return_sequences = f.boolean("return_sequences", a.return_sequences);
    a.rate_target = float(f.number("rate_target", a.rate_target));
    a.rate_weight = float(f.number("rate_weight", a.rate_weight));
    return a;
  }
  if (type == "lowpass") {
    f.only({"type", "tau", "dt", "units", "apply_during_training", "return_sequences"});
    Lowpass l;
    l.tau = float(f.number("tau", l.tau));
    l.dt = float(f.number("dt", l.dt));
    l.units = f.integer("units", l.units, 0, kMaxLayerSize);
    l.apply_during_training = f.boolean("apply_during_training", l.apply_during_training);
    l.return_sequences = f.boolean("return_sequences", l.return_sequences);
    return l;
  }
  if (type == "temporal_avg_pool") {
    f.only({"type"});
    return TemporalAvgPool{};
  }
  if (type == "conv2d") {
    f.only({"type", "out_channels", "kernel", "stride", "padding"});
    Conv2d c;
    c.out_channels = f.required_integer("out_channels", 1, kMaxLayerSize);
    if (!f.get("kernel")) fail(f.where("kernel"), "missing (it is required)");
    c.kernel = f.pair("kernel", c.kernel, 1, kMaxLayerSize);
    c.stride = f.pair("stride", c.stride, 1, kMaxLayerSize);
    c.padding = f.pair("padding", c.padding, 0, kMaxLayerSize);
    return c;
  }
  if (type == "avg_pool2d" || type == "max_pool2d") {
    f.only({"type", "kernel", "stride"});
    if (!f.get("kernel")) fail(f.where("kernel"), "missing (it is required)");
    const auto kernel = f.pair("kernel", {2, 2}, 1, kMaxLayerSize);
    const auto stride = f.pair("stride", {0, 0}, 0, kMaxLayerSize);
    if (type == "avg_pool2d") return AvgPool2d{kernel, stride};
    return MaxPool2d{kernel, stride};
  }
  if (type == "flatten") {
    f.only({"type"});
    return Flatten{};
  }
  if (type == "lif") {
    f.only({"type", "decay", "threshold", "penalty", "reset", "delay"});
    Lif n;
    n.decay = float(f.number("decay", n.decay));
    n.threshold = float(f.number("threshold", n.threshold));
    n.penalty = float(f.number("penalty", n.penalty));
    const std::string reset = f.string("reset", to_string(n.reset));
    n.reset = named(f, "reset", [&] { return parse_reset_rule(reset); });
    n.delay = f.boolean("delay", n.delay);
    return n;
  }
  if (type.empty()) fail(f.where("type"), "missing (it is required)");
  fail(f.where("type"), "unknown layer type ", detail::quote(type),
       " (expected spiking, dense, activation, spiking_activation, lowpass, temporal_avg_pool, "
       "conv2d, avg_pool2d, max_pool2d, flatten or lif)");
}

Json pair_json(std::array<int, 2> p) {
  Json j = Json::array();
  j.push_back(p[0]);
  j.push_back(p[1]);
  return j;
}

Json layer_to_json(const LayerSpec& layer) {
  Json j = Json::object();
  j.set("type", layer_kind(layer));
  if (auto* s = std::get_if<SpikingLayer>(&layer)) {
    j.set("size", s->size).set("decay", s->decay).set("threshold", s->threshold);
    j.set("penalty", s->penalty).set("reset", to_string(s->reset)).set("delay", s->delay);
  } else if (auto* d = std::get_if<Dense>(&layer)) {
    j.set("size", d->size);
  } else if (auto* a = std::get_if<Activation>(&layer)) {
    j.set("function", to_string(a->kind));
  } else if (auto* a = std::get_if<SpikingActivation>(&layer)) {
    j.set("activation", to_string(a->activation)).set("dt", a->dt);
    j.set("spiking_aware_training", a->spiking_aware_training);
    j.set("random_initial_voltage", a->random_initial_voltage);
    j.set("return_sequences", a->return_sequences);
    j.set("rate_target", a->rate_target).set("rate_weight", a->rate_weight);
  } else if (auto* l = std::get_if<Lowpass>(&layer)) {
    j.set("tau", l->tau).set("dt", l->dt).set("units", l->units);
    j.set("apply_during_training", l->apply_during_training);
    j.set("return_sequences", l->return_sequences);
  } else if (auto* c = std::get_if<Conv2d>(&layer)) {
    j.set("out_channels", c->out_channels).set("kernel", pair_json(c->kernel));
    j.set("stride", pair_json(c->stride)).set("padding", pair_json(c->padding));
  } else if (auto* p = std::get_if<AvgPool2d>(&layer)) {
    j.set("kernel", pair_json(p->kernel)).set("stride", pair_json(p->stride));
  } else if (auto* p = std::get_if<MaxPool2d>(&layer)) {
    j.set("kernel", pair_json(p->kernel)).set("stride", pair_json(p->stride));
  } else if (auto* n = std::get_if<Lif>(&layer)) {
    j.set("decay", n->decay).set("threshold", n->threshold).set("penalty", n->penalty);
    j.set("reset", to_string(n->reset)).set("delay", n->delay);
  }
  return j;
}

// Whether a layer reads [C, H, W] feature maps: with none from the input, the spec cannot hold.
bool reads_feature_maps(const LayerSpec& layer) {
  return std::holds_alternative<Conv2d>(layer) || std::holds_alternative<AvgPool2d>(layer) ||
         std::holds_alternative<MaxPool2d>(layer);
}

std::string shape_text(const std::vector<int>& shape) {
  std::string s = "[";
  for (size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + "]";
}

}  // namespace

NetworkDescription description_from_json(const Json& json, const std::string& source,
                                         int inputs, const std::vector<int>& input_shape) {
  Fields f(json, "", source);
  f.only({"inputs", "input_shape", "time_steps", "encoding", "readout", "layers"});
  NetworkDescription d;
  if (const Json* shape = f.get("input_shape")) {
    if (!shape->is_array() || shape->size() != 3)
      fail(f.where("input_shape"), "expected [channels, height, width], got ", shown(*shape));
    int64_t n = 1;
    for (size_t k = 0; k < 3; ++k) {
      if (!shape->at(k).is_number())
        fail(f.where("input_shape"), "expected whole numbers, got ", shown(shape->at(k)));
      d.spec.input_shape.push_back(int(detail::checked_integer(
          f.name("input_shape") + "[" + std::to_string(k) + "]", shape->at(k).as_number(), 1,
          kMaxLayerSize)));
      n *= d.spec.input_shape.back();
    }
    if (n > kMaxLayerSize)
      fail(f.where("input_shape"), "has ", n, " features, at most ", kMaxLayerSize);
    if (!input_shape.empty() && d.spec.input_shape != input_shape)
      fail(f.where("input_shape"), shape_text(d.spec.input_shape),
           " does not match the data's image shape ", shape_text(input_shape));
    if (!f.get("inputs") && inputs <= 0) inputs = int(n);
    if (inputs > 0 && n != inputs)
      fail(f.where("input_shape"), "[", d.spec.input_shape[0], ", ", d.spec.input_shape[1], ", ",
           d.spec.input_shape[2], "] has ", n, " features but the data has ", inputs);
  }
  d.spec.inputs = f.integer("inputs", inputs, 1, kMaxLayerSize);
  if (inputs > 0 && d.spec.inputs != inputs)
    fail(f.where("inputs"), d.spec.inputs, " does not match the data's ", inputs, " features");
  d.spec.time_steps = f.integer("time_steps", d.spec.time_steps, 1, kMaxTimeSteps);
  const std::string enc = f.string("encoding", to_string(d.encoding));
  d.encoding = named(f, "encoding", [&] { return parse_encoding(enc); });
  if (const Json* r = f.get("readout")) {
    Fields rf(*r, "readout", source);
    rf.only({"reduce", "begin_eval"});
    const std::string reduce = rf.string("reduce", to_string(d.spec.readout.reduce));
    d.spec.readout.reduce = named(rf, "reduce", [&] { return parse_reduce(reduce); });
    d.spec.readout.begin_eval = rf.integer("begin_eval", d.spec.readout.begin_eval, 0,
                                               kMaxTimeSteps - 1);
  }
  const Json* layers = f.get("layers");
  if (!layers) fail(f.where("layers"), "missing (it is required)");
  if (!layers->is_array() || layers->size() == 0)
    fail(f.where("layers"), "expected a non-empty array of layers");
  for (size_t l = 0; l < layers->size(); ++l)
    d.spec.layers.push_back(layer_from_json(layers->at(l), "layers[" + std::to_string(l) + "]",
                                            source));
  // A network of convolutions without an input_shape takes the data's image shape, or says
  // where one is missing (validate's message would name layer 0's flat input only).
  if (d.spec.input_shape.empty()) {
    const auto maps = std::find_if(d.spec.layers.begin(), d.spec.layers.end(), reads_feature_maps);
    if (maps != d.spec.layers.end()) {
      if (input_shape.empty())
        fail(f.where("input_shape"), "missing: layer ", maps - d.spec.layers.begin(), " (",
             layer_kind(*maps), ") needs [channels, height, width] feature maps",
             inputs > 0 ? " but the data has " + std::to_string(inputs) +
                              " flat features and no image shape"
                        : std::string(),
             "; give \"input_shape\": [channels, height, width]");
      d.spec.input_shape = input_shape;
    }
  }
  try {
    d.spec.validate();
  } catch (const Error& e) {
    fail(source, ": ", e.what());
  }
  return d;
}

NetworkDescription read_description(const std::string& path, int inputs,
                                    const std::vector<int>& input_shape) {
  return description_from_json(read_json_file(path), detail::quote(path), inputs, input_shape);
}

Json description_to_json(const NetworkDescription& d) {
  Json layers = Json::array();
  for (const LayerSpec& layer : d.spec.layers) layers.push_back(layer_to_json(layer));
  Json readout = Json::object();
  readout.set("reduce", to_string(d.spec.readout.reduce));
  readout.set("begin_eval", d.spec.readout.begin_eval);
  Json j = Json::object();
  j.set("inputs", d.spec.inputs);
  if (!d.spec.input_shape.empty()) {
    Json shape = Json::array();
    for (int v : d.spec.input_shape) shape.push_back(v);
    j.set("input_shape", shape);
  }
  j.set("time_steps", d.spec.time_steps);
  j.set("encoding", to_string(d.encoding)).set("readout", readout).set("layers", layers);
  return j;
}

}  // namespace nmsnn
