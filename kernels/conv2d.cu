// conv2d.cu — im2col, the product through cublas_gemm, and the transposes around it (see
// conv2d.cuh for the shapes).
//
// Every kernel is one thread per output element in a grid-stride loop, the element index
// split with the fastest dimension innermost, so consecutive threads write consecutive floats.
// The reads are gathers: im2col reads a kh x kw window of one map (neighbouring threads read
// neighbouring pixels), rows_to_maps reads a [P, O] block with stride O (O is small: 16 or 32
// floats, the same cache lines serve the O threads of one pixel). The product itself is cuBLAS;
// these kernels move each element once.
//
// Bytes per image, forward: im2col writes col (4 P CK) and the product reads it back, writes
// rows (4 P O), the transpose reads and writes them (8 P O): 8 P CK + 12 P O. With CK >> O the
// col buffer is most of it (the MNIST net's second conv, P = 64, CK = 400, O = 32: 205 KB of
// 229 KB per image), so a convolution that builds its tiles of col in shared memory (implicit
// GEMM) would move under a tenth (x in, y out: 17 KB); this version keeps the product in
// cuBLAS, in every MatmulPrecision, and each piece simple enough to check against a loop.
#include <climits>

#include "bias.cuh"
#include "conv2d.cuh"
#include "cublas_gemm.cuh"
#include "launch.cuh"

namespace nmsnn::kernels {

namespace {

__global__ void im2col_kernel(Conv2dShape s, size_t count, const float* x, float* col) {
  const size_t CK = size_t(s.C) * s.kh * s.kw, P = size_t(s.OH) * s.OW;
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < count;
       e += size_t(gridDim.x) * blockDim.x) {
    const size_t k = e % CK, row = e / CK;  // row = n*P + p
    const size_t p = row % P, n = row / P;
    const int kx = int(k % s.kw), ky = int(k / s.kw % s.kh), c = int(k / (size_t(s.kw) * s.kh));
    const int ox = int(p % s.OW), oy = int(p / s.OW);
    const int iy = oy * s.sy - s.py + ky, ix = ox * s.sx - s.px + kx;
    const bool inside = iy >= 0 && iy < s.H && ix >= 0 && ix < s.W;
    col[e] = inside ? x[((n * s.C + c) * s.H + iy) * s.W + ix] : 0.0f;
  }
}

// The output rows that read input pixel i along one axis: o with o*stride - pad + k = i for some
// k < kernel. Loops run k upwards, so the gather's order is fixed.
__global__ void col2im_kernel(Conv2dShape s, size_t count, const float* dcol, float* dx) {
  const size_t CK = size_t(s.C) * s.kh * s.kw, P = size_t(s.OH) * s.OW;
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < count;
       e += size_t(gridDim.x) * blockDim.x) {
    const int ix = int(e % s.W), iy = int(e / s.W % s.H);
    const size_t nc = e / (size_t(s.W) * s.H);
    const int c = int(nc % s.C);
    const size_t n = nc / s.C;
    float sum = 0.0f;
    for (int ky = 0; ky < s.kh; ++ky) {
      const int ty = iy + s.py - ky;  // oy * sy
      if (ty < 0 || ty % s.sy != 0 || ty / s.sy >= s.OH) continue;
      const int oy = ty / s.sy;
      for (int kx = 0; kx < s.kw; ++kx) {
        const int tx = ix + s.px - kx;
        if (tx < 0 || tx % s.sx != 0 || tx / s.sx >= s.OW) continue;
        const int ox = tx / s.sx;
        const size_t row = n * P + size_t(oy) * s.OW + ox;
        sum += dcol[row * CK + (size_t(c) * s.kh + ky) * s.kw + kx];
      }
    }
    dx[e] = sum;
  }
}

__global__ void rows_to_maps_kernel(Conv2dShape s, size_t count, const float* rows,
                                    const float* bias, float* y) {
  const size_t P = size_t(s.OH) * s.OW, O = size_t(s.O);
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < count;
       e += size_t(gridDim.x) * blockDim.x) {
    const size_t p = e % P, o = e / P % O, n = e / (P * O);
    y[e] = rows[(n * P + p) * O + o] + (bias ? bias[o] : 0.0f);
  }
}

