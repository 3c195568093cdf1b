// tests/test_safetensors.cpp — the safetensors writer, its validating reader and atomic writes.
//
// The exact bytes of small files are spelled out by hand from the format description, so the
// writer is checked against the format rather than against the reader. Broken files are built
// byte by byte at run time, one defect each.
#include <gtest/gtest.h>

#include "temp_dir.hpp"

#include "safe_message.hpp"
#include "throws_with.hpp"
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "nmsnn/error.hpp"
#include "nmsnn/files.hpp"
#include "nmsnn/safetensors.hpp"

namespace fs = std::filesystem;
using nmsnn::NamedTensor;

namespace {

uint32_t bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

std::string le64(uint64_t v) {
  std::string s;
  for (int i = 0; i < 8; ++i) s += char((v >> (8 * i)) & 0xFF);
  return s;
}

std::string f32_bytes(const std::vector<float>& values) {
  std::string s;
  for (float v : values) {
    const uint32_t b = bits(v);
    for (int i = 0; i < 4; ++i) s += char((b >> (8 * i)) & 0xFF);
  }
  return s;
}

// A file with `header` as is (no padding) followed by `data`.
std::string file_bytes(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class Safetensors : public TempDirTest {
 protected:
  std::string put(const std::string& name, const std::string& bytes) {
    nmsnn::write_file_atomic(path(name), bytes);
    return path(name);
  }
  // Reading `bytes` as a file must fail with every one of `parts` in the message.
  ::testing::AssertionResult rejects(const std::string& bytes, std::vector<std::string> parts) {
    const std::string p = put("case.safetensors", bytes);
    parts.push_back(p);
    return throws_with([&] { nmsnn::read_safetensors(p); }, parts);
  }

};

const std::string kEntryA = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

}  // namespace

// ---- the format, byte for byte ----

TEST_F(Safetensors, ExactBytesOfATinyFile) {
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_EQ(header.size(), 85u);  // padded with 3 spaces to 88, a multiple of 8
  const std::string expected = std::string("\x58\0\0\0\0\0\0\0", 8) + header + "   " +
                               std::string("\x00\x00\x80\x3F\x00\x00\x00\xC0", 8);  // 1.0f, -2.0f
  EXPECT_EQ(nmsnn::safetensors_bytes({{"w", {2}, {1.0f, -2.0f}}}, {{"format", "pt"}}), expected);
  nmsnn::write_safetensors(path("w.safetensors"), {{"w", {2}, {1.0f, -2.0f}}}, {{"format", "pt"}});
  EXPECT_EQ(nmsnn::read_file(path("w.safetensors")), expected);
}

TEST_F(Safetensors, ExactBytesWithoutMetadataAndWithEmptyTensors) {
  // A scalar (shape []) holds one value; a tensor with a 0 dimension holds none and takes no bytes.
  const std::string header = R"({"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
                             R"("b":{"dtype":"F32","shape":[1,0],"data_offsets":[4,4]}})";
  ASSERT_EQ(header.size(), 108u);
  const std::string expected = le64(112) + header + "    " + f32_bytes({0.5f});
  EXPECT_EQ(nmsnn::safetensors_bytes({{"a", {}, {0.5f}}, {"b", {1, 0}, {}}}), expected);
  EXPECT_EQ(nmsnn::safetensors_bytes({}), le64(8) + "{}      ");
}

TEST_F(Safetensors, RoundTripKeepsEveryBit) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<NamedTensor> tensors = {
      {"layer0.weight", {3, 4}, {}},
      {"layer0.bias", {4}, {-0.0f, FLT_MIN, std::numeric_limits<float>::denorm_min(), 1e-40f}},
      {"special", {2, 2}, {nan, INFINITY, -INFINITY, FLT_MAX}},
      {"scalar", {}, {0.1f}},
      {"empty", {0, 5}, {}},
      {"caf\xC3\xA9/\"quoted\"", {1}, {42.0f}},
  };
  for (int i = 0; i < 12; ++i) tensors[0].data.push_back(float(i) / 7 - 0.8f);
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"nmsnn", R"({"layers":[784,100,10],"decay":0.9})"}, {"empty", ""}};
  const std::string p = path("model.safetensors");
  nmsnn::write_safetensors(p, tensors, metadata);

  const nmsnn::SafetensorsFile f = nmsnn::read_safetensors(p);
  EXPECT_EQ(f.path, p);
  EXPECT_EQ(f.metadata, metadata);
  ASSERT_EQ(f.tensors.size(), tensors.size());
  for (size_t t = 0; t < tensors.size(); ++t) {
    SCOPED_TRACE(tensors[t].name);
    EXPECT_EQ(f.tensors[t].name, tensors[t].name);  // file order is write order
    EXPECT_EQ(f.tensors[t].shape, tensors[t].shape);
    ASSERT_EQ(f.tensors[t].data.size(), tensors[t].data.size());
    for (size_t i = 0; i < tensors[t].data.size(); ++i) {
      EXPECT_EQ(bits(f.tensors[t].data[i]), bits(tensors[t].data[i])) << i;
    }
  }
  EXPECT_EQ(f.at("scalar").data, std::vector<float>{0.1f});
  EXPECT_EQ(f.find("nope"), nullptr);
  EXPECT_TRUE(throws_with([&] { f.at("layer1.weight"); }, {p, "no tensor named 'layer1.weight'",
                                                           "'layer0.weight', 'layer0.bias'"}));
}

