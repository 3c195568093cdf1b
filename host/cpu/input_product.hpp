// cpu/input_product.hpp — a layer's linear map over time for one sample, and its gradients.
//
//   forward:      a[t, h]   = bias[h] + sum_i x(t, i) W[h, i]
//   weight grad:  dW[h, i] += sum_t x(t, i) du[t, h];   dbias[h] += sum_t du[t, h]
//   input grad:   dx[t, i]  = sum_h du[t, h] W[h, i]
//
// x(t, i) is either a dense sequence (the caller's xi, or the previous layer's spikes; t_stride 0
// for a static input repeated at every step) or the noise encoder's m(t, b, i) * x[i] (SPEC.md 1).
// For the encoder only the features with x[i] != 0 are gathered (a zero stays zero under the mask
// at every step; on MNIST with inputs in [0, 1] that is 80% of them), and their masks are made
// here, per sample and a chunk of features at a time, and made again in backward rather than stored
// for the batch (SPEC.md 1): only a training step that runs a sample's backward straight after its
// forward (CpuNetwork::train_pass) keeps that one sample's [K, T] values in between, so its masks
// are made once. Weights are held transposed, WT[i, h] = W[h, i], with h padded to `width` (a
// multiple of 16), so every product is the row kernel of tile_gemm.hpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cpu/aligned.hpp"
#include "cpu/noise_blocks.hpp"
#include "cpu/tile_gemm.hpp"
#include "nmsnn/philox.hpp"

namespace nmsnn::cpu {

// The input one layer sees for one sample.
template <class Real>
struct SampleInput {
  bool noisy = false;
  int T = 0, I = 0;
  const Real* data = nullptr;  // noisy: x[I] of this sample; dense: x(t, i) = data[t*t_stride + i]
  size_t t_stride = 0;
  NoiseKey key;                // noisy only
  uint32_t b = 0;              // noisy only: the sample's row in the batch
};

// Which sample's masked inputs a GatherBuffers holds whole (`keep`).
template <class Real>
struct GatheredSample {
  const Real* data = nullptr;
  uint64_t seed = 0, pass = 0;
  const uint32_t* rows = nullptr;
  uint32_t b = 0;
  int T = 0, I = 0;
  static GatheredSample of(const SampleInput<Real>& in) {
    return {in.data, in.key.seed, in.key.pass, in.key.rows, in.b, in.T, in.I};
  }
  bool operator==(const GatheredSample& o) const {
    return data == o.data && seed == o.seed && pass == o.pass && rows == o.rows && b == o.b &&
           T == o.T && I == o.I;
  }
};

// Per-thread buffers, reused from sample to sample.
template <class Real>
struct GatherBuffers {
  std::vector<int> index;      // features with x != 0, ascending
  Buffer<Real> values;         // [chunk, T]: values[k*T + t] = m(t, b, index[k0 + k]) * x[...]
  std::vector<uint32_t> bits;  // [4, T]: one Philox block per step
  int block = -1;              // the group of 4 features whose masks `bits` holds
  // Set by the network when a sample's backward follows its forward on this thread
  // (CpuNetwork::train_pass): the forward then keeps every chunk, values [K, T], and the weight
  // gradient of the same sample multiplies those instead of making the masks again.
  bool keep = false;
  bool holds_all = false;      // values hold all K features of `held`
  GatheredSample<Real> held;
};

// Inputs with more gathered values than this are not kept whole (a worker's buffer stays under
// 16 MB); their masks are made again in backward.
constexpr size_t kMaxKeptValues = size_t(1) << 22;

// The masked inputs are made and multiplied a chunk of features at a time, so a chunk (128 x T
// values, 64 KB at T = 128) is still in the L2 cache when the product reads it; made whole, the
// seed's 784 x 128 values (401 KB) and its weights (326 KB) did not fit in a 512 KB L2 together.
// The sums keep their order whatever the chunk: each output adds the chunks' products in turn,
// through C in float, as the product's own blocks of j do (tile_gemm.hpp).
constexpr int kGatherChunk = 128;

// Lists the features with x != 0 (a zero stays zero under the mask at every step) and returns
// their count K.
template <class Real>
int gather_index(const SampleInput<Real>& in, GatherBuffers<Real>& buf) {
  buf.index.clear();
  for (int i = 0; i < in.I; ++i)
    if (in.data[i] != Real(0)) buf.index.push_back(i);
  const size_t K = buf.index.size();
  buf.holds_all = buf.keep && K * size_t(in.T) <= kMaxKeptValues;
  buf.values.resize((buf.holds_all ? K : std::min(K, size_t(kGatherChunk))) * in.T);
  buf.bits.resize(size_t(4) * in.T);
  buf.block = -1;
  buf.held = GatheredSample<Real>::of(in);
  return int(K);
}

// Where gathered feature k0's values start in buf.values: chunk by chunk in one place, or, when
// they are all kept, each chunk at its own place.
template <class Real>
Real* chunk_values(GatherBuffers<Real>& buf, int k0, int T) {
  return buf.values.data() + (buf.holds_all ? size_t(k0) * T : 0);
}

// Fills buf.values with the masked inputs of gathered features k0..k1-1. The body is compiled
// once per kernel set (kernel_set.hpp): the masks' Philox rounds and the scaling loop are most
// of a sparse step's time.
template <class Real, KernelSet S>
[[gnu::always_inline]] inline void gather_values_with(const SampleInput<Real>& in,
                                                      GatherBuffers<Real>& buf, int k0, int k1) {
  const int T = in.T;
  for (int k = k0; k < k1; ++k) {
    const int i = buf.index[k];
    if (i / 4 != buf.block) {  // the index is sorted, so each Philox block is made once
      buf.block = i / 4;
      noise_blocks_over_time_with<S>(in.key, uint32_t(buf.block), in.b, T, buf.bits.data());
    }
    const uint32_t* bits = buf.bits.data() + size_t(i & 3) * T;
    const Real x = in.data[i];
    Real* v = chunk_values(buf, k0, T) + size_t(k - k0) * T;
    for (int t = 0; t < T; ++t) v[t] = Real(uniform_from_bits(bits[t])) * x;
  }
}

#if defined(NMSNN_CPU_X86)
template <class Real>
NMSNN_TARGET_AVX2 void gather_values_avx2(const SampleInput<Real>& in, GatherBuffers<Real>& buf,
                                          int k0, int k1) {
  gather_values_with<Real, KernelSet::avx2>(in, buf, k0, k1);
}
template <class Real>
NMSNN_TARGET_AVX512 void gather_values_avx512(const SampleInput<Real>& in,
                                              GatherBuffers<Real>& buf, int k0, int k1) {
  gather_values_with<Real, KernelSet::avx512>(in, buf, k0, k1);
}
#endif

template <class Real>
void gather_values(const SampleInput<Real>& in, GatherBuffers<Real>& buf, int k0, int k1) {
#if defined(NMSNN_CPU_X86)
  switch (active_kernel_set()) {
    case KernelSet::avx512: return gather_values_avx512(in, buf, k0, k1);
    case KernelSet::avx2: return gather_values_avx2(in, buf, k0, k1);
    default: break;
  }
#endif
  gather_values_with<Real, KernelSet::baseline>(in, buf, k0, k1);
}

// a[T, width] = bias + x(t, :) W^T for every step.
template <class Real>
void input_forward(const SampleInput<Real>& in, const Real* WT, const Real* bias, int width,
                   Real* a, GatherBuffers<Real>& buf) {
  const int T = in.T;
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < width; ++h) a[size_t(t) * width + h] = bias[h];
  const RowsOf<Real> out{a, size_t(width), nullptr};
  if (in.noisy) {
    const int K = gather_index(in, buf);
    for (int k0 = 0; k0 < K; k0 += kGatherChunk) {
      const int k1 = std::min(K, k0 + kGatherChunk);
      gather_values(in, buf, k0, k1);
      gemm_accumulate<Real>(T, k1 - k0, width, chunk_values(buf, k0, T), 1, size_t(T),
                            {WT, size_t(width), buf.index.data() + k0}, out);
    }
  } else if (in.t_stride == 0) {
    // The same input at every step (a repeated static input): one product, copied to each step.
    gemm_accumulate<Real>(1, in.I, width, in.data, 0, 1, {WT, size_t(width), nullptr}, out);
    for (int t = 1; t < T; ++t) std::copy_n(a, width, a + size_t(t) * width);
  } else {
    gemm_accumulate<Real>(T, in.I, width, in.data, in.t_stride, 1, {WT, size_t(width), nullptr},
                          out);
  }
}

