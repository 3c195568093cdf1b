// fuzz_safetensors.cpp — fuzz target for the safetensors reader (parse_safetensors), with a
// round trip: whatever it accepts, safetensors_bytes must write and parse_safetensors read back
// to the same tensors (bit for bit) and metadata.
//
//   libFuzzer: scripts/fuzz.sh safetensors
//   replay:    fuzz_replay_safetensors corpus/safetensors regressions/safetensors
// Input: the bytes of a safetensors file. Seeds: tests/fuzz/corpus/safetensors (small F32 and F64
// files, a model file's weights, and broken ones: absurd header length, bad JSON, gaps, overlaps,
// trailing bytes, shapes not matching their spans).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "fuzz.hpp"
#include "nmsnn/safetensors.hpp"

namespace {

bool same(const nmsnn::SafetensorsFile& a, const nmsnn::SafetensorsFile& b) {
  if (a.metadata != b.metadata || a.tensors.size() != b.tensors.size()) return false;
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const nmsnn::NamedTensor& x = a.tensors[i];
    const nmsnn::NamedTensor& y = b.tensors[i];
    if (x.name != y.name || x.shape != y.shape || x.data.size() != y.data.size()) return false;
    // Bit-exact, so that NaN payloads and -0 count.
    if (!x.data.empty() && std::memcmp(x.data.data(), y.data.data(), 4 * x.data.size()) != 0)
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::init();
  nmsnn::SafetensorsFile file;
  try {
    file = nmsnn::parse_safetensors(std::string_view(reinterpret_cast<const char*>(data), size),
                                    "fuzz.safetensors");
  } catch (const nmsnn::Error& e) {
    fuzz::check_message(e);
    return 0;
  }
  // Accepted: it must survive a write and a read.
  std::string bytes;
  try {
    bytes = nmsnn::safetensors_bytes(file.tensors, file.metadata);
  } catch (const nmsnn::Error& e) {
    fuzz::finding(std::string("accepted file cannot be written back: ") + e.what());
  }
  const nmsnn::SafetensorsFile again = nmsnn::parse_safetensors(bytes, "round trip");
  if (!same(file, again)) fuzz::finding("safetensors round trip changed the tensors or metadata");
  return 0;
}