TEST_F(Safetensors, ReadsTensorsInOffsetOrderAndF64) {
  // Header order differs from data order; padding is optional for readers.
  const std::string header = R"({"late":{"dtype":"F32","shape":[1],"data_offsets":[16,20]},)"
                             R"("wide":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})";
  double d[2] = {0.1, -3.0};
  std::string data(reinterpret_cast<const char*>(d), 16);  // little-endian host
  data += f32_bytes({7.0f});
  const nmsnn::SafetensorsFile f =
      nmsnn::read_safetensors(put("f64.safetensors", file_bytes(header, data)));
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[0].name, "wide");
  EXPECT_EQ(f.tensors[0].data, (std::vector<float>{0.1f, -3.0f}));
  EXPECT_EQ(f.tensors[1].name, "late");
  EXPECT_TRUE(f.metadata.empty());
}

// ---- rejected files ----

TEST_F(Safetensors, ForeignFilesAreNotSafetensors) {
  EXPECT_TRUE(rejects("", {"not a safetensors file", "empty"}));
  EXPECT_TRUE(rejects("\x01\x02\x03", {"not a safetensors file", "3 bytes is too short"}));
  const std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0", 29);
  EXPECT_TRUE(rejects(png, {"not a safetensors file", "header length", "absurd"}));
  EXPECT_TRUE(rejects("epoch,loss,accuracy\n1,0.5,0.9\n", {"not a safetensors file", "absurd"}));
  EXPECT_TRUE(rejects("{\"a\": 1}\n", {"not a safetensors file"}));
  // The writer refuses an empty tensor name, so the reader does too (found by fuzz_safetensors).
  const std::string empty_name = R"({"":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})";
  EXPECT_TRUE(rejects(std::string(1, char(empty_name.size())) + std::string(7, '\0') + empty_name,
                      {"a tensor has an empty name"}));
  // A plausible length but no JSON object after it.
  EXPECT_TRUE(rejects(le64(8) + "[1,2,3] ", {"not a safetensors file", "does not start with '{'"}));
  EXPECT_TRUE(rejects(le64(0), {"not a safetensors file", "header length 0"}));
}

TEST_F(Safetensors, Truncated) {
  const std::string good = nmsnn::safetensors_bytes({{"w", {2, 2}, {1, 2, 3, 4}}});
  EXPECT_TRUE(
      rejects(good.substr(0, 20), {"truncated", "header length says 64 bytes but only 12"}));
  EXPECT_TRUE(rejects(
      good.substr(0, good.size() - 1),
      {"tensor 'w'", "data_offsets [0, 16] reach past the end of the 15-byte", "truncated"}));
  EXPECT_TRUE(rejects(le64(200'000'000) + "{}", {"absurd"}));
}

