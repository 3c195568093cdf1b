// nmsnn/saved_state.hpp — what a training pass of the cuda engine keeps of its spiking layers
// for backward: one enum for the public API (NetworkOptions::saved, `--saved`) and the device API
// (cuda::DeviceOptions::saved), named the same way everywhere.
#pragma once

#include <string>

#include "nmsnn/error.hpp"

namespace nmsnn {

// The cpu engine always keeps FP32 state; the cuda engine's spiking layers follow this.
enum class SavedState {
  fp32,     // the pre-reset state u, 4 bytes per neuron per step: gradients match the cpu
            // engine to ~1e-6
  compact,  // what backward needs, <= 2 bytes per neuron per step: the spike as a 16-bit float
            // (9 significant bits) where a layer above reads it in backward, else 1 bit (the
            // gate). Forward is unchanged and the gates are exact; weight gradients of the
            // layers above a spiking layer carry relative errors up to ~2^-9 (kernels/lif_saved.cuh)
};

inline const char* to_string(SavedState saved) {
  return saved == SavedState::fp32 ? "fp32" : "compact";
}

// "fp32" or "compact"; throws nmsnn::Error otherwise.
inline SavedState parse_saved_state(const std::string& name) {
  if (name == "fp32") return SavedState::fp32;
  if (name == "compact") return SavedState::compact;
  detail::fail("unknown saved state ", detail::quote(name), " (expected fp32 or compact)");
}

}  // namespace nmsnn
