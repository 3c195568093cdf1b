// fuzz_spec_json.cpp — fuzz target for network descriptions: parse_json, then
// description_from_json; an accepted description must survive description_to_json and a second
// read unchanged, and when it is small, a network built from it runs a training pass (forward and
// backward) on the CPU engine without a fault.
//
//   libFuzzer: scripts/fuzz.sh spec_json
//   replay:    fuzz_replay_spec_json corpus/spec_json regressions/spec_json
// Input: JSON text. Seeds: tests/fuzz/corpus/spec_json (the examples' descriptions and a few with
// wrong types, unknown keys, out-of-range sizes, deep nesting, bad escapes and bad UTF-8).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/spec_json.hpp"

namespace {

// A pass is only worth running (and only fast enough for a fuzzer) on a small network.
bool small(const nmsnn::NetworkSpec& spec) {
  if (spec.inputs > 64 || spec.time_steps > 32 || spec.layers.size() > 8) return false;
  for (size_t l = 0; l < spec.layers.size(); ++l)
    if (spec.layer_width(int(l)) > 64) return false;
  return true;
}

void run_pass(const nmsnn::NetworkDescription& d) {
  const nmsnn::NetworkSpec& spec = d.spec;
  nmsnn::NetworkOptions options;
  options.threads = 1;
  nmsnn::Network net(spec, options);
  const int batch = 2;
  const size_t steps = d.encoding == nmsnn::Input::Kind::sequence ? size_t(spec.time_steps) : 1;
  std::vector<float> x(steps * batch * size_t(spec.inputs));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 7) / 7.0f;
  nmsnn::Input input{d.encoding, x.data(), x.size(), batch};
  const nmsnn::ForwardPass pass = net.forward(input);
  if (pass.logits().size() != size_t(batch) * size_t(spec.outputs()))
    fuzz::finding("forward: logits of the wrong size");
  net.backward(pass, std::vector<float>(pass.logits().size(), 1.0f));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::init();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  nmsnn::NetworkDescription d;
  try {
    d = nmsnn::description_from_json(nmsnn::parse_json(text, "fuzz.json"), "fuzz.json");
  } catch (const nmsnn::Error& e) {
    fuzz::check_message(e);
    return 0;
  }
  // Accepted: what it writes must read back as the same description.
  const std::string written = nmsnn::description_to_json(d).dump();
  const nmsnn::NetworkDescription again =
      nmsnn::description_from_json(nmsnn::parse_json(written, "round trip"), "round trip");
  if (nmsnn::description_to_json(again).dump() != written)
    fuzz::finding("description round trip changed it: " + nmsnn::detail::quote(written, 400));
  if (small(d.spec)) {
    try {
      run_pass(d);
    } catch (const nmsnn::Error& e) {
      fuzz::check_message(e);  // a validated description may still be refused, but clearly
    }
  }
  return 0;
}
