// masked_linear.cu — matrix products whose X operand is the noise-encoded input, made from
// Philox inside the product (see masked_linear.cuh for the math). Each mask of a pass is made
// once (per slice of 128 neurons), in registers, and never stored in global memory.
//
// FP32 (CUDA cores, the exactness tests' path). Both products have the form
//     C[p, q] = sum_r P[r, p] * Q[r, q]   over a 128 x 64 output tile, p always a neuron:
//   forward  out[m, n]:  p = n,  q = m (row t*B+b),  r = k (feature);  P = W, Q = X (masks here)
//   wgrad    dW[n, k]:   p = n,  q = k,              r = m;             P = dU, Q = X
// A block of 256 threads (8 warps) owns one tile of C and walks r in stages of 16: each stage
// loads a 16 x 128 slice of P (8 values per thread) and a 16 x 64 slice of Q (4 per thread: for
// X exactly one Philox block, the four masks of features 4j..4j+3 at one (t, b)) into shared
// memory, double-buffered (while the block multiplies stage s, each thread has fetched stage s+1
// into registers and then writes it into the other buffer; one __syncthreads per stage, see
// mainloop). Each thread keeps 8 x 4 of C (p = 4g+i and 64+4g+i, q = 4h+j) and reads three
// float4s per 32 FMAs; one FMA chain per element in order of r, so the result is within the
// rigorous FP32 bound the exactness tests use. Shared rows are padded by 8 floats (P rows 136,
// Q rows 72): the scalar stores of a warp go to 32 consecutive elements of one row, the float4
// reads of a quarter-warp to 8 consecutive float4s or one (a broadcast): no bank conflicts.
//
// TF32 and BF16 (tensor cores, mma.sync m16n8k8 / m16n8k16, FP32 accumulation; mma_sync.cuh has
// the fragment layouts). WMMA's fragments are opaque, so the masked input had to go through
// shared memory and its loads compiled to generic LD.E with 64-bit address math: those loops
// issued 325 (TF32 forward) to 402 (TF32 weight gradient) instructions per thread per stage for
// 8 warps' 131K MACs, issue-bound at ~6x the tensor cores' time. With mma.sync each lane makes
// exactly the masked inputs its fragments hold: the order of a product's sum is free, so the
// columns of a 16-deep stage are permuted to give lane (g, t) = (lane / 4, lane % 4) four
// consecutive features of a row, one Philox block (see the two kernels). Only the other operand
// is staged in shared memory, as ready operands: W in the forward (cooperatively, shared by a
// block's 4 warps), dU in the weight gradient. TF32 operands are rounded to nearest (ties away,
// as cvt.rna) by tf32_operand, BF16 ones to nearest even by pack_bf16x2, where they are made or
// staged.
//   forward  block = 4 warps x 32 rows (two m16 tiles each) x all 8 NT neurons of a slice (NT =
//            8, 13 or 16 n8 tiles: N = 100 pads to 104), its 128 rows taken sample-major (one
//            sample's steps when T = 128); a stage is 4 quads of 4 features, from the list of
//            the quads where some sample of the block has a nonzero input (zero quads add
//            nothing, so neither their masks nor their products are made); W staged as
//            [neuron][16] words (TF32) or [neuron][8] BF16 pairs, read by lane (g, t) as one
//            16- or 8-byte load of W[8j + g, q .. q+3] per n8 tile: 8 lanes of a read phase
//            cover 2 rows x 64 bytes (TF32) or 16 lanes 4 rows x 32 bytes: conflict-free.
//            The accumulators go straight to out (8-byte stores of (n, n+1) pairs); or, with
//            the layer's time loop fused in (masked_linear_lif_forward: T divides 128 and N <=
//            128, so a block holds whole samples and every neuron), to a tile in dynamic shared
//            memory that the time loop (lif_neuron.cuh) reads: a never reaches global memory.
//            With a layer of at most 16 neurons above (NextLayerProduct), the loop leaves its
//            spikes in the tile and the block multiplies them by that layer's weights, staged
//            where W was: the spikes never reach global memory either.
//            On compute capability 9.0 (a build with sm_90a) the block is one warpgroup and
//            issues wgmma instead (Tf32ForwardWgmma, Bf16ForwardWgmma; wgmma.cuh): the same A
//            fragments and accumulators, one instruction per row tile and k step with W read
//            from the stage by the tensor cores, and asynchronous: the warp makes the next
//            stage's masks and stages its W while the product runs, then waits. sm_90a SASS at
//            N = 100: 466 (TF32) and 367 (BF16) instructions a warp-stage, 4 and 2 HGMMA, about
//            200 of them between the first HGMMA and the wait; registers 235 and 218.
//   wgrad    block = 4 warps, each a strip of 32 features (four n8 tiles), x all 16 MT neurons
//            (MT = 4, 7 or 8 m16 tiles: N = 100 pads to 112) over a split's rows, 16 a stage;
//            dU staged as the lanes' A registers (see Tf32Wgrad), read as one 16-byte load per
//            m16 tile and step. Partial dW straight from registers, four consecutive features
//            per 16-byte store.
// Neither loop branches but on its trip count: rows past M (or the split), features past K and
// neurons past N are zeros multiplied like any other value (their Philox blocks are made
// anyway), and the last stage's prefetch of the next one loads nothing. This weight gradient
// walks every feature of its strip, zero or not; the one walked by sample (below, the default
// for T >= 16 and B >= 8) walks each sample's live quads, on wgmma too (Tf32WgradWgmma,
// Bf16WgradWgmma: dW^T = X^T dU, the masked input as A). Budget per block: 128
// threads, 2 blocks per SM (__launch_bounds__): registers (nvcc 13 ptxas, sm_90, no spills), at
// N = 100 with the masks made a stage ahead (MasksAhead): forward TF32 238, BF16 234; weight
// gradient TF32 246, BF16 234 (the widest classes: up to 255); shared memory 2 stages of W (at
// most 16 KB) or dU (at most 18 KB).
//
// Instructions per warp per stage (the main loop of the sm_90 SASS, nvcc 13; counted by
// scripts/sass_loop_counts.sh; K % 4 == 0), at N = 100: forward TF32 513, BF16 408 for a warp's
// 32 x 104 x 16 MACs (fp32: 706 per thread for 8 warps' 64 x 128 x 16); weight gradient TF32
// 718, BF16 568 for 112 x 32 x 16 (fp32 770 per thread, 8 warps). About 230 of each count are
// the stage's 4 Philox blocks and the masks' conversions; bench/napkin_math.hpp counts these
// loops for the predicted times.
//
// The weight gradient splits its sum over r = m across gridDim.z blocks that write partial
// tiles; reduce_partials adds them in split order (deterministic; no atomics).
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "cuda_check.cuh"
#include "launch.cuh"
#include "lif_neuron.cuh"
#include "masked_linear.cuh"
#include "mma_sync.cuh"
#include "wgmma.cuh"

namespace nmsnn::kernels {

namespace {

constexpr int kTileP = 128;   // neurons per tile
constexpr int kTileQ = 64;    // rows (forward) or features (wgrad) per tile
constexpr int kDepth = 16;    // r values per shared-memory stage
constexpr int kThreads = 256;
constexpr int kPad = 8;                      // elements added to each staged row (see top)
constexpr int kStrideP = kTileP + kPad;      // 136
constexpr int kStrideQ = kTileQ + kPad;      // 72

// One shared-memory stage of the FP32 path: P[r][p] and Q[r][q] for 16 consecutive r.
struct Stage {
  float p[kDepth][kStrideP];
  float q[kDepth][kStrideQ];
};

// ---- loaders: each thread fetches its values of one stage, then stores them ------------------
// A loader is made at the first stage of its block's share of r and walks r in stages of kDepth:
// fetch() reads global memory (and makes masks) for the stage at hand into registers and moves
// on to the next; put() writes what was fetched into shared memory. Keeping the position in the
// loader (pointers and the mask's counter words stepped along, no index arithmetic from r per
// stage) takes instructions out of the issue-bound main loop. Out-of-range elements are 0, so
// edge tiles need no special case in the arithmetic.

// Row m = t*B + b of the masked input, as the mask loaders need it: the Philox counter words
// of (t, b) and the row of x. Finding it takes a 64-bit division, and with keyed rows or a
// captured pass counter two global loads, so each loader finds it once per thread (forward: the
// thread's row is fixed) or steps it along (wgrad: the row advances by kDepth per stage).
struct MaskRow {
  uint32_t t = 0, b = 0, row = 0, pass = 0;
  const float* xb = nullptr;

  __device__ void set(NoiseKey key, const float* x, int B, int K, long long m) {
    const long long tt = m / B;
    set(key, x, K, uint32_t(tt), uint32_t(m - tt * B));
  }
  // The row of step t_ of sample b_, where the caller knows them (no division).
  __device__ void set(NoiseKey key, const float* x, int K, uint32_t t_, uint32_t b_) {
    t = t_;
    b = b_;
    row = noise_row(key, b);
    pass = noise_pass(key);
    xb = x + (size_t)b * K;
  }
  // To row m + s without a division, the step given as whole steps of t and the rest (step.t =
  // s / B, step.b = s % B): no loop either, so nvcc keeps one copy of the code around it.
  struct Step {
    uint32_t t, b;
  };
  __device__ void advance(NoiseKey key, const float* x, int B, int K, Step step) {
    b += step.b;
    t += step.t;
    if (b >= uint32_t(B)) {
      b -= uint32_t(B);
      ++t;
    }
    row = noise_row(key, b);
    xb = x + (size_t)b * K;
  }
};

// The masked inputs xi[m, k..k+3] = m(t, b, k+j) * x[b, k+j] of that row: one Philox block,
// four features (k is a multiple of 4); features past K are 0.
__device__ inline void masked_quad(NoiseKey key, const MaskRow& at, int K, int k, float v[4]) {
  const Philox4x32 r = noise_block_words(key, uint32_t(k >> 2), at.row, at.t, at.pass);
#pragma unroll
  for (int j = 0; j < 4; ++j) v[j] = k + j < K ? uniform_from_bits(r.v[j]) * at.xb[k + j] : 0.0f;
}

// Forward P: W[n, k] with n = p, k = r. Thread: p = tid % 128, r = 8 * (tid / 128) + j.
struct WeightAlongR {
  const float* row;  // W[n, :], null when n >= N
  int K;
  int k;             // the thread's first feature of the stage at hand
  float v[8];

  __device__ WeightAlongR(const float* W, int N, int K_, int n0) : K(K_) {
    const int n = n0 + (threadIdx.x & (kTileP - 1));
    row = n < N ? W + (size_t)n * K : nullptr;
    k = 8 * (threadIdx.x >> 7);
  }
  __device__ void fetch() {
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] = (row && k + j < K) ? row[k + j] : 0.0f;
    k += kDepth;
  }
  __device__ void put(Stage& s) const {
    const int p = threadIdx.x & (kTileP - 1), r = 8 * (threadIdx.x >> 7);
#pragma unroll
    for (int j = 0; j < 8; ++j) s.p[r + j][p] = v[j];
  }
};

// Wgrad P: dU[m, n] with m = r, n = p. Thread: p = tid % 128, r = 8 * (tid / 128) + j: a warp
// reads 32 consecutive floats of a row of dU.
struct GradAlongR {
  const float* at;     // dU[m, n] of the thread's first row of the stage at hand; null if n >= N
  size_t N;
  long long left;      // rows of the block's share from that row on (<= 0: none)
  float v[8];

  __device__ GradAlongR(const float* dU, int N_, long long r_begin, long long m_end, int n0)
      : N(size_t(N_)) {
    const int n = n0 + (threadIdx.x & (kTileP - 1));
    const long long m = r_begin + 8 * (threadIdx.x >> 7);
    at = n < N_ ? dU + size_t(m) * N + n : nullptr;
    left = m_end - m;
  }
  __device__ void fetch() {
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] = (at && j < left) ? at[j * N] : 0.0f;
    if (at) at += kDepth * N;
    left -= kDepth;
  }
  __device__ void put(Stage& s) const {
    const int p = threadIdx.x & (kTileP - 1), r = 8 * (threadIdx.x >> 7);
#pragma unroll
    for (int j = 0; j < 8; ++j) s.p[r + j][p] = v[j];
  }
};

// Forward Q: X(m, k) with m = q, k = r. Thread: q = tid % 64, r = 4 * (tid / 64) + j: one
// Philox block per thread, always of the same row m.
struct MaskedAlongQ {
  NoiseKey key;
  int K;
  bool in_range;  // m < M
  int k;          // the thread's first feature of the stage at hand (a multiple of 4)
  MaskRow at;
  float v[4];

  __device__ MaskedAlongQ(NoiseKey key_, const float* x, int B, int K_, long long M, long long m0)
      : key(key_), K(K_) {
    const long long m = m0 + (threadIdx.x & (kTileQ - 1));
    in_range = m < M;
    if (in_range) at.set(key, x, B, K, m);
    k = 4 * (threadIdx.x >> 6);
  }
  __device__ void fetch() {
    v[0] = v[1] = v[2] = v[3] = 0.0f;
    if (in_range && k < K) masked_quad(key, at, K, k, v);  // one Philox block holds k..k+3
    k += kDepth;
  }
  __device__ void put(Stage& s) const {
    const int q = threadIdx.x & (kTileQ - 1), r = 4 * (threadIdx.x >> 6);
#pragma unroll
    for (int j = 0; j < 4; ++j) s.q[r + j][q] = v[j];
  }
};

// Wgrad Q: X(m, k) with m = r, k = q. Thread: r = tid / 16, q = 4 * (tid % 16) + j: one Philox
// block per thread again, stored as one vector. The thread's row starts at r_begin + tid / 16
// and steps by kDepth per stage (no division in the loop).
struct MaskedAlongR {
  NoiseKey key;
  const float* x;
  int B, K;
  int k;           // the thread's first feature (fixed)
  long long left;  // rows of the block's share from the row at hand on (<= 0: none)
  MaskRow at;
  MaskRow::Step step;  // kDepth rows
  float v[4];

  __device__ MaskedAlongR(NoiseKey key_, const float* x_, int B_, int K_, long long r_begin,
                          long long m_end, int k0)
      : key(key_), x(x_), B(B_), K(K_), k(k0 + 4 * (threadIdx.x & 15)),
        step{uint32_t(kDepth / B_), uint32_t(kDepth % B_)} {
    const long long m = r_begin + (threadIdx.x >> 4);
    left = m_end - m;
    at.set(key, x, B, K, m);
  }
  __device__ void fetch() {
    v[0] = v[1] = v[2] = v[3] = 0.0f;
    if (left > 0 && k < K) masked_quad(key, at, K, k, v);
    left -= kDepth;
    at.advance(key, x, B, K, step);
  }
  __device__ void put(Stage& s) const {
    *reinterpret_cast<float4*>(&s.q[threadIdx.x >> 4][4 * (threadIdx.x & 15)]) =
        make_float4(v[0], v[1], v[2], v[3]);
  }
};

