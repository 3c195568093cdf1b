// network/initialize.cpp — Xavier-uniform weights and PyTorch-Linear biases from a Philox stream.
#include "network/initialize.hpp"

#include <cmath>

#include "nmsnn/philox.hpp"

namespace nmsnn::detail {

std::vector<std::vector<float>> initial_parameters(const NetworkSpec& spec, uint64_t seed) {
  const uint64_t key = stream_key(seed, 0x696e6974 /* "init" */);
  // U(-bound, bound) from the Philox stream of parameter p.
  auto uniform = [&](size_t p, size_t n, double bound) {
    std::vector<float> values(n);
    for (size_t i = 0; i < n; ++i) {
      const Philox4x32 r = philox4x32_10(Philox4x32{{uint32_t(i >> 2), uint32_t(p), 0u, 0u}},
                                         uint32_t(key), uint32_t(key >> 32));
      values[i] = float(-bound + 2.0 * bound * uniform_from_bits(r.v[i & 3]));
    }
    return values;
  };
  std::vector<std::vector<float>> out;
  const auto layout = parameter_layout(spec);
  for (size_t p = 0; p < layout.size(); ++p) {
    const ParameterInfo& info = layout[p];
    const LayerSpec& layer = spec.layers[info.layer];
    if (std::holds_alternative<Lowpass>(layer)) {
      // smoothing p = logit(exp(-dt/tau)); the initial level starts at 0.
      const Lowpass& f = std::get<Lowpass>(layer);
      const double a = std::exp(-double(f.dt) / f.tau);
      const bool smoothing = p == 0 || layout[p - 1].layer != info.layer;  // the layer's first
      out.emplace_back(info.size, smoothing ? float(std::log(a / (1 - a))) : 0.0f);
      continue;
    }
    // Weights [out, in] and biases [out] of SpikingLayer (the seed: Xavier-uniform weights) and
    // Dense (torch.nn.Linear's default: U(+-1/sqrt(fan_in)) for both); biases U(+-1/sqrt(fan_in)).
    // Conv2d's [O, C, kh, kw] as torch.nn.Conv2d: U(+-1/sqrt(C kh kw)) for both.
    const bool weight = info.shape.size() >= 2;
    const std::vector<int>& w_shape = weight ? info.shape : layout[p - 1].shape;
    const double fan_out = w_shape[0];
    double fan_in = 1;
    for (size_t d = 1; d < w_shape.size(); ++d) fan_in *= w_shape[d];
    double bound = 1.0 / std::sqrt(fan_in);
    if (weight && std::holds_alternative<SpikingLayer>(layer))
      bound = std::sqrt(6.0 / (fan_in + fan_out));
    out.push_back(uniform(p, info.size, bound));
  }
  return out;
}

}  // namespace nmsnn::detail
