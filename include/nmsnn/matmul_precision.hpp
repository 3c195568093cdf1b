// nmsnn/matmul_precision.hpp — the arithmetic of the matrix products: one enum for the public
// API (NetworkOptions::matmul, `--matmul`), the device API (cuda::DeviceOptions::matmul) and the
// CUDA kernels, so a precision is named the same way everywhere.
#pragma once

#include <string>

#include "nmsnn/error.hpp"

namespace nmsnn {

// The cpu engine always computes in FP32; the cuda engine's products follow this.
enum class MatmulPrecision {
  fp32,  // IEEE single precision: the cuda engine matches the cpu engine to ~1e-6
  tf32,  // tensor cores with TF32 inputs (10-bit mantissa) and FP32 accumulation, several times
         // faster; products carry relative errors up to ~1e-3 (PyTorch's allow_tf32), so a
         // state near the threshold may spike differently than on the CPU
};

inline const char* to_string(MatmulPrecision precision) {
  return precision == MatmulPrecision::fp32 ? "fp32" : "tf32";
}

// "fp32" or "tf32"; throws nmsnn::Error otherwise.
inline MatmulPrecision parse_matmul_precision(const std::string& name) {
  if (name == "fp32") return MatmulPrecision::fp32;
  if (name == "tf32") return MatmulPrecision::tf32;
  detail::fail("unknown matmul precision ", detail::quote(name), " (expected fp32 or tf32)");
}

}  // namespace nmsnn
