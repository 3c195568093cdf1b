// io/safetensors.cpp — the safetensors writer and its validating reader.
//
// Files are built and parsed whole in memory: nmsnn models are small, and it lets the reader
// check the complete layout before converting a single value. Byte order is spelled out with
// shifts so the files are little-endian on any host. Every number from the header is checked
// before it becomes an integer, and names, dtypes and paths reach messages through detail::quoted.
#include "nmsnn/safetensors.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "nmsnn/error.hpp"
#include "nmsnn/files.hpp"
#include "nmsnn/json.hpp"
#include "nmsnn/limits.hpp"

namespace nmsnn {

using detail::fail;

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the limit the reference implementation uses
// Offsets and shape entries are read as JSON numbers (doubles), exact only up to 2^53.
constexpr int64_t kMaxWhole = int64_t(1) << 53;
const char* const kMetadataKey = "__metadata__";

// Every dtype of the format and its element size; only F32 and F64 can be read into floats.
struct DtypeInfo {
  const char* name;
  int bytes;
};
constexpr DtypeInfo kDtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
    {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8},
};

int dtype_bytes(const std::string& dtype) {
  for (const DtypeInfo& d : kDtypes) {
    if (dtype == d.name) return d.bytes;
  }
  return 0;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// product(shape), or -1 when a dimension is negative or the product exceeds `limit`.
int64_t element_count(const std::vector<int64_t>& shape, int64_t limit) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && n > limit / d) return -1;
    n *= d;
  }
  return n;
}

uint64_t load_le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void append_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += char((v >> (8 * i)) & 0xFF);
}

struct Entry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

// One tensor's header entry, checked field by field. `src` is already quoted.
Entry parse_entry(const std::string& src, const std::string& name, const Json& value,
                  uint64_t buffer_size) {
  const std::string what = src + ": tensor " + detail::quote(name);
  // The writer refuses an empty name (no PyTorch parameter has one), so the reader does too.
  if (name.empty()) fail(src, ": a tensor has an empty name");
  if (!value.is_object()) {
    fail(what, ": header entry is ", to_string(value.type()),
         ", expected an object with dtype, shape and data_offsets");
  }
  for (const auto& [key, field] : value.as_object()) {
    (void)field;
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      fail(what, ": unexpected header field ", detail::quote(key),
           " (expected dtype, shape, data_offsets)");
    }
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!value.contains(key)) fail(what, ": corrupt header: missing field \"", key, "\"");
  }
  Entry e;
  e.name = name;
  const Json& dtype = value.at("dtype");
  if (!dtype.is_string()) fail(what, ": dtype is ", to_string(dtype.type()), ", expected a string");
  e.dtype = dtype.as_string();
  const int size = dtype_bytes(e.dtype);
  if (size == 0) {
    std::string known;
    for (const DtypeInfo& d : kDtypes) known += (known.empty() ? "" : ", ") + std::string(d.name);
    fail(what, ": unknown dtype ", detail::quote(e.dtype), " (known: ", known, ")");
  }

  // Range-checked as a double before it becomes an integer: 1e30, -1 and 2.5 are errors, not
  // undefined conversions.
  const auto whole = [&](const Json& j, const std::string& field) -> int64_t {
    if (!j.is_number()) {
      fail(what, ": ", field, " is ", to_string(j.type()),
           ", expected a non-negative whole number");
    }
    return detail::checked_integer(what + ": " + field, j.as_number(), 0, kMaxWhole);
  };
  const Json& shape = value.at("shape");
  if (!shape.is_array()) fail(what, ": shape is ", to_string(shape.type()), ", expected an array");
  for (size_t i = 0; i < shape.size(); ++i) {
    e.shape.push_back(whole(shape.at(i), "shape[" + std::to_string(i) + "]"));
  }

  const Json& offsets = value.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2) {
    fail(what, ": data_offsets must be [begin, end], found ",
         offsets.is_array() ? "an array of " + std::to_string(offsets.size()) +
                                  (offsets.size() == 1 ? " item" : " items")
                            : std::string(to_string(offsets.type())));
  }
  e.begin = uint64_t(whole(offsets.at(size_t(0)), "data_offsets[0]"));
  e.end = uint64_t(whole(offsets.at(size_t(1)), "data_offsets[1]"));
  if (e.begin > e.end) fail(what, ": data_offsets [", e.begin, ", ", e.end, "] run backwards");
  if (e.end > buffer_size) {
    fail(what, ": data_offsets [", e.begin, ", ", e.end, "] reach past the end of the ",
         buffer_size, "-byte data buffer; the file may be truncated");
  }
  const int64_t count = element_count(e.shape, int64_t(buffer_size) + 1);
  if (count < 0 || uint64_t(count) * uint64_t(size) != e.end - e.begin) {
    fail(what, ": shape ", shape_string(e.shape), " of ", e.dtype, " (", size,
         " bytes each) does not match data_offsets [", e.begin, ", ", e.end, "] spanning ",
         e.end - e.begin, " bytes");
  }
  return e;
}

}  // namespace