TEST_F(Safetensors, CorruptHeader) {
  EXPECT_TRUE(
      rejects(file_bytes(R"({"a":{"dtype":"F32",)", ""),
              {"corrupt header", "invalid JSON at byte offset 20", "unexpected end of input"}));
  EXPECT_TRUE(rejects(file_bytes("{" + kEntryA + "," + kEntryA + "}", std::string(8, '\0')),
                      {"corrupt header", "duplicate key 'a'"}));
  EXPECT_TRUE(rejects(file_bytes(R"({"a":{"dtype":"F32","shape":[2]}})", std::string(8, '\0')),
                      {"tensor 'a'", "missing field \"data_offsets\""}));
  EXPECT_TRUE(rejects(file_bytes(R"({"a":[1,2]})", ""), {"tensor 'a'", "expected an object"}));
  EXPECT_TRUE(
      rejects(file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})",
                         std::string(8, '\0')),
              {"unexpected header field 'extra'"}));
  EXPECT_TRUE(
      rejects(file_bytes(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})",
                         std::string(8, '\0')),
              {"tensor 'a': shape[0] must be a whole number in [0, 9007199254740992], got -2"}));
  EXPECT_TRUE(rejects(
      file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", std::string(8, '\0')),
      {"data_offsets must be [begin, end], found an array of 1 item"}));
  EXPECT_TRUE(rejects(file_bytes(R"({"__metadata__":{"v":1}})", ""),
                      {"__metadata__ value of 'v' is number, expected a string"}));
  EXPECT_TRUE(rejects(file_bytes(R"({"__metadata__":[]})", ""), {"__metadata__ is array"}));
}

// Every shape entry and offset is range-checked as a double before it becomes an integer (1e30
// or 2.5 converted to int64_t would be undefined), and products of shape entries cannot overflow.
TEST_F(Safetensors, ShapesAndOffsetsAreRangeChecked) {
  const auto with_shape = [](const std::string& shape) {
    return file_bytes(R"({"a":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[0,8]}})",
                      std::string(8, '\0'));
  };
  EXPECT_TRUE(rejects(with_shape("[1e30]"),
                      {"tensor 'a': shape[0] must be a whole number in [0, 9007199254740992], "
                       "got 1e+30"}));
  EXPECT_TRUE(rejects(with_shape("[2, 2.5]"), {"tensor 'a': shape[1] must be", "got 2.5"}));
  EXPECT_TRUE(rejects(with_shape("[-1]"), {"shape[0] must be", "got -1"}));
  EXPECT_TRUE(
      rejects(with_shape("[9007199254740994]"), {"shape[0] must be", "got 9007199254740994"}));
  EXPECT_TRUE(rejects(with_shape(R"(["2"])"), {"shape[0] is string, expected a non-negative"}));
  // 2^32 * 2^32 * 2^32 overflows int64_t; the product is checked, not wrapped.
  EXPECT_TRUE(rejects(with_shape("[4294967296, 4294967296, 4294967296]"),
                      {"shape [4294967296, 4294967296, 4294967296] of F32", "does not match"}));
  EXPECT_TRUE(
      rejects(with_shape("[2, 0, 4294967296]"), {"shape [2, 0, 4294967296]", "does not match"}));
  EXPECT_TRUE(rejects(
      file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,1e300]}})", ""),
      {"tensor 'a': data_offsets[1] must be a whole number in [0, 9007199254740992], got "
       "1.0000000000000001e+300"}));
  EXPECT_TRUE(rejects(
      file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,9007199254740992]}})", ""),
      {"data_offsets [0, 9007199254740992] reach past the end of the 0-byte data buffer"}));
  // F64 values beyond the float range are an error, not an undefined narrowing.
  std::string big(8, '\0');
  const double huge = 1e300;
  std::memcpy(&big[0], &huge, 8);
  EXPECT_TRUE(rejects(file_bytes(R"({"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", big),
                      {"tensor 'a': F64 value 1e+300 at index 0 is outside the float range"}));
}