// dWT[i, :] += sum_t x(t, i) du[t, :] and dbias += sum_t du[t, :].
template <class Real>
void input_weight_grad(const SampleInput<Real>& in, const Real* du, int width, Real* dWT,
                       Real* dbias, GatherBuffers<Real>& buf) {
  const int T = in.T;
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < width; ++h) dbias[h] += du[size_t(t) * width + h];
  const RowsOf<const Real> du_rows{du, size_t(width), nullptr};
  if (in.noisy) {
    // The forward pass's masked inputs: still here when kept whole, else made again.
    const bool kept = buf.holds_all && buf.held == GatheredSample<Real>::of(in);
    const int K = kept ? int(buf.index.size()) : gather_index(in, buf);
    for (int k0 = 0; k0 < K; k0 += kGatherChunk) {
      const int k1 = std::min(K, k0 + kGatherChunk);
      if (!kept) gather_values(in, buf, k0, k1);
      gemm_accumulate<Real>(k1 - k0, T, width, chunk_values(buf, k0, T), size_t(T), 1, du_rows,
                            {dWT, size_t(width), buf.index.data() + k0});
    }
  } else if (in.t_stride == 0) {
    // A repeated input: sum_t x du[t] = x (sum_t du[t]), one outer product.
    buf.holds_all = false;
    buf.values.assign(width, Real(0));
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < width; ++h) buf.values[h] += du[size_t(t) * width + h];
    gemm_accumulate<Real>(in.I, 1, width, in.data, 1, 0, {buf.values.data(), 0, nullptr},
                          {dWT, size_t(width), nullptr});
  } else {
    gemm_accumulate<Real>(in.I, T, width, in.data, 1, in.t_stride, du_rows,
                          {dWT, size_t(width), nullptr});
  }
}

// dx[T, in_pad] = du[T, width] W[width, in_pad]: the gradient of a dense input (hidden layers,
// given sequences). W is the untransposed weight, rows padded to in_pad (a multiple of 16).
template <class Real>
void input_grad(int T, int width, int in_pad, const Real* du, const Real* W, Real* dx) {
  std::fill(dx, dx + size_t(T) * in_pad, Real(0));
  gemm_accumulate<Real>(T, width, in_pad, du, size_t(width), 1, {W, size_t(in_pad), nullptr},
                        {dx, size_t(in_pad), nullptr});
}

}  // namespace nmsnn::cpu
