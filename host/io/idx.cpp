// io/idx.cpp — read_idx: the IDX reader behind the MNIST loader.
//
// zlib's gz* functions read gzip and plain files alike, so one code path serves both. Every check
// names the file, because a bad dataset file is the most common way a training run fails early.
// The header's sizes are checked against nmsnn's limits and the memory budget before anything is
// allocated, and the data buffer grows only as bytes arrive, so a header that lies costs nothing.
#include "nmsnn/idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <iomanip>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "nmsnn/error.hpp"
#include "nmsnn/limits.hpp"

namespace nmsnn {
namespace {

using detail::fail;

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// Reads up to `size` bytes, fewer only at end of input. A corrupt or cut-off gzip stream shows up
// as a zlib error state (sometimes after a short read that looks like plain EOF), so the state is
// checked after every call.
size_t read_some(gzFile f, const std::string& path, uint8_t* out, size_t size) {
  // gzread takes an unsigned count and returns int: keep each call well inside both.
  const size_t chunk = size_t(1) << 26;
  size_t done = 0;
  while (done < size) {
    const size_t want = size - done < chunk ? size - done : chunk;
    const int got = gzread(f, out + done, unsigned(want));
    int errnum = Z_OK;
    const char* text = gzerror(f, &errnum);
    if (got < 0 || errnum != Z_OK) {
      if (errnum == Z_ERRNO) fail(path, ": read error: ", std::strerror(errno));
      fail(path, ": corrupt gzip data: ", text ? text : "unknown zlib error");
    }
    if (got == 0) break;
    done += size_t(got);
  }
  return done;
}

const char* idx_type_name(int code) {
  switch (code) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return "unknown";
  }
}

std::string hex_byte(int b) {
  const char* digits = "0123456789ABCDEF";
  return std::string("0x") + digits[(b >> 4) & 15] + digits[b & 15];
}

std::string dims_string(const std::vector<uint32_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

}  // namespace

IdxArray read_idx(const std::string& file_path) {
  const std::string path =
      detail::quote(file_path);  // for messages; the file is opened by file_path
  errno = 0;
  GzFile file(gzopen(file_path.c_str(), "rb"));
  if (!file) {
    fail(path, ": cannot open IDX file: ", errno ? std::strerror(errno) : "zlib could not open it");
  }
  // The default 8 KiB input buffer makes zlib issue thousands of tiny reads for MNIST's 10 MB.
  gzbuffer(file.get(), 1u << 20);

  uint8_t magic[4];
  const size_t got_magic = read_some(file.get(), path, magic, 4);
  if (got_magic == 0) fail(path, ": empty file, expected an IDX header");
  if (got_magic < 4) {
    fail(path, ": truncated IDX header: expected 4 bytes, found ", got_magic);
  }
  if (magic[0] != 0 || magic[1] != 0) {
    fail(path, ": not an IDX file: first two bytes are ", hex_byte(magic[0]), " ",
         hex_byte(magic[1]), ", expected 0x00 0x00");
  }
  if (magic[2] != 0x08) {
    fail(path, ": IDX data type ", hex_byte(magic[2]), " (", idx_type_name(magic[2]),
         ") is not supported; only 0x08 (unsigned byte) is");
  }
  const int ndims = magic[3];
  if (ndims < 1 || ndims > 4) {
    fail(path, ": IDX header has ", ndims, " dimensions, expected 1 to 4");
  }

  uint8_t raw_dims[16];
  const size_t dims_bytes = size_t(4) * ndims;
  const size_t got_dims = read_some(file.get(), path, raw_dims, dims_bytes);
  if (got_dims < dims_bytes) {
    fail(path, ": truncated IDX header: expected ", 4 + dims_bytes, " bytes, found ",
         4 + got_dims);
  }

  // dims[0] counts samples and the rest give one sample's size, so each is held to nmsnn's limit
  // for that; both fit an int, and their product an int64_t.
  std::vector<uint32_t> dims;
  for (int i = 0; i < ndims; ++i) {
    const uint8_t* b = raw_dims + 4 * i;
    dims.push_back(uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3]);
    if (dims.back() == 0) fail(path, ": IDX dimension ", i, " is 0");
  }
  double sample = 1;  // a double cannot overflow here: at most three factors below 2^32
  for (int i = 1; i < ndims; ++i) sample *= dims[i];
  if (sample > double(kMaxLayerSize)) {
    std::ostringstream values;  // whole, not 1.67813e+07
    values << std::fixed << std::setprecision(0) << sample;
    fail(path, ": IDX dimensions ", dims_string(dims), " give ", values.str(),
         " values per sample, more than the ", kMaxLayerSize, " nmsnn accepts");
  }
  if (dims[0] > kMaxSamples) {
    fail(path, ": IDX dimensions ", dims_string(dims), " give ", dims[0],
         " samples, more than the ", kMaxSamples, " nmsnn accepts");
  }
  const int64_t total = int64_t(dims[0]) * int64_t(sample);
  // The bytes read here and the float copy a Dataset makes of them.
  check_memory(path + ": IDX data " + dims_string(dims) + " (as bytes and as floats)",
               double(total) * (1 + sizeof(float)));

  IdxArray out;
  for (uint32_t d : dims) out.dims.push_back(int(d));
  // Reserving only maps address space; pages are touched as data arrives, so a header claiming
  // far more than the file holds ends in "truncated", not in a huge zero-filled buffer.
  out.data.reserve(size_t(total));
  size_t got = 0;
  for (size_t chunk = size_t(1) << 20; got < size_t(total); chunk *= 2) {
    const size_t want = std::min(chunk, size_t(total) - got);
    out.data.resize(got + want);
    const size_t n = read_some(file.get(), path, out.data.data() + got, want);
    got += n;
    if (n < want) break;
  }
  if (got < size_t(total)) {
    fail(path, ": truncated: expected ", total, " bytes of data, found ", got);
  }
  // Extra bytes mean the header and the data disagree, e.g. a file cut or joined wrongly.
  uint8_t extra[4096];
  size_t trailing = 0, n = 0;
  while ((n = read_some(file.get(), path, extra, sizeof extra)) > 0) trailing += n;
  if (trailing > 0) {
    fail(path, ": ", trailing, " trailing byte(s) after the ", total,
         " bytes of data the header declares");
  }
  return out;
}

}  // namespace nmsnn