// Names, dtypes and paths are quoted: control characters escaped, a 1 MB name cut.
TEST_F(Safetensors, MessagesQuoteWhatTheyEcho) {
  EXPECT_TRUE(
      rejects(file_bytes(R"({"a\n\u001b[2J":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})",
                         std::string(8, '\0')),
              {"tensor 'a\\n\\x1b[2J': unknown dtype 'F33'"}));
  EXPECT_TRUE(rejects(
      file_bytes(R"({"a":{"dtype":"\u001b]0;x\u0007","shape":[2],"data_offsets":[0,8]}})",
                 std::string(8, '\0')),
      {"unknown dtype '\\x1b]0;x\\x07'"}));
  const std::string long_name(1 << 20, 'w');
  const std::string p = put("case.safetensors",
                            file_bytes("{\"" + long_name + R"(":{"dtype":"I8","shape":[1],)" +
                                           R"("data_offsets":[0,1]}})",
                                       std::string(1, '\0')));
  EXPECT_TRUE(
      throws_safe_line([&] { nmsnn::read_safetensors(p); },
                       {"tensor 'wwww", "...' (1048576 bytes): dtype 'I8' is not supported"}));
  // Looking up a missing tensor lists a few names, quoted, not all of them.
  std::vector<NamedTensor> many;
  for (int i = 0; i < 500; ++i)
    many.push_back({std::string(60, 't') + "\n" + std::to_string(i), {1}, {1.0f}});
  nmsnn::write_safetensors(path("many.safetensors"), many);
  const nmsnn::SafetensorsFile f = nmsnn::read_safetensors(path("many.safetensors"));
  EXPECT_TRUE(throws_safe_line([&] { f.at("x\x1b"); },
                               {"no tensor named 'x\\x1b'; the file has 'tttt", "(500 in all)"}));
  // The writer quotes names and the path as well.
  EXPECT_TRUE(throws_safe_line(
      [&] { nmsnn::write_safetensors(path("o\nut"), {{"a\x1b", {2}, {1.0f}}}); },
      {"o\\nut': not written: safetensors tensor 'a\\x1b': shape [2] holds 2 values"}));
}

TEST_F(Safetensors, UnknownAndUnsupportedDtypes) {
  EXPECT_TRUE(rejects(
      file_bytes(R"({"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')),
      {"tensor 'a'", "unknown dtype 'F33'", "F32"}));
  EXPECT_TRUE(rejects(
      file_bytes(R"({"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", std::string(8, '\0')),
      {"tensor 'a'", "dtype 'I64' is not supported"}));
}

TEST_F(Safetensors, ShapeMustMatchByteSpan) {
  EXPECT_TRUE(rejects(
      file_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')),
      {"tensor 'a'", "shape [3] of F32 (4 bytes each) does not match", "[0, 8] spanning 8 bytes"}));
  EXPECT_TRUE(rejects(
      file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,4]}})", std::string(8, '\0')),
      {"data_offsets [8, 4] run backwards"}));
}

TEST_F(Safetensors, TensorsMustTileTheBuffer) {
  const std::string b_at = R"("b":{"dtype":"F32","shape":[2],"data_offsets":[)";
  EXPECT_TRUE(rejects(file_bytes("{" + kEntryA + "," + b_at + "4,12]}}", std::string(12, '\0')),
                      {"tensors 'a' [0, 8) and 'b' [4, 12) overlap"}));
  EXPECT_TRUE(rejects(file_bytes("{" + kEntryA + "," + b_at + "12,20]}}", std::string(20, '\0')),
                      {"gap in the data buffer: bytes [8, 12) belong to no tensor"}));
  EXPECT_TRUE(rejects(
      file_bytes(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, '\0')),
      {"gap", "bytes [0, 4)"}));
  EXPECT_TRUE(rejects(file_bytes("{" + kEntryA + "}", std::string(11, '\0')),
                      {"3 trailing bytes after the last tensor"}));
  EXPECT_TRUE(rejects(file_bytes("{}", "x"), {"1 trailing bytes"}));
}

// ---- writing safely ----

