// nmsnn/limits.hpp — the largest sizes nmsnn accepts, and the memory budget checked before a
// large allocation.
//
// Every size that comes from a file, a flag or the API (layer widths, time steps, batch sizes, IDX
// dimensions, tensor shapes) is range-checked against these limits *before* it is converted to an
// int or used to allocate, so a bad size is one clear error, never std::bad_alloc, an overflow or a
// float-to-int conversion out of range. Sizes that pass are small enough that products of two or
// three of them fit in int64_t.
#pragma once

#include <cstdint>
#include <string>

namespace nmsnn {

constexpr int64_t kMaxLayerSize = int64_t(1) << 24;   // neurons or features in one layer (16.7 M)
constexpr int64_t kMaxTimeSteps = int64_t(1) << 20;   // simulation steps per sample
constexpr int64_t kMaxBatchSize = int64_t(1) << 24;   // samples in one pass
constexpr int64_t kMaxSamples = int64_t(1) << 30;     // samples in one dataset
constexpr int64_t kMaxLayers = 4096;                  // layers in one network
constexpr int kMaxJsonDepth = 256;                    // arrays/objects nested in a JSON text

// The memory budget in bytes: set_memory_limit's value when one was set (> 0), else the
// environment variable NMSNN_MAX_MEMORY (bytes, or with a K/M/G/T suffix), else the machine's
// physical memory.
int64_t memory_limit();
// Sets the budget (bytes); 0 goes back to the environment or the machine's memory.
void set_memory_limit(int64_t bytes);
// Parses "512M", "8G", "1.5G", "1073741824" (bytes). Throws nmsnn::Error naming `what` and the
// text for anything else.
int64_t parse_memory_size(const std::string& what, const std::string& text);
// "1.5 GiB", "512 MiB", "640 B".
std::string format_bytes(double bytes);
// Throws nmsnn::Error when `bytes` exceeds memory_limit(): "<what> needs 37.3 GiB, more than the
// memory limit of 23.4 GiB (the machine's memory; NMSNN_MAX_MEMORY or --max-memory change it)".
void check_memory(const std::string& what, double bytes);

namespace detail {
// A whole number read as a double (JSON, flags) checked to lie in [lo, hi] before any conversion:
// "<what> must be a whole number in [lo, hi], got 1e+10". NaN, infinities and fractions fail.
int64_t checked_integer(const std::string& what, double value, int64_t lo, int64_t hi);
// An integer checked to lie in [lo, hi]: "<what> must be in [lo, hi], got v".
int64_t checked_range(const std::string& what, int64_t value, int64_t lo, int64_t hi);
}  // namespace detail

}  // namespace nmsnn
