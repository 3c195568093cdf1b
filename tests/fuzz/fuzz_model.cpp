// fuzz_model.cpp — fuzz target for the model-file loader (Model::load): the safetensors metadata
// (format, task, the network description, seed, scalers' flags, names, history) and the tensors
// checked against the network they describe; a model that loads and is small then predicts.
//
//   libFuzzer: scripts/fuzz.sh model      replay: fuzz_replay_model corpus/model regressions/model
// Input: a model file in two parts, the safetensors JSON header, a NUL byte, then the data buffer
// (no NUL: all of it is header). The target adds the 8-byte length and the padding, so mutations
// of the header text (where nearly all the checks are) keep a well-framed file. Seeds:
// tests/fuzz/corpus/model, small models written by `nmsnn train --save` and split this way:
//   python3 -c 'import sys,struct; b=open(sys.argv[1],"rb").read(); n=struct.unpack("<Q",b[:8])[0];
//               sys.stdout.buffer.write(b[8:8+n].rstrip(b" ")+b"\0"+b[8+n:])' m.nmsnn > seed
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz.hpp"
#include "nmsnn/model.hpp"

namespace {

std::string frame(std::string_view input) {
  const size_t nul = input.find('\0');
  std::string header(input.substr(0, nul));
  const std::string_view buffer = nul == std::string_view::npos ? "" : input.substr(nul + 1);
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes += char((uint64_t(header.size()) >> (8 * i)) & 0xFF);
  return bytes + header + std::string(buffer);
}

bool small(const nmsnn::NetworkSpec& spec) {
  if (spec.inputs > 64 || spec.time_steps > 32 || spec.layers.size() > 8) return false;
  for (size_t l = 0; l < spec.layers.size(); ++l)
    if (spec.layer_width(int(l)) > 64) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::init();
  static fuzz::MemoryFile file;
  const std::string& path =
      file.write(frame(std::string_view(reinterpret_cast<const char*>(data), size)));
  nmsnn::NetworkOptions options;
  options.threads = 1;
  try {
    nmsnn::Model model = nmsnn::Model::load(path, options);
    const nmsnn::NetworkSpec& spec = model.description().spec;
    if (!small(spec)) return 0;
    // Two samples of plausible raw features; the prediction must have the promised shape.
    nmsnn::Dataset raw;
    raw.count = 2;
    raw.features = spec.inputs;
    for (int i = 0; i < 2 * spec.inputs; ++i) raw.x.push_back(float(i % 5) - 2.0f);
    const nmsnn::Predictions p = model.predict(raw);
    if (p.count != 2 || p.values.size() != size_t(p.count) * size_t(p.width))
      fuzz::finding("predict: predictions of the wrong size");
  } catch (const nmsnn::Error& e) {
    fuzz::check_message(e);
  }
  return 0;
}