// ---- arithmetic on one stage ----------------------------------------------------------------

// fp32: thread (hi, lo) = (tid / 16, tid % 16); the lo index runs along p when kLanesAlongP (so
// the forward's direct stores go along a row of out) and along q otherwise (along a row of dW).
// The thread owns p = 4g + i and 64 + 4g + i (i < 4), q = 4h + j (j < 4).
template <bool kLanesAlongP>
struct SimtMath {
  static constexpr int kSharedBytes = 2 * sizeof(Stage);
  float acc[8][4];

  __device__ int g() const { return kLanesAlongP ? threadIdx.x & 15 : threadIdx.x >> 4; }
  __device__ int h() const { return kLanesAlongP ? threadIdx.x >> 4 : threadIdx.x & 15; }
  __device__ void zero() {
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
  }
  __device__ void multiply(const Stage& s) {
    const int gp = 4 * g(), hq = 4 * h();
#pragma unroll
    for (int r = 0; r < kDepth; ++r) {
      const float4 a0 = *reinterpret_cast<const float4*>(&s.p[r][gp]);
      const float4 a1 = *reinterpret_cast<const float4*>(&s.p[r][64 + gp]);
      const float4 b = *reinterpret_cast<const float4*>(&s.q[r][hq]);
      const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
  }
  // Calls out(p, q, value) for each of this thread's 32 elements (tile coordinates), straight
  // from registers.
  template <class Out>
  __device__ void store(Out&& out) const {
    const int gp = 4 * g(), hq = 4 * h();
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) out((i < 4 ? gp + i : 64 + gp + i - 4), hq + j, acc[i][j]);
  }
};

// The launched instantiations (named, so each launch names one type).
using ForwardFp32 = SimtMath<true>;
using WgradFp32 = SimtMath<false>;

// ---- the forward in TF32 and BF16: mma.sync with the masked input made in registers -----------
// A block of 4 warps covers 128 rows (each warp 32: two m16 tiles) and all 8 * NT neurons of its
// slice of the layer (NT n8 tiles: 8, 13 or 16, so N = 100 pads to 104, not 128). Each lane
// makes exactly the masked inputs its A fragments hold, so the masked input never touches shared
// memory and each mask is made once per pass; only W is staged (see the top of the file).
//
// The order of the sum over features inside a 16-deep stage is the product's own business, so
// the stage's logical columns are permuted to suit Philox: lane (g, t) holds, for each of its
// rows, features q .. q+3 with q = k0 + 4t, one Philox block. TF32 (two m16n8k8 per stage, h = 0,
// 1): logical column t of step h is feature q + 2h, column t + 4 is q + 2h + 1. BF16 (one
// m16n8k16): columns 2t, 2t+1 are q, q+1 and 2t+8, 2t+9 are q+2, q+3. B's rows follow the same
// map, so lane (g, t)'s B values for neuron n are W[n, q .. q+3]: one 16-byte (TF32) or 8-byte
// (BF16) shared-memory load per n8 tile and stage.
constexpr int kMmaWarps = 4;
constexpr int kMmaThreads = 32 * kMmaWarps;
constexpr int kMmaRowTiles = 2;                        // m16 tiles per warp
constexpr int kMmaRows = 16 * kMmaRowTiles * kMmaWarps;  // 128 rows per block

// The masks a stage ahead. On the H200 the mma.sync loops took about the sum of their Philox
// time and their tensor-core time (bench/RESULTS.md, 2026-12-04): a stage's four Philox blocks
// were all issued before its first mma.sync, so with two warps per scheduler the integer pipes
// and the tensor pipe mostly took turns. The loops now make stage s + 1's masked inputs while
// stage s multiplies: Op::multiply calls a hook after each of its outer tiles, and MasksAhead
// makes row r's Philox block after tile r * Tiles / 4. Placed so in the source, ptxas keeps
// much of the integer work between the mma instructions: of the sm_90 loops at N = 100 (K % 4 ==
// 0), 210 instructions lie between the first and the last mma in the TF32 forward (3 before),
// 214 / 143 in the TF32 / BF16 weight gradient by rows (7 / 6), 261 / 160 by sample (55 / 0);
// the BF16 forward alone still issues its 26 mma first (9; scripts/sass_loop_counts.sh prints
// these). A stage past the last makes its masks anyway, as zeros.
struct NoHook {
  __device__ void operator()(int) const {}
};

template <int Tiles, class Make>
struct MasksAhead {
  static_assert(Tiles >= 4, "one mask row per quarter of the tiles");
  Make make;  // make(r): row r's masked inputs of the next stage
  __device__ void operator()(int tile) const {
#pragma unroll
    for (int r = 0; r < 4; ++r)
      if (tile == r * Tiles / 4) make(r);
  }
};
template <int Tiles, class Make>
__device__ MasksAhead<Tiles, Make> masks_ahead(Make make) {
  return {make};
}

// dst[r][0 .. 3] = src[r][0 .. 3], r < 4: the next stage's masked inputs become the current.
__device__ inline void take_masks(float (&dst)[4][4], const float (&src)[4][4]) {
#pragma unroll
  for (int r = 0; r < 4; ++r)
#pragma unroll
    for (int e = 0; e < 4; ++e) dst[r][e] = src[r][e];
}

// A TF32 operand: v rounded to nearest, ties away (as cvt.rna), in three instructions instead of
// cvt.rna's four: half a TF32 ulp added to the bits, whose 13 low bits the tensor cores ignore
// (so they need no clearing); infinities and NaN stay as they are.
__device__ inline uint32_t tf32_operand(float v) {
  const uint32_t u = float_bits(v);
  return fabsf(v) < INFINITY ? u + 0x1000u : u;
}

// The mma.sync kernels' accumulators, [tiles][tiles][4 per lane], set to 0.
template <int I, int J>
__device__ inline void zero_accumulators(float (&acc)[I][J][4]) {
#pragma unroll
  for (int i = 0; i < I; ++i)
#pragma unroll
    for (int j = 0; j < J; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[i][j][c] = 0.0f;
}

// What the forward needs of its precision: how a stage holds W (32-bit words per neuron per
// stage) and the instruction.
struct Tf32Forward {
  static constexpr bool kWgmma = false;
  static constexpr int kRowWords = 16;  // 16 TF32 values
  // Stores W[n, 4c .. 4c+3] of the stage as operands.
  __device__ static void put(uint32_t* row, int c, float4 w) {
    *reinterpret_cast<uint4*>(row + 4 * c) =
        uint4{tf32_operand(w.x), tf32_operand(w.y), tf32_operand(w.z), tf32_operand(w.w)};
  }
  // This lane's A fragments of the stage: [row tile i][step h], from v[r][e], the masked inputs
  // of its rows (r = 2i: row g of tile i, 2i + 1: row g + 8) at features q + e. Step h's column
  // t + 4c is feature 2h + c of the lane's quad.
  __device__ static void fragments(const float (&v)[4][4], uint32_t (&a)[kMmaRowTiles][2][4]) {
#pragma unroll
    for (int i = 0; i < kMmaRowTiles; ++i)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        a[i][h][0] = tf32_operand(v[2 * i][2 * h]);
        a[i][h][1] = tf32_operand(v[2 * i + 1][2 * h]);
        a[i][h][2] = tf32_operand(v[2 * i][2 * h + 1]);
        a[i][h][3] = tf32_operand(v[2 * i + 1][2 * h + 1]);
      }
  }
  // acc(i, j) += the stage's product for row tile i, n8 tile j.
  // after(j) runs after n8 tile j's instructions (see MasksAhead).
  template <int NT, class After = NoHook>
  __device__ static void multiply(float (&acc)[kMmaRowTiles][NT][4], const float (&v)[4][4],
                                  const uint32_t (*ws)[kRowWords], After after = {}) {
    const int g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
    uint32_t a[kMmaRowTiles][2][4];
    fragments(v, a);
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      const uint4 w = *reinterpret_cast<const uint4*>(&ws[8 * j + g][4 * t]);
      const uint32_t b[2][2] = {{w.x, w.y}, {w.z, w.w}};
#pragma unroll
      for (int i = 0; i < kMmaRowTiles; ++i)
#pragma unroll
        for (int h = 0; h < 2; ++h) mma_tf32_m16n8k8(acc[i][j], a[i][h], b[h]);
      after(j);
    }
  }
};

struct Bf16Forward {
  static constexpr bool kWgmma = false;
  static constexpr int kRowWords = 8;  // 16 BF16 values, two to a word
  __device__ static void put(uint32_t* row, int c, float4 w) {
    *reinterpret_cast<uint2*>(row + 2 * c) = uint2{pack_bf16x2(w.x, w.y), pack_bf16x2(w.z, w.w)};
  }
  // As Tf32Forward's, one k16 step: columns 2t + 8c and 2t + 8c + 1 are features 2c, 2c + 1 of
  // the lane's quad.
  __device__ static void fragments(const float (&v)[4][4], uint32_t (&a)[kMmaRowTiles][4]) {
#pragma unroll
    for (int i = 0; i < kMmaRowTiles; ++i) {
      a[i][0] = pack_bf16x2(v[2 * i][0], v[2 * i][1]);
      a[i][1] = pack_bf16x2(v[2 * i + 1][0], v[2 * i + 1][1]);
      a[i][2] = pack_bf16x2(v[2 * i][2], v[2 * i][3]);
      a[i][3] = pack_bf16x2(v[2 * i + 1][2], v[2 * i + 1][3]);
    }
  }
  template <int NT, class After = NoHook>
  __device__ static void multiply(float (&acc)[kMmaRowTiles][NT][4], const float (&v)[4][4],
                                  const uint32_t (*ws)[kRowWords], After after = {}) {
    const int g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
    uint32_t a[kMmaRowTiles][4];
    fragments(v, a);
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      const uint2 w = *reinterpret_cast<const uint2*>(&ws[8 * j + g][2 * t]);
      const uint32_t b[2] = {w.x, w.y};
#pragma unroll
      for (int i = 0; i < kMmaRowTiles; ++i) mma_bf16_m16n8k16(acc[i][j], a[i], b);
      after(j);
    }
  }
};

// The forward on wgmma (wgmma.cuh; sm_90a): the same A fragments and accumulators, one
// instruction per row tile and k step instead of NT mma.sync, W's stage read by the instruction
// from shared memory in its core-matrix layout. A stage of W is the same number of words as for
// mma.sync, arranged as core matrices [n / 8][feature e of the quad][n % 8][quad slot t] for
// TF32 (128 bytes each: step h is e = 2h, 2h + 1, lbo 128 bytes, sbo 512) and
// [n / 8][e / 2][n % 8][t] with the pair (e, e + 1) in one word for BF16 (lbo 128, sbo 256). A
// warp's 32 stores of one e cover one core matrix: no bank conflicts. The product is issued
// asynchronously (multiply_async); the kernel waits for it (wgmma_wait_all) once the next
// stage's masks are made. Sums in the order of mma.sync's (by k within a step, steps in order),
// so the CUDA emulation gives the same bits either way.
struct Tf32ForwardWgmma : Tf32Forward {
  static constexpr bool kWgmma = true;
  // W[n, quad slot t's features 0 .. 3] of the stage (n within the block's slice).
  __device__ static void put_core(uint32_t* stage, int n, int t, float4 w) {
    uint32_t* at = stage + 128 * (n >> 3) + 4 * (n & 7) + t;
    at[0] = tf32_operand(w.x);
    at[32] = tf32_operand(w.y);
    at[64] = tf32_operand(w.z);
    at[96] = tf32_operand(w.w);
  }
  template <int NT>
  __device__ static void multiply_async(float (&acc)[kMmaRowTiles][NT][4],
                                        const float (&v)[4][4], const uint32_t* stage) {
    uint32_t a[kMmaRowTiles][2][4];
    fragments(v, a);
    wgmma_fence();
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int i = 0; i < kMmaRowTiles; ++i)
        wgmma_m64<NT>(acc[i], a[i][h], stage + 64 * h, 128, 512, false);
    wgmma_commit();
  }
};

struct Bf16ForwardWgmma : Bf16Forward {
  static constexpr bool kWgmma = true;
  __device__ static void put_core(uint32_t* stage, int n, int t, float4 w) {
    uint32_t* at = stage + 64 * (n >> 3) + 4 * (n & 7) + t;
    at[0] = pack_bf16x2(w.x, w.y);
    at[32] = pack_bf16x2(w.z, w.w);
  }
  template <int NT>
  __device__ static void multiply_async(float (&acc)[kMmaRowTiles][NT][4],
                                        const float (&v)[4][4], const uint32_t* stage) {
    uint32_t a[kMmaRowTiles][4];
    fragments(v, a);
    wgmma_fence();
#pragma unroll
    for (int i = 0; i < kMmaRowTiles; ++i) wgmma_m64<NT>(acc[i], a[i], stage, 128, 256, true);
    wgmma_commit();
  }
};

// Four consecutive floats p[k .. k+3] of a row of K, 0 when `ok` is false and past K. kVec: K
// is a multiple of 4 and the array 16-byte aligned, so a quad is whole or past K and is one
// 16-byte load.
template <bool kVec>
__device__ inline float4 load_quad(const float* p, int k, int K, bool ok) {
  if (kVec) return ok && k < K ? *reinterpret_cast<const float4*>(p + k) : make_float4(0, 0, 0, 0);
  return make_float4(ok && k < K ? p[k] : 0.0f, ok && k + 1 < K ? p[k + 1] : 0.0f,
                     ok && k + 2 < K ? p[k + 2] : 0.0f, ok && k + 3 < K ? p[k + 3] : 0.0f);
}

// masked_quad for the mma.sync kernels: the seed's round keys made once, the row's x a 16-byte
// load (kVec), and `ok` false (a row past the sum) giving zeros.
template <bool kVec>
__device__ inline float4 masked_quad4(const PhiloxRoundKeys& keys, const MaskRow& at, int K, int k,
                                      bool ok) {
  const Philox4x32 p = noise_block_words(keys, uint32_t(k >> 2), at.row, at.t, at.pass);
  const float4 xq = load_quad<kVec>(at.xb, k, K, ok);
  return make_float4(uniform_from_bits(p.v[0]) * xq.x, uniform_from_bits(p.v[1]) * xq.y,
                     uniform_from_bits(p.v[2]) * xq.z, uniform_from_bits(p.v[3]) * xq.w);
}

// The same for an x quad the caller loaded once for several rows, given pre-scaled: xs = x[b,
// k .. k+3] * 2^-24 (scaled_quad), so that a mask's 24 bits times xs is m * x in one multiply
// instead of two. The same float as uniform_from_bits(r) * x (one rounding of the same product)
// wherever x * 2^-24 is exact: every x but |x| < 2^-102, whose products (below 2^-102, far under
// a TF32 or BF16 operand's resolution of the sums) may differ in their last bits.
__device__ inline float4 scaled_quad(float4 xq) {
  constexpr float kScale = 1.0f / 16777216.0f;
  return make_float4(xq.x * kScale, xq.y * kScale, xq.z * kScale, xq.w * kScale);
}
__device__ inline float4 masked_quad_of(const PhiloxRoundKeys& keys, const MaskRow& at, int k,
                                        float4 xs) {
  const Philox4x32 p = noise_block_words(keys, uint32_t(k >> 2), at.row, at.t, at.pass);
  return make_float4(float(p.v[0] >> 8) * xs.x, float(p.v[1] >> 8) * xs.y,
                     float(p.v[2] >> 8) * xs.z, float(p.v[3] >> 8) * xs.w);
}

