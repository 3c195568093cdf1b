// pool2d.cuh — average and max pooling over the maps of N images (N = steps * B), forward and
// backward: torch.nn.AvgPool2d / MaxPool2d with no padding and floor rounding.
//
// Shapes (row-major, PyTorch's order): x [N, C, H, W], y [N, C, OH, OW] with
// OH = (H - kh) / sy + 1 (floor), the same for OW; window (oy, ox) covers rows oy*sy .. oy*sy+kh-1
// and columns ox*sx .. ox*sx+kw-1 of its channel.
//   avg   y = (sum of the window, row-major) / (kh*kw);  dx = the sum of dy / (kh*kw) over the
//         windows that cover the element
//   max   y = the largest value of the window;  its gradient goes to the FIRST largest value of
//         the window in row-major order (spikes tie often: a rule that splits or picks another
//         tie would give another gradient), recomputed in backward from the saved input
// Backward is a gather per input element (no atomics: deterministic); an element no window
// covers (the rows and columns floor rounding leaves out) gets 0.
// CPU twin: the straight loops in tests/test_cuda_conv.cpp, and the cpu engine's pool layers.
#pragma once

#include <cuda_runtime.h>

#include <array>

namespace nmsnn::kernels {

struct Pool2dShape {
  int C = 0, H = 0, W = 0;
  int kh = 0, kw = 0, sy = 1, sx = 1;
  int OH = 0, OW = 0;
  long long in_width() const { return (long long)C * H * W; }
  long long out_width() const { return (long long)C * OH * OW; }
};

// The shape of a pool of `kernel` and `stride` (0: the kernel size) on input maps [C, H, W].
Pool2dShape pool2d_shape(const std::array<int, 3>& in, std::array<int, 2> kernel,
                         std::array<int, 2> stride);

// block_size: threads per block, a multiple of 32 in [32, 1024] (launch.cuh), here and below.
void avg_pool2d_forward(const Pool2dShape& s, long long N, const float* x, float* y,
                        cudaStream_t stream, int block_size = 256);
void avg_pool2d_backward(const Pool2dShape& s, long long N, const float* dy, float* dx,
                         cudaStream_t stream, int block_size = 256);
void max_pool2d_forward(const Pool2dShape& s, long long N, const float* x, float* y,
                        cudaStream_t stream, int block_size = 256);
void max_pool2d_backward(const Pool2dShape& s, long long N, const float* x, const float* dy,
                         float* dx, cudaStream_t stream, int block_size = 256);

}  // namespace nmsnn::kernels
