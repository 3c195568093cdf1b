// engine_compare.hpp — comparing one engine's numbers with another's, for the CPU-vs-CUDA tests:
// the relative error of a tensor and where it is worst, and the rows of samples that are safe to
// compare (away from a spiking threshold; see test_cuda_engine.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace engine_compare {

inline double max_abs(const std::vector<float>& a) {
  double m = 0;
  for (float v : a) m = std::max(m, double(std::abs(v)));
  return m;
}

// max |a - b| / max |a| (or max |b| when a is all zero, which must then be 0 too), and where.
struct Difference {
  double relative = 0;
  size_t at = 0;
  double a = 0, b = 0;
};
template <class A, class B>
Difference difference(const std::vector<A>& a, const std::vector<B>& b) {
  Difference d;
  if (a.size() != b.size()) {
    d.relative = 1e300;
    return d;
  }
  double worst = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double e = std::abs(double(a[i]) - double(b[i]));
    if (e > worst) worst = e, d.at = i, d.a = a[i], d.b = b[i];
    scale = std::max(scale, std::abs(double(a[i])));
  }
  d.relative = scale > 0 ? worst / scale : worst;
  return d;
}
template <class A, class B>
double relative_error(const std::vector<A>& a, const std::vector<B>& b) {
  return difference(a, b).relative;
}

// Values of samples with safe[b] only, from a [B, C] or [T, B, I] array.
template <class V>
std::vector<V> safe_rows(const std::vector<V>& a, const std::vector<bool>& safe, size_t row) {
  std::vector<V> out;
  const size_t B = safe.size();
  for (size_t k = 0; k < a.size(); ++k)
    if (safe[(k / row) % B]) out.push_back(a[k]);
  return out;
}

}  // namespace engine_compare
