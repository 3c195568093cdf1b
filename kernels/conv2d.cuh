// conv2d.cuh — a convolution over N images at once (N = steps * B: every step of every sample is
// an image), as im2col, one cuBLAS product and a transpose; and its backward.
//
// Shapes (row-major, PyTorch's order):
//   x     [N, C, H, W]          the input maps of every image
//   W     [O, C, kh, kw]        read as [O, CK] with CK = C*kh*kw, k = (c*kh + ky)*kw + kx
//   col   [N*P, CK]             col[n*P + p, k] = x[n, c, oy*sy - py + ky, ox*sx - px + kx]
//                               (0 outside the image), P = OH*OW, p = oy*OW + ox
//   rows  [N*P, O]              rows = col W^T                      (gemm_forward)
//   y     [N, O, OH, OW]        y[n, o, p] = rows[n*P + p, o] + bias[o]
// Backward, from dy [N, O, OH, OW]:
//   dyt   [N*P, O]              dy transposed back to rows
//   dbias [O]                   sum over n and p of dy (per-sample sums, then bias_grad_reduce)
//   dW    [O, CK]               dyt^T col                           (gemm_weight_grad)
//   dcol  [N*P, CK]             dyt W                               (gemm_input_grad)
//   dx    [N, C, H, W]          col2im: each input element gathers the dcol entries that read it,
//                               ky then kx in increasing order (no atomics: deterministic)
// CPU twin: the straight loops in tests/test_cuda_conv.cpp, and the cpu engine's conv layer.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <array>

#include "nmsnn/matmul_precision.hpp"
#include "nmsnn/spec.hpp"

namespace nmsnn::kernels {

struct Conv2dShape {
  int C = 0, H = 0, W = 0;  // input maps
  int O = 0;                // output channels
  int kh = 0, kw = 0, sy = 1, sx = 1, py = 0, px = 0;
  int OH = 0, OW = 0;       // output maps (window_output)
  // (host side only: the kernels compute these from the fields)
  long long P() const { return (long long)OH * OW; }
  long long CK() const { return (long long)C * kh * kw; }
  long long in_width() const { return (long long)C * H * W; }
  long long out_width() const { return (long long)O * OH * OW; }
};

// The shape of `layer` on input maps in = [C, H, W].
Conv2dShape conv2d_shape(const std::array<int, 3>& in, const Conv2d& layer);

// Floats of the col buffer (and of dcol, which reuses it) for N images: N*P*CK.
inline size_t conv2d_col_floats(const Conv2dShape& s, long long N) {
  return size_t(N) * size_t(s.P()) * size_t(s.CK());
}

// ---- the pieces (tested one by one; block_size: a multiple of 32 in [32, 1024]) -----------------

// col[N*P, CK] from x[N, C, H, W].
void im2col(const Conv2dShape& s, long long N, const float* x, float* col, cudaStream_t stream,
            int block_size = 256);
// dx[N, C, H, W] = the sum of the dcol entries that each input element was copied to.
void col2im(const Conv2dShape& s, long long N, const float* dcol, float* dx, cudaStream_t stream,
            int block_size = 256);
// y[n, o, p] = rows[n*P + p, o] + bias[o] (bias may be null: 0).
void rows_to_maps(const Conv2dShape& s, long long N, const float* rows, const float* bias, float* y,
                  cudaStream_t stream, int block_size = 256);
// dyt[n*P + p, o] = dy[n, o, p].
void maps_to_rows(const Conv2dShape& s, long long N, const float* dy, float* dyt,
                  cudaStream_t stream, int block_size = 256);
// part[b, o] = sum over t < steps, p < P of dy[t*B + b, o, p], in a fixed order for a given
// block size (deterministic; see conv2d.cu).
void conv_bias_part(const Conv2dShape& s, int steps, int B, const float* dy, float* part,
                    cudaStream_t stream, int block_size = 128);

// ---- the layer ----------------------------------------------------------------------------------

// y[N, O, OH, OW] = conv2d(x, W) + bias over N = steps*B images. col [N*P, CK] and rows [N*P, O]
// are scratch. `what` names the layer in error messages. The cuBLAS handle must be bound to
// `stream` (CublasScope).
void conv2d_forward(cublasHandle_t handle, MatmulPrecision math, const Conv2dShape& s, long long N,
                    const float* x, const float* W, const float* bias, float* col, float* rows,
                    float* y, cudaStream_t stream, const char* what);

// From dy [steps*B, O, OH, OW] and the forward's input x: dW, dbias and (when dx is not null)
// dx. Scratch: dyt [N*P, O], col [N*P, CK] (it holds col, then dcol), part [B, O].
void conv2d_backward(cublasHandle_t handle, MatmulPrecision math, const Conv2dShape& s, int steps,
                     int B, const float* x, const float* W, const float* dy, float* dyt,
                     float* col, float* part, float* dW, float* dbias, float* dx,
                     cudaStream_t stream, const char* what);

}  // namespace nmsnn::kernels
