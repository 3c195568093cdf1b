// masked_linear.cu — tiled matrix products whose X operand is the noise-encoded input, made from
// Philox while the tile is loaded (see masked_linear.cuh for the math).
//
// Both products have the form   C[p, q] = sum_r P[r, p] * Q[r, q]   over a 128 x 64 output tile,
// with p always a neuron, so one block covers a whole layer of up to 128 neurons:
//
//   forward  out[m, n]:  p = n (neuron),  q = m (row t*B+b),  r = k (feature)
//                        P[r, p] = W[n, k],   Q[r, q] = X(m, k) (masks made here)
//   wgrad    dW[n, k]:   p = n (neuron),  q = k (feature),    r = m (row t*B+b)
//                        P[r, p] = dU[m, n],  Q[r, q] = X(m, k) (masks made here)
//
// For N <= 128 the forward grid has one block along N, so each mask of a pass is made once, in
// registers, and never stored in global memory (a 64-wide tile made every mask twice for the
// seed network's N = 100). The weight gradient likewise makes each mask once per split.
//
// A block of 256 threads (8 warps) owns one tile of C and walks r in stages of 16. Each stage
// loads a 16 x 128 slice of P (8 values per thread) and a 16 x 64 slice of Q (4 per thread: for
// X exactly one Philox block, the four masks of features 4j..4j+3 at one (t, b)) into shared
// memory. Shared memory holds two stages: while the block multiplies stage s, each thread has
// already fetched stage s+1 into registers (global loads and Philox overlap the arithmetic), and
// writes it into the other buffer. One __syncthreads per stage separates "everyone finished
// reading buffer j" from "someone writes buffer j" (see mainloop).
//
// Arithmetic, selected by MatmulPrecision (stages hold FP32, or BF16 converted as staged):
//   fp32  each thread keeps 8 x 4 of C in registers (p = 4g+i and 64+4g+i, q = 4h+j) and reads
//         three float4s from shared memory per 32 FMAs; one FMA chain per element in order of r,
//         so the result is within the rigorous FP32 bound the exactness tests use.
//   tf32  warp w owns C[32*(w%4) .., 32*(w/4) ..] as 2 x 2 WMMA m16n16k8 accumulators; operands
//         rounded to TF32 when staged (12 roundings per thread per stage, not the 32 of its
//         fragments); FP32 accumulation.
//   bf16  the same with WMMA m16n16k16 and BF16 fragments; operands rounded (to nearest even)
//         when staged, which also halves the stages' bytes; FP32 accumulation.
// Tensor-core accumulators have no documented element order, so they leave through shared
// memory (the tile C, which reuses the stages' bytes once the mainloop is done).
//
// Bank conflicts (32 banks of 4 bytes; a row's stride decides which bank its start falls in).
// Shared rows are padded by 8 elements: P rows 136 elements, Q rows 72, so the stride is
// 8 (mod 32) banks in FP32 and 4 (mod 32) banks = 16 bytes (mod 128) in BF16; the tile C is
// stored column-major, C(p, q) at c[q][p], with rows of 132 floats, 4 (mod 32) banks.
//   fragment loads  The WMMA layout is opaque; it follows mma.sync's documented one. TF32 A
//         (col-major: element (p, r) at [r][p]) and B (row-major, (r, q) at [r][q]): lane
//         (g, t) = (lane / 4, lane % 4) reads row r = t, column g: bank 8t + g, 32 distinct
//         (an unpadded 64- or 128-float row gives bank g: 4-way). BF16 fragments load as
//         ldmatrix rows of 16 bytes, 8 rows per phase: row r starts at byte 16r (mod 128), 8
//         distinct 16-byte groups (unpadded: all in the same group, 8-way).
//   fragment stores The accumulator (g, 2t), (g, 2t+1) goes to c[2t][g], c[2t+1][g]: bank 8t + g
//         (+4), 32 distinct per instruction (with 72-float rows row-major it is 8g + 2t: 2-way).
//   scalar stores   P slices: thread p = tid % 128 writes rows 8 * (tid / 128) + j: a warp
//         writes 32 consecutive elements of one row. Forward Q: q = tid % 64, rows 4 * (tid / 64)
//         + j: the same. Wgrad Q: one float4 (or 8 bytes of BF16) per thread, 16 threads per row:
//         each quarter- (half-) warp writes 128 consecutive bytes. All conflict-free.
//   fp32 reads      float4s of P at 4g and of Q at 4h: in each quarter-warp the threads read 8
//         consecutive float4s or the same one (a broadcast).
//   C reads         forward: 32 consecutive p of one q (consecutive n of one output row, coalesced
//         in global memory); wgrad: lane -> (q = lane % 8, p = lane / 8): bank 4q + p, 32
//         distinct, and in global memory 4 rows of dW x 8 consecutive k (whole 32-byte sectors).
// Global loads of W in the forward are per-lane rows (8 consecutive k each, one sector reused
// from L1 across the 8 loads); dU and the Q of the forward are coalesced along their rows.
//
// Budget per block (static shared memory, under the 48 KB that needs no cudaFuncSetAttribute):
//   fp32 2 stages x 16 x (136 + 72) x 4 B = 26,624 B;  tf32 max(26,624, C 64 x 132 x 4 =
//   33,792) = 33,792 B;  bf16 max(13,312, 33,792) = 33,792 B. Registers per thread (nvcc 13
//   ptxas, sm_80, no spills), forward / wgrad: fp32 97 / 104, tf32 124 / 128, bf16 84 / 88 (32
//   accumulators, 12 staged values, 2 + 2 fragments and the loaders' positions); the launch
//   bounds ask for two blocks of 256 threads per SM, so ptxas keeps them at <= 128 and two
//   blocks share an SM's 64K registers (and 2 x 33.8 KB its shared memory). Without that bound
//   the TF32 forward took 130 and one block per SM.
//
// Instructions per thread per stage (the main loop of the sm_90 SASS, nvcc 13; counted by
// scripts/sass_loop_counts.sh), forward / wgrad: fp32 706 / 780, tf32 325 / 402, bf16 223 /
// 295. A block-stage is 8 warps x that many warp instructions on 4 schedulers, each issuing one
// per clock: 2x clocks. That is more than the Philox or tensor-core work of a stage (its 256
// Philox blocks are about 50 instructions per thread; its 131K TF32 MACs take ~140 tensor-core
// clocks on an H200 SM), so these loops are issue-bound; bench/napkin_math.hpp counts them so.
//
// The weight gradient splits its sum over r = m across gridDim.z blocks that write partial
// tiles; reduce_partials adds them in split order (deterministic; no atomics).
#include <cuda_bf16.h>
#include <mma.h>

