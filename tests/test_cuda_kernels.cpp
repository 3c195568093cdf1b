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
//                     each product, one of the masked input); the TF32 variant with its own
//   Gemm              the three row-major cuBLAS products (the layout conventions)
//   Lif               forward and backward time loops vs cpu/lif.hpp: bit-identical. The test
//                     uses decay 0.5 and penalty/threshold 1.5, for which every product in the
//                     recurrence is exact, so fused or unfused multiply-adds round the same way
//                     and any difference is a bug, not rounding
//   BiasGrad, SpikesFromU, Optimizer, NllLoss
#include <gtest/gtest.h>

#include "require_cuda.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bias.cuh"
#include "cpu/lif.hpp"
#include "cublas_gemm.cuh"
#include "cuda_check.cuh"
#include "lif_backward.cuh"
#include "lif_forward.cuh"
#include "training/loss_math.hpp"
#include "masked_linear.cuh"
#include "nll_loss.cuh"
#include "nmsnn/network.hpp"
#include "nmsnn/optimizer.hpp"
#include "nmsnn/philox.hpp"
#include "noise_mask.cuh"
#include "optimizer_update.cuh"

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
    NMSNN_CUDA_CHECK(cudaMemcpy(p_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> host() const {
    NMSNN_CUDA_CHECK(cudaDeviceSynchronize());  // kernel errors surface here, with their name
    std::vector<T> v(n_);
    NMSNN_CUDA_CHECK(cudaMemcpy(v.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
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

constexpr double kUnit = 1.0 / 16777216.0;  // 2^-24, FP32 unit roundoff

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

TEST(NoiseMask, BitIdenticalToHost) {
  REQUIRE_CUDA();
  const NoiseKey key{0x123456789abcdefULL, 42};
  for (auto [T, B, I] : {std::tuple{1, 1, 1}, std::tuple{3, 5, 7}, std::tuple{37, 257, 33}}) {
    Dev<float> out(size_t(T) * B * I);
    nmsnn::kernels::noise_mask(key, T, B, I, out.get(), nullptr);
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
    EXPECT_EQ(bad, 0) << "T=" << T << " B=" << B << " I=" << I;
  }
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
                                          nmsnn::kernels::TileMath::fp32, nullptr);
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
                                        scratch.get(), nmsnn::kernels::TileMath::fp32, nullptr);
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

void check_masked_forward(nmsnn::kernels::TileMath math, double rel_extra) {
  const NoiseKey key{2024, 3};
  for (const MaskedShape& s : kMaskedShapes) {
    const long long M = (long long)s.T * s.B;
    const auto x = random_vector(size_t(s.B) * s.K, -1.0f, 2.0f, 1, 0.2f);
    const auto W = random_vector(size_t(s.N) * s.K, -0.3f, 0.3f, 2);
    Dev<float> dx(x), dW(W), out(size_t(M) * s.N);
    nmsnn::kernels::masked_linear_forward(key, dx.get(), s.T, s.B, s.K, dW.get(), s.N, out.get(),
                                          math, nullptr);
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
    expect_close(out.host(), want, scale, (s.K + 2) * kUnit + rel_extra,
                 "masked_linear_forward T=" + std::to_string(s.T) + " B=" + std::to_string(s.B) +
                     " K=" + std::to_string(s.K) + " N=" + std::to_string(s.N),
                 [&](size_t e) {
                   return "(m=" + std::to_string(e / s.N) + ", n=" + std::to_string(e % s.N) + ")";
                 });
  }
}

void check_masked_wgrad(nmsnn::kernels::TileMath math, double rel_extra) {
  const NoiseKey key{77, 1};
  for (const MaskedShape& s : kMaskedShapes) {
    const long long M = (long long)s.T * s.B;
    const auto x = random_vector(size_t(s.B) * s.K, -1.0f, 2.0f, 3, 0.2f);
    const auto dU = random_vector(size_t(M) * s.N, -1.0f, 1.0f, 4);
    Dev<float> dx(x), ddU(dU), dW(size_t(s.N) * s.K);
    Dev<float> scratch(nmsnn::kernels::masked_linear_wgrad_scratch(s.T, s.B, s.N, s.K));
    nmsnn::kernels::masked_linear_wgrad(key, dx.get(), s.T, s.B, s.K, ddU.get(), s.N, dW.get(),
                                        scratch.get(), math, nullptr);
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
    const auto split = nmsnn::kernels::masked_linear_wgrad_split(M, s.N, s.K);
    expect_close(dW.host(), want, scale, double(M + 2) * kUnit + rel_extra,
                 "masked_linear_wgrad T=" + std::to_string(s.T) + " B=" + std::to_string(s.B) +
                     " K=" + std::to_string(s.K) + " N=" + std::to_string(s.N) + " splits=" +
                     std::to_string(split.splits),
                 [&](size_t e) {
                   return "(n=" + std::to_string(e / s.K) + ", k=" + std::to_string(e % s.K) + ")";
                 });
  }
}

TEST(MaskedLinear, ForwardMatchesDoubleFp32) {
  REQUIRE_CUDA();
  check_masked_forward(nmsnn::kernels::TileMath::fp32, 0.0);
}
TEST(MaskedLinear, WeightGradMatchesDoubleFp32) {
  REQUIRE_CUDA();
  check_masked_wgrad(nmsnn::kernels::TileMath::fp32, 0.0);
}
// TF32 rounds each operand to 10 mantissa bits (relative error <= 2^-11 each, so <= ~2^-10 per
// product) before FP32 accumulation: error <= (2^-10 + 2^-24 n) sum|terms|, with 2x headroom for
// the tensor cores' internal accumulation order.
TEST(MaskedLinear, ForwardMatchesDoubleTf32) {
  REQUIRE_CUDA();
  check_masked_forward(nmsnn::kernels::TileMath::tf32, 2.0 / 1024);
}
TEST(MaskedLinear, WeightGradMatchesDoubleTf32) {
  REQUIRE_CUDA();
  check_masked_wgrad(nmsnn::kernels::TileMath::tf32, 2.0 / 1024);
}

// ---- cuBLAS products ---------------------------------------------------------------------------

TEST(Gemm, RowMajorProductsMatchDouble) {
  REQUIRE_CUDA();
  cublasHandle_t handle;
  ASSERT_EQ(cublasCreate(&handle), CUBLAS_STATUS_SUCCESS);
  for (auto [M, N, K] : {std::tuple{1, 1, 1}, std::tuple{15, 7, 5}, std::tuple{333, 65, 33},
                         std::tuple{1000, 17, 70}}) {
    const auto X = random_vector(size_t(M) * K, -1, 1, 5);
    const auto W = random_vector(size_t(N) * K, -1, 1, 6);
    const auto dY = random_vector(size_t(M) * N, -1, 1, 7);
    Dev<float> dX(X), dW(W), ddY(dY), Y(size_t(M) * N), gW(size_t(N) * K), gX(size_t(M) * K);
    using nmsnn::kernels::GemmMath;
    nmsnn::kernels::gemm_forward(handle, GemmMath::fp32, M, N, K, dX.get(), dW.get(), Y.get(), "test forward");
    nmsnn::kernels::gemm_weight_grad(handle, GemmMath::fp32, M, N, K, ddY.get(), dX.get(), gW.get(), "test wgrad");
    nmsnn::kernels::gemm_input_grad(handle, GemmMath::fp32, M, N, K, ddY.get(), dW.get(), gX.get(), "test dgrad");
    const std::string shape = " M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K);
    {
      std::vector<double> want(size_t(M) * N), scale(want.size());
      for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n)
          for (int k = 0; k < K; ++k) {
            const double t = double(X[size_t(m) * K + k]) * W[size_t(n) * K + k];
            want[size_t(m) * N + n] += t;
            scale[size_t(m) * N + n] += std::abs(t);
          }
      expect_close(Y.host(), want, scale, (K + 2) * kUnit, "Y = X W^T" + shape,
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
      expect_close(gW.host(), want, scale, (M + 2) * kUnit, "dW = dY^T X" + shape,
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
      expect_close(gX.host(), want, scale, (N + 2) * kUnit, "dX = dY W" + shape,
                   [&](size_t e) { return std::to_string(e / K) + "," + std::to_string(e % K); });
    }
  }
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

int count_bit_differences(const std::vector<float>& got, const std::vector<float>& want,
                          const std::string& what) {
  int bad = 0;
  for (size_t k = 0; k < got.size(); ++k)
    if (bits(got[k]) != bits(want[k]) && !(got[k] == 0 && want[k] == 0) && bad++ < 5)
      ADD_FAILURE() << what << " element " << k << ": device " << got[k] << ", cpu " << want[k];
  return bad;
}

TEST(Lif, ForwardAndBackwardBitIdenticalToCpu) {
  REQUIRE_CUDA();
  for (const LifShape& s : kLifShapes)
    for (ResetRule reset : {ResetRule::scale, ResetRule::subtract})
      for (bool delay : {true, false})
        for (int begin : {0, s.T / 2}) {
          const std::string name = "T=" + std::to_string(s.T) + " B=" + std::to_string(s.B) +
                                   " H=" + std::to_string(s.H) + " " + nmsnn::to_string(reset) +
                                   (delay ? " delay" : " no delay") + " begin_eval=" +
                                   std::to_string(begin);
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
          nmsnn::kernels::lif_forward(layer, fa, nullptr);
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
            nmsnn::kernels::lif_backward(layer, ba, nullptr);
            nmsnn::kernels::bias_grad_reduce(part.get(), s.B, s.H, db.get(), nullptr);
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
}

TEST(SpikesFromU, BitIdenticalToCpu) {
  REQUIRE_CUDA();
  for (bool delay : {true, false}) {
    const int T = 9, B = 7, H = 33;
    const size_t n = size_t(T) * B * H;
    SpikingLayer layer = exact_layer(ResetRule::scale, delay);
    layer.threshold = 0.7f;
    const auto u = random_vector(n, -1.0f, 2.0f, 21);
    Dev<float> du(u), out(n);
    nmsnn::kernels::spikes_from_u(layer, T, B, H, du.get(), out.get(), nullptr);
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
    EXPECT_EQ(count_bit_differences(got, want, delay ? "delay" : "no delay"), 0);
  }
}

// ---- optimisers and loss -------------------------------------------------------------------------

TEST(Optimizer, SameArithmeticAsHost) {
  REQUIRE_CUDA();
  const size_t n = 1000;
  const std::vector<nmsnn::OptimizerSpec> specs = {
      nmsnn::Sgd{0.1f},
      nmsnn::Sgd{0.1f, 0.5f},
      nmsnn::Sgd{0.05f, 0.9f, 0.1f, 1e-2f, false},
      nmsnn::Sgd{0.05f, 0.9f, 0.0f, 1e-3f, true},
      nmsnn::Adam{1e-3f},
      nmsnn::Adam{2e-3f, 0.8f, 0.99f, 1e-6f, 1e-2f},
  };
  for (const auto& spec : specs) {
    std::vector<float> p = random_vector(n, -1, 1, 31), m(n, 0.0f), v(n, 0.0f);
    Dev<float> dp(p), dm(n), dv(n), dg(n);
    for (int64_t step = 1; step <= 4; ++step) {
      const auto g = random_vector(n, -1, 1, 40 + step);
      dg.put(g);
      if (const auto* sgd = std::get_if<nmsnn::Sgd>(&spec)) {
        nmsnn::sgd_update(*sgd, p.data(), g.data(), m.data(), n, step);
        nmsnn::kernels::sgd_update(*sgd, dp.get(), dg.get(), dm.get(), n, step, nullptr);
      } else {
        const auto& adam = std::get<nmsnn::Adam>(spec);
        nmsnn::adam_update(adam, p.data(), g.data(), m.data(), v.data(), n, step);
        nmsnn::kernels::adam_update(adam, dp.get(), dg.get(), dm.get(), dv.get(), n, step, nullptr);
      }
      // Both sides may fuse a multiply and an add differently: allow a few ulps.
      const auto got = dp.host();
      double worst = 0;
      for (size_t i = 0; i < n; ++i)
        worst = std::max(worst, std::abs(double(got[i]) - p[i]) / std::max(1e-3, double(std::abs(p[i]))));
      EXPECT_LE(worst, 1e-6) << nmsnn::describe(spec) << " step " << step;
    }
  }
}

TEST(NllLoss, MatchesHost) {
  REQUIRE_CUDA();
  for (auto [B, C] : {std::pair{1, 1}, std::pair{3, 10}, std::pair{1000, 10}, std::pair{5, 257}}) {
    const auto z = random_vector(size_t(B) * C, -5, 5, 51);
    std::vector<int> labels(B);
    for (int b = 0; b < B; ++b) labels[b] = (b * 7) % C;
    Dev<float> dz(z), grad(size_t(B) * C), losses(B);
    Dev<int> dl(labels);
    nmsnn::kernels::nll_log_softmax(dz.get(), dl.get(), B, C, grad.get(), losses.get(), nullptr);
    std::vector<double> zd(z.begin(), z.end()), gd(z.size());
    const double loss = nmsnn::detail::nll_log_softmax(zd.data(), B, C, labels.data(), gd.data());
    const auto g = grad.host(), l = losses.host();
    double mean = 0;
    for (float x : l) mean += x;
    mean /= B;
    EXPECT_NEAR(mean, loss, 1e-5 * std::max(1.0, std::abs(loss))) << "B=" << B << " C=" << C;
    for (size_t k = 0; k < g.size(); ++k)
      ASSERT_NEAR(g[k], gd[k], 1e-6 / B + 1e-7) << "B=" << B << " C=" << C << " element " << k;
  }
}

}  // namespace