// The features a forward block multiplies: the quads (features 4c .. 4c+3) in which some sample
// of the block has a nonzero input. A quad whose inputs are all 0 adds exact zeros to every sum
// (mask * 0 = 0), so it is left out of the product and its Philox blocks are never made: the
// sum of the rest is the same sum, short of the terms that are 0. On MNIST, 28% of a digit's
// quads hold a nonzero pixel (bench/napkin_math.hpp), so a sample's block makes 28% of the masks
// and does 28% of the products. The feature axis is walked in chunks of kChunkQuads quads; the
// list of a chunk's live quads lives in shared memory, padded with kSentinelPad entries that
// name a quad past K (zeros) so the loop's prefetch of the stage after the last needs no branch.
constexpr int kChunkQuads = 2 * kMmaThreads;  // 256 quads, 1024 features: two per thread
constexpr int kSentinelPad = 8;

struct QuadList {
  int quad[kChunkQuads + kSentinelPad];  // absolute quad indices, live ones first
  int scan[2][kMmaThreads];              // the block's prefix sum of live counts
};

// Fills `list` with the live quads among [c0, c0 + kChunkQuads) of samples b_lo .. b_hi (rows of
// x), in order, and returns how many (the same in every thread). Ends on a barrier.
template <bool kVec>
__device__ int live_quads(QuadList& list, const float* x, int K, int b_lo, int b_hi, int c0) {
  const int quads = (K + 3) / 4;
  const int tid = threadIdx.x;
  bool live[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int c = c0 + 2 * tid + h;
    live[h] = false;
    for (int b = b_lo; c < quads && b <= b_hi && !live[h]; ++b) {
      const float4 v = load_quad<kVec>(x + (size_t)b * K, 4 * c, K, true);
      live[h] = v.x != 0.0f || v.y != 0.0f || v.z != 0.0f || v.w != 0.0f;
    }
  }
  // Inclusive prefix sum of the threads' counts (Hillis-Steele over shared memory; the previous
  // chunk's last reads of `scan` and `quad` were before the barrier that ended its loop).
  const int mine = int(live[0]) + int(live[1]);
  list.scan[0][tid] = mine;
  __syncthreads();
  int from = 0;
  for (int d = 1; d < kMmaThreads; d *= 2, from ^= 1) {
    const int v = list.scan[from][tid] + (tid >= d ? list.scan[from][tid - d] : 0);
    list.scan[from ^ 1][tid] = v;
    __syncthreads();
  }
  const int total = list.scan[from][kMmaThreads - 1];
  int at = list.scan[from][tid] - mine;
  if (live[0]) list.quad[at++] = c0 + 2 * tid;
  if (live[1]) list.quad[at] = c0 + 2 * tid + 1;
  if (tid < kSentinelPad) list.quad[total + tid] = quads;  // past K: zeros
  __syncthreads();
  return total;
}

// What the fused time loop needs (a kernel argument, by value): the time loop's arguments and
// constants, the reset rule as a flag (one kernel for both rules), and optionally the layer
// above's product (NextLayerProduct: its W, width and current, a null `next.a` for none).
struct LifTail {
  LifForwardArgs args;
  LifConstants c;
  bool subtract = false;
  NextLayerProduct next;
};

// The fused time loop's tile of a: kMmaRows rows (the block's, sample-major) x the slice's
// neurons, in dynamic shared memory. A row's pitch is the slice's width, plus 8 floats where
// that width is a multiple of 32, so that rows g and g + 4 of a fragment store fall 8 banks apart
// (at 104, 104 % 32 = 8 already).
constexpr int lif_tile_pitch(int neurons) { return neurons % 32 == 0 ? neurons + 8 : neurons; }
template <int NT>
constexpr size_t lif_tile_bytes() {
  return sizeof(float) * kMmaRows * lif_tile_pitch(8 * NT);
}

// One neuron of the fused time loop, its outputs fixed at compile time for the common sets and
// tested otherwise: a hidden layer in training (u or spike16 codes kept) and in inference, its
// spikes to out or, with the layer above's product fused in (a TileSpikes sink), only to the tile.
template <ResetRule Rule, class Current, class Sink>
__device__ void lif_tail_neuron(const LifTail& tail, size_t at0, size_t step, int n,
                                Current current, Sink sink) {
  const LifForwardArgs& a = tail.args;
  const LifConstants& c = tail.c;
  constexpr bool kToOut = std::is_same<Sink, NoSpikeSink>::value;
  constexpr int kSpikes = kToOut ? kLifSpikes : 0;
  switch (lif_outputs(a)) {
    case kLifU | kSpikes:
      return lif_neuron<Rule, kLifU | kSpikes>(a, c, at0, step, n, current, sink);
    case kLifCodes | kSpikes:
      return lif_neuron<Rule, kLifCodes | kSpikes>(a, c, at0, step, n, current, sink);
    case kSpikes:
      return lif_neuron<Rule, kSpikes>(a, c, at0, step, n, current, sink);
    default:
      return lif_neuron<Rule, kLifAnyOutputs>(a, c, at0, step, n, current, sink);
  }
}

#ifdef __CUDACC__
#define NMSNN_NOINLINE __noinline__
#else
#define NMSNN_NOINLINE  // the CUDA emulation (plain C++) has no such keyword and needs none
#endif

// The sink of a fused time loop whose spikes feed the layer above's product: step t's spike in
// place of its current in the tile (lif_neuron reads every current of a step before it writes).
struct TileSpikes {
  float* column;
  int pitch;
  __device__ void operator()(int t, float s) const { column[t * pitch] = s; }
};

// The time loops on the block's tile: thread e runs neuron e % N of the block's sample e / N
// (and e + 128, ... where the block has more than 128 pairs). Not inlined: its registers are
// then its own, not added to the main loop's (inlined, the widest class spilled). kNext: the
// spikes also go to the tile, for the layer above's product.
template <int NT, bool kNext>
NMSNN_NOINLINE __device__ void lif_tail_loops(const LifTail& tail, int T, int B, int N,
                                              long long p_block) {
  extern __shared__ __align__(16) float lif_tile[];
  constexpr int pitch = lif_tile_pitch(8 * NT);
  const int samples = kMmaRows / T, b0 = int(p_block / T);
  const size_t step = size_t(B) * N;
  for (int e = threadIdx.x; e < samples * N; e += kMmaThreads) {
    const int ls = e / N, n = e - ls * N, b = b0 + ls;
    if (b >= B) break;  // the last block's rows past M (e only grows)
    float* column = lif_tile + ls * T * pitch + n;
    auto current = [&](int s) { return column[s * pitch]; };
    const size_t at0 = size_t(b) * N + n;
    using Sink = typename std::conditional<kNext, TileSpikes, NoSpikeSink>::type;
    Sink sink{};
    if constexpr (kNext) sink = TileSpikes{column, pitch};
    if (tail.subtract)
      lif_tail_neuron<ResetRule::subtract>(tail, at0, step, n, current, sink);
    else
      lif_tail_neuron<ResetRule::scale>(tail, at0, step, n, current, sink);
  }
}

// The layer above's weights W [H, N], H <= 16, staged whole as the forward stages its W: stage s
// (features 16s .. 16s + 15) in rows 16s .. 16s + 15 of `wn`, zeros past N and H. Thread e takes
// row e % 16 of stage e / 16 (N <= 128: at most 128 such rows, one each).
template <class Op>
NMSNN_NOINLINE __device__ void stage_next_weights(const float* W, int H, int N,
                                                  uint32_t (*wn)[Op::kRowWords]) {
  const int e = threadIdx.x, c = e & 15, s = e >> 4;
  if (s >= (N + 15) / 16) return;
  const float* row = W + size_t(c < H ? c : 0) * N;
#pragma unroll
  for (int q = 0; q < 4; ++q)
    Op::put(wn[16 * s + c], q, load_quad<false>(row, 16 * s + 4 * q, N, c < H));
}

// next.a = the tile's spikes times next.W^T, for the block's rows: the forward's fragments with
// the spikes as A (lane (g, t) four consecutive neurons of each of its rows, zeros past N) and
// two n8 tiles of the layer above's neurons. After the time loops and a barrier; the spikes and
// weights are rounded to the precision's operands, as cuBLAS would take them.
template <class Op, int NT>
NMSNN_NOINLINE __device__ void next_layer_product(const NextLayerProduct& next, int T, int B,
                                                  long long M, int N, long long p_block,
                                                  const uint32_t (*wn)[Op::kRowWords]) {
  extern __shared__ __align__(16) float lif_tile[];
  constexpr int pitch = lif_tile_pitch(8 * NT);
  const int warp = threadIdx.x >> 5, g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
  float acc[kMmaRowTiles][2][4];
  zero_accumulators(acc);
  for (int s = 0; s < (N + 15) / 16; ++s) {
    float v[4][4];
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const float* row = lif_tile + (32 * warp + 16 * (r >> 1) + 8 * (r & 1) + g) * pitch;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int n = 16 * s + 4 * t + e;
        v[r][e] = n < N ? row[n] : 0.0f;
      }
    }
    Op::template multiply<2>(acc, v, wn + 16 * s);
  }
  __syncthreads();  // the CUDA emulation applies a warp's mma.sync at the next barrier
#pragma unroll
  for (int i = 0; i < kMmaRowTiles; ++i)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const long long p = p_block + 32 * warp + 16 * i + 8 * h + g;
      if (p >= M) continue;
      float* row = next.a + (size_t)((p % T) * B + p / T) * next.H;
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int c = 8 * j + 2 * t;
        if (c < next.H) row[c] = acc[i][j][2 * h];
        if (c + 1 < next.H) row[c + 1] = acc[i][j][2 * h + 1];
      }
    }
}

// W's arranged tiles for the forward on wgmma: for each slice of 8 NT neurons (gridDim.y) and
// group of 16 features (4 quads; gridDim.x = ceil(K / 16) + 1, the last all zeros, which the
// forward's last prefetch reads), the words of a stage in the layout and precision the forward
// stages them (Op::put_core of the group's quads t = 0 .. 3: the same values as the forward's own
// staging, rounded once here instead of once per block and stage).
template <class Op, int NT>
__global__ void __launch_bounds__(kMmaThreads)
masked_linear_weight_tiles_kernel(const float* W, int N, int K, uint32_t* tiles) {
  constexpr int kNeurons = 8 * NT;
  uint32_t* stage =
      tiles + ((size_t)blockIdx.y * gridDim.x + blockIdx.x) * kNeurons * Op::kRowWords;
  const int n0 = blockIdx.y * kNeurons;
  for (int e = threadIdx.x; e < kNeurons * 4; e += kMmaThreads) {
    const int n = n0 + e / 4, t = e & 3;
    const int k = 4 * (4 * int(blockIdx.x) + t);
    Op::put_core(stage, e / 4, t, load_quad<false>(W + (size_t)(n < N ? n : 0) * K, k, K, n < N));
  }
}

