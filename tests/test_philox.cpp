// test_philox.cpp — Philox4x32-10 against Random123's known answers, and the noise-mask mapping.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "cpu/noise_blocks.hpp"
#include "nmsnn/philox.hpp"

using nmsnn::Philox4x32;

namespace {
void expect_block(Philox4x32 ctr, uint32_t k0, uint32_t k1, Philox4x32 want) {
  const Philox4x32 got = nmsnn::philox4x32_10(ctr, k0, k1);
  for (int j = 0; j < 4; ++j) EXPECT_EQ(got.v[j], want.v[j]) << "word " << j;
}
}  // namespace

// The three philox4x32 10 lines of Random123's kat_vectors (counter, key, expected output).
TEST(Philox, Random123KnownAnswers) {
  expect_block({{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}});
  expect_block({{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
               {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}});
  expect_block({{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
               {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}});
}

TEST(Philox, UniformUsesTheTop24BitsAndStaysBelowOne) {
  EXPECT_EQ(nmsnn::uniform_from_bits(0u), 0.0f);
  EXPECT_EQ(nmsnn::uniform_from_bits(0xffu), 0.0f);  // low 8 bits are dropped
  EXPECT_EQ(nmsnn::uniform_from_bits(0x80000000u), 0.5f);
  EXPECT_EQ(nmsnn::uniform_from_bits(0xffffffffu), 1.0f - 1.0f / 16777216.0f);
  EXPECT_LT(nmsnn::uniform_from_bits(0xffffffffu), 1.0f);
}

// The mapping documented in philox.hpp: counter {i/4, b, t, pass}, key {seed lo, seed hi}.
TEST(Philox, NoiseMaskFollowsTheDocumentedMapping) {
  const nmsnn::NoiseKey key{0x0123456789abcdefull, 42};
  for (uint32_t t : {0u, 5u})
    for (uint32_t b : {0u, 3u})
      for (uint32_t i : {0u, 1u, 6u, 783u}) {
        const Philox4x32 r =
            nmsnn::philox4x32_10({{i / 4, b, t, 42u}}, 0x89abcdefu, 0x01234567u);
        EXPECT_EQ(nmsnn::noise_mask(key, t, b, i), float(r.v[i % 4] >> 8) / 16777216.0f);
      }
}

// With row keys, row b's counter word is rows[b]: its masks are those of row rows[b] unkeyed.
TEST(Philox, RowKeysReplaceTheRowInTheCounter) {
  const uint32_t rows[3] = {0xdeadbeefu, 5u, 0u};
  const nmsnn::NoiseKey plain{99, 3}, keyed{99, 3, rows};
  for (uint32_t b = 0; b < 3; ++b)
    for (uint32_t t : {0u, 7u})
      for (uint32_t i : {0u, 2u, 9u})
        EXPECT_EQ(nmsnn::noise_mask(keyed, t, b, i), nmsnn::noise_mask(plain, t, rows[b], i));
  EXPECT_NE(nmsnn::noise_mask(keyed, 0, 1, 0), nmsnn::noise_mask(plain, 0, 1, 0));
}

TEST(Philox, MasksDifferAcrossEveryAddressComponent) {
  const nmsnn::NoiseKey key{7, 1};
  const float m = nmsnn::noise_mask(key, 2, 3, 4);
  EXPECT_NE(m, nmsnn::noise_mask({8, 1}, 2, 3, 4));  // seed
  EXPECT_NE(m, nmsnn::noise_mask({7, 2}, 2, 3, 4));  // pass
  EXPECT_NE(m, nmsnn::noise_mask(key, 3, 3, 4));     // t
  EXPECT_NE(m, nmsnn::noise_mask(key, 2, 4, 4));     // b
  EXPECT_NE(m, nmsnn::noise_mask(key, 2, 3, 5));     // i
}

TEST(Philox, MasksLookUniform) {
  // 40,000 masks: mean 1/2 and variance 1/12 within a few standard errors.
  const nmsnn::NoiseKey key{123, 0};
  double sum = 0, sum2 = 0;
  const int n = 40000;
  for (int k = 0; k < n; ++k) {
    const double m = nmsnn::noise_mask(key, k / 400, (k / 20) % 20, k % 20);
    ASSERT_GE(m, 0.0);
    ASSERT_LT(m, 1.0);
    sum += m;
    sum2 += m * m;
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.5, 4 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(var, 1.0 / 12, 0.003);
}

// The CPU engine's vectorised generator (lanes over t; AVX2 when built for it) must equal the
// scalar reference, output layout out[j*T + t].
TEST(Philox, BlocksOverTimeMatchTheScalarGenerator) {
  const nmsnn::NoiseKey key{0xfeedfacecafebeefull, 0xffffffff5ull};
  const int T = 19;  // not a multiple of the lane count
  std::vector<uint32_t> bits(4 * T);
  nmsnn::cpu::noise_blocks_over_time(key, 11, 7, T, bits.data());
  for (int t = 0; t < T; ++t) {
    const Philox4x32 r = nmsnn::noise_block(key, 11, 7, uint32_t(t));
    for (int j = 0; j < 4; ++j) EXPECT_EQ(bits[j * T + t], r.v[j]) << "t=" << t << " j=" << j;
  }
}

// Kernels compute a seed's round keys once and make every block from them: the same blocks.
TEST(Philox, RoundKeysComputedOnceGiveTheSameBlocks) {
  const nmsnn::NoiseKey key{0x0123456789abcdefull, 77};
  const nmsnn::PhiloxRoundKeys keys = nmsnn::noise_round_keys(key);
  for (uint32_t q : {0u, 1u, 195u})
    for (uint32_t b : {0u, 999u})
      for (uint32_t t : {0u, 127u}) {
        const Philox4x32 want = nmsnn::noise_block(key, q, b, t);
        const Philox4x32 got = nmsnn::noise_block_words(keys, q, b, t, uint32_t(key.pass));
        for (int j = 0; j < 4; ++j) EXPECT_EQ(got.v[j], want.v[j]) << q << " " << b << " " << t;
      }
}
