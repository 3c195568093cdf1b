// test_cuda_kernels.cpp — every CUDA kernel against its CPU twin, at awkward sizes.
//
// Built only with CUDA; each test skips with "no CUDA device: <why>" on a machine without a GPU.
// Run this first on a new GPU machine: each test names one kernel, so a failure points at it.
//
//   NoiseMask         kernels::noise_mask vs nmsnn::noise_mask: bit-identical
//   MaskedLinear      the fused masked product: masks inside the tile loader bit-identical (an
//                     identity weight makes the product the mask itself), then random inputs
//                     against a double-precision sum with the rigorous FP32 bound
//                     (n + 2) * 2^-24 * sum |terms| (n roundings of the running sum, one of
//                     each product, one of the masked input); the TF32 and BF16 variants
//                     with their operand-rounding bounds (kTf32Extra, kBf16Extra), and every
//                     layer width around the 128-neuron tile in all three precisions; BF16
//                     masks rounded to nearest even bit for bit; the wgmma forward and weight
//                     gradient by sample (skipped without compute capability 9.0 and sm_90a
//                     code) against double, and in the emulation bit for bit against mma.sync
//   Gemm              the three row-major cuBLAS products (the layout conventions), in fp32,
//                     tf32 and bf16
//   Lif               forward and backward time loops vs cpu/lif.hpp: bit-identical. The test
//                     uses decay 0.5 and penalty/threshold 1.5, for which every product in the
//                     recurrence is exact, so fused or unfused multiply-adds round the same way
//                     and any difference is a bug, not rounding
//   SpikesFromU, Optimizer, NllLoss
//   Activation        each kind, forward and backward vs cpu/activation_layer.hpp: relu
//                     bit-identical, tanh and sigmoid within the ulps of tanhf / expf
//   SpikingActivation vs cpu/spiking_activation_layer.hpp: relu bit-identical; tanh and sigmoid
//                     compared by their integral (a spike may move by a step), with the rate
//                     regularizer's loss and gradient
//   Lowpass           forward, backward and the parameter gradients vs cpu/lowpass_layer.hpp
//   TimeAxis          time_sum / time_broadcast vs cpu/temporal_pool_layer.hpp and the readout
//   Bias              add_bias bit-identical, bias_grad_reduce within the FP32 sum bound
//   GatherRows        a batch's rows gathered from a kept training set, bit for bit
//   BlockSizes        every kernel with a block-size argument at 32 .. 1024 threads against its
//                     twin, and bad block sizes (0, 48, 2048) refused with the kernel's name
//   ClusterForward    the two-layer spiking pass by sample clusters against a double-precision
//                     loop of SPEC.md 1-3 with the same masks (samples within 1e-4 of a spiking
//                     decision left out), at shapes that leave blocks without features or
//                     neurons; when DeviceNetwork chooses it; shapes it cannot hold refused
//   SampleClusterStep the training step by sample clusters: logits and the four gradients
//                     against a double-precision backpropagation through time, NLL, BCE, MSE
// The tolerance of each is stated, with its reason, over its checks.
#include <gtest/gtest.h>

#include "require_cuda.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "activation.cuh"
#include "bias.cuh"
#include "gather_rows.cuh"
#include "cpu/activation_layer.hpp"
#include "cpu/activations.hpp"
#include "cpu/lif.hpp"
#include "cpu/lowpass_layer.hpp"
#include "cpu/spiking_activation_layer.hpp"
#include "cpu/temporal_pool_layer.hpp"
#include "cublas_gemm.cuh"
#include "cuda_check.cuh"
#include "lif_backward.cuh"
#include "lif_forward.cuh"
#include "lowpass.cuh"
#include "training/loss_math.hpp"
#include "masked_linear.cuh"
#include "nll_loss.cuh"
#include "nmsnn/cuda.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/optimizer.hpp"
#include "nmsnn/philox.hpp"
#include "noise_mask.cuh"
#include "optimizer_update.cuh"
#include "sample_cluster.cuh"
#include "spiking_activation.cuh"
#include "throws_with.hpp"
#include "time_axis.cuh"
#include "wgmma_descriptor.hpp"