// grid (ceil(M / 128), ceil(N / (8 NT))): block (x, y) computes out for neurons 8 NT y .. and
// rows 128x .. 128x + 127 taken sample-major (row p is step p % T of sample p / T, out's row
// (p % T) B + p / T), so that a block holds one sample's steps (T = 128: exactly one) and its
// live quads are that sample's. The loop has no branch but its trip count: rows past M and the
// list's padding make their Philox blocks anyway (at most one partial stage) and multiply them
// by 0, and neurons past N are multiplied as zero weights, which keeps the issue count per stage
// the counted one (scripts/sass_loop_counts.sh).
//
// kLif: the layer's time loop fused in (masked_linear_lif_forward). The block's rows are then
// whole samples (T divides 128) and its slice every neuron (N <= 128), so the tile of a it has
// made is its neurons' whole current: it goes to shared memory instead of out, and one thread a
// (sample, neuron) runs lif_neuron.cuh's loop on it. The main loop is the same code.
//
// kWarpSample (wgmma only, T % 32 == 0: W1's): each warp's 32 rows are steps of one sample, so a
// lane's four rows share their x quad, loaded and scaled once a stage instead of once a row; and
// with `tiles` given, a chunk whose quads are all live copies W's stages from the arranged tiles
// (only here: with a pointer to x a row, the NT = 16 kernels would spill).
template <class Op, int NT, bool kVec, bool kLif, bool kWarpSample>
__global__ void __launch_bounds__(kMmaThreads, 2)
masked_linear_forward_mma_kernel(NoiseKey key, const float* x, int T, int B, int K, long long M,
                                 const float* W, int N, const uint32_t* tiles, float* out,
                                 LifTail tail) {
#if defined(__CUDA_ARCH__) && !defined(NMSNN_WGMMA_DEVICE)
  if constexpr (Op::kWgmma) {  // no wgmma in this architecture's code: never launched here
    __trap();
    return;
  }
#endif
  constexpr int kNeurons = 8 * NT;
  constexpr int kQuads = kNeurons * 4;  // of a stage of W
  constexpr int kQuadsPerThread = (kQuads + kMmaThreads - 1) / kMmaThreads;
  __shared__ __align__(128) uint32_t ws[2][kNeurons][Op::kRowWords];
  __shared__ QuadList list;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int n0 = blockIdx.y * kNeurons;
  const PhiloxRoundKeys keys = noise_round_keys(key);

  // This lane's four rows: r = 2i + h is row g + 8h of row tile i. A row past M still gets a
  // place (the last row's), so its loads stay in bounds.
  const long long p_block = (long long)blockIdx.x * kMmaRows;
  const long long p_warp = p_block + 32 * warp;
  MaskRow rows[4];
  bool in_range[4];
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const long long p = p_warp + 16 * (r >> 1) + 8 * (r & 1) + g;
    in_range[r] = p < M;
    const long long pc = p < M ? p : M - 1;
    rows[r].set(key, x, K, uint32_t(pc % T), uint32_t(pc / T));
  }
  const int b_lo = int(p_block / T);
  const int b_hi = int(((p_block + kMmaRows < M ? p_block + kMmaRows : M) - 1) / T);

  // The stage's W quads this thread stages: quad e = tid + 128 u is neuron n0 + e / 4 at the
  // stage's live quad e % 4 = t, the same one as the lane's masked inputs.
  float4 w_next[kQuadsPerThread];
  auto fetch_w = [&](int s) {
    const int k = 4 * list.quad[4 * s + t];
#pragma unroll
    for (int u = 0; u < kQuadsPerThread; ++u) {
      const int e = threadIdx.x + kMmaThreads * u, n = n0 + e / 4;
      w_next[u] = load_quad<kVec>(W + (size_t)(n < N ? n : 0) * K, k, K, e < kQuads && n < N);
    }
  };
  auto put_w = [&](uint32_t (*stage)[Op::kRowWords]) {
#pragma unroll
    for (int u = 0; u < kQuadsPerThread; ++u) {
      const int e = threadIdx.x + kMmaThreads * u;
      if constexpr (Op::kWgmma) {
        if (e < kQuads) Op::put_core(&stage[0][0], e / 4, e & 3, w_next[u]);
      } else {
        if (e < kQuads) Op::put(stage[e / 4], e & 3, w_next[u]);
      }
    }
    if constexpr (Op::kWgmma) wgmma_fence_shared();  // the instruction reads it next
  };
  // The same from W's arranged tiles (wgmma, `tiles` given, a chunk whose quads are all live):
  // stage s is the tiles' group c0 / 4 + s, already in the stage's layout and precision, so a
  // thread copies 16-byte pieces (kStagePieces in all) instead of loading, rounding and
  // scattering W's quads.
  constexpr int kStageWords = kNeurons * Op::kRowWords;
  constexpr int kStagePieces = kStageWords / 4;
  constexpr int kPiecesPerThread = (kStagePieces + kMmaThreads - 1) / kMmaThreads;
  uint4 piece_next[kPiecesPerThread];
  const uint4* group_at = nullptr;  // the chunk's first group
  auto fetch_tile = [&](int s) {
    const uint4* src = group_at + (size_t)s * kStagePieces;
#pragma unroll
    for (int u = 0; u < kPiecesPerThread; ++u) {
      const int e = threadIdx.x + kMmaThreads * u;
      if (e < kStagePieces) piece_next[u] = src[e];
    }
  };
  auto put_tile = [&](uint32_t (*stage)[Op::kRowWords]) {
    uint4* dst = reinterpret_cast<uint4*>(&stage[0][0]);
#pragma unroll
    for (int u = 0; u < kPiecesPerThread; ++u) {
      const int e = threadIdx.x + kMmaThreads * u;
      if (e < kStagePieces) dst[e] = piece_next[u];
    }
    if constexpr (Op::kWgmma) wgmma_fence_shared();
  };

  // Row r of the lane's masked inputs at quad q (the list's padding names a quad past K:
  // zeros). Made a stage ahead (MasksAhead) where the 16 registers that takes are free: up to
  // 104 neurons with mma.sync (NT 16 spills with them), always with wgmma (no B fragments).
  constexpr bool kAhead = Op::kWgmma || NT <= 13;
  auto mask_row = [&](float (&v)[4], int r, int q) {
    const float4 m = masked_quad4<kVec>(keys, rows[r], K, q, in_range[r]);
    v[0] = m.x, v[1] = m.y, v[2] = m.z, v[3] = m.w;
  };
  // Stage s's live quad for this lane's masks (lane t takes the stage's quad t).
  auto stage_quad = [&](int s) { return 4 * list.quad[4 * s + t]; };
  // All four rows at quad q.
  auto make_masks = [&](float (&v)[4][4], int q) {
    if constexpr (kWarpSample) {
      // The warp's rows are all in range or all past M (M = T B, a multiple of 32).
      const float4 xs = scaled_quad(load_quad<kVec>(rows[0].xb, q, K, in_range[0]));
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const float4 m = masked_quad_of(keys, rows[r], q, xs);
        v[r][0] = m.x, v[r][1] = m.y, v[r][2] = m.z, v[r][3] = m.w;
      }
    } else {
#pragma unroll
      for (int r = 0; r < 4; ++r) mask_row(v[r], r, q);
    }
  };

  float acc[kMmaRowTiles][NT][4];
  zero_accumulators(acc);

  // One chunk's stages, W staged from its quads (kTiles false) or copied from the tiles.
  auto run_chunk = [&](auto tiles_tag, int stages) {
    constexpr bool kTiles = decltype(tiles_tag)::value;
    auto fetch = [&](int s) {
      if constexpr (kTiles) fetch_tile(s);
      else fetch_w(s);
    };
    auto put = [&](uint32_t (*stage)[Op::kRowWords]) {
      if constexpr (kTiles) put_tile(stage);
      else put_w(stage);
    };
    // Double-buffered as mainloop: stage s multiplies from ws[s % 2] while W of stage s + 1 is
    // fetched, then written to the other buffer; one barrier per stage. With kAhead the masked
    // inputs of stage s + 1 are made during stage s's product too.
    fetch(0);
    put(ws[0]);
    float v[4][4];
    if constexpr (kAhead) make_masks(v, stage_quad(0));
    __syncthreads();
    for (int s = 0; s < stages; ++s) {
      // Past the live quads (the last stage) it loads nothing and makes zeros; the tiles have a
      // group past the last for it.
      fetch(s + 1);
      if constexpr (Op::kWgmma) {
        // The product runs on the tensor cores while this warp makes the next stage's masks
        // and stages its W into the other buffer (last read by stage s - 1's product, which
        // has completed); then it waits for the product before the barrier.
        const int q_next = stage_quad(s + 1);
        Op::template multiply_async<NT>(acc, v, &ws[s & 1][0][0]);
        float v_next[4][4];
        make_masks(v_next, q_next);
        put(ws[(s + 1) & 1]);
        wgmma_wait_all();
        take_masks(v, v_next);
        __syncthreads();
        continue;
      } else if constexpr (kAhead) {
        const int q_next = stage_quad(s + 1);  // likewise: a quad past K, zeros
        float v_next[4][4];
        Op::template multiply<NT>(acc, v, ws[s & 1], masks_ahead<NT>([&](int r) {
                                    mask_row(v_next[r], r, q_next);
                                  }));
        take_masks(v, v_next);
      } else {
#pragma unroll
        for (int r = 0; r < 4; ++r) mask_row(v[r], r, stage_quad(s));
        Op::template multiply<NT>(acc, v, ws[s & 1]);
      }
      put(ws[(s + 1) & 1]);  // that buffer was last read in stage s - 1, before the barrier
      __syncthreads();
    }
  };

  const int quads = (K + 3) / 4;
  const int groups = (quads + 3) / 4;
  for (int c0 = 0; c0 < quads; c0 += kChunkQuads) {
    const int live = live_quads<kVec>(list, x, K, b_lo, b_hi, c0);
    const int stages = (live + 3) / 4;
    if (stages == 0) continue;  // the same in every thread
    if constexpr (Op::kWgmma && kWarpSample) {
      // Every quad of the chunk live: stage s is the tiles' group c0 / 4 + s.
      if (tiles && live == (quads - c0 < kChunkQuads ? quads - c0 : kChunkQuads)) {
        group_at = reinterpret_cast<const uint4*>(
            tiles + ((size_t)blockIdx.y * (groups + 1) + c0 / 4) * kStageWords);
        run_chunk(std::true_type{}, stages);
        continue;
      }
    }
    run_chunk(std::false_type{}, stages);
  }

  if constexpr (kLif) {
    // The accumulators to the tile, then its time loops.
    extern __shared__ __align__(16) float lif_tile[];
    constexpr int pitch = lif_tile_pitch(8 * NT);
#pragma unroll
    for (int i = 0; i < kMmaRowTiles; ++i)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float* row = lif_tile + (32 * warp + 16 * i + 8 * h + g) * pitch;
#pragma unroll
        for (int j = 0; j < NT; ++j)
          *reinterpret_cast<float2*>(row + 8 * j + 2 * t) =
              make_float2(acc[i][j][2 * h], acc[i][j][2 * h + 1]);
      }
    // ws is free since the main loop's last barrier: the layer above's weights go there
    // (ceil(N / 16) stages of 16 rows).
    static_assert(2 * kNeurons >= 16 * ((kNeurons + 15) / 16), "ws holds the weights above");
    const bool next = tail.next.a != nullptr;  // the same in every thread
    auto* wn = reinterpret_cast<uint32_t(*)[Op::kRowWords]>(&ws[0][0][0]);
    if (next) stage_next_weights<Op>(tail.next.W, tail.next.H, N, wn);
    __syncthreads();
    if (!next) {
      lif_tail_loops<NT, false>(tail, T, B, N, p_block);
      return;
    }
    lif_tail_loops<NT, true>(tail, T, B, N, p_block);
    __syncthreads();
    next_layer_product<Op, NT>(tail.next, T, B, M, N, p_block, wn);
    return;
  }
  // c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1) of each tile, straight to out.
  const bool pairs = N % 2 == 0;  // then out[m, n .. n+1] is one 8-byte store
#pragma unroll
  for (int i = 0; i < kMmaRowTiles; ++i)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const long long p = p_warp + 16 * i + 8 * h + g;
      if (p >= M) continue;
      float* row = out + (size_t)((p % T) * B + p / T) * N;
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const int n = n0 + 8 * j + 2 * t;
        const float lo = acc[i][j][2 * h], hi = acc[i][j][2 * h + 1];
        if (pairs && n + 1 < N)
          *reinterpret_cast<float2*>(row + n) = make_float2(lo, hi);
        else {
          if (n < N) row[n] = lo;
          if (n + 1 < N) row[n + 1] = hi;
        }
      }
    }
}

// ---- the weight gradient in TF32 and BF16: mma.sync, the masked input made in registers --------
// mma's M is the neurons (MT m16 tiles: 4, 7 or 8, so N = 100 pads to 112), its N the features,
// its K the rows m of the sum. A block of 4 warps covers all 16 MT neurons of its slice and 128
// features, each warp a strip of 32 (four n8 tiles), over its split's rows in stages of 16. dU
// is staged in shared memory as ready A operands, shared by the 4 warps; each lane makes exactly
// the masked inputs its B fragments hold.
//
// The permutations that suit Philox: the features of a strip are mapped to its columns so that
// column g of n8 tile j is feature k_w + 4g + j; lane (g, t) then holds, for each of its rows,
// the features k_w + 4g .. +3 (one Philox block). The rows of a stage: TF32 logical row t of step
// h is row 4t + 2h, row t + 4 is 4t + 2h + 1; BF16 rows 2t, 2t+1 are 4t, 4t+1 and 2t+8, 2t+9 are
// 4t+2, 4t+3. So lane (g, t) holds rows 4t .. 4t+3 of its B fragments: four Philox blocks per
// stage.
//
// The staged dU: for each m16 tile i and g, "units" of four words that are exactly the four A
// registers of a lane (g, .): TF32 unit p = 2t + h holds dU at (row 2p, neuron g), (2p, g + 8),
// (2p + 1, g), (2p + 1, g + 8) (a0 .. a3 of step h), BF16 unit t the pairs of rows 4t, 4t+1 and
// 4t+2, 4t+3 of neurons g and g + 8. A lane's operands are then one 16-byte load each, already in
// the registers mma wants (with dU^T rows the compiler moved ~4 registers per operand into
// place). Rows of a g: 36 words in TF32 (8 units + 4, so g and g + 1 start 4 banks apart), 16 in
// BF16; a read phase of 8 lanes (2 g x 4 t) and a staging phase of 8 threads (8 g, or 2 g x 4
// units) then touch 8 distinct 16-byte bank groups.
struct Tf32Wgrad {
  static constexpr bool kWgmma = false;
  static constexpr int kUnits = 8, kGWords = 36, kValues = 4;
  // The live weight gradient's shapes for MT m16 tiles of neurons: the slice's neurons and the
  // words of a stage of dU.
  static constexpr int neurons(int mt) { return 16 * mt; }
  static constexpr int stage_words(int mt) { return mt * 8 * kGWords; }
  // Item e of a stage's staging: unit u of (tile i, g), g fastest (coalesced along neurons).
  __device__ static void item(int e, int& i, int& g, int& u) {
    g = e & 7;
    u = (e >> 3) & 7;
    i = e >> 6;
  }
  // Value v of unit u: its row in the stage and whether it is neuron g + 8.
  __device__ static int row(int u, int v) { return 2 * u + (v >> 1); }
  __device__ static int upper(int v) { return v & 1; }
  __device__ static uint4 operands(const float (&d)[kValues]) {
    return uint4{tf32_operand(d[0]), tf32_operand(d[1]), tf32_operand(d[2]), tf32_operand(d[3])};
  }
  // The same units from whole rows (the weight gradient by sample): dU at rows r, r + 1 of the
  // stage (r even; v[h] is row r + h) and neurons nl .. nl + 3 of the slice (nl a multiple of
  // 4). Neuron n is (i, g) = (n / 16, n % 8), upper (n % 16) / 8, and rows r, r + 1 are values 0
  // and 2 (+ upper) of unit r / 2; unit_word is the word of (r, nl), and the neurons after nl
  // are the next rows of g (kGWords words on): eight stores at fixed offsets.
  __device__ static int unit_word(int r, int nl) {
    return (8 * (nl / 16) + nl % 8) * kGWords + 2 * r + (nl % 16) / 8;
  }
  __device__ static void scatter(uint32_t* at, const float4 (&v)[2]) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      at[0 * kGWords + 2 * h] = tf32_operand(v[h].x);
      at[1 * kGWords + 2 * h] = tf32_operand(v[h].y);
      at[2 * kGWords + 2 * h] = tf32_operand(v[h].z);
      at[3 * kGWords + 2 * h] = tf32_operand(v[h].w);
    }
  }
  // acc(i, j) += the stage's product: A from the staged units, B from v[e][j], the masked input
  // at row 4t + e and feature k_w + 4g + j.
  // after(i) runs after m16 tile i's instructions (see MasksAhead).
  template <int MT, class After = NoHook>
  __device__ static void multiply(float (&acc)[MT][4][4], const float (&v)[4][4],
                                  const uint32_t* du, After after = {}) {
    const int g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
    uint32_t b[4][2][2];  // [tile j][step h]
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        b[j][h][0] = tf32_operand(v[2 * h][j]);
        b[j][h][1] = tf32_operand(v[2 * h + 1][j]);
      }
#pragma unroll
    for (int i = 0; i < MT; ++i) {
      const uint32_t* units = du + (8 * i + g) * kGWords + 8 * t;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const uint4 q = *reinterpret_cast<const uint4*>(units + 4 * h);
        const uint32_t a[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) mma_tf32_m16n8k8(acc[i][j], a, b[j][h]);
      }
      after(i);
    }
  }
};

