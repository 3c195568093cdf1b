// initialize.cpp — Xavier-uniform weights and PyTorch-Linear biases from a Philox stream.
#include "initialize.hpp"

#include <cmath>

#include "backend.hpp"
#include "nmsnn/philox.hpp"

namespace nmsnn::detail {

uint64_t stream_key(uint64_t seed, uint64_t stream) {
  uint64_t z = seed ^ (stream * 0x9E3779B97F4A7C15ull);
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::vector<std::vector<float>> initial_parameters(const NetworkSpec& spec, uint64_t seed) {
  const uint64_t key = stream_key(seed, 0x696e6974 /* "init" */);
  std::vector<std::vector<float>> out;
  const auto layout = parameter_layout(spec);
  for (size_t p = 0; p < layout.size(); ++p) {
    const ParameterInfo& info = layout[p];
    const bool weight = info.shape.size() == 2;
    const double fan_out = info.shape[0];
    const double fan_in = weight ? info.shape[1] : layout[p - 1].shape[1];
    const double bound = weight ? std::sqrt(6.0 / (fan_in + fan_out)) : 1.0 / std::sqrt(fan_in);
    std::vector<float> values(info.size);
    for (size_t i = 0; i < info.size; ++i) {
      const Philox4x32 r = philox4x32_10(Philox4x32{{uint32_t(i >> 2), uint32_t(p), 0u, 0u}},
                                         uint32_t(key), uint32_t(key >> 32));
      const double u = uniform_from_bits(r.v[i & 3]);
      values[i] = float(-bound + 2.0 * bound * u);
    }
    out.push_back(std::move(values));
  }
  return out;
}

}  // namespace nmsnn::detail
