// nmsnn/safetensors.hpp — model tensors in the safetensors format (what PyTorch's `safetensors`
// library reads and writes).
//
// A file is: an 8-byte little-endian header length N; N bytes of UTF-8 JSON, padded with spaces
// to a multiple of 8,
//   {"__metadata__":{"key":"value"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}
// then the data buffer, where each tensor's little-endian values occupy [begin, end) (offsets
// relative to the buffer start). Tensors cover the buffer exactly: contiguous, no gaps, no
// overlaps, no trailing bytes. nmsnn writes F32 and reads F32 (and F64, rounded to float).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace nmsnn {

struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;  // {} is a scalar holding one value
  std::vector<float> data;     // row-major; product(shape) values
};

struct SafetensorsFile {
  std::string path;                             // where it was read from, for messages
  std::vector<NamedTensor> tensors;             // in the order of their data in the file
  std::map<std::string, std::string> metadata;  // "__metadata__"; empty when the file has none

  const NamedTensor* find(const std::string& name) const;  // nullptr when absent
  // Throws nmsnn::Error naming the file, the missing tensor and the tensors there are.
  const NamedTensor& at(const std::string& name) const;
};

// Writes `tensors` (in that order) and `metadata` as F32 safetensors. Atomic: the file at `path`
// is replaced only once the new one is completely on disk (see write_file_atomic), and nothing is
// touched when a tensor is invalid (shape not matching its data, empty or duplicate name, ...).
void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// The exact bytes write_safetensors writes; throws on invalid tensors the same way.
std::string safetensors_bytes(const std::vector<NamedTensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

// Reads and validates a safetensors file. Every problem throws nmsnn::Error naming the file:
// "not a safetensors file" (empty, too short, absurd header length, header not a JSON object),
// "truncated", "corrupt header" (bad JSON, missing or wrong fields, duplicate names), unknown or
// unsupported dtypes, shape not matching the byte span, offsets outside the buffer, overlapping or
// gapped tensors, trailing bytes. Shape entries and offsets are range-checked ([0, 2^53], whole)
// before they become integers, and their products cannot overflow; names, dtypes and the path are
// quoted (detail::quoted) in messages.
SafetensorsFile read_safetensors(const std::string& path);

// read_safetensors on bytes already in memory; `source` names them (quoted) in messages and
// becomes the file's path.
SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& source);

}  // namespace nmsnn