namespace {

using nmsnn::NoiseKey;
using nmsnn::ResetRule;
using nmsnn::SpikingLayer;

// A device array that copies to and from std::vector.
template <class T>
class Dev {
 public:
  explicit Dev(size_t n) : n_(n) {
    NMSNN_CUDA_CHECK(cudaMalloc(&p_, std::max<size_t>(n, 1) * sizeof(T)));
    NMSNN_CUDA_CHECK(cudaMemset(p_, 0, std::max<size_t>(n, 1) * sizeof(T)));
  }
  explicit Dev(const std::vector<T>& v) : Dev(v.size()) { put(v); }
  ~Dev() { cudaFree(p_); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  T* get() const { return p_; }
  void put(const std::vector<T>& v) {
    if (v.empty()) return;  // an empty vector's data() may be null, which memcpy must not get
    NMSNN_CUDA_CHECK(cudaMemcpy(p_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> host() const {
    NMSNN_CUDA_CHECK(cudaDeviceSynchronize());  // kernel errors surface here, with their name
    std::vector<T> v(n_);
    if (n_) NMSNN_CUDA_CHECK(cudaMemcpy(v.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
  }

 private:
  T* p_ = nullptr;
  size_t n_;
};

std::vector<float> random_vector(size_t n, float lo, float hi, uint64_t seed, float zeros = 0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi), coin(0, 1);
  std::vector<float> v(n);
  for (float& x : v) x = coin(rng) < zeros ? 0.0f : d(rng);
  return v;
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Elements whose bits differ (+0 and -0 count as equal); reports the first few.
int count_bit_differences(const std::vector<float>& got, const std::vector<float>& want,
                          const std::string& what) {
  if (got.size() != want.size()) {
    ADD_FAILURE() << what << ": " << got.size() << " elements on the device, " << want.size()
                  << " on the cpu";
    return 1;
  }
  int bad = 0;
  for (size_t k = 0; k < got.size(); ++k)
    if (bits(got[k]) != bits(want[k]) && !(got[k] == 0 && want[k] == 0) && bad++ < 5)
      ADD_FAILURE() << what << " element " << k << ": device " << got[k] << ", cpu " << want[k];
  return bad;
}

constexpr double kUnit = 1.0 / 16777216.0;  // 2^-24, FP32 unit roundoff

// The block sizes the launch wrappers default to (their headers), passed explicitly by the
// twin tests; BlockSizes runs the same checks at 32 .. 1024.
constexpr int kDefaultBlock = 256;
constexpr int kNllDefaultBlock = 128;

// Checks |got - want| <= rel * scale per element; reports the first failures with context.
template <class Index>
void expect_close(const std::vector<float>& got, const std::vector<double>& want,
                  const std::vector<double>& scale, double rel, const std::string& what,
                  Index&& describe) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int failures = 0;
  double worst = 0;
  for (size_t k = 0; k < got.size(); ++k) {
    const double err = std::abs(double(got[k]) - want[k]);
    const double bound = rel * scale[k] + 1e-30;
    worst = std::max(worst, err / (scale[k] + 1e-30));
    if (!(err <= bound) && failures++ < 5)
      ADD_FAILURE() << what << " at " << describe(k) << ": got " << got[k] << ", want " << want[k]
                    << ", error " << err << " > bound " << bound;
  }
  EXPECT_EQ(failures, 0) << what << ": " << failures << " elements out of bound; worst error / "
                         << "sum|terms| = " << worst << " (allowed " << rel << ")";
}

// ---- noise masks -------------------------------------------------------------------------------

void check_noise_mask(int T, int B, int I, int block) {
  const NoiseKey key{0x123456789abcdefULL, 42};
  {
    Dev<float> out(size_t(T) * B * I);
    nmsnn::kernels::noise_mask(key, T, B, I, out.get(), nullptr, block);
    const auto got = out.host();
    int bad = 0;
    for (int t = 0; t < T; ++t)
      for (int b = 0; b < B; ++b)
        for (int i = 0; i < I; ++i) {
          const float want = nmsnn::noise_mask(key, t, b, i);
          const float g = got[(size_t(t) * B + b) * I + i];
          if (bits(g) != bits(want) && bad++ < 5)
            ADD_FAILURE() << "mask (t=" << t << ", b=" << b << ", i=" << i << "): device " << g
                          << ", host " << want;
        }
    EXPECT_EQ(bad, 0) << "T=" << T << " B=" << B << " I=" << I << " block=" << block;
  }
  // The encoded input m * x[b, i]: one product per element, bit-identical.
  const auto x = random_vector(size_t(B) * I, -1.0f, 2.0f, 8);
  Dev<float> dx(x), out(size_t(T) * B * I);
  nmsnn::kernels::masked_input(key, dx.get(), T, B, I, out.get(), nullptr, block);
  std::vector<float> want(size_t(T) * B * I);
  for (int t = 0; t < T; ++t)
    for (int b = 0; b < B; ++b)
      for (int i = 0; i < I; ++i)
        want[(size_t(t) * B + b) * I + i] = nmsnn::noise_mask(key, t, b, i) * x[size_t(b) * I + i];
  EXPECT_EQ(count_bit_differences(out.host(), want, "masked_input T=" + std::to_string(T) +
                                                        " block=" + std::to_string(block)),
            0);
}

TEST(NoiseMask, BitIdenticalToHost) {
  REQUIRE_CUDA();
  for (auto [T, B, I] : {std::tuple{1, 1, 1}, std::tuple{3, 5, 7}, std::tuple{37, 257, 33}})
    check_noise_mask(T, B, I, kDefaultBlock);
}

// ---- masked linear -----------------------------------------------------------------------------

struct MaskedShape {
  int T, B, K, N;
};
const MaskedShape kMaskedShapes[] = {
    {1, 1, 5, 7}, {2, 3, 33, 65}, {3, 5, 70, 64}, {37, 9, 784, 100}, {4, 257, 70, 17}, {128, 20, 130, 3}};

// X(m, k) = mask(t, b, k) * x[b, k], m = t*B + b, in double.
double masked(const NoiseKey& key, const std::vector<float>& x, int B, int K, long long m, int k) {
  const int t = int(m / B), b = int(m % B);
  return double(nmsnn::noise_mask(key, t, b, k)) * double(x[size_t(b) * K + k]);
}

// With W = identity (N = K) and x a power of two, out[m, n] = mask(t, b, n) * x exactly: a single
// nonzero product per sum. Any difference is a mask made wrongly inside the tile loader.
TEST(MaskedLinear, MasksInsideTheProductAreBitIdentical) {
  REQUIRE_CUDA();
  const NoiseKey key{99, 7};
  for (auto [T, B, K] : {std::tuple{3, 5, 7}, std::tuple{37, 9, 70}, std::tuple{2, 100, 130}}) {
    const int N = K;
    std::vector<float> x(size_t(B) * K, 0.5f), W(size_t(N) * K, 0.0f);
    for (int n = 0; n < N; ++n) W[size_t(n) * K + n] = 1.0f;
    Dev<float> dx(x), dW(W), out(size_t(T) * B * N);
    nmsnn::kernels::masked_linear_forward(key, dx.get(), T, B, K, dW.get(), N, out.get(),
                                          nmsnn::MatmulPrecision::fp32, nullptr);
    const auto got = out.host();
    int bad = 0;
    for (long long m = 0; m < (long long)T * B; ++m)
      for (int n = 0; n < N; ++n) {
        const float want = nmsnn::noise_mask(key, uint32_t(m / B), uint32_t(m % B), n) * 0.5f;
        const float g = got[size_t(m) * N + n];
        if (bits(g) != bits(want) && bad++ < 5)
          ADD_FAILURE() << "forward mask at (t=" << m / B << ", b=" << m % B << ", i=" << n
                        << "): " << g << " vs " << want;
      }
    EXPECT_EQ(bad, 0) << "forward, T=" << T << " B=" << B << " K=" << K;

    // Weight gradient: dU one-hot with one row m(n) per neuron n, so dW[n, k] = X(m(n), k).
    const long long M = (long long)T * B;
    std::vector<float> dU(size_t(M) * N, 0.0f);
    std::vector<long long> row(N);
    for (int n = 0; n < N; ++n) {
      row[n] = (n * 7919LL + 13) % M;
      dU[size_t(row[n]) * N + n] = 1.0f;
    }
    Dev<float> ddU(dU), dgrad(size_t(N) * K);
    Dev<float> scratch(nmsnn::kernels::masked_linear_wgrad_scratch(T, B, N, K));
    nmsnn::kernels::masked_linear_wgrad(key, dx.get(), T, B, K, ddU.get(), N, dgrad.get(),
                                        scratch.get(), nmsnn::MatmulPrecision::fp32, nullptr);
    const auto g2 = dgrad.host();
    bad = 0;
    for (int n = 0; n < N; ++n)
      for (int k = 0; k < K; ++k) {
        const float want =
            nmsnn::noise_mask(key, uint32_t(row[n] / B), uint32_t(row[n] % B), k) * 0.5f;
        if (bits(g2[size_t(n) * K + k]) != bits(want) && bad++ < 5)
          ADD_FAILURE() << "weight-gradient mask at n=" << n << ", k=" << k << " (row " << row[n]
                        << "): " << g2[size_t(n) * K + k] << " vs " << want;
      }
    EXPECT_EQ(bad, 0) << "wgrad, T=" << T << " B=" << B << " K=" << K;
  }
}

// A reduced-precision product must really round: most elements differ from the FP32 kernel's.
void expect_differs_from_fp32(const std::vector<float>& got, const std::vector<float>& fp32,
                              nmsnn::MatmulPrecision math, const std::string& what) {
  if (math == nmsnn::MatmulPrecision::fp32 || got.size() < 16) return;
  size_t differ = 0;
  for (size_t e = 0; e < got.size(); ++e) differ += bits(got[e]) != bits(fp32[e]);
  EXPECT_GT(differ, got.size() / 4) << what << ": only " << differ << " of " << got.size()
                                    << " elements differ from fp32; is " << to_string(math)
                                    << " arithmetic used?";
}

// x[B, K] with whole quads of zeros (features 4c .. 4c+3 all 0), in four kinds of sample by
// b % 4: all zeros; dense; about 30% of the quads live, as an MNIST digit (bench/napkin_math.hpp),
// a fifth of their values 0 still; only the last feature. The masked products leave the zero
// quads out of their sums (masked_linear.cu), which must give the sums of the dense input.
std::vector<float> sparse_input(const MaskedShape& s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 2.0f), coin(0, 1);
  std::vector<float> x(size_t(s.B) * s.K, 0.0f);
  for (int b = 0; b < s.B; ++b) {
    float* row = x.data() + size_t(b) * s.K;
    for (int c = 0; 4 * c < s.K; ++c) {
      const bool live = b % 4 == 1 || (b % 4 == 2 && coin(rng) < 0.3f);
      for (int k = 4 * c; k < std::min(4 * c + 4, s.K) && live; ++k)
        row[k] = coin(rng) < 0.2f ? 0.0f : d(rng);
    }
    if (b % 4 == 3) row[s.K - 1] = d(rng);
  }
  return x;
}

using InputMaker = std::vector<float> (*)(const MaskedShape&, uint64_t seed);
std::vector<float> dense_input(const MaskedShape& s, uint64_t seed) {
  return random_vector(size_t(s.B) * s.K, -1.0f, 2.0f, seed, 0.2f);
}

template <class Shapes>
void check_masked_forward(
    nmsnn::MatmulPrecision math, double rel_extra, const Shapes& shapes,
    InputMaker make_x = dense_input,
    nmsnn::kernels::MmaInstruction instruction = nmsnn::kernels::MmaInstruction::automatic) {
  const NoiseKey key{2024, 3};
  for (const MaskedShape& s : shapes) {
    const long long M = (long long)s.T * s.B;
    const auto x = make_x(s, 1);
    const auto W = random_vector(size_t(s.N) * s.K, -0.3f, 0.3f, 2);
    Dev<float> dx(x), dW(W), out(size_t(M) * s.N);
    nmsnn::kernels::masked_linear_forward(key, dx.get(), s.T, s.B, s.K, dW.get(), s.N, out.get(),
                                          math, nullptr, instruction);
    const std::string name =
        "masked_linear_forward T=" + std::to_string(s.T) + " B=" + std::to_string(s.B) + " K=" +
        std::to_string(s.K) + " N=" + std::to_string(s.N) + " " + to_string(math) +
        (instruction == nmsnn::kernels::MmaInstruction::wgmma ? " wgmma" : "");
    if (math != nmsnn::MatmulPrecision::fp32) {
      Dev<float> ref(size_t(M) * s.N);
      nmsnn::kernels::masked_linear_forward(key, dx.get(), s.T, s.B, s.K, dW.get(), s.N, ref.get(),
                                            nmsnn::MatmulPrecision::fp32, nullptr);
      expect_differs_from_fp32(out.host(), ref.host(), math, name);
    }
    std::vector<double> want(size_t(M) * s.N), scale(want.size());
    for (long long m = 0; m < M; ++m)
      for (int n = 0; n < s.N; ++n) {
        double sum = 0, abs_sum = 0;
        for (int k = 0; k < s.K; ++k) {
          const double term = masked(key, x, s.B, s.K, m, k) * W[size_t(n) * s.K + k];
          sum += term;
          abs_sum += std::abs(term);
        }
        want[size_t(m) * s.N + n] = sum;
        scale[size_t(m) * s.N + n] = abs_sum;
      }
    expect_close(out.host(), want, scale, (s.K + 2) * kUnit + rel_extra, name,
                 [&](size_t e) {
                   return "(m=" + std::to_string(e / s.N) + ", n=" + std::to_string(e % s.N) + ")";
                 });
  }
}

template <class Shapes>
void check_masked_wgrad(
    nmsnn::MatmulPrecision math, double rel_extra, const Shapes& shapes,
    InputMaker make_x = dense_input,
    nmsnn::kernels::WgradWalk walk = nmsnn::kernels::WgradWalk::automatic,
    nmsnn::kernels::MmaInstruction instruction = nmsnn::kernels::MmaInstruction::automatic) {
  const NoiseKey key{77, 1};
  for (const MaskedShape& s : shapes) {
    const long long M = (long long)s.T * s.B;
    const auto x = make_x(s, 3);
    const auto dU = random_vector(size_t(M) * s.N, -1.0f, 1.0f, 4);
    Dev<float> dx(x), ddU(dU), dW(size_t(s.N) * s.K);
    Dev<float> scratch(nmsnn::kernels::masked_linear_wgrad_scratch(s.T, s.B, s.N, s.K));
    nmsnn::kernels::masked_linear_wgrad(key, dx.get(), s.T, s.B, s.K, ddU.get(), s.N, dW.get(),
                                        scratch.get(), math, nullptr, walk, instruction);
    const bool by_sample = walk == nmsnn::kernels::WgradWalk::samples;
    const auto split = by_sample ? nmsnn::kernels::masked_linear_wgrad_sample_split(s.B, s.N, s.K)
                                 : nmsnn::kernels::masked_linear_wgrad_split(M, s.N, s.K);
    const std::string name = "masked_linear_wgrad T=" + std::to_string(s.T) + " B=" +
                             std::to_string(s.B) + " K=" + std::to_string(s.K) + " N=" +
                             std::to_string(s.N) + " splits=" + std::to_string(split.splits) +
                             (by_sample                                   ? " by sample "
                              : walk == nmsnn::kernels::WgradWalk::rows   ? " by rows "
                                                                          : " automatic ") +
                             to_string(math) +
                             (instruction == nmsnn::kernels::MmaInstruction::wgmma ? " wgmma" : "");
    if (math != nmsnn::MatmulPrecision::fp32) {
      Dev<float> ref(size_t(s.N) * s.K);
      nmsnn::kernels::masked_linear_wgrad(key, dx.get(), s.T, s.B, s.K, ddU.get(), s.N, ref.get(),
                                          scratch.get(), nmsnn::MatmulPrecision::fp32, nullptr);
      expect_differs_from_fp32(dW.host(), ref.host(), math, name);
    }
    std::vector<double> want(size_t(s.N) * s.K, 0.0), scale(want.size(), 0.0);
    for (long long m = 0; m < M; ++m)
      for (int k = 0; k < s.K; ++k) {
        const double xm = masked(key, x, s.B, s.K, m, k);
        for (int n = 0; n < s.N; ++n) {
          const double term = double(dU[size_t(m) * s.N + n]) * xm;
          want[size_t(n) * s.K + k] += term;
          scale[size_t(n) * s.K + k] += std::abs(term);
        }
      }
    expect_close(dW.host(), want, scale, double(M + 2) * kUnit + rel_extra, name,
                 [&](size_t e) {
                   return "(n=" + std::to_string(e / s.K) + ", k=" + std::to_string(e % s.K) + ")";
                 });
  }
}

// The error bounds of the reduced precisions, as a fraction of sum |terms| (added to FP32's
// (n + 2) 2^-24 for the accumulation). Each operand is rounded once, to p significant bits
// (relative error <= 2^-p; TF32 p = 11, BF16 p = 8), so a product of two is within
// (1 + 2^-p)^2 - 1 ~ 2^(1-p): 2^-10 for TF32, 2^-7 ~ 7.8e-3 for BF16 (the issue's "~2^-9 per
// operand" is the RMS of the rounding, not its bound). The tensor cores add their products in an
// order and with an alignment of their own, so each bound has 2x headroom.
constexpr double kTf32Extra = 2.0 / 1024;
constexpr double kBf16Extra = 2.0 / 128;

TEST(MaskedLinear, ForwardMatchesDoubleFp32) {
  REQUIRE_CUDA();
  check_masked_forward(nmsnn::MatmulPrecision::fp32, 0.0, kMaskedShapes);
}
TEST(MaskedLinear, WeightGradMatchesDoubleFp32) {
  REQUIRE_CUDA();
  check_masked_wgrad(nmsnn::MatmulPrecision::fp32, 0.0, kMaskedShapes);
}
TEST(MaskedLinear, ForwardMatchesDoubleTf32) {
  REQUIRE_CUDA();
  check_masked_forward(nmsnn::MatmulPrecision::tf32, kTf32Extra, kMaskedShapes);
}
TEST(MaskedLinear, WeightGradMatchesDoubleTf32) {
  REQUIRE_CUDA();
  check_masked_wgrad(nmsnn::MatmulPrecision::tf32, kTf32Extra, kMaskedShapes);
  // The walk by rows on the same shapes: automatic takes it only for T < 16 or B < 8, and it is
  // what a device short of shared memory runs for W1's shape ({37, 9, 784, 100}).
  check_masked_wgrad(nmsnn::MatmulPrecision::tf32, kTf32Extra, kMaskedShapes, dense_input,
                     nmsnn::kernels::WgradWalk::rows);
}
TEST(MaskedLinear, ForwardMatchesDoubleBf16) {
  REQUIRE_CUDA();
  check_masked_forward(nmsnn::MatmulPrecision::bf16, kBf16Extra, kMaskedShapes);
}
TEST(MaskedLinear, WeightGradMatchesDoubleBf16) {
  REQUIRE_CUDA();
  check_masked_wgrad(nmsnn::MatmulPrecision::bf16, kBf16Extra, kMaskedShapes);
  // The walk by rows on the same shapes: automatic takes it only for T < 16 or B < 8, and it is
  // what a device short of shared memory runs for W1's shape ({37, 9, 784, 100}).
  check_masked_wgrad(nmsnn::MatmulPrecision::bf16, kBf16Extra, kMaskedShapes, dense_input,
                     nmsnn::kernels::WgradWalk::rows);
}

// Inputs with whole zero quads (sparse_input): blocks of one sample (T = 128), of several (T =
// 3, 37) and samples across two blocks (T = 140); K past one chunk of 1024 features and K % 4
// != 0; in every precision, against the double sums of the dense input; the weight gradient
// in TF32 and BF16 walked by rows and by samples.
TEST(MaskedLinear, ZeroInputQuadsLeaveTheSumsAsTheyAre) {
  REQUIRE_CUDA();
  using nmsnn::MatmulPrecision;
  const std::vector<MaskedShape> shapes = {
      {128, 4, 200, 20}, {3, 12, 70, 9}, {37, 4, 1100, 5}, {140, 3, 1030, 12}};
  for (auto [math, extra] : {std::pair{MatmulPrecision::fp32, 0.0},
                             std::pair{MatmulPrecision::tf32, kTf32Extra},
                             std::pair{MatmulPrecision::bf16, kBf16Extra}}) {
    check_masked_forward(math, extra, shapes, sparse_input);
    check_masked_wgrad(math, extra, shapes, sparse_input);
    if (math != MatmulPrecision::fp32)
      check_masked_wgrad(math, extra, shapes, sparse_input, nmsnn::kernels::WgradWalk::samples);
  }
}

// The TF32 and BF16 weight gradient walked sample by sample (WgradWalk::samples: each sample's
// live quads, groups of 8 added into a shared tile), on dense and sparse inputs: one stage and a
// sample alone in its rounds (T = 16, dense MNIST width: 8 groups in each of 4 ranges); T % 16
// != 0 and two neuron slices (N = 130); 35 splits of 2 samples with several samples a round
// (B = 70); K % 4 != 0.
TEST(MaskedLinear, WeightGradBySampleMatchesDouble) {
  REQUIRE_CUDA();
  using nmsnn::MatmulPrecision;
  const std::vector<MaskedShape> shapes = {
      {16, 9, 784, 100}, {37, 20, 300, 130}, {20, 70, 70, 7}, {17, 10, 67, 50}};
  for (auto [math, extra] : {std::pair{MatmulPrecision::tf32, kTf32Extra},
                             std::pair{MatmulPrecision::bf16, kBf16Extra}})
    for (InputMaker make_x : {dense_input, sparse_input})
      check_masked_wgrad(math, extra, shapes, make_x, nmsnn::kernels::WgradWalk::samples);
}

// Layer widths around the 128-neuron tile (and its 16-wide fragments), in every precision: one
// tile, a full tile, one neuron past it, two tiles; for three of them also M = 600, which gives
// the weight gradient two splits.
TEST(MaskedLinear, EveryWidthInEveryPrecision) {
  REQUIRE_CUDA();
  using nmsnn::MatmulPrecision;
  for (int N : {1, 63, 64, 65, 100, 127, 128, 129, 200}) {
    std::vector<MaskedShape> shapes = {{2, 5, 37, N}};
    if (N == 64 || N == 129 || N == 200) shapes.push_back({3, 200, 20, N});
    for (auto [math, extra] : {std::pair{MatmulPrecision::fp32, 0.0},
                               std::pair{MatmulPrecision::tf32, kTf32Extra},
                               std::pair{MatmulPrecision::bf16, kBf16Extra}}) {
      check_masked_forward(math, extra, shapes);
      check_masked_wgrad(math, extra, shapes);
    }
  }
}

// Skips a test of the wgmma kernels, saying why, where they cannot run (not compute capability
// 9.0, or a build without sm_90a code); the CUDA emulation always runs them.
#define REQUIRE_WGMMA()                                                                    \
  do {                                                                                     \
    if (!nmsnn::kernels::masked_linear_wgmma_available())                                  \
      GTEST_SKIP() << "wgmma needs compute capability 9.0 and sm_90a code; this device or " \
                      "build has neither";                                                 \
  } while (0)

// The forward on wgmma (kernels/wgmma.cuh): every width class (N = 64, 104, 128 columns: NT = 8,
// 13, 16) and past it, dense and sparse inputs, K % 4 != 0, against the double sums with the
// same bounds as mma.sync. In the CUDA emulation the two instructions add the same products in
// the same order, so there the outputs must also be bit-identical to mma.sync's: a wrong core
// matrix offset, a swapped k step or a lane's row in the wrong place all change them. On a GPU
// without wgmma (not compute capability 9.0, or no sm_90a code) the test says so and skips.
TEST(MaskedLinear, WgmmaForwardMatchesDoubleAndMmaSync) {
  REQUIRE_CUDA();
  namespace k = nmsnn::kernels;
  using nmsnn::MatmulPrecision;
  REQUIRE_WGMMA();
  std::vector<MaskedShape> shapes = {{37, 9, 784, 100}, {128, 3, 200, 100}, {2, 5, 37, 1},
                                     {2, 5, 37, 64},    {3, 7, 70, 65},     {2, 5, 37, 128},
                                     {3, 70, 20, 129},  {2, 5, 37, 200},    {64, 3, 300, 129}};
  for (auto [math, extra] : {std::pair{MatmulPrecision::tf32, kTf32Extra},
                             std::pair{MatmulPrecision::bf16, kBf16Extra}}) {
    check_masked_forward(math, extra, shapes, dense_input, k::MmaInstruction::wgmma);
    check_masked_forward(math, extra, std::vector<MaskedShape>{{128, 4, 200, 20}, {37, 4, 1100, 5}},
                         sparse_input, k::MmaInstruction::wgmma);
    // With W's arranged tiles (masked_linear_weight_tiles_floats) a dense block copies its
    // stages from them: the same operands, so the same bits as without, on a GPU too (the
    // tiles' group layout, a slice's offset or the zero group past K wrong would change them).
    // In the emulation both are also mma.sync's bits.
    const NoiseKey key{5, 6};
    for (const MaskedShape& s : shapes)
      for (InputMaker make_x : {dense_input, sparse_input}) {
        const auto x = make_x(s, 7);
        const auto W = random_vector(size_t(s.N) * s.K, -0.3f, 0.3f, 8);
        const size_t n = size_t(s.T) * s.B * s.N;
        Dev<float> dx(x), dW(W), a(n), b(n), c(n);
        Dev<float> tiles(k::masked_linear_weight_tiles_floats(s.N, s.K, math));
        const std::string what = "N=" + std::to_string(s.N) + " K=" + std::to_string(s.K) + " T=" +
                                 std::to_string(s.T) + " " + to_string(math);
        k::masked_linear_forward(key, dx.get(), s.T, s.B, s.K, dW.get(), s.N, a.get(), math,
                                 nullptr, k::MmaInstruction::wgmma);
        k::masked_linear_forward(key, dx.get(), s.T, s.B, s.K, dW.get(), s.N, c.get(), math,
                                 nullptr, k::MmaInstruction::wgmma, tiles.get());
        EXPECT_EQ(count_bit_differences(c.host(), a.host(), "wgmma with tiles vs without " + what),
                  0);
#ifdef NMSNN_EMULATED_CUDA
        k::masked_linear_forward(key, dx.get(), s.T, s.B, s.K, dW.get(), s.N, b.get(), math,
                                 nullptr, k::MmaInstruction::mma_sync);
        EXPECT_EQ(count_bit_differences(a.host(), b.host(), "wgmma vs mma.sync " + what), 0);
#endif
      }
  }
}

// The arranged tiles' scratch: its size by class and precision (a slice of 8 NT neurons x 16
// words (TF32) or 8 (BF16) a group of 16 features, ceil(K / 16) + 1 groups), none in FP32, and a
// misaligned scratch refused with the function's name.
TEST(MaskedLinear, WeightTilesScratch) {
  namespace k = nmsnn::kernels;
  using nmsnn::MatmulPrecision;
  EXPECT_EQ(k::masked_linear_weight_tiles_floats(100, 784, MatmulPrecision::tf32),
            size_t(50) * 104 * 16);
  EXPECT_EQ(k::masked_linear_weight_tiles_floats(100, 784, MatmulPrecision::bf16),
            size_t(50) * 104 * 8);
  EXPECT_EQ(k::masked_linear_weight_tiles_floats(20, 17, MatmulPrecision::tf32),
            size_t(3) * 64 * 16);
  EXPECT_EQ(k::masked_linear_weight_tiles_floats(129, 300, MatmulPrecision::tf32),
            size_t(2) * 20 * 128 * 16);
  EXPECT_EQ(k::masked_linear_weight_tiles_floats(100, 784, MatmulPrecision::fp32), size_t(0));
  REQUIRE_CUDA();
  const int T = 4, B = 2, K = 8, N = 4;
  Dev<float> x(size_t(B) * K), W(size_t(N) * K), out(size_t(T) * B * N), tiles(1024);
  EXPECT_TRUE(throws_with(
      [&] {
        k::masked_linear_forward(NoiseKey{1, 2}, x.get(), T, B, K, W.get(), N, out.get(),
                                 MatmulPrecision::tf32, nullptr, k::MmaInstruction::automatic,
                                 tiles.get() + 1);
      },
      {"masked_linear_forward", "weight tiles' scratch must be 16-byte aligned"}));
}

// The weight gradient by sample on wgmma (the product taken as dW^T = X^T dU, the masked input as
// wgmma's A): every width class (NT = 8, 13, 16 and two slices), dense inputs (8 groups: both
// warpgroups on one sample) and sparse ones (rounds of several samples, whose warpgroups issue
// one product per sample among their warps), T % 16 != 0, K % 4 != 0, against the double sums;
// in the CUDA emulation also bit-identical to the mma.sync kernel (the same products in the same
// order), which a wrong core-matrix offset, row order or accumulator column breaks.
TEST(MaskedLinear, WgmmaWeightGradBySampleMatchesDoubleAndMmaSync) {
  REQUIRE_CUDA();
  namespace k = nmsnn::kernels;
  using nmsnn::MatmulPrecision;
  REQUIRE_WGMMA();
  const std::vector<MaskedShape> shapes = {
      {16, 9, 784, 100}, {37, 20, 300, 130}, {20, 70, 70, 7}, {17, 10, 67, 50}, {16, 8, 40, 128},
      {32, 9, 200, 105}};
  for (auto [math, extra] : {std::pair{MatmulPrecision::tf32, kTf32Extra},
                             std::pair{MatmulPrecision::bf16, kBf16Extra}}) {
    for (InputMaker make_x : {dense_input, sparse_input})
      check_masked_wgrad(math, extra, shapes, make_x, k::WgradWalk::samples,
                         k::MmaInstruction::wgmma);
#ifdef NMSNN_EMULATED_CUDA
    const NoiseKey key{9, 4};
    for (const MaskedShape& s : shapes)
      for (InputMaker make_x : {dense_input, sparse_input}) {
        const auto x = make_x(s, 5);
        const auto dU = random_vector(size_t(s.T) * s.B * s.N, -1.0f, 1.0f, 6);
        const size_t n = size_t(s.N) * s.K;
        Dev<float> dx(x), ddU(dU), a(n), b(n);
        Dev<float> scratch(k::masked_linear_wgrad_scratch(s.T, s.B, s.N, s.K));
        for (auto [out, instruction] : {std::pair{&a, k::MmaInstruction::wgmma},
                                        std::pair{&b, k::MmaInstruction::mma_sync}})
          k::masked_linear_wgrad(key, dx.get(), s.T, s.B, s.K, ddU.get(), s.N, out->get(),
                                 scratch.get(), math, nullptr, k::WgradWalk::samples,
                                 instruction);
        EXPECT_EQ(count_bit_differences(a.host(), b.host(),
                                        "wgrad wgmma vs mma.sync N=" + std::to_string(s.N) +
                                            " " + to_string(math)),
                  0);
      }
#endif
  }
}

// The descriptor's fields where the PTX ISA puts them: start address >> 4 in bits 0-13, the
// leading byte offset >> 4 in 16-29, the stride byte offset >> 4 in 32-45, no swizzle.
TEST(MaskedLinear, WgmmaDescriptorFields) {
  namespace k = nmsnn::kernels;
  EXPECT_EQ(k::wgmma_descriptor(0x1230, 128, 512), 0x123ull | 8ull << 16 | 32ull << 32);
  EXPECT_EQ(k::wgmma_descriptor(0x3FFF0, 0x3FFF0, 0x10), 0x3FFFull | 0x3FFFull << 16 | 1ull << 32);
  EXPECT_EQ(k::wgmma_descriptor(0, 0, 0), 0ull);
  EXPECT_EQ(k::wgmma_descriptor(0x1230, 128, 256) >> 62, 0ull);
}

// BF16 rounding to nearest even, as the device's __float2bfloat16 (host side, for the tests).
float round_bf16(float v) {
  uint32_t u = bits(v);
  u += 0x7FFFu + ((u >> 16) & 1u);
  u &= 0xFFFF0000u;
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

// v as the tensor cores take it in `math`: rounded to TF32 (10 mantissa bits, to nearest, ties
// away from zero: cvt.rna.tf32.f32) or to BF16 (round_bf16); the identity for FP32 products.
float operand(float v, nmsnn::MatmulPrecision math) {
  if (math == nmsnn::MatmulPrecision::fp32) return v;
  if (math == nmsnn::MatmulPrecision::bf16) return round_bf16(v);
  uint32_t u = (bits(v) + 0x1000u) & ~0x1FFFu;
  std::memcpy(&v, &u, 4);
  return v;
}

// With W = identity and x = 0.5 each output is one product, mask * 0.5 rounded to BF16 (the
// weight 1 is exact): the BF16 path rounds its staged operands to nearest even, bit for bit.
// The weight gradient with a one-hot dU gives the same for its masked operand.
TEST(MaskedLinear, Bf16RoundsMasksToNearestEven) {
  REQUIRE_CUDA();
  const NoiseKey key{99, 7};
  const int T = 3, B = 5, K = 70, N = K;
  const long long M = (long long)T * B;
  std::vector<float> x(size_t(B) * K, 0.5f), W(size_t(N) * K, 0.0f), dU(size_t(M) * N, 0.0f);
  for (int n = 0; n < N; ++n) W[size_t(n) * K + n] = 1.0f;
  for (int n = 0; n < N; ++n) dU[size_t((n * 7919LL + 13) % M) * N + n] = 1.0f;
  Dev<float> dx(x), dW(W), ddU(dU), out(size_t(M) * N), grad(size_t(N) * K);
  nmsnn::kernels::masked_linear_forward(key, dx.get(), T, B, K, dW.get(), N, out.get(),
                                        nmsnn::MatmulPrecision::bf16, nullptr);
  Dev<float> scratch(nmsnn::kernels::masked_linear_wgrad_scratch(T, B, N, K));
  nmsnn::kernels::masked_linear_wgrad(key, dx.get(), T, B, K, ddU.get(), N, grad.get(),
                                      scratch.get(), nmsnn::MatmulPrecision::bf16, nullptr);
  std::vector<float> want_out(size_t(M) * N), want_grad(size_t(N) * K);
  for (long long m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n)
      want_out[size_t(m) * N + n] =
          round_bf16(nmsnn::noise_mask(key, uint32_t(m / B), uint32_t(m % B), n) * 0.5f);
  for (int n = 0; n < N; ++n) {
    const long long m = (n * 7919LL + 13) % M;
    for (int k = 0; k < K; ++k)
      want_grad[size_t(n) * K + k] =
          round_bf16(nmsnn::noise_mask(key, uint32_t(m / B), uint32_t(m % B), k) * 0.5f);
  }
  EXPECT_EQ(count_bit_differences(out.host(), want_out, "bf16 forward, identity weights"), 0);
  EXPECT_EQ(count_bit_differences(grad.host(), want_grad, "bf16 weight gradient, one-hot dU"), 0);
}

// ---- cuBLAS products ---------------------------------------------------------------------------

// The three products in `math`, each within (n + 2) 2^-24 + extra of sum |terms|; in tf32 and
// bf16 most elements must also differ from the FP32 products (the operands really are rounded).
// `bf16_arrays`: the bf16 products get scratch and round their operands into BF16 arrays first.
void check_gemm(nmsnn::MatmulPrecision math, double extra, bool bf16_arrays = false) {
  cublasHandle_t handle;
  ASSERT_EQ(cublasCreate(&handle), CUBLAS_STATUS_SUCCESS);
  for (auto [M, N, K] : {std::tuple{1, 1, 1}, std::tuple{15, 7, 5}, std::tuple{333, 65, 33},
                         std::tuple{1000, 17, 70}}) {
    const auto X = random_vector(size_t(M) * K, -1, 1, 5);
    const auto W = random_vector(size_t(N) * K, -1, 1, 6);
    const auto dY = random_vector(size_t(M) * N, -1, 1, 7);
    Dev<float> dX(X), dW(W), ddY(dY), Y(size_t(M) * N), gW(size_t(N) * K), gX(size_t(M) * K);
    const size_t scratch_bytes = bf16_arrays ? nmsnn::kernels::gemm_bf16_bytes(M, N, K) : 0;
    Dev<uint8_t> scratch(scratch_bytes);
    const nmsnn::kernels::Bf16Operands bf16{bf16_arrays ? scratch.get() : nullptr, scratch_bytes};
    nmsnn::kernels::gemm_forward(handle, math, M, N, K, dX.get(), dW.get(), Y.get(), "test forward", bf16);
    nmsnn::kernels::gemm_weight_grad(handle, math, M, N, K, ddY.get(), dX.get(), gW.get(), "test wgrad", bf16);
    nmsnn::kernels::gemm_input_grad(handle, math, M, N, K, ddY.get(), dW.get(), gX.get(), "test dgrad", bf16);
    const std::string shape = " M=" + std::to_string(M) + " N=" + std::to_string(N) +
                              " K=" + std::to_string(K) + " " + to_string(math);
    if (math != nmsnn::MatmulPrecision::fp32) {
      using nmsnn::MatmulPrecision;
      Dev<float> rY(size_t(M) * N), rW(size_t(N) * K), rX(size_t(M) * K);
      nmsnn::kernels::gemm_forward(handle, MatmulPrecision::fp32, M, N, K, dX.get(), dW.get(), rY.get(), "ref forward");
      nmsnn::kernels::gemm_weight_grad(handle, MatmulPrecision::fp32, M, N, K, ddY.get(), dX.get(), rW.get(), "ref wgrad");
      nmsnn::kernels::gemm_input_grad(handle, MatmulPrecision::fp32, M, N, K, ddY.get(), dW.get(), rX.get(), "ref dgrad");
      expect_differs_from_fp32(Y.host(), rY.host(), math, "Y = X W^T" + shape);
      expect_differs_from_fp32(gW.host(), rW.host(), math, "dW = dY^T X" + shape);
      expect_differs_from_fp32(gX.host(), rX.host(), math, "dX = dY W" + shape);
    }
    {
      std::vector<double> want(size_t(M) * N), scale(want.size());
      for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n)
          for (int k = 0; k < K; ++k) {
            const double t = double(X[size_t(m) * K + k]) * W[size_t(n) * K + k];
            want[size_t(m) * N + n] += t;
            scale[size_t(m) * N + n] += std::abs(t);
          }
      expect_close(Y.host(), want, scale, (K + 2) * kUnit + extra, "Y = X W^T" + shape,
                   [&](size_t e) { return std::to_string(e / N) + "," + std::to_string(e % N); });
    }
    {
      std::vector<double> want(size_t(N) * K), scale(want.size());
      for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n)
          for (int k = 0; k < K; ++k) {
            const double t = double(dY[size_t(m) * N + n]) * X[size_t(m) * K + k];
            want[size_t(n) * K + k] += t;
            scale[size_t(n) * K + k] += std::abs(t);
          }
      expect_close(gW.host(), want, scale, (M + 2) * kUnit + extra, "dW = dY^T X" + shape,
                   [&](size_t e) { return std::to_string(e / K) + "," + std::to_string(e % K); });
    }
    {
      std::vector<double> want(size_t(M) * K), scale(want.size());
      for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n)
          for (int k = 0; k < K; ++k) {
            const double t = double(dY[size_t(m) * N + n]) * W[size_t(n) * K + k];
            want[size_t(m) * K + k] += t;
            scale[size_t(m) * K + k] += std::abs(t);
          }
      expect_close(gX.host(), want, scale, (N + 2) * kUnit + extra, "dX = dY W" + shape,
                   [&](size_t e) { return std::to_string(e / K) + "," + std::to_string(e % K); });
    }
  }
  cublasDestroy(handle);
}

TEST(Gemm, RowMajorProductsMatchDouble) {
  REQUIRE_CUDA();
  check_gemm(nmsnn::MatmulPrecision::fp32, 0.0);
}
// cuBLAS's FAST_TF32 and FAST_16BF compute types: the same operand-rounding bounds as the
// tensor-core path of masked_linear (kTf32Extra, kBf16Extra).
TEST(Gemm, Tf32ProductsMatchDouble) {
  REQUIRE_CUDA();
  check_gemm(nmsnn::MatmulPrecision::tf32, kTf32Extra);
}
TEST(Gemm, Bf16ProductsMatchDouble) {
  REQUIRE_CUDA();
  check_gemm(nmsnn::MatmulPrecision::bf16, kBf16Extra);
}
// The BF16 products on BF16 arrays (kernels::Bf16Operands, what the engine passes): the same
// operand-rounding bound; their rounding is the FAST_16BF path's (nearest even), so in the CUDA
// emulation, whose sums run in one order, both give the same bits. Too little scratch is refused.
TEST(Gemm, Bf16ArraysMatchDouble) {
  REQUIRE_CUDA();
  check_gemm(nmsnn::MatmulPrecision::bf16, kBf16Extra, true);
  cublasHandle_t handle;
  ASSERT_EQ(cublasCreate(&handle), CUBLAS_STATUS_SUCCESS);
  const int M = 33, N = 7, K = 5;
  const auto X = random_vector(size_t(M) * K, -1, 1, 8), W = random_vector(size_t(N) * K, -1, 1, 9);
  Dev<float> dX(X), dW(W), fast(size_t(M) * N), arrays(size_t(M) * N);
  Dev<uint8_t> scratch(nmsnn::kernels::gemm_bf16_bytes(M, N, K));
  nmsnn::kernels::gemm_forward(handle, nmsnn::MatmulPrecision::bf16, M, N, K, dX.get(), dW.get(),
                               fast.get(), "fast");
  nmsnn::kernels::gemm_forward(handle, nmsnn::MatmulPrecision::bf16, M, N, K, dX.get(), dW.get(),
                               arrays.get(), "arrays",
                               {scratch.get(), nmsnn::kernels::gemm_bf16_bytes(M, N, K)});
#ifdef NMSNN_EMULATED_CUDA
  EXPECT_EQ(count_bit_differences(arrays.host(), fast.host(), "bf16 arrays vs FAST_16BF"), 0);
#endif
  EXPECT_TRUE(throws_with(
      [&] {
        nmsnn::kernels::gemm_forward(handle, nmsnn::MatmulPrecision::bf16, M, N, K, dX.get(),
                                     dW.get(), arrays.get(), "layer 1 forward",
                                     {scratch.get(), 256});
      },
      {"layer 1 forward: the BF16 operands of Y[M,N] = X[M,K] W[N,K]^T with M=33, N=7, K=5 need "
       "768 bytes of scratch, got 256"}));
  cublasDestroy(handle);
}

// ---- the neuron time loops -----------------------------------------------------------------------

struct LifShape {
  int T, B, H;
};
const LifShape kLifShapes[] = {{1, 1, 1}, {2, 3, 7}, {37, 5, 65}, {128, 17, 100}, {5, 300, 3}};

SpikingLayer exact_layer(ResetRule reset, bool delay) {
  SpikingLayer l;
  l.size = 0;  // unused by the kernels
  l.decay = 0.5f;      // decay * v is exact
  l.threshold = 1.0f;
  l.penalty = 1.5f;    // penalty/threshold = 1.5: (1 - 1.5 g) is exact
  l.reset = reset;
  l.delay = delay;
  return l;
}

// [T, B, H] -> per-sample [T, H] for sample b.
std::vector<float> sample_of(const std::vector<float>& a, int T, int B, int H, int b) {
  std::vector<float> out(size_t(T) * H);
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < H; ++h) out[size_t(t) * H + h] = a[(size_t(t) * B + b) * H + h];
  return out;
}

// One case of the LIF time loops at one block size: forward, then backward as a hidden layer and
// as the last layer, and the bias gradient's reduction.
void check_lif(const LifShape& s, ResetRule reset, bool delay, int begin, int block) {
  const std::string name = "T=" + std::to_string(s.T) + " B=" + std::to_string(s.B) +
                           " H=" + std::to_string(s.H) + " " + nmsnn::to_string(reset) +
                           (delay ? " delay" : " no delay") + " begin_eval=" +
                           std::to_string(begin) + " block=" + std::to_string(block);
  const SpikingLayer layer = exact_layer(reset, delay);
  const size_t n = size_t(s.T) * s.B * s.H;
  const auto a = random_vector(n, -0.5f, 2.0f, 11);
  const auto bias = random_vector(s.H, -0.3f, 0.3f, 12);
  const float scale = begin > 0 ? 1.0f / float(s.T - begin) : 1.0f;

  Dev<float> du_state(a), dbias(bias), spikes(n), tstate(n), tspikes(n), logits(size_t(s.B) * s.H),
      rates(size_t(s.B) * s.H);
  nmsnn::kernels::LifForwardArgs fa;
  fa.T = s.T, fa.B = s.B, fa.H = s.H;
  fa.bias = dbias.get();
  fa.u = du_state.get();
  fa.spikes = spikes.get();
  fa.trace_state = tstate.get();
  fa.trace_spikes = tspikes.get();
  fa.logits = logits.get();
  fa.rates = rates.get();
  fa.begin_eval = begin;
  fa.readout_scale = scale;
  nmsnn::kernels::lif_forward(layer, fa, nullptr, block);
  const auto u_dev = du_state.host(), s_dev = spikes.host(), ts_dev = tstate.host(),
             tp_dev = tspikes.host(), l_dev = logits.host(), r_dev = rates.host();

  // CPU twin, sample by sample; a + bias rounded first, as the kernel does.
  nmsnn::cpu::LifNeurons<float> neurons = nmsnn::cpu::LifNeurons<float>::from(layer);
  neurons.size = s.H;
  std::vector<float> u_cpu(n), st_cpu(n), sp_cpu(n), l_cpu(size_t(s.B) * s.H), r_cpu(l_cpu.size());
  for (int b = 0; b < s.B; ++b) {
    std::vector<float> ab = sample_of(a, s.T, s.B, s.H, b);
    for (int t = 0; t < s.T; ++t)
      for (int h = 0; h < s.H; ++h) ab[size_t(t) * s.H + h] += bias[h];
    std::vector<float> u(size_t(s.T) * s.H), st(u.size()), sp(u.size());
    nmsnn::cpu::lif_forward(neurons, s.T, ab.data(), u.data(), st.data(), sp.data());
    for (int t = 0; t < s.T; ++t)
      for (int h = 0; h < s.H; ++h) {
        const size_t at = (size_t(t) * s.B + b) * s.H + h;
        u_cpu[at] = u[size_t(t) * s.H + h];
        st_cpu[at] = st[size_t(t) * s.H + h];
        sp_cpu[at] = sp[size_t(t) * s.H + h];
      }
    for (int h = 0; h < s.H; ++h) {
      float sum = 0, fired = 0;
      for (int t = begin; t < s.T; ++t) sum += st[size_t(t) * s.H + h];
      for (int t = 0; t < s.T; ++t) fired += u[size_t(t) * s.H + h] > layer.threshold;
      l_cpu[size_t(b) * s.H + h] = sum * scale;
      r_cpu[size_t(b) * s.H + h] = fired / float(s.T);  // as cpu/lif_layer.hpp
    }
  }
  EXPECT_EQ(count_bit_differences(u_dev, u_cpu, name + " u"), 0) << name;
  EXPECT_EQ(count_bit_differences(s_dev, sp_cpu, name + " spikes"), 0) << name;
  EXPECT_EQ(count_bit_differences(tp_dev, sp_cpu, name + " traced spikes"), 0) << name;
  EXPECT_EQ(count_bit_differences(ts_dev, st_cpu, name + " traced state"), 0) << name;
  EXPECT_EQ(count_bit_differences(l_dev, l_cpu, name + " logits"), 0) << name;
  EXPECT_EQ(count_bit_differences(r_dev, r_cpu, name + " rates"), 0) << name;

  // Backward, as a hidden layer (d_spikes) and as the last layer (dlogits).
  const auto d_spikes = random_vector(n, -1.0f, 1.0f, 13);
  const auto dlog = random_vector(size_t(s.B) * s.H, -1.0f, 1.0f, 14);
  for (bool last : {false, true}) {
    Dev<float> du_saved(u_cpu), dds(d_spikes), ddl(dlog), du(n), part(size_t(s.B) * s.H),
        db(s.H);
    nmsnn::kernels::LifBackwardArgs ba;
    ba.T = s.T, ba.B = s.B, ba.H = s.H;
    ba.u = du_saved.get();
    ba.d_spikes = last ? nullptr : dds.get();
    ba.dlogits = last ? ddl.get() : nullptr;
    ba.begin_eval = begin;
    ba.readout_scale = scale;
    ba.du = du.get();
    ba.dbias_part = part.get();
    nmsnn::kernels::lif_backward(layer, ba, nullptr, block);
    nmsnn::kernels::bias_grad_reduce(part.get(), s.B, s.H, db.get(), nullptr, block);
    const auto du_dev = du.host(), db_dev = db.host();

    std::vector<float> du_cpu(n);
    std::vector<double> db_want(s.H, 0.0), db_scale(s.H, 0.0);
    for (int b = 0; b < s.B; ++b) {
      const std::vector<float> ub = sample_of(u_cpu, s.T, s.B, s.H, b);
      std::vector<float> dstate(size_t(s.T) * s.H, 0.0f), dsp(size_t(s.T) * s.H, 0.0f);
      if (last) {
        for (int t = begin; t < s.T; ++t)
          for (int h = 0; h < s.H; ++h) dstate[size_t(t) * s.H + h] = dlog[size_t(b) * s.H + h] * scale;
      } else {
        dsp = sample_of(d_spikes, s.T, s.B, s.H, b);
      }
      std::vector<float> dub(size_t(s.T) * s.H);
      nmsnn::cpu::lif_backward(neurons, s.T, ub.data(), dstate.data(), dsp.data(), dub.data());
      for (int t = 0; t < s.T; ++t)
        for (int h = 0; h < s.H; ++h) {
          du_cpu[(size_t(t) * s.B + b) * s.H + h] = dub[size_t(t) * s.H + h];
          db_want[h] += dub[size_t(t) * s.H + h];
          db_scale[h] += std::abs(dub[size_t(t) * s.H + h]);
        }
    }
    const std::string bname = name + (last ? " (last layer)" : " (hidden layer)");
    EXPECT_EQ(count_bit_differences(du_dev, du_cpu, bname + " du"), 0) << bname;
    expect_close(db_dev, db_want, db_scale, (double(s.T) * s.B + 2) * kUnit, bname + " dbias",
                 [](size_t h) { return "h=" + std::to_string(h); });
  }
}

TEST(Lif, ForwardAndBackwardBitIdenticalToCpu) {
  REQUIRE_CUDA();
  for (const LifShape& s : kLifShapes)
    for (ResetRule reset : {ResetRule::scale, ResetRule::subtract})
      for (bool delay : {true, false})
        for (int begin : {0, s.T / 2}) check_lif(s, reset, delay, begin, kDefaultBlock);
}

using nmsnn::Input;
using nmsnn::NetworkSpec;
using nmsnn::cuda::DeviceNetwork;

// A cuBLAS handle for the tests that build a DeviceNetwork, destroyed at the end of the scope.
struct CublasHandle {
  cublasHandle_t handle = nullptr;
  CublasHandle() {
    if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS)
      throw std::runtime_error("cublasCreate failed");
  }
  ~CublasHandle() { cublasDestroy(handle); }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
};

// lif_backward fused with a small spiking layer above (LifBackwardArgs::du_above): its d_spikes
// and the layer above's per-sample weight gradient, against the unfused kernel fed d_spikes
// made in double on the host, and dW in double. The saved state is u (FP32) or spike16 codes
// (their decoded values are the spikes x); T crosses the 4-step prefetch; A up to the limit.
void check_fused_backward(bool spike16, ResetRule reset, bool delay, int T, int A) {
  namespace k = nmsnn::kernels;
  const int B = 3, H = 33;
  const std::string name = std::string(spike16 ? "spike16" : "u") + " " +
                           nmsnn::to_string(reset) + (delay ? " delay" : " no delay") +
                           " T=" + std::to_string(T) + " A=" + std::to_string(A);
  SpikingLayer layer = exact_layer(reset, delay);
  layer.threshold = 0.7f;
  const size_t n = size_t(T) * B * H;
  const auto u = random_vector(n, -0.5f, 2.0f, 31);
  const auto du_above = random_vector(size_t(T) * B * A, -1.0f, 1.0f, 32);
  const auto w_above = random_vector(size_t(A) * H, -0.5f, 0.5f, 33);
  // The spike made at (t, b, h), as backward sees it. spike16 codes are a positive float's bits
  // 30..15 (kernels/lif_saved.cuh; truncated here: any code will do, its decoded value is x).
  std::vector<uint16_t> codes(n);
  std::vector<double> made(n);
  for (size_t e = 0; e < n; ++e) {
    const float s = std::max(u[e] - layer.threshold, 0.0f);
    codes[e] = uint16_t(bits(s) >> 15);
    const uint32_t decoded_bits = uint32_t(codes[e]) << 15;
    float decoded;
    std::memcpy(&decoded, &decoded_bits, sizeof decoded);
    made[e] = spike16 ? double(decoded) : double(s);
  }
  // Unfused reference: d_spikes[t', b, h] = sum_j du_above[t', b, j] w[j, h] (t' the step the
  // layer above read), dW[b, j, h] = sum over t of du_above[out(t), b, j] x made at t.
  std::vector<float> d_spikes(n);
  std::vector<double> dw_want(size_t(B) * A * H, 0.0), dw_scale(dw_want.size(), 0.0);
  for (int t = 0; t < T; ++t)
    for (int b = 0; b < B; ++b)
      for (int h = 0; h < H; ++h) {
        double sum = 0;
        for (int j = 0; j < A; ++j)
          sum += double(du_above[(size_t(t) * B + b) * A + j]) * w_above[size_t(j) * H + h];
        d_spikes[(size_t(t) * B + b) * H + h] = float(sum);
        const int out = delay ? t + 1 : t;
        if (out >= T) continue;
        const double x = made[(size_t(t) * B + b) * H + h];
        for (int j = 0; j < A; ++j) {
          const double term = double(du_above[(size_t(out) * B + b) * A + j]) * x;
          dw_want[(size_t(b) * A + j) * H + h] += term;
          dw_scale[(size_t(b) * A + j) * H + h] += std::abs(term);
        }
      }
  Dev<float> du_saved(u), dds(d_spikes), ddua(du_above), dwa(w_above), du_ref(n), du_got(n),
      part_ref(size_t(B) * H), part_got(size_t(B) * H), dw_part(size_t(B) * A * H);
  Dev<uint16_t> dcodes(codes);
  k::LifBackwardArgs ref;
  ref.T = T, ref.B = B, ref.H = H;
  if (spike16)
    ref.saved_spikes = dcodes.get();
  else
    ref.u = du_saved.get();
  k::LifBackwardArgs fused = ref;
  ref.d_spikes = dds.get();
  ref.du = du_ref.get();
  ref.dbias_part = part_ref.get();
  k::lif_backward(layer, ref, nullptr);
  fused.du_above = ddua.get();
  fused.w_above = dwa.get();
  fused.above = A;
  fused.dw_above_part = dw_part.get();
  fused.du = du_got.get();
  fused.dbias_part = part_got.get();
  k::lif_backward(layer, fused, nullptr);
  // du is linear in d_spikes, which the fused loop sums in FP32 (A terms) and the reference
  // rounds once from double: a few units of 2^-24 of the terms, grown by the recurrence's
  // factors (decay <= 1, dv/du <= 1) over at most T steps.
  const auto want_du = du_ref.host(), got_du = du_got.host();
  std::vector<double> du_want(want_du.begin(), want_du.end()), du_scale(n);
  double biggest = 0;
  for (float v : want_du) biggest = std::max(biggest, double(std::abs(v)));
  for (size_t e = 0; e < n; ++e) du_scale[e] = biggest;
  expect_close(got_du, du_want, du_scale, (A + 2.0) * T * kUnit, name + " du",
               [&](size_t e) { return "element " + std::to_string(e); });
  const auto want_part = part_ref.host(), got_part = part_got.host();
  expect_close(got_part, std::vector<double>(want_part.begin(), want_part.end()),
               std::vector<double>(want_part.size(), biggest * T), (A + 2.0) * T * kUnit,
               name + " dbias partials", [&](size_t e) { return "element " + std::to_string(e); });
  expect_close(dw_part.host(), dw_want, dw_scale, (T + 2.0) * kUnit, name + " dW above",
               [&](size_t e) { return "element " + std::to_string(e); });
}

// A DeviceNetwork in BF16 plans room for its cuBLAS products' BF16 operands after the rest of its
// workspace: the largest product's (gemm_bf16_bytes), every layer's but a noisy first layer's
// (the masked product's), over T*B rows, or B for a repeated input's first layer. TF32 plans none.
TEST(Gemm, DeviceNetworkPlansBf16Operands) {
  REQUIRE_CUDA();
  const CublasHandle cublas;
  nmsnn::cuda::DeviceOptions bf16, tf32;
  bf16.matmul = nmsnn::MatmulPrecision::bf16;
  tf32.matmul = nmsnn::MatmulPrecision::tf32;
  const NetworkSpec spec = NetworkSpec::spiking(40, {30, 12}, 5, 6);
  const DeviceNetwork a(spec, cublas.handle, bf16), b(spec, cublas.handle, tf32);
  const int B = 4, T = 6;
  using nmsnn::kernels::gemm_bf16_bytes;
  const size_t above = std::max(gemm_bf16_bytes(T * B, 12, 30), gemm_bf16_bytes(T * B, 5, 12));
  for (Input::Kind kind : {Input::Kind::noisy, Input::Kind::repeated, Input::Kind::sequence}) {
    const size_t first = kind == Input::Kind::noisy      ? 0
                         : kind == Input::Kind::repeated ? gemm_bf16_bytes(B, 30, 40)
                                                         : gemm_bf16_bytes(T * B, 30, 40);
    for (bool training : {true, false})
      EXPECT_EQ(a.workspace_bytes(B, kind, training) - b.workspace_bytes(B, kind, training),
                std::max(first, above))
          << "input kind " << int(kind) << (training ? ", training" : ", inference");
  }
}

TEST(LifBackwardFused, MatchesTheUnfusedKernelAndDoubleWeightGradient) {
  REQUIRE_CUDA();
  for (bool spike16 : {false, true})
    for (ResetRule reset : {ResetRule::scale, ResetRule::subtract})
      for (bool delay : {true, false})
        for (auto [T, A] : {std::pair{1, 1}, std::pair{5, 10}, std::pair{37, 16}})
          check_fused_backward(spike16, reset, delay, T, A);
}

// The seed network fused (the default) needs neither the rebuilt FP32 spikes of its hidden layer
// nor the dL/dspikes buffer between the layers in a training workspace; what forward keeps for
// backward is the same.
TEST(LifBackwardFused, DeviceNetworkWorkspaceShrinks) {
  REQUIRE_CUDA();
  const CublasHandle cublas;
  const cublasHandle_t handle = cublas.handle;
  nmsnn::cuda::DeviceOptions fused, layered;
  layered.fuse_small_layers = false;
  const NetworkSpec spec = NetworkSpec::seed_mnist();
  const DeviceNetwork a(spec, handle, fused), b(spec, handle, layered);
  const int B = 64;
  // Two [T, B, 100] arrays fewer; the output's du [T, B, 10] kept aside and its per-sample
  // weight gradients [B, 10, 100] more (each buffer 256-byte aligned).
  const size_t array = size_t(spec.time_steps) * B * 100 * sizeof(float);
  const size_t more = array / 10 + size_t(B) * 10 * 100 * sizeof(float);
  const size_t wa = a.workspace_bytes(B, Input::Kind::noisy, true);
  const size_t wb = b.workspace_bytes(B, Input::Kind::noisy, true);
  ASSERT_GT(wb, wa) << "fused " << wa << " bytes, layered " << wb;
  EXPECT_NEAR(double(wb - wa), double(2 * array - more), 4 * 256.0)
      << "fused " << wa << " bytes, layered " << wb;
  EXPECT_EQ(a.saved_bytes(B), b.saved_bytes(B));
  // A 17-neuron output is one too many: no change.
  const NetworkSpec wide = NetworkSpec::spiking(784, {100}, 17);
  EXPECT_EQ(DeviceNetwork(wide, handle, fused).workspace_bytes(B, Input::Kind::noisy, true),
            DeviceNetwork(wide, handle, layered).workspace_bytes(B, Input::Kind::noisy, true));
}

TEST(LifBackwardFused, RefusesWhatItCannotRun) {
  REQUIRE_CUDA();
  namespace k = nmsnn::kernels;
  const SpikingLayer layer = exact_layer(ResetRule::scale, true);
  Dev<float> u(8), du(8), d_above(8), w(64), part(64), ds(8);
  Dev<uint32_t> gates(8);
  k::LifBackwardArgs a;
  a.T = 2, a.B = 2, a.H = 2;
  a.u = u.get();
  a.du = du.get();
  a.du_above = d_above.get();
  a.w_above = w.get();
  a.dw_above_part = part.get();
  a.above = 17;
  EXPECT_TRUE(throws_with([&] { k::lif_backward(layer, a, nullptr); },
                          {"lif_backward", "17 neurons", "1 to 16"}));
  a.above = 2;
  a.dw_above_part = nullptr;
  EXPECT_TRUE(throws_with([&] { k::lif_backward(layer, a, nullptr); }, {"dw_above_part"}));
  a.dw_above_part = part.get();
  a.d_spikes = ds.get();
  EXPECT_TRUE(throws_with([&] { k::lif_backward(layer, a, nullptr); }, {"d_spikes must be null"}));
  a.d_spikes = nullptr;
  a.u = nullptr;
  a.saved_gates = gates.get();
  EXPECT_TRUE(throws_with([&] { k::lif_backward(layer, a, nullptr); }, {"not gate bits"}));
}

// ---- the first layer's product with its time loop fused in (masked_linear_lif_forward) --------

// What the time loop keeps: u in FP32, the spike16 codes or the gate bits.
enum class Kept { u, spike16, gates };

struct FusedLifCase {
  int T, B, K, N;
  Kept kept;
  ResetRule reset;
  bool delay, last, traced;
  int next_H = 0;           // the layer above's product fused in (a hidden layer), 0: none
  bool spikes_too = false;  // with it, the spikes written to memory as well
};

// The layer above's current from the fused kernel against its double sum over the reference's
// spikes, operands rounded as the kernel rounds them: only the FP32 sums' order and rounding
// differ, within (N + 2) 2^-22 of sum |terms| (2^-24 per add, with a factor 4 for the tensor
// cores' own alignment of the products).
int check_next_product(nmsnn::MatmulPrecision math, const FusedLifCase& c,
                       const std::vector<float>& spikes, const std::vector<float>& W,
                       const std::vector<float>& got, const std::string& name) {
  int bad = 0, live = 0;
  for (size_t row = 0; row < size_t(c.T) * c.B; ++row)
    for (int h = 0; h < c.next_H; ++h) {
      double want = 0, scale = 0;
      for (int n = 0; n < c.N; ++n) {
        const double term =
            double(operand(spikes[row * c.N + n], math)) * operand(W[size_t(h) * c.N + n], math);
        want += term;
        scale += std::abs(term);
      }
      live += scale > 0;
      const double have = got[row * c.next_H + h];
      if (!(std::abs(have - want) <= (c.N + 2) * std::ldexp(scale, -22)) && bad++ < 5)
        ADD_FAILURE() << name << " next layer's a, row " << row << " neuron " << h << ": " << have
                      << " vs " << want << " (sum |terms| " << scale << ")";
    }
  // Rows without a spike test nothing: a tenth at least must have some.
  EXPECT_GT(live, int(size_t(c.T) * c.B * c.next_H / 10)) << name << ": too few spikes";
  return bad;
}

// The fused kernel against masked_linear_forward then lif_forward on the same inputs: the same
// arithmetic in the same order, so every output must be bit-identical.
void check_fused_lif(nmsnn::MatmulPrecision math, const FusedLifCase& c,
                     nmsnn::kernels::MmaInstruction instruction =
                         nmsnn::kernels::MmaInstruction::automatic) {
  namespace k = nmsnn::kernels;
  const std::string name =
      std::string(nmsnn::to_string(math)) +
      (instruction == k::MmaInstruction::wgmma ? " wgmma" : "") + " T=" + std::to_string(c.T) + " B=" + std::to_string(c.B) +
      " K=" + std::to_string(c.K) + " N=" + std::to_string(c.N) + " " +
      (c.kept == Kept::u ? "u" : c.kept == Kept::spike16 ? "spike16" : "gates") + " " +
      nmsnn::to_string(c.reset) + (c.delay ? " delay" : " no delay") +
      (c.last ? " last" : " hidden") + (c.traced ? " traced" : "") +
      (c.next_H ? " next H=" + std::to_string(c.next_H) : "") + (c.spikes_too ? " spikes too" : "");
  SpikingLayer layer = exact_layer(c.reset, c.delay);
  layer.decay = 0.9f;
  layer.threshold = 0.7f;
  const NoiseKey key{2026, 12};
  // A quarter of the inputs 0, so that some quads are left out of the product.
  const auto x = random_vector(size_t(c.B) * c.K, 0.0f, 1.0f, 41, 0.25f);
  const auto W = random_vector(size_t(c.N) * c.K, -0.3f, 0.3f, 42);
  const auto bias = random_vector(size_t(c.N), -0.5f, 0.5f, 43);
  const size_t n = size_t(c.T) * c.B * c.N, words = size_t((c.T + 31) / 32) * c.B * c.N;
  Dev<float> dx(x), dW(W), dbias(bias);

  struct Outputs {
    Dev<float> u, spikes, state, trace_spikes, logits, rates;
    Dev<uint16_t> codes;
    Dev<uint32_t> gates;
    Outputs(size_t n, size_t words, size_t bn)
        : u(n), spikes(n), state(n), trace_spikes(n), logits(bn), rates(bn), codes(n),
          gates(words) {}
  };
  Outputs ref(n, words, size_t(c.B) * c.N), got(n, words, size_t(c.B) * c.N);
  auto args_for = [&](Outputs& o) {
    k::LifForwardArgs a;
    a.T = c.T, a.B = c.B, a.H = c.N;
    a.bias = dbias.get();
    a.u = o.u.get();
    a.write_u = c.kept == Kept::u;
    if (c.kept == Kept::spike16) a.saved_spikes = o.codes.get();
    if (c.kept == Kept::gates) a.saved_gates = o.gates.get();
    a.spikes = c.last ? nullptr : o.spikes.get();
    if (c.traced) {
      a.trace_state = o.state.get();
      a.trace_spikes = o.trace_spikes.get();
      a.rates = o.rates.get();
    }
    if (c.last) {
      a.logits = o.logits.get();
      a.begin_eval = c.T / 3;
      a.readout_scale = 1.0f / float(c.T - c.T / 3);
    }
    return a;
  };
  // Reference: the product into u's buffer, then the time loop on it (in place).
  k::masked_linear_forward(key, dx.get(), c.T, c.B, c.K, dW.get(), c.N, ref.u.get(), math,
                           nullptr, instruction);
  k::lif_forward(layer, args_for(ref), nullptr);
  const auto W_next = random_vector(size_t(c.next_H) * c.N, -0.5f, 0.5f, 44);
  Dev<float> dW_next(W_next);
  Dev<float> a_next(std::vector<float>(size_t(c.T) * c.B * c.next_H, std::nanf("")));
  k::NextLayerProduct next;
  k::LifForwardArgs got_args = args_for(got);
  if (c.next_H) {
    next = {dW_next.get(), c.next_H, a_next.get()};
    if (!c.spikes_too) got_args.spikes = nullptr;
  }
  // The fused kernel with W's arranged tiles (used on wgmma), the reference without.
  Dev<float> tiles(k::masked_linear_weight_tiles_floats(c.N, c.K, math));
  k::masked_linear_lif_forward(key, dx.get(), c.T, c.B, c.K, dW.get(), layer, got_args, math,
                               nullptr, next, instruction, tiles.get());

  int fired = 0;  // neurons that fired at some step (rates count every step, returned or not)
  for (float r : ref.rates.host()) fired += r > 0;
  if (c.traced) EXPECT_GT(fired, 0) << name << ": no spike at all; the case tests too little";
  int bad = 0;
  if (c.kept == Kept::u) bad += count_bit_differences(got.u.host(), ref.u.host(), name + " u");
  if (!c.last && got_args.spikes)
    bad += count_bit_differences(got.spikes.host(), ref.spikes.host(), name + " spikes");
  if (c.next_H)
    bad += check_next_product(math, c, ref.spikes.host(), W_next, a_next.host(), name);
  if (c.traced) {
    bad += count_bit_differences(got.state.host(), ref.state.host(), name + " traced state");
    bad += count_bit_differences(got.trace_spikes.host(), ref.trace_spikes.host(),
                                 name + " traced spikes");
    bad += count_bit_differences(got.rates.host(), ref.rates.host(), name + " rates");
  }
  if (c.last)
    bad += count_bit_differences(got.logits.host(), ref.logits.host(), name + " logits");
  if (c.kept == Kept::spike16) {
    const auto a = got.codes.host(), b = ref.codes.host();
    for (size_t e = 0; e < n; ++e)
      if (a[e] != b[e] && bad++ < 5)
        ADD_FAILURE() << name << " spike16 code " << e << ": " << a[e] << " vs " << b[e];
  }
  if (c.kept == Kept::gates) {
    const auto a = got.gates.host(), b = ref.gates.host();
    for (size_t e = 0; e < words; ++e)
      if (a[e] != b[e] && bad++ < 5)
        ADD_FAILURE() << name << " gate word " << e << ": " << a[e] << " vs " << b[e];
  }
  EXPECT_EQ(bad, 0) << name;
}

// Blocks of one sample (T = 128, the seed's shape), of 4 (T = 32, the last block a quarter full),
// of 2 and of 128 (T = 1); widths in each class (NT = 8, 13, 16), K % 4 != 0 (scalar loads);
// every saved state, both rules, with and without delay, hidden and last.
TEST(MaskedLinearLif, BitIdenticalToTheProductThenTheTimeLoop) {
  REQUIRE_CUDA();
  using nmsnn::MatmulPrecision;
  const FusedLifCase cases[] = {
      {128, 3, 784, 100, Kept::spike16, ResetRule::scale, true, false, true},
      {32, 9, 67, 50, Kept::u, ResetRule::subtract, false, false, true},
      {32, 9, 67, 50, Kept::gates, ResetRule::scale, true, true, true},
      {64, 5, 36, 128, Kept::u, ResetRule::scale, true, true, false},
      {1, 130, 20, 7, Kept::spike16, ResetRule::subtract, true, false, true},
      // The layer above's product fused in: the seed's pair, 10 above 100 (its spikes then never
      // reach memory; fewer inputs, which the cases above cover, to keep the race build quick);
      // 16 neurons above a layer whose spikes are written too; one above 128; N = 7 < a stage.
      {128, 2, 200, 100, Kept::spike16, ResetRule::scale, true, false, false, 10},
      {32, 9, 67, 50, Kept::u, ResetRule::subtract, false, false, true, 16, true},
      {64, 5, 36, 128, Kept::u, ResetRule::scale, true, false, false, 1},
      {1, 130, 203, 7, Kept::spike16, ResetRule::subtract, false, false, true, 3},
  };
  for (MatmulPrecision math : {MatmulPrecision::tf32, MatmulPrecision::bf16})
    for (const FusedLifCase& c : cases) check_fused_lif(math, c);
}

// The same with the product on wgmma (its reference product too): the fused kernel's main loop
// is then the asynchronous one (masks and W's staging under the product).
TEST(MaskedLinearLif, WgmmaBitIdenticalToTheProductThenTheTimeLoop) {
  REQUIRE_CUDA();
  using nmsnn::MatmulPrecision;
  namespace k = nmsnn::kernels;
  REQUIRE_WGMMA();
  const FusedLifCase cases[] = {
      {128, 3, 784, 100, Kept::spike16, ResetRule::scale, true, false, true},
      {32, 9, 67, 50, Kept::gates, ResetRule::scale, true, true, true},
      {64, 5, 36, 128, Kept::u, ResetRule::scale, true, true, false},
      {128, 2, 200, 100, Kept::spike16, ResetRule::scale, true, false, false, 10},
      {1, 130, 203, 7, Kept::spike16, ResetRule::subtract, false, false, true, 3},
  };
  for (MatmulPrecision math : {MatmulPrecision::tf32, MatmulPrecision::bf16})
    for (const FusedLifCase& c : cases) check_fused_lif(math, c, k::MmaInstruction::wgmma);
}

TEST(MaskedLinearLif, RefusesWhatItCannotRun) {
  REQUIRE_CUDA();
  namespace k = nmsnn::kernels;
  using nmsnn::MatmulPrecision;
  EXPECT_TRUE(k::masked_linear_lif_fusable(128, 100, MatmulPrecision::tf32));
  EXPECT_TRUE(k::masked_linear_lif_fusable(1, 128, MatmulPrecision::bf16));
  EXPECT_FALSE(k::masked_linear_lif_fusable(128, 100, MatmulPrecision::fp32));
  EXPECT_FALSE(k::masked_linear_lif_fusable(100, 100, MatmulPrecision::tf32));  // 128 % 100
  EXPECT_FALSE(k::masked_linear_lif_fusable(256, 100, MatmulPrecision::tf32));
  EXPECT_FALSE(k::masked_linear_lif_fusable(128, 129, MatmulPrecision::tf32));
  const SpikingLayer layer = exact_layer(ResetRule::scale, true);
  Dev<float> x(8), W(8), u(64), a(64);
  k::LifForwardArgs args;
  args.T = 2, args.B = 2, args.H = 2;
  args.u = u.get();
  auto run = [&](int T, MatmulPrecision math) {
    k::masked_linear_lif_forward(NoiseKey{1, 2}, x.get(), T, 2, 2, W.get(), layer, args, math,
                                 nullptr);
  };
  EXPECT_TRUE(throws_with([&] { run(2, MatmulPrecision::fp32); },
                          {"masked_linear_lif_forward", "TF32 or BF16", "fp32"}));
  EXPECT_TRUE(throws_with([&] { run(3, MatmulPrecision::tf32); }, {"T=3", "dividing 128"}));
  args.T = 4;
  EXPECT_TRUE(throws_with([&] { run(2, MatmulPrecision::tf32); }, {"T=4", "product's T=2"}));
  args.T = 2;
  args.a = a.get();
  EXPECT_TRUE(throws_with([&] { run(2, MatmulPrecision::tf32); }, {"not a buffer"}));
  args.a = nullptr;
  uint16_t* codes = reinterpret_cast<uint16_t*>(a.get());
  args.saved_spikes = codes;
  args.saved_gates = reinterpret_cast<uint32_t*>(u.get());
  EXPECT_TRUE(throws_with([&] { run(2, MatmulPrecision::bf16); }, {"not both"}));
  args.saved_gates = nullptr;
  // The layer above's product: 1 to 16 neurons, with its weights, over a hidden layer.
  auto run_next = [&](k::NextLayerProduct next) {
    k::masked_linear_lif_forward(NoiseKey{1, 2}, x.get(), 2, 2, 2, W.get(), layer, args,
                                 MatmulPrecision::tf32, nullptr, next);
  };
  EXPECT_TRUE(throws_with([&] { run_next({W.get(), 17, a.get()}); }, {"1 to 16", "H=17"}));
  EXPECT_TRUE(throws_with([&] { run_next({W.get(), 0, a.get()}); }, {"H=0"}));
  EXPECT_TRUE(throws_with([&] { run_next({nullptr, 4, a.get()}); }, {"no W"}));
  EXPECT_TRUE(throws_with([&] { run_next({W.get(), 4, u.get()}); }, {"must not share"}));
  args.logits = u.get();
  EXPECT_TRUE(throws_with([&] { run_next({W.get(), 4, a.get()}); }, {"no layer above"}));
}

void check_spikes_from_u(int block) {
  for (bool delay : {true, false}) {
    const int T = 9, B = 7, H = 33;
    const size_t n = size_t(T) * B * H;
    SpikingLayer layer = exact_layer(ResetRule::scale, delay);
    layer.threshold = 0.7f;
    const auto u = random_vector(n, -1.0f, 2.0f, 21);
    Dev<float> du(u), out(n);
    nmsnn::kernels::spikes_from_u(layer, T, B, H, du.get(), out.get(), nullptr, block);
    const auto got = out.host();
    nmsnn::cpu::LifNeurons<float> neurons = nmsnn::cpu::LifNeurons<float>::from(layer);
    neurons.size = H;
    std::vector<float> want(n);
    for (int b = 0; b < B; ++b) {
      const auto ub = sample_of(u, T, B, H, b);
      std::vector<float> s(ub.size());
      nmsnn::cpu::lif_spikes_from_u(neurons, T, ub.data(), s.data());
      for (int t = 0; t < T; ++t)
        for (int h = 0; h < H; ++h) want[(size_t(t) * B + b) * H + h] = s[size_t(t) * H + h];
    }
    EXPECT_EQ(count_bit_differences(got, want, delay ? "delay" : "no delay"), 0)
        << "block=" << block;
  }
}

TEST(SpikesFromU, BitIdenticalToCpu) {
  REQUIRE_CUDA();
  check_spikes_from_u(kDefaultBlock);
}

// ---- optimisers and loss -------------------------------------------------------------------------

const std::vector<nmsnn::OptimizerSpec> kOptimizers = {
      nmsnn::Sgd{0.1f},
      nmsnn::Sgd{0.1f, 0.5f},
      nmsnn::Sgd{0.05f, 0.9f, 0.1f, 1e-2f, false},
      nmsnn::Sgd{0.05f, 0.9f, 0.0f, 1e-3f, true},
      nmsnn::Adam{1e-3f},
      nmsnn::Adam{2e-3f, 0.8f, 0.99f, 1e-6f, 1e-2f},
};

void check_optimizers(const std::vector<nmsnn::OptimizerSpec>& specs, size_t n, int64_t steps,
                      int block) {
  for (const auto& spec : specs) {
    std::vector<float> p = random_vector(n, -1, 1, 31), m(n, 0.0f), v(n, 0.0f);
    Dev<float> dp(p), dm(n), dv(n), dg(n);
    for (int64_t step = 1; step <= steps; ++step) {
      const auto g = random_vector(n, -1, 1, 40 + step);
      const std::vector<float> before = p;
      dg.put(g);
      if (const auto* sgd = std::get_if<nmsnn::Sgd>(&spec)) {
        nmsnn::sgd_update(*sgd, p.data(), g.data(), m.data(), n, step);
        nmsnn::kernels::sgd_update(*sgd, dp.get(), dg.get(), dm.get(), n, step, nullptr, block);
      } else {
        const auto& adam = std::get<nmsnn::Adam>(spec);
        nmsnn::adam_update(adam, p.data(), g.data(), m.data(), v.data(), n, step);
        nmsnn::kernels::adam_update(adam, dp.get(), dg.get(), dm.get(), dv.get(), n, step, nullptr,
                                    block);
      }
      // Both sides may fuse a multiply and an add differently (nvcc contracts p - lr * g into
      // one FMA; the host rounds lr * g first): allow a few ulps of the update's largest term.
      // The old and new parameter bound that term (|lr * g| <= |p_old| + |p_new| without
      // momentum or decay): relative to the new value alone, an update that nearly cancels
      // p_old was 4.5e-6 "off" on an H200 (2026-12-04) with a rounding error of 4e-9.
      const auto got = dp.host();
      double worst = 0;
      for (size_t i = 0; i < n; ++i) {
        const double scale = std::max({1e-3, double(std::abs(p[i])), double(std::abs(before[i]))});
        worst = std::max(worst, std::abs(double(got[i]) - p[i]) / scale);
      }
      EXPECT_LE(worst, 1e-6) << nmsnn::describe(spec) << " step " << step << " block " << block;
    }
  }
}

TEST(Optimizer, SameArithmeticAsHost) {
  REQUIRE_CUDA();
  check_optimizers(kOptimizers, 1000, 4, kDefaultBlock);
}

void check_nll_loss(int B, int C, int block) {
  {
    const auto z = random_vector(size_t(B) * C, -5, 5, 51);
    std::vector<int> labels(B);
    for (int b = 0; b < B; ++b) labels[b] = (b * 7) % C;
    Dev<float> dz(z), grad(size_t(B) * C), losses(B);
    Dev<int> dl(labels);
    nmsnn::kernels::nll_log_softmax(dz.get(), dl.get(), B, C, grad.get(), losses.get(), nullptr,
                                    block);
    std::vector<double> zd(z.begin(), z.end()), gd(z.size());
    const double loss = nmsnn::detail::nll_log_softmax(zd.data(), B, C, labels.data(), gd.data());
    const auto g = grad.host(), l = losses.host();
    double mean = 0;
    for (float x : l) mean += x;
    mean /= B;
    EXPECT_NEAR(mean, loss, 1e-5 * std::max(1.0, std::abs(loss))) << "B=" << B << " C=" << C;
    for (size_t k = 0; k < g.size(); ++k)
      ASSERT_NEAR(g[k], gd[k], 1e-6 / B + 1e-7)
          << "B=" << B << " C=" << C << " block=" << block << " element " << k;
  }
}

TEST(NllLoss, MatchesHost) {
  REQUIRE_CUDA();
  for (auto [B, C] : {std::pair{1, 1}, std::pair{3, 10}, std::pair{1000, 10}, std::pair{5, 257}})
    check_nll_loss(B, C, kNllDefaultBlock);
}

// ---- layers without weights: the CPU layer classes, run sample by sample -----------------------
//
// The device keeps a batch time-major, [T, B, W]; a CPU layer reads one sample's x(t, h) at
// data[t * t_stride + h], so it can read the device layout directly (data = x + b*W, stride B*W).
// Its outputs are per sample, [out_steps, W]; these helpers put them back time-major.

using nmsnn::ActivationKind;
using CpuLayer = nmsnn::cpu::CpuLayer<float>;
const ActivationKind kKinds[] = {ActivationKind::relu, ActivationKind::tanh,
                                 ActivationKind::sigmoid};

// What a CPU layer knows about its pass (training, noise key, batch).
using CpuPass = nmsnn::cpu::Pass<float>;

CpuPass cpu_pass(bool training, NoiseKey key, int batch) {
  CpuPass pass;
  pass.training = training;
  pass.key = key;
  pass.batch = batch;
  return pass;
}

struct CpuForward {
  std::vector<float> y, state;  // [out_steps, B, W]
  std::vector<float> rates;     // [B, W]
  std::vector<float> saved;     // [B, saved_floats()]
  double regularization = 0;    // summed over the batch
};

nmsnn::cpu::SampleInput<float> sample_input(const std::vector<float>& x, int T, int B, int W,
                                            int b) {
  nmsnn::cpu::SampleInput<float> in;
  in.T = T;
  in.I = W;
  in.data = x.data() + size_t(b) * W;
  in.t_stride = size_t(B) * W;
  return in;
}

// [out_steps, W] of sample b into a time-major [out_steps, B, W].
void scatter(const std::vector<float>& sample, int steps, int B, int W, int b,
             std::vector<float>& out) {
  for (int t = 0; t < steps; ++t)
    for (int h = 0; h < W; ++h) out[(size_t(t) * B + b) * W + h] = sample[size_t(t) * W + h];
}

CpuForward cpu_forward(const CpuLayer& layer, const std::vector<float>& x, int B,
                       const CpuPass& pass) {
  const int T = layer.in_steps, S = layer.out_steps, W = layer.out_width;
  const size_t saved = layer.saved_floats();
  CpuForward f;
  f.y.resize(size_t(S) * B * W);
  f.state.resize(f.y.size());
  f.rates.resize(size_t(B) * W);
  f.saved.resize(size_t(B) * saved);
  nmsnn::cpu::LayerScratch<float> scratch;
  for (int b = 0; b < B; ++b) {
    std::vector<float> y(size_t(S) * W), state(y.size());
    nmsnn::cpu::LayerOutput<float> out;
    out.y = y.data();
    out.state = state.data();
    out.rates = f.rates.data() + size_t(b) * W;
    out.saved = saved ? f.saved.data() + size_t(b) * saved : nullptr;
    layer.forward(sample_input(x, T, B, W, b), uint32_t(b), pass, out, scratch);
    scatter(y, S, B, W, b, f.y);
    scatter(state, S, B, W, b, f.state);
    f.regularization += out.regularization;
  }
  return f;
}

// dx [T, B, W] and the parameters' gradients summed over the batch (engine layout).
struct CpuBackward {
  std::vector<float> dx;
  std::vector<std::vector<float>> grads;
};

CpuBackward cpu_backward(const CpuLayer& layer, const std::vector<float>& x, int B,
                         const CpuPass& pass, const CpuForward& f,
                         const std::vector<float>& dy) {
  const int T = layer.in_steps, S = layer.out_steps, W = layer.out_width;
  const size_t saved = layer.saved_floats();
  CpuBackward g;
  g.dx.resize(size_t(T) * B * W);
  std::vector<float*> grads;
  for (const auto& p : layer.params) g.grads.emplace_back(p.value.size(), 0.0f);
  for (auto& v : g.grads) grads.push_back(v.data());
  nmsnn::cpu::LayerScratch<float> scratch;
  for (int b = 0; b < B; ++b) {
    const std::vector<float> dyb = sample_of(dy, S, B, W, b);
    std::vector<float> dx(size_t(T) * W);
    nmsnn::cpu::LayerGrad<float> lg;
    lg.dy = dyb.data();
    lg.dx = dx.data();
    lg.grads = grads.data();
    layer.backward(sample_input(x, T, B, W, b), uint32_t(b), pass,
                   saved ? f.saved.data() + size_t(b) * saved : nullptr, lg, scratch);
    scatter(dx, T, B, W, b, g.dx);
  }
  return g;
}

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// Describes element e of a time-major [T, B, W] array.
auto tbw(int B, int W) {
  return [B, W](size_t e) {
    return "(t=" + std::to_string(e / (size_t(B) * W)) + ", b=" + std::to_string(e / W % B) +
           ", h=" + std::to_string(e % W) + ")";
  };
}

std::string shape_name(int T, int B, int W, int block) {
  return "T=" + std::to_string(T) + " B=" + std::to_string(B) + " W=" + std::to_string(W) +
         " block=" + std::to_string(block);
}

// The awkward shape of the twin tests: B*W = 111 neurons, so blocks of 32 .. 1024 all end in a
// partial block (and 32 and 64 need several).
struct TimeShape {
  int T, B, W;
};
constexpr TimeShape kOdd{7, 3, 37};

// ---- Activation --------------------------------------------------------------------------------
//
// Tolerance: relu is exact on both sides (bit-identical). tanh and sigmoid use tanhf / expf on
// the device and std::tanh / std::exp on the CPU, each within 2 ulps of the true value (CUDA
// Programming Guide, glibc); sigmoid's 1 / (1 + e) and tanh's 1 - y^2 add at most three roundings
// of values <= 1 in magnitude. So |device - cpu| <= 8 * 2^-24 on a scale of 1 + |f| (forward)
// and |dy| (1 + |f'|) (backward); the test allows 16 for headroom.
constexpr double kActivationRel = 16 * kUnit;

void check_activation(ActivationKind kind, const TimeShape& s, int block) {
  const std::string name = std::string("activation ") + nmsnn::to_string(kind) + " " +
                           shape_name(s.T, s.B, s.W, block);
  const size_t n = size_t(s.T) * s.B * s.W;
  const auto x = random_vector(n, -4.0f, 4.0f, 61, 0.1f);  // exact zeros: relu'(0) = 0
  const auto dy = random_vector(n, -1.0f, 1.0f, 62);
  Dev<float> dx_in(x), ddy(dy), y(n), dx(n);
  nmsnn::kernels::activation_forward(kind, dx_in.get(), n, y.get(), nullptr, block);
  nmsnn::kernels::activation_backward(kind, dx_in.get(), ddy.get(), n, dx.get(), nullptr, block);
  const auto y_dev = y.host(), dx_dev = dx.host();

  const nmsnn::cpu::ActivationLayer<float> layer(s.W, s.W, s.T, kind);
  const CpuPass pass = cpu_pass(true, {}, s.B);
  const CpuForward f = cpu_forward(layer, x, s.B, pass);
  const CpuBackward g = cpu_backward(layer, x, s.B, pass, f, dy);
  if (kind == ActivationKind::relu) {
    EXPECT_EQ(count_bit_differences(y_dev, f.y, name + " y"), 0) << name;
    EXPECT_EQ(count_bit_differences(dx_dev, g.dx, name + " dx"), 0) << name;
    return;
  }
  std::vector<double> y_scale(n), dx_scale(n);
  for (size_t e = 0; e < n; ++e) {
    y_scale[e] = 1.0 + std::abs(f.y[e]);
    dx_scale[e] = std::abs(dy[e]) * (1.0 + std::abs(nmsnn::cpu::activate_grad(kind, x[e])));
  }
  expect_close(y_dev, to_double(f.y), y_scale, kActivationRel, name + " y", tbw(s.B, s.W));
  expect_close(dx_dev, to_double(g.dx), dx_scale, kActivationRel, name + " dx", tbw(s.B, s.W));
}

TEST(Activation, ForwardAndBackwardMatchCpu) {
  REQUIRE_CUDA();
  for (ActivationKind kind : kKinds)
    for (const TimeShape& s : {kOdd, TimeShape{1, 1, 1}, TimeShape{5, 17, 33}})
      check_activation(kind, s, kDefaultBlock);
}

// ---- SpikingActivation -------------------------------------------------------------------------
//
// Forward, relu: f(x) = x exactly and both sides round v += f * dt the same way (no fused
// multiply-add), so spikes, voltages and rates are bit-identical for any dt.
// Forward, tanh and sigmoid: f may differ by the ulps above, which can move a voltage across an
// integer, so a step's spike count may differ by one (then the voltage differs by about one and a
// later step makes up for it). What must agree is the integral: per neuron, the running spike
// count may differ by at most 1, and (count + voltage), which is v0 + sum_t f(x[t]) dt, within
// (t + 1) * 8 * 2^-24 (per step: f's error times dt < 1, and two roundings of a voltage < 2);
// rates within one spike over the run, 1 / (dt T), plus the rounding of their sum.
// Backward (straight-through, dx = f'(x) (dy + the regularizer's share)): the rates come from the
// CPU pass on both sides, so only f' differs: kActivationRel, exact for relu.

struct SpikingCase {
  ActivationKind kind;
  bool return_sequences, random_voltage, spikes, regularized;
};

// Spike trains y [T, B, W] (n / dt per step) and voltages v, per the tolerance above.
void expect_spike_trains_close(const std::vector<float>& y_dev, const std::vector<float>& v_dev,
                               const std::vector<float>& y_cpu, const std::vector<float>& v_cpu,
                               int T, int B, int W, float dt, const std::string& name) {
  int bad = 0;
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < W; ++h) {
      long dev_count = 0, cpu_count = 0;
      for (int t = 0; t < T; ++t) {
        const size_t at = (size_t(t) * B + b) * W + h;
        dev_count += std::lround(double(y_dev[at]) * dt);
        cpu_count += std::lround(double(y_cpu[at]) * dt);
        const double integral_diff =
            std::abs((double(dev_count) + v_dev[at]) - (double(cpu_count) + v_cpu[at]));
        if ((std::abs(dev_count - cpu_count) > 1 || !(integral_diff <= (t + 1) * 8 * kUnit)) &&
            bad++ < 5)
          ADD_FAILURE() << name << " at (t=" << t << ", b=" << b << ", h=" << h
                        << "): spike counts so far " << dev_count << " (device) vs " << cpu_count
                        << ", count + voltage differ by " << integral_diff;
      }
    }
  EXPECT_EQ(bad, 0) << name;
}

