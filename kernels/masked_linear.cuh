// masked_linear.cuh — the first layer's linear map under the noise encoder, with the masks made
// inside the matrix product so the masked input [T*B, I] never exists in memory (SPEC.md 1, 2, 4).
//
// Rows are time-major: row m = t*B + b. The masked input is
//     X(m, k) = noise_mask(key, t, b, k) * x[b, k]          x: [B, K] row-major, K = inputs
// and the two products are
//     forward:      out[M, N] = X[M, K] · W[N, K]^T          (no bias: the neuron kernel adds it)
//     weight grad:  dW[N, K]  = dU[M, N]^T · X[M, K]          (summed over all t and b)
// with M = T*B, N = neurons, W and dW row-major [N, K] (the public layout).
//
// CPU twin: cpu/input_product.hpp (input_forward, input_weight_grad with a noisy SampleInput),
// which gathers the same masks per sample; tests/test_cuda_kernels.cpp compares them.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "lif_forward.cuh"
#include "nmsnn/matmul_precision.hpp"
#include "nmsnn/philox.hpp"

namespace nmsnn::kernels {

// `matmul` picks the arithmetic: fp32, CUDA-core FMA (the default, and what the exactness tests
// use); tf32, tensor cores (mma.sync m16n8k8; the forward wgmma k8 where it can) with TF32
// inputs (10-bit mantissa, rounded to nearest), FP32 accumulation; bf16, tensor cores (mma.sync
// m16n8k16, or wgmma k16) with BF16 inputs (7-bit mantissa, rounded to nearest even), FP32
// accumulation. Each mask is made once per pass for N <= 128 (per slice of 128 neurons beyond).

// Which tensor-core instruction the TF32 and BF16 forward (and weight gradient by sample)
// issues:
//   mma_sync   warp-wide mma.sync (compute capability 8.0 and up);
//   wgmma      Hopper's warpgroup wgmma (wgmma.cuh): compute capability 9.0 and a library built
//              for sm_90a (CMAKE_CUDA_ARCHITECTURES with 90a, the default); an error elsewhere.
//              The CUDA emulation implements it;
//   automatic  wgmma where it is available, else mma_sync (in the CUDA emulation: mma_sync);
//              the environment variable NMSNN_CUDA_MMA=mma_sync|wgmma overrides it (auto, or
//              unset: this rule), for the whole engine.
// The sums are the same in the same order: the emulation gives the same bits either way.
enum class MmaInstruction { automatic, mma_sync, wgmma };
// Whether wgmma can run here: on the current device with this build (always in the emulation).
bool masked_linear_wgmma_available();

// Scratch floats for W's arranged tiles (the `tiles` argument below): W in the layout and
// precision the TF32 and BF16 forward on wgmma stages it, 16 features at a time, made by the
// forward call itself, so that where T % 32 == 0 (a warp's rows one sample) and K % 4 == 0, a
// block whose inputs are all nonzero (a dense input) copies each stage instead of loading,
// rounding and scattering it. The same sums either way. 0 for fp32.
size_t masked_linear_weight_tiles_floats(int N, int K, MatmulPrecision math);

// out[M, N] = X[M, K] · W[N, K]^T, M = T*B. Every pointer is device memory. `tiles`: null, or
// masked_linear_weight_tiles_floats floats, 16-byte aligned (used on wgmma only).
void masked_linear_forward(NoiseKey key, const float* x, int T, int B, int K, const float* W,
                           int N, float* out, MatmulPrecision math, cudaStream_t stream,
                           MmaInstruction instruction = MmaInstruction::automatic,
                           float* tiles = nullptr);

// The first layer's forward with its time loop fused in: the product of masked_linear_forward
// (its tile of a never leaves the block) and lif_forward's loop on it, the same numbers as the
// two calls (bit-identical), without the [T, B, N] tensor a crossing memory twice. For TF32 and
// BF16, a layer of N <= 128 neurons (one slice: its rows hold every neuron) and T dividing 128
// (a block's 128 rows are whole samples): masked_linear_lif_fusable. `args` as lif_forward's,
// H = N, and no separate input a (the product is the current).
//
// `next` (optional): the current of a small layer above, a[T, B, H] = spikes · W^T (W [H, N]
// row-major, H <= kNextLayerMaxWidth, no bias), made in the same kernel from the block's spikes in
// shared memory, on the tensor cores in `math` (spikes and W rounded as cuBLAS takes them, FP32
// sums in another order). The spikes then need not reach memory: args.spikes may be null.
constexpr int kNextLayerMaxWidth = 16;
struct NextLayerProduct {
  const float* W = nullptr;  // [H, N]
  int H = 0;
  float* a = nullptr;  // [T, B, H]; null: no product
};
bool masked_linear_lif_fusable(int T, int N, MatmulPrecision math);
void masked_linear_lif_forward(NoiseKey key, const float* x, int T, int B, int K,
                               const float* W, const SpikingLayer& layer,
                               const LifForwardArgs& args, MatmulPrecision math,
                               cudaStream_t stream, const NextLayerProduct& next = {},
                               MmaInstruction instruction = MmaInstruction::automatic,
                               float* tiles = nullptr);

// How the weight gradient splits its sum over M = T*B rows: `splits` blocks of `rows` rows each
// write a partial [N, K]; a second pass adds the partials in split order, so the result is the
// same on every run and every GPU. A function of the shapes only.
struct WgradSplit {
  int splits = 1;
  long long rows = 0;
};
WgradSplit masked_linear_wgrad_split(long long M, int N, int K);
// The same when the sum is walked sample by sample (WgradWalk::samples): `rows` is then the
// samples of a split.
WgradSplit masked_linear_wgrad_sample_split(int B, int N, int K);
// Scratch floats the weight gradient needs for its partials: splits * N * K (the larger of the
// two walks' splits), or 0 when one split does (then the kernel writes dW directly).
size_t masked_linear_wgrad_scratch(int T, int B, int N, int K);

// How the TF32 and BF16 weight gradient walks its sum over rows (FP32 always walks rows):
//   rows       time-major, 16 rows a stage, every feature of every row;
//   samples    sample by sample, only the quads of 4 features where the sample has a nonzero
//              input (a zero input adds zeros at every step): the same sums, short of zeros;
//   automatic  samples when T >= 16 (a stage of 16 rows is one sample's steps), B >= 8
//              (samples enough to split) and the device has the shared memory (up to 205 KiB a
//              block: compute capability 9.0 has, 8.x may not), else rows.
enum class WgradWalk { automatic, rows, samples };

// dW[N, K] = dU[M, N]^T · X[M, K] (overwrites dW). `scratch` holds masked_linear_wgrad_scratch
// floats (may be null when that is 0).
// `instruction` as the forward's: the walk by sample runs on wgmma where it picks it (the walk by
// rows always on mma.sync).
void masked_linear_wgrad(NoiseKey key, const float* x, int T, int B, int K, const float* dU,
                         int N, float* dW, float* scratch, MatmulPrecision math,
                         cudaStream_t stream, WgradWalk walk = WgradWalk::automatic,
                         MmaInstruction instruction = MmaInstruction::automatic);

}  // namespace nmsnn::kernels
