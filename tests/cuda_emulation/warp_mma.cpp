// warp_mma.cpp (emulated) — mma.sync and a warp's share of wgmma, lane by lane. Either records
// the lane's operand registers (and for wgmma where its B tile is); after the block's next barrier
// each lane rebuilds, from the records of the lanes that hold them, the rows of A its
// accumulators need, and the columns of B from the other lanes (mma.sync) or from the shared
// tile (wgmma), with the documented layouts (kernels/mma_sync.cuh and kernels/wgmma.cuh, from the
// PTX ISA), and adds the products (see Warp in emulated_kernel.hpp for why at the barrier). A
// kernel whose lanes or tile hold the wrong elements gets the wrong product here, as on the GPU.
//
// The arithmetic is the tensor cores': the hardware reads only the top 19 bits of a TF32 operand
// (so an unrounded one is truncated, as here), a TF32 or BF16 product is exact in FP32
// (11 + 11 or 8 + 8 significant bits <= 24), and the products are added to the accumulator in
// order of k.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "emulated_kernel.hpp"

namespace emulated {
namespace {

void record(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], bool bf16) {
  if (!warp || warp->lanes != 32) {
    std::fprintf(stderr, "mma.sync: issued outside a whole warp of 32 threads\n");
    std::abort();
  }
  Warp::Mma op{d, {a[0], a[1], a[2], a[3]}, {b[0], b[1]}, bf16};
  warp->pending[barriers & 1][lane].push_back(op);
}

float as_float(uint32_t u) {
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}
float tf32(uint32_t u) { return as_float(u & ~0x1FFFu); }  // the 19 bits the hardware reads
float bf16_low(uint32_t u) { return as_float(u << 16); }
float bf16_high(uint32_t u) { return as_float(u & 0xFFFF0000u); }

// Rows g and g + 8 of A (held by lanes 4g .. 4g+3), the same fragment in mma.sync and in a
// warp's share of wgmma; returns K.
int gather_a(const std::vector<Warp::Mma> (&ops)[32], size_t i, int g, float (&A)[2][16]) {
  if (!ops[lane][i].bf16) {
    for (int c = 0; c < 4; ++c) {  // the lanes of group g hold columns c and c + 4
      const Warp::Mma& o = ops[4 * g + c][i];
      A[0][c] = tf32(o.a[0]);
      A[1][c] = tf32(o.a[1]);
      A[0][c + 4] = tf32(o.a[2]);
      A[1][c + 4] = tf32(o.a[3]);
    }
    return 8;
  }
  for (int c = 0; c < 4; ++c) {  // lane 4g + c holds columns 2c, 2c+1 and 2c+8, 2c+9
    const Warp::Mma& o = ops[4 * g + c][i];
    for (int half = 0; half < 2; ++half) {
      const int k = 2 * c + 8 * half;
      A[0][k] = bf16_low(o.a[2 * half]);
      A[0][k + 1] = bf16_high(o.a[2 * half]);
      A[1][k] = bf16_low(o.a[2 * half + 1]);
      A[1][k + 1] = bf16_high(o.a[2 * half + 1]);
    }
  }
  return 16;
}

// c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1) of one n8 tile: d[e] += A B.
void accumulate(float* d, const float (&A)[2][16], const float (&B)[16][2], int K) {
  for (int e = 0; e < 4; ++e) {
    const int r = e >> 1, n = e & 1;
    float s = d[e];
    for (int k = 0; k < K; ++k) s += A[r][k] * B[k][n];
    d[e] = s;
  }
}

// Operation i of this warp's list `ops` (every lane's, by lane), an mma.sync, applied to this
// lane's accumulators: columns 2t and 2t + 1 of B held by lanes 4(2t) .. and 4(2t+1) ..,
// g = lane / 4, t = lane % 4.
void apply_mma(const std::vector<Warp::Mma> (&ops)[32], size_t i) {
  const int g = int(lane) / 4, t = int(lane) % 4;
  float A[2][16] = {}, B[16][2] = {};  // A: rows g, g + 8; B: columns 2t, 2t + 1
  const int K = gather_a(ops, i, g, A);
  for (int n = 0; n < 2; ++n)  // column 2t + n is held by the lanes of group 2t + n
    for (int c = 0; c < 4; ++c) {
      const Warp::Mma& o = ops[4 * (2 * t + n) + c][i];
      if (K == 8) {
        B[c][n] = tf32(o.b[0]);
        B[c + 4][n] = tf32(o.b[1]);
      } else {
        for (int half = 0; half < 2; ++half) {
          const int k = 2 * c + 8 * half;
          B[k][n] = bf16_low(o.b[half]);
          B[k + 1][n] = bf16_high(o.b[half]);
        }
      }
    }
  accumulate(ops[lane][i].d, A, B, K);
}

// Operation i, a wgmma: this warp's rows of the m64 tile, every n8 tile j of its N, with the
// columns of B the lane recorded at issue (see wgmma_m64 below).
void apply_wgmma(const std::vector<Warp::Mma> (&ops)[32], size_t i) {
  const int g = int(lane) / 4;
  const Warp::Mma& mine = ops[lane][i];
  for (unsigned l = 0; l < 32; ++l)
    if (ops[l][i].n != mine.n || ops[l][i].bf16 != mine.bf16 || ops[l][i].tile != mine.tile ||
        ops[l][i].lbo != mine.lbo || ops[l][i].sbo != mine.sbo) {
      std::fprintf(stderr, "wgmma: lanes %u and %u issued different instructions or tiles\n",
                   lane, l);
      std::abort();
    }
  float A[2][16] = {};
  const int K = gather_a(ops, i, g, A);
  for (int j = 0; j < mine.n / 8; ++j) {
    float B[16][2] = {};
    for (int c = 0; c < 2; ++c)
      for (int k = 0; k < K; ++k) B[k][c] = mine.b_columns[size_t((2 * j + c) * K + k)];
    accumulate(mine.d + 4 * j, A, B, K);
  }
}

}  // namespace

