// test_cuda_conv.cpp — the convolution and pooling kernels (kernels/conv2d.cuh, pool2d.cuh)
// against straight host loops written from their definitions, at odd sizes, with strides and
// padding.
//
// Built only with CUDA (and in the CUDA emulation); each test skips with "no CUDA device: <why>"
// on a machine without a GPU.
//
//   Im2col, Col2im, Transposes   pure data movement, or sums in the same order as the loops:
//                                bit-identical
//   ConvBiasPart                 the bias's per-sample sums at several block sizes, within the
//                                FP32 sum bound (n + 2) 2^-24 sum |terms|
//   Conv2d                       the whole forward and backward (cuBLAS products) against a
//                                double-precision sum, within (n + 2) 2^-24 sum |terms|, n the
//                                terms per output (the FP32 bound the Gemm tests use)
//   Pool2d                       avg and max, forward and backward, bit-identical to loops that
//                                add in the same order; max pooling on spike-like inputs full of
//                                ties, its gradient to the first largest value of each window
//   LifSeparateInput             lif_forward reading a from its own buffer with no bias against
//                                the same loop with a copied into u and a zero bias: bit-identical
#include <gtest/gtest.h>

#include "require_cuda.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "conv2d.cuh"
#include "cuda_check.cuh"
#include "lif_forward.cuh"
#include "pool2d.cuh"

