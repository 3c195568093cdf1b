// sample_cluster.cu — the two-layer spiking network one sample per thread-block cluster: the
// forward pass and the training step (see sample_cluster.cuh for the math and the split).
//
// Per sample, in each block of the cluster (R = kClusterBlocks blocks, 256 threads each):
//   1. masks   xi[t, f] for the block's features (whole Philox blocks), into shared memory,
//              where they stay until the sample's weight gradient (9);
//   for each chunk of Tc time steps (Tc = T when the plan fits, see Plan):
//     2. product p[t, h] = sum over those features of xi[t, f] W0[h, f] (W0's columns are
//                staged once a launch): FP32, 4 x 4 register tiles, one FMA chain per element
//                in order of f; or TF32 on tensor cores (tensor_product);
//     -- cluster.sync(): every block's partials of the chunk are complete --
//     3. reduce  a0[t, h] = sum_r p_r[t, h] for the block's own neurons, read from the other
//                blocks' shared memory in rank order (deterministic);
//     -- cluster.sync() before the next chunk overwrites p --
//   4. loop    their time loop, what each step returns kept (s0), u kept in a0 for training;
//   5. partial p1[t, c] = sum over the block's neurons of W1[c, h] s0[t, h];
//   -- cluster.sync() --
//   6. rank 0  a1[t, c] = sum_r p1_r[t, c], the output layer's time loop and the readout.
// The training step goes on (rank 0: the loss's gradient dz and the output layer's backward
// loop, du1 in place of u1 in a1):
//   -- cluster.sync() --
//   7. each    du1 copied from rank 0; dW1 += du1^T s0 for its neurons' columns; their
//              dL/dspikes ds0 = W1^T du1 (over s0), their backward loop (du0 in place of u0);
//   -- cluster.sync() --
//   for each chunk of Tc time steps:
//     8. gather  du0[t, h] of every neuron from its owner, into p;
//     9. wgrad   dW0[h, f] += sum_t du0[t, h] xi[t, f] for the block's features (FP32 4 x 4
//                tiles or TF32 tensor cores, as 2).
// Gradients accumulate in shared memory over the cluster's samples; at the end each block writes
// its share of the cluster's partial gradient, and sum_partials adds the clusters in order.
// A block reads another's shared memory only between a cluster.sync() and the next one after
// which the owner writes it again, and the kernel ends with a cluster.sync() so that no block
// leaves while another may still read its memory.
//
// TF32 and BF16 (MatmulPrecision): the two products with W0's shape (2 and 9) run as WMMA, with
// FP32 accumulation, as masked_linear.cu's paths: m16n16k8 with operands rounded to TF32 as they
// are loaded, or m16n16k16 on BF16 operands, which xi, W0's columns and the gathered du0 then hold
// (rounded to nearest even when stored: half the bytes). The small products with W1 (5, 7) stay
// FP32. Tiles are 16 x 16, so the arrays they read and write are padded with zeros to whole tiles
// (T, H and the block's features to multiples of 16), and their row strides are 4 (mod 8) floats
// (BF16: an odd number of 16-byte groups, so the 8 rows a fragment load reads at a time start in 8
// distinct groups of 4 banks). In the forward, a TF32 fragment load's lane (g, k) = (lane/4,
// lane%4) reads xi[t = g][f = k] or W0's column stored as w0[h = g][f = k]: bank (g*stride + k) mod
// 32, where g * stride takes 8 distinct multiples of 4, so the 32 lanes hit 32 banks. The weight
// gradient reads both its operands the other way (lane (g, k) at k * stride + g: du0[t = k][h = g],
// xi[t = k][f = g]); with the seed network's stride of 116 = 20 (mod 32) a quarter of the lanes
// meet another's bank, a 2-way conflict, accepted.
//
// Shared memory per block (floats; F = the block's features, rounded up to whole Philox blocks,
// G = ceil(H / R) neurons; FP32: no padding): xi T F, W0 columns H F, p Tc H, a0 and s0 T G each,
// W1 columns C G, p1 and a1 T C each; training adds the accumulators H F + G + C G + C and z, dz
// (C each). The seed network (T = 128, I = 784, H = 100, C = 10) in FP32: 166 KB forward, 207 KB
// training, Tc = T; in TF32 (F 100 -> row stride 116, H 100 -> 112 rows): 195 KB forward with
// Tc = T, and training in two chunks (Tc = 80): 225 KB; in BF16 (operand rows of 120 values,
// 240 bytes): 141 KB forward, 194 KB training, Tc = T.
#include <cooperative_groups.h>

#include <algorithm>
#include <type_traits>
#include <variant>

#include "cuda_check.cuh"
#include "launch.cuh"
#include "loss_rows.cuh"
#include "sample_cluster.cuh"
#include "wmma_shape.cuh"