struct Bf16Wgrad {
  static constexpr bool kWgmma = false;
  static constexpr int kUnits = 4, kGWords = 16, kValues = 8;
  static constexpr int neurons(int mt) { return 16 * mt; }
  static constexpr int stage_words(int mt) { return mt * 8 * kGWords; }
  // Unit fastest, then g: a staging phase of 8 threads writes 2 g x 4 units, 128 distinct bytes.
  __device__ static void item(int e, int& i, int& g, int& u) {
    u = e & 3;
    g = (e >> 2) & 7;
    i = e >> 5;
  }
  // Values in register order: (4u, g), (4u+1, g), (4u, g+8), (4u+1, g+8), then rows 4u+2, 4u+3.
  __device__ static int row(int u, int v) { return 4 * u + (v & 1) + 2 * (v >> 2); }
  __device__ static int upper(int v) { return (v >> 1) & 1; }
  __device__ static uint4 operands(const float (&d)[kValues]) {
    return uint4{pack_bf16x2(d[0], d[1]), pack_bf16x2(d[2], d[3]), pack_bf16x2(d[4], d[5]),
                 pack_bf16x2(d[6], d[7])};
  }
  // As Tf32Wgrad::scatter: rows r, r + 1 (r even) of a neuron are one word of unit r / 4 (word
  // (r % 4) / 2, + upper), the pair packed: four stores.
  __device__ static int unit_word(int r, int nl) {
    return (8 * (nl / 16) + nl % 8) * kGWords + 4 * (r / 4) + (nl % 16) / 8 + (r % 4);
  }
  __device__ static void scatter(uint32_t* at, const float4 (&v)[2]) {
    at[0 * kGWords] = pack_bf16x2(v[0].x, v[1].x);
    at[1 * kGWords] = pack_bf16x2(v[0].y, v[1].y);
    at[2 * kGWords] = pack_bf16x2(v[0].z, v[1].z);
    at[3 * kGWords] = pack_bf16x2(v[0].w, v[1].w);
  }
  template <int MT, class After = NoHook>
  __device__ static void multiply(float (&acc)[MT][4][4], const float (&v)[4][4],
                                  const uint32_t* du, After after = {}) {
    const int g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
    uint32_t b[4][2];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      b[j][0] = pack_bf16x2(v[0][j], v[1][j]);
      b[j][1] = pack_bf16x2(v[2][j], v[3][j]);
    }
#pragma unroll
    for (int i = 0; i < MT; ++i) {
      const uint4 q = *reinterpret_cast<const uint4*>(du + (8 * i + g) * kGWords + 4 * t);
      const uint32_t a[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
      for (int j = 0; j < 4; ++j) mma_bf16_m16n8k16(acc[i][j], a, b[j]);
      after(i);
    }
  }
};

// The weight gradient by sample on wgmma (sm_90a): the product taken the other way round,
// dW^T[features, neurons] = X^T dU, so that the masked input, made in registers, is wgmma's A
// (M = features) and dU its B, from shared memory. A warp keeps its group's 8 quads: lane (g, t)
// makes the same four Philox blocks as for mma.sync (its group's quad g at stage rows 4t ..
// 4t + 3), and its A rows g and g + 8 of the two m64 tiles (i = 0, 1) are that quad's features
// 2i and 2i + 1. The k order of the stage's rows is mma.sync's (TF32 step h: k = t is row
// 4t + 2h, k = t + 4 row 4t + 2h + 1; BF16 k = 2t + e + 8c is row 4t + 2c + e), so in the CUDA
// emulation the sums are bit for bit those of the mma.sync kernel. D per warp: 2 x NT x 4
// accumulators (NT n8 tiles of neurons: 8, 13 or 16, so N = 100 pads to 104).
//   dU's stage per sample: core matrices of 8 neurons x 16 bytes along the rows, [n / 8][row %
//   4][n % 8][row / 4] words for TF32 (step h is row % 4 = 2h, 2h + 1: lbo 128 bytes, sbo 512)
//   and [n / 8][(row % 4) / 2][n % 8][row / 4] with rows 2p, 2p + 1 paired in a word for BF16
//   (lbo 128, sbo 256). unit_word and scatter give the staging of Tf32Wgrad's items (rows r,
//   r + 1 and neurons nl .. nl + 3) the same interface.
//   Warps of one warpgroup issue each wgmma together, but a round's groups may belong to
//   different samples, whose dU differ: the warpgroup issues one product per sample among its
//   warps, each warp with its own A for its sample's and zeros for the others' (+0 to its sums;
//   the tensor work is not the bound). A warp without a group issues zeros and makes no masks.
struct Tf32WgradWgmma {
  static constexpr bool kWgmma = true;
  static constexpr int kSteps = 2;  // k8 steps a stage
  static constexpr int neurons(int nt) { return 8 * nt; }
  static constexpr int stage_words(int nt) { return 8 * nt * 16; }
  __device__ static int unit_word(int r, int nl) {
    return 128 * (nl / 8) + 32 * (r % 4) + 4 * (nl % 8) + r / 4;
  }
  __device__ static void scatter(uint32_t* at, const float4 (&v)[2]) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      at[32 * h + 0] = tf32_operand(v[h].x);
      at[32 * h + 4] = tf32_operand(v[h].y);
      at[32 * h + 8] = tf32_operand(v[h].z);
      at[32 * h + 12] = tf32_operand(v[h].w);
    }
  }
  // v[e][j]: the masked input at stage row 4t + e, feature j of the lane's quad; a[i][h]: step
  // h's A fragment of m64 tile i.
  __device__ static void fragments(const float (&v)[4][4], uint32_t (&a)[2][2][4]) {
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        a[i][h][0] = tf32_operand(v[2 * h][2 * i]);
        a[i][h][1] = tf32_operand(v[2 * h][2 * i + 1]);
        a[i][h][2] = tf32_operand(v[2 * h + 1][2 * i]);
        a[i][h][3] = tf32_operand(v[2 * h + 1][2 * i + 1]);
      }
  }
  // acc += this warp's A (mine: real, else zeros) x the stage of dU at `stage`. The operands
  // are chosen before the fence (registers written after it would make ptxas add its own).
  template <int NT>
  __device__ static void issue(float (&acc)[2][NT][4], const uint32_t (&a)[2][2][4], bool mine,
                               const uint32_t* stage) {
    uint32_t op[2][2][4];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int r = 0; r < 4; ++r) op[i][h][r] = mine ? a[i][h][r] : 0u;
    wgmma_fence();
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int i = 0; i < 2; ++i) wgmma_m64<NT>(acc[i], op[i][h], stage + 64 * h, 128, 512, false);
  }
};

struct Bf16WgradWgmma {
  static constexpr bool kWgmma = true;
  static constexpr int kSteps = 1;
  static constexpr int neurons(int nt) { return 8 * nt; }
  static constexpr int stage_words(int nt) { return 8 * nt * 8; }
  __device__ static int unit_word(int r, int nl) {
    return 64 * (nl / 8) + 32 * ((r % 4) / 2) + 4 * (nl % 8) + r / 4;
  }
  __device__ static void scatter(uint32_t* at, const float4 (&v)[2]) {
    at[0] = pack_bf16x2(v[0].x, v[1].x);
    at[4] = pack_bf16x2(v[0].y, v[1].y);
    at[8] = pack_bf16x2(v[0].z, v[1].z);
    at[12] = pack_bf16x2(v[0].w, v[1].w);
  }
  __device__ static void fragments(const float (&v)[4][4], uint32_t (&a)[2][1][4]) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      a[i][0][0] = pack_bf16x2(v[0][2 * i], v[1][2 * i]);
      a[i][0][1] = pack_bf16x2(v[0][2 * i + 1], v[1][2 * i + 1]);
      a[i][0][2] = pack_bf16x2(v[2][2 * i], v[3][2 * i]);
      a[i][0][3] = pack_bf16x2(v[2][2 * i + 1], v[3][2 * i + 1]);
    }
  }
  template <int NT>
  __device__ static void issue(float (&acc)[2][NT][4], const uint32_t (&a)[2][1][4], bool mine,
                               const uint32_t* stage) {
    uint32_t op[2][4];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int r = 0; r < 4; ++r) op[i][r] = mine ? a[i][0][r] : 0u;
    wgmma_fence();
#pragma unroll
    for (int i = 0; i < 2; ++i) wgmma_m64<NT>(acc[i], op[i], stage, 128, 256, true);
  }
};

// grid (ceil(K / 128), ceil(N / (16 MT)), splits): block (x, y, z) computes the partial sum of
// dW[16 MT y .., 128x ..] over rows [z rows, (z+1) rows) into partial[z]. As in the forward, the
// loop has no branch but its trip count (and a warp whose whole strip is past K skips its part).
template <class Op, int MT, bool kVec>
__global__ void __launch_bounds__(kMmaThreads, 2)
masked_linear_wgrad_mma_kernel(NoiseKey key, const float* x, int B, int K, long long M,
                               long long rows, const float* dU, int N, float* partial) {
  constexpr int kNeurons = 16 * MT;
  constexpr int kStageWords = MT * 8 * Op::kGWords;
  constexpr int kItems = MT * 8 * Op::kUnits;
  constexpr int kItemsPerThread = (kItems + kMmaThreads - 1) / kMmaThreads;
  __shared__ __align__(16) uint32_t du[2][kStageWords];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int n0 = blockIdx.y * kNeurons;
  const int k_w = blockIdx.x * 128 + 32 * warp;  // the warp's strip
  const int k_lane = k_w + 4 * g;                // the lane's features k_lane .. +3
  const bool strip_live = k_w < K;               // the same for the whole warp
  const long long r_begin = (long long)blockIdx.z * rows;
  const long long r_end = r_begin + rows < M ? r_begin + rows : M;
  const PhiloxRoundKeys keys = noise_round_keys(key);

  // Staging: each thread's items, their neurons' columns of dU (or -1 past N) and their values.
  float staged[kItemsPerThread][Op::kValues];
  auto fetch_du = [&](long long m0) {
    const long long left64 = r_end - m0;
    const int left = left64 < kDepth ? int(left64) : kDepth;  // rows of this stage (<= 0: none)
    const float* rows_at = dU + (size_t)(m0 < r_end ? m0 : r_begin) * N;
#pragma unroll
    for (int k = 0; k < kItemsPerThread; ++k) {
      const int e = threadIdx.x + kMmaThreads * k;
      int i, gi, u;
      Op::item(e, i, gi, u);
      const int n = n0 + 16 * i + gi;
#pragma unroll
      for (int v = 0; v < Op::kValues; ++v) {
        const int r = Op::row(u, v), nv = n + 8 * Op::upper(v);
        staged[k][v] = e < kItems && r < left && nv < N ? rows_at[(size_t)r * N + nv] : 0.0f;
      }
    }
  };
  auto put_du = [&](uint32_t* stage) {
#pragma unroll
    for (int k = 0; k < kItemsPerThread; ++k) {
      const int e = threadIdx.x + kMmaThreads * k;
      int i, gi, u;
      Op::item(e, i, gi, u);
      if (e < kItems)
        *reinterpret_cast<uint4*>(stage + (8 * i + gi) * Op::kGWords + 4 * u) =
            Op::operands(staged[k]);
    }
  };

  // The lane's rows of the stage at hand: r_begin + 16 s + 4t + e, e < 4, stepped along.
  MaskRow at[4];
#pragma unroll
  for (int e = 0; e < 4; ++e) at[e].set(key, x, B, K, r_begin + 4 * t + e);
  const MaskRow::Step step{uint32_t(kDepth / B), uint32_t(kDepth % B)};

  float acc[MT][4][4];
  zero_accumulators(acc);

  const long long stages = (r_end - r_begin + kDepth - 1) / kDepth;
  fetch_du(r_begin);
  put_du(du[0]);
  __syncthreads();
  // Row e of the lane's masked inputs (rows past r_end: zeros), made a stage ahead
  // (MasksAhead): the rows are advanced before the stage's product.
  auto mask_row = [&](float (&v)[4], int e, long long left) {
    const float4 m = masked_quad4<kVec>(keys, at[e], K, k_lane, 4 * t + e < left);
    v[0] = m.x, v[1] = m.y, v[2] = m.z, v[3] = m.w;
  };
  float v[4][4];
  if (strip_live)
#pragma unroll
    for (int e = 0; e < 4; ++e) mask_row(v[e], e, r_end - r_begin);
  for (long long s = 0; s < stages; ++s) {
    const long long m0 = r_begin + s * kDepth;
    fetch_du(m0 + kDepth);  // past r_end (the last stage) it loads nothing and makes zeros
    if (strip_live) {
      // The keyed rows' lookup is a branch that nvcc duplicates the code around (loop
      // unswitching); here that is these few instructions only.
#pragma unroll
      for (int e = 0; e < 4; ++e) at[e].advance(key, x, B, K, step);
      const long long left_next = r_end - (m0 + kDepth);
      float v_next[4][4];
      Op::template multiply<MT>(acc, v, du[s & 1], masks_ahead<MT>([&](int e) {
                                  mask_row(v_next[e], e, left_next);
                                }));
      take_masks(v, v_next);
    }
    put_du(du[(s + 1) & 1]);  // that buffer was last read in stage s - 1, before the barrier
    __syncthreads();
  }
  if (!strip_live) return;

  // Tile (i, j): c0 (neuron g, column 2t) is feature k_w + 8t + j, c1 (column 2t + 1) feature
  // k_w + 8t + 4 + j; c2, c3 the same for neuron g + 8. Over j they are 4 consecutive features.
  float* part = partial + (size_t)blockIdx.z * N * K;
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int n = n0 + 16 * i + 8 * h + g;
      if (n >= N) continue;
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int k = k_w + 8 * t + 4 * half;
        float* dst = part + (size_t)n * K + k;
        const float q[4] = {acc[i][0][2 * h + half], acc[i][1][2 * h + half],
                            acc[i][2][2 * h + half], acc[i][3][2 * h + half]};
        if (kVec && k < K)
          *reinterpret_cast<float4*>(dst) = make_float4(q[0], q[1], q[2], q[3]);
        else if (!kVec)
#pragma unroll
          for (int j = 0; j < 4; ++j)
            if (k + j < K) dst[j] = q[j];
      }
    }
}

// ---- the weight gradient over live quads (TF32 and BF16): sample-major, a shared-memory tile ---
// The sum over rows is taken sample by sample, so a sample's zero quads (all four inputs 0,
// whose masked inputs are 0 at every step) can be left out as the forward leaves them out: on
// unit-scaled MNIST a digit has 28% of its quads live. The fragments are those of the kernel
// above (Tf32Wgrad / Bf16Wgrad: a warp's 8 column quads share its rows), so a warp's columns
// are now 8 live quads of one sample, a "group", which change from sample to sample: the
// accumulators of a group's T steps are added into a tile of dW over the block's range of
// features in shared memory, and the tile goes out once at the end.
//   block  8 warps x a range of kRangeQuads quads (256 features: the 8 groups of a dense
//          sample) x all 16 MT neurons of a slice, over a split of whole samples;
//   round  up to kRoundSamples consecutive samples whose live quads in the range make at most
//          8 groups (a dense sample makes exactly 8, alone); warp w takes the round's group w,
//          over its sample's steps in stages of 16 rows, dU staged as in the kernel above (one
//          stage buffer per sample of the round, shared by that sample's warps);
//   adds   the round's samples in order, one barrier each: a sample's groups are disjoint, so
//          no two warps add to one element at once, and each element receives its samples'
//          sums in sample order whatever the warps did: the tile is the same on every run.
// A warp without a group in a round waits at its barriers (on wgmma it issues its warpgroup's
// products with zeros). Positions past a sample's live quads (the last group's padding) name a
// quad past K, whose inputs load as 0.
constexpr int kLiveWarps = 8;
constexpr int kLiveThreads = 32 * kLiveWarps;
constexpr int kRangeQuads = 64;
constexpr int kRangeFeatures = 4 * kRangeQuads;
constexpr int kRoundSamples = 4;
constexpr int kTileStride = kRangeFeatures + 4;  // floats a tile row: 16-byte aligned rows

