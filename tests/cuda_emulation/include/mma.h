// mma.h (emulated) — the WMMA subset of the tile products: TF32 (m16n16k8) and BF16 (m16n16k16)
// operands with FP32 accumulators. Every thread holds the whole fragment (the real distribution
// across a warp is opaque, and the code only uses the documented whole-fragment operations and
// element-wise access on operand fragments; accumulators are only filled or loaded, multiplied
// into and stored). A store is the warp's: one lane writes the whole tile, so under
// ThreadSanitizer a read of it that no barrier orders after the store is reported, as it would be
// wrong on the device, where each lane writes its own part.
//
// The arithmetic is the tensor cores': a TF32 or BF16 operand times another is exact in FP32
// (11 + 11 or 8 + 8 significant bits <= 24), so mma_sync forms each product exactly and adds it to
// the FP32 accumulator in order of k. BF16 operands are rounded (to nearest even) where the code
// converts them (__float2bfloat16), TF32 ones by __float_to_tf32, as on the device.
#pragma once
#include <cmath>
#include <cstring>
#include <type_traits>

#include "cuda_bf16.h"
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

// The element a fragment of precision T holds, and what it is loaded from: a TF32 fragment holds
// floats (rounded by __float_to_tf32), a BF16 fragment bfloat16s.
template <class T>
struct storage {
  using type = T;
};
template <>
struct storage<precision::tf32> {
  using type = float;
};
inline float as_float(float v) { return v; }
inline float as_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment;
template <int M, int N, int K, class T, class L>
struct fragment<matrix_a, M, N, K, T, L> {
  static constexpr int rows = M, cols = K, num_elements = M * K;
  typename storage<T>::type x[M * K];
};
template <int M, int N, int K, class T, class L>
struct fragment<matrix_b, M, N, K, T, L> {
  static constexpr int rows = K, cols = N, num_elements = K * N;
  typename storage<T>::type x[K * N];
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
// x[r * cols + c] holds element (r, c). The device requires ldm to be a multiple of 16 bytes and
// the pointer 32-byte aligned; so does this.
template <class Use, int M, int N, int K, class T, class L>
void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const typename storage<T>::type* p,
                      unsigned ldm) {
  using F = fragment<Use, M, N, K, T, L>;
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0 || (ldm * sizeof(*p)) % 16 != 0) std::abort();
  for (int r = 0; r < F::rows; ++r)
    for (int c = 0; c < F::cols; ++c)
      f.x[r * F::cols + c] =
          std::is_same<L, row_major>::value ? p[size_t(r) * ldm + c] : p[size_t(c) * ldm + r];
}
// Whether the running thread is its warp's first lane, the one that holds accumulators.
inline bool first_lane() {
  const uint3 t = ::emulated::thread_index;
  const dim3 b = ::emulated::block_dim;
  return (t.x + b.x * (t.y + b.y * t.z)) % 32 == 0;
}
// Where an accumulator tile's element (r, c) is in memory; the same checks as above.
template <class P>
P& tile_element(P* p, int r, int c, unsigned ldm, layout_t l) {
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0 || ldm % 4 != 0) std::abort();
  return l == mem_row_major ? p[size_t(r) * ldm + c] : p[size_t(c) * ldm + r];
}
// An accumulator from memory (to add a product to sums kept there). Only the warp's first lane
// loads it, as only that lane multiplies into it and stores it (see mma_sync): on the device each
// lane loads and stores its own elements, so a warp's load and its later store of the same tile
// never race, but here a lane that loaded the whole tile would race with the first lane's store
// (the lanes of a warp are not in step).
template <int M, int N, int K>
void load_matrix_sync(fragment<accumulator, M, N, K, float, void>& f, const float* p,
                      unsigned ldm, layout_t l) {
  if (!first_lane()) return;
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c) f.x[r * N + c] = tile_element(p, r, c, ldm, l);
}
// Only the warp's first lane computes the product: a store is that lane's (see the top), so
// the other lanes' accumulators are never observed, and computing them would make the emulated
// tensor-core path 32 times as slow as the FP32 one. They keep c.
template <int M, int N, int K, class T, class LA, class LB>
void mma_sync(fragment<accumulator, M, N, K, float, void>& d,
              const fragment<matrix_a, M, N, K, T, LA>& a,
              const fragment<matrix_b, M, N, K, T, LB>& b,
              const fragment<accumulator, M, N, K, float, void>& c) {
  if (!first_lane()) {
    if (&d != &c) d = c;
    return;
  }
  float out[M * N];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float s = c.x[i * N + j];
      for (int k = 0; k < K; ++k) s += as_float(a.x[i * K + k]) * as_float(b.x[k * N + j]);
      out[i * N + j] = s;
    }
  std::memcpy(d.x, out, sizeof out);
}
template <int M, int N, int K>
void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, float, void>& f, unsigned ldm,
                       layout_t l) {
  if (!first_lane()) return;
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c) tile_element(p, r, c, ldm, l) = f.x[r * N + c];
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
