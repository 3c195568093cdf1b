// masked_linear.cu — tiled matrix products whose X operand is the noise-encoded input, made from
// Philox while the tile is loaded (see masked_linear.cuh for the math).
//
// Both products have the form   C[p, q] = sum_r P[r, p] * Q[r, q]   over a 64 x 64 output tile:
//
//   forward  out[m, n]:  p = m (row t*B+b), q = n (neuron),  r = k (feature)
//                        P[r, p] = X(m, k) (masks made here), Q[r, q] = W[n, k]
//   wgrad    dW[n, k]:   p = n (neuron),    q = k (feature), r = m (row t*B+b)
//                        P[r, p] = dU[m, n],                  Q[r, q] = X(m, k) (masks made here)
//
// A block of 256 threads owns one 64 x 64 tile of C and walks r in stages of 16. Each stage
// loads a 16 x 64 slice of P and of Q into shared memory (every thread loads 4 values of each:
// for X that is exactly one Philox block, the four masks of features 4j..4j+3 at one (t, b)).
// Shared memory holds two stages: while the block multiplies stage s, each thread has already
// fetched stage s+1 into registers (global loads and Philox overlap the arithmetic), and writes it
// into the other buffer. One __syncthreads per stage separates "everyone finished reading buffer
// j" from "someone writes buffer j" (see mainloop).
//
// Arithmetic, selected by MatmulPrecision:
//   fp32  each thread keeps a 4 x 4 block of C in registers (rows 4*ty.., columns 4*tx..) and
//         reads two float4s from shared memory per 16 FMAs.
//   tf32  each warp owns a 16 x 32 block of C as two WMMA m16n16k8 accumulators; operands are
//         rounded to TF32 when loaded into fragments, accumulation stays FP32.
//
// The weight gradient splits its sum over r = m across gridDim.z blocks that write partial
// tiles; reduce_partials adds them in split order (deterministic; no atomics).
#include <mma.h>

#include <algorithm>

#include "cuda_check.cuh"
#include "launch.cuh"
#include "masked_linear.cuh"

namespace nmsnn::kernels {

namespace {

constexpr int kTile = 64;     // output tile is kTile x kTile
constexpr int kDepth = 16;    // r values per shared-memory stage
constexpr int kThreads = 256;

// One shared-memory stage: P[r][p] and Q[r][q] for 16 consecutive r. Rows are 256 bytes, so every
// float4 and every WMMA fragment pointer used below is suitably aligned.
struct Stage {
  float p[kDepth][kTile];
  float q[kDepth][kTile];
};

// ---- loaders: each thread fetches 4 values of a 16 x 64 slice, then stores them --------------
// fetch(r0) reads global memory (and makes masks) into registers; put() writes shared memory.
// Out-of-range elements are 0, so edge tiles need no special case in the arithmetic.

// The masked inputs xi[m, k..k+3] = m(t, b, k+j) * x[b, k+j] of row m = t*B + b: one Philox
// block, four features (k is a multiple of 4); features past K are 0.
__device__ inline void masked_quad(NoiseKey key, const float* x, int B, int K, long long m, int k,
                                   float v[4]) {
  const int t = int(m / B), b = int(m - (long long)t * B);
  const Philox4x32 r = noise_block(key, uint32_t(k >> 2), uint32_t(b), uint32_t(t));
  const float* xb = x + (size_t)b * K;
#pragma unroll
  for (int j = 0; j < 4; ++j) v[j] = k + j < K ? uniform_from_bits(r.v[j]) * xb[k + j] : 0.0f;
}

// X(m, k) with m = p, k = r (forward's P operand). Thread: p = tid / 4, r = 4*(tid % 4) + j.
struct MaskedRowsAlongR {
  NoiseKey key;
  const float* x;
  int B, K;
  long long M;
  long long m0;  // first row of this tile
  float v[4];

  __device__ void fetch(int k0) {
    const int tid = threadIdx.x;
    const long long m = m0 + (tid >> 2);
    const int k = k0 + 4 * (tid & 3);  // a multiple of 4: one Philox block holds k..k+3
    v[0] = v[1] = v[2] = v[3] = 0.0f;
    if (m < M && k < K) masked_quad(key, x, B, K, m, k, v);
  }
  __device__ void put(float (*tile)[kTile]) const {
    const int tid = threadIdx.x;
#pragma unroll
    for (int j = 0; j < 4; ++j) tile[4 * (tid & 3) + j][tid >> 2] = v[j];
  }
};

// W[n, k] with n = q, k = r (forward's Q operand). Thread: q = tid / 4, r = 4*(tid % 4) + j.
struct WeightRowsAlongR {
  const float* W;
  int N, K;
  int n0;
  float v[4];

