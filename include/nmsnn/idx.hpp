// nmsnn/idx.hpp — the IDX file format of MNIST and Fashion-MNIST (LeCun et al.).
//
// An IDX file is a big-endian header (two zero bytes, a type code, the number of dimensions, then
// each dimension as a 32-bit integer) followed by the values. Files may be gzip-compressed
// (".gz") or plain; both are read the same way. Only unsigned-byte data (type 0x08) is accepted,
// which is what MNIST-style datasets use.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nmsnn {

struct IdxArray {
  std::vector<int> dims;      // e.g. {60000, 28, 28} for images, {60000} for labels
  std::vector<uint8_t> data;  // product(dims) values, row-major
};

// Reads a whole IDX file. Throws nmsnn::Error naming the file when it is missing, unreadable,
// not gzip/IDX, of another data type, or shorter or longer than its header says; and, before
// allocating anything, when dims[0] (the samples) exceeds kMaxSamples, the product of the other
// dims (one sample) exceeds kMaxLayerSize, or the data, as bytes plus the float copy a Dataset
// makes of it, would exceed memory_limit() (nmsnn/limits.hpp).
IdxArray read_idx(const std::string& path);

}  // namespace nmsnn
