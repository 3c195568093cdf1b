// mma.h (emulated) — the WMMA subset of the TF32 tile product. Every thread holds the whole
// fragment (the real distribution across a warp is opaque, and the code only uses the documented
// whole-fragment operations and element-wise access). A store is the warp's: one lane writes the
// whole tile, so under ThreadSanitizer a read of it that no barrier orders after the store is
// reported, as it would be wrong on the device, where each lane writes its own part.
#pragma once
#include <cmath>
#include <cstring>

#include "emulated_kernel.hpp"
namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
namespace precision {
struct tf32 {};
}  // namespace precision
enum layout_t { mem_row_major, mem_col_major };
template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment;
template <int M, int N, int K, class L>
struct fragment<matrix_a, M, N, K, precision::tf32, L> {
  static constexpr int rows = M, cols = K, num_elements = M * K;
  float x[M * K];
};
template <int M, int N, int K, class L>
struct fragment<matrix_b, M, N, K, precision::tf32, L> {
  static constexpr int rows = K, cols = N, num_elements = K * N;
  float x[K * N];
};
template <int M, int N, int K>
struct fragment<accumulator, M, N, K, float, void> {
  static constexpr int rows = M, cols = N, num_elements = M * N;
  float x[M * N];
};
template <class F>
void fill_fragment(F& f, float v) {
  for (int i = 0; i < F::num_elements; ++i) f.x[i] = v;
}
// x[r * cols + c] holds element (r, c).
template <class Use, int M, int N, int K, class L>
void load_matrix_sync(fragment<Use, M, N, K, precision::tf32, L>& f, const float* p, unsigned ldm) {
  using F = fragment<Use, M, N, K, precision::tf32, L>;
  for (int r = 0; r < F::rows; ++r)
    for (int c = 0; c < F::cols; ++c)
      f.x[r * F::cols + c] =
          std::is_same<L, row_major>::value ? p[size_t(r) * ldm + c] : p[size_t(c) * ldm + r];
}
template <int M, int N, int K, class LA, class LB>
void mma_sync(fragment<accumulator, M, N, K, float, void>& d,
              const fragment<matrix_a, M, N, K, precision::tf32, LA>& a,
              const fragment<matrix_b, M, N, K, precision::tf32, LB>& b,
              const fragment<accumulator, M, N, K, float, void>& c) {
  float out[M * N];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float s = c.x[i * N + j];
      for (int k = 0; k < K; ++k) s += a.x[i * K + k] * b.x[k * N + j];
      out[i * N + j] = s;
    }
  std::memcpy(d.x, out, sizeof out);
}
template <int M, int N, int K>
void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, float, void>& f, unsigned ldm,
                       layout_t l) {
  const uint3 t = ::emulated::thread_index;
  const dim3 b = ::emulated::block_dim;
  if ((t.x + b.x * (t.y + b.y * t.z)) % 32 != 0) return;
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c)
      (l == mem_row_major ? p[size_t(r) * ldm + c] : p[size_t(c) * ldm + r]) = f.x[r * N + c];
}
inline float __float_to_tf32(float v) {  // round to 10 mantissa bits
  unsigned u;
  std::memcpy(&u, &v, 4);
  u = (u + 0x1000u) & ~0x1FFFu;
  std::memcpy(&v, &u, 4);
  return v;
}
}  // namespace wmma
}  // namespace nvcuda