// What a round holds, in shared memory: its samples, each one's live quads (positions in the
// range, in order) and the first group of each (prefix of group counts).
struct LiveRound {
  int live[kRoundSamples][kRangeQuads];  // local quad of the p-th live quad, p < count
  int scan[2][kLiveThreads];             // the segmented prefix sum of the live flags
  int count[kRoundSamples];              // live quads of each candidate sample
};

// The round that starts at sample b_next: every thread of the block calls it (it has barriers)
// and gets the same plan. The candidates' live quads: thread (c, lq) = (tid / 64, tid % 64)
// looks at quad q0 + lq of sample b_next + c; a prefix sum over each candidate's 64 flags places
// them in round.live. Then the round takes candidates in order while their groups fit the 8
// warps (the first always does: a sample has at most kRangeQuads / 8 = 8 groups): sample c of
// the round has groups first[c] .. first[c + 1] - 1, which warps first[c] .. take.
struct RoundPlan {
  int slots = 0;                     // samples in the round
  int first[kRoundSamples + 1] = {}; // each one's first group; first[slots]: all the groups
  __device__ int slot_of(int warp) const {  // the sample of `warp`'s group, -1 without one
    int slot = -1;
#pragma unroll
    for (int c = 0; c < kRoundSamples; ++c)
      if (c < slots && warp >= first[c] && warp < first[c + 1]) slot = c;
    return slot;
  }
  // The samples with a group among warps w0 .. w0 + 3 (a warpgroup), as bits.
  __device__ unsigned samples_of(int w0) const {
    unsigned bits = 0;
#pragma unroll
    for (int c = 0; c < kRoundSamples; ++c)
      if (c < slots && first[c] < first[c + 1] && first[c] < w0 + 4 && first[c + 1] > w0)
        bits |= 1u << c;
    return bits;
  }
};
template <bool kVec>
__device__ RoundPlan plan_round(LiveRound& round, const float* x, int K, int q0, int b_next,
                                int b_end) {
  const int tid = threadIdx.x, quads = (K + 3) / 4;
  {
    const int c = tid / kRangeQuads, lq = tid % kRangeQuads, b = b_next + c, q = q0 + lq;
    bool live = false;
    if (b < b_end && q < quads) {
      const float4 v = load_quad<kVec>(x + (size_t)b * K, 4 * q, K, true);
      live = v.x != 0.0f || v.y != 0.0f || v.z != 0.0f || v.w != 0.0f;
    }
    round.scan[0][tid] = int(live);
    __syncthreads();
    int from = 0;
    for (int d = 1; d < kRangeQuads; d *= 2, from ^= 1) {
      const int v = round.scan[from][tid] + (lq >= d ? round.scan[from][tid - d] : 0);
      round.scan[from ^ 1][tid] = v;
      __syncthreads();
    }
    if (live) round.live[c][round.scan[from][tid] - 1] = lq;
    if (lq == kRangeQuads - 1) round.count[c] = round.scan[from][tid];
    __syncthreads();
  }
  RoundPlan plan;
  for (int c = 0; c < kRoundSamples && b_next + c < b_end; ++c) {
    const int gc = (round.count[c] + 7) / 8;
    if (plan.slots > 0 && plan.first[plan.slots] + gc > kLiveWarps) break;
    plan.first[plan.slots + 1] = plan.first[plan.slots] + gc;
    ++plan.slots;
  }
  return plan;
}

// Shared-memory bytes of the live weight gradient for `Tiles` tiles of neurons (MT m16 tiles
// with mma.sync, NT n8 tiles with wgmma): the tile and the stages.
template <class Op, int Tiles>
constexpr size_t live_wgrad_shared_bytes() {
  return size_t(Op::neurons(Tiles)) * kTileStride * sizeof(float) +
         size_t(2) * kRoundSamples * Op::stage_words(Tiles) * sizeof(uint32_t);
}

// grid (ceil(quads / kRangeQuads), slices of Op::neurons(Tiles), splits): block (x, y, z)
// computes the partial sum of dW[slice y, range x] over samples [z samples, (z+1) samples) into
// out[z]. Tiles: MT m16 tiles of neurons (mma.sync), or NT n8 tiles (Op::kWgmma).
template <class Op, int Tiles, bool kVec>
__global__ void __launch_bounds__(kLiveThreads, 1)
masked_linear_wgrad_live_kernel(NoiseKey key, const float* x, int T, int B, int K,
                                int samples, const float* dU, int N, float* out) {
#if defined(__CUDA_ARCH__) && !defined(NMSNN_WGMMA_DEVICE)
  if constexpr (Op::kWgmma) {  // no wgmma in this architecture's code: never launched here
    __trap();
    return;
  }
#endif
  constexpr int MT = Tiles;  // as mma.sync's m16 tiles (the accumulators below say which)
  constexpr int kNeurons = Op::neurons(Tiles);
  constexpr int kStageWords = Op::stage_words(Tiles);
  constexpr int kChunks = kNeurons / 4;       // 4 neurons an item
  constexpr int kSlotItems = 8 * kChunks;      // 8 pairs of rows
  constexpr int kPairItems = (kRoundSamples * kSlotItems + kLiveThreads - 1) / kLiveThreads;
  extern __shared__ __align__(16) float live_shared[];
  float* tile = live_shared;  // [kNeurons][kTileStride]
  uint32_t* stages = reinterpret_cast<uint32_t*>(live_shared + kNeurons * kTileStride);
  __shared__ LiveRound round;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int quads = (K + 3) / 4;
  const int q0 = blockIdx.x * kRangeQuads;
  const int n0 = blockIdx.y * kNeurons;
  const int b_begin = blockIdx.z * samples;
  const int b_end = b_begin + samples < B ? b_begin + samples : B;
  const PhiloxRoundKeys keys = noise_round_keys(key);

  for (int e = tid; e < kNeurons * kTileStride; e += kLiveThreads) tile[e] = 0.0f;

  // Stages rows 16 st .. 16 st + 15 of the round's samples as ready operands in Op's units: an
  // item is a pair of rows x 4 neurons of the slice, two loads along rows of dU (16 bytes each
  // with kVec, which here also means N % 4 == 0), its values stored by Op::scatter. A thread's
  // items are the same in every stage of a round, so where they read and write is found once a
  // round (place_items) and stepped along. Neurons past N and steps past T are staged as zeros.
  const size_t step_floats = (size_t)B * N;  // from one step of a sample's dU to the next
  const float* item_src[kPairItems];         // row 2 pair of the item's sample at stage 0
  int item_dst[kPairItems], item_row[kPairItems];  // stage word offset; 2 pair (-1: no item)
  int item_left[kPairItems];                 // neurons from the item's first to N
  auto place_items = [&](int b_round, int slots) {
#pragma unroll
    for (int k = 0; k < kPairItems; ++k) {
      const int e = tid + kLiveThreads * k;
      const int slot = e / kSlotItems, rest = e - slot * kSlotItems;
      const int pair = rest / kChunks, nl = 4 * (rest - pair * kChunks), n = n0 + nl;
      // A sample without a live quad in the range has no group to stage for.
      const bool mine = e < slots * kSlotItems && round.count[slot] > 0;
      item_row[k] = mine ? 2 * pair : -1;
      item_left[k] = N - n;
      item_src[k] = dU + ((size_t)(2 * pair) * B + (mine ? b_round + slot : 0)) * N +
                    (n < N ? n : 0);
      item_dst[k] = slot * kStageWords + Op::unit_word(2 * pair, nl);
    }
  };
  auto fetch_put_du = [&](int st, uint32_t* buffer) {
#pragma unroll
    for (int k = 0; k < kPairItems; ++k) {
      if (item_row[k] < 0) continue;
      const int step = 16 * st + item_row[k];
      const float* src = item_src[k] + (size_t)(16 * st) * step_floats;
      float4 v[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float* row = src + h * step_floats;
        const bool ok = step + h < T;
        const int left = item_left[k];
        if (kVec)
          v[h] = ok && left > 0 ? *reinterpret_cast<const float4*>(row) : make_float4(0, 0, 0, 0);
        else
          v[h] = make_float4(ok && left > 0 ? row[0] : 0.0f, ok && left > 1 ? row[1] : 0.0f,
                             ok && left > 2 ? row[2] : 0.0f, ok && left > 3 ? row[3] : 0.0f);
      }
      Op::scatter(buffer + item_dst[k], v);
    }
    if constexpr (Op::kWgmma) wgmma_fence_shared();  // the tensor cores read it next
  };

  const int stages_per_sample = (T + kDepth - 1) / kDepth;
  for (int b_next = b_begin; b_next < b_end;) {
    const RoundPlan plan = plan_round<kVec>(round, x, K, q0, b_next, b_end);
    const int slots = plan.slots, groups = plan.first[slots];
    const int my_slot = plan.slot_of(warp), my_group = my_slot >= 0 ? warp - plan.first[my_slot] : 0;
    if (groups == 0) {  // no live quad in the range: nothing to add (the same in every thread)
      b_next += slots;
      continue;
    }
    // The lane's quads: position 8 my_group + g for its masks, 8 my_group + 2t + h for its
    // accumulators' columns (-1: padding, past the sample's live quads).
    auto local_quad = [&](int p) {
      return my_slot >= 0 && p < round.count[my_slot] ? round.live[my_slot][p] : -1;
    };
    const int mask_lq = local_quad(8 * my_group + g);
    const int col_lq[2] = {local_quad(8 * my_group + 2 * t), local_quad(8 * my_group + 2 * t + 1)};
    const int k_lane = mask_lq >= 0 ? 4 * (q0 + mask_lq) : 4 * quads;
    MaskRow at;
    if (my_slot >= 0) at.set(key, x, K, uint32_t(4 * t), uint32_t(b_next + my_slot));
    // The lane's x quad is the same at every step of its sample: loaded (and scaled) once a
    // round. Rows past T (the last stage when T % 16 != 0) get their masked inputs too,
    // unzeroed: they multiply dU's staged zeros, which adds 0 to every sum.
    const float4 xs = scaled_quad(load_quad<kVec>(at.xb, k_lane, K, my_slot >= 0));

    // mma.sync: [m16 tile of neurons][n8 tile of features][4]; wgmma: [m64 tile of features][n8
    // tile of neurons][4].
    std::conditional_t<Op::kWgmma, float[2][Tiles][4], float[MT][4][4]> acc;
    zero_accumulators(acc);
    // wgmma: the round's samples among this warpgroup's 4 warps (the same in the warpgroup),
    // one product each. Taken from lane 0 so that ptxas knows it is the same in the warp:
    // otherwise it takes the products' loop for a divergent path and serializes them (C7520).
    unsigned wg_samples = plan.samples_of(warp & ~3);
#if defined(__CUDA_ARCH__)
    wg_samples = __shfl_sync(0xFFFFFFFFu, wg_samples, 0);
#endif
    // The lowest of a set of the round's samples, as bits.
    static_assert(kRoundSamples == 4, "lowest() tells 4 samples apart");
    auto lowest = [](unsigned bits) {
      return (bits & 1u) ? 0 : (bits & 2u) ? 1 : (bits & 4u) ? 2 : 3;
    };
    const bool wg_one_sample = wg_samples != 0 && (wg_samples & (wg_samples - 1)) == 0;
    const int wg_first = lowest(wg_samples);  // before the loop: ptxas does not hoist it

    // Double-buffered: stage st multiplies from buffer st % 2; the next stage is staged into
    // the other before the barrier that ends st (that buffer was last read in st - 1).
    place_items(b_next, slots);
    fetch_put_du(0, stages);
    __syncthreads();
    // Row e of the lane's masked inputs at step `at.t + e`, made a stage ahead (MasksAhead).
    auto mask_row = [&](float (&v)[4], int e, uint32_t t0) {
      MaskRow r = at;
      r.t = t0 + e;
      const float4 m = masked_quad_of(keys, r, k_lane, xs);
      v[0] = m.x, v[1] = m.y, v[2] = m.z, v[3] = m.w;
    };
    float v[4][4] = {};
    if (my_slot >= 0) {
#pragma unroll
      for (int e = 0; e < 4; ++e) mask_row(v[e], e, at.t);
    }
    for (int st = 0; st < stages_per_sample; ++st) {
      uint32_t* cur = stages + (st & 1) * kRoundSamples * kStageWords;
      if constexpr (Op::kWgmma) {
        // The products run while the warp makes the next stage's masks and stages the next
        // rows of dU (into the other buffer, whose last products have completed); then it waits.
        // Which products a warp issues depends only on wg_samples, taken from lane 0: a branch
        // or loop ptxas cannot see as uniform makes it serialize them (its warning C7520). With
        // one sample among the warpgroup's warps (a dense sample's round, always) every warp
        // issues its own A: a warp without a group holds zeros (v is never set). Else one
        // product per sample, the lowest first, each warp's A or zeros.
        float v_next[4][4];
        uint32_t a[2][Op::kSteps][4];
        Op::fragments(v, a);
        if (wg_one_sample) {
          Op::template issue<Tiles>(acc, a, true, cur + wg_first * kStageWords);
        } else {
          for (unsigned left = wg_samples; left != 0; left &= left - 1) {
            const int c = lowest(left);
            Op::template issue<Tiles>(acc, a, my_slot == c, cur + c * kStageWords);
          }
        }
        wgmma_commit();
        if (my_slot >= 0) {
          at.t += kDepth;
#pragma unroll
          for (int e = 0; e < 4; ++e) mask_row(v_next[e], e, at.t);
        }
        if (st + 1 < stages_per_sample)
          fetch_put_du(st + 1, stages + ((st + 1) & 1) * kRoundSamples * kStageWords);
        wgmma_wait_all();
        if (my_slot >= 0) take_masks(v, v_next);
      } else {
        if (my_slot >= 0) {
          at.t += kDepth;
          float v_next[4][4];
          Op::template multiply<MT>(acc, v, cur + my_slot * kStageWords,
                                    masks_ahead<MT>([&](int e) { mask_row(v_next[e], e, at.t); }));
          take_masks(v, v_next);
        }
        if (st + 1 < stages_per_sample)
          fetch_put_du(st + 1, stages + ((st + 1) & 1) * kRoundSamples * kStageWords);
      }
      __syncthreads();
    }

    // The adds, sample by sample. wgmma: tile (i, j): c0 and c2 (rows g and g + 8: features 2i
    // and 2i + 1 of the lane's quad mask_lq) at neuron 8j + 2t, c1 and c3 at 8j + 2t + 1.
    // mma.sync: tile (i, j): c0 (neuron g, column 2t) and c1 (column 2t + 1) are features
    // 4 col_lq[0] + j and 4 col_lq[1] + j; c2, c3 the same for neuron g + 8.
    for (int s = 0; s < slots; ++s) {
      if constexpr (Op::kWgmma) {
        if (my_slot == s && mask_lq >= 0)
#pragma unroll
          for (int j = 0; j < Tiles; ++j)
#pragma unroll
            for (int c = 0; c < 2; ++c) {
              float4* cell = reinterpret_cast<float4*>(tile + (8 * j + 2 * t + c) * kTileStride +
                                                       4 * mask_lq);
              float4 sum = *cell;
              sum.x += acc[0][j][c];
              sum.y += acc[0][j][2 + c];
              sum.z += acc[1][j][c];
              sum.w += acc[1][j][2 + c];
              *cell = sum;
            }
      } else if (my_slot == s) {
#pragma unroll
        for (int i = 0; i < MT; ++i)
#pragma unroll
          for (int h = 0; h < 2; ++h)
#pragma unroll
            for (int half = 0; half < 2; ++half) {
              if (col_lq[half] < 0) continue;
              float4* cell = reinterpret_cast<float4*>(tile + (16 * i + 8 * h + g) * kTileStride +
                                                       4 * col_lq[half]);
              float4 sum = *cell;
              sum.x += acc[i][0][2 * h + half];
              sum.y += acc[i][1][2 * h + half];
              sum.z += acc[i][2][2 * h + half];
              sum.w += acc[i][3][2 * h + half];
              *cell = sum;
            }
      }
      __syncthreads();
    }
    b_next += slots;
  }

  // The tile to out[z]: its neurons below N, its features below K.
  float* part = out + (size_t)blockIdx.z * N * K;
  const int f0 = 4 * q0;
  for (int e = tid; e < kNeurons * kRangeFeatures; e += kLiveThreads) {
    const int nl = e / kRangeFeatures, fl = e % kRangeFeatures;
    if (n0 + nl < N && f0 + fl < K)
      part[(size_t)(n0 + nl) * K + f0 + fl] = tile[nl * kTileStride + fl];
  }
}

