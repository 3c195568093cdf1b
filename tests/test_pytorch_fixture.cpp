// test_pytorch_fixture.cpp — the engines against logits and gradients that PyTorch computed.
//
// tests/pytorch_fixture/seed_fixture.json was written once by make_fixture.py beside it: the
// seed's spiking network (SPEC.md 2-4) written plainly in torch ops, in float64, differentiated
// by autograd. It holds four cases on a given input sequence xi [T=9, B=3, I=5] — both reset
// rules, delay on and off, sum and mean readouts, begin_eval 0 to 3, two and three layers
// (5-7-4, 5-7-6-4), thresholds other than 1 — and for each: the model description (spec_json
// form), the parameters by PyTorch name, xi, the labels, the logits [B, C], dL/dlogits of
// NLL(log_softmax) with those labels, every parameter's gradient and dL/dxi.
//
// For each case this test builds the network from the description, sets the parameters, runs a
// forward pass on the sequence and a backward pass with the recorded dL/dlogits, and compares:
//   logits, dL/dlogits of the library's nll_log_softmax, every parameter gradient, dL/dxi.
// Error measure, per tensor: max |library - reference| / max |reference|, required <= 1e-5.
// Why 1e-5: the parameters and inputs are float32 values on both sides, so the differences are
// the float32 rounding of the engine's arithmetic (unit roundoff 6e-8) accumulated through sums
// of at most 7 products, 9 recurrent steps and three layers: the measured errors are 3e-8 to
// 4e-7 (printed for every tensor), and 1e-5 leaves a factor of ~30 while still being far
// below what a wrong derivative produces (a dropped decay term or reset factor changes
// gradients by 10% or more). Where the reference is all zero the error is absolute.
// Spikes cannot flip between float64 and float32: the script redrew its random numbers until no
// pre-reset state u lies within 1e-4 of its threshold (the fixture records the margin), far above
// the ~1e-6 by which the float32 states can differ from the float64 ones.
//
// A missing or malformed fixture fails the test with the path and what is wrong. To check a
// changed copy, point NMSNN_PYTORCH_FIXTURE at it. The CUDA engine runs the same comparison where
// one is available, and is skipped with the reason otherwise.
#include <gtest/gtest.h>

#include "engine_compare.hpp"
#include "require_cuda.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nmsnn/error.hpp"
#include "nmsnn/json.hpp"
#include "nmsnn/loss.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/spec_json.hpp"

namespace {

using nmsnn::Engine;
using nmsnn::Json;

constexpr double kTolerance = 1e-5;  // max |library - reference| / max |reference| (see above)
constexpr double kMargin = 1e-4;     // the smallest |u - threshold| the fixture must keep

std::string fixture_path() {
  const char* given = std::getenv("NMSNN_PYTORCH_FIXTURE");
  return given && *given ? given
                         : std::string(NMSNN_SOURCE_DIR "/tests/pytorch_fixture/seed_fixture.json");
}

// One tensor of the fixture: {"shape": [...], "values": [...]}, checked against the shape it
// must have. Throws nmsnn::Error naming the tensor when it is not that.
std::vector<double> tensor(const Json& json, const std::vector<int>& shape,
                           const std::string& what) {
  std::vector<int> got;
  for (const Json& d : json.at("shape").as_array()) got.push_back(int(d.as_int()));
  if (got != shape) {
    std::ostringstream s;
    s << what << ": shape [";
    for (size_t i = 0; i < got.size(); ++i) s << (i ? ", " : "") << got[i];
    s << "], expected [";
    for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
    s << "]";
    nmsnn::detail::fail(s.str());
  }
  size_t count = 1;
  for (int d : shape) count *= size_t(d);
  const Json::Array& values = json.at("values").as_array();
  if (values.size() != count)
    nmsnn::detail::fail(what, ": ", values.size(), " values for a shape of ", count);
  std::vector<double> out;
  out.reserve(count);
  for (const Json& v : values) out.push_back(v.as_number());
  return out;
}

// The file's bytes. Read here rather than with the library's file helpers, so that this test
// depends on nothing of the library's I/O but parse_json.
std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) nmsnn::detail::fail(nmsnn::detail::quote(path), ": cannot open for reading");
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) nmsnn::detail::fail(nmsnn::detail::quote(path), ": read error");
  return text.str();
}

std::vector<float> to_float(const std::vector<double>& v) { return {v.begin(), v.end()}; }

