// core/limits.cpp — the memory budget and the checked conversions of nmsnn/limits.hpp.
#include "nmsnn/limits.hpp"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "nmsnn/error.hpp"

namespace nmsnn {

using detail::fail;

namespace {
std::atomic<int64_t> g_limit{0};

// Read once: memory_limit() is asked on every forward pass.
int64_t physical_memory() {
  static const int64_t bytes = [] {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? int64_t(pages) * int64_t(page) : int64_t(1) << 40;
  }();
  return bytes;
}
}  // namespace

int64_t parse_memory_size(const std::string& what, const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  double unit = 1;
  std::string suffix(end ? end : "");
  if (suffix == "K" || suffix == "k" || suffix == "KiB") unit = 1024.0;
  else if (suffix == "M" || suffix == "MiB") unit = 1024.0 * 1024;
  else if (suffix == "G" || suffix == "GiB") unit = 1024.0 * 1024 * 1024;
  else if (suffix == "T" || suffix == "TiB") unit = 1024.0 * 1024 * 1024 * 1024;
  else if (!suffix.empty()) unit = -1;
  const double bytes = v * unit;
  if (end == text.c_str() || unit < 0 || !std::isfinite(bytes) || bytes < 1 || bytes > 9.0e18)
    fail(what, ": expected a memory size such as 512M, 8G or 1073741824 (bytes), got ",
         detail::quote(text));
  return int64_t(bytes);
}

int64_t memory_limit() {
  if (const int64_t set = g_limit.load(); set > 0) return set;
  if (const char* env = std::getenv("NMSNN_MAX_MEMORY"); env && *env)
    return parse_memory_size("environment variable NMSNN_MAX_MEMORY", env);
  return physical_memory();
}

void set_memory_limit(int64_t bytes) {
  if (bytes < 0) fail("set_memory_limit: bytes must be >= 0 (0: the machine's memory), got ", bytes);
  g_limit.store(bytes);
}

std::string format_bytes(double bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024 && u < 6) bytes /= 1024, ++u;
  char text[48];
  std::snprintf(text, sizeof text, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return text;
}

void check_memory(const std::string& what, double bytes) {
  const int64_t limit = memory_limit();
  if (!(bytes <= double(limit))) {
    const char* source = g_limit.load() > 0                ? "the limit set by --max-memory"
                         : std::getenv("NMSNN_MAX_MEMORY") ? "from NMSNN_MAX_MEMORY"
                                                           : "the machine's memory";
    fail(what, " needs ", format_bytes(bytes), ", more than the memory limit of ",
         format_bytes(double(limit)), " (", source,
         "; NMSNN_MAX_MEMORY or --max-memory change the limit)");
  }
}

namespace detail {

int64_t checked_integer(const std::string& what, double value, int64_t lo, int64_t hi) {
  if (!(value >= double(lo) && value <= double(hi)) || value != std::floor(value)) {
    std::ostringstream v;
    v.precision(17);
    v << value;
    fail(what, " must be a whole number in [", lo, ", ", hi, "], got ", v.str());
  }
  return int64_t(value);
}

int64_t checked_range(const std::string& what, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) fail(what, " must be in [", lo, ", ", hi, "], got ", value);
  return value;
}

}  // namespace detail
}  // namespace nmsnn
