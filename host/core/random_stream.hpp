// core/random_stream.hpp — independent random streams derived from one seed.
//
// Everything random in nmsnn (initial weights, initial voltages, shuffles, splits) draws from a
// stream keyed by (seed, stream id), so adding a new use of randomness never shifts the numbers of
// an existing one, and every engine derives the same numbers from the same seed.
#pragma once

#include <cstdint>

namespace nmsnn::detail {

// A 64-bit key for stream `stream` of `seed`: splitmix64's finaliser of seed ^ (stream * golden).
inline uint64_t stream_key(uint64_t seed, uint64_t stream) {
  uint64_t z = seed ^ (stream * 0x9E3779B97F4A7C15ull);
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace nmsnn::detail