void check_spiking_activation(const SpikingCase& c, const TimeShape& s, int block) {
  nmsnn::SpikingActivation spec;
  spec.activation = c.kind;
  spec.dt = c.kind == ActivationKind::relu ? 0.05f : 0.1f;
  spec.random_initial_voltage = c.random_voltage;
  spec.return_sequences = c.return_sequences;
  spec.spiking_aware_training = c.spikes;  // off: a training pass returns f(x)
  spec.rate_target = 3.0f;
  spec.rate_weight = c.regularized ? 0.01f : 0.0f;
  const std::string name = std::string("spiking_activation ") + nmsnn::to_string(c.kind) +
                           (c.return_sequences ? " sequences" : " last step") +
                           (c.random_voltage ? " random v0" : " v0=0") +
                           (c.spikes ? "" : " (training, no spikes)") +
                           (c.regularized ? " regularized " : " ") +
                           shape_name(s.T, s.B, s.W, block);
  const int S = c.return_sequences ? s.T : 1;
  const size_t n = size_t(s.T) * s.B * s.W, out_n = size_t(S) * s.B * s.W, bw = size_t(s.B) * s.W;
  const auto x = random_vector(n, -1.0f, 3.0f, 71, 0.1f);
  const auto dy = random_vector(out_n, -1.0f, 1.0f, 72);

  // The CPU layer derives the voltage key from the pass's seed and its index, as the engine does.
  nmsnn::cpu::SpikingActivationLayer<float> layer(s.W, s.W, s.T, spec);
  layer.index = 2;
  const CpuPass pass = cpu_pass(true, NoiseKey{1234, 5}, s.B);
  const CpuForward f = cpu_forward(layer, x, s.B, pass);
  const CpuBackward g = cpu_backward(layer, x, s.B, pass, f, dy);

  Dev<float> dx_in(x), y(out_n), state(out_n), rates(bw);
  nmsnn::kernels::SpikingActivationForwardArgs fa;
  fa.T = s.T, fa.B = s.B, fa.H = s.W;
  fa.x = dx_in.get();
  fa.y = y.get();
  fa.spikes = c.spikes;
  fa.voltage_key = {nmsnn::detail::voltage_key(1234, 2), 5};
  fa.trace_state = state.get();
  fa.rates = rates.get();
  nmsnn::kernels::spiking_activation_forward(spec, fa, nullptr, block);
  const auto y_dev = y.host(), v_dev = state.host(), r_dev = rates.host();
  const bool exact = c.kind == ActivationKind::relu;
  if (exact) {
    EXPECT_EQ(count_bit_differences(y_dev, f.y, name + " y"), 0) << name;
    EXPECT_EQ(count_bit_differences(v_dev, f.state, name + " voltage"), 0) << name;
    EXPECT_EQ(count_bit_differences(r_dev, f.rates, name + " rates"), 0) << name;
  } else if (!c.spikes) {  // y = f(x), the state shows y
    std::vector<double> scale(out_n);
    for (size_t e = 0; e < out_n; ++e) scale[e] = 1.0 + std::abs(f.y[e]);
    expect_close(y_dev, to_double(f.y), scale, kActivationRel, name + " y", tbw(s.B, s.W));
    expect_close(v_dev, to_double(f.state), scale, kActivationRel, name + " state", tbw(s.B, s.W));
    std::vector<double> rscale(bw, 2.0);  // |f| <= 1: the mean of T values is below 1
    expect_close(r_dev, to_double(f.rates), rscale, (s.T + 2) * kActivationRel, name + " rates",
                 tbw(s.B, s.W));
  } else {
    ASSERT_TRUE(c.return_sequences) << "the integral check needs every step";
    expect_spike_trains_close(y_dev, v_dev, f.y, f.state, s.T, s.B, s.W, spec.dt, name);
    std::vector<double> rscale(bw);
    for (size_t e = 0; e < bw; ++e) rscale[e] = 1.0 / (spec.dt * s.T);  // one spike in the run
    expect_close(r_dev, to_double(f.rates), rscale, 1.0 + (s.T + 2) * kUnit * 4 * s.T,
                 name + " rates", tbw(s.B, s.W));
  }

  // The regularizer's loss from the CPU's rates: both sum in double, in different orders.
  if (c.regularized) {
    Dev<float> cpu_rates(f.rates), loss(1);
    nmsnn::kernels::rate_regularization_loss(spec, cpu_rates.get(), s.B, s.W, false, loss.get(),
                                             nullptr, block);
    const float got = loss.host()[0];
    EXPECT_NEAR(got, f.regularization, 1e-6 * std::abs(f.regularization) + 1e-30) << name;
    // accumulate = true adds to what is there.
    nmsnn::kernels::rate_regularization_loss(spec, cpu_rates.get(), s.B, s.W, true, loss.get(),
                                             nullptr, block);
    EXPECT_NEAR(loss.host()[0], 2 * f.regularization, 2e-6 * std::abs(f.regularization) + 1e-30)
        << name << " (accumulated)";
  }

  Dev<float> ddy(dy), saved_rates(c.regularized ? f.saved : f.rates), dx(n);
  nmsnn::kernels::SpikingActivationBackwardArgs ba;
  ba.T = s.T, ba.B = s.B, ba.H = s.W;
  ba.x = dx_in.get();
  ba.dy = ddy.get();
  ba.rates = saved_rates.get();
  ba.dx = dx.get();
  nmsnn::kernels::spiking_activation_backward(spec, ba, nullptr, block);
  const auto dx_dev = dx.host();
  if (exact) {
    EXPECT_EQ(count_bit_differences(dx_dev, g.dx, name + " dx"), 0) << name;
  } else {
    // dy plus the regularizer's share is the same float on both sides; f' differs.
    std::vector<double> scale(n);
    const std::vector<float>& r = c.regularized ? f.saved : f.rates;
    for (size_t e = 0; e < n; ++e) {
      const size_t t = e / bw, at = e % bw;
      double d = c.return_sequences ? dy[e] : (t == size_t(s.T) - 1 ? dy[at] : 0.0);
      if (c.regularized)
        d += 2.0 * spec.rate_weight * (r[at] - spec.rate_target) / (double(s.B) * s.T);
      scale[e] = std::abs(d) * (1.0 + std::abs(nmsnn::cpu::activate_grad(c.kind, x[e])));
    }
    expect_close(dx_dev, to_double(g.dx), scale, kActivationRel, name + " dx", tbw(s.B, s.W));
  }
}

