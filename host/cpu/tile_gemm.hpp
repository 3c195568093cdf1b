// cpu/tile_gemm.hpp — the one matrix-product kernel of the CPU engine.
//
//   C[r, 0:width] += sum_j A(r, j) * B[j, 0:width]      for r < rows
//
// A is read through two strides (so the same kernel serves A and A transposed), the rows of B and
// C through optional index lists (so it can gather the rows of nonzero inputs and scatter into
// the rows of a weight gradient). Four rows of C times up to 24 columns are accumulated in
// registers across the whole j loop, which is what makes it fast: every B row loaded is used four
// times and C is touched once per tile. `width` must be a multiple of 8 (layers are padded).
#pragma once

#include <cstddef>

#include "nmsnn/error.hpp"

namespace nmsnn::cpu {

template <class Real>
struct RowsOf {
  Real* base = nullptr;
  size_t stride = 0;
  const int* index = nullptr;  // row r is base + index[r]*stride when given, else base + r*stride
  Real* row(int r) const { return base + size_t(index ? index[r] : r) * stride; }
};

// A 32-byte vector of Real (8 floats, 4 doubles) in GCC's vector extension: the tile below is
// written with it so the compiler cannot choose another vectorisation (it once chose gathers).
template <class Real>
struct Vec32 {
  typedef Real type __attribute__((vector_size(32)));
  static constexpr int lanes = 32 / sizeof(Real);
  static type load(const Real* p) {
    type v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(Real* p, type v) { __builtin_memcpy(p, &v, sizeof v); }
};

// R rows x W columns starting at column `col`; acc stays in vector registers for the j loop.
template <class Real, int R, int W>
inline void gemm_tile(int J, const Real* A, size_t a_r, size_t a_j, RowsOf<const Real> B,
                      Real* const* C, int col) {
  using V = Vec32<Real>;
  constexpr int N = W / V::lanes;
  typename V::type acc[R][N];
  for (int r = 0; r < R; ++r)
    for (int n = 0; n < N; ++n) acc[r][n] = V::load(C[r] + col + n * V::lanes);
  for (int j = 0; j < J; ++j) {
    const Real* b = B.row(j) + col;
    typename V::type bv[N];
    for (int n = 0; n < N; ++n) bv[n] = V::load(b + n * V::lanes);
    for (int r = 0; r < R; ++r) {
      const Real x = A[r * a_r + j * a_j];
      for (int n = 0; n < N; ++n) acc[r][n] += x * bv[n];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int n = 0; n < N; ++n) V::store(C[r] + col + n * V::lanes, acc[r][n]);
}

template <class Real, int W>
inline void gemm_column_tile(int rows, int J, const Real* A, size_t a_r, size_t a_j,
                             RowsOf<const Real> B, RowsOf<Real> C, int col) {
  // The j loop runs in blocks of 128 rows of B, so one block stays in the L1 cache while every row
  // block of C reads it; C is reloaded once per j block. B's rows are strided (a whole layer
  // apart), so a row's 24-value slice spans 2-3 cache lines: 128 rows fill ~40% of a 32 KB L1,
  // 256 rows overflowed it (measured: 128 rows train the dense seed step 1.2x faster).
  constexpr int kJBlock = 128;
  for (int j0 = 0; j0 < J; j0 += kJBlock) {
    const int jn = J - j0 < kJBlock ? J - j0 : kJBlock;
    RowsOf<const Real> Bj = B;
    if (Bj.index) Bj.index += j0;
    else Bj.base += size_t(j0) * Bj.stride;
    for (int r0 = 0; r0 < rows; r0 += 4) {
      Real* c[4];
      const int R = rows - r0 < 4 ? rows - r0 : 4;
      for (int r = 0; r < R; ++r) c[r] = C.row(r0 + r);
      const Real* a = A + size_t(r0) * a_r + size_t(j0) * a_j;
      switch (R) {
        case 4: gemm_tile<Real, 4, W>(jn, a, a_r, a_j, Bj, c, col); break;
        case 3: gemm_tile<Real, 3, W>(jn, a, a_r, a_j, Bj, c, col); break;
        case 2: gemm_tile<Real, 2, W>(jn, a, a_r, a_j, Bj, c, col); break;
        default: gemm_tile<Real, 1, W>(jn, a, a_r, a_j, Bj, c, col); break;
      }
    }
  }
}

// C[r, :] += sum_j A[r*a_r + j*a_j] * B.row(j)[:] for r < rows, j < J. Column tiles are the outer
// loop so the part of B one tile reads (J x 24 values) stays in the L1 cache across all rows.
template <class Real>
void gemm_accumulate(int rows, int J, int width, const Real* A, size_t a_r, size_t a_j,
                     RowsOf<const Real> B, RowsOf<Real> C) {
  if (width % 8 != 0) detail::fail("gemm_accumulate: width ", width, " is not a multiple of 8");
  int col = 0;
  for (; col + 24 <= width; col += 24) gemm_column_tile<Real, 24>(rows, J, A, a_r, a_j, B, C, col);
  if (width - col == 16) gemm_column_tile<Real, 16>(rows, J, A, a_r, a_j, B, C, col);
  if (width - col == 8) gemm_column_tile<Real, 8>(rows, J, A, a_r, a_j, B, C, col);
}

}  // namespace nmsnn::cpu