namespace nmsnn::kernels {

namespace {

namespace cg = cooperative_groups;

// Not inlined on the device; the CUDA emulation (plain C++) has no such keyword and needs none.
#ifdef __CUDACC__
#define NMSNN_NOINLINE __noinline__
#else
#define NMSNN_NOINLINE
#endif

// The most dynamic shared memory a block may opt into on compute capability 9.0 (227 KB); the
// plan chunks the partial currents over time to stay within it.
constexpr int kSharedOptinBytes = 232448;

// Where each array lives in a block's shared memory, in floats from its start (each a multiple
// of 8 floats, 32 bytes, as WMMA pointers must be), the split of features and neurons over the
// cluster, and the padding and time chunks of the products.
struct Plan {
  int quads;   // Philox blocks (4 features) per block
  int F;       // features per block, 4 * quads
  int G;       // hidden neurons per block
  int es;      // bytes of an operand element of the products: 4, or 2 for BF16
  int xs;      // row stride of xi and W0's columns, in operand elements (>= F)
  int ds;      // row stride of dW0, floats (>= F)
  int ps;      // row stride of p, floats (>= H)
  int us;      // row stride of du0, operand elements, where the weight gradient gathers it
               // (in p's bytes: the partial currents are spent by then)
  int Tp;      // rows of xi (T, or T rounded up to a tile: the rows past T are zero)
  int Hp;      // rows of W0's columns and dW0 (H, or H rounded up to a tile)
  int Tc;      // time steps per chunk of partial currents: p holds Tc rows
  int chunks;  // ceil(T / Tc)
  int xi, w0, p, a0, s0, w1, p1, a1;
  int dw0, db0, dw1, db1, z, dz;  // training only
  int total;
};

__host__ __device__ inline int round_up(int n, int k) { return (n + k - 1) / k * k; }
// The least stride >= n that is 4 (mod 8) floats (see the top: conflict-free fragment loads).
__host__ __device__ inline int tile_stride(int n) { return n + (12 - n % 8) % 8; }
// The same for BF16 elements: rows 16 bytes apart (mod 128), an odd number of 8-element groups
// (BF16 fragments load as 16-byte row pieces, 8 rows at a time: 8 distinct bank groups).
__host__ __device__ inline int tile_stride_bf16(int n) {
  const int m = round_up(n, 8);
  return m / 8 % 2 ? m : m + 8;
}

// max_chunk: at most this many steps per chunk (rounded down to a tile), 0: no limit.
__host__ __device__ inline Plan plan_for(int T, int I, int H, int C, bool train,
                                         MatmulPrecision math, int max_chunk) {
  const bool tensor = math != MatmulPrecision::fp32, half = math == MatmulPrecision::bf16;
  Plan s{};
  s.quads = ((I + 3) / 4 + kClusterBlocks - 1) / kClusterBlocks;
  s.F = 4 * s.quads;
  s.G = (H + kClusterBlocks - 1) / kClusterBlocks;
  s.es = half ? 2 : 4;
  s.ds = tensor ? tile_stride(round_up(s.F, 16)) : s.F;
  s.xs = half ? tile_stride_bf16(round_up(s.F, 16)) : s.ds;
  s.Tp = tensor ? round_up(T, 16) : T;
  s.Hp = tensor ? round_up(H, 16) : H;
  s.ps = tensor ? tile_stride(s.Hp) : H;
  s.us = half ? tile_stride_bf16(s.Hp) : s.ps;
  // Lay the arrays out with p holding `rows` time steps.
  auto layout = [&](int rows) {
    int at = 0;
    auto take = [&at](int floats) {
      const int start = at;
      at += round_up(floats, 8);
      return start;
    };
    // Operand arrays in floats' room (a BF16 pair per float).
    s.xi = take((s.Tp * s.xs * s.es + 3) / 4);
    s.w0 = take((s.Hp * s.xs * s.es + 3) / 4);
    s.p = take(std::max(rows * s.ps, (rows * s.us * s.es + 3) / 4));
    s.a0 = take(T * s.G);
    s.s0 = take(T * s.G);
    s.w1 = take(C * s.G);
    s.p1 = take(T * C);
    s.a1 = take(T * C);
    if (train) {
      s.dw0 = take(s.Hp * s.ds);
      s.db0 = take(s.G);
      s.dw1 = take(C * s.G);
      s.db1 = take(C);
      s.z = take(C);
      s.dz = take(C);
    }
    s.total = at;
  };
  // The largest chunk (whole tiles with tensor cores) that fits beside the rest; the smallest if
  // none does (sample_cluster_fits then refuses the shape).
  const int step = tensor ? 16 : 1;
  const int cap = max_chunk > 0 ? std::min(s.Tp, std::max(step, max_chunk / step * step)) : s.Tp;
  layout(0);
  const int room = kSharedOptinBytes / int(sizeof(float)) - s.total - 7;
  s.Tc = std::max(step, std::min(cap, room / s.ps / step * step));
  layout(s.Tc);
  s.Tc = std::min(s.Tc, T);  // p keeps its whole tiles (rows up to Tp)
  s.chunks = (T + s.Tc - 1) / s.Tc;
  return s;
}

// Floats of one cluster's partial gradient: dW0, db0, dW1, db1 in the parameters' layout.
__host__ __device__ inline size_t partial_floats(int I, int H, int C) {
  return size_t(H) * I + H + size_t(C) * H + C;
}

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900  // used by the cluster kernel only
// One neuron's forward step (lif_forward.cuh): returns the new state v[t]; sets u and the spike.
// The reset rule is read at run time (one kernel for all rules: the loops are latency bound, and
// every template instance would add its whole code to every program that links the library).
__device__ inline float lif_step(float a, float bias, float v, const SpikingLayer& n, float& u,
                                 float& s) {
  u = (a + bias) + n.decay * v;
  s = fmaxf(u - n.threshold, 0.0f);
  const float g = s > 0.0f ? 1.0f : 0.0f;
  return n.reset == ResetRule::scale ? u - (n.penalty / n.threshold) * u * g
                                     : u - (n.penalty + s) * g;
}

// One neuron's backward step (lif_backward.cuh) at step t from its u[t]: returns du[t] and
// updates dv_next. d_state: dL/d(returned state) at the step `out` that returned step t's values
// (the readout's, for the output layer); d_spike: dL/d(returned spike) there.
__device__ inline float lif_back_step(float u, bool returned, float d_state, float d_spike,
                                      const SpikingLayer& n, float& dv_next) {
  const float g = u - n.threshold > 0.0f ? 1.0f : 0.0f;
  const float dv_du =
      n.reset == ResetRule::scale ? 1.0f - (n.penalty / n.threshold) * g : 1.0f - g;
  const float du = returned ? (dv_next + d_state) * dv_du + d_spike * g : dv_next * dv_du;
  dv_next = n.decay * du;
  return du;
}

// Strided views of shared-memory matrices: element (r, c) at data[r * rs + c * cs].
struct View {
  const float* data;
  int rs, cs;
  __device__ float at(int r, int c) const { return data[r * rs + c * cs]; }
};

// acc[p, q] (+)= sum over r < depth of P(r, p) Q(r, q) for p < np, q < nq; 4 x 4 tiles per
// thread, one FMA chain per element in order of r. `into` true adds to acc (row stride sa),
// else overwrites it. Not inlined: its registers are its own, not the kernel's (the training
// kernel would spill).
__device__ NMSNN_NOINLINE void tile_product(View P, int np, View Q, int nq, int depth, float* acc,
                                          int sa, bool into) {
  const int tiles_q = (nq + 3) / 4, tiles = (np + 3) / 4 * tiles_q;
  for (int k = int(threadIdx.x); k < tiles; k += int(blockDim.x)) {
    const int p0 = k / tiles_q * 4, q0 = (k - k / tiles_q * tiles_q) * 4;
    int pc[4], qc[4];  // clamped columns: rows past np or nq are read but not stored
#pragma unroll
    for (int i = 0; i < 4; ++i) pc[i] = std::min(p0 + i, np - 1), qc[i] = std::min(q0 + i, nq - 1);
    float sum[4][4] = {};
    for (int r = 0; r < depth; ++r) {
      float pv[4], qv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) pv[i] = P.at(r, pc[i]), qv[i] = Q.at(r, qc[i]);
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) sum[i][j] += pv[i] * qv[j];
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
        if (p0 + i < np && q0 + j < nq) {
          float& out = acc[(p0 + i) * sa + q0 + j];
          out = into ? out + sum[i][j] : sum[i][j];
        }
  }
}

namespace wmma = nvcuda::wmma;

// Where the 16 x 16 (or 16 x 8) tile starting at element (row, col) of a matrix begins, for a
// WMMA memory layout L with leading dimension ld.
template <class L>
__device__ inline int origin(int row, int col, int ld) {
  return std::is_same<L, wmma::row_major>::value ? row * ld + col : col * ld + row;
}

// An operand element into an array of floats, or of BF16 values (rounded to nearest even, as the
// layered kernels' BF16 path rounds its operands) in the same bytes.
__device__ inline void store_operand(float* base, int i, float v, bool half) {
  if (half) reinterpret_cast<__nv_bfloat16*>(base)[i] = __float2bfloat16(v);
  else base[i] = v;
}

__device__ inline const __nv_bfloat16* as_bf16(const float* p) {
  return reinterpret_cast<const __nv_bfloat16*>(p);
}

// acc[m, n] (+)= sum over k < K ksteps of A(m, k) B(k, n), for mtiles x ntiles tiles of 16 x 16,
// on tensor cores with FP32 accumulation: TF32 operands (E float, K = 8, rounded as loaded) or
// BF16 (K = 16). A(m, k) sits at a[m * lda + k] (LA row_major) or a[k * lda + m] (col_major),
// B(k, n) likewise with ldb; acc is row-major with stride ldc. `into` adds to the sums kept in
// acc, else overwrites them. Each warp takes blocks of 2 x 2 tiles: each operand fragment it
// loads serves two products, halving the shared-memory reads of tile-by-tile work. Every pointer
// must be 32-byte aligned and every stride a multiple of 16 bytes (Plan sees to both). Inlined,
// unlike tile_product: out of line, the kernel spilled around its calls (the calling convention
// keeps the caller's live values), inline it needs 231 registers and no spills.
template <class E, class LA, class LB>
__device__ inline void tensor_product(const E* a, int lda, const E* b, int ldb,
                                            int mtiles, int ntiles, int ksteps, float* acc,
                                            int ldc, bool into) {
  constexpr int K = WmmaShape<E>::k;
  using Precision = typename WmmaShape<E>::Precision;
  const int warp = int(threadIdx.x) / 32, warps = int(blockDim.x) / 32;
  const int mpairs = (mtiles + 1) / 2, npairs = (ntiles + 1) / 2;
  for (int job = warp; job < mpairs * npairs; job += warps) {
    const int m0 = job / npairs * 2, n0 = (job - job / npairs * npairs) * 2;
    const int mi = std::min(2, mtiles - m0), nj = std::min(2, ntiles - n0);
    wmma::fragment<wmma::accumulator, 16, 16, K, float> c[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j)
        if (i < mi && j < nj) {
          if (into)
            wmma::load_matrix_sync(c[i][j], acc + (m0 + i) * 16 * ldc + (n0 + j) * 16, ldc,
                                   wmma::mem_row_major);
          else
            wmma::fill_fragment(c[i][j], 0.0f);
        }
    for (int k = 0; k < ksteps; ++k) {
      wmma::fragment<wmma::matrix_a, 16, 16, K, Precision, LA> fa[2];
      wmma::fragment<wmma::matrix_b, 16, 16, K, Precision, LB> fb[2];
#pragma unroll
      for (int i = 0; i < 2; ++i)
        if (i < mi) {
          wmma::load_matrix_sync(fa[i], a + origin<LA>((m0 + i) * 16, k * K, lda), lda);
          round_tf32(fa[i]);
        }
#pragma unroll
      for (int j = 0; j < 2; ++j)
        if (j < nj) {
          wmma::load_matrix_sync(fb[j], b + origin<LB>(k * K, (n0 + j) * 16, ldb), ldb);
          round_tf32(fb[j]);
        }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j)
          if (i < mi && j < nj) wmma::mma_sync(c[i][j], fa[i], fb[j], c[i][j]);
    }
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j)
        if (i < mi && j < nj)
          wmma::store_matrix_sync(acc + (m0 + i) * 16 * ldc + (n0 + j) * 16, c[i][j], ldc,
                                  wmma::mem_row_major);
  }
}
#endif

