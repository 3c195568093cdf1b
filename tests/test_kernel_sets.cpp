// test_kernel_sets.cpp — the CPU engine's hot kernels in every kernel set this CPU can run
// (baseline, AVX2+FMA and AVX-512 where present) against plain reference loops and each other.
//
// Tolerances between the sets: the noise blocks are bit-identical in every set (integer Philox);
// the avx2 and avx512 products are bit-identical to each other (both fuse every multiply-add and
// add over j in the same order; only the column tiling differs, and a column's sum does not
// depend on which tile holds it); the baseline's (a multiply, then an add) differs from them by
// rounding, each within 4e-6 * (J + 1) of the exact sum of J products of values in [-1, 1).
//
// The whole test suite runs with the set chosen at run time; ctest's cpu_kernels_baseline_* and
// cpu_kernels_avx2_* / cpu_kernels_avx512_* entries run the engine tests again with
// NMSNN_CPU_KERNELS forced to each set (skipped where the CPU lacks it).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <cstdint>
#include <vector>

#include "cpu/input_product.hpp"
#include "cpu/kernel_set.hpp"
#include "cpu/noise_blocks.hpp"
#include "cpu/tile_gemm.hpp"
#include "nmsnn/philox.hpp"

namespace {

using nmsnn::cpu::KernelSet;
using nmsnn::cpu::RowsOf;

std::vector<KernelSet> supported_sets() {
  std::vector<KernelSet> sets{KernelSet::baseline};
  for (KernelSet set : {KernelSet::avx2, KernelSet::avx512})
    if (nmsnn::cpu::kernel_set_supported(set)) sets.push_back(set);
  return sets;
}

void blocks_with(KernelSet set, nmsnn::NoiseKey key, uint32_t q, uint32_t b, int T, uint32_t* out) {
#if defined(NMSNN_CPU_X86)
  if (set == KernelSet::avx2) return nmsnn::cpu::noise_blocks_over_time_avx2(key, q, b, T, out);
  if (set == KernelSet::avx512) return nmsnn::cpu::noise_blocks_over_time_avx512(key, q, b, T, out);
#endif
  nmsnn::cpu::noise_blocks_over_time_with<KernelSet::baseline>(key, q, b, T, out);
}

void gemm_with(KernelSet set, int rows, int J, int width, const float* A, size_t a_r, size_t a_j,
               RowsOf<const float> B, RowsOf<float> C) {
#if defined(NMSNN_CPU_X86)
  if (set == KernelSet::avx2)
    return nmsnn::cpu::gemm_accumulate_avx2<float>(rows, J, width, A, a_r, a_j, B, C);
  if (set == KernelSet::avx512)
    return nmsnn::cpu::gemm_accumulate_avx512<float>(rows, J, width, A, a_r, a_j, B, C);
#endif
  nmsnn::cpu::gemm_accumulate_baseline<float>(rows, J, width, A, a_r, a_j, B, C);
}

float value(uint64_t i) {  // deterministic values in [-1, 1)
  return nmsnn::uniform_from_bits(uint32_t(i * 0x9E3779B97F4A7C15ull >> 32)) * 2 - 1;
}

}  // namespace

TEST(KernelSets, ActiveSetIsSupportedAndNamed) {
  const KernelSet set = nmsnn::cpu::active_kernel_set();
  EXPECT_TRUE(nmsnn::cpu::kernel_set_supported(set));
  const std::string name = nmsnn::cpu::to_string(set);
  EXPECT_TRUE(name == "baseline" || name == "avx2" || name == "avx512") << name;
}

TEST(KernelSets, TheWidestSupportedSetIsChosenUnlessForced) {
  const char* env = std::getenv("NMSNN_CPU_KERNELS");
  const std::string forced = env ? env : "";
  const KernelSet set = nmsnn::cpu::active_kernel_set();
  if (!forced.empty() && forced != "auto") {
    EXPECT_EQ(nmsnn::cpu::to_string(set), forced);
    return;
  }
  const std::vector<KernelSet> sets = supported_sets();
  EXPECT_EQ(set, sets.back()) << nmsnn::cpu::to_string(set);
}

TEST(KernelSets, NoiseBlocksEqualTheScalarGeneratorInEverySet) {
  const nmsnn::NoiseKey key{0x0123456789abcdefull, 42};
  for (KernelSet set : supported_sets()) {
    for (int T : {1, 7, 8, 15, 16, 19, 128}) {
      std::vector<uint32_t> bits(4 * size_t(T));
      blocks_with(set, key, 5, 3, T, bits.data());
      for (int t = 0; t < T; ++t) {
        const nmsnn::Philox4x32 r = nmsnn::noise_block(key, 5, 3, uint32_t(t));
        for (int j = 0; j < 4; ++j)
          ASSERT_EQ(bits[size_t(j) * T + t], r.v[j])
              << nmsnn::cpu::to_string(set) << " T=" << T << " t=" << t << " j=" << j;
      }
    }
  }
}

