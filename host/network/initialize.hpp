// network/initialize.hpp — the seed's parameter initialisation, engine-independent.
#pragma once

#include <cstdint>
#include <vector>

#include "core/random_stream.hpp"
#include "nmsnn/spec.hpp"

namespace nmsnn::detail {

// One host array per parameter, in parameter_layout order: Xavier-uniform weights
// U(-a, a), a = sqrt(6 / (fan_in + fan_out)), and PyTorch-Linear biases U(-1/sqrt(fan_in), ...).
// Numbers come from Philox keyed by the seed, so every engine starts from the same values.
std::vector<std::vector<float>> initial_parameters(const NetworkSpec& spec, uint64_t seed);

// The key of SpikingActivation layer `layer`'s initial voltages, the same on every engine.
inline uint64_t voltage_key(uint64_t seed, int layer) {
  return stream_key(seed, 0x766f6c74ull + uint64_t(layer));  // "volt" + layer index
}

}  // namespace nmsnn::detail
