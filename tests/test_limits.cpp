// test_limits.cpp — sizes past the limits, the memory budget checked before allocating, and the
// one safe way to quote user text in a message (limits.hpp, error.hpp, network.hpp).
#include <gtest/gtest.h>
#include <stdlib.h>

#include "throws_with.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "nmsnn/nmsnn.hpp"

namespace {

using namespace nmsnn;

constexpr int64_t MiB = int64_t(1) << 20;

// Every test starts and ends with the machine's own budget.
class MemoryLimit : public ::testing::Test {
 protected:
  void SetUp() override { set_memory_limit(0); }
  void TearDown() override { set_memory_limit(0); }
};

NetworkDescription parse(const std::string& text) {
  return description_from_json(parse_json(text), "net.json");
}

std::vector<float> ramp(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 0.1f * float(i % 7);
  return v;
}

}  // namespace

// ---- sizes ---------------------------------------------------------------------------------
TEST(SizeLimits, HugeSizesInASpecAreRefusedByName) {
  NetworkSpec spec = NetworkSpec::spiking(784, {2147483647}, 10);
  expect_throws([&] { spec.validate(); }, {"layer 0: size must be at most 16777216, got 2147483647"});
  spec = NetworkSpec::mlp(784, {int(kMaxLayerSize) + 1}, 10);
  expect_throws([&] { Network n(spec); }, {"layer 0 (dense)", "at most 16777216", "16777217"});
  spec = NetworkSpec::spiking(784, {10}, 10, 1000000000);
  expect_throws([&] { spec.validate(); },
                {"time_steps (T) must be at most 1048576, got 1000000000"});
  spec = NetworkSpec::spiking(int(kMaxLayerSize) + 1, {10}, 10);
  expect_throws([&] { spec.validate(); }, {"inputs must be at most 16777216, got 16777217"});
  spec = NetworkSpec::spiking(4, std::vector<int>(kMaxLayers, 4), 2);
  expect_throws([&] { spec.validate(); }, {"has 4097 layers, at most 4096"});
  spec = NetworkSpec::spiking(4, {}, 2);
  spec.layers.insert(spec.layers.begin(), Lowpass{0.1f, 0.001f, -4});
  expect_throws([&] { spec.validate(); }, {"layer 0 (lowpass): units must be >= 0, got -4"});
  // At the limits themselves the spec is valid (the memory check is what stops it then).
  spec = NetworkSpec::spiking(int(kMaxLayerSize), {int(kMaxLayerSize)}, 1, int(kMaxTimeSteps));
  EXPECT_NO_THROW(spec.validate());
}

