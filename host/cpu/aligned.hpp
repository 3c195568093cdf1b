// cpu/aligned.hpp — vectors whose data start on a 64-byte boundary (a cache line).
//
// With layer widths padded to 16 floats (layer.hpp, avx512 kernel set), every row of a weight
// matrix or of a [T, W] buffer then starts on a cache line, and a 64-byte AVX-512 load never
// straddles two lines (straddling loads cost the dense product ~15%, measured). malloc only
// promises 16 bytes.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace nmsnn::cpu {

template <class T>
struct AlignedAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, size_t) { ::operator delete(p, kAlign); }
  template <class U>
  bool operator==(const AlignedAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const AlignedAllocator<U>&) const { return false; }
};

// The engine's buffers of numbers.
template <class T>
using Buffer = std::vector<T, AlignedAllocator<T>>;

}  // namespace nmsnn::cpu