__global__ void maps_to_rows_kernel(Conv2dShape s, size_t count, const float* dy, float* dyt) {
  const size_t P = size_t(s.OH) * s.OW, O = size_t(s.O);
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < count;
       e += size_t(gridDim.x) * blockDim.x) {
    const size_t o = e % O, p = e / O % P, n = e / (O * P);
    dyt[e] = dy[(n * O + o) * P + p];
  }
}

// One block per (b, o): thread i adds entries p = i, i + blockDim.x, ... of every step's map in
// order (consecutive threads read consecutive floats), then the partial sums fold onto the
// largest power of two p <= blockDim.x and a fixed tree adds those, as bias_grad_reduce does:
// the same bits for the same input and block size. (One thread per (b, o) would leave B*O
// threads, a warp per SM for the MNIST net, each waiting on steps*P dependent loads.)
__global__ void conv_bias_part_kernel(Conv2dShape s, int steps, int B, const float* dy,
                                      float* part) {
  __shared__ float sums[kMaxBlockSize];
  const size_t P = size_t(s.OH) * s.OW, O = size_t(s.O);
  const int threads = int(blockDim.x);
  for (size_t e = blockIdx.x; e < size_t(B) * O; e += gridDim.x) {
    const size_t o = e % O, b = e / O;
    float sum = 0.0f;
    for (int t = 0; t < steps; ++t) {
      const float* map = dy + ((size_t(t) * B + b) * O + o) * P;
      for (size_t p = threadIdx.x; p < P; p += threads) sum += map[p];
    }
    sums[threadIdx.x] = sum;
    __syncthreads();
    int half = 1;
    while (2 * half <= threads) half *= 2;
    if (int(threadIdx.x) + half < threads) sums[threadIdx.x] += sums[threadIdx.x + half];
    __syncthreads();
    for (int width = half / 2; width > 0; width /= 2) {
      if (int(threadIdx.x) < width) sums[threadIdx.x] += sums[threadIdx.x + width];
      __syncthreads();
    }
    if (threadIdx.x == 0) part[e] = sums[0];
    __syncthreads();  // sums is reused by the block's next (b, o)
  }
}

void check_shape(const char* what, const Conv2dShape& s, long long N) {
  if (N < 1 || s.C < 1 || s.H < 1 || s.W < 1 || s.O < 1 || s.kh < 1 || s.kw < 1 || s.sy < 1 ||
      s.sx < 1 || s.py < 0 || s.px < 0 || s.OH < 1 || s.OW < 1)
    ::nmsnn::detail::fail(what, ": bad convolution shape: N=", N, ", input [", s.C, ", ", s.H,
                          ", ", s.W, "], ", s.O, " channels, kernel ", s.kh, "x", s.kw,
                          ", stride ", s.sy, "x", s.sx, ", padding ", s.py, "x", s.px,
                          ", output ", s.OH, "x", s.OW);
}

// cuBLAS takes int sizes: the product has N*P rows.
int product_rows(const char* what, const Conv2dShape& s, long long N) {
  const long long rows = N * s.P();
  if (rows > INT_MAX || s.CK() > INT_MAX)
    ::nmsnn::detail::fail(what, ": ", N, " images of ", s.P(), " windows = ", rows,
                          " product rows, more than the ", INT_MAX,
                          " cuBLAS can index; use smaller batches");
  return int(rows);
}

}  // namespace

Conv2dShape conv2d_shape(const std::array<int, 3>& in, const Conv2d& layer) {
  Conv2dShape s;
  s.C = in[0], s.H = in[1], s.W = in[2];
  s.O = layer.out_channels;
  s.kh = layer.kernel[0], s.kw = layer.kernel[1];
  s.sy = layer.stride[0], s.sx = layer.stride[1];
  s.py = layer.padding[0], s.px = layer.padding[1];
  const std::array<int, 2> out =
      window_output({s.H, s.W}, layer.kernel, layer.stride, layer.padding);
  s.OH = out[0], s.OW = out[1];
  return s;
}