// C[r, :] += sum_j A(r, j) B(j, :), with gathered B rows and scattered C rows, against a double
// loop. The sets differ only in rounding (FMA), so each is within a few float ulps of the sum.
TEST(KernelSets, TiledProductMatchesAReferenceInEverySet) {
  struct Shape {
    int rows, J, width;
    bool index;
  };
  // Widths that use every column tile of every set (avx512: 3-vector, 4-vector, 2- and 1-vector
  // tiles and the 8-float tail; avx2: 104 = 3 x 24 + 2 x 16), row counts that use short row
  // tiles, and rows and J past the product's blocks of 64 rows and 128 values of j.
  for (const Shape s :
       {Shape{1, 1, 8, false}, Shape{3, 5, 16, false}, Shape{4, 130, 24, false},
        Shape{7, 300, 40, true}, Shape{9, 257, 72, true}, Shape{2, 17, 8, true},
        Shape{13, 140, 112, true}, Shape{8, 129, 64, false}, Shape{17, 60, 200, true},
        Shape{6, 33, 56, false}, Shape{70, 150, 104, true}, Shape{130, 260, 104, false}}) {
    const int B_rows = s.J + 3;
    std::vector<float> A(size_t(s.rows) * s.J), B(size_t(B_rows) * s.width);
    for (size_t i = 0; i < A.size(); ++i) A[i] = value(i + 1);
    for (size_t i = 0; i < B.size(); ++i) B[i] = value(i + 1000003);
    std::vector<int> b_index(s.J), c_index(s.rows);
    for (int j = 0; j < s.J; ++j) b_index[j] = (j * 7 + 1) % B_rows;
    for (int r = 0; r < s.rows; ++r) c_index[r] = s.rows - 1 - r;
    std::vector<double> want(size_t(s.rows) * s.width);
    for (int r = 0; r < s.rows; ++r)
      for (int c = 0; c < s.width; ++c) {
        const int cr = s.index ? c_index[r] : r;
        double sum = value(uint64_t(cr) * 977 + c);  // C's initial value
        for (int j = 0; j < s.J; ++j)
          sum += double(A[size_t(r) * s.J + j]) *
                 B[size_t(s.index ? b_index[j] : j) * s.width + c];
        want[size_t(cr) * s.width + c] = sum;
      }
    for (KernelSet set : supported_sets()) {
      std::vector<float> C(size_t(s.rows) * s.width);
      for (int r = 0; r < s.rows; ++r)
        for (int c = 0; c < s.width; ++c) C[size_t(r) * s.width + c] = value(uint64_t(r) * 977 + c);
      gemm_with(set, s.rows, s.J, s.width, A.data(), size_t(s.J), 1,
                {B.data(), size_t(s.width), s.index ? b_index.data() : nullptr},
                {C.data(), size_t(s.width), s.index ? c_index.data() : nullptr});
      for (size_t i = 0; i < C.size(); ++i)
        ASSERT_NEAR(C[i], want[i], 1e-6 * (s.J + 1) * 4)
            << nmsnn::cpu::to_string(set) << " rows=" << s.rows << " J=" << s.J
            << " width=" << s.width << " at " << i;
    }
  }
}