  __device__ void fetch(int k0) {
    const int tid = threadIdx.x;
    const int n = n0 + (tid >> 2);
    const int k = k0 + 4 * (tid & 3);
    const float* row = W + (size_t)n * K;
#pragma unroll
    for (int j = 0; j < 4; ++j) v[j] = (n < N && k + j < K) ? row[k + j] : 0.0f;
  }
  __device__ void put(float (*tile)[kTile]) const {
    const int tid = threadIdx.x;
#pragma unroll
    for (int j = 0; j < 4; ++j) tile[4 * (tid & 3) + j][tid >> 2] = v[j];
  }
};

// dU[m, n] with m = r, n = p (wgrad's P operand). Thread: r = tid / 16, p = 4*(tid % 16) + j:
// 16 threads read 64 consecutive floats of one row of dU.
struct GradRowsAlongP {
  const float* dU;
  int N;
  long long m_end;  // end of this block's share of rows (<= M)
  int n0;
  float v[4];

  __device__ void fetch(long long r0) {
    const int tid = threadIdx.x;
    const long long m = r0 + (tid >> 4);
    const int n = n0 + 4 * (tid & 15);
    const float* row = dU + (size_t)m * N;
#pragma unroll
    for (int j = 0; j < 4; ++j) v[j] = (m < m_end && n + j < N) ? row[n + j] : 0.0f;
  }
  __device__ void put(float (*tile)[kTile]) const {
    const int tid = threadIdx.x;
    *reinterpret_cast<float4*>(&tile[tid >> 4][4 * (tid & 15)]) = make_float4(v[0], v[1], v[2], v[3]);
  }
};

// X(m, k) with m = r, k = q (wgrad's Q operand). Thread: r = tid / 16, q = 4*(tid % 16) + j: one
// Philox block per thread again.
struct MaskedRowsAlongQ {
  NoiseKey key;
  const float* x;
  int B, K;
  long long m_end;
  int k0;  // first feature of this tile (a multiple of 64)
  float v[4];

  __device__ void fetch(long long r0) {
    const int tid = threadIdx.x;
    const long long m = r0 + (tid >> 4);
    const int k = k0 + 4 * (tid & 15);
    v[0] = v[1] = v[2] = v[3] = 0.0f;
    if (m < m_end && k < K) masked_quad(key, x, B, K, m, k, v);
  }
  __device__ void put(float (*tile)[kTile]) const {
    const int tid = threadIdx.x;
    *reinterpret_cast<float4*>(&tile[tid >> 4][4 * (tid & 15)]) = make_float4(v[0], v[1], v[2], v[3]);
  }
};

// ---- arithmetic on one stage ----------------------------------------------------------------

// fp32: thread (ty, tx) = (tid / 16, tid % 16) owns C[4*ty + i][4*tx + j].
struct SimtMath {
  float acc[4][4];

  __device__ void zero() {
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
  }
  __device__ void multiply(const Stage& s) {
    const int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
#pragma unroll
    for (int r = 0; r < kDepth; ++r) {
      const float4 a = *reinterpret_cast<const float4*>(&s.p[r][4 * ty]);
      const float4 b = *reinterpret_cast<const float4*>(&s.q[r][4 * tx]);
      const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
  }
  // Calls out(p, q, value) for each of this thread's 16 elements (tile coordinates).
  template <class Out>
  __device__ void store(Stage*, Out&& out) const {
    const int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) out(4 * ty + i, 4 * tx + j, acc[i][j]);
  }
};

// tf32: warp w owns C[16*(w % 4) .., 32*(w / 4) ..] as two 16 x 16 accumulators.
// WMMA with TF32 needs sm_80 or newer; the library is built for 80 and 90 only.
namespace wmma = nvcuda::wmma;
struct Tf32Math {
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[2];

  __device__ void zero() {
    wmma::fill_fragment(acc[0], 0.0f);
    wmma::fill_fragment(acc[1], 0.0f);
  }
  __device__ void multiply(const Stage& s) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    const int warp = threadIdx.x >> 5, wp = warp & 3, wq = warp >> 2;
#pragma unroll
    for (int r = 0; r < kDepth; r += 8) {
      // A = P^T slice: element (p, r) at s.p[r][p], i.e. column-major with leading dimension 64.
      wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major> a;
      wmma::load_matrix_sync(a, &s.p[r][16 * wp], kTile);
#pragma unroll
      for (int e = 0; e < a.num_elements; ++e) a.x[e] = wmma::__float_to_tf32(a.x[e]);
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        // B = Q slice: element (r, q) at s.q[r][q], row-major with leading dimension 64.
        wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> b;
        wmma::load_matrix_sync(b, &s.q[r][32 * wq + 16 * j], kTile);
#pragma unroll
        for (int e = 0; e < b.num_elements; ++e) b.x[e] = wmma::__float_to_tf32(b.x[e]);
        wmma::mma_sync(acc[j], a, b, acc[j]);
      }
    }
#else
    __trap();  // not built for this architecture
#endif
  }
  // Accumulator fragments have no documented element order, so they go through shared memory:
  // the two stages (2 * 2 * 16 * 64 floats) are exactly one 64 x 64 tile. The mainloop ended with
  // __syncthreads, so no thread still reads them.
  template <class Out>
  __device__ void store(Stage* stages, Out&& out) const {
    float(*c)[kTile] = reinterpret_cast<float(*)[kTile]>(stages);
    const int warp = threadIdx.x >> 5, wp = warp & 3, wq = warp >> 2;
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(&c[16 * wp][32 * wq + 16 * j], acc[j], kTile, wmma::mem_row_major);
    __syncthreads();
    for (int e = threadIdx.x; e < kTile * kTile; e += kThreads) out(e / kTile, e % kTile, c[e / kTile][e % kTile]);
  }
};