// ---- writing ----

std::string safetensors_bytes(const std::vector<NamedTensor>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) {
    Json meta = Json::object();
    for (const auto& [key, value] : metadata) {
      if (!is_valid_utf8(key) || !is_valid_utf8(value)) {
        fail("safetensors metadata ", detail::quote(key), ": keys and values must be valid UTF-8");
      }
      meta.set(key, value);
    }
    header.set(kMetadataKey, std::move(meta));
  }
  std::set<std::string> names;
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const NamedTensor& t = tensors[i];
    if (t.name.empty()) fail("safetensors tensor ", i, " has an empty name");
    const std::string what = "safetensors tensor " + detail::quote(t.name);
    if (t.name == kMetadataKey) fail(what, ": the name is reserved for the metadata");
    if (!is_valid_utf8(t.name)) fail(what, ": the name is not valid UTF-8");
    if (!names.insert(t.name).second) fail(what, ": duplicate tensor name");
    const int64_t count = element_count(t.shape, int64_t(1) << 50);
    if (count < 0)
      fail(what, ": shape ", shape_string(t.shape), " has a negative or huge dimension");
    if (uint64_t(count) != t.data.size()) {
      fail(what, ": shape ", shape_string(t.shape), " holds ", count, " values but data has ",
           t.data.size());
    }
    Json entry = Json::object();
    entry.set("dtype", "F32");
    entry.set("shape", Json::array_of(t.shape));
    entry.set("data_offsets", Json::array({Json(offset), Json(offset + 4 * t.data.size())}));
    header.set(t.name, std::move(entry));
    offset += 4 * t.data.size();
  }

  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data buffer 8-byte aligned
  std::string bytes;
  bytes.reserve(8 + text.size() + offset);
  append_le(bytes, text.size(), 8);
  bytes += text;
  for (const NamedTensor& t : tensors) {
    for (float v : t.data) {
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      append_le(bytes, bits, 4);
    }
  }
  return bytes;
}

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::string bytes;
  try {
    bytes = safetensors_bytes(tensors, metadata);
  } catch (const Error& e) {
    fail(detail::quote(path), ": not written: ", e.what());
  }
  write_file_atomic(path, bytes);
}

// ---- reading ----

SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& source) {
  const std::string src = detail::quote(source);
  if (bytes.empty()) fail(src, ": not a safetensors file: the file is empty");
  if (bytes.size() < 8) {
    fail(src, ": not a safetensors file: ", bytes.size(),
         " bytes is too short for the 8-byte header length");
  }
  const auto* raw = reinterpret_cast<const unsigned char*>(bytes.data());
  const uint64_t n = load_le(raw, 8);
  if (n > kMaxHeaderBytes) {
    fail(src, ": not a safetensors file: header length ", n, " is absurd (the limit is ",
         kMaxHeaderBytes, " bytes)");
  }
  if (n < 2) fail(src, ": not a safetensors file: header length ", n, " is too small for JSON");
  if (n > bytes.size() - 8) {
    fail(src, ": truncated: the header length says ", n, " bytes but only ", bytes.size() - 8,
         " follow it");
  }
  const std::string_view text = bytes.substr(8, n);
  if (text[0] != '{') {
    fail(src, ": not a safetensors file: the header does not start with '{' (it starts with byte ",
         unsigned(raw[8]), ")");
  }
  // Offsets in JSON errors count from the header start, which is byte 8 of the file.
  const Json header = parse_json(text, src + ": corrupt header (JSON from byte 8)");
  if (!header.is_object()) fail(src, ": not a safetensors file: the header is not a JSON object");

  SafetensorsFile file;
  file.path = source;
  const uint64_t buffer_size = bytes.size() - 8 - n;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.as_object()) {
    if (key != kMetadataKey) {
      entries.push_back(parse_entry(src, key, value, buffer_size));
      continue;
    }
    if (!value.is_object()) {
      fail(src, ": __metadata__ is ", to_string(value.type()), ", expected an object of strings");
    }
    for (const auto& [mkey, mvalue] : value.as_object()) {
      if (!mvalue.is_string()) {
        fail(src, ": __metadata__ value of ", detail::quote(mkey), " is ",
             to_string(mvalue.type()), ", expected a string");
      }
      file.metadata[mkey] = mvalue.as_string();
    }
  }

  // The tensors must tile the buffer exactly; sorting by offset makes gaps and overlaps adjacent.
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (e.begin < covered) {
      fail(src, ": tensors ", detail::quote(entries[i - 1].name), " [", entries[i - 1].begin, ", ",
           entries[i - 1].end, ") and ", detail::quote(e.name), " [", e.begin, ", ", e.end,
           ") overlap");
    }
    if (e.begin > covered) {
      fail(src, ": gap in the data buffer: bytes [", covered, ", ", e.begin,
           ") belong to no tensor (before tensor ", detail::quote(e.name), ")");
    }
    covered = e.end;
  }
  if (covered != buffer_size) {
    fail(src, ": ", buffer_size - covered,
         " trailing bytes after the last tensor (the data buffer "
         "has ",
         buffer_size, " bytes, tensors cover ", covered, ")");
  }

  const unsigned char* buffer = raw + 8 + n;
  for (const Entry& e : entries) {
    if (e.dtype != "F32" && e.dtype != "F64") {
      fail(src, ": tensor ", detail::quote(e.name), ": dtype ", detail::quote(e.dtype),
           " is not supported (nmsnn reads F32 and F64)");
    }
    NamedTensor t;
    t.name = e.name;
    t.shape = e.shape;
    const int size = e.dtype == "F32" ? 4 : 8;
    t.data.resize((e.end - e.begin) / size);
    for (size_t i = 0; i < t.data.size(); ++i) {
      const uint64_t bits = load_le(buffer + e.begin + i * size, size);
      if (size == 4) {
        const uint32_t b32 = uint32_t(bits);
        std::memcpy(&t.data[i], &b32, 4);
      } else {
        double d;
        std::memcpy(&d, &bits, 8);
        // Narrowing a finite double beyond the float range is undefined; say so instead.
        if (std::isfinite(d) && std::fabs(d) > double(std::numeric_limits<float>::max())) {
          fail(src, ": tensor ", detail::quote(e.name), ": F64 value ", d, " at index ", i,
               " is outside the float range");
        }
        t.data[i] = float(d);
      }
    }
    file.tensors.push_back(std::move(t));
  }
  return file;
}

SafetensorsFile read_safetensors(const std::string& path) {
  return parse_safetensors(read_file(path), path);
}

const NamedTensor* SafetensorsFile::find(const std::string& name) const {
  for (const NamedTensor& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const NamedTensor& SafetensorsFile::at(const std::string& name) const {
  if (const NamedTensor* t = find(name)) return *t;
  std::string names;
  size_t listed = 0;
  for (; listed < tensors.size() && names.size() < 200; ++listed) {
    names += (listed ? ", " : "") + detail::quote(tensors[listed].name, 40);
  }
  if (listed < tensors.size()) names += ", ... (" + std::to_string(tensors.size()) + " in all)";
  fail(detail::quote(path), ": no tensor named ", detail::quote(name), "; ",
       tensors.empty() ? std::string("the file has no tensors") : "the file has " + names);
}

}  // namespace nmsnn
