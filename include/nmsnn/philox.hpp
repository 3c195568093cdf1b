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

// The key of each of Philox4x32-10's ten rounds: a Weyl sequence from the seed's two words. A
// kernel that makes many blocks with one key computes these once (philox_round_keys) instead of
// once per block.
struct PhiloxRoundKeys {
  uint32_t k0[10], k1[10];
};
NMSNN_HOST_DEVICE inline PhiloxRoundKeys philox_round_keys(uint32_t k0, uint32_t k1) {
  const uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;  // key increments (golden ratio, sqrt(3)-1)
  PhiloxRoundKeys k{};
  for (int round = 0; round < 10; ++round) {
    k.k0[round] = k0;
    k.k1[round] = k1;
    k0 += W0;
    k1 += W1;
  }
  return k;
}

// One Philox4x32-10 block with its round keys: 10 rounds of the multiply-xor bijection.
NMSNN_HOST_DEVICE inline Philox4x32 philox4x32_10(Philox4x32 ctr, const PhiloxRoundKeys& k) {
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;  // round multipliers
  for (int round = 0; round < 10; ++round) {
#if defined(__CUDA_ARCH__)
    // The same products as one 32 x 32 -> 64-bit multiply each (IMAD.WIDE.U32: hi and lo in one
    // instruction). From the 64-bit C++ form nvcc also added a known zero per product, and from
    // __umulhi plus a low multiply, in kernels that make several blocks at once, it issued an
    // IMAD.HI and an IMAD per product (sm_90 SASS); the masked products are bound by issue.
    uint32_t hi0, lo0, hi1, lo1;
    asm("{\n\t.reg .u64 p;\n\tmul.wide.u32 p, %2, %3;\n\tmov.b64 {%0, %1}, p;\n\t}"
        : "=r"(lo0), "=r"(hi0)
        : "r"(ctr.v[0]), "r"(M0));
    asm("{\n\t.reg .u64 p;\n\tmul.wide.u32 p, %2, %3;\n\tmov.b64 {%0, %1}, p;\n\t}"
        : "=r"(lo1), "=r"(hi1)
        : "r"(ctr.v[2]), "r"(M1));
#else
    const uint64_t p0 = uint64_t(M0) * ctr.v[0];
    const uint64_t p1 = uint64_t(M1) * ctr.v[2];
    const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
    const uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
#endif
    ctr = Philox4x32{{hi1 ^ ctr.v[1] ^ k.k0[round], lo1, hi0 ^ ctr.v[3] ^ k.k1[round], lo0}};
  }
  return ctr;
}

// One Philox4x32-10 block: its round keys from the key (k0, k1), then the rounds.
NMSNN_HOST_DEVICE inline Philox4x32 philox4x32_10(Philox4x32 ctr, uint32_t k0, uint32_t k1) {
  return philox4x32_10(ctr, philox_round_keys(k0, k1));
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

// The same with the seed's round keys computed once (philox_round_keys of its two words).
NMSNN_HOST_DEVICE inline Philox4x32 noise_block_words(const PhiloxRoundKeys& keys, uint32_t q,
                                                     uint32_t row, uint32_t t, uint32_t pass) {
  return philox4x32_10(Philox4x32{{q, row, t, pass}}, keys);
}
NMSNN_HOST_DEVICE inline PhiloxRoundKeys noise_round_keys(NoiseKey key) {
  return philox_round_keys(uint32_t(key.seed), uint32_t(key.seed >> 32));
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