// train: the training step, else the forward pass alone (a run-time flag for the code size's sake,
// as the reset rules).
// The plan comes from the host as a kernel parameter, read from the constant bank where used, so
// that its fields take no registers (the training kernel is at the register limit).
__global__ void __launch_bounds__(kClusterThreads)
    sample_cluster_kernel(SampleClusterArgs a, Plan s, bool train) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
  extern __shared__ __align__(128) float shared[];
  cg::cluster_group cluster = cg::this_cluster();
  const int R = kClusterBlocks;
  const int rank = int(cluster.block_rank());
  const int tid = int(threadIdx.x), threads = int(blockDim.x);
  const int T = a.T, I = a.I, H = a.H, C = a.C;
  const bool tensor = a.math != MatmulPrecision::fp32, half = a.math == MatmulPrecision::bf16;
  // xi, W0's columns and the gathered du0 hold floats, or BF16 values (as_bf16).
  float* xi = shared + s.xi;
  float* w0 = shared + s.w0;
  float* p = shared + s.p;
  float* a0 = shared + s.a0;
  float* s0 = shared + s.s0;
  float* w1 = shared + s.w1;
  float* p1 = shared + s.p1;
  float* a1 = shared + s.a1;

  // This block's features [f0, f0 + nf) and hidden neurons [h0, h0 + nh); either may be empty.
  const int q0 = rank * s.quads;
  const int f0 = 4 * q0;
  const int nf = std::max(0, std::min(I - f0, s.F));
  const int nq = (nf + 3) / 4;
  const int h0 = rank * s.G;
  const int nh = std::max(0, std::min(H - h0, s.G));

  // The weights this block multiplies, once per launch: W0's columns of its features (zero past
  // I and in the padding, so padded features and rows add nothing) and W1's columns of its
  // neurons; zero accumulators, and zero xi, whose padding the masks never write.
  for (int k = tid; k < s.Hp * s.xs; k += threads) {
    const int h = k / s.xs, f = k - h * s.xs;
    store_operand(w0, k, h < H && f < nf ? a.W0[size_t(h) * I + f0 + f] : 0.0f, half);
  }
  for (int k = tid; k < s.Tp * s.xs; k += threads) store_operand(xi, k, 0.0f, half);
  for (int k = tid; k < C * s.G; k += threads) {
    const int c = k / s.G, j = k - c * s.G;
    w1[k] = j < nh ? a.W1[size_t(c) * H + h0 + j] : 0.0f;
  }
  if (train)
    for (int k = s.dw0 + tid; k < s.z; k += threads) shared[k] = 0.0f;  // dw0, db0, dw1, db1
  __syncthreads();  // xi's zeros before the masks

  const int clusters = int(gridDim.x) / R;
  // The mean's divisor: every output for mse, every sample otherwise (step_partial's rule).
  const double N = a.loss == Loss::mse ? double(a.B) * C : double(a.B);
  for (int b = int(blockIdx.x) / R; b < a.B; b += clusters) {
    // 1. The masks of this block's Philox blocks: four features of one step each.
    const float* xb = a.x + size_t(b) * I;
    for (int k = tid; k < T * nq; k += threads) {
      const int t = k / nq, q = k - t * nq;
      const Philox4x32 r = noise_block(a.key, uint32_t(q0 + q), uint32_t(b), uint32_t(t));
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int f = 4 * q + j;
        store_operand(xi, t * s.xs + f, f < nf ? uniform_from_bits(r.v[j]) * xb[f0 + f] : 0.0f,
                      half);
      }
    }
    __syncthreads();

    for (int chunk = 0; chunk < s.chunks; ++chunk) {
      const int t0 = chunk * s.Tc, rows = std::min(s.Tc, T - t0);
      // 2. Partial currents over this block's features: p[t, h] = sum_f xi[t0 + t, f] w0[h, f]
      // (a block without features writes zeros).
      if (half)
        tensor_product<__nv_bfloat16, wmma::row_major, wmma::col_major>(
            as_bf16(xi) + t0 * s.xs, s.xs, as_bf16(w0), s.xs, (rows + 15) / 16, s.Hp / 16,
            (nf + 15) / 16, p, s.ps, false);
      else if (tensor)
        tensor_product<float, wmma::row_major, wmma::col_major>(
            xi + t0 * s.xs, s.xs, w0, s.xs, (rows + 15) / 16, s.Hp / 16, (nf + 7) / 8, p, s.ps,
            false);
      else
        tile_product(View{xi + t0 * s.xs, 1, s.xs}, rows, View{w0, 1, s.xs}, H, nf, p, s.ps,
                     false);
      cluster.sync();

      // 3. This block's neurons' currents: the cluster's partials added in rank order.
      for (int k = tid; k < rows * nh; k += threads) {
        const int t = k / nh, j = k - t * nh;
        float sum = 0.0f;
        for (int r = 0; r < R; ++r) sum += cluster.map_shared_rank(p, r)[t * s.ps + h0 + j];
        a0[(t0 + t) * s.G + j] = sum;
      }
      if (chunk + 1 < s.chunks) cluster.sync();  // read everywhere before it is overwritten
    }
    __syncthreads();

    // 4. Their time loop; s0 holds what each step returns (the spikes the next layer reads),
    // a0 the pre-reset state u for backward.
    if (tid < nh) {
      const float bias = a.b0[h0 + tid];
      float v = 0.0f, s_last = 0.0f;
      for (int t = 0; t < T; ++t) {
        float u, spike;
        v = lif_step(a0[t * s.G + tid], bias, v, a.hidden, u, spike);
        if (train) a0[t * s.G + tid] = u;
        s0[t * s.G + tid] = a.hidden.delay ? s_last : spike;
        s_last = spike;
      }
    }
    __syncthreads();

    // 5. The output layer's partial currents over this block's neurons.
    for (int k = tid; k < T * C; k += threads) {
      const int t = k / C, c = k - t * C;
      float sum = 0.0f;
      for (int j = 0; j < nh; ++j) sum += w1[c * s.G + j] * s0[t * s.G + j];
      p1[k] = sum;
    }
    cluster.sync();

    // 6. Rank 0: the output layer's currents, its time loop and the readout of its state v;
    // training: the loss's gradient and the output layer's backward loop.
    if (rank == 0) {
      for (int k = tid; k < T * C; k += threads) {
        float sum = 0.0f;
        for (int r = 0; r < R; ++r) sum += cluster.map_shared_rank(p1, r)[k];
        a1[k] = sum;
      }
      __syncthreads();
      if (tid < C) {
        const float bias = a.b1[tid];
        float v = 0.0f, readout = 0.0f;
        for (int t = 0; t < T; ++t) {
          float u, spike;
          const float next = lif_step(a1[t * C + tid], bias, v, a.output, u, spike);
          if (train) a1[t * C + tid] = u;
          // With delay step t returns v[t-1] (0 at step 0), else v[t].
          if (t >= a.begin_eval) readout += a.output.delay ? v : next;
          v = next;
        }
        const float logit = readout * a.readout_scale;
        a.logits[size_t(b) * C + tid] = logit;
        if (train) shared[s.z + tid] = logit;
      }
      if (train) {
        __syncthreads();
        if (tid == 0) {
          const float* z = shared + s.z;
          float* dz = shared + s.dz;
          int right = 0;
          if (a.loss == Loss::nll)
            nll_sample(z, C, a.labels[b], N, dz, &right);
          else if (a.loss == Loss::bce)
            bce_sample(z[0], a.targets ? double(a.targets[b]) : double(a.labels[b]), N, dz,
                       &right);
          else
            mse_sample(z, a.targets + size_t(b) * C, C, N, dz);
        }
        __syncthreads();
        if (tid < C) {
          // The readout's gradient reaches the state returned at every counted step.
          const float d_readout = shared[s.dz + tid] * a.readout_scale;
          float dv_next = 0.0f, db = 0.0f;
          for (int t = T - 1; t >= 0; --t) {
            const int out = a.output.delay ? t + 1 : t;
            const float d_state = out >= a.begin_eval ? d_readout : 0.0f;
            const float du =
                lif_back_step(a1[t * C + tid], out < T, d_state, 0.0f, a.output, dv_next);
            a1[t * C + tid] = du;
            db += du;
          }
          shared[s.db1 + tid] += db;
        }
      }
    }
    if (!train) continue;
    cluster.sync();

    // 7. du1 from rank 0; this block's neurons' columns of dW1 and their dL/dspikes (over s0,
    // once dW1 has read it); their backward loop, du0 over u0 in a0.
    {
      const float* du1 = cluster.map_shared_rank(a1, 0);
      for (int k = tid; k < T * C; k += threads) p1[k] = du1[k];
      __syncthreads();
      float* dw1 = shared + s.dw1;
      for (int k = tid; k < C * nh; k += threads) {
        const int c = k / nh, j = k - c * nh;
        float sum = 0.0f;
        for (int t = 0; t < T; ++t) sum += p1[t * C + c] * s0[t * s.G + j];
        dw1[c * s.G + j] += sum;
      }
      __syncthreads();
      for (int k = tid; k < T * nh; k += threads) {
        const int t = k / nh, j = k - t * nh;
        float sum = 0.0f;
        for (int c = 0; c < C; ++c) sum += w1[c * s.G + j] * p1[t * C + c];
        s0[t * s.G + j] = sum;
      }
      __syncthreads();
      if (tid < nh) {
        float dv_next = 0.0f, db = 0.0f;
        for (int t = T - 1; t >= 0; --t) {
          const int out = a.hidden.delay ? t + 1 : t;
          const float d_spike = out < T ? s0[out * s.G + tid] : 0.0f;
          const float du =
              lif_back_step(a0[t * s.G + tid], out < T, 0.0f, d_spike, a.hidden, dv_next);
          a0[t * s.G + tid] = du;
          db += du;
        }
        shared[s.db0 + tid] += db;
      }
    }
    cluster.sync();

    for (int chunk = 0; chunk < s.chunks; ++chunk) {
      const int t0 = chunk * s.Tc, rows = std::min(s.Tc, T - t0);
      // 8. The chunk's du0 of every neuron from its owner, into p's bytes (the partial
      // currents are spent), as operands; zeros in the padding the tensor cores read (steps to a
      // whole k of 8 or 16, rows of W0 to a tile), where xi is zero: garbage there could be NaN,
      // and 0 * NaN is not 0.
      const int depth = half ? round_up(rows, 16) : tensor ? round_up(rows, 8) : rows;
      for (int k = tid; k < depth * s.Hp; k += threads) {
        const int t = k / s.Hp, h = k - t * s.Hp, r = h / s.G;
        store_operand(
            p, t * s.us + h,
            t < rows && h < H ? cluster.map_shared_rank(a0, r)[(t0 + t) * s.G + (h - r * s.G)]
                              : 0.0f,
            half);
      }
      __syncthreads();

      // 9. This block's columns of dW0: dw0[h, f] += sum_t du0[t, h] xi[t, f], the masks of
      // step 1 used a second time.
      if (nf > 0) {
        if (half)
          tensor_product<__nv_bfloat16, wmma::col_major, wmma::row_major>(
              as_bf16(p), s.us, as_bf16(xi) + t0 * s.xs, s.xs, s.Hp / 16, (nf + 15) / 16,
              depth / 16, shared + s.dw0, s.ds, true);
        else if (tensor)
          tensor_product<float, wmma::col_major, wmma::row_major>(
              p, s.us, xi + t0 * s.xs, s.xs, s.Hp / 16, (nf + 15) / 16, depth / 8,
              shared + s.dw0, s.ds, true);
        else
          tile_product(View{p, s.us, 1}, H, View{xi + t0 * s.xs, s.xs, 1}, nf, rows,
                       shared + s.dw0, s.ds, true);
      }
      __syncthreads();  // the next chunk's du0 overwrites p, the next sample's masks xi
    }
  }

  if (train) {
    // This block's share of the cluster's partial gradient: its features' columns of dW0, its
    // neurons' entries of db0 and columns of dW1, and (rank 0) db1.
    float* out = a.scratch + size_t(blockIdx.x / R) * partial_floats(I, H, C);
    float* dW0 = out;
    float* db0 = dW0 + size_t(H) * I;
    float* dW1 = db0 + H;
    float* db1 = dW1 + size_t(C) * H;
    for (int k = tid; k < H * nf; k += threads) {
      const int h = k / nf, f = k - h * nf;
      dW0[size_t(h) * I + f0 + f] = shared[s.dw0 + h * s.ds + f];
    }
    for (int j = tid; j < nh; j += threads) db0[h0 + j] = shared[s.db0 + j];
    for (int k = tid; k < C * nh; k += threads) {
      const int c = k / nh, j = k - c * nh;
      dW1[size_t(c) * H + h0 + j] = shared[s.dw1 + c * s.G + j];
    }
    if (rank == 0)
      for (int c = tid; c < C; c += threads) db1[c] = shared[s.db1 + c];
  }
  cluster.sync();  // others may still read this block's memory until here
