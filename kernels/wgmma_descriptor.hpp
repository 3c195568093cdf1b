// wgmma_descriptor.hpp — the 64-bit shared-memory matrix descriptor of wgmma (PTX ISA "Matrix
// Descriptor Format"), without swizzling: plain constexpr arithmetic, so the host tests check
// its fields and the device code (wgmma.cuh; --expt-relaxed-constexpr) builds it the same way.
#pragma once

#include <cstdint>

namespace nmsnn::kernels {

// From the tile's shared-window address and the leading (along k) and stride (along m or n)
// byte offsets between core matrices, all multiples of 16 below 256 KiB: bits 0-13 the address
// >> 4, 16-29 lbo >> 4, 32-45 sbo >> 4; base offset and swizzle mode (bits 49-51, 62-63) 0.
constexpr uint64_t wgmma_descriptor(uint32_t shared_address, uint32_t lbo, uint32_t sbo) {
  return uint64_t((shared_address & 0x3FFFFu) >> 4) | uint64_t((lbo & 0x3FFFFu) >> 4) << 16 |
         uint64_t((sbo & 0x3FFFFu) >> 4) << 32;
}

}  // namespace nmsnn::kernels
