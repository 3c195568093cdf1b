// host/idx.cpp — read_idx: the IDX reader behind the MNIST loader.
//
// zlib's gz* functions read gzip and plain files alike, so one code path serves both. Every check
// names the file, because a bad dataset file is the most common way a training run fails early.
#include "nmsnn/idx.hpp"

#include <zlib.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>

#include "nmsnn/error.hpp"

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

}  // namespace

IdxArray read_idx(const std::string& path) {
  errno = 0;
  GzFile file(gzopen(path.c_str(), "rb"));
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

  // Capped at 2^31 - 1 values so that counts and offsets fit the int fields of Dataset.
  const int64_t max_values = INT32_MAX;
  IdxArray out;
  int64_t total = 1;
  for (int i = 0; i < ndims; ++i) {
    const uint8_t* b = raw_dims + 4 * i;
    const uint32_t d = uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3];
    if (d == 0) fail(path, ": IDX dimension ", i, " is 0");
    if (d > uint32_t(max_values)) fail(path, ": IDX dimension ", i, " is absurdly large: ", d);
    total *= int64_t(d);
    if (total > max_values) {
      fail(path, ": IDX dimensions give more than ", max_values, " values; refusing to read");
    }
    out.dims.push_back(int(d));
  }

  out.data.resize(size_t(total));
  const size_t got = read_some(file.get(), path, out.data.data(), out.data.size());
  if (got < out.data.size()) {
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