// ---- the double-buffered loop over stages ----------------------------------------------------
// Stage s is multiplied from buffer s % 2 while stage s+1 is fetched into registers and then
// written to buffer (s+1) % 2. That buffer was last read while multiplying stage s-1, and the
// __syncthreads at the end of iteration s-1 guarantees every thread finished that; the
// __syncthreads at the end of iteration s makes the new stage visible before it is multiplied.
template <class Math, class LoadP, class LoadQ, class Index>
__device__ void mainloop(LoadP& lp, LoadQ& lq, Index r_begin, Index r_end,
                         Stage* stages, Math& math) {
  math.zero();
  const Index stages_total = (r_end - r_begin + kDepth - 1) / kDepth;
  if (stages_total <= 0) return;
  lp.fetch();
  lq.fetch();
  lp.put(stages[0]);
  lq.put(stages[0]);
  __syncthreads();
  for (Index s = 0; s < stages_total; ++s) {
    auto& cur = stages[s & 1];
    auto& next = stages[(s + 1) & 1];
    const bool more = s + 1 < stages_total;
    if (more) {
      lp.fetch();
      lq.fetch();
    }
    math.multiply(cur);
    if (more) {
      lp.put(next);
      lq.put(next);
    }
    __syncthreads();
  }
}

// ---- kernels --------------------------------------------------------------------------------

// grid (ceil(M/64), ceil(N/128)): block (x, y) computes out[64x .., 128y ..].
template <class Math>
__global__ void __launch_bounds__(kThreads, 2)
masked_linear_forward_kernel(NoiseKey key, const float* x, int B, int K, long long M,
                             const float* W, int N, float* out) {
  __shared__ __align__(128) unsigned char shared[Math::kSharedBytes];
  auto* stages = reinterpret_cast<Stage*>(shared);
  const long long m0 = (long long)blockIdx.x * kTileQ;
  const int n0 = blockIdx.y * kTileP;
  WeightAlongR lp(W, N, K, n0);
  MaskedAlongQ lq(key, x, B, K, M, m0);
  Math math;
  mainloop<Math>(lp, lq, 0, K, stages, math);
  math.store([&](int p, int q, float value) {
    const long long m = m0 + q;
    const int n = n0 + p;
    if (m < M && n < N) out[(size_t)m * N + n] = value;
  });
}

// grid (ceil(K/64), ceil(N/128), splits): block (x, y, z) computes the partial sum of
// dW[128y .., 64x ..] over rows [z*rows, (z+1)*rows) into partial[z].
template <class Math>
__global__ void __launch_bounds__(kThreads, 2)
masked_linear_wgrad_kernel(NoiseKey key, const float* x, int B, int K, long long M,
                           long long rows, const float* dU, int N, float* partial) {
  __shared__ __align__(128) unsigned char shared[Math::kSharedBytes];
  auto* stages = reinterpret_cast<Stage*>(shared);
  const int k0 = blockIdx.x * kTileQ;
  const int n0 = blockIdx.y * kTileP;
  const long long r_begin = (long long)blockIdx.z * rows;
  const long long r_end = r_begin + rows < M ? r_begin + rows : M;
  GradAlongR lp(dU, N, r_begin, r_end, n0);
  MaskedAlongR lq(key, x, B, K, r_begin, r_end, k0);
  Math math;
  mainloop<Math>(lp, lq, r_begin, r_end, stages, math);
  float* part = partial + (size_t)blockIdx.z * N * K;
  math.store([&](int p, int q, float value) {
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
  if ((N + kTileP - 1) / kTileP > 65535)
    ::nmsnn::detail::fail(what, ": a layer of ", N, " neurons is too wide for the noise-encoded "
                          "input kernel (at most ", 65535LL * kTileP, ")");
}

// The TF32 and BF16 forward's width classes: a slice of 8 NT neurons (NT 8 up to 64 neurons, 13
// up to 104, else 16) and how many slices (one up to 104, else slices of 128) along gridDim.y.
// The launch below and the tiles' size (masked_linear_weight_tiles_floats) both take them.
int forward_nt(int N) { return N <= 64 ? 8 : N <= 104 ? 13 : 16; }
int forward_slices(int N) { return N <= 104 ? 1 : (N + 127) / 128; }

// One width class: the plain kernel, or with `tail` the one with the time loop fused in (its
// tile's shared memory opted into; cudaLaunchKernelEx carries it in the CUDA emulation too).
template <class Op, int NT, bool kVec, bool kWarpSample>
void launch_forward_mma(NoiseKey key, const float* x, int T, int B, int K, long long M,
                        const float* W, int N, float* out, const LifTail* tail,
                        uint32_t* tiles, cudaStream_t stream) {
  const dim3 grid(grid_for(M, kMmaRows), unsigned(forward_slices(N)));
  if constexpr (Op::kWgmma && kWarpSample) {  // the only kernels that read them
    if (tiles) {
      const dim3 groups(unsigned((K + 15) / 16 + 1), grid.y);
      masked_linear_weight_tiles_kernel<Op, NT>
          <<<groups, kMmaThreads, 0, stream>>>(W, N, K, tiles);
    }
  }
  if (!tail) {
    masked_linear_forward_mma_kernel<Op, NT, kVec, false, kWarpSample>
        <<<grid, kMmaThreads, 0, stream>>>(key, x, T, B, K, M, W, N, tiles, out, LifTail{});
    return;
  }
  constexpr size_t bytes = lif_tile_bytes<NT>();
  auto* kernel = masked_linear_forward_mma_kernel<Op, NT, kVec, true, kWarpSample>;
  NMSNN_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  const cudaLaunchConfig_t config = {grid, dim3(kMmaThreads), bytes, stream, nullptr, 0};
  NMSNN_CUDA_CHECK(
      cudaLaunchKernelEx(&config, kernel, key, x, T, B, K, M, W, N,
                         static_cast<const uint32_t*>(tiles), out, *tail));
}

// NT from the layer's width (forward_nt; the seed's 100 neurons: 13).
template <class Op, bool kVec, bool kWarpSample>
void launch_forward_mma(NoiseKey key, const float* x, int T, int B, int K, long long M,
                        const float* W, int N, float* out, const LifTail* tail,
                        uint32_t* tiles, cudaStream_t stream) {
  const int nt = forward_nt(N);
  if (nt == 8)
    launch_forward_mma<Op, 8, kVec, kWarpSample>(key, x, T, B, K, M, W, N, out, tail, tiles,
                                                 stream);
  else if (nt == 13)
    launch_forward_mma<Op, 13, kVec, kWarpSample>(key, x, T, B, K, M, W, N, out, tail, tiles,
                                                  stream);
  else
    launch_forward_mma<Op, 16, kVec, kWarpSample>(key, x, T, B, K, M, W, N, out, tail, tiles,
                                                  stream);
}
// tiles: scratch for W's arranged tiles (masked_linear_weight_tiles_floats), or null; used on
// wgmma only.
template <class Op>
void launch_forward_mma(NoiseKey key, const float* x, int T, int B, int K, long long M,
                        const float* W, int N, float* out, const LifTail* tail,
                        float* tiles_scratch, cudaStream_t stream) {
  uint32_t* tiles = Op::kWgmma ? reinterpret_cast<uint32_t*>(tiles_scratch) : nullptr;
  const bool vec = K % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(W) % 16 == 0;
  // The shared x quad only on wgmma (the mma.sync kernels stay as measured) and with 16-byte
  // loads (K % 4 == 0, W1's): the other combinations are not built.
  if (vec && Op::kWgmma && T % 32 == 0)
    launch_forward_mma<Op, true, Op::kWgmma>(key, x, T, B, K, M, W, N, out, tail, tiles, stream);
  else if (vec)
    launch_forward_mma<Op, true, false>(key, x, T, B, K, M, W, N, out, tail, tiles, stream);
  else
    launch_forward_mma<Op, false, false>(key, x, T, B, K, M, W, N, out, tail, tiles, stream);
}

// MT from the layer's width: up to 64 neurons 4 m16 tiles, up to 112 (the seed's 100) 7, else 8,
// in blocks of 128 neurons along gridDim.y.
template <class Op, bool kVec>
void launch_wgrad_mma(NoiseKey key, const float* x, int B, int K, long long M, WgradSplit split,
                      const float* dU, int N, float* out, cudaStream_t stream) {
  const dim3 grid(grid_for(K, 128), N <= 112 ? 1u : unsigned((N + 127) / 128),
                  unsigned(split.splits));
  if (N <= 64)
    masked_linear_wgrad_mma_kernel<Op, 4, kVec>
        <<<grid, kMmaThreads, 0, stream>>>(key, x, B, K, M, split.rows, dU, N, out);
  else if (N <= 112)
    masked_linear_wgrad_mma_kernel<Op, 7, kVec>
        <<<grid, kMmaThreads, 0, stream>>>(key, x, B, K, M, split.rows, dU, N, out);
  else
    masked_linear_wgrad_mma_kernel<Op, 8, kVec>
        <<<grid, kMmaThreads, 0, stream>>>(key, x, B, K, M, split.rows, dU, N, out);
}
template <class Op>
void launch_wgrad_mma(NoiseKey key, const float* x, int B, int K, long long M, WgradSplit split,
                      const float* dU, int N, float* out, cudaStream_t stream) {
  const bool vec = K % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(out) % 16 == 0;
  if (vec)
    launch_wgrad_mma<Op, true>(key, x, B, K, M, split, dU, N, out, stream);
  else
    launch_wgrad_mma<Op, false>(key, x, B, K, M, split, dU, N, out, stream);
}

// The live weight gradient for MT m16 tiles: its shared memory opted into, then the launch (with
// cudaLaunchKernelEx, which carries the dynamic shared memory in the CUDA emulation too).
template <class Op, int MT, bool kVec>
void launch_wgrad_live(NoiseKey key, const float* x, int T, int B, int K, WgradSplit split,
                       const float* dU, int N, float* out, cudaStream_t stream) {
  constexpr size_t bytes = live_wgrad_shared_bytes<Op, MT>();
  auto* kernel = masked_linear_wgrad_live_kernel<Op, MT, kVec>;
  NMSNN_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  constexpr int kNeurons = Op::neurons(MT);
  const dim3 grid(grid_for((K + 3) / 4, kRangeQuads), unsigned((N + kNeurons - 1) / kNeurons),
                  unsigned(split.splits));
  // Grid, block, shared bytes, stream, no attributes (by position: the CUDA emulation defines
  // the names gridDim and blockDim as macros).
  const cudaLaunchConfig_t config = {grid, dim3(kLiveThreads), bytes, stream, nullptr, 0};
  NMSNN_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, key, x, T, B, K, int(split.rows), dU, N,
                                      out));
}
// The width classes: mma.sync MT = 4, 7, 8 m16 tiles (up to 64, 112 and 128 neurons a slice),
// wgmma NT = 8, 13, 16 n8 tiles (64, 104, 128).
template <class Op>
constexpr int live_tiles(int c) {
  return Op::kWgmma ? (c == 0 ? 8 : c == 1 ? 13 : 16) : (c == 0 ? 4 : c == 1 ? 7 : 8);
}
template <class Op>
int live_class(int N) {
  return N <= Op::neurons(live_tiles<Op>(0)) ? 0 : N <= Op::neurons(live_tiles<Op>(1)) ? 1 : 2;
}
template <class Op, bool kVec>
void launch_wgrad_live(NoiseKey key, const float* x, int T, int B, int K, WgradSplit split,
                       const float* dU, int N, float* out, cudaStream_t stream) {
  const int c = live_class<Op>(N);
  if (c == 0)
    launch_wgrad_live<Op, live_tiles<Op>(0), kVec>(key, x, T, B, K, split, dU, N, out, stream);
  else if (c == 1)
    launch_wgrad_live<Op, live_tiles<Op>(1), kVec>(key, x, T, B, K, split, dU, N, out, stream);
  else
    launch_wgrad_live<Op, live_tiles<Op>(2), kVec>(key, x, T, B, K, split, dU, N, out, stream);
}
template <class Op>
void launch_wgrad_live(NoiseKey key, const float* x, int T, int B, int K, WgradSplit split,
                       const float* dU, int N, float* out, cudaStream_t stream) {
  // kVec: x's quads and dU's rows of 4 neurons are each one 16-byte load.
  const bool vec = K % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 && N % 4 == 0 &&
                   reinterpret_cast<uintptr_t>(dU) % 16 == 0;
  if (vec)
    launch_wgrad_live<Op, true>(key, x, T, B, K, split, dU, N, out, stream);
  else
    launch_wgrad_live<Op, false>(key, x, T, B, K, split, dU, N, out, stream);
}

// Shared memory a block of the live weight gradient takes for N neurons: the dynamic share
// (the tile and the stages) and the round's arrays.
template <class Op>
size_t live_wgrad_block_bytes(int N) {
  const int c = live_class<Op>(N);
  const size_t dynamic = c == 0   ? live_wgrad_shared_bytes<Op, live_tiles<Op>(0)>()
                         : c == 1 ? live_wgrad_shared_bytes<Op, live_tiles<Op>(1)>()
                                  : live_wgrad_shared_bytes<Op, live_tiles<Op>(2)>();
  return dynamic + sizeof(LiveRound);
}