TEST(SizeLimits, JsonSizesAreRangeCheckedBeforeConversion) {
  // Out of int range, fractional, or past the limit: each names the path and the value, none
  // reaches a float-to-int conversion.
  expect_throws([] { parse(R"({"inputs": 4, "layers": [{"type": "dense", "size": 3}, {"type": "dense", "size": 2147483648}]})"); },
                {"net.json: layers[1].size must be a whole number in [1, 16777216], got 2147483648"});
  expect_throws([] { parse(R"({"inputs": 4, "time_steps": 1e10, "layers": [{"type": "dense", "size": 3}]})"); },
                {"net.json: time_steps must be a whole number in [1, 1048576], got 10000000000"});
  expect_throws([] { parse(R"({"inputs": 4, "layers": [{"type": "spiking", "size": 1e30}]})"); },
                {"layers[0].size", "got 1e+30"});
  expect_throws([] { parse(R"({"inputs": 4, "layers": [{"type": "dense", "size": -1e300}]})"); },
                {"layers[0].size", "[1, 16777216]"});
  expect_throws([] { parse(R"({"inputs": 4, "layers": [{"type": "dense", "size": 2.5}]})"); },
                {"layers[0].size", "whole number", "2.5"});
  expect_throws([] { parse(R"({"inputs": 4e9, "layers": [{"type": "dense", "size": 2}]})"); },
                {"net.json: inputs must be a whole number in [1, 16777216], got 4000000000"});
  expect_throws([] { parse(R"({"inputs": 4, "layers": [{"type": "lowpass", "units": 1e12}]})"); },
                {"layers[0].units", "[0, 16777216]"});
  expect_throws([] { parse(R"({"inputs": 4, "readout": {"begin_eval": -1}, "layers": [{"type": "dense", "size": 2}]})"); },
                {"readout.begin_eval", "got -1"});
  // Keys from the file are quoted in the path when they are not plain names.
  expect_throws([] { parse("{\"inputs\": 4, \"layers\": [{\"type\": \"dense\", \"size\": 2, \"bad\\nkey\": 1}]}"); },
                {"layers[0].'bad\\nkey': unknown key"});
  expect_throws([] { parse(R"({"inputs": 4, "layers": [{"type": "dense", "size": "x\u001b[31m"}]})"); },
                {"layers[0].size: expected a whole number, got 'x\\x1b[31m'"});
}

TEST(SizeLimits, CheckedIntegerRejectsBeforeConverting) {
  using detail::checked_integer;
  EXPECT_EQ(checked_integer("n", 3.0, 1, 5), 3);
  EXPECT_EQ(checked_integer("n", 5.0, 1, 5), 5);
  EXPECT_EQ(checked_integer("n", -0.0, 0, 5), 0);
  expect_throws([] { checked_integer("n", 1e10, 1, 5); },
                {"n must be a whole number in [1, 5], got 10000000000"});
  expect_throws([] { checked_integer("n", 2.5, 1, 5); }, {"got 2.5"});
  expect_throws([] { checked_integer("n", 0.0, 1, 5); }, {"got 0"});
  expect_throws([] { checked_integer("n", std::nan(""), 1, 5); }, {"got nan"});
  expect_throws([] { checked_integer("n", INFINITY, 1, 5); }, {"got inf"});
  expect_throws([] { checked_integer("n", 9.3e18, 0, std::numeric_limits<int64_t>::max()); },
                {"n must be a whole number"});
  EXPECT_EQ(detail::checked_range("m", 7, 7, 7), 7);
  expect_throws([] { detail::checked_range("m", -1, 0, 9); }, {"m must be in [0, 9], got -1"});
}

// ---- memory budget -------------------------------------------------------------------------
TEST_F(MemoryLimit, ParseAndFormatMemorySizes) {
  EXPECT_EQ(parse_memory_size("--max-memory", "512M"), 512 * MiB);
  EXPECT_EQ(parse_memory_size("--max-memory", "1.5G"), 1536 * MiB);
  EXPECT_EQ(parse_memory_size("--max-memory", "8GiB"), 8192 * MiB);
  EXPECT_EQ(parse_memory_size("--max-memory", "2k"), 2048);
  EXPECT_EQ(parse_memory_size("--max-memory", "1073741824"), 1024 * MiB);
  for (const char* bad : {"", "abc", "0", "-1G", "12X", "8 G", "1e30", "nan", "0.5"})
    expect_throws([&] { parse_memory_size("--max-memory", bad); },
                  {"--max-memory: expected a memory size such as 512M",
                   "got " + detail::quote(bad)});
  EXPECT_EQ(format_bytes(640), "640 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(1.5 * 1024 * MiB), "1.5 GiB");
  EXPECT_EQ(format_bytes(4.0 * 1024 * 1024 * 1024 * MiB), "4.0 PiB");
}

TEST_F(MemoryLimit, TheLimitComesFromTheCallThenTheEnvironmentThenTheMachine) {
  const int64_t machine = memory_limit();
  EXPECT_GT(machine, 16 * MiB);
  ASSERT_EQ(setenv("NMSNN_MAX_MEMORY", "3M", 1), 0);
  EXPECT_EQ(memory_limit(), 3 * MiB);
  set_memory_limit(5 * MiB);
  EXPECT_EQ(memory_limit(), 5 * MiB);  // the call wins over the environment
  set_memory_limit(0);
  ASSERT_EQ(setenv("NMSNN_MAX_MEMORY", "lots", 1), 0);
  expect_throws([] { memory_limit(); }, {"NMSNN_MAX_MEMORY", "'lots'"});
  ASSERT_EQ(unsetenv("NMSNN_MAX_MEMORY"), 0);
  EXPECT_EQ(memory_limit(), machine);
  expect_throws([] { set_memory_limit(-1); }, {"must be >= 0"});
  set_memory_limit(1024);
  EXPECT_NO_THROW(check_memory("a thing", 1024));
  expect_throws([] { check_memory("a thing", 2048); },
                {"a thing needs 2.0 KiB, more than the memory limit of 1.0 KiB"});
}

TEST_F(MemoryLimit, AParameterBudgetPastTheLimitFailsAtConstruction) {
  // 784-4096-10, widths padded to 8: 3.28 M parameters, 4 floats each = 50.1 MiB; a 16 MiB
  // budget cannot hold it.
  const NetworkSpec big = NetworkSpec::spiking(784, {4096}, 10);
  EXPECT_NEAR(parameter_bytes(big), 16.0 * (784 * 4096 + 4096 + 4096 * 16 + 16), 1.0);
  set_memory_limit(16 * MiB);
  expect_throws([&] { Network n(big); },
                {"storing a network of 2 layers (784-4096-10) with its gradients and optimiser "
                 "state needs 50.1 MiB, more than the memory limit of 16.0 MiB"});
  Network small(NetworkSpec::spiking(4, {5}, 3, 4));  // a small one still works
  EXPECT_EQ(small.forward(Input::noisy(ramp(8), 2)).logits().size(), 6u);
  // Valid sizes whose product no machine holds fail with the machine's budget as well.
  set_memory_limit(0);
  expect_throws([] { Network n(NetworkSpec::mlp(int(kMaxLayerSize), {int(kMaxLayerSize)}, 10)); },
                {"storing a network of 3 layers (16777216-16777216-16777216-10)", "PiB",
                 "more than the memory limit"});
}

TEST_F(MemoryLimit, APassPastTheLimitFailsBeforeItsBuffersAreAllocated) {
  // T = 1000: a training pass keeps u[T, 64] and u[T, 8] per sample, 288 KB; 1000 samples are
  // 275 MiB, far past 16 MiB, while 2 samples fit.
  set_memory_limit(16 * MiB);
  Network net(NetworkSpec::spiking(8, {64}, 4, 1000), {Engine::cpu, 1, 2});
  const std::vector<float> x = ramp(8 * 1000);
  expect_throws([&] { net.forward(Input::noisy(x, 1000)); },
                {"a training pass of batch 1000 at T=1000 through 2 layers (8-64-4) needs",
                 "more than the memory limit of 16.0 MiB"});
  EXPECT_EQ(net.noise_passes(), 0u);  // refused before the pass began
  const ForwardPass two = net.forward(Input::noisy(ramp(16), 2));
  EXPECT_EQ(two.logits().size(), 8u);
  // An inference pass keeps nothing for backward: the same batch fits.
  ForwardOptions inference;
  inference.training = false;
  EXPECT_EQ(net.forward(Input::noisy(x, 1000), inference).logits().size(), 4000u);
  // A lower budget is seen at the next pass, although the kind of pass was checked before.
  set_memory_limit(64 * 1024);
  expect_throws([&] { net.forward(Input::noisy(x, 1000), inference); },
                {"an inference pass of batch 1000 at T=1000", "more than the memory limit of 64.0 KiB"});
}

TEST_F(MemoryLimit, HugeTimeStepsFailWithHowMuchAndWhy) {
  set_memory_limit(1024 * MiB);
  Network net(NetworkSpec::spiking(784, {100}, 10, 1000000), {Engine::cpu, 1, 1});
  const std::vector<float> x(784 * 100, 0.5f);
  // 100 samples * 10^6 steps * (104 + 16) saved floats (widths padded to 8) = 44.7 GiB kept for
  // backward alone; the estimate counts that and the workers' buffers.
  const double bytes = pass_bytes(net.spec(), 100, ForwardOptions{}, 1);
  EXPECT_GE(bytes, 100 * 1e6 * 120 * 4);
  EXPECT_LE(bytes, 2 * 100 * 1e6 * 120 * 4);
  expect_throws([&] { net.forward(Input::noisy(x, 100)); },
                {"a training pass of batch 100 at T=1000000 through 2 layers (784-100-10) needs " +
                     format_bytes(bytes) + ", more than the memory limit of 1.0 GiB"});
}

TEST(MemoryEstimate, TrainingPassEstimateCoversWhatTheEngineSaves) {
  // The estimate must cover the bytes a training pass really keeps (ForwardPass::saved_bytes),
  // and, with a large batch where those dominate, stay within 2x of them.
  const std::vector<NetworkSpec> specs = {
      NetworkSpec::spiking(16, {32}, 4, 50),
      NetworkSpec::mlp(20, {30, 12}, 3),
      parse(R"({"inputs": 6, "time_steps": 40, "layers": [
                 {"type": "dense", "size": 24},
                 {"type": "spiking_activation", "rate_weight": 0.1},
                 {"type": "lowpass"},
                 {"type": "dense", "size": 5},
                 {"type": "activation", "function": "tanh"},
                 {"type": "temporal_avg_pool"},
                 {"type": "dense", "size": 2}]})").spec,
      parse(R"({"inputs": 150, "input_shape": [1, 10, 15], "time_steps": 6, "layers": [
                 {"type": "conv2d", "out_channels": 4, "kernel": [3, 3], "padding": [1, 1]},
                 {"type": "lif"},
                 {"type": "max_pool2d", "kernel": [2, 2]},
                 {"type": "conv2d", "out_channels": 5, "kernel": [3, 2], "stride": [2, 1]},
                 {"type": "lif"},
                 {"type": "flatten"},
                 {"type": "dense", "size": 3}]})").spec,
  };
  for (const NetworkSpec& spec : specs) {
    Network net(spec, {Engine::cpu, 1, 1});
    const int B = 512;
    const ForwardPass pass = net.forward(Input::noisy(ramp(size_t(B) * spec.inputs), B));
    const double estimate = pass_bytes(spec, B, ForwardOptions{}, 1);
    EXPECT_GE(estimate, double(pass.saved_bytes())) << spec.inputs;
    EXPECT_LE(estimate, 2.0 * double(pass.saved_bytes()) + 64 * parameter_bytes(spec)) << spec.inputs;
  }
  // The big case alone: saved states dominate, the estimate is within 2x.
  const NetworkSpec spec = NetworkSpec::spiking(16, {32}, 4, 50);
  Network net(spec, {Engine::cpu, 1, 1});
  const ForwardPass pass = net.forward(Input::noisy(ramp(512 * 16), 512));
  EXPECT_LE(pass_bytes(spec, 512, ForwardOptions{}, 1), 2.0 * double(pass.saved_bytes()));
  // Inference keeps nothing per sample beyond the logits; recording traces keeps a lot.
  ForwardOptions inference, recorded;
  inference.training = false;
  recorded.record = true;
  EXPECT_LT(pass_bytes(spec, 512, inference, 1), pass_bytes(spec, 512, ForwardOptions{}, 1) / 10);
  EXPECT_GT(pass_bytes(spec, 512, recorded, 1), pass_bytes(spec, 512, ForwardOptions{}, 1));
}