TEST_F(Safetensors, WriterRejectsBadTensorsBeforeTouchingTheFile) {
  const std::string p = path("model.safetensors");
  nmsnn::write_safetensors(p, {{"w", {1}, {1.0f}}});
  const std::string before = nmsnn::read_file(p);
  EXPECT_TRUE(throws_with(
      [&] {
        nmsnn::write_safetensors(p, {{"w", {2, 3}, {1, 2, 3, 4, 5}}});
      },
      {p, "not written", "tensor 'w'", "shape [2, 3] holds 6 values but data has 5"}));
  EXPECT_TRUE(throws_with(
      [&] {
        nmsnn::write_safetensors(p, {{"a", {1}, {1}}, {"a", {1}, {2}}});
      },
      {"tensor 'a'", "duplicate tensor name"}));
  EXPECT_TRUE(throws_with([&] { nmsnn::write_safetensors(p, {{"", {1}, {1}}}); }, {"empty name"}));
  EXPECT_TRUE(throws_with(
      [&] {
        nmsnn::write_safetensors(p, {{"__metadata__", {1}, {1}}});
      },
      {"reserved"}));
  EXPECT_TRUE(throws_with([&] { nmsnn::write_safetensors(p, {{"w", {-1}, {}}}); }, {"negative"}));
  EXPECT_TRUE(throws_with(
      [&] {
        nmsnn::write_safetensors(p, {{"bad\xFF", {1}, {1}}});
      },
      {"UTF-8"}));
  EXPECT_TRUE(throws_with([&] { nmsnn::write_safetensors(p, {}, {{"k", "\xC3"}}); }, {"UTF-8"}));
  EXPECT_EQ(nmsnn::read_file(p), before);
  EXPECT_EQ(listing(dir), std::vector<std::string>{"model.safetensors"});
}

TEST_F(Safetensors, ReplacesAnExistingFileWhole) {
  const std::string p = path("model.safetensors");
  nmsnn::write_safetensors(p, {{"w", {1}, {1.0f}}});
  nmsnn::write_safetensors(p, {{"w", {3}, {4, 5, 6}}}, {{"epoch", "2"}});
  const nmsnn::SafetensorsFile f = nmsnn::read_safetensors(p);
  EXPECT_EQ(f.at("w").data, (std::vector<float>{4, 5, 6}));
  EXPECT_EQ(f.metadata.at("epoch"), "2");
  EXPECT_EQ(listing(dir), std::vector<std::string>{"model.safetensors"});
}

TEST_F(Safetensors, MissingDirectoryFailsCleanly) {
  const std::string p = path("no-such-dir/model.safetensors");
  EXPECT_TRUE(throws_with(
      [&] {
        nmsnn::write_safetensors(p, {{"w", {1}, {1.0f}}});
      },
      {p, "cannot create a temporary file", "No such file or directory"}));
  EXPECT_TRUE(listing(dir).empty());
  EXPECT_FALSE(fs::exists(dir / "no-such-dir"));
}

// A write that fails half-way (here: the file size limit is hit) removes its temporary file and
// leaves the previous model in place.
TEST_F(Safetensors, FailedWriteLeavesOldFileAndNoTemporary) {
  const std::string p = path("model.safetensors");
  nmsnn::write_safetensors(p, {{"w", {1}, {1.0f}}});
  const std::string before = nmsnn::read_file(p);

  const auto old_handler = signal(SIGXFSZ, SIG_IGN);  // make the write fail with EFBIG instead
  rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  rlimit small = old_limit;
  small.rlim_cur = 1000;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message;
  try {
    nmsnn::write_safetensors(p, {{"big", {4096}, std::vector<float>(4096, 1.0f)}});
  } catch (const nmsnn::Error& e) {
    message = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old_limit);
  signal(SIGXFSZ, old_handler);

  EXPECT_NE(message.find("'" + p + "': write failed"), std::string::npos) << message;
  EXPECT_NE(message.find("nothing was replaced"), std::string::npos) << message;
  EXPECT_EQ(nmsnn::read_file(p), before);
  EXPECT_EQ(listing(dir), std::vector<std::string>{"model.safetensors"});
}