// Whether the weight gradient walks by sample. It needs up to 205 KiB of shared memory a block
// (TF32, N > 112): compute capability 9.0 allows 227 KB, 8.0 163 KB, 8.6 and 8.9 99 KB, so
// automatic falls back to rows where the block does not fit, and samples asked for fails.
bool wgrad_by_sample(int T, int B, int N, MatmulPrecision math, WgradWalk walk, bool wgmma) {
  if (math == MatmulPrecision::fp32 || walk == WgradWalk::rows) return false;
  if (walk == WgradWalk::automatic && (T < kDepth || B < 8)) return false;
  int device = 0, optin = 0;
  NMSNN_CUDA_CHECK(cudaGetDevice(&device));
  NMSNN_CUDA_CHECK(
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  const bool tf32 = math == MatmulPrecision::tf32;
  const size_t bytes = wgmma ? (tf32 ? live_wgrad_block_bytes<Tf32WgradWgmma>(N)
                                     : live_wgrad_block_bytes<Bf16WgradWgmma>(N))
                             : (tf32 ? live_wgrad_block_bytes<Tf32Wgrad>(N)
                                     : live_wgrad_block_bytes<Bf16Wgrad>(N));
  if (bytes <= size_t(optin)) return true;
  if (walk == WgradWalk::samples)
    ::nmsnn::detail::fail("masked_linear_wgrad: walking by sample needs ", bytes,
                          " bytes of shared memory a block (N=", N, ", ", to_string(math),
                          "); device ", device, " allows ", optin);
  return false;
}

#if defined(NMSNN_CUDA_SM90A) || defined(NMSNN_EMULATED_CUDA)
constexpr bool kWgmmaBuilt = true;
#else
constexpr bool kWgmmaBuilt = false;
#endif

// The current device's compute capability, major * 10 + minor.
int compute_capability(int& device) {
  int major = 0, minor = 0;
  NMSNN_CUDA_CHECK(cudaGetDevice(&device));
  NMSNN_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  NMSNN_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return 10 * major + minor;
}

// Whether the TF32 and BF16 forward and weight gradient by sample issue wgmma (MmaInstruction);
// an error where it was asked for and cannot run.
// The environment's choice for `automatic` (NMSNN_CUDA_MMA: auto, mma_sync or wgmma), read once.
MmaInstruction environment_instruction() {
  static const MmaInstruction chosen = [] {
    const char* env = std::getenv("NMSNN_CUDA_MMA");
    const std::string want = env ? env : "";
    if (want.empty() || want == "auto") return MmaInstruction::automatic;
    if (want == "mma_sync") return MmaInstruction::mma_sync;
    if (want == "wgmma") return MmaInstruction::wgmma;
    ::nmsnn::detail::fail("environment variable NMSNN_CUDA_MMA: expected auto, mma_sync or "
                          "wgmma, got ", ::nmsnn::detail::quote(want));
  }();
  return chosen;
}

bool use_wgmma(const char* what, MmaInstruction instruction) {
  if (instruction == MmaInstruction::automatic) instruction = environment_instruction();
  if (instruction == MmaInstruction::mma_sync) return false;
#if defined(NMSNN_EMULATED_CUDA)
  (void)what;
  return instruction == MmaInstruction::wgmma;  // emulated; automatic keeps mma.sync
#else
  const bool able = masked_linear_wgmma_available();
  if (instruction == MmaInstruction::wgmma && !able) {
    int device = 0;
    const int cc = compute_capability(device);
    ::nmsnn::detail::fail(what, ": wgmma needs compute capability 9.0 and a library built for "
                          "sm_90a (CMAKE_CUDA_ARCHITECTURES with 90a); device ", device, " is ",
                          cc / 10, ".", cc % 10,
                          kWgmmaBuilt ? "" : ", and this build has no sm_90a code");
  }
  return able;
#endif
}

}  // namespace

// The library says whether it was built for sm_90a (NMSNN_CUDA_SM90A, CMakeLists.txt): a
// compute capability 9.0 device then runs that code.
bool masked_linear_wgmma_available() {
#if defined(NMSNN_EMULATED_CUDA)
  return true;
#else
  int device = 0;
  return kWgmmaBuilt && compute_capability(device) == 90;
#endif
}

size_t masked_linear_weight_tiles_floats(int N, int K, MatmulPrecision math) {
  if (math == MatmulPrecision::fp32 || N < 1 || K < 1) return 0;
  // A neuron's words a stage: the forward Op's own row (16 TF32 values, or 16 BF16 two a word).
  const size_t words = math == MatmulPrecision::tf32 ? Tf32ForwardWgmma::kRowWords
                                                     : Bf16ForwardWgmma::kRowWords;
  return size_t(forward_slices(N)) * size_t((K + 15) / 16 + 1) * 8 * forward_nt(N) * words;
}

namespace {
void check_tiles(const char* what, const float* tiles) {
  if (reinterpret_cast<uintptr_t>(tiles) % 16 != 0)
    ::nmsnn::detail::fail(what, ": the weight tiles' scratch must be 16-byte aligned");
}
}  // namespace

void masked_linear_forward(NoiseKey key, const float* x, int T, int B, int K, const float* W,
                           int N, float* out, MatmulPrecision math, cudaStream_t stream,
                           MmaInstruction instruction, float* tiles) {
  check_shapes("masked_linear_forward", T, B, K, N);
  check_tiles("masked_linear_forward", tiles);
  const long long M = (long long)T * B;
  const bool wgmma = math != MatmulPrecision::fp32 &&
                     use_wgmma("masked_linear_forward", instruction);
  if (math == MatmulPrecision::tf32 && wgmma)
    launch_forward_mma<Tf32ForwardWgmma>(key, x, T, B, K, M, W, N, out, nullptr, tiles, stream);
  else if (math == MatmulPrecision::tf32)
    launch_forward_mma<Tf32Forward>(key, x, T, B, K, M, W, N, out, nullptr, tiles, stream);
  else if (math == MatmulPrecision::bf16 && wgmma)
    launch_forward_mma<Bf16ForwardWgmma>(key, x, T, B, K, M, W, N, out, nullptr, tiles, stream);
  else if (math == MatmulPrecision::bf16)
    launch_forward_mma<Bf16Forward>(key, x, T, B, K, M, W, N, out, nullptr, tiles, stream);
  else {
    const dim3 grid(grid_for(M, kTileQ), unsigned((N + kTileP - 1) / kTileP));
    masked_linear_forward_kernel<ForwardFp32><<<grid, kThreads, 0, stream>>>(key, x, B, K, M, W, N, out);
  }
  NMSNN_CHECK_LAUNCH("masked_linear_forward", "M=T*B=", T, "*", B, ", N=", N, ", K=", K, ", ",
                     to_string(math), wgmma ? ", wgmma" : "");
}

bool masked_linear_lif_fusable(int T, int N, MatmulPrecision math) {
  return math != MatmulPrecision::fp32 && T >= 1 && T <= kMmaRows && kMmaRows % T == 0 &&
         N >= 1 && N <= 128;
}

void masked_linear_lif_forward(NoiseKey key, const float* x, int T, int B, int K,
                               const float* W, const SpikingLayer& layer,
                               const LifForwardArgs& args, MatmulPrecision math,
                               cudaStream_t stream, const NextLayerProduct& next,
                               MmaInstruction instruction, float* tiles) {
  const int N = args.H;
  check_shapes("masked_linear_lif_forward", T, B, K, N);
  check_tiles("masked_linear_lif_forward", tiles);
  if (!masked_linear_lif_fusable(T, N, math))
    ::nmsnn::detail::fail("masked_linear_lif_forward: the fused time loop needs TF32 or BF16, T "
                          "dividing ", kMmaRows, " and N <= 128; got T=", T, ", N=", N, ", ",
                          to_string(math));
  if (args.T != T || args.B != B)
    ::nmsnn::detail::fail("masked_linear_lif_forward: the time loop's T=", args.T, ", B=", args.B,
                          " are not the product's T=", T, ", B=", B);
  if (args.a)
    ::nmsnn::detail::fail("masked_linear_lif_forward: the current is the product's, not a buffer");
  check_lif_forward_args("masked_linear_lif_forward", args);
  if (next.a && (!next.W || next.H < 1 || next.H > kNextLayerMaxWidth))
    ::nmsnn::detail::fail("masked_linear_lif_forward: the layer above's product needs its W and "
                          "1 to ", kNextLayerMaxWidth, " neurons; got H=", next.H,
                          next.W ? "" : ", no W");
  if (next.a && args.logits)
    ::nmsnn::detail::fail("masked_linear_lif_forward: a last layer (logits) has no layer above");
  if (next.a && (next.a == args.u || next.a == args.spikes || next.a == args.trace_state ||
                 next.a == args.trace_spikes))
    ::nmsnn::detail::fail("masked_linear_lif_forward: the layer above's current must not share a "
                          "buffer with the time loop's outputs");
  const LifTail tail{args, lif_constants(layer), layer.reset == ResetRule::subtract, next};
  const long long M = (long long)T * B;
  const bool wgmma = use_wgmma("masked_linear_lif_forward", instruction);
  if (math == MatmulPrecision::tf32 && wgmma)
    launch_forward_mma<Tf32ForwardWgmma>(key, x, T, B, K, M, W, N, nullptr, &tail, tiles, stream);
  else if (math == MatmulPrecision::tf32)
    launch_forward_mma<Tf32Forward>(key, x, T, B, K, M, W, N, nullptr, &tail, tiles, stream);
  else if (wgmma)
    launch_forward_mma<Bf16ForwardWgmma>(key, x, T, B, K, M, W, N, nullptr, &tail, tiles, stream);
  else
    launch_forward_mma<Bf16Forward>(key, x, T, B, K, M, W, N, nullptr, &tail, tiles, stream);
  NMSNN_CHECK_LAUNCH("masked_linear_lif_forward", "M=T*B=", T, "*", B, ", N=", N, ", K=", K,
                     ", ", to_string(math), wgmma ? ", wgmma" : "", ", reset ", to_string(layer.reset),
                     layer.delay ? ", delay" : ", no delay", ", next H=", next.a ? next.H : 0);
}

WgradSplit masked_linear_wgrad_split(long long M, int N, int K) {
  // About 1024 blocks in all (several waves on any current GPU), at most 64 partials, and at
  // least 256 rows (16 stages) per block so the double buffering has something to overlap.
  const long long tiles = (long long)((N + kTileP - 1) / kTileP) * ((K + kTileQ - 1) / kTileQ);
  long long splits = std::max(1LL, 1024 / std::max(1LL, tiles));
  splits = std::min({splits, 64LL, std::max(1LL, M / 256)});
  // Rows per split, a multiple of the stage depth; then drop splits that would be empty.
  long long rows = (M + splits - 1) / splits;
  rows = (rows + kDepth - 1) / kDepth * kDepth;
  splits = (M + rows - 1) / rows;
  return {int(splits), rows};
}

WgradSplit masked_linear_wgrad_sample_split(int B, int N, int K) {
  // About 512 blocks (one a SM at a time: the tile fills most of its shared memory), at most 64
  // partials, whole samples each.
  const long long tiles = (long long)((K + kRangeFeatures - 1) / kRangeFeatures) *
                          (N <= 112 ? 1 : (N + 127) / 128);
  const long long splits = std::min({std::max(1LL, 512 / tiles), 64LL, (long long)B});
  const long long samples = (B + splits - 1) / splits;
  return {int((B + samples - 1) / samples), samples};
}

size_t masked_linear_wgrad_scratch(int T, int B, int N, int K) {
  const int splits = std::max(masked_linear_wgrad_split((long long)T * B, N, K).splits,
                              masked_linear_wgrad_sample_split(B, N, K).splits);
  return splits == 1 ? 0 : size_t(splits) * size_t(N) * size_t(K);
}

void masked_linear_wgrad(NoiseKey key, const float* x, int T, int B, int K, const float* dU,
                         int N, float* dW, float* scratch, MatmulPrecision math,
                         cudaStream_t stream, WgradWalk walk, MmaInstruction instruction) {
  check_shapes("masked_linear_wgrad", T, B, K, N);
  const long long M = (long long)T * B;
  const bool wgmma =
      math != MatmulPrecision::fp32 && use_wgmma("masked_linear_wgrad", instruction);
  const bool by_sample = wgrad_by_sample(T, B, N, math, walk, wgmma);
  const WgradSplit split =
      by_sample ? masked_linear_wgrad_sample_split(B, N, K) : masked_linear_wgrad_split(M, N, K);
  // One split writes dW itself; several write partials that are added below.
  float* out = split.splits == 1 ? dW : scratch;
  if (!out) ::nmsnn::detail::fail("masked_linear_wgrad: no scratch for ", split.splits, " partials");
  if (by_sample && math == MatmulPrecision::tf32 && wgmma)
    launch_wgrad_live<Tf32WgradWgmma>(key, x, T, B, K, split, dU, N, out, stream);
  else if (by_sample && math == MatmulPrecision::tf32)
    launch_wgrad_live<Tf32Wgrad>(key, x, T, B, K, split, dU, N, out, stream);
  else if (by_sample && wgmma)
    launch_wgrad_live<Bf16WgradWgmma>(key, x, T, B, K, split, dU, N, out, stream);
  else if (by_sample)
    launch_wgrad_live<Bf16Wgrad>(key, x, T, B, K, split, dU, N, out, stream);
  else if (math == MatmulPrecision::tf32)
    launch_wgrad_mma<Tf32Wgrad>(key, x, B, K, M, split, dU, N, out, stream);
  else if (math == MatmulPrecision::bf16)
    launch_wgrad_mma<Bf16Wgrad>(key, x, B, K, M, split, dU, N, out, stream);
  else {
    const dim3 grid(grid_for(K, kTileQ), unsigned((N + kTileP - 1) / kTileP),
                    unsigned(split.splits));
    masked_linear_wgrad_kernel<WgradFp32>
        <<<grid, kThreads, 0, stream>>>(key, x, B, K, M, split.rows, dU, N, out);
  }
  NMSNN_CHECK_LAUNCH("masked_linear_wgrad", "M=T*B=", T, "*", B, ", N=", N, ", K=", K,
                     ", splits=", split.splits, by_sample ? " by sample, " : ", ",
                     to_string(math), by_sample && wgmma ? ", wgmma" : "");
  if (split.splits == 1) return;
  const size_t count = size_t(N) * K;
  const unsigned blocks = unsigned(std::min<size_t>((count + 255) / 256, 4096));
  reduce_partials_kernel<<<blocks, 256, 0, stream>>>(scratch, split.splits, count, dW);
  NMSNN_CHECK_LAUNCH("masked_linear_wgrad reduce", "splits=", split.splits, ", N=", N, ", K=", K);
}

}  // namespace nmsnn::kernels