// ---- the double-buffered loop over stages ----------------------------------------------------
// Stage s is multiplied from buffer s % 2 while stage s+1 is fetched into registers and then
// written to buffer (s+1) % 2. That buffer was last read while multiplying stage s-1, and the
// __syncthreads at the end of iteration s-1 guarantees every thread finished that; the
// __syncthreads at the end of iteration s makes the new stage visible before it is multiplied.
template <class Math, class LoadP, class LoadQ, class Index>
__device__ void mainloop(LoadP& lp, LoadQ& lq, Index r_begin, Index r_end, Stage* stages,
                         Math& math) {
  math.zero();
  const Index stages_total = (r_end - r_begin + kDepth - 1) / kDepth;
  if (stages_total <= 0) return;
  lp.fetch(r_begin);
  lq.fetch(r_begin);
  lp.put(stages[0].p);
  lq.put(stages[0].q);
  __syncthreads();
  for (Index s = 0; s < stages_total; ++s) {
    Stage& cur = stages[s & 1];
    Stage& next = stages[(s + 1) & 1];
    const bool more = s + 1 < stages_total;
    if (more) {
      lp.fetch(r_begin + (s + 1) * kDepth);
      lq.fetch(r_begin + (s + 1) * kDepth);
    }
    math.multiply(cur);
    if (more) {
      lp.put(next.p);
      lq.put(next.q);
    }
    __syncthreads();
  }
}

// ---- kernels --------------------------------------------------------------------------------

// grid (ceil(M/64), ceil(N/64)): block (x, y) computes out[64x .. , 64y ..].
template <class Math>
__global__ void __launch_bounds__(kThreads)
masked_linear_forward_kernel(NoiseKey key, const float* x, int B, int K, long long M,
                             const float* W, int N, float* out) {
  __shared__ __align__(128) Stage stages[2];
  const long long m0 = (long long)blockIdx.x * kTile;
  const int n0 = blockIdx.y * kTile;
  MaskedRowsAlongR lp{key, x, B, K, M, m0, {}};
  WeightRowsAlongR lq{W, N, K, n0, {}};
  Math math;
  mainloop<Math>(lp, lq, 0, K, stages, math);
  math.store(stages, [&](int p, int q, float value) {
    const long long m = m0 + p;
    const int n = n0 + q;
    if (m < M && n < N) out[(size_t)m * N + n] = value;
  });
}

// grid (ceil(K/64), ceil(N/64), splits): block (x, y, z) computes the partial sum of
// dW[64y .., 64x ..] over rows [z*rows, (z+1)*rows) into partial[z].
template <class Math>
__global__ void __launch_bounds__(kThreads)
masked_linear_wgrad_kernel(NoiseKey key, const float* x, int B, int K, long long M,
                           long long rows, const float* dU, int N, float* partial) {
  __shared__ __align__(128) Stage stages[2];
  const int k0 = blockIdx.x * kTile;
  const int n0 = blockIdx.y * kTile;
  const long long r_begin = (long long)blockIdx.z * rows;
  const long long r_end = r_begin + rows < M ? r_begin + rows : M;
  GradRowsAlongP lp{dU, N, r_end, n0, {}};
  MaskedRowsAlongQ lq{key, x, B, K, r_end, k0, {}};
  Math math;
  mainloop<Math>(lp, lq, r_begin, r_end, stages, math);
  float* part = partial + (size_t)blockIdx.z * N * K;
  math.store(stages, [&](int p, int q, float value) {
    const int n = n0 + p, k = k0 + q;
    if (n < N && k < K) part[(size_t)n * K + k] = value;
  });
}

