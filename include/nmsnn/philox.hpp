// nmsnn/philox.hpp — the Philox4x32-10 generator and the exact noise-mask mapping.
//
// The encoder multiplies every input by a fresh Uniform[0,1) mask (SPEC.md section 1). The mask
// is a pure function of (seed, pass, t, b, i), so the CPU and CUDA engines produce bit-identical
// masks and the backward pass regenerates them instead of storing T*B*I numbers:
//
//   key     = { low 32 bits of seed, high 32 bits of seed }
//   counter = { i / 4, b, t, pass mod 2^32 }              (i: input feature, b: row in the batch,
//   r       = Philox4x32-10(counter, key)[i % 4]            t: time step, pass: forward-pass counter)
//   m       = (r >> 8) * 2^-24                            (24 random bits: exact in float, in [0,1))
//
// Philox4x32-10 is the counter-based generator of Salmon et al., "Parallel random numbers: as easy
// as 1, 2, 3" (SC'11), as in Random123 and cuRAND; tests check it against Random123's
// known-answer vectors.
#pragma once

#include <cstdint>

// Lets CUDA code call these functions; expands to nothing for a host compiler.
#if defined(__CUDACC__)
#define NMSNN_HOST_DEVICE __host__ __device__
#else
#define NMSNN_HOST_DEVICE
#endif

namespace nmsnn {

struct Philox4x32 {
  uint32_t v[4];
};

// One Philox4x32-10 block: 10 rounds of the multiply-xor bijection with a Weyl key schedule.
NMSNN_HOST_DEVICE inline Philox4x32 philox4x32_10(Philox4x32 ctr, uint32_t k0, uint32_t k1) {
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;  // round multipliers
  const uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;  // key increments (golden ratio, sqrt(3)-1)
  for (int round = 0; round < 10; ++round) {
#if defined(__CUDA_ARCH__)
    // The same products, said so that nvcc makes one IMAD.WIDE each: from the 64-bit form it also
    // emitted an add of a known zero per product (sm_90 SASS: 19 IADDs per block, ~30% of the
    // integer work), and Philox bounds the masked products (bench/RESULTS.md).
    const uint32_t hi0 = __umulhi(M0, ctr.v[0]), lo0 = M0 * ctr.v[0];
    const uint32_t hi1 = __umulhi(M1, ctr.v[2]), lo1 = M1 * ctr.v[2];
#else
    const uint64_t p0 = uint64_t(M0) * ctr.v[0];
    const uint64_t p1 = uint64_t(M1) * ctr.v[2];
    const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
    const uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
#endif
    ctr = Philox4x32{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    k0 += W0;
    k1 += W1;
  }
  return ctr;
}

// 24 high bits of r as a float in [0, 1); every value is exact in float and double.
NMSNN_HOST_DEVICE inline float uniform_from_bits(uint32_t r) {
  return float(r >> 8) * (1.0f / 16777216.0f);
}

// Where a mask lives: the run's seed, the forward-pass counter, and optionally each row's key.
struct NoiseKey {
  uint64_t seed = 0;
  uint64_t pass = 0;
  // rows[b] replaces b in the counter when not null (ForwardOptions::noise_by_row: rows keyed by
  // their contents, not their place in the batch). Memory of the side that draws the masks:
  // host for the cpu engine, device for kernels.
  const uint32_t* rows = nullptr;
  // When not null, the pass counter is read here instead of from `pass` (device memory; kernels
  // only): a training step captured into a CUDA graph replays with the counter its host writes.
  const uint64_t* pass_at = nullptr;
};

// The counter word of row b.
NMSNN_HOST_DEVICE inline uint32_t noise_row(NoiseKey key, uint32_t b) {
  return key.rows ? key.rows[b] : b;
}

// The pass counter's word (read from device memory when key.pass_at is set).
NMSNN_HOST_DEVICE inline uint32_t noise_pass(NoiseKey key) {
  return uint32_t(key.pass_at ? *key.pass_at : key.pass);
}

// noise_block with the counter's row and pass words already looked up: a kernel that makes many
// blocks of one row (or one pass) finds them once instead of per block.
NMSNN_HOST_DEVICE inline Philox4x32 noise_block_words(NoiseKey key, uint32_t q, uint32_t row,
                                                     uint32_t t, uint32_t pass) {
  return philox4x32_10(Philox4x32{{q, row, t, pass}}, uint32_t(key.seed),
                       uint32_t(key.seed >> 32));
}

// The four masks of the Philox block that holds features 4q .. 4q+3 of row b at step t.
NMSNN_HOST_DEVICE inline Philox4x32 noise_block(NoiseKey key, uint32_t q, uint32_t b, uint32_t t) {
  return noise_block_words(key, q, noise_row(key, b), t, noise_pass(key));
}

// The mask m[t, b, i] of SPEC.md section 1.
NMSNN_HOST_DEVICE inline float noise_mask(NoiseKey key, uint32_t t, uint32_t b, uint32_t i) {
  return uniform_from_bits(noise_block(key, i >> 2, b, t).v[i & 3]);
}

}  // namespace nmsnn