// {kind, return_sequences, random initial voltage, spikes, regularized}
const SpikingCase kSpikingCases[] = {
    {ActivationKind::relu, true, true, true, false},
    {ActivationKind::relu, false, true, true, true},
    {ActivationKind::relu, true, false, true, true},
    {ActivationKind::relu, true, true, false, false},
    {ActivationKind::tanh, true, true, true, true},
    {ActivationKind::tanh, true, false, false, false},
    {ActivationKind::sigmoid, true, true, true, false},
    {ActivationKind::sigmoid, false, true, false, true},
};

TEST(SpikingActivation, ForwardAndBackwardMatchCpu) {
  REQUIRE_CUDA();
  for (const SpikingCase& c : kSpikingCases)
    for (const TimeShape& s : {kOdd, TimeShape{1, 1, 1}, TimeShape{23, 5, 65}})
      check_spiking_activation(c, s, kDefaultBlock);
}

// ---- Lowpass -----------------------------------------------------------------------------------
//
// Tolerance: smoothing = sigmoid(p) carries expf's 2 ulps plus two roundings on the device and on
// the CPU, an absolute error below 4 * 2^-24 since smoothing < 1; a power smoothing^k (k <= T)
// then has an absolute error below 4 k 2^-24, and every step adds at most four roundings. Against
// the magnitude the value is made of (level: |initial| + sum_t |x[t]|; gradients: the same sums
// over |dy| and |level|, as the scales below build them), the difference stays below
// (8 T + 16) 2^-24; the test allows twice that. The parameter gradients are then summed over the
// batch by bias_grad_reduce: B + 2 more roundings of that sum.