// dW[e] = sum over s = 0 .. splits-1 of partial[s][e], in that order.
__global__ void reduce_partials_kernel(const float* partial, int splits, size_t count, float* dW) {
  for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < count;
       e += (size_t)gridDim.x * blockDim.x) {
    float sum = 0.0f;
    for (int s = 0; s < splits; ++s) sum += partial[(size_t)s * count + e];
    dW[e] = sum;
  }
}

void check_shapes(const char* what, int T, int B, int K, int N) {
  if (T < 1 || B < 1 || K < 1 || N < 1)
    ::nmsnn::detail::fail(what, ": T, B, K and N must be >= 1, got T=", T, ", B=", B, ", K=", K,
                          ", N=", N);
  // The tile counts along N go to gridDim.y, which is limited to 65535.
  if ((N + kTile - 1) / kTile > 65535)
    ::nmsnn::detail::fail(what, ": a layer of ", N, " neurons is too wide for the noise-encoded "
                          "input kernel (at most ", 65535LL * kTile, ")");
}

}  // namespace

void masked_linear_forward(NoiseKey key, const float* x, int T, int B, int K, const float* W,
                           int N, float* out, MatmulPrecision math, cudaStream_t stream) {
  check_shapes("masked_linear_forward", T, B, K, N);
  const long long M = (long long)T * B;
  const dim3 grid(grid_for(M, kTile), unsigned((N + kTile - 1) / kTile));
  if (math == MatmulPrecision::tf32)
    masked_linear_forward_kernel<Tf32Math><<<grid, kThreads, 0, stream>>>(key, x, B, K, M, W, N, out);
  else
    masked_linear_forward_kernel<SimtMath><<<grid, kThreads, 0, stream>>>(key, x, B, K, M, W, N, out);
  NMSNN_CHECK_LAUNCH("masked_linear_forward", "M=T*B=", T, "*", B, ", N=", N, ", K=", K,
                     math == MatmulPrecision::tf32 ? ", tf32" : ", fp32");
}

WgradSplit masked_linear_wgrad_split(long long M, int N, int K) {
  // About 1024 blocks in all (several waves on any current GPU), at most 64 partials, and at
  // least 256 rows (16 stages) per block so the double buffering has something to overlap.
  const long long tiles = (long long)((N + kTile - 1) / kTile) * ((K + kTile - 1) / kTile);
  long long splits = std::max(1LL, 1024 / std::max(1LL, tiles));
  splits = std::min({splits, 64LL, std::max(1LL, M / 256)});
  // Rows per split, a multiple of the stage depth; then drop splits that would be empty.
  long long rows = (M + splits - 1) / splits;
  rows = (rows + kDepth - 1) / kDepth * kDepth;
  splits = (M + rows - 1) / rows;
  return {int(splits), rows};
}

size_t masked_linear_wgrad_scratch(int T, int B, int N, int K) {
  const WgradSplit s = masked_linear_wgrad_split((long long)T * B, N, K);
  return s.splits == 1 ? 0 : size_t(s.splits) * size_t(N) * size_t(K);
}

void masked_linear_wgrad(NoiseKey key, const float* x, int T, int B, int K, const float* dU,
                         int N, float* dW, float* scratch, MatmulPrecision math, cudaStream_t stream) {
  check_shapes("masked_linear_wgrad", T, B, K, N);
  const long long M = (long long)T * B;
  const WgradSplit split = masked_linear_wgrad_split(M, N, K);
  // One split writes dW itself; several write partials that are added below.
  float* out = split.splits == 1 ? dW : scratch;
  if (!out) ::nmsnn::detail::fail("masked_linear_wgrad: no scratch for ", split.splits, " partials");
  const dim3 grid(grid_for(K, kTile), unsigned((N + kTile - 1) / kTile), unsigned(split.splits));
  if (math == MatmulPrecision::tf32)
    masked_linear_wgrad_kernel<Tf32Math>
        <<<grid, kThreads, 0, stream>>>(key, x, B, K, M, split.rows, dU, N, out);
  else
    masked_linear_wgrad_kernel<SimtMath>
        <<<grid, kThreads, 0, stream>>>(key, x, B, K, M, split.rows, dU, N, out);
  NMSNN_CHECK_LAUNCH("masked_linear_wgrad", "M=T*B=", T, "*", B, ", N=", N, ", K=", K,
                     ", splits=", split.splits, math == MatmulPrecision::tf32 ? ", tf32" : ", fp32");
  if (split.splits == 1) return;
  const size_t count = size_t(N) * K;
  const unsigned blocks = unsigned(std::min<size_t>((count + 255) / 256, 4096));
  reduce_partials_kernel<<<blocks, 256, 0, stream>>>(scratch, split.splits, count, dW);
  NMSNN_CHECK_LAUNCH("masked_linear_wgrad reduce", "splits=", split.splits, ", N=", N, ", K=", K);
}

}  // namespace nmsnn::kernels