#include <algorithm>
#include <type_traits>

#include "cuda_check.cuh"
#include "launch.cuh"
#include "masked_linear.cuh"
#include "wmma_shape.cuh"

namespace nmsnn::kernels {

namespace {

constexpr int kTileP = 128;   // neurons per tile
constexpr int kTileQ = 64;    // rows (forward) or features (wgrad) per tile
constexpr int kDepth = 16;    // r values per shared-memory stage
constexpr int kThreads = 256;
constexpr int kPad = 8;                      // elements added to each staged row (see top)
constexpr int kStrideP = kTileP + kPad;      // 136
constexpr int kStrideQ = kTileQ + kPad;      // 72
constexpr int kStrideC = kTileP + 4;         // 132: the tile C, column-major (see top)

// One shared-memory stage: P[r][p] and Q[r][q] for 16 consecutive r, in FP32 or BF16. Every
// size and offset is a multiple of 32 bytes, so each WMMA fragment pointer below is aligned.
template <class T>
struct Stage {
  T p[kDepth][kStrideP];
  T q[kDepth][kStrideQ];
};
static_assert(sizeof(Stage<float>) % 32 == 0 && sizeof(Stage<__nv_bfloat16>) % 32 == 0,
              "stages must keep fragment pointers 32-byte aligned");

// What a stage holds of an operand value v, by precision: fp32 v itself; tf32 v rounded to TF32
// (10 mantissa bits, to nearest, ties away, as cvt.rna does), so the fragments loaded from the
// stage need no rounding (that took 3 instructions per fragment element, 32 per thread per
// stage, against 12 here); bf16 v rounded to nearest even. The tensor cores read only the top
// 19 bits of a TF32 operand, so a value rounded here is the operand exactly.
enum class Staged { fp32, tf32, bf16 };
template <Staged S>
struct StagedAs {
  using Element = float;
};
template <>
struct StagedAs<Staged::bf16> {
  using Element = __nv_bfloat16;
};

template <Staged S>
__device__ inline typename StagedAs<S>::Element to_stage(float v) {
  if constexpr (S == Staged::bf16) return __float2bfloat16(v);  // round to nearest even
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  else if constexpr (S == Staged::tf32) return nvcuda::wmma::__float_to_tf32(v);
#endif
  else return v;
}
// Four consecutive staged values as one 16-byte (FP32) or 8-byte (BF16) store.
template <Staged S>
__device__ inline void put4(float* dst, const float v[4]) {
  *reinterpret_cast<float4*>(dst) =
      make_float4(to_stage<S>(v[0]), to_stage<S>(v[1]), to_stage<S>(v[2]), to_stage<S>(v[3]));
}
struct __align__(8) Bf16x4 {
  __nv_bfloat16 v[4];
};
template <Staged S>
__device__ inline void put4(__nv_bfloat16* dst, const float v[4]) {
  Bf16x4 b;
#pragma unroll
  for (int j = 0; j < 4; ++j) b.v[j] = to_stage<S>(v[j]);
  *reinterpret_cast<Bf16x4*>(dst) = b;
}

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
    t = uint32_t(tt);
    b = uint32_t(m - tt * B);
    row = noise_row(key, b);
    pass = noise_pass(key);
    xb = x + (size_t)b * K;
  }
  // To row m + step (step >= 0) without a division.
  __device__ void advance(NoiseKey key, const float* x, int B, int K, int step) {
    b += uint32_t(step);
    while (b >= uint32_t(B)) {
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
  template <Staged S>
  __device__ void put(Stage<typename StagedAs<S>::Element>& s) const {
    const int p = threadIdx.x & (kTileP - 1), r = 8 * (threadIdx.x >> 7);
#pragma unroll
    for (int j = 0; j < 8; ++j) s.p[r + j][p] = to_stage<S>(v[j]);
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
  template <Staged S>
  __device__ void put(Stage<typename StagedAs<S>::Element>& s) const {
    const int p = threadIdx.x & (kTileP - 1), r = 8 * (threadIdx.x >> 7);
#pragma unroll
    for (int j = 0; j < 8; ++j) s.p[r + j][p] = to_stage<S>(v[j]);
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
  template <Staged S>
  __device__ void put(Stage<typename StagedAs<S>::Element>& s) const {
    const int q = threadIdx.x & (kTileQ - 1), r = 4 * (threadIdx.x >> 6);
#pragma unroll
    for (int j = 0; j < 4; ++j) s.q[r + j][q] = to_stage<S>(v[j]);
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
  float v[4];

  __device__ MaskedAlongR(NoiseKey key_, const float* x_, int B_, int K_, long long r_begin,
                          long long m_end, int k0)
      : key(key_), x(x_), B(B_), K(K_), k(k0 + 4 * (threadIdx.x & 15)) {
    const long long m = r_begin + (threadIdx.x >> 4);
    left = m_end - m;
    at.set(key, x, B, K, m);
  }
  __device__ void fetch() {
    v[0] = v[1] = v[2] = v[3] = 0.0f;
    if (left > 0 && k < K) masked_quad(key, at, K, k, v);
    left -= kDepth;
    at.advance(key, x, B, K, kDepth);
  }
  template <Staged S>
  __device__ void put(Stage<typename StagedAs<S>::Element>& s) const {
    put4<S>(&s.q[threadIdx.x >> 4][4 * (threadIdx.x & 15)], v);
  }
};

// ---- arithmetic on one stage ----------------------------------------------------------------

// The epilogue's order over the tile. Forward (kLanesAlongP): consecutive threads take
// consecutive p, i.e. consecutive neurons of one output row. Wgrad: lane -> (q % 8, p), so a
// warp writes 4 rows of dW x 8 consecutive features. Both read the column-major C without
// conflicts and write whole sectors (see the top of the file).
template <bool kLanesAlongP>
__device__ inline void tile_position(int e, int& p, int& q) {
  if (kLanesAlongP) {
    p = e & (kTileP - 1);
    q = e >> 7;
  } else {
    p = (e >> 3) & (kTileP - 1);
    q = (e & 7) | ((e >> 10) << 3);
  }
}

// fp32: thread (hi, lo) = (tid / 16, tid % 16); the lo index runs along p when kLanesAlongP (so
// the forward's direct stores go along a row of out) and along q otherwise (along a row of dW).
// The thread owns p = 4g + i and 64 + 4g + i (i < 4), q = 4h + j (j < 4).
template <bool kLanesAlongP>
struct SimtMath {
  using Element = float;
  static constexpr Staged kStaged = Staged::fp32;
  static constexpr int kSharedBytes = 2 * sizeof(Stage<float>);
  float acc[8][4];

  __device__ int g() const { return kLanesAlongP ? threadIdx.x & 15 : threadIdx.x >> 4; }
  __device__ int h() const { return kLanesAlongP ? threadIdx.x >> 4 : threadIdx.x & 15; }
  __device__ void zero() {
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
  }
  __device__ void multiply(const Stage<float>& s) {
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
  __device__ void store(unsigned char*, Out&& out) const {
    const int gp = 4 * g(), hq = 4 * h();
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) out((i < 4 ? gp + i : 64 + gp + i - 4), hq + j, acc[i][j]);
  }
};

// tf32 / bf16: warp w owns C[32*(w % 4) + 16i .., 32*(w / 4) + 16j ..], i, j < 2, as four 16 x 16
// accumulators. WMMA with TF32 or BF16 needs sm_80 or newer; the library is built for 80 and 90.
namespace wmma = nvcuda::wmma;

template <class T, bool kLanesAlongP>
struct WmmaMath {
  using Element = T;
  static constexpr Staged kStaged = std::is_same<T, float>::value ? Staged::tf32 : Staged::bf16;
  static constexpr int kK = WmmaShape<T>::k;
  using Precision = typename WmmaShape<T>::Precision;
  static constexpr int kStageBytes = 2 * sizeof(Stage<T>);
  static constexpr int kTileBytes = kTileQ * kStrideC * sizeof(float);
  static constexpr int kSharedBytes = kStageBytes > kTileBytes ? kStageBytes : kTileBytes;
  wmma::fragment<wmma::accumulator, 16, 16, kK, float> acc[2][2];

  __device__ void zero() {
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  }
  __device__ void multiply(const Stage<T>& s) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    const int warp = threadIdx.x >> 5, wp = 32 * (warp & 3), wq = 32 * (warp >> 2);
#pragma unroll
    for (int r = 0; r < kDepth; r += kK) {
      // A = P^T slice: element (p, r) at s.p[r][p], column-major with leading dimension 136.
      // B = Q slice: element (r, q) at s.q[r][q], row-major with leading dimension 72.
      wmma::fragment<wmma::matrix_a, 16, 16, kK, Precision, wmma::col_major> a[2];
      wmma::fragment<wmma::matrix_b, 16, 16, kK, Precision, wmma::row_major> b[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        wmma::load_matrix_sync(a[i], &s.p[r][wp + 16 * i], kStrideP);
        wmma::load_matrix_sync(b[i], &s.q[r][wq + 16 * i], kStrideQ);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
#else
    __trap();  // not built for this architecture
#endif
  }
  // The mainloop ended with __syncthreads, so no thread still reads the stages whose bytes the
  // tile C reuses.
  template <class Out>
  __device__ void store(unsigned char* shared, Out&& out) const {
    float(*c)[kStrideC] = reinterpret_cast<float(*)[kStrideC]>(shared);
    const int warp = threadIdx.x >> 5, wp = 32 * (warp & 3), wq = 32 * (warp >> 2);
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j)
        wmma::store_matrix_sync(&c[wq + 16 * j][wp + 16 * i], acc[i][j], kStrideC,
                                wmma::mem_col_major);
    __syncthreads();
    for (int e = threadIdx.x; e < kTileP * kTileQ; e += kThreads) {
      int p, q;
      tile_position<kLanesAlongP>(e, p, q);
      out(p, q, c[q][p]);
    }
  }
};

// The launched instantiations (named, so each launch names one type).
using ForwardFp32 = SimtMath<true>;
using ForwardTf32 = WmmaMath<float, true>;
using ForwardBf16 = WmmaMath<__nv_bfloat16, true>;
using WgradFp32 = SimtMath<false>;
using WgradTf32 = WmmaMath<float, false>;
using WgradBf16 = WmmaMath<__nv_bfloat16, false>;

// ---- the double-buffered loop over stages ----------------------------------------------------
// Stage s is multiplied from buffer s % 2 while stage s+1 is fetched into registers and then
// written to buffer (s+1) % 2. That buffer was last read while multiplying stage s-1, and the
// __syncthreads at the end of iteration s-1 guarantees every thread finished that; the
// __syncthreads at the end of iteration s makes the new stage visible before it is multiplied.
template <class Math, class LoadP, class LoadQ, class Index>
__device__ void mainloop(LoadP& lp, LoadQ& lq, Index r_begin, Index r_end,
                         Stage<typename Math::Element>* stages, Math& math) {
  math.zero();
  const Index stages_total = (r_end - r_begin + kDepth - 1) / kDepth;
  if (stages_total <= 0) return;
  lp.fetch();
  lq.fetch();
  lp.template put<Math::kStaged>(stages[0]);
  lq.template put<Math::kStaged>(stages[0]);
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
      lp.template put<Math::kStaged>(next);
      lq.template put<Math::kStaged>(next);
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
  auto* stages = reinterpret_cast<Stage<typename Math::Element>*>(shared);
  const long long m0 = (long long)blockIdx.x * kTileQ;
  const int n0 = blockIdx.y * kTileP;
  WeightAlongR lp(W, N, K, n0);
  MaskedAlongQ lq(key, x, B, K, M, m0);
  Math math;
  mainloop<Math>(lp, lq, 0, K, stages, math);
  math.store(shared, [&](int p, int q, float value) {
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
  auto* stages = reinterpret_cast<Stage<typename Math::Element>*>(shared);
  const int k0 = blockIdx.x * kTileQ;
  const int n0 = blockIdx.y * kTileP;
  const long long r_begin = (long long)blockIdx.z * rows;
  const long long r_end = r_begin + rows < M ? r_begin + rows : M;
  GradAlongR lp(dU, N, r_begin, r_end, n0);
  MaskedAlongR lq(key, x, B, K, r_begin, r_end, k0);
  Math math;
  mainloop<Math>(lp, lq, r_begin, r_end, stages, math);
  float* part = partial + (size_t)blockIdx.z * N * K;
  math.store(shared, [&](int p, int q, float value) {
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

}  // namespace

void masked_linear_forward(NoiseKey key, const float* x, int T, int B, int K, const float* W,
                           int N, float* out, MatmulPrecision math, cudaStream_t stream) {
  check_shapes("masked_linear_forward", T, B, K, N);
  const long long M = (long long)T * B;
  const dim3 grid(grid_for(M, kTileQ), unsigned((N + kTileP - 1) / kTileP));
  if (math == MatmulPrecision::tf32)
    masked_linear_forward_kernel<ForwardTf32><<<grid, kThreads, 0, stream>>>(key, x, B, K, M, W, N, out);
  else if (math == MatmulPrecision::bf16)
    masked_linear_forward_kernel<ForwardBf16><<<grid, kThreads, 0, stream>>>(key, x, B, K, M, W, N, out);
  else
    masked_linear_forward_kernel<ForwardFp32><<<grid, kThreads, 0, stream>>>(key, x, B, K, M, W, N, out);
  NMSNN_CHECK_LAUNCH("masked_linear_forward", "M=T*B=", T, "*", B, ", N=", N, ", K=", K, ", ",
                     to_string(math));
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
  const dim3 grid(grid_for(K, kTileQ), unsigned((N + kTileP - 1) / kTileP), unsigned(split.splits));
  if (math == MatmulPrecision::tf32)
    masked_linear_wgrad_kernel<WgradTf32>
        <<<grid, kThreads, 0, stream>>>(key, x, B, K, M, split.rows, dU, N, out);
  else if (math == MatmulPrecision::bf16)
    masked_linear_wgrad_kernel<WgradBf16>
        <<<grid, kThreads, 0, stream>>>(key, x, B, K, M, split.rows, dU, N, out);
  else
    masked_linear_wgrad_kernel<WgradFp32>
        <<<grid, kThreads, 0, stream>>>(key, x, B, K, M, split.rows, dU, N, out);
  NMSNN_CHECK_LAUNCH("masked_linear_wgrad", "M=T*B=", T, "*", B, ", N=", N, ", K=", K,
                     ", splits=", split.splits, ", ", to_string(math));
  if (split.splits == 1) return;
  const size_t count = size_t(N) * K;
  const unsigned blocks = unsigned(std::min<size_t>((count + 255) / 256, 4096));
  reduce_partials_kernel<<<blocks, 256, 0, stream>>>(scratch, split.splits, count, dW);
  NMSNN_CHECK_LAUNCH("masked_linear_wgrad reduce", "splits=", split.splits, ", N=", N, ", K=", K);
}

}  // namespace nmsnn::kernels