namespace {

using nmsnn::kernels::Conv2dShape;
using nmsnn::kernels::Pool2dShape;

// A device array that copies to and from std::vector.
class Dev {
 public:
  explicit Dev(size_t n) : n_(n) {
    NMSNN_CUDA_CHECK(cudaMalloc(&p_, std::max<size_t>(n, 1) * sizeof(float)));
    NMSNN_CUDA_CHECK(cudaMemset(p_, 0, std::max<size_t>(n, 1) * sizeof(float)));
  }
  explicit Dev(const std::vector<float>& v) : Dev(v.size()) {
    NMSNN_CUDA_CHECK(cudaMemcpy(p_, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice));
  }
  ~Dev() { cudaFree(p_); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  float* get() const { return p_; }
  std::vector<float> host() const {
    NMSNN_CUDA_CHECK(cudaDeviceSynchronize());  // kernel errors surface here, with their name
    std::vector<float> v(n_);
    NMSNN_CUDA_CHECK(cudaMemcpy(v.data(), p_, n_ * sizeof(float), cudaMemcpyDeviceToHost));
    return v;
  }

 private:
  float* p_ = nullptr;
  size_t n_;
};

std::vector<float> random_vector(size_t n, float lo, float hi, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Spike-like maps: mostly 0, some 1, a few 0.5 — windows tie all the time.
std::vector<float> spiky_vector(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> d(0, 9);
  std::vector<float> v(n);
  for (float& x : v) {
    const int r = d(rng);
    x = r < 6 ? 0.0f : r < 9 ? 1.0f : 0.5f;
  }
  return v;
}

void expect_identical(const std::vector<float>& got, const std::vector<float>& want,
                      const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t k = 0; k < got.size(); ++k)
    if (!(got[k] == want[k]) && bad++ < 5)
      ADD_FAILURE() << what << " element " << k << ": device " << got[k] << ", host " << want[k];
  EXPECT_EQ(bad, 0) << what;
}

constexpr double kUnit = 1.0 / 16777216.0;  // 2^-24

// |got - want| <= (terms + 2) 2^-24 * scale per element.
void expect_close(const std::vector<float>& got, const std::vector<double>& want,
                  const std::vector<double>& scale, double terms, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t k = 0; k < got.size(); ++k) {
    const double bound = (terms + 2) * kUnit * scale[k] + 1e-30;
    if (!(std::abs(got[k] - want[k]) <= bound) && bad++ < 5)
      ADD_FAILURE() << what << " element " << k << ": device " << got[k] << ", want " << want[k]
                    << " (bound " << bound << ")";
  }
  EXPECT_EQ(bad, 0) << what;
}

// ---- the host loops -----------------------------------------------------------------------------

// x[n, c, iy, ix] or 0 outside the image, for output (oy, ox) and kernel tap (ky, kx).
float tap(const Conv2dShape& s, const std::vector<float>& x, long long n, int c, int oy, int ox,
          int ky, int kx) {
  const int iy = oy * s.sy - s.py + ky, ix = ox * s.sx - s.px + kx;
  if (iy < 0 || iy >= s.H || ix < 0 || ix >= s.W) return 0.0f;
  return x[((size_t(n) * s.C + c) * s.H + iy) * s.W + ix];
}

struct ConvCase {
  int C, H, W, O, kh, kw, sy, sx, py, px, steps, B;
};

std::string name_of(const ConvCase& k) {
  return "[" + std::to_string(k.C) + "," + std::to_string(k.H) + "," + std::to_string(k.W) +
         "] O=" + std::to_string(k.O) + " k" + std::to_string(k.kh) + "x" + std::to_string(k.kw) +
         " s" + std::to_string(k.sy) + "x" + std::to_string(k.sx) + " p" + std::to_string(k.py) +
         "x" + std::to_string(k.px) + " N=" + std::to_string(k.steps) + "*" + std::to_string(k.B);
}

Conv2dShape shape_of(const ConvCase& k) {
  nmsnn::Conv2d layer;
  layer.out_channels = k.O;
  layer.kernel = {k.kh, k.kw};
  layer.stride = {k.sy, k.sx};
  layer.padding = {k.py, k.px};
  return nmsnn::kernels::conv2d_shape({k.C, k.H, k.W}, layer);
}

const ConvCase kConvCases[] = {
    {1, 5, 7, 3, 3, 2, 1, 1, 0, 0, 1, 3},    // odd sizes, a non-square kernel
    {3, 9, 8, 5, 3, 3, 2, 2, 1, 1, 2, 2},    // stride 2, padding 1
    {2, 6, 5, 4, 5, 1, 1, 3, 2, 0, 3, 1},    // padding on one axis, stride on the other
    {2, 7, 7, 3, 2, 3, 3, 2, 1, 2, 1, 2},    // stride larger than the kernel on one axis
    {1, 28, 28, 16, 5, 5, 1, 1, 0, 0, 1, 2}, // the MNIST net's first layer
};

TEST(Im2col, CopiesEveryWindow) {
  REQUIRE_CUDA();
  for (const ConvCase& k : kConvCases) {
    const Conv2dShape s = shape_of(k);
    const long long N = (long long)k.steps * k.B;
    const auto x = random_vector(size_t(N * s.in_width()), -1, 1, 1);
    Dev dx(x), col(nmsnn::kernels::conv2d_col_floats(s, N));
    nmsnn::kernels::im2col(s, N, dx.get(), col.get(), nullptr);
    std::vector<float> want;
    for (long long n = 0; n < N; ++n)
      for (int oy = 0; oy < s.OH; ++oy)
        for (int ox = 0; ox < s.OW; ++ox)
          for (int c = 0; c < s.C; ++c)
            for (int ky = 0; ky < s.kh; ++ky)
              for (int kx = 0; kx < s.kw; ++kx) want.push_back(tap(s, x, n, c, oy, ox, ky, kx));
    expect_identical(col.host(), want, "im2col " + name_of(k));
  }
}

TEST(Col2im, GathersWhatEachElementWasCopiedTo) {
  REQUIRE_CUDA();
  for (const ConvCase& k : kConvCases) {
    const Conv2dShape s = shape_of(k);
    const long long N = (long long)k.steps * k.B;
    const auto dcol = random_vector(nmsnn::kernels::conv2d_col_floats(s, N), -1, 1, 2);
    Dev ddcol(dcol), dx(size_t(N * s.in_width()));
    nmsnn::kernels::col2im(s, N, ddcol.get(), dx.get(), nullptr);
    // The loop over the input element's taps, ky then kx upwards, as the kernel adds them.
    std::vector<float> want(size_t(N * s.in_width()), 0.0f);
    const size_t CK = size_t(s.CK()), P = size_t(s.P());
    for (long long n = 0; n < N; ++n)
      for (int c = 0; c < s.C; ++c)
        for (int iy = 0; iy < s.H; ++iy)
          for (int ix = 0; ix < s.W; ++ix) {
            float sum = 0.0f;
            for (int ky = 0; ky < s.kh; ++ky)
              for (int kx = 0; kx < s.kw; ++kx)
                for (int oy = 0; oy < s.OH; ++oy)
                  for (int ox = 0; ox < s.OW; ++ox)
                    if (oy * s.sy - s.py + ky == iy && ox * s.sx - s.px + kx == ix)
                      sum += dcol[(size_t(n) * P + size_t(oy) * s.OW + ox) * CK +
                                  (size_t(c) * s.kh + ky) * s.kw + kx];
            want[((size_t(n) * s.C + c) * s.H + iy) * s.W + ix] = sum;
          }
    expect_identical(dx.host(), want, "col2im " + name_of(k));
  }
}

TEST(Transposes, RowsToMapsAndBack) {
  REQUIRE_CUDA();
  for (const ConvCase& k : kConvCases) {
    const Conv2dShape s = shape_of(k);
    const long long N = (long long)k.steps * k.B;
    const size_t P = size_t(s.P()), O = size_t(s.O);
    const auto rows = random_vector(size_t(N) * P * O, -1, 1, 3);
    const auto bias = random_vector(O, -1, 1, 4);
    Dev drows(rows), dbias(bias), y(rows.size()), back(rows.size());
    nmsnn::kernels::rows_to_maps(s, N, drows.get(), dbias.get(), y.get(), nullptr);
    nmsnn::kernels::maps_to_rows(s, N, y.get(), back.get(), nullptr);
    std::vector<float> want(rows.size()), want_back(rows.size());
    for (size_t n = 0; n < size_t(N); ++n)
      for (size_t o = 0; o < O; ++o)
        for (size_t p = 0; p < P; ++p) {
          want[(n * O + o) * P + p] = rows[(n * P + p) * O + o] + bias[o];
          want_back[(n * P + p) * O + o] = want[(n * O + o) * P + p];
        }
    expect_identical(y.host(), want, "rows_to_maps " + name_of(k));
    expect_identical(back.host(), want_back, "maps_to_rows " + name_of(k));
  }
}

// The bias's per-sample sums over steps and windows, at several block sizes (one block per
// (b, o), a tree across its threads).
TEST(ConvBiasPart, SumsEveryStepAndWindow) {
  REQUIRE_CUDA();
  for (const ConvCase& k : kConvCases) {
    const Conv2dShape s = shape_of(k);
    const size_t P = size_t(s.P()), O = size_t(s.O);
    const auto dy = random_vector(size_t(k.steps) * k.B * O * P, -1, 1, 12);
    std::vector<double> want(size_t(k.B) * O), scale(want.size());
    for (int t = 0; t < k.steps; ++t)
      for (int b = 0; b < k.B; ++b)
        for (size_t o = 0; o < O; ++o)
          for (size_t p = 0; p < P; ++p) {
            const float v = dy[((size_t(t) * k.B + b) * O + o) * P + p];
            want[size_t(b) * O + o] += v;
            scale[size_t(b) * O + o] += std::abs(v);
          }
    for (int block : {32, 96, 128, 1024}) {
      Dev ddy(dy), part(want.size());
      nmsnn::kernels::conv_bias_part(s, k.steps, k.B, ddy.get(), part.get(), nullptr, block);
      expect_close(part.host(), want, scale, double(k.steps) * P,
                   "conv_bias_part " + name_of(k) + " block " + std::to_string(block));
    }
  }
}

// The layer: forward, then backward from a random dy, against double-precision loops.
void check_conv(const ConvCase& k, nmsnn::MatmulPrecision math) {
  const Conv2dShape s = shape_of(k);
  const int steps = k.steps, B = k.B;
  const long long N = (long long)steps * B;
  const size_t P = size_t(s.P()), O = size_t(s.O), CK = size_t(s.CK());
  const size_t in_n = size_t(N * s.in_width()), out_n = size_t(N * s.out_width());
  const auto x = random_vector(in_n, -1, 1, 5);
  const auto W = random_vector(O * CK, -0.5f, 0.5f, 6);
  const auto bias = random_vector(O, -1, 1, 7);
  const auto dy = random_vector(out_n, -1, 1, 8);

  cublasHandle_t handle;
  ASSERT_EQ(cublasCreate(&handle), CUBLAS_STATUS_SUCCESS);
  const size_t col_n = nmsnn::kernels::conv2d_col_floats(s, N);
  Dev dx_in(x), dW(W), dbias(bias), ddy(dy), col(col_n), rows(size_t(N) * P * O), y(out_n);
  Dev dyt(size_t(N) * P * O), part(size_t(B) * O), gW(O * CK), gbias(O), gx(in_n);
  const std::string name = name_of(k);
  nmsnn::kernels::conv2d_forward(handle, math, s, N, dx_in.get(), dW.get(), dbias.get(), col.get(),
                                 rows.get(), y.get(), nullptr, "test conv forward");
  nmsnn::kernels::conv2d_backward(handle, math, s, steps, B, dx_in.get(), dW.get(), ddy.get(),
                                  dyt.get(), col.get(), part.get(), gW.get(), gbias.get(),
                                  gx.get(), nullptr, "test conv backward");

  std::vector<double> want_y(out_n), scale_y(out_n), want_W(O * CK), scale_W(O * CK);
  std::vector<double> want_b(O), scale_b(O), want_x(in_n), scale_x(in_n);
  for (long long n = 0; n < N; ++n)
    for (size_t o = 0; o < O; ++o)
      for (int oy = 0; oy < s.OH; ++oy)
        for (int ox = 0; ox < s.OW; ++ox) {
          const size_t at = (size_t(n) * O + o) * P + size_t(oy) * s.OW + ox;
          want_y[at] = bias[o];
          scale_y[at] = std::abs(bias[o]);
          want_b[o] += dy[at];
          scale_b[o] += std::abs(dy[at]);
          for (int c = 0; c < s.C; ++c)
            for (int ky = 0; ky < s.kh; ++ky)
              for (int kx = 0; kx < s.kw; ++kx) {
                const size_t w = (o * s.C + c) * s.kh * s.kw + size_t(ky) * s.kw + kx;
                const double v = tap(s, x, n, c, oy, ox, ky, kx);
                want_y[at] += W[w] * v;
                scale_y[at] += std::abs(W[w] * v);
                want_W[w] += dy[at] * v;
                scale_W[w] += std::abs(dy[at] * v);
                const int iy = oy * s.sy - s.py + ky, ix = ox * s.sx - s.px + kx;
                if (iy < 0 || iy >= s.H || ix < 0 || ix >= s.W) continue;
                const size_t xi = ((size_t(n) * s.C + c) * s.H + iy) * s.W + ix;
                want_x[xi] += double(dy[at]) * W[w];
                scale_x[xi] += std::abs(double(dy[at]) * W[w]);
              }
        }
  // Terms per output: CK products and the bias; N*P per weight (and bias); for dx, the O channels
  // of each of the kh*kw taps (cuBLAS sums O, col2im adds up to kh*kw of those).
  const double extra = math == nmsnn::MatmulPrecision::fp32 ? 0.0 : 2e-3 / kUnit;
  expect_close(y.host(), want_y, scale_y, double(CK + 1) + extra, "y " + name);
  expect_close(gW.host(), want_W, scale_W, double(N) * P + extra, "dW " + name);
  expect_close(gbias.host(), want_b, scale_b, double(N) * P, "dbias " + name);
  expect_close(gx.host(), want_x, scale_x, double(O + s.kh * s.kw) + extra, "dx " + name);
  cublasDestroy(handle);
}

TEST(Conv2d, ForwardAndBackwardMatchDoubleFp32) {
  REQUIRE_CUDA();
  for (const ConvCase& k : kConvCases) check_conv(k, nmsnn::MatmulPrecision::fp32);
}

// TF32 operands are within 2^-11 relative: the product of two within about 1e-3, allowed 2e-3.
TEST(Conv2d, ForwardAndBackwardMatchDoubleTf32) {
  REQUIRE_CUDA();
  check_conv(kConvCases[1], nmsnn::MatmulPrecision::tf32);
}

// ---- pooling ----------------------------------------------------------------------------------

struct PoolCase {
  int C, H, W, kh, kw, sy, sx, N;  // stride 0: the kernel size
};

std::string name_of(const PoolCase& k) {
  return "[" + std::to_string(k.C) + "," + std::to_string(k.H) + "," + std::to_string(k.W) +
         "] k" + std::to_string(k.kh) + "x" + std::to_string(k.kw) + " s" + std::to_string(k.sy) +
         "x" + std::to_string(k.sx) + " N=" + std::to_string(k.N);
}

const PoolCase kPoolCases[] = {
    {2, 7, 9, 2, 2, 0, 0, 3},  // floor rounding leaves the last row and column out
    {3, 8, 7, 3, 2, 2, 1, 2},  // overlapping windows
    {1, 5, 5, 3, 3, 1, 1, 2},  // each element in up to nine windows
    {2, 6, 11, 1, 4, 3, 0, 1}, // stride larger than the kernel: rows nobody reads
    {16, 24, 24, 2, 2, 0, 0, 2},
};

// The loops of the definitions. avg: sum row-major, divide by the area; max: the first largest.
void host_pool(const Pool2dShape& s, const PoolCase& k, bool max, const std::vector<float>& x,
               const std::vector<float>& dy, std::vector<float>& y, std::vector<float>& dx) {
  y.assign(size_t(k.N * s.out_width()), 0.0f);
  dx.assign(size_t(k.N * s.in_width()), 0.0f);
  const float area = float(s.kh * s.kw);
  for (size_t nc = 0; nc < size_t(k.N) * s.C; ++nc) {
    const float* map = &x[nc * s.H * s.W];
    for (int oy = 0; oy < s.OH; ++oy)
      for (int ox = 0; ox < s.OW; ++ox) {
        float sum = 0.0f, best = map[size_t(oy * s.sy) * s.W + ox * s.sx];
        for (int ky = 0; ky < s.kh; ++ky)
          for (int kx = 0; kx < s.kw; ++kx) {
            const size_t i = size_t(oy * s.sy + ky) * s.W + ox * s.sx + kx;
            sum += map[i];
            best = std::max(best, map[i]);
          }
        y[(nc * s.OH + oy) * s.OW + ox] = max ? best : sum / area;
      }
    // dx gathers: for each element, the windows covering it in (oy, ox) order.
    for (int iy = 0; iy < s.H; ++iy)
      for (int ix = 0; ix < s.W; ++ix) {
        float sum = 0.0f;
        for (int oy = 0; oy < s.OH; ++oy)
          for (int ox = 0; ox < s.OW; ++ox) {
            if (iy < oy * s.sy || iy >= oy * s.sy + s.kh || ix < ox * s.sx ||
                ix >= ox * s.sx + s.kw)
              continue;
            const float g = dy[(nc * s.OH + oy) * s.OW + ox];
            if (!max) {
              sum += g;
              continue;
            }
            size_t at = size_t(oy * s.sy) * s.W + ox * s.sx;
            for (int ky = 0; ky < s.kh; ++ky)
              for (int kx = 0; kx < s.kw; ++kx) {
                const size_t i = size_t(oy * s.sy + ky) * s.W + ox * s.sx + kx;
                if (map[i] > map[at]) at = i;
              }
            if (at == size_t(iy) * s.W + ix) sum += g;
          }
        dx[(nc * s.H + iy) * s.W + ix] = max ? sum : sum / area;
      }
  }
}

void check_pool(const PoolCase& k, bool max, bool spiky, int block) {
  const Pool2dShape s = nmsnn::kernels::pool2d_shape({k.C, k.H, k.W}, {k.kh, k.kw}, {k.sy, k.sx});
  const auto x = spiky ? spiky_vector(size_t(k.N * s.in_width()), 9)
                       : random_vector(size_t(k.N * s.in_width()), -1, 1, 9);
  const auto dy = random_vector(size_t(k.N * s.out_width()), -1, 1, 10);
  Dev dx_in(x), ddy(dy), y(dy.size()), dx(x.size());
  if (max) {
    nmsnn::kernels::max_pool2d_forward(s, k.N, dx_in.get(), y.get(), nullptr, block);
    nmsnn::kernels::max_pool2d_backward(s, k.N, dx_in.get(), ddy.get(), dx.get(), nullptr, block);
  } else {
    nmsnn::kernels::avg_pool2d_forward(s, k.N, dx_in.get(), y.get(), nullptr, block);
    nmsnn::kernels::avg_pool2d_backward(s, k.N, ddy.get(), dx.get(), nullptr, block);
  }
  std::vector<float> want_y, want_dx;
  host_pool(s, k, max, x, dy, want_y, want_dx);
  const std::string name = std::string(max ? "max" : "avg") + (spiky ? " spiky " : " ") +
                           name_of(k) + " block " + std::to_string(block);
  expect_identical(y.host(), want_y, name + " forward");
  expect_identical(dx.host(), want_dx, name + " backward");
}

TEST(Pool2d, AvgMatchesHostLoops) {
  REQUIRE_CUDA();
  for (const PoolCase& k : kPoolCases) check_pool(k, false, false, 256);
}

TEST(Pool2d, MaxMatchesHostLoops) {
  REQUIRE_CUDA();
  for (const PoolCase& k : kPoolCases) check_pool(k, true, false, 256);
}

// Spikes tie: each window's gradient must reach exactly one element, its first largest.
TEST(Pool2d, MaxTiesGoToTheFirstLargest) {
  REQUIRE_CUDA();
  for (const PoolCase& k : kPoolCases) check_pool(k, true, true, 256);
  // A window of equal values: all of dy to its top-left element.
  const Pool2dShape s = nmsnn::kernels::pool2d_shape({1, 2, 2}, {2, 2}, {0, 0});
  Dev x(std::vector<float>{1, 1, 1, 1}), dy(std::vector<float>{3}), y(1), dx(4);
  nmsnn::kernels::max_pool2d_forward(s, 1, x.get(), y.get(), nullptr);
  nmsnn::kernels::max_pool2d_backward(s, 1, x.get(), dy.get(), dx.get(), nullptr);
  expect_identical(dx.host(), {3, 0, 0, 0}, "a tied 2x2 window");
}

TEST(Pool2d, OtherBlockSizes) {
  REQUIRE_CUDA();
  for (int block : {32, 96, 1024}) {
    check_pool(kPoolCases[1], true, true, block);
    check_pool(kPoolCases[1], false, false, block);
  }
}

// ---- the Lif layer's use of lif_forward ---------------------------------------------------------

TEST(LifSeparateInput, SameAsInPlaceWithZeroBias) {
  REQUIRE_CUDA();
  const int T = 7, B = 3, H = 37;
  const size_t n = size_t(T) * B * H;
  const auto a = random_vector(n, -0.5f, 2.5f, 11);
  nmsnn::SpikingLayer layer;
  for (bool delay : {true, false}) {
    layer.delay = delay;
    Dev da(a), u_in_place(a), zero{size_t(H)}, spikes_sep(n), spikes_in(n), u_sep(n),
        r1(size_t(B) * H), r2(size_t(B) * H);
    nmsnn::kernels::LifForwardArgs sep;
    sep.T = T, sep.B = B, sep.H = H;
    sep.a = da.get();
    sep.u = u_sep.get();
    sep.spikes = spikes_sep.get();
    sep.rates = r1.get();
    nmsnn::kernels::lif_forward(layer, sep, nullptr);
    nmsnn::kernels::LifForwardArgs in = sep;
    in.a = nullptr;
    in.bias = zero.get();
    in.u = u_in_place.get();
    in.spikes = spikes_in.get();
    in.rates = r2.get();
    nmsnn::kernels::lif_forward(layer, in, nullptr);
    expect_identical(u_sep.host(), u_in_place.host(), "u");
    expect_identical(spikes_sep.host(), spikes_in.host(), "spikes");
    expect_identical(r1.host(), r2.host(), "rates");
    expect_identical(da.host(), a, "a left as it was");
  }
}

}  // namespace
