// nmsnn/matmul_precision.hpp — the arithmetic of the matrix products: one enum for the public
// API (NetworkOptions::matmul, `--matmul`), the device API (cuda::DeviceOptions::matmul) and the
// CUDA kernels, so a precision is named the same way everywhere.
#pragma once

#include <string>

#include "nmsnn/error.hpp"

namespace nmsnn {

// The cpu engine always computes in FP32; the cuda engine's products follow this. In every
// precision the products accumulate in FP32 and the neuron state stays FP32: only the operands
// of the products are rounded.
enum class MatmulPrecision {
  fp32,  // IEEE single precision: the cuda engine matches the cpu engine to ~1e-6
  tf32,  // tensor cores with TF32 inputs (11 significant bits, each operand within 2^-11
         // relative), several times faster; products carry relative errors up to ~1e-3
         // (PyTorch's allow_tf32), so a state near the threshold may spike differently than on
         // the CPU
  bf16,  // tensor cores with BF16 inputs (8 significant bits, each operand within 2^-8
         // relative, a product within ~2^-7 = 8e-3); twice TF32's tensor-core rate and half its
         // operand bytes; more spikes near the threshold flip than with tf32 (PyTorch's autocast
         // to bfloat16 makes the same trade)
};

inline const char* to_string(MatmulPrecision precision) {
  switch (precision) {
    case MatmulPrecision::tf32: return "tf32";
    case MatmulPrecision::bf16: return "bf16";
    default: return "fp32";
  }
}

// "fp32", "tf32" or "bf16"; throws nmsnn::Error otherwise.
inline MatmulPrecision parse_matmul_precision(const std::string& name) {
  if (name == "fp32") return MatmulPrecision::fp32;
  if (name == "tf32") return MatmulPrecision::tf32;
  if (name == "bf16") return MatmulPrecision::bf16;
  detail::fail("unknown matmul precision ", detail::quote(name), " (expected fp32, tf32 or bf16)");
}

}  // namespace nmsnn