void check_lowpass(bool return_sequences, const TimeShape& s, int block) {
  const std::string name = std::string("lowpass ") +
                           (return_sequences ? "sequences " : "last step ") +
                           shape_name(s.T, s.B, s.W, block);
  const int T = s.T, B = s.B, W = s.W, S = return_sequences ? T : 1;
  const size_t n = size_t(T) * B * W, out_n = size_t(S) * B * W, bw = size_t(B) * W;
  nmsnn::Lowpass spec;
  spec.return_sequences = return_sequences;
  nmsnn::cpu::LowpassLayer<float> layer(W, W, T, spec);
  layer.params[0].value = random_vector(W, -2.0f, 3.0f, 81);  // smoothing 0.12 .. 0.95
  layer.params[1].value = random_vector(W, -1.0f, 1.0f, 82);
  const auto& p = layer.params[0].value;
  const auto& init = layer.params[1].value;
  const auto x = random_vector(n, -2.0f, 2.0f, 83);
  const auto dy = random_vector(out_n, -1.0f, 1.0f, 84);
  const CpuPass pass = cpu_pass(true, {}, B);
  const CpuForward f = cpu_forward(layer, x, B, pass);
  const CpuBackward g = cpu_backward(layer, x, B, pass, f, dy);
  std::vector<float> level_cpu(n);  // saved per sample [T, W] -> [T, B, W]
  for (int b = 0; b < B; ++b)
    scatter(std::vector<float>(f.saved.begin() + size_t(b) * T * W,
                               f.saved.begin() + size_t(b + 1) * T * W),
            T, B, W, b, level_cpu);

  Dev<float> dp(p), dinit(init), dx_in(x), y(out_n), level(n);
  nmsnn::kernels::LowpassForwardArgs fa;
  fa.T = T, fa.B = B, fa.H = W;
  fa.p = dp.get();
  fa.initial = dinit.get();
  fa.x = dx_in.get();
  fa.y = y.get();
  fa.level = level.get();
  fa.return_sequences = return_sequences;
  nmsnn::kernels::lowpass_forward(fa, nullptr, block);
  const auto y_dev = y.host(), level_dev = level.host();

  // Magnitudes: L[t] = |initial| + sum_{s <= t} |x[s]|, G[t] = sum_{s >= t} |dy[s]|.
  std::vector<double> lmag(n), gmag(n), dp_mag(W, 0.0), dinit_mag(W, 0.0);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < W; ++h) {
      double l = std::abs(init[h]), gsum = 0, dpm = 0;
      for (int t = 0; t < T; ++t) {
        const size_t at = (size_t(t) * B + b) * W + h;
        l += std::abs(x[at]);
        lmag[at] = l;
      }
      for (int t = T - 1; t >= 0; --t) {
        const size_t at = (size_t(t) * B + b) * W + h;
        const double d = return_sequences ? dy[at] : (t == T - 1 ? dy[size_t(b) * W + h] : 0.0f);
        gsum += std::abs(d);
        gmag[at] = gsum;
        dpm += gsum * ((t == 0 ? std::abs(init[h]) : lmag[at - bw]) + std::abs(x[at]));
      }
      dp_mag[h] += dpm;
      dinit_mag[h] += gsum;
    }
  const double rel = 2 * (8.0 * T + 16) * kUnit;
  std::vector<double> y_mag(lmag.end() - out_n, lmag.end());  // the last step without sequences
  expect_close(y_dev, to_double(f.y), y_mag, rel, name + " y", tbw(B, W));
  expect_close(level_dev, to_double(level_cpu), lmag, rel, name + " level", tbw(B, W));

  Dev<float> dlevel(level_cpu), ddy(dy), dx(n), part(2 * bw), gp(W), ginit(W);
  nmsnn::kernels::LowpassBackwardArgs ba;
  ba.T = T, ba.B = B, ba.H = W;
  ba.p = dp.get();
  ba.initial = dinit.get();
  ba.x = dx_in.get();
  ba.level = dlevel.get();
  ba.dy = ddy.get();
  ba.return_sequences = return_sequences;
  ba.dx = dx.get();
  ba.dp_part = part.get();
  ba.dinitial_part = part.get() + bw;
  nmsnn::kernels::lowpass_backward(ba, nullptr, block);
  nmsnn::kernels::bias_grad_reduce(ba.dp_part, B, W, gp.get(), nullptr, block);
  nmsnn::kernels::bias_grad_reduce(ba.dinitial_part, B, W, ginit.get(), nullptr, block);
  expect_close(dx.host(), to_double(g.dx), gmag, rel, name + " dx", tbw(B, W));
  const double rel_sum = rel + (B + 2) * kUnit;
  expect_close(gp.host(), to_double(g.grads[0]), dp_mag, rel_sum, name + " dL/dp",
               [](size_t h) { return "h=" + std::to_string(h); });
  expect_close(ginit.host(), to_double(g.grads[1]), dinit_mag, rel_sum, name + " dL/dinitial",
               [](size_t h) { return "h=" + std::to_string(h); });
}

