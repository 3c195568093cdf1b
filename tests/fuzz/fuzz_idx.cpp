// fuzz_idx.cpp — fuzz target for the IDX reader (read_idx), plain and gzip-compressed.
//
//   libFuzzer: scripts/fuzz.sh idx        replay: fuzz_replay_idx corpus/idx regressions/idx
// Input: the bytes of an IDX file, given to read_idx through an in-memory file (zlib tells gzip
// from plain data by its magic bytes, as for a file on disk). Seeds: tests/fuzz/corpus/idx (tiny
// image and label files, plain and .gz, and broken headers: other types, zero or huge dimensions,
// short data, trailing bytes, corrupt gzip).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz.hpp"
#include "nmsnn/idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::init();
  static fuzz::MemoryFile file;
  const std::string& path = file.write(std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    const nmsnn::IdxArray a = nmsnn::read_idx(path);
    size_t total = 1;
    for (int d : a.dims) {
      if (d <= 0) fuzz::finding("read_idx: a dimension <= 0 accepted");
      total *= size_t(d);
    }
    if (a.dims.empty() || a.dims.size() > 4 || total != a.data.size())
      fuzz::finding("read_idx: dims do not match the data");
  } catch (const nmsnn::Error& e) {
    fuzz::check_message(e);
  }
  return 0;
}