void mma_tf32_m16n8k8(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  record(d, a, b, false);
}
void mma_bf16_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  record(d, a, b, true);
}

void wgmma_m64(float* d, int n, const uint32_t (&a)[4], const void* tile, uint64_t desc,
               bool bf16) {
  if (!warp || warp->lanes != 32) {
    std::fprintf(stderr, "wgmma: issued outside a whole warp of 32 threads\n");
    std::abort();
  }
  if (n < 8 || n > 256 || n % 8 || (desc >> 62) != 0) {
    std::fprintf(stderr, "wgmma: N=%d (8 .. 256, a multiple of 8) or a swizzled descriptor\n", n);
    std::abort();
  }
  Warp::Mma op{d, {a[0], a[1], a[2], a[3]}, {0, 0}, bf16};
  op.n = n;
  op.tile = static_cast<const unsigned char*>(tile);
  op.lbo = uint32_t((desc >> 16) & 0x3FFF) << 4;
  op.sbo = uint32_t((desc >> 32) & 0x3FFF) << 4;
  // This lane's columns 8j + 2t + c of B: (k, col) in the core matrix k / per_core along k (lbo
  // bytes apart) and col / 8 along n (sbo apart), its row col % 8 at 16 (col % 8) bytes.
  const int t = int(lane) % 4, K = bf16 ? 16 : 8, per_core = bf16 ? 8 : 4, bytes = bf16 ? 2 : 4;
  op.b_columns.resize(size_t(n / 8) * 2 * K);
  for (int j = 0; j < n / 8; ++j)
    for (int c = 0; c < 2; ++c)
      for (int k = 0; k < K; ++k) {
        const int col = 8 * j + 2 * t + c;
        const unsigned char* at = op.tile + (k / per_core) * op.lbo + (col / 8) * op.sbo +
                                  16 * (col % 8) + bytes * (k % per_core);
        uint32_t u = 0;
        std::memcpy(&u, at, size_t(bytes));
        op.b_columns[size_t((2 * j + c) * K + k)] = bf16 ? bf16_low(u) : tf32(u);
      }
  warp->pending[barriers & 1][lane].push_back(std::move(op));
}

void apply_pending_mma() {
  const unsigned parity = barriers++ & 1;
  if (!warp) return;
  // The list of two barriers ago: every lane finished reading it before this barrier.
  warp->pending[parity ^ 1][lane].clear();
  const auto& ops = warp->pending[parity];
  const size_t n = ops[lane].size();
  if (n == 0) return;
  for (unsigned l = 0; l < warp->lanes; ++l)
    if (ops[l].size() != n) {
      std::fprintf(stderr, "mma.sync: lane %u issued %zu, lane %u %zu: every lane of a warp "
                   "must issue each one\n", lane, n, l, ops[l].size());
      std::abort();
    }
  for (size_t i = 0; i < n; ++i) {
    if (ops[lane][i].n)
      apply_wgmma(ops, i);
    else
      apply_mma(ops, i);
  }
}

void check_no_pending_mma() {
  if (warp && !warp->pending[barriers & 1][lane].empty()) {
    std::fprintf(stderr, "mma.sync: results pending at the end of a block; the emulation applies "
                 "them at the next __syncthreads, so a kernel must pass one before it reads "
                 "them\n");
    std::abort();
  }
}

}  // namespace emulated