// Compares one tensor and prints its error, so a run shows how close every quantity came.
void compare(const std::string& where, const std::string& what, const std::vector<float>& got,
             const std::vector<double>& want) {
  const engine_compare::Difference d = engine_compare::difference(want, got);
  std::printf("  %-34s %-18s max|err|/max|ref| = %.3g\n", where.c_str(), what.c_str(), d.relative);
  EXPECT_LE(d.relative, kTolerance)
      << where << ": " << what << " differs from PyTorch: worst at element " << d.at
      << ", reference " << d.a << ", library " << d.b;
}

// Runs every case of the fixture on `engine` and compares.
void check_fixture(Engine engine) {
  const std::string path = fixture_path();
  Json root;
  try {
    root = nmsnn::parse_json(read_text(path), nmsnn::detail::quote(path));
  } catch (const std::exception& e) {
    FAIL() << "cannot read the PyTorch fixture (make it with tests/pytorch_fixture/"
              "make_fixture.py): "
           << e.what();
  }
  try {
    const Json::Array& cases = root.at("cases").as_array();
    ASSERT_GE(cases.size(), 1u) << path << ": no cases";
    for (const Json& c : cases) {
      const std::string name = c.at("name").as_string();
      SCOPED_TRACE("fixture case " + name);
      const std::string where = name + " (" + nmsnn::to_string(engine) + ")";
      ASSERT_GE(c.at("min_margin").as_number(), kMargin)
          << name << ": a state lies too close to its threshold to compare float32 with float64";

      const nmsnn::NetworkDescription model = nmsnn::description_from_json(
          c.at("model"), nmsnn::detail::quote(path) + " case " + name);
      ASSERT_EQ(model.encoding, nmsnn::Input::Kind::sequence) << name;
      const nmsnn::NetworkSpec& spec = model.spec;
      const int B = int(c.at("batch").as_int());
      const int T = spec.time_steps, I = spec.inputs, C = spec.outputs();

      nmsnn::NetworkOptions options;
      options.engine = engine;
      options.threads = 2;
      nmsnn::Network net(spec, options);

      // Every parameter of the network, and nothing else, must be in the fixture.
      const Json& params = c.at("parameters");
      ASSERT_EQ(params.size(), net.parameters().size())
          << name << ": the fixture has " << params.size() << " parameters, the network "
          << net.parameters().size();
      for (const nmsnn::ParameterInfo& p : net.parameters()) {
        const std::vector<double> values = tensor(params.at(p.name), p.shape, name + " " + p.name);
        net.set_parameter(p.name, to_float(values));
      }

      const std::vector<float> xi = to_float(tensor(c.at("input"), {T, B, I}, name + " input"));
      std::vector<int> labels;
      for (const Json& l : c.at("labels").as_array()) labels.push_back(int(l.as_int()));
      ASSERT_EQ(labels.size(), size_t(B)) << name << ": labels";

      const nmsnn::ForwardPass pass = net.forward(nmsnn::Input::sequence(xi, B));
      compare(where, "logits", pass.logits(), tensor(c.at("logits"), {B, C}, name + " logits"));

      // The library's loss on its own logits against PyTorch's dL/dlogits.
      const std::vector<double> dlogits = tensor(c.at("dlogits"), {B, C}, name + " dlogits");
      const nmsnn::LossValue loss = nmsnn::nll_log_softmax(pass.logits(), B, C, labels);
      compare(where, "dL/dlogits (loss)", loss.grad, dlogits);
      const double ref_loss = c.at("loss").as_number();
      EXPECT_LE(std::abs(loss.value - ref_loss), kTolerance * std::abs(ref_loss))
          << where << ": loss " << loss.value << ", PyTorch " << ref_loss;

      // Backward from PyTorch's dL/dlogits, so that the gradients are compared on their own.
      std::vector<float> dxi;
      net.backward(pass, to_float(dlogits), &dxi);
      const Json& grads = c.at("gradients");
      ASSERT_EQ(grads.size(), net.parameters().size()) << name << ": gradients";
      for (const nmsnn::ParameterInfo& p : net.parameters())
        compare(where, "d " + p.name, net.gradient(p.name),
                tensor(grads.at(p.name), p.shape, name + " gradient of " + p.name));
      compare(where, "dL/dxi", dxi, tensor(c.at("dinput"), {T, B, I}, name + " dinput"));
    }
  } catch (const std::exception& e) {
    FAIL() << path << ": malformed PyTorch fixture or failed run: " << e.what();
  }
}

TEST(PytorchFixture, CpuEngine) { check_fixture(Engine::cpu); }

TEST(PytorchFixture, CudaEngine) {
  REQUIRE_CUDA();
  check_fixture(Engine::cuda);
}

}  // namespace
