// cpu/noise_blocks.hpp — the noise masks of one group of four features at every time step.
//
// noise_blocks_over_time(key, q, b, T, out) gives out[j*T + t] = noise_block(key, q, b, t).v[j]:
// the Philox blocks of features 4q..4q+3 of row b for t = 0..T-1. Lanes run over t, eight at a
// time, with AVX2 in the avx2 kernel set, AVX-512 in the avx512 set and plain loops in the
// baseline (kernel_set.hpp); all equal the scalar nmsnn::noise_block bit for bit
// (tests/test_philox.cpp, tests/test_kernel_sets.cpp, and at configure time
// tests/compiler_soundness.cpp).
#pragma once

#include <cstdint>

#include "cpu/kernel_set.hpp"
#include "nmsnn/philox.hpp"

#if defined(NMSNN_CPU_X86)
#include <immintrin.h>
#endif

namespace nmsnn::cpu {

namespace detail_noise {
constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;

// Eight counters {q, b, t0..t0+7, pass}, ten rounds, in portable code.
inline void blocks8_portable(NoiseKey key, uint32_t q, uint32_t b, uint32_t t0, uint32_t out[4][8]) {
  uint32_t c0[8], c1[8], c2[8], c3[8];
  for (int l = 0; l < 8; ++l) {
    c0[l] = q;
    c1[l] = b;
    c2[l] = t0 + uint32_t(l);
    c3[l] = uint32_t(key.pass);
  }
  uint32_t k0 = uint32_t(key.seed), k1 = uint32_t(key.seed >> 32);
  for (int round = 0; round < 10; ++round) {
    for (int l = 0; l < 8; ++l) {
      const uint64_t p0 = uint64_t(kM0) * c0[l];
      const uint64_t p1 = uint64_t(kM1) * c2[l];
      const uint32_t n0 = uint32_t(p1 >> 32) ^ c1[l] ^ k0;
      const uint32_t n2 = uint32_t(p0 >> 32) ^ c3[l] ^ k1;
      c1[l] = uint32_t(p1);
      c3[l] = uint32_t(p0);
      c0[l] = n0;
      c2[l] = n2;
    }
    k0 += kW0;
    k1 += kW1;
  }
  for (int l = 0; l < 8; ++l) {
    out[0][l] = c0[l];
    out[1][l] = c1[l];
    out[2][l] = c2[l];
    out[3][l] = c3[l];
  }
}

#if defined(NMSNN_CPU_X86)
// One Philox round on 4 blocks, one per 64-bit lane, the counter words in the lanes' low halves
// (as the avx512 set does below): a vpmuludq of the low halves is the whole 64-bit product, its
// low word in place and its high word one dword swap away, so a round is two products, two
// swaps and four XORs. Splitting 8 32-bit lanes into even and odd products instead took six
// shifts and four blends more per round: 1.04-1.10 G uniforms/s on one Zen 3 core, 1.13-1.20 now
// (a throwaway microbenchmark of noise_blocks_over_time_avx2, T = 128, alternated runs).
[[gnu::always_inline]] NMSNN_TARGET_AVX2 inline void philox256_round(__m256i& c0, __m256i& c1,
                                                                     __m256i& c2, __m256i& c3,
                                                                     __m256i k0, __m256i k1) {
  const __m256i m0 = _mm256_set1_epi64x(kM0), m1 = _mm256_set1_epi64x(kM1);
  const __m256i p0 = _mm256_mul_epu32(c0, m0);
  const __m256i p1 = _mm256_mul_epu32(c2, m1);
  c0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_shuffle_epi32(p1, 0xB1), c1), k0);
  c2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_shuffle_epi32(p0, 0xB1), c3), k1);
  c1 = p1;
  c3 = p0;
}

// The low words of two groups of 4 lanes (steps t0..t0+3 and t0+4..t0+7), in step order.
[[gnu::always_inline]] NMSNN_TARGET_AVX2 inline void philox256_store(__m256i a, __m256i b,
                                                                     uint32_t* out) {
  // Per 128-bit half, [a.lo0 a.lo1 b.lo0 b.lo1]; then the halves' quadwords reordered.
  const __m256i ab = _mm256_unpacklo_epi64(_mm256_shuffle_epi32(a, 0x88),
                                           _mm256_shuffle_epi32(b, 0x88));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_permute4x64_epi64(ab, 0xD8));
}