#else
  __trap();  // sample_cluster_fits sends devices below sm_90 to the layered kernels
#endif
}

// The clusters' partial gradients added in cluster order, into the four gradient arrays.
__global__ void sum_partials_kernel(const float* partials, int clusters, int I, int H, int C,
                                    float* dW0, float* db0, float* dW1, float* db1) {
  const size_t n = partial_floats(I, H, C);
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < n;
       e += size_t(gridDim.x) * blockDim.x) {
    float sum = 0.0f;
    for (int k = 0; k < clusters; ++k) sum += partials[size_t(k) * n + e];
    const size_t w0 = size_t(H) * I, w1 = size_t(C) * H;
    if (e < w0) dW0[e] = sum;
    else if (e < w0 + H) db0[e - w0] = sum;
    else if (e < w0 + H + w1) dW1[e - w0 - H] = sum;
    else db1[e - w0 - H - w1] = sum;
  }
}

// Clusters for a batch of B samples: one block per SM (the shared memory allows no more), so
// the SMs / R clusters that fit at once; more would only wait.
int clusters_for(int B) {
  int device = 0, sms = 0;
  NMSNN_CUDA_CHECK(cudaGetDevice(&device));
  NMSNN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return std::max(1, std::min(B, sms / kClusterBlocks));
}