TEST(Lowpass, ForwardAndBackwardMatchCpu) {
  REQUIRE_CUDA();
  for (bool sequences : {true, false})
    for (const TimeShape& s : {kOdd, TimeShape{1, 1, 1}, TimeShape{23, 5, 65}})
      check_lowpass(sequences, s, kDefaultBlock);
}

// ---- the time axis -----------------------------------------------------------------------------
//
// time_sum adds t = begin .. T-1 in increasing order in float, as the CPU's TemporalAvgPool and
// readout do, so with scale 1 the sums are bit-identical. The mean multiplies the sum by 1/T
// (rounded) where the CPU divides by T: at most 2 ulps apart (4 * 2^-24 of the mean allowed);
// time_broadcast's dy * (1/T) against dy / T likewise. With scale 1 the broadcast is a copy.

void check_time_axis(const TimeShape& s, int block) {
  const std::string name = shape_name(s.T, s.B, s.W, block);
  const int T = s.T, B = s.B, W = s.W;
  const long long R = (long long)B * W;
  const size_t n = size_t(T) * R;
  const auto x = random_vector(n, -2.0f, 2.0f, 91, 0.1f);
  const auto dy = random_vector(size_t(R), -1.0f, 1.0f, 92);

  // TemporalAvgPool: forward time_sum(scale 1/T), backward time_broadcast(scale 1/T).
  const nmsnn::cpu::TemporalPoolLayer<float> pool(W, W, T);
  const CpuPass pass = cpu_pass(true, {}, B);
  const CpuForward f = cpu_forward(pool, x, B, pass);
  const CpuBackward g = cpu_backward(pool, x, B, pass, f, dy);
  Dev<float> dx_in(x), ddy(dy), mean{size_t(R)}, dx(n), sum{size_t(R)}, spread(n);
  nmsnn::kernels::time_sum(dx_in.get(), T, R, 0, 1.0f / float(T), mean.get(), nullptr, block);
  nmsnn::kernels::time_broadcast(ddy.get(), T, R, 0, 1.0f / float(T), dx.get(), nullptr, block);
  std::vector<double> mscale(R), dscale(n);
  for (size_t r = 0; r < size_t(R); ++r) mscale[r] = std::abs(f.y[r]);
  for (size_t e = 0; e < n; ++e) dscale[e] = std::abs(g.dx[e]);
  expect_close(mean.host(), to_double(f.y), mscale, 4 * kUnit, "time_sum (mean) " + name,
               tbw(B, W));
  expect_close(dx.host(), to_double(g.dx), dscale, 4 * kUnit, "time_broadcast (1/T) " + name,
               tbw(B, W));

  // The readout's sum from begin_eval, and a repeated input's broadcast from step `begin`.
  const int begin = T / 2;
  nmsnn::kernels::time_sum(dx_in.get(), T, R, begin, 1.0f, sum.get(), nullptr, block);
  nmsnn::kernels::time_broadcast(ddy.get(), T, R, begin, 1.0f, spread.get(), nullptr, block);
  std::vector<float> sum_cpu(size_t(R), 0.0f), spread_cpu(n, 0.0f);
  for (int t = begin; t < T; ++t)
    for (long long r = 0; r < R; ++r) {
      sum_cpu[r] += x[size_t(t) * R + r];
      spread_cpu[size_t(t) * R + r] = dy[r];
    }
  EXPECT_EQ(count_bit_differences(sum.host(), sum_cpu, "time_sum from " + std::to_string(begin) +
                                                           " " + name), 0);
  EXPECT_EQ(count_bit_differences(spread.host(), spread_cpu,
                                  "time_broadcast from " + std::to_string(begin) + " " + name), 0);
}

TEST(TimeAxis, SumsAndBroadcastsMatchCpu) {
  REQUIRE_CUDA();
  for (const TimeShape& s : {kOdd, TimeShape{1, 1, 1}, TimeShape{23, 5, 65}})
    check_time_axis(s, kDefaultBlock);
}

// ---- bias --------------------------------------------------------------------------------------