// Counters {q, b, t0..t0+7, pass}, ten rounds, in two groups of four blocks whose rounds
// interleave, so one group's products overlap the other's XORs. Compiled for AVX2 whatever the
// build's baseline, and only called from the avx2 kernel set.
NMSNN_TARGET_AVX2 inline void blocks8_avx2(NoiseKey key, uint32_t q, uint32_t b, uint32_t t0,
                                           uint32_t out[4][8]) {
  const __m256i ta = _mm256_add_epi64(_mm256_set1_epi64x(t0), _mm256_setr_epi64x(0, 1, 2, 3));
  __m256i a0 = _mm256_set1_epi64x(q), a1 = _mm256_set1_epi64x(b), a2 = ta,
          a3 = _mm256_set1_epi64x(int64_t(uint32_t(key.pass)));
  __m256i b0 = a0, b1 = a1, b2 = _mm256_add_epi64(ta, _mm256_set1_epi64x(4)), b3 = a3;
  uint32_t k0 = uint32_t(key.seed), k1 = uint32_t(key.seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const __m256i kk0 = _mm256_set1_epi64x(k0), kk1 = _mm256_set1_epi64x(k1);
    philox256_round(a0, a1, a2, a3, kk0, kk1);
    philox256_round(b0, b1, b2, b3, kk0, kk1);
    k0 += kW0;
    k1 += kW1;
  }
  philox256_store(a0, b0, out[0]);
  philox256_store(a1, b1, out[1]);
  philox256_store(a2, b2, out[2]);
  philox256_store(a3, b3, out[3]);
}

// The same with one block per 64-bit lane, the counter words in the lanes' low halves: a 32x32
// bit product of the low halves (vpmuludq) is then the whole 64-bit product, its low word
// already in place and its high word one dword swap away (vpshufd, which runs on another port
// than the products; a 64-bit shift would compete with them), so a round is two products, two
// swaps and two three-way XORs. Nothing reads the lanes' high halves: the products ignore them,
// and the words are narrowed to 32 bits at the end. Two groups of 8 steps go through the rounds
// together, so one group's products overlap the other's XORs. No constant vectors (see
// kernel_set.hpp): the counters start from broadcasts and a lane index built by masked adds.
struct Philox512Keys {
  __m512i k0[10], k1[10];
};

NMSNN_TARGET_AVX512 inline Philox512Keys philox512_keys(NoiseKey key) {
  Philox512Keys keys;
  uint32_t k0 = uint32_t(key.seed), k1 = uint32_t(key.seed >> 32);
  for (int round = 0; round < 10; ++round) {
    keys.k0[round] = _mm512_set1_epi64(int64_t(k0));
    keys.k1[round] = _mm512_set1_epi64(int64_t(k1));
    k0 += kW0;
    k1 += kW1;
  }
  return keys;
}

// One Philox round on 8 blocks (a group), the counter words in c0..c3.
[[gnu::always_inline]] NMSNN_TARGET_AVX512 inline void philox512_round(__m512i& c0, __m512i& c1,
                                                                       __m512i& c2, __m512i& c3,
                                                                       __m512i k0, __m512i k1) {
  const __m512i m0 = _mm512_set1_epi64(int64_t(kM0)), m1 = _mm512_set1_epi64(int64_t(kM1));
  const __m512i p0 = _mm512_mul_epu32(c0, m0);
  const __m512i p1 = _mm512_mul_epu32(c2, m1);
  // 0xB1 swaps the dwords of each qword; 0x96 is a ^ b ^ c.
  c0 = _mm512_ternarylogic_epi64(_mm512_shuffle_epi32(p1, _MM_PERM_ENUM(0xB1)), c1, k0, 0x96);
  c2 = _mm512_ternarylogic_epi64(_mm512_shuffle_epi32(p0, _MM_PERM_ENUM(0xB1)), c3, k1, 0x96);
  c1 = p1;
  c3 = p0;
}

[[gnu::always_inline]] NMSNN_TARGET_AVX512 inline void philox512_store(__m512i c0, __m512i c1,
                                                                       __m512i c2, __m512i c3,
                                                                       uint32_t out[4][8]) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[0]), _mm512_cvtepi64_epi32(c0));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[1]), _mm512_cvtepi64_epi32(c1));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[2]), _mm512_cvtepi64_epi32(c2));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[3]), _mm512_cvtepi64_epi32(c3));
}

