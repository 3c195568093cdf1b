// spec.cpp — validating network descriptions, the seed presets, and enum names.
#include "nmsnn/spec.hpp"

#include <cmath>

#include "backend.hpp"
#include "nmsnn/error.hpp"

namespace nmsnn {

using detail::fail;

void NetworkSpec::validate() const {
  if (inputs <= 0) fail("network spec: inputs must be > 0, got ", inputs);
  if (time_steps < 1) fail("network spec: time_steps (T) must be >= 1, got ", time_steps);
  if (layers.empty()) fail("network spec: needs at least one layer");
  for (size_t l = 0; l < layers.size(); ++l) {
    const SpikingLayer& s = std::get<SpikingLayer>(layers[l]);
    if (s.size <= 0) fail("layer ", l, ": size must be > 0, got ", s.size);
    if (!std::isfinite(s.decay) || s.decay < 0 || s.decay > 1)
      fail("layer ", l, ": decay must be in [0, 1], got ", s.decay);
    if (!std::isfinite(s.threshold) || s.threshold <= 0)
      fail("layer ", l, ": threshold must be > 0, got ", s.threshold);
    if (!std::isfinite(s.penalty) || s.penalty < 0)
      fail("layer ", l, ": penalty must be >= 0, got ", s.penalty);
  }
  if (readout.begin_eval < 0 || readout.begin_eval >= time_steps)
    fail("network spec: readout begin_eval must be in [0, time_steps) = [0, ", time_steps,
         "), got ", readout.begin_eval);
}

int NetworkSpec::outputs() const {
  if (layers.empty()) return 0;
  return std::get<SpikingLayer>(layers.back()).size;
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
  fail("unknown reset rule '", name, "' (expected scale or subtract)");
}

Reduce parse_reduce(const std::string& name) {
  if (name == "sum") return Reduce::sum;
  if (name == "mean") return Reduce::mean;
  fail("unknown readout reduction '", name, "' (expected sum or mean)");
}

namespace detail {

std::vector<ParameterInfo> parameter_layout(const NetworkSpec& spec) {
  std::vector<ParameterInfo> out;
  int in = spec.inputs;
  for (size_t l = 0; l < spec.layers.size(); ++l) {
    const int h = std::get<SpikingLayer>(spec.layers[l]).size;
    const std::string prefix = "layers." + std::to_string(l) + ".";
    out.push_back({prefix + "weight", {h, in}, size_t(h) * in, int(l)});
    out.push_back({prefix + "bias", {h}, size_t(h), int(l)});
    in = h;
  }
  return out;
}

}  // namespace detail
}  // namespace nmsnn