// add_bias against the straight loop (one addition per element: bit-identical), and
// bias_grad_reduce against a double sum with the FP32 bound (rows + 2) * 2^-24 * sum |terms|.
void check_bias(long long rows, int cols, int block) {
  const std::string name = "rows=" + std::to_string(rows) + " cols=" + std::to_string(cols) +
                           " block=" + std::to_string(block);
  const size_t n = size_t(rows) * cols;
  const auto y = random_vector(n, -1.0f, 1.0f, 101);
  const auto bias = random_vector(size_t(cols), -1.0f, 1.0f, 102);
  Dev<float> dy(y), dbias(bias), out{size_t(cols)};
  nmsnn::kernels::add_bias(dy.get(), rows, cols, dbias.get(), nullptr, block);
  std::vector<float> want = y;
  for (size_t e = 0; e < n; ++e) want[e] += bias[e % cols];
  EXPECT_EQ(count_bit_differences(dy.host(), want, "add_bias " + name), 0);

  nmsnn::kernels::bias_grad_reduce(dy.get(), int(rows), cols,
                                   out.get(), nullptr, block);
  std::vector<double> sum(size_t(cols), 0.0), scale(size_t(cols), 0.0);
  for (size_t e = 0; e < n; ++e) {
    sum[e % cols] += want[e];
    scale[e % cols] += std::abs(want[e]);
  }
  expect_close(out.host(), sum, scale, (double(rows) + 2) * kUnit, "bias_grad_reduce " + name,
               [](size_t c) { return "c=" + std::to_string(c); });
}

TEST(Bias, AddAndReduceMatchCpu) {
  REQUIRE_CUDA();
  for (auto [rows, cols] : {std::pair{1LL, 1}, std::pair{21LL, 37}, std::pair{1000LL, 3}})
    check_bias(rows, cols, kDefaultBlock);
}

// bias_grad_reduce_batch: up to three column sums in one launch (W1's backward: the hidden
// layer's bias, the output layer's dW and bias), each the same bits as its own bias_grad_reduce
// at the same block size (96: a fold that is not a power of two), each part walked in its own
// shape; a bad count or shape refused, naming which.
TEST(Bias, BatchIsTheReductionsInOneLaunch) {
  REQUIRE_CUDA();
  namespace k = nmsnn::kernels;
  struct Shape {
    int rows, cols;
  };
  const Shape shapes[] = {{37, 100}, {37, 1000}, {5, 3}};
  std::vector<std::unique_ptr<Dev<float>>> parts;
  for (int j = 0; j < 3; ++j)
    parts.push_back(std::make_unique<Dev<float>>(
        random_vector(size_t(shapes[j].rows) * shapes[j].cols, -1.0f, 1.0f, 61 + j)));
  for (int block : {kDefaultBlock, 96})
    for (int count : {1, 2, 3}) {
      std::vector<std::unique_ptr<Dev<float>>> got, want;
      k::ColumnSums sums[k::kMaxColumnSums];
      for (int j = 0; j < count; ++j) {
        got.push_back(std::make_unique<Dev<float>>(size_t(shapes[j].cols)));
        want.push_back(std::make_unique<Dev<float>>(size_t(shapes[j].cols)));
        sums[j] = {parts[j]->get(), shapes[j].rows, shapes[j].cols, got[j]->get()};
      }
      k::bias_grad_reduce_batch(sums, count, nullptr, block);
      for (int j = 0; j < count; ++j) {
        k::bias_grad_reduce(parts[j]->get(), shapes[j].rows, shapes[j].cols, want[j]->get(),
                            nullptr, block);
        EXPECT_EQ(count_bit_differences(got[j]->host(), want[j]->host(),
                                        "sum " + std::to_string(j) + " of " +
                                            std::to_string(count) + ", block " +
                                            std::to_string(block)),
                  0);
      }
    }
  Dev<float> out(4);
  const k::ColumnSums bad[] = {{parts[0]->get(), 37, 100, out.get()},
                               {parts[1]->get(), 0, 4, out.get()}};
  EXPECT_TRUE(throws_with([&] { k::bias_grad_reduce_batch(bad, 2, nullptr); },
                          {"bias_grad_reduce_batch", "got 0, 4 (sum 1)"}));
  EXPECT_TRUE(throws_with([&] { k::bias_grad_reduce_batch(bad, 4, nullptr); },
                          {"bias_grad_reduce_batch: 1 to 3 sums, got 4"}));
}

// gather_rows copies 32-bit words as bits: rows repeated and out of order, the words of a NaN
// with a payload and of negative ints among them, at a width that is one word, one that is not a
// multiple of the block, and at block sizes that leave threads idle and that stride.
TEST(GatherRows, CopiesTheRowsBitForBit) {
  REQUIRE_CUDA();
  for (int width : {1, 3, 785}) {
    for (int block : {32, 256}) {
      SCOPED_TRACE("width " + std::to_string(width) + ", block " + std::to_string(block));
      const int count = 7;
      std::vector<uint32_t> src(size_t(count) * width);
      for (size_t e = 0; e < src.size(); ++e) src[e] = uint32_t(e * 2654435761u);
      src[3] = 0x7fc01234u;  // a NaN's bits
      src[src.size() - 1] = uint32_t(-5);
      const std::vector<int> rows = {6, 0, 3, 3, 1, 6, 0, 2, 5};
      const int n = int(rows.size());
      Dev<uint32_t> dsrc(src), ddst(size_t(n) * width);
      Dev<int> drows(rows);
      nmsnn::kernels::gather_rows(dsrc.get(), width, drows.get(), n, ddst.get(), nullptr, block);
      std::vector<uint32_t> want;
      for (int r : rows) want.insert(want.end(), src.begin() + size_t(r) * width,
                                     src.begin() + size_t(r + 1) * width);
      EXPECT_TRUE(ddst.host() == want);
    }
  }
  Dev<uint32_t> one(size_t(1));
  Dev<int> row(std::vector<int>{0});
  EXPECT_TRUE(throws_with(
      [&] { nmsnn::kernels::gather_rows(one.get(), 1, row.get(), 0, one.get(), nullptr); },
      {"gather_rows: rows and width must be >= 1, got 0, 1"}));
  EXPECT_TRUE(throws_with(
      [&] { nmsnn::kernels::gather_rows(one.get(), 1, row.get(), 1, one.get(), nullptr, 48); },
      {"gather_rows"}));
}

// ---- every kernel at every block size ----------------------------------------------------------
//
// Each launch wrapper takes its block size as an argument; the same twin checks run at 32 .. 1024
// threads (and 96, a size that is not a power of two, for the reductions' fold), one case per
// kernel on small shapes: in the CUDA emulation every thread is a host thread, so a launch of
// 1024 threads costs tens of milliseconds and the cases are kept few (the twin tests above cover
// the variants). Element-wise kernels and the per-neuron time loops give the same bits at any
// block size; the reductions (bias_grad_reduce, the rate regularizer) add in a block-size-
// dependent order, within the bounds their checks state.

class BlockSizes : public ::testing::TestWithParam<int> {};

// Under ThreadSanitizer a 1024-thread emulated launch takes tens of seconds; there the blocks of
// 512 and more run only the shared-memory reduction (bias_grad_reduce), which is what the race
// check is for; the smaller blocks run everything.
#if defined(__SANITIZE_THREAD__)
constexpr bool kThreadSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool kThreadSanitizer = true;
#else
constexpr bool kThreadSanitizer = false;
#endif
#else
constexpr bool kThreadSanitizer = false;
#endif

TEST_P(BlockSizes, EveryKernelMatchesCpu) {
  REQUIRE_CUDA();
  const int block = GetParam();
  if (kThreadSanitizer && block >= 512) {
    check_bias(100, 7, block);
    return;
  }
  check_noise_mask(3, 5, 37, block);  // and masked_input
  check_lif({7, 3, 37}, ResetRule::scale, true, 3, block);  // and bias_grad_reduce
  check_spikes_from_u(block);
  check_bias(100, 7, block);
  check_activation(ActivationKind::sigmoid, kOdd, block);
  check_spiking_activation({ActivationKind::relu, true, true, true, true}, kOdd, block);
  check_spiking_activation({ActivationKind::tanh, false, false, false, false}, kOdd, block);
  check_lowpass(true, kOdd, block);
  check_time_axis(kOdd, block);
  check_optimizers({nmsnn::Sgd{0.05f, 0.9f, 0.1f, 1e-2f, false}, nmsnn::Adam{1e-3f}}, 333, 2,
                   block);
  check_nll_loss(37, 10, block);
}

INSTANTIATE_TEST_SUITE_P(Kernels, BlockSizes, ::testing::Values(32, 64, 96, 128, 256, 512, 1024),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return "block" + std::to_string(info.param);
                         });

// A block size that is not a whole number of warps, or is more than a block may hold, is refused
// before anything is launched, with the kernel's name and the value.
TEST(BlockSizes, BadSizesAreRefusedByName) {
  REQUIRE_CUDA();
  namespace k = nmsnn::kernels;
  const SpikingLayer lif = exact_layer(ResetRule::scale, true);
  const nmsnn::SpikingActivation sa;
  for (int bad : {0, 48, 2048}) {
    const std::string got = "got " + std::to_string(bad);
    auto refused = [&](const char* kernel, const std::function<void()>& launch) {
      EXPECT_TRUE(throws_with(launch, {kernel, "block size must be a multiple of 32", got}))
          << kernel << " with block size " << bad;
    };
    refused("noise_mask", [&] { k::noise_mask({}, 1, 1, 1, nullptr, nullptr, bad); });
    refused("masked_input", [&] { k::masked_input({}, nullptr, 1, 1, 1, nullptr, nullptr, bad); });
    refused("lif_forward", [&] { k::lif_forward(lif, {}, nullptr, bad); });
    refused("lif_backward", [&] { k::lif_backward(lif, {}, nullptr, bad); });
    refused("spikes_from_u",
            [&] { k::spikes_from_u(lif, 1, 1, 1, nullptr, nullptr, nullptr, bad); });
    refused("add_bias", [&] { k::add_bias(nullptr, 1, 1, nullptr, nullptr, bad); });
    refused("bias_grad_reduce", [&] { k::bias_grad_reduce(nullptr, 1, 1, nullptr, nullptr, bad); });
    refused("activation_forward", [&] {
      k::activation_forward(ActivationKind::relu, nullptr, 1, nullptr, nullptr, bad);
    });
    refused("activation_backward", [&] {
      k::activation_backward(ActivationKind::relu, nullptr, nullptr, 1, nullptr, nullptr, bad);
    });
    refused("spiking_activation_forward",
            [&] { k::spiking_activation_forward(sa, {}, nullptr, bad); });
    refused("spiking_activation_backward",
            [&] { k::spiking_activation_backward(sa, {}, nullptr, bad); });
    refused("rate_regularization_loss", [&] {
      k::rate_regularization_loss(sa, nullptr, 1, 1, false, nullptr, nullptr, bad);
    });
    refused("lowpass_forward", [&] { k::lowpass_forward({}, nullptr, bad); });
    refused("lowpass_backward", [&] { k::lowpass_backward({}, nullptr, bad); });
    refused("time_sum", [&] { k::time_sum(nullptr, 1, 1, 0, 1.0f, nullptr, nullptr, bad); });
    refused("time_broadcast",
            [&] { k::time_broadcast(nullptr, 1, 1, 0, 1.0f, nullptr, nullptr, bad); });
    refused("sgd_update", [&] {
      k::sgd_update(nmsnn::Sgd{0.1f}, nullptr, nullptr, nullptr, 1, 1, nullptr, bad);
    });
    refused("adam_update", [&] {
      k::adam_update(nmsnn::Adam{1e-3f}, nullptr, nullptr, nullptr, nullptr, 1, 1, nullptr, bad);
    });
    refused("nll_log_softmax",
            [&] { k::nll_log_softmax(nullptr, nullptr, 1, 1, nullptr, nullptr, nullptr, bad); });
  }
}

// ---- ClusterForward ----------------------------------------------------------------------------

struct PairCase {
  int T, B, I, H, C;
  ResetRule reset;
  bool delay;
  int begin_eval;
  float readout_scale;
};

// Random parameters for a PairCase (strong enough that a good share of neurons spike, both
// signs) and neuron settings that differ between the layers, so a mix-up would show.
struct PairNet {
  std::vector<float> W0, b0, W1, b1;
  SpikingLayer n0, n1;
};

PairNet random_pair(const PairCase& c, int seed) {
  PairNet n;
  const float w0 = 2.5f / std::sqrt(float(c.I)), w1 = 2.5f / std::sqrt(float(c.H));
  n.W0 = random_vector(size_t(c.H) * c.I, -w0, w0, 20 + seed);
  n.b0 = random_vector(size_t(c.H), -0.2f, 0.6f, 30 + seed);
  n.W1 = random_vector(size_t(c.C) * c.H, -w1, w1, 40 + seed);
  n.b1 = random_vector(size_t(c.C), -0.2f, 0.6f, 50 + seed);
  n.n0.size = c.H;
  n.n1.size = c.C;
  n.n0.reset = n.n1.reset = c.reset;
  n.n0.delay = n.n1.delay = c.delay;
  n.n1.decay = 0.8f;
  n.n1.threshold = 0.75f;
  return n;
}

// The kernels' arguments for a PairCase, its net on the device and the input x (device memory).
struct DevicePair {
  Dev<float> W0, b0, W1, b1, logits;
  DevicePair(const PairCase& c, const PairNet& n)
      : W0(n.W0), b0(n.b0), W1(n.W1), b1(n.b1), logits(size_t(c.B) * c.C) {}
  nmsnn::kernels::SampleClusterArgs args(const PairCase& c, const PairNet& n, NoiseKey key,
                                         const float* x) const {
    nmsnn::kernels::SampleClusterArgs a;
    a.T = c.T, a.B = c.B, a.I = c.I, a.H = c.H, a.C = c.C;
    a.key = key;
    a.x = x, a.W0 = W0.get(), a.b0 = b0.get(), a.W1 = W1.get(), a.b1 = b1.get();
    a.hidden = n.n0, a.output = n.n1;
    a.begin_eval = c.begin_eval;
    a.readout_scale = c.readout_scale;
    a.logits = logits.get();
    return a;
  }
};

std::string describe(const PairCase& c) {
  return "T=" + std::to_string(c.T) + " B=" + std::to_string(c.B) + " I=" + std::to_string(c.I) +
         " H=" + std::to_string(c.H) + " C=" + std::to_string(c.C);
}

// SPEC.md 1-3 for a pair of spiking layers, in double from the FP32 masked inputs the kernels
// multiply (rounded as their first layer's product rounds them in `math`), and per sample the
// smallest |u - threshold| over both layers (how close a spiking decision came to going the
// other way).
void pair_reference(const PairCase& c, NoiseKey key, const std::vector<float>& x,
                    const PairNet& net, nmsnn::MatmulPrecision math, std::vector<double>& logits,
                    std::vector<double>& margin, size_t& spikes) {
  const std::vector<float> &W0 = net.W0, &b0 = net.b0, &W1 = net.W1, &b1 = net.b1;
  const SpikingLayer &n0 = net.n0, &n1 = net.n1;
  logits.assign(size_t(c.B) * c.C, 0.0);
  margin.assign(size_t(c.B), 1e300);
  spikes = 0;
  // One step of a layer: u from the current, the spike, the new state; returns what it returns.
  auto step = [&](const SpikingLayer& n, double a, double& v, double& s_last, double& m,
                  double& returned_v) {
    const double u = a + n.decay * v;
    m = std::min(m, std::abs(u - n.threshold));
    const double s = std::max(u - n.threshold, 0.0), g = s > 0 ? 1.0 : 0.0;
    spikes += s > 0;
    const double next = n.reset == ResetRule::scale ? u - n.penalty / n.threshold * u * g
                                                    : u - (n.penalty + s) * g;
    const double returned_s = n.delay ? s_last : s;
    returned_v = n.delay ? v : next;
    v = next;
    s_last = s;
    return returned_s;
  };
  for (int b = 0; b < c.B; ++b) {
    std::vector<double> v0(c.H, 0), s0(c.H, 0), v1(c.C, 0), s1(c.C, 0), out0(c.H);
    for (int t = 0; t < c.T; ++t) {
      for (int h = 0; h < c.H; ++h) {
        double a = b0[h];
        for (int i = 0; i < c.I; ++i) {
          const float xi = nmsnn::noise_mask(key, t, b, i) * x[size_t(b) * c.I + i];
          a += double(operand(W0[size_t(h) * c.I + i], math)) * operand(xi, math);
        }
        double unused;
        out0[h] = step(n0, a, v0[h], s0[h], margin[b], unused);
      }
      for (int k = 0; k < c.C; ++k) {
        double a = b1[k];
        for (int h = 0; h < c.H; ++h) a += double(W1[size_t(k) * c.H + h]) * out0[h];
        double returned_v;
        step(n1, a, v1[k], s1[k], margin[b], returned_v);
        if (t >= c.begin_eval) logits[size_t(b) * c.C + k] += returned_v;
      }
    }
    for (int k = 0; k < c.C; ++k) logits[size_t(b) * c.C + k] *= c.readout_scale;
  }
}

// A pair long enough for several chunks of 16 steps (the tile, the least chunk in TF32).
const PairCase kLongPair = {40, 4, 33, 20, 3, ResetRule::subtract, true, 4, 1.0f / 36};

// The products' precisions the cluster kernels have.
const nmsnn::MatmulPrecision kClusterMaths[] = {nmsnn::MatmulPrecision::fp32,
                                                nmsnn::MatmulPrecision::tf32,
                                                nmsnn::MatmulPrecision::bf16};

// How the cluster tests run the kernels: a precision, and a chunk limit (max_time_chunk) of none
// (the seed network's chunks are whole samples but in TF32 training, see SeedNetworkPlans) or a
// small one, so the chunked path runs on every shape long enough: 3 steps in FP32, one tile of
// 16 with tensor cores. (The race check runs the TF32 chunks alone: their barriers are a superset
// of the whole sample's, and BF16 has the same.)
struct ClusterMode {
  nmsnn::MatmulPrecision math;
  int max_chunk;
  const char* name;
};
const ClusterMode kClusterModes[] = {{nmsnn::MatmulPrecision::fp32, 0, "fp32_whole"},
                                     {nmsnn::MatmulPrecision::fp32, 3, "fp32_chunks_of_3"},
                                     {nmsnn::MatmulPrecision::tf32, 0, "tf32_whole"},
                                     {nmsnn::MatmulPrecision::tf32, 16, "tf32_chunks_of_16"},
                                     {nmsnn::MatmulPrecision::bf16, 0, "bf16_whole"},
                                     {nmsnn::MatmulPrecision::bf16, 16, "bf16_chunks_of_16"}};
std::string mode_name(const ::testing::TestParamInfo<ClusterMode>& info) {
  return info.param.name;
}

// The long pair is taken in the chunks `mode` means (whole: one chunk of T).
void expect_long_pair_chunks(const ClusterMode& mode, bool train) {
  const PairCase& k = kLongPair;
  EXPECT_EQ(nmsnn::kernels::sample_cluster_time_chunk(k.T, k.I, k.H, k.C, train, mode.math,
                                                      mode.max_chunk),
            mode.max_chunk ? mode.max_chunk : k.T);
}