// Counters {q, b, t0 + l, pass} for l = 0..7 of two groups (the second starts at t0 + 8), ten
// rounds; out[g][j][l] is word j of step t0 + 8g + l.
NMSNN_TARGET_AVX512 inline void blocks16_avx512(const Philox512Keys& keys, uint32_t q, uint32_t b,
                                                uint32_t pass, uint32_t t0, uint32_t out[2][4][8]) {
  const __m512i one = _mm512_set1_epi64(1);
  __m512i t = _mm512_set1_epi64(int64_t(t0));
  t = _mm512_mask_add_epi64(t, __mmask8(0xAA), t, one);                          // +1 on odd lanes
  t = _mm512_mask_add_epi64(t, __mmask8(0xCC), t, _mm512_add_epi64(one, one));   // +2
  t = _mm512_mask_add_epi64(t, __mmask8(0xF0), t, _mm512_slli_epi64(one, 2));    // +4
  __m512i a0 = _mm512_set1_epi64(int64_t(q)), a1 = _mm512_set1_epi64(int64_t(b)), a2 = t,
          a3 = _mm512_set1_epi64(int64_t(pass));
  __m512i b0 = a0, b1 = a1, b2 = _mm512_add_epi64(t, _mm512_slli_epi64(one, 3)), b3 = a3;  // +8
  for (int round = 0; round < 10; ++round) {
    philox512_round(a0, a1, a2, a3, keys.k0[round], keys.k1[round]);
    philox512_round(b0, b1, b2, b3, keys.k0[round], keys.k1[round]);
  }
  philox512_store(a0, a1, a2, a3, out[0]);
  philox512_store(b0, b1, b2, b3, out[1]);
}

// The avx512 set's noise_blocks_over_time (below): 16 steps per call of blocks16_avx512.
NMSNN_TARGET_AVX512 inline void blocks_over_time_avx512(NoiseKey key, uint32_t q, uint32_t b,
                                                        int T, uint32_t* out) {
  const Philox512Keys keys = philox512_keys(key);
  for (int t0 = 0; t0 < T; t0 += 16) {
    uint32_t blocks[2][4][8];
    blocks16_avx512(keys, q, b, uint32_t(key.pass), uint32_t(t0), blocks);
    if (t0 + 16 <= T) {
      for (int g = 0; g < 2; ++g)
        for (int j = 0; j < 4; ++j)
          __builtin_memcpy(out + size_t(j) * T + t0 + 8 * g, blocks[g][j], 32);
    } else {
      for (int j = 0; j < 4; ++j)
        for (int l = 0; l < T - t0; ++l) out[size_t(j) * T + t0 + l] = blocks[l / 8][j][l % 8];
    }
  }
}
#endif
}  // namespace detail_noise

// The blocks with kernel set S; inlined into a caller compiled for S (an avx2 entry point has
// NMSNN_TARGET_AVX2, see input_product.hpp's gather_values; likewise avx512).
template <KernelSet S>
[[gnu::always_inline]] inline void noise_blocks_over_time_with(NoiseKey key, uint32_t q, uint32_t b,
                                                               int T, uint32_t* out) {
  b = noise_row(key, b);  // the blocks below build their counters themselves
#if defined(NMSNN_CPU_X86)
  if constexpr (S == KernelSet::avx512)
    return detail_noise::blocks_over_time_avx512(key, q, b, T, out);
#endif
  for (int t0 = 0; t0 < T; t0 += 8) {
    uint32_t blocks[4][8];
#if defined(NMSNN_CPU_X86)
    if constexpr (S == KernelSet::avx2)
      detail_noise::blocks8_avx2(key, q, b, uint32_t(t0), blocks);
    else
      detail_noise::blocks8_portable(key, q, b, uint32_t(t0), blocks);
#else
    detail_noise::blocks8_portable(key, q, b, uint32_t(t0), blocks);
#endif
    if (t0 + 8 <= T) {
      // Fixed-size copies, so the compiler emits vector moves (a variable count once became a
      // slow `rep movs`).
      for (int j = 0; j < 4; ++j) __builtin_memcpy(out + size_t(j) * T + t0, blocks[j], 32);
    } else {
      for (int j = 0; j < 4; ++j)
        for (int l = 0; l < T - t0; ++l) out[size_t(j) * T + t0 + l] = blocks[j][l];
    }
  }
}

#if defined(NMSNN_CPU_X86)
NMSNN_TARGET_AVX2 inline void noise_blocks_over_time_avx2(NoiseKey key, uint32_t q, uint32_t b,
                                                         int T, uint32_t* out) {
  noise_blocks_over_time_with<KernelSet::avx2>(key, q, b, T, out);
}
NMSNN_TARGET_AVX512 inline void noise_blocks_over_time_avx512(NoiseKey key, uint32_t q,
                                                             uint32_t b, int T, uint32_t* out) {
  noise_blocks_over_time_with<KernelSet::avx512>(key, q, b, T, out);
}
#endif

// With the kernel set chosen for this CPU.
inline void noise_blocks_over_time(NoiseKey key, uint32_t q, uint32_t b, int T, uint32_t* out) {
#if defined(NMSNN_CPU_X86)
  switch (active_kernel_set()) {
    case KernelSet::avx512: return noise_blocks_over_time_avx512(key, q, b, T, out);
    case KernelSet::avx2: return noise_blocks_over_time_avx2(key, q, b, T, out);
    default: break;
  }
#endif
  noise_blocks_over_time_with<KernelSet::baseline>(key, q, b, T, out);
}

}  // namespace nmsnn::cpu
