// cuda_bf16.h (emulated) — the bfloat16 type and the two conversions nmsnn uses. A bfloat16 is
// the upper half of an IEEE float: sign, 8-bit exponent, 7 stored mantissa bits (8 significant).
// __float2bfloat16 rounds to nearest, ties to even, as the device's cvt.rn.bf16.f32 does, so the
// emulated tensor-core products round their operands exactly as the GPU's.
#pragma once
#include <cstdint>
#include <cstring>

struct __nv_bfloat16 {
  uint16_t bits = 0;
};

inline __nv_bfloat16 __float2bfloat16(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  __nv_bfloat16 h;
  if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu)) {
    h.bits = uint16_t((u >> 16) | 0x0040u);  // NaN stays a (quiet) NaN
    return h;
  }
  // Add half an ulp of the result, minus one unless the kept part is odd: ties go to even. A
  // carry into the exponent is right (it rounds up to the next binade, or to infinity).
  u += 0x7FFFu + ((u >> 16) & 1u);
  h.bits = uint16_t(u >> 16);
  return h;
}

inline float __bfloat162float(__nv_bfloat16 h) {
  const uint32_t u = uint32_t(h.bits) << 16;
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}
