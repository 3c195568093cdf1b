// cpu/tile_gemm.hpp — the one matrix-product kernel of the CPU engine.
//
//   C[r, 0:width] += sum_j A(r, j) * B[j, 0:width]      for r < rows
//
// A is read through two strides (so the same kernel serves A and A transposed), the rows of B and
// C through optional index lists (so it can gather the rows of nonzero inputs and scatter into
// the rows of a weight gradient). A tile of rows of C times a few vectors of columns is
// accumulated in registers across the whole j loop, which is what makes it fast: every B row
// loaded is used once per tile row and C is touched once per tile. `width` must be a multiple of
// 8 (layers are padded). The kernel is compiled for the baseline, AVX2+FMA and AVX-512 and chosen
// at run time (kernel_set.hpp). Every set adds the products over j in the same order, so the sets
// differ only by the rounding of FMA against a multiply and an add.
#pragma once

#include <cstddef>

#include "cpu/kernel_set.hpp"
#include "nmsnn/error.hpp"

namespace nmsnn::cpu {

template <class Real>
struct RowsOf {
  Real* base = nullptr;
  size_t stride = 0;
  const int* index = nullptr;  // row r is base + index[r]*stride when given, else base + r*stride
  Real* row(int r) const { return base + size_t(index ? index[r] : r) * stride; }
};

// A vector of Real in GCC's vector extension: the tile below is written with it so the compiler
// cannot choose another vectorisation (it once chose gathers). 64 bytes (16 floats) for AVX-512,
// 32 for AVX2, 16 for the baseline (SSE2 on x86-64, NEON on aarch64).
template <class Real, int Bytes>
struct Vec {
  typedef Real type __attribute__((vector_size(Bytes)));
  static constexpr int lanes = Bytes / sizeof(Real);
};

// An unaligned load into a vector passed by reference: a function returning a 32-byte
// vector has another ABI without AVX (GCC warns, even when it is inlined). Loads and stores go
// through temporaries so the accumulators' addresses are never taken and they stay in registers
// (memcpy straight into acc[r][n] made GCC keep the whole tile on the stack: 2.3x slower).
template <class V, class Real>
[[gnu::always_inline]] inline void load_into(typename V::type& out, const Real* p) {
  typename V::type v;
  __builtin_memcpy(&v, p, sizeof v);
  out = v;
}

// The tile functions are always inlined into the per-kernel-set entry points below, so each copy
// is compiled for that entry point's instruction set.

// R rows x W columns starting at column `col`; acc stays in vector registers for the j loop.
template <class Real, int Bytes, int R, int W>
[[gnu::always_inline]] inline void gemm_tile(int J, const Real* A, size_t a_r, size_t a_j,
                                             RowsOf<const Real> B, Real* const* C, int col) {
  using V = Vec<Real, Bytes>;
  constexpr int N = W / V::lanes;
  typename V::type acc[R][N];
  for (int r = 0; r < R; ++r)
    for (int n = 0; n < N; ++n) load_into<V>(acc[r][n], C[r] + col + n * V::lanes);
  // One j: a row of B (its W columns) times one value of A per tile row.
  auto step = [&](const Real* b, const Real* a) __attribute__((always_inline)) {
    typename V::type bv[N];
    for (int n = 0; n < N; ++n) load_into<V>(bv[n], b + n * V::lanes);
    for (int r = 0; r < R; ++r) {
      const Real x = a[r * a_r];
      for (int n = 0; n < N; ++n) acc[r][n] += x * bv[n];
    }
  };
  // Two loops rather than B.row(j) in one: GCC kept the test for an index list inside the loop,
  // and the loop is short (12 FMAs a j on AVX2), so the test and the row arithmetic cost; unrolled
  // twice for the same reason. Measured on the seed's dense step (AVX2, Zen 3): 37% -> 44% of the
  // FMA peak. No tile spills a register in any set (checked in the disassembly).
  if (B.index) {
    const Real* b = B.base + col;
#pragma GCC unroll 2
    for (int j = 0; j < J; ++j) step(b + size_t(B.index[j]) * B.stride, A + j * a_j);
  } else {
    const Real* b = B.base + col;
    const Real* a = A;
#pragma GCC unroll 2
    for (int j = 0; j < J; ++j, b += B.stride, a += a_j) step(b, a);
  }
  for (int r = 0; r < R; ++r)
    for (int n = 0; n < N; ++n) {
      const typename V::type value = acc[r][n];  // a copy: acc's address is never taken
      __builtin_memcpy(C[r] + col + n * V::lanes, &value, Bytes);
    }
}

// gemm_tile with its row count R a constant: the full tile, or one of the shorter last ones.
template <class Real, int Bytes, int W, int R>
[[gnu::always_inline]] inline void gemm_tile_rows(int rows, int J, const Real* A, size_t a_r,
                                                  size_t a_j, RowsOf<const Real> B,
                                                  Real* const* C, int col) {
  if constexpr (R > 1)
    if (rows < R) return gemm_tile_rows<Real, Bytes, W, R - 1>(rows, J, A, a_r, a_j, B, C, col);
  gemm_tile<Real, Bytes, R, W>(J, A, a_r, a_j, B, C, col);
}

// One column tile of a block of rows of C over one block of j: RMax rows at a time.
template <class Real, int Bytes, int W, int RMax>
[[gnu::always_inline]] inline void gemm_column_tile(int rows, int J, const Real* A, size_t a_r,
                                                    size_t a_j, RowsOf<const Real> B,
                                                    RowsOf<Real> C, int col) {
  for (int r0 = 0; r0 < rows; r0 += RMax) {
    Real* c[RMax];
    const int R = rows - r0 < RMax ? rows - r0 : RMax;
    for (int r = 0; r < R; ++r) c[r] = C.row(r0 + r);
    gemm_tile_rows<Real, Bytes, W, RMax>(R, J, A + size_t(r0) * a_r, a_r, a_j, B, c, col);
  }
}

// Within a block, column tiles are the outer loop so the part of B one tile reads (at most
// 128 x W values) stays in the L1 cache across the block's rows. AVX2 has 16 vector registers of
// 32 bytes: 4 rows x 24 columns is 12 accumulators plus 3 loads. AVX-512 has 32 registers of 64
// bytes: 8 rows x 3 vectors (48 floats) is 24 accumulators plus 3 loads and a broadcast; 8 rows
// rather than 4 because each j then loads 3 + 8 values for 24 FMAs, within the two loads a cycle
// that feed two FMA units. Where the vectors do not divide by 3, one tile is 6 rows x 4 vectors
// (also 24 accumulators), so a lone 1-vector tile (9 loads for 8 FMAs) is rare; a width that is
// not a multiple of 16 floats ends with a 32-byte tile of 8 columns. The 16-byte baseline (16
// registers on x86-64 and more on aarch64) keeps 4 rows x 8 columns, 8 accumulators, so it never
// spills.
template <class Real, int Bytes>
[[gnu::always_inline]] inline void gemm_column_tiles(int rows, int J, int width, const Real* A,
                                                     size_t a_r, size_t a_j, RowsOf<const Real> B,
                                                     RowsOf<Real> C) {
  int col = 0;
  if constexpr (Bytes == 64) {
    constexpr int L = Vec<Real, 64>::lanes;
    int vectors = width / L;
    if (vectors % 3 == 1 && vectors >= 4) {  // e.g. 112 floats = 4 + 3 vectors, no 1-vector tile
      gemm_column_tile<Real, 64, 4 * L, 6>(rows, J, A, a_r, a_j, B, C, col);
      col += 4 * L, vectors -= 4;
    }
    for (; vectors >= 3; vectors -= 3, col += 3 * L)
      gemm_column_tile<Real, 64, 3 * L, 8>(rows, J, A, a_r, a_j, B, C, col);
    if (vectors == 2) gemm_column_tile<Real, 64, 2 * L, 8>(rows, J, A, a_r, a_j, B, C, col);
    if (vectors == 1) gemm_column_tile<Real, 64, L, 8>(rows, J, A, a_r, a_j, B, C, col);
    col += vectors * L;
    if (width - col == 8) gemm_column_tile<Real, 32, 8, 8>(rows, J, A, a_r, a_j, B, C, col);
  } else if constexpr (Bytes == 32) {
    // A width that leaves 8 after the 24-column tiles (the seed's 100 neurons pad to 104) ends
    // with two 6 x 16 tiles instead of 24 + 8: a 4 x 8 tile has 4 accumulators, too few to cover
    // the FMA latency, and loads 5 values for 4 FMAs.
    for (; width - col >= 24 && width - col != 32; col += 24)
      gemm_column_tile<Real, Bytes, 24, 4>(rows, J, A, a_r, a_j, B, C, col);
    for (; width - col >= 16; col += 16)
      gemm_column_tile<Real, Bytes, 16, 6>(rows, J, A, a_r, a_j, B, C, col);
    if (width - col == 8) gemm_column_tile<Real, Bytes, 8, 4>(rows, J, A, a_r, a_j, B, C, col);
  } else {
    for (; col < width; col += 8)
      gemm_column_tile<Real, Bytes, 8, 4>(rows, J, A, a_r, a_j, B, C, col);
  }
}

// The product in blocks of 128 values of j and 64 rows of C, every column tile inside a block:
// the block's part of A (at most 32 KB) and of B (128 rows of the layer) stay in the L1 and L2
// caches while every column tile reads them. With the column tiles outermost instead, each tile
// streamed all of A again: for the seed's first layer (A 784 x 128, B 784 x 104 per sample,
// together more than a 512 KB L2) that was five passes from the L3, and the product ran at
// 45-65% of the FMA peak instead of 65-80%. Each C value still adds its products in the order of
// j, block after block, so the result does not depend on the blocking. 128 values of j: B's rows
// are strided (a whole layer apart), so a row's 24-value slice spans 2-3 cache lines and 128 rows
// fill ~40% of a 32 KB L1; 256 overflowed it (measured: 128 trained the dense seed step 1.2x
// faster).
template <class Real, int Bytes>
[[gnu::always_inline]] inline void gemm_columns(int rows, int J, int width, const Real* A,
                                                size_t a_r, size_t a_j, RowsOf<const Real> B,
                                                RowsOf<Real> C) {
  constexpr int kJBlock = 128, kRowBlock = 64;
  for (int j0 = 0; j0 < J; j0 += kJBlock) {
    const int jn = J - j0 < kJBlock ? J - j0 : kJBlock;
    RowsOf<const Real> Bj = B;
    if (Bj.index) Bj.index += j0;
    else Bj.base += size_t(j0) * Bj.stride;
    for (int r0 = 0; r0 < rows; r0 += kRowBlock) {
      const int rn = rows - r0 < kRowBlock ? rows - r0 : kRowBlock;
      RowsOf<Real> Cr = C;
      if (Cr.index) Cr.index += r0;
      else Cr.base += size_t(r0) * Cr.stride;
      gemm_column_tiles<Real, Bytes>(rn, jn, width, A + size_t(r0) * a_r + size_t(j0) * a_j, a_r,
                                     a_j, Bj, Cr);
    }
  }
}

template <class Real>
void gemm_accumulate_baseline(int rows, int J, int width, const Real* A, size_t a_r, size_t a_j,
                              RowsOf<const Real> B, RowsOf<Real> C) {
  gemm_columns<Real, 16>(rows, J, width, A, a_r, a_j, B, C);
}

#if defined(NMSNN_CPU_X86)
template <class Real>
NMSNN_TARGET_AVX2 void gemm_accumulate_avx2(int rows, int J, int width, const Real* A, size_t a_r,
                                            size_t a_j, RowsOf<const Real> B, RowsOf<Real> C) {
  gemm_columns<Real, 32>(rows, J, width, A, a_r, a_j, B, C);
}

// Intrinsic-free like the others: GCC's vector extension, no constant vectors (the construct
// GCC 12.2 miscompiles with AVX-512, tests/compiler_soundness.cpp).
template <class Real>
NMSNN_TARGET_AVX512 void gemm_accumulate_avx512(int rows, int J, int width, const Real* A,
                                                size_t a_r, size_t a_j, RowsOf<const Real> B,
                                                RowsOf<Real> C) {
  gemm_columns<Real, 64>(rows, J, width, A, a_r, a_j, B, C);
}
#endif

// C[r, :] += sum_j A[r*a_r + j*a_j] * B.row(j)[:] for r < rows, j < J, with the kernel set chosen
// for this CPU (kernel_set.hpp).
template <class Real>
void gemm_accumulate(int rows, int J, int width, const Real* A, size_t a_r, size_t a_j,
                     RowsOf<const Real> B, RowsOf<Real> C) {
  if (width % 8 != 0) detail::fail("gemm_accumulate: width ", width, " is not a multiple of 8");
#if defined(NMSNN_CPU_X86)
  switch (active_kernel_set()) {
    case KernelSet::avx512: return gemm_accumulate_avx512<Real>(rows, J, width, A, a_r, a_j, B, C);
    case KernelSet::avx2: return gemm_accumulate_avx2<Real>(rows, J, width, A, a_r, a_j, B, C);
    default: break;
  }
#endif
  gemm_accumulate_baseline<Real>(rows, J, width, A, a_r, a_j, B, C);
}

}  // namespace nmsnn::cpu