void check_args(const char* what, const SampleClusterArgs& a, bool train) {
  if (a.T < 1 || a.B < 1 || a.I < 1 || a.H < 1 || a.C < 1)
    ::nmsnn::detail::fail(what, ": T, B, I, H and C must be >= 1, got ", a.T, ", ", a.B, ", ",
                          a.I, ", ", a.H, ", ", a.C);
  if (a.begin_eval < 0 || a.begin_eval >= a.T)
    ::nmsnn::detail::fail(what, ": begin_eval must be in [0, T = ", a.T, "), got ", a.begin_eval);
  if (a.max_time_chunk < 0)
    ::nmsnn::detail::fail(what, ": max_time_chunk must be >= 0 (0: no limit), got ",
                          a.max_time_chunk);
  if (train) {
    if (!a.dW0 || !a.db0 || !a.dW1 || !a.db1 || !a.scratch)
      ::nmsnn::detail::fail(what, ": the gradient and scratch pointers must be set");
    const bool labelled = a.loss == Loss::nll || (a.loss == Loss::bce && !a.targets);
    if (labelled ? !a.labels : !a.targets)
      ::nmsnn::detail::fail(what, ": the ", to_string(a.loss), " loss needs its ",
                            labelled ? "labels" : "targets");
    if (a.loss == Loss::bce && a.C != 1)
      ::nmsnn::detail::fail(what, ": bce needs one output, the network has ", a.C);
  }
  int device = 0;
  NMSNN_CUDA_CHECK(cudaGetDevice(&device));
  const char* why = nullptr;
  if (!sample_cluster_fits(a.T, a.I, a.H, a.C, train, a.math, device, &why))
    ::nmsnn::detail::fail(what, " (T=", a.T, ", I=", a.I, ", H=", a.H, ", C=", a.C, ", ",
                          to_string(a.math), "): ", why);
}

