// pool2d.cu — average and max pooling (see pool2d.cuh). One thread per output element forward,
// one per input element backward, in grid-stride loops with the fastest dimension innermost.
//
// Backward finds the windows covering input row iy: oy*sy <= iy <= oy*sy + kh - 1, so oy runs
// from ceil((iy - kh + 1) / sy) (at least 0) to floor(iy / sy) (at most OH - 1); the same for
// columns. Max pooling recomputes each covering window's first largest value from x rather than
// saving an argmax per output (a window is a few floats, read from cache).
#include "launch.cuh"
#include "pool2d.cuh"
#include "nmsnn/spec.hpp"

namespace nmsnn::kernels {

namespace {

// The first output index whose window covers i: ceil((i - k + 1) / stride), at least 0.
__device__ inline int first_window(int i, int k, int stride) {
  const int top = i - k + 1;
  return top <= 0 ? 0 : (top + stride - 1) / stride;
}

__global__ void avg_forward_kernel(Pool2dShape s, size_t count, const float* x, float* y) {
  const float area = float(s.kh * s.kw);
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < count;
       e += size_t(gridDim.x) * blockDim.x) {
    const int ox = int(e % s.OW), oy = int(e / s.OW % s.OH);
    const size_t nc = e / (size_t(s.OW) * s.OH);
    const float* map = x + nc * s.H * s.W;
    float sum = 0.0f;
    for (int ky = 0; ky < s.kh; ++ky)
      for (int kx = 0; kx < s.kw; ++kx) sum += map[size_t(oy * s.sy + ky) * s.W + ox * s.sx + kx];
    y[e] = sum / area;
  }
}

__global__ void avg_backward_kernel(Pool2dShape s, size_t count, const float* dy, float* dx) {
  const float area = float(s.kh * s.kw);
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < count;
       e += size_t(gridDim.x) * blockDim.x) {
    const int ix = int(e % s.W), iy = int(e / s.W % s.H);
    const size_t nc = e / (size_t(s.W) * s.H);
    const float* g = dy + nc * s.OH * s.OW;
    float sum = 0.0f;
    for (int oy = first_window(iy, s.kh, s.sy); oy <= iy / s.sy && oy < s.OH; ++oy)
      for (int ox = first_window(ix, s.kw, s.sx); ox <= ix / s.sx && ox < s.OW; ++ox)
        sum += g[size_t(oy) * s.OW + ox];
    dx[e] = sum / area;
  }
}

// The row-major offset within its map of window (oy, ox)'s first largest value.
__device__ inline size_t first_max(const Pool2dShape& s, const float* map, int oy, int ox) {
  size_t best = size_t(oy * s.sy) * s.W + ox * s.sx;
  float value = map[best];
  for (int ky = 0; ky < s.kh; ++ky)
    for (int kx = 0; kx < s.kw; ++kx) {
      const size_t at = size_t(oy * s.sy + ky) * s.W + ox * s.sx + kx;
      if (map[at] > value) value = map[at], best = at;  // strictly larger: ties keep the first
    }
  return best;
}

__global__ void max_forward_kernel(Pool2dShape s, size_t count, const float* x, float* y) {
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < count;
       e += size_t(gridDim.x) * blockDim.x) {
    const int ox = int(e % s.OW), oy = int(e / s.OW % s.OH);
    const size_t nc = e / (size_t(s.OW) * s.OH);
    const float* map = x + nc * s.H * s.W;
    y[e] = map[first_max(s, map, oy, ox)];
  }
}

__global__ void max_backward_kernel(Pool2dShape s, size_t count, const float* x, const float* dy,
                                    float* dx) {
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < count;
       e += size_t(gridDim.x) * blockDim.x) {
    const int ix = int(e % s.W), iy = int(e / s.W % s.H);
    const size_t nc = e / (size_t(s.W) * s.H);
    const float* map = x + nc * s.H * s.W;
    const float* g = dy + nc * s.OH * s.OW;
    const size_t self = size_t(iy) * s.W + ix;
    float sum = 0.0f;
    for (int oy = first_window(iy, s.kh, s.sy); oy <= iy / s.sy && oy < s.OH; ++oy)
      for (int ox = first_window(ix, s.kw, s.sx); ox <= ix / s.sx && ox < s.OW; ++ox)
        if (first_max(s, map, oy, ox) == self) sum += g[size_t(oy) * s.OW + ox];
    dx[e] = sum;
  }
}

void check_shape(const char* what, const Pool2dShape& s, long long N) {
  if (N < 1 || s.C < 1 || s.H < 1 || s.W < 1 || s.kh < 1 || s.kw < 1 || s.sy < 1 || s.sx < 1 ||
      s.OH < 1 || s.OW < 1 || (s.OH - 1) * s.sy + s.kh > s.H || (s.OW - 1) * s.sx + s.kw > s.W)
    ::nmsnn::detail::fail(what, ": bad pooling shape: N=", N, ", input [", s.C, ", ", s.H, ", ",
                          s.W, "], kernel ", s.kh, "x", s.kw, ", stride ", s.sy, "x", s.sx,
                          ", output ", s.OH, "x", s.OW);
}

template <class Kernel, class... Args>
void launch(const char* what, Kernel kernel, const Pool2dShape& s, long long N, long long width,
            cudaStream_t stream, int block_size, Args... args) {
  check_block_size(what, block_size);
  check_shape(what, s, N);
  const size_t count = size_t(N) * size_t(width);
  kernel<<<grid_stride_for((long long)count, block_size), block_size, 0, stream>>>(s, count,
                                                                                  args...);
  NMSNN_CHECK_LAUNCH(what, "N=", N, ", C=", s.C, ", H=", s.H, ", W=", s.W, ", kernel ", s.kh,
                     "x", s.kw, ", stride ", s.sy, "x", s.sx);
}

}  // namespace

Pool2dShape pool2d_shape(const std::array<int, 3>& in, std::array<int, 2> kernel,
                         std::array<int, 2> stride) {
  Pool2dShape s;
  s.C = in[0], s.H = in[1], s.W = in[2];
  s.kh = kernel[0], s.kw = kernel[1];
  const std::array<int, 2> st = pool_stride(kernel, stride);
  s.sy = st[0], s.sx = st[1];
  const std::array<int, 2> out = window_output({s.H, s.W}, kernel, st, {0, 0});
  s.OH = out[0], s.OW = out[1];
  return s;
}

void avg_pool2d_forward(const Pool2dShape& s, long long N, const float* x, float* y,
                        cudaStream_t stream, int block_size) {
  launch("avg_pool2d_forward", avg_forward_kernel, s, N, s.out_width(), stream, block_size, x, y);
}

void avg_pool2d_backward(const Pool2dShape& s, long long N, const float* dy, float* dx,
                         cudaStream_t stream, int block_size) {
  launch("avg_pool2d_backward", avg_backward_kernel, s, N, s.in_width(), stream, block_size, dy,
         dx);
}

void max_pool2d_forward(const Pool2dShape& s, long long N, const float* x, float* y,
                        cudaStream_t stream, int block_size) {
  launch("max_pool2d_forward", max_forward_kernel, s, N, s.out_width(), stream, block_size, x, y);
}

void max_pool2d_backward(const Pool2dShape& s, long long N, const float* x, const float* dy,
                         float* dx, cudaStream_t stream, int block_size) {
  launch("max_pool2d_backward", max_backward_kernel, s, N, s.in_width(), stream, block_size, x,
         dy, dx);
}

}  // namespace nmsnn::kernels