void im2col(const Conv2dShape& s, long long N, const float* x, float* col, cudaStream_t stream,
            int block_size) {
  check_block_size("im2col", block_size);
  check_shape("im2col", s, N);
  const size_t count = conv2d_col_floats(s, N);
  im2col_kernel<<<grid_stride_for((long long)count, block_size), block_size, 0, stream>>>(
      s, count, x, col);
  NMSNN_CHECK_LAUNCH("im2col", "N=", N, ", P=", s.P(), ", CK=", s.CK());
}

void col2im(const Conv2dShape& s, long long N, const float* dcol, float* dx, cudaStream_t stream,
            int block_size) {
  check_block_size("col2im", block_size);
  check_shape("col2im", s, N);
  const size_t count = size_t(N) * size_t(s.in_width());
  col2im_kernel<<<grid_stride_for((long long)count, block_size), block_size, 0, stream>>>(
      s, count, dcol, dx);
  NMSNN_CHECK_LAUNCH("col2im", "N=", N, ", P=", s.P(), ", CK=", s.CK());
}

void rows_to_maps(const Conv2dShape& s, long long N, const float* rows, const float* bias, float* y,
                  cudaStream_t stream, int block_size) {
  check_block_size("rows_to_maps", block_size);
  check_shape("rows_to_maps", s, N);
  const size_t count = size_t(N) * size_t(s.out_width());
  rows_to_maps_kernel<<<grid_stride_for((long long)count, block_size), block_size, 0, stream>>>(
      s, count, rows, bias, y);
  NMSNN_CHECK_LAUNCH("rows_to_maps", "N=", N, ", O=", s.O, ", P=", s.P());
}

void maps_to_rows(const Conv2dShape& s, long long N, const float* dy, float* dyt,
                  cudaStream_t stream, int block_size) {
  check_block_size("maps_to_rows", block_size);
  check_shape("maps_to_rows", s, N);
  const size_t count = size_t(N) * size_t(s.out_width());
  maps_to_rows_kernel<<<grid_stride_for((long long)count, block_size), block_size, 0, stream>>>(
      s, count, dy, dyt);
  NMSNN_CHECK_LAUNCH("maps_to_rows", "N=", N, ", O=", s.O, ", P=", s.P());
}

void conv_bias_part(const Conv2dShape& s, int steps, int B, const float* dy, float* part,
                    cudaStream_t stream, int block_size) {
  check_block_size("conv_bias_part", block_size);
  check_shape("conv_bias_part", s, (long long)steps * B);
  const long long count = (long long)B * s.O;  // one block each, up to the grid's cap
  conv_bias_part_kernel<<<grid_stride_for(count, 1), block_size, 0, stream>>>(s, steps, B, dy,
                                                                             part);
  NMSNN_CHECK_LAUNCH("conv_bias_part", "steps=", steps, ", B=", B, ", O=", s.O, ", P=", s.P());
}

void conv2d_forward(cublasHandle_t handle, MatmulPrecision math, const Conv2dShape& s, long long N,
                    const float* x, const float* W, const float* bias, float* col, float* rows,
                    float* y, cudaStream_t stream, const char* what) {
  const int M = product_rows(what, s, N);
  im2col(s, N, x, col, stream);
  gemm_forward(handle, math, M, s.O, int(s.CK()), col, W, rows, what);
  rows_to_maps(s, N, rows, bias, y, stream);
}

void conv2d_backward(cublasHandle_t handle, MatmulPrecision math, const Conv2dShape& s, int steps,
                     int B, const float* x, const float* W, const float* dy, float* dyt,
                     float* col, float* part, float* dW, float* dbias, float* dx,
                     cudaStream_t stream, const char* what) {
  const long long N = (long long)steps * B;
  const int M = product_rows(what, s, N);
  maps_to_rows(s, N, dy, dyt, stream);
  conv_bias_part(s, steps, B, dy, part, stream);
  bias_grad_reduce(part, B, s.O, dbias, stream);
  im2col(s, N, x, col, stream);
  gemm_weight_grad(handle, math, M, s.O, int(s.CK()), dyt, col, dW, what);
  if (!dx) return;
  // dW has read col: the same buffer takes dcol.
  gemm_input_grad(handle, math, M, s.O, int(s.CK()), dyt, W, col, what);
  col2im(s, N, col, dx, stream);
}

}  // namespace nmsnn::kernels