// The noise encoder's product and weight gradient for one sample, in the set chosen at run time,
// against SPEC.md 1's formula with the scalar noise_mask: 300 features, one of them zero, so the
// masked inputs are made in three chunks (kGatherChunk) and a Philox block (features 128..131)
// spans two of them; with the masks made again for the weight gradient, and kept from the
// forward (GatherBuffers::keep, the training step's way). Tolerance: float sums of up to 300
// products of magnitude <= 2.
TEST(KernelSets, NoisyInputProductMatchesTheMaskFormula) {
  for (const bool keep : {false, true}) {
    SCOPED_TRACE(keep ? "masks kept" : "masks made again");
    const int T = 5, I = 300, H = 20, width = 24;
    const nmsnn::NoiseKey key{77, 3};
    const uint32_t b = 4;
    std::vector<float> x(I), WT(size_t(I) * width, 0.0f), bias(width, 0.0f);
    for (int i = 0; i < I; ++i) x[i] = value(uint64_t(i) + 17) + 1.0f;  // in [0, 2)
    x[1] = 0.0f;
    for (int i = 0; i < I; ++i)
      for (int h = 0; h < H; ++h) WT[size_t(i) * width + h] = value(uint64_t(i) * 131 + h + 5);
    for (int h = 0; h < H; ++h) bias[h] = value(uint64_t(h) + 999);
    std::vector<float> du(size_t(T) * width, 0.0f);
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < H; ++h) du[size_t(t) * width + h] = value(uint64_t(t) * 61 + h + 7);

    nmsnn::cpu::SampleInput<float> in;
    in.noisy = true;
    in.T = T;
    in.I = I;
    in.data = x.data();
    in.key = key;
    in.b = b;
    nmsnn::cpu::GatherBuffers<float> buf;
    buf.keep = keep;
    std::vector<float> a(size_t(T) * width), dWT(size_t(I) * width, 0.0f), dbias(width, 0.0f);
    nmsnn::cpu::input_forward(in, WT.data(), bias.data(), width, a.data(), buf);
    nmsnn::cpu::input_weight_grad(in, du.data(), width, dWT.data(), dbias.data(), buf);

    const double tol = 4e-6 * (I + 1) * 2;
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < H; ++h) {
        double want = bias[h];
        for (int i = 0; i < I; ++i)
          want += double(WT[size_t(i) * width + h]) * nmsnn::noise_mask(key, t, b, i) * x[i];
        ASSERT_NEAR(a[size_t(t) * width + h], want, tol) << "a at t=" << t << " h=" << h;
      }
    for (int i = 0; i < I; ++i)
      for (int h = 0; h < H; ++h) {
        double want = 0;
        for (int t = 0; t < T; ++t)
          want += double(nmsnn::noise_mask(key, t, b, i)) * x[i] * du[size_t(t) * width + h];
        ASSERT_NEAR(dWT[size_t(i) * width + h], want, 4e-6 * (T + 1) * 2)
            << "dW at i=" << i << " h=" << h;
      }
    EXPECT_EQ(buf.holds_all, keep);  // the kept values were the ones multiplied
  }
}

// The fused sets agree bit for bit (see the top of the file); the baseline within rounding.
TEST(KernelSets, FusedSetsAreBitIdenticalAndTheBaselineIsWithinRounding) {
  const std::vector<KernelSet> sets = supported_sets();
  for (const int width : {8, 16, 48, 64, 104, 112, 200}) {
    const int rows = 11, J = 300;
    std::vector<float> A(size_t(rows) * J), B(size_t(J) * width);
    for (size_t i = 0; i < A.size(); ++i) A[i] = value(i + 5);
    for (size_t i = 0; i < B.size(); ++i) B[i] = value(i + 50005);
    std::vector<std::vector<float>> out;
    for (KernelSet set : sets) {
      std::vector<float> C(size_t(rows) * width, 0.0f);
      gemm_with(set, rows, J, width, A.data(), J, 1, {B.data(), size_t(width), nullptr},
                {C.data(), size_t(width), nullptr});
      out.push_back(C);
    }
    for (size_t k = 1; k < sets.size(); ++k) {
      for (size_t i = 0; i < out[k].size(); ++i) {
        if (sets[k] == KernelSet::avx512 && sets[k - 1] == KernelSet::avx2)
          ASSERT_EQ(out[k][i], out[k - 1][i]) << "avx512 vs avx2, width " << width << " at " << i;
        else
          ASSERT_NEAR(out[k][i], out[0][i], 4e-6 * (J + 1))
              << nmsnn::cpu::to_string(sets[k]) << " vs baseline, width " << width << " at " << i;
      }
    }
  }
}

// Within one set, the same product twice gives the same bits.
TEST(KernelSets, EverySetIsBitIdenticalFromRunToRun) {
  const int rows = 9, J = 200, width = 112;
  std::vector<float> A(size_t(rows) * J), B(size_t(J) * width);
  for (size_t i = 0; i < A.size(); ++i) A[i] = value(i + 3);
  for (size_t i = 0; i < B.size(); ++i) B[i] = value(i + 30003);
  for (KernelSet set : supported_sets()) {
    std::vector<float> C1(size_t(rows) * width, 0.0f), C2 = C1;
    gemm_with(set, rows, J, width, A.data(), J, 1, {B.data(), size_t(width), nullptr},
              {C1.data(), size_t(width), nullptr});
    gemm_with(set, rows, J, width, A.data(), J, 1, {B.data(), size_t(width), nullptr},
              {C2.data(), size_t(width), nullptr});
    EXPECT_EQ(C1, C2) << nmsnn::cpu::to_string(set);
  }
}

TEST(KernelSets, WidthNotAMultipleOfEightIsAnError) {
  std::vector<float> A(4), B(12), C(12);
  EXPECT_THROW(nmsnn::cpu::gemm_accumulate<float>(1, 1, 12, A.data(), 1, 1, {B.data(), 12, nullptr},
                                                 {C.data(), 12, nullptr}),
               nmsnn::Error);
}
