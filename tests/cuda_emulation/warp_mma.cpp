// warp_mma.cpp (emulated) — mma.sync lane by lane. An mma.sync records the lane's operand
// registers; after the block's next barrier each lane rebuilds, from the records of the lanes
// that hold them, the rows of A and the columns of B its four accumulators need, with the
// documented fragment layouts (kernels/mma_sync.cuh, from the PTX ISA), and adds the products
// (see Warp in emulated_kernel.hpp for why at the barrier). A kernel whose lanes hold the wrong
// elements gets the wrong product here, as on the GPU.
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

// Operation i of this warp's list `ops` (every lane's, by lane), applied to this lane's
// accumulators: rows g and g + 8 of A (held by lanes 4g .. 4g+3), columns 2t and 2t + 1 of B
// (held by lanes 4(2t) .. and 4(2t+1) ..), g = lane / 4, t = lane % 4.
void apply(const std::vector<Warp::Mma> (&ops)[32], size_t i) {
  const int g = int(lane) / 4, t = int(lane) % 4;
  const Warp::Mma& mine = ops[lane][i];
  float A[2][16] = {}, B[16][2] = {};  // A: rows g, g + 8; B: columns 2t, 2t + 1
  int K = 8;
  if (!mine.bf16) {
    for (int c = 0; c < 4; ++c) {  // the lanes of group g hold columns c and c + 4
      const Warp::Mma& o = ops[4 * g + c][i];
      A[0][c] = tf32(o.a[0]);
      A[1][c] = tf32(o.a[1]);
      A[0][c + 4] = tf32(o.a[2]);
      A[1][c + 4] = tf32(o.a[3]);
    }
    for (int n = 0; n < 2; ++n)  // column 2t + n is held by the lanes of group 2t + n
      for (int c = 0; c < 4; ++c) {
        const Warp::Mma& o = ops[4 * (2 * t + n) + c][i];
        B[c][n] = tf32(o.b[0]);
        B[c + 4][n] = tf32(o.b[1]);
      }
  } else {
    K = 16;
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
    for (int n = 0; n < 2; ++n)
      for (int c = 0; c < 4; ++c) {
        const Warp::Mma& o = ops[4 * (2 * t + n) + c][i];
        for (int half = 0; half < 2; ++half) {
          const int k = 2 * c + 8 * half;
          B[k][n] = bf16_low(o.b[half]);
          B[k + 1][n] = bf16_high(o.b[half]);
        }
      }
  }
  // c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1).
  for (int e = 0; e < 4; ++e) {
    const int r = e >> 1, n = e & 1;
    float s = mine.d[e];
    for (int k = 0; k < K; ++k) s += A[r][k] * B[k][n];
    mine.d[e] = s;
  }
}

}  // namespace

void mma_tf32_m16n8k8(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  record(d, a, b, false);
}
void mma_bf16_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  record(d, a, b, true);
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
  for (size_t i = 0; i < n; ++i) apply(ops, i);
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