// ---- quoting user text ---------------------------------------------------------------------
TEST(Quoted, ControlCharactersAreEscapedAndTheTextStaysOneLine) {
  const auto quoted = [](std::string_view text, size_t max = 80) { return detail::quote(text, max); };
  EXPECT_EQ(quoted("abc"), "'abc'");
  EXPECT_EQ(quoted(""), "''");
  EXPECT_EQ(quoted("a\nb\tc\rd"), "'a\\nb\\tc\\rd'");
  EXPECT_EQ(quoted(std::string("a\0b", 3)), "'a\\x00b'");  // a NUL does not cut the message
  EXPECT_EQ(quoted("\x1b[31mred"), "'\\x1b[31mred'");      // no terminal escape passes through
  EXPECT_EQ(quoted("it's a\\b"), "'it\\'s a\\\\b'");
  EXPECT_EQ(quoted("\x7f"), "'\\x7f'");
  EXPECT_EQ(quoted("\xc2\x85"), "'\\xc2\\x85'");           // C1 control NEL
  EXPECT_EQ(quoted("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "'caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80'");  // valid UTF-8 is kept
  EXPECT_EQ(quoted("\xff\xc3"), "'\\xff\\xc3'");            // invalid or truncated UTF-8
  EXPECT_EQ(quoted("\xc0\xaf"), "'\\xc0\\xaf'");            // overlong form
  EXPECT_EQ(quoted("\xed\xa0\x80"), "'\\xed\\xa0\\x80'");   // surrogate
}

TEST(Quoted, LongTextIsCutWithItsLength) {
  const auto quoted = [](std::string_view text, size_t max = 80) { return detail::quote(text, max); };
  const std::string cell(10 * 1024 * 1024, 'x');
  const std::string q = quoted(cell);
  EXPECT_EQ(q, "'" + std::string(80, 'x') + "...' (10485760 bytes)");
  EXPECT_EQ(quoted("abcdef", 3), "'abc...' (6 bytes)");
  EXPECT_EQ(quoted("abc", 3), "'abc'");  // exactly the maximum: not cut
  // Never half a character: 50 two-byte characters cut at 81 bytes keep 40 of them.
  std::string e;
  for (int i = 0; i < 50; ++i) e += "\xc3\xa9";
  std::string kept;
  for (int i = 0; i < 40; ++i) kept += "\xc3\xa9";
  EXPECT_EQ(quoted(e, 81), "'" + kept + "...' (100 bytes)");
}