template <bool Train>
void launch(const SampleClusterArgs& a, cudaStream_t stream) {
  // The plan the kernel runs, and exactly the bytes it lays out (a capped chunk needs fewer).
  const Plan plan = plan_for(a.T, a.I, a.H, a.C, Train, a.math, a.max_time_chunk);
  const size_t bytes = size_t(plan.total) * sizeof(float);
  const int clusters = clusters_for(a.B);
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeClusterDimension;
  attribute[0].val.clusterDim.x = kClusterBlocks;
  attribute[0].val.clusterDim.y = 1;
  attribute[0].val.clusterDim.z = 1;
  // Grid, block, shared bytes, stream, attributes (by position: the CUDA emulation defines the
  // names gridDim and blockDim as macros).
  const cudaLaunchConfig_t config = {dim3(unsigned(clusters * kClusterBlocks)),
                                     dim3(kClusterThreads), bytes, stream, attribute, 1};
  NMSNN_CUDA_CHECK(cudaFuncSetAttribute(sample_cluster_kernel,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  NMSNN_CUDA_CHECK(cudaLaunchKernelEx(&config, sample_cluster_kernel, a, plan, Train));
  NMSNN_CHECK_LAUNCH(Train ? "sample_cluster_step" : "sample_cluster_forward", "T=", a.T,
                     ", B=", a.B, ", I=", a.I, ", H=", a.H, ", C=", a.C, ", ", to_string(a.math),
                     ", ", bytes, " bytes of shared memory a block");
  if (Train) {
    const size_t n = partial_floats(a.I, a.H, a.C);
    sum_partials_kernel<<<grid_stride_for((long long)n, 256), 256, 0, stream>>>(
        a.scratch, clusters, a.I, a.H, a.C, a.dW0, a.db0, a.dW1, a.db1);
    NMSNN_CHECK_LAUNCH("sum_partials", "clusters=", clusters, ", floats=", n);
  }
}

}  // namespace

size_t sample_cluster_shared_bytes(int T, int I, int H, int C, bool train, MatmulPrecision math) {
  return size_t(plan_for(T, I, H, C, train, math, 0).total) * sizeof(float);
}

int sample_cluster_time_chunk(int T, int I, int H, int C, bool train, MatmulPrecision math,
                              int max_time_chunk) {
  return plan_for(T, I, H, C, train, math, max_time_chunk).Tc;
}

bool sample_cluster_fits(int T, int I, int H, int C, bool train, MatmulPrecision math, int device,
                         const char** why) {
  int major = 0, optin = 0;
  NMSNN_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  NMSNN_CUDA_CHECK(
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  const char* reason = nullptr;
  if (major < 9) reason = "thread-block clusters need compute capability 9.0";
  else if (sample_cluster_shared_bytes(T, I, H, C, train, math) > size_t(optin))
    reason = "a block's shared memory would exceed what the device allows";
  if (why) *why = reason;
  return reason == nullptr;
}

bool sample_cluster_supports(const NetworkSpec& spec, bool train, MatmulPrecision math,
                             int device) {
  if (spec.layers.size() != 2 || !std::holds_alternative<SpikingLayer>(spec.layers[0]) ||
      !std::holds_alternative<SpikingLayer>(spec.layers[1]))
    return false;
  return sample_cluster_fits(spec.time_steps, spec.inputs, spec.layer_width(0), spec.outputs(),
                             train, math, device);
}

SampleClusterArgs sample_cluster_args(const NetworkSpec& spec, MatmulPrecision math,
                                      const float* const* params, NoiseKey key, const float* x,
                                      int B, float* logits) {
  SampleClusterArgs a;
  a.math = math;
  a.hidden = std::get<SpikingLayer>(spec.layers[0]);
  a.output = std::get<SpikingLayer>(spec.layers[1]);
  a.T = spec.time_steps;
  a.B = B;
  a.I = spec.inputs;
  a.H = a.hidden.size;
  a.C = a.output.size;
  a.key = key;
  a.x = x;
  a.W0 = params[0], a.b0 = params[1], a.W1 = params[2], a.b1 = params[3];
  a.begin_eval = spec.readout.begin_eval;
  a.readout_scale =
      spec.readout.reduce == Reduce::mean ? 1.0f / float(a.T - spec.readout.begin_eval) : 1.0f;
  a.logits = logits;
  return a;
}

size_t sample_cluster_scratch_floats(int B, int I, int H, int C) {
  return size_t(clusters_for(std::max(B, 1))) * partial_floats(I, H, C);
}

void sample_cluster_forward(const SampleClusterArgs& a, cudaStream_t stream) {
  check_args("sample_cluster_forward", a, false);
  launch<false>(a, stream);
}

void sample_cluster_step(const SampleClusterArgs& a, cudaStream_t stream) {
  check_args("sample_cluster_step", a, true);
  launch<true>(a, stream);
}

}  // namespace nmsnn::kernels