// FP32 sums in another order than the double loop: about 1e-6 of the currents (in TF32 too: the
// reference rounds the operands as the tensor cores do). Samples whose decisions all stay 1e-4
// away from the threshold spike the same way in both, and their logits then agree to 1e-4 of
// (1 + |logit|); a wrong index or a lost partial shows as errors of order 1.
class ClusterForwardIn : public ::testing::TestWithParam<ClusterMode> {};

TEST_P(ClusterForwardIn, MatchesDoubleLoop) {
  REQUIRE_CUDA();
  const nmsnn::MatmulPrecision math = GetParam().math;
  const int chunk = GetParam().max_chunk;
  const std::vector<PairCase> cases = {
      {16, 5, 784, 100, 10, ResetRule::scale, true, 0, 1.0f / 16},  // the seed's shape, T = 16
      {7, 8, 9, 130, 33, ResetRule::subtract, false, 2, 1.0f},        // 3 blocks without features
      {1, 3, 33, 5, 3, ResetRule::scale, false, 0, 1.0f},             // 3 blocks without neurons
      {37, 3, 70, 17, 1, ResetRule::subtract, true, 5, 1.0f / 32},
      kLongPair,
  };
  expect_long_pair_chunks(GetParam(), false);
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const PairCase& c = cases[ci];
    SCOPED_TRACE(describe(c));
    const int seed = int(ci) + 1 + 10 * int(math);
    const PairNet n = random_pair(c, seed);
    const auto x = random_vector(size_t(c.B) * c.I, 0.0f, 2.0f, 10 + seed, 0.2f);
    const NoiseKey key{77, uint64_t(seed)};
    Dev<float> dx(x);
    const DevicePair d(c, n);
    nmsnn::kernels::SampleClusterArgs a = d.args(c, n, key, dx.get());
    a.math = math;
    a.max_time_chunk = chunk;
    nmsnn::kernels::sample_cluster_forward(a, nullptr);
    const std::vector<float> got = d.logits.host();

    std::vector<double> want, margin;
    size_t spikes = 0;
    pair_reference(c, key, x, n, math, want, margin, spikes);
    EXPECT_GT(spikes, 0u) << "nothing fired: the comparison would not see the spiking path";
    int compared = 0;
    for (int b = 0; b < c.B; ++b) {
      if (margin[b] < 1e-4) continue;
      ++compared;
      for (int k = 0; k < c.C; ++k) {
        const double w = want[size_t(b) * c.C + k];
        EXPECT_NEAR(got[size_t(b) * c.C + k], w, 1e-4 * (1 + std::abs(w)))
            << "sample " << b << ", output " << k;
      }
    }
    EXPECT_GE(compared, 1) << "every sample came within 1e-4 of a spiking decision";
  }
}

// The training step of a pair of spiking layers in double (SPEC.md 1-4): the forward of
// pair_reference keeping u and the returned spikes, the loss's gradient (loss_math.hpp's
// expressions, each row's share of the batch mean), and backpropagation through time.
struct PairGradients {
  std::vector<double> logits, dW0, db0, dW1, db1, margin;
};

PairGradients pair_step_reference(const PairCase& c, NoiseKey key, nmsnn::Loss loss,
                                  nmsnn::MatmulPrecision math, const std::vector<float>& x,
                                  const std::vector<int>& labels,
                                  const std::vector<float>& targets, const PairNet& net) {
  const int T = c.T, B = c.B, I = c.I, H = c.H, C = c.C;
  const std::vector<float> &W0 = net.W0, &b0 = net.b0, &W1 = net.W1, &b1 = net.b1;
  const SpikingLayer &n0 = net.n0, &n1 = net.n1;
  PairGradients g;
  g.logits.assign(size_t(B) * C, 0);
  g.dW0.assign(size_t(H) * I, 0);
  g.db0.assign(H, 0);
  g.dW1.assign(size_t(C) * H, 0);
  g.db1.assign(C, 0);
  g.margin.assign(B, 1e300);
  const double N = loss == nmsnn::Loss::mse ? double(B) * C : double(B);
  auto forward = [&](const SpikingLayer& n, double a, double& v, double& s_last, double& margin,
                     double& u, double& ret_s, double& ret_v) {
    u = a + n.decay * v;
    margin = std::min(margin, std::abs(u - n.threshold));
    const double s = std::max(u - n.threshold, 0.0), gate = s > 0 ? 1.0 : 0.0;
    const double next = n.reset == ResetRule::scale ? u - n.penalty / n.threshold * u * gate
                                                    : u - (n.penalty + s) * gate;
    ret_s = n.delay ? s_last : s;
    ret_v = n.delay ? v : next;
    v = next;
    s_last = s;
  };
  // du[t] from dL/d(returned state) and dL/d(returned spike) at each step (lif_backward.cuh).
  auto backward = [&](const SpikingLayer& n, const std::vector<double>& u,
                      const std::vector<double>& d_state, const std::vector<double>& d_spike) {
    std::vector<double> du(T);
    double dv_next = 0;
    for (int t = T - 1; t >= 0; --t) {
      const int out = n.delay ? t + 1 : t;
      const double gate = u[t] - n.threshold > 0 ? 1.0 : 0.0;
      const double dv_du = n.reset == ResetRule::scale ? 1 - n.penalty / n.threshold * gate
                                                       : 1 - gate;
      du[t] = out < T ? (dv_next + d_state[out]) * dv_du + d_spike[out] * gate : dv_next * dv_du;
      dv_next = n.decay * du[t];
    }
    return du;
  };
  for (int b = 0; b < B; ++b) {
    std::vector<double> xi(size_t(T) * I), u0(size_t(T) * H), s0(size_t(T) * H),
        u1(size_t(T) * C), v0(H, 0), l0(H, 0), v1(C, 0), l1(C, 0);
    for (int t = 0; t < T; ++t) {
      for (int i = 0; i < I; ++i)
        xi[size_t(t) * I + i] =
            operand(nmsnn::noise_mask(key, t, b, i) * x[size_t(b) * I + i], math);
      for (int h = 0; h < H; ++h) {
        double a = b0[h], ret_v;
        for (int i = 0; i < I; ++i)
          a += double(operand(W0[size_t(h) * I + i], math)) * xi[size_t(t) * I + i];
        forward(n0, a, v0[h], l0[h], g.margin[b], u0[size_t(t) * H + h], s0[size_t(t) * H + h],
                ret_v);
      }
      for (int k = 0; k < C; ++k) {
        double a = b1[k], ret_s, ret_v;
        for (int h = 0; h < H; ++h) a += double(W1[size_t(k) * H + h]) * s0[size_t(t) * H + h];
        forward(n1, a, v1[k], l1[k], g.margin[b], u1[size_t(t) * C + k], ret_s, ret_v);
        if (t >= c.begin_eval) g.logits[size_t(b) * C + k] += ret_v * c.readout_scale;
      }
    }
    // The loss's gradient for this row.
    const double* z = g.logits.data() + size_t(b) * C;
    std::vector<double> dz(C);
    if (loss == nmsnn::Loss::nll) {
      double m = z[0], sum = 0;
      for (int k = 1; k < C; ++k) m = std::max(m, z[k]);
      for (int k = 0; k < C; ++k) sum += std::exp(z[k] - m);
      for (int k = 0; k < C; ++k)
        dz[k] = (std::exp(z[k] - m) / sum - (k == labels[b] ? 1.0 : 0.0)) / N;
    } else if (loss == nmsnn::Loss::bce) {
      dz[0] = (1 / (1 + std::exp(-z[0])) - labels[b]) / N;
    } else {
      for (int k = 0; k < C; ++k) dz[k] = 2 * (z[k] - targets[size_t(b) * C + k]) / N;
    }
    // Backward through the output layer, then the hidden one.
    std::vector<std::vector<double>> du1(C);
    for (int k = 0; k < C; ++k) {
      std::vector<double> u(T), d_state(T), none(T, 0.0);
      for (int t = 0; t < T; ++t) {
        u[t] = u1[size_t(t) * C + k];
        d_state[t] = t >= c.begin_eval ? dz[k] * c.readout_scale : 0;
      }
      du1[k] = backward(n1, u, d_state, none);
      for (int t = 0; t < T; ++t) {
        g.db1[k] += du1[k][t];
        for (int h = 0; h < H; ++h) g.dW1[size_t(k) * H + h] += du1[k][t] * s0[size_t(t) * H + h];
      }
    }
    for (int h = 0; h < H; ++h) {
      std::vector<double> u(T), none(T, 0.0), d_spike(T, 0.0);
      for (int t = 0; t < T; ++t) {
        u[t] = u0[size_t(t) * H + h];
        for (int k = 0; k < C; ++k) d_spike[t] += double(W1[size_t(k) * H + h]) * du1[k][t];
      }
      const std::vector<double> du = backward(n0, u, none, d_spike);
      for (int t = 0; t < T; ++t) {
        g.db0[h] += du[t];
        const double du_operand = operand(float(du[t]), math);
        for (int i = 0; i < I; ++i)
          g.dW0[size_t(h) * I + i] += du_operand * xi[size_t(t) * I + i];
      }
    }
  }
  return g;
}

// max |got - want| / max |want| over a tensor; infinite where a value is not finite.
double relative_difference(const std::vector<float>& got, const std::vector<double>& want) {
  double diff = 0, scale = 1e-30;
  for (size_t k = 0; k < want.size(); ++k) {
    if (!std::isfinite(got[k])) return INFINITY;
    diff = std::max(diff, std::abs(double(got[k]) - want[k]));
    scale = std::max(scale, std::abs(want[k]));
  }
  return diff / scale;
}

// The step's logits and the four gradients against the double loop, every sample at least 1e-4
// from every spiking decision (inputs redrawn until so): FP32 sums in other orders, over up to
// T x B terms, stay within 1e-4 of each tensor's largest value; a wrong index, a lost sample or a
// wrong derivative shows as an error of order one. B = 20 gives some clusters two samples, whose
// gradients must add up in shared memory. In TF32 and BF16 the reference rounds the operands as
// the tensor cores do, but it rounds its double du0 where the kernel rounds its FP32 one: a term
// whose two du0 fall either side of a rounding tie differs by one unit of the operand's last
// place (2^-10 of itself in TF32, 2^-7 in BF16), so dW0 is held to 1e-3 and 1e-2 there.
class SampleClusterStep : public ::testing::TestWithParam<ClusterMode> {};

TEST_P(SampleClusterStep, GradientsMatchDoubleBptt) {
  REQUIRE_CUDA();
  const nmsnn::MatmulPrecision math = GetParam().math;
  const int chunk = GetParam().max_chunk;
  using nmsnn::Loss;
  struct StepCase {
    PairCase shape;
    Loss loss;
  };
  const std::vector<StepCase> cases = {
      {{16, 5, 784, 100, 10, ResetRule::scale, true, 0, 1.0f / 16}, Loss::nll},
      {{7, 4, 9, 130, 1, ResetRule::subtract, false, 2, 1.0f}, Loss::bce},
      {{5, 3, 33, 5, 3, ResetRule::scale, false, 0, 1.0f}, Loss::mse},
      {{9, 20, 70, 17, 4, ResetRule::subtract, true, 3, 1.0f / 6}, Loss::nll},
      {kLongPair, Loss::mse},
  };
  expect_long_pair_chunks(GetParam(), true);
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const StepCase& sc = cases[ci];
    const PairCase& c = sc.shape;
    SCOPED_TRACE(std::string(nmsnn::to_string(sc.loss)) + " " + describe(c));
    const int seed = 101 + int(ci) + 10 * int(math);
    const PairNet n = random_pair(c, seed);
    std::vector<int> labels(c.B);
    std::mt19937 rng(seed);
    for (int& l : labels) l = int(rng() % unsigned(sc.loss == Loss::bce ? 2 : c.C));
    const auto targets = random_vector(size_t(c.B) * c.C, -1.0f, 2.0f, 60 + seed);
    const NoiseKey key{91, uint64_t(seed)};

    std::vector<float> x;
    PairGradients want;
    bool safe = false;
    for (int attempt = 0; attempt < 20 && !safe; ++attempt) {
      x = random_vector(size_t(c.B) * c.I, 0.0f, 2.0f, 1000 * seed + attempt, 0.2f);
      want = pair_step_reference(c, key, sc.loss, math, x, labels, targets, n);
      safe = *std::min_element(want.margin.begin(), want.margin.end()) > 1e-4;
    }
    ASSERT_TRUE(safe) << "no input kept every sample 1e-4 away from the threshold";

    Dev<float> dx(x), dtargets(targets);
    Dev<int> dlabels(labels);
    Dev<float> gW0(n.W0.size()), gb0(n.b0.size()), gW1(n.W1.size()), gb1(n.b1.size());
    Dev<float> scratch(nmsnn::kernels::sample_cluster_scratch_floats(c.B, c.I, c.H, c.C));
    const DevicePair d(c, n);
    nmsnn::kernels::SampleClusterArgs a = d.args(c, n, key, dx.get());
    a.math = math;
    a.max_time_chunk = chunk;
    a.loss = sc.loss;
    if (sc.loss == Loss::mse) a.targets = dtargets.get();
    else a.labels = dlabels.get();
    a.dW0 = gW0.get(), a.db0 = gb0.get(), a.dW1 = gW1.get(), a.db1 = gb1.get();
    a.scratch = scratch.get();
    nmsnn::kernels::sample_cluster_step(a, nullptr);

    EXPECT_LE(relative_difference(d.logits.host(), want.logits), 1e-5) << "logits";
    const double dw0_tolerance = math == nmsnn::MatmulPrecision::fp32   ? 1e-4
                                 : math == nmsnn::MatmulPrecision::tf32 ? 1e-3
                                                                        : 1e-2;
    EXPECT_LE(relative_difference(gW0.host(), want.dW0), dw0_tolerance) << "dW0";
    EXPECT_LE(relative_difference(gb0.host(), want.db0), 1e-4) << "db0";
    EXPECT_LE(relative_difference(gW1.host(), want.dW1), 1e-4) << "dW1";
    EXPECT_LE(relative_difference(gb1.host(), want.db1), 1e-4) << "db1";
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, ClusterForwardIn, ::testing::ValuesIn(kClusterModes), mode_name);
INSTANTIATE_TEST_SUITE_P(Modes, SampleClusterStep, ::testing::ValuesIn(kClusterModes), mode_name);

TEST(ClusterForward, DeviceNetworkChoosesItOnlyWhereItApplies) {
  REQUIRE_CUDA();
  const CublasHandle cublas;
  const cublasHandle_t handle = cublas.handle;
  nmsnn::cuda::DeviceInput noisy;
  noisy.kind = Input::Kind::noisy;
  noisy.batch = 4;
  nmsnn::cuda::DeviceOptions on;
  on.sample_clusters = true;
  EXPECT_FALSE(DeviceNetwork(NetworkSpec::seed_mnist(), handle).runs_by_sample(noisy, false))
      << "off by default";
  const DeviceNetwork pair(NetworkSpec::seed_mnist(), handle, on);
  EXPECT_TRUE(pair.runs_by_sample(noisy, false));
  EXPECT_FALSE(pair.runs_by_sample(noisy, true)) << "a training pass keeps state for backward";
  nmsnn::cuda::DeviceInput sequence = noisy;
  sequence.kind = Input::Kind::sequence;
  EXPECT_FALSE(pair.runs_by_sample(sequence, false));
  nmsnn::cuda::DeviceTrace trace;
  EXPECT_TRUE(pair.runs_by_sample(noisy, false, &trace)) << "an empty trace records nothing";
  float anything = 0;
  trace.rates = {nullptr, &anything};
  EXPECT_FALSE(pair.runs_by_sample(noisy, false, &trace)) << "the kernel records no rates";

  nmsnn::cuda::DeviceOptions tf32 = on;
  tf32.matmul = nmsnn::MatmulPrecision::tf32;
  EXPECT_TRUE(DeviceNetwork(NetworkSpec::seed_mnist(), handle, tf32).runs_by_sample(noisy, false));
  nmsnn::cuda::DeviceOptions bf16 = on;
  bf16.matmul = nmsnn::MatmulPrecision::bf16;
  EXPECT_TRUE(DeviceNetwork(NetworkSpec::seed_mnist(), handle, bf16).runs_by_sample(noisy, false));
  EXPECT_FALSE(DeviceNetwork(NetworkSpec::spiking(784, {100, 50}, 10), handle, on)
                   .runs_by_sample(noisy, false));
  // 2,000 steps: a block's masked input alone would be 800 KB.
  const NetworkSpec long_pair = NetworkSpec::spiking(784, {100}, 10, 2000);
  EXPECT_FALSE(DeviceNetwork(long_pair, handle, on).runs_by_sample(noisy, false));
}

TEST(ClusterForward, RefusesWhatItCannotRun) {
  REQUIRE_CUDA();
  namespace k = nmsnn::kernels;
  const char* why = nullptr;
  using nmsnn::MatmulPrecision;
  EXPECT_FALSE(k::sample_cluster_fits(2000, 784, 100, 10, false, MatmulPrecision::fp32, 0, &why));
  ASSERT_NE(why, nullptr);
  EXPECT_NE(std::string(why).find("shared memory"), std::string::npos) << why;
  k::SampleClusterArgs a;
  a.T = 2000, a.B = 1, a.I = 784, a.H = 100, a.C = 10;
  EXPECT_TRUE(throws_with([&] { k::sample_cluster_forward(a, nullptr); },
                          {"sample_cluster_forward", "T=2000", "shared memory"}));
  a.T = 8;
  a.begin_eval = 8;
  EXPECT_TRUE(
      throws_with([&] { k::sample_cluster_forward(a, nullptr); }, {"begin_eval", "T = 8"}));
  a.begin_eval = 0;
  a.max_time_chunk = -1;
  EXPECT_TRUE(throws_with([&] { k::sample_cluster_forward(a, nullptr); }, {"max_time_chunk"}));
  a.max_time_chunk = 0;
  a.C = 0;
  EXPECT_TRUE(throws_with([&] { k::sample_cluster_forward(a, nullptr); },
                          {"sample_cluster_forward", ">= 1"}));
}

// The seed network's plans, as sample_cluster.cu's header states them: every pass fits a block's
// 227 KB; FP32 keeps a whole sample's partial currents, TF32 training (its arrays padded to whole
// tiles) takes them in two chunks, of 80 steps and 48.
TEST(ClusterForward, SeedNetworkPlans) {
  namespace k = nmsnn::kernels;
  using nmsnn::MatmulPrecision;
  for (const bool train : {false, true})
    for (const MatmulPrecision math : kClusterMaths) {
      SCOPED_TRACE(std::string(train ? "training " : "forward ") + to_string(math));
      EXPECT_LE(k::sample_cluster_shared_bytes(128, 784, 100, 10, train, math), 232448u);
      const bool chunked = train && math == MatmulPrecision::tf32;
      EXPECT_EQ(k::sample_cluster_time_chunk(128, 784, 100, 10, train, math), chunked ? 80 : 128);
    }
}

}  // namespace
