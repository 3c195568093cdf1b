// tests/test_idx.cpp — the IDX reader, the MNIST loader and Dataset's checks.
//
// Small IDX fixtures are written at run time into a fresh temporary directory, plain and gzipped,
// so each failure mode can be produced exactly; the real MNIST files in data/mnist check the
// loader end to end.
#include <gtest/gtest.h>

#include "temp_dir.hpp"

#include "safe_message.hpp"
#include "throws_with.hpp"
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "nmsnn/dataset.hpp"
#include "nmsnn/error.hpp"
#include "nmsnn/idx.hpp"
#include "nmsnn/limits.hpp"
#include "nmsnn/preprocess.hpp"

namespace fs = std::filesystem;
using nmsnn::Dataset;
using nmsnn::PixelScale;
using Bytes = std::vector<uint8_t>;

namespace {

Bytes idx_header(uint8_t type, const std::vector<uint32_t>& dims) {
  Bytes b = {0, 0, type, uint8_t(dims.size())};
  for (uint32_t d : dims) {
    b.push_back(uint8_t(d >> 24));
    b.push_back(uint8_t(d >> 16));
    b.push_back(uint8_t(d >> 8));
    b.push_back(uint8_t(d));
  }
  return b;
}

Bytes idx_file(const std::vector<uint32_t>& dims, const Bytes& data) {
  Bytes b = idx_header(0x08, dims);
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

void write_plain(const fs::path& path, const Bytes& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  if (!bytes.empty()) {
    ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
  }
  std::fclose(f);
}

void write_gzip(const fs::path& path, const Bytes& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  if (!bytes.empty()) {
    ASSERT_EQ(gzwrite(f, bytes.data(), unsigned(bytes.size())), int(bytes.size()));
  }
  ASSERT_EQ(gzclose(f), Z_OK);
}

Bytes read_plain(const fs::path& path) {
  Bytes b(fs::file_size(path));
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f) {
    b.resize(std::fread(b.data(), 1, b.size(), f));
    std::fclose(f);
  }
  return b;
}

// 2 x 3 x 4 ubyte values 0..23, the shape of an image file.
const std::vector<uint32_t> kDims = {2, 3, 4};
Bytes iota_bytes(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = uint8_t(i * 11);
  return b;
}

// Five 2x3 images whose pixels cover 0, 255 and values between; labels 0..4.
const Bytes kPixels = {0,   255, 1,   128, 127, 254,  //
                       10,  20,  30,  40,  50,  60,   //
                       255, 255, 255, 0,   0,   0,    //
                       3,   5,   7,   11,  13,  17,   //
                       200, 100, 51,  102, 153, 204};
const Bytes kLabels = {3, 1, 4, 1, 5};

class TempDir : public TempDirTest {
 protected:

  // The fixture MNIST directory: train files gzipped, test files plain, so both spellings load.
  void write_mnist(const Bytes& pixels, uint32_t n_images, const Bytes& labels, uint32_t n_labels) {
    write_gzip(dir / "train-images-idx3-ubyte.gz", idx_file({n_images, 2, 3}, pixels));
    write_gzip(dir / "train-labels-idx1-ubyte.gz", idx_file({n_labels}, labels));
    write_plain(dir / "t10k-images-idx3-ubyte", idx_file({n_images, 2, 3}, pixels));
    write_plain(dir / "t10k-labels-idx1-ubyte", idx_file({n_labels}, labels));
  }

};

using IdxTest = TempDir;
using MnistFixtureTest = TempDir;

}  // namespace

// ---- read_idx ----------------------------------------------------------------------------------

TEST_F(IdxTest, ReadsPlainFile) {
  const Bytes data = iota_bytes(24);
  write_plain(dir / "a.idx", idx_file(kDims, data));
  const nmsnn::IdxArray a = nmsnn::read_idx(path("a.idx"));
  EXPECT_EQ(a.dims, (std::vector<int>{2, 3, 4}));
  EXPECT_EQ(a.data, data);
}

TEST_F(IdxTest, ReadsGzipFile) {
  const Bytes data = iota_bytes(24);
  write_gzip(dir / "a.idx.gz", idx_file(kDims, data));
  // Make sure the fixture really is compressed, not a plain file with a .gz name.
  const Bytes raw = read_plain(dir / "a.idx.gz");
  ASSERT_GE(raw.size(), 2u);
  EXPECT_EQ(raw[0], 0x1f);
  EXPECT_EQ(raw[1], 0x8b);
  const nmsnn::IdxArray a = nmsnn::read_idx(path("a.idx.gz"));
  EXPECT_EQ(a.dims, (std::vector<int>{2, 3, 4}));
  EXPECT_EQ(a.data, data);
}

TEST_F(IdxTest, ReadsLargeDimensions) {
  // Dimensions above 255 exercise every byte of the big-endian decoding.
  const Bytes data = iota_bytes(70000);
  write_gzip(dir / "big.gz", idx_file({70000}, data));
  const nmsnn::IdxArray a = nmsnn::read_idx(path("big.gz"));
  EXPECT_EQ(a.dims, (std::vector<int>{70000}));
  EXPECT_EQ(a.data, data);
}

TEST_F(IdxTest, MissingFile) {
  const std::string p = path("no-such-file.idx");
  EXPECT_TRUE(throws_with([&] { nmsnn::read_idx(p); }, {p, "cannot open"}));
}

TEST_F(IdxTest, EmptyFile) {
  write_plain(dir / "empty", {});
  EXPECT_TRUE(throws_with([&] { nmsnn::read_idx(path("empty")); }, {path("empty"), "empty file"}));
}

TEST_F(IdxTest, HeaderTooShort) {
  write_plain(dir / "short", {0, 0, 8});
  EXPECT_TRUE(throws_with([&] { nmsnn::read_idx(path("short")); },
                          {path("short"), "truncated IDX header: expected 4 bytes, found 3"}));
  // Magic complete but the dimension list cut off: 3 dims need 16 header bytes.
  Bytes cut = idx_header(0x08, kDims);
  cut.resize(10);
  write_plain(dir / "cut-dims", cut);
  EXPECT_TRUE(throws_with([&] { nmsnn::read_idx(path("cut-dims")); },
                          {"truncated IDX header: expected 16 bytes, found 10"}));
}

TEST_F(IdxTest, NonZeroMagicBytes) {
  Bytes b = idx_file(kDims, iota_bytes(24));
  b[1] = 0x01;
  write_plain(dir / "magic", b);
  EXPECT_TRUE(throws_with([&] { nmsnn::read_idx(path("magic")); },
                          {path("magic"), "not an IDX file", "0x00 0x01"}));
}

TEST_F(IdxTest, WrongTypeCode) {
  Bytes b = idx_header(0x0D, {2});
  b.resize(b.size() + 8, 0);
  write_plain(dir / "float.idx", b);
  EXPECT_TRUE(throws_with([&] { nmsnn::read_idx(path("float.idx")); },
                          {path("float.idx"), "0x0D", "float", "not supported"}));
  b[2] = 0x42;
  write_plain(dir / "odd.idx", b);
  EXPECT_TRUE(throws_with([&] { nmsnn::read_idx(path("odd.idx")); }, {"0x42", "unknown"}));
}

TEST_F(IdxTest, ZeroOrTooManyDimensions) {
  write_plain(dir / "zero", idx_header(0x08, {}));
  EXPECT_TRUE(throws_with([&] { nmsnn::read_idx(path("zero")); },
                          {path("zero"), "0 dimensions, expected 1 to 4"}));
  write_plain(dir / "five", idx_header(0x08, {1, 1, 1, 1, 1}));
  EXPECT_TRUE(throws_with([&] { nmsnn::read_idx(path("five")); }, {"5 dimensions"}));
}

TEST_F(IdxTest, ZeroSizedOrAbsurdDimensions) {
  write_plain(dir / "zero-dim", idx_header(0x08, {3, 0}));
  EXPECT_TRUE(throws_with([&] { nmsnn::read_idx(path("zero-dim")); }, {"dimension 1 is 0"}));
  // 65536^3 values would overflow 32-bit arithmetic; the reader must refuse before allocating.
  write_plain(dir / "huge", idx_header(0x08, {65536, 65536, 65536}));
  EXPECT_TRUE(throws_with([&] { nmsnn::read_idx(path("huge")); },
                          {"'" + path("huge") + "'", "IDX dimensions [65536, 65536, 65536]",
                           "values per sample, more than the 16777216 nmsnn accepts"}));
  write_plain(dir / "huge-dim", idx_header(0x08, {0xFFFFFFFFu}));
  EXPECT_TRUE(throws_with([&] { nmsnn::read_idx(path("huge-dim")); },
                          {"[4294967295] give 4294967295 samples, more than the 1073741824"}));
}

// Sets the memory budget for one test and puts the default back after it.
struct MemoryLimit {
  explicit MemoryLimit(int64_t bytes) { nmsnn::set_memory_limit(bytes); }
  ~MemoryLimit() { nmsnn::set_memory_limit(0); }
};

// The limits hold before anything is allocated: a header claiming 2^31 - 1 samples, or more
// values per sample than a layer may have, is refused from the header alone; sizes within the
// limits but beyond the memory budget are refused naming the file, the dims and the bytes.
TEST_F(IdxTest, HeaderSizesAreCheckedBeforeAllocating) {
  write_plain(dir / "claims", idx_header(0x08, {0x7FFFFFFFu}));
  EXPECT_TRUE(throws_safe_line([&] { nmsnn::read_idx(path("claims")); },
                               {"'" + path("claims") + "': IDX dimensions [2147483647] give "
                                "2147483647 samples, more than the 1073741824 nmsnn accepts"}));
  write_plain(dir / "wide", idx_header(0x08, {10, 4096, 4097}));
  EXPECT_TRUE(throws_safe_line([&] { nmsnn::read_idx(path("wide")); },
                               {"IDX dimensions [10, 4096, 4097] give 16781312 values per sample, "
                                "more than the 16777216 nmsnn accepts"}));
  {
    const MemoryLimit limit(1 << 20);
    write_plain(dir / "big", idx_header(0x08, {1000, 28, 28}));  // 784,000 bytes, 3.1 MB as floats
    EXPECT_TRUE(throws_safe_line(
        [&] { nmsnn::read_idx(path("big")); },
        {"'" + path("big") + "': IDX data [1000, 28, 28] (as bytes and as floats) needs 3.7 MiB, "
         "more than the memory limit of 1.0 MiB"}));
  }
  // Within the budget, a header that promises far more than the file holds is "truncated"; the
  // buffer grows with the data, so the promise itself costs no memory.
  const MemoryLimit limit(int64_t(1) << 40);
  Bytes promise = idx_header(0x08, {1u << 28});
  promise.insert(promise.end(), {1, 2, 3});
  write_plain(dir / "promise", promise);
  EXPECT_TRUE(throws_safe_line([&] { nmsnn::read_idx(path("promise")); },
                               {"truncated: expected 268435456 bytes of data, found 3"}));
}

// Paths and names that reach a message are quoted: one line, control bytes escaped.
TEST_F(IdxTest, PathsInMessagesAreQuoted) {
  const std::string odd = "odd\nname\x1b[31m";
  write_plain(dir / odd, Bytes{'h', 'i', '!', '\n'});
  EXPECT_TRUE(throws_safe_line([&] { nmsnn::read_idx(path(odd)); },
                               {"odd\\nname\\x1b[31m': not an IDX file"}));
  EXPECT_TRUE(throws_safe_line([&] { nmsnn::load_mnist(path(odd), true, nmsnn::PixelScale::unit); },
                               {"MNIST directory '", "odd\\nname\\x1b[31m' has no"}));
  nmsnn::Dataset d;
  d.name = "bad\nname";
  d.count = 1;
  d.features = 1;
  d.x = {NAN};
  d.labels = {0};
  d.classes = 2;
  EXPECT_TRUE(throws_safe_line([&] { d.validate(); }, {"dataset 'bad\\nname': sample 0"}));
  EXPECT_TRUE(throws_safe_line([] { nmsnn::parse_pixel_scale("\x1b[2J"); },
                               {"unknown pixel scale '\\x1b[2J'"}));
}

TEST_F(IdxTest, DataTruncatedByOneByte) {
  Bytes b = idx_file(kDims, iota_bytes(24));
  b.pop_back();
  write_plain(dir / "trunc", b);
  EXPECT_TRUE(throws_with([&] { nmsnn::read_idx(path("trunc")); },
                          {path("trunc"), "truncated: expected 24 bytes of data, found 23"}));
  write_gzip(dir / "trunc.gz", b);
  EXPECT_TRUE(throws_with([&] { nmsnn::read_idx(path("trunc.gz")); },
                          {"truncated: expected 24 bytes of data, found 23"}));
}

TEST_F(IdxTest, OneExtraTrailingByte) {
  Bytes b = idx_file(kDims, iota_bytes(24));
  b.push_back(7);
  write_plain(dir / "extra", b);
  EXPECT_TRUE(throws_with([&] { nmsnn::read_idx(path("extra")); },
                          {path("extra"), "1 trailing byte(s) after the 24 bytes of data"}));
  write_gzip(dir / "extra.gz", b);
  EXPECT_TRUE(throws_with([&] { nmsnn::read_idx(path("extra.gz")); }, {"1 trailing byte(s)"}));
}

TEST_F(IdxTest, CorruptGzip) {
  // A valid gzip member header (magic, deflate, no flags, mtime, xfl, os), then garbage. The first
  // deflate byte 0xFF asks for the reserved block type 3, so zlib fails deterministically.
  Bytes b = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03};
  b.resize(b.size() + 64, 0xFF);
  write_plain(dir / "corrupt.gz", b);
  EXPECT_TRUE(throws_with([&] { nmsnn::read_idx(path("corrupt.gz")); },
                          {path("corrupt.gz"), "corrupt gzip data", "invalid block type"}));
}

TEST_F(IdxTest, CutGzipStream) {
  // A gzip file cut in the middle of its compressed data: zlib reports the early end.
  write_gzip(dir / "whole.gz", idx_file({4000}, iota_bytes(4000)));
  Bytes raw = read_plain(dir / "whole.gz");
  ASSERT_GT(raw.size(), 40u);
  raw.resize(raw.size() / 2);
  write_plain(dir / "cut.gz", raw);
  EXPECT_TRUE(throws_with([&] { nmsnn::read_idx(path("cut.gz")); },
                          {path("cut.gz"), "corrupt gzip data", "unexpected end of file"}));
}

// ---- load_mnist on fixtures --------------------------------------------------------------------

TEST_F(MnistFixtureTest, UnitScale) {
  write_mnist(kPixels, 5, kLabels, 5);
  for (bool train : {true, false}) {
    const Dataset d = nmsnn::load_mnist(dir.string(), train, PixelScale::unit);
    EXPECT_EQ(d.name, train ? "mnist-train" : "mnist-test");
    EXPECT_EQ(d.count, 5);
    EXPECT_EQ(d.features, 6);
    EXPECT_EQ(d.shape, (std::vector<int>{1, 2, 3}));  // [channels, rows, cols]
    EXPECT_EQ(d.classes, 10);
    EXPECT_EQ(d.labels, (std::vector<int>{3, 1, 4, 1, 5}));
    EXPECT_TRUE(d.targets.empty());
    ASSERT_EQ(d.x.size(), kPixels.size());
    for (size_t i = 0; i < kPixels.size(); ++i) EXPECT_EQ(d.x[i], kPixels[i] / 255.0f) << i;
    EXPECT_EQ(d.x[0], 0.0f);  // background stays exactly 0
    EXPECT_EQ(d.x[1], 1.0f);
    EXPECT_NO_THROW(d.validate());
  }
}

TEST_F(MnistFixtureTest, CenteredScale) {
  write_mnist(kPixels, 5, kLabels, 5);
  const Dataset d = nmsnn::load_mnist(dir.string(), true, PixelScale::centered);
  ASSERT_EQ(d.x.size(), kPixels.size());
  for (size_t i = 0; i < kPixels.size(); ++i) EXPECT_EQ(d.x[i], kPixels[i] / 255.0f - 0.5f) << i;
  EXPECT_EQ(d.x[0], -0.5f);
  EXPECT_EQ(d.x[1], 0.5f);
}

TEST_F(MnistFixtureTest, Limit) {
  write_mnist(kPixels, 5, kLabels, 5);
  const Dataset d = nmsnn::load_mnist(dir.string(), true, PixelScale::unit, 3);
  EXPECT_EQ(d.count, 3);
  EXPECT_EQ(d.labels, (std::vector<int>{3, 1, 4}));
  ASSERT_EQ(d.x.size(), 18u);
  EXPECT_EQ(d.x[17], kPixels[17] / 255.0f);
  EXPECT_EQ(nmsnn::load_mnist(dir.string(), true, PixelScale::unit, 100).count, 5);
  EXPECT_EQ(nmsnn::load_mnist(dir.string(), true, PixelScale::unit, 0).count, 5);
  EXPECT_TRUE(throws_with([&] { nmsnn::load_mnist(dir.string(), true, PixelScale::unit, -1); },
                          {"limit", "-1"}));
}

TEST_F(MnistFixtureTest, MismatchedCounts) {
  write_mnist(kPixels, 5, {3, 1, 4, 1}, 4);
  EXPECT_TRUE(throws_with([&] { nmsnn::load_mnist(dir.string(), true, PixelScale::unit); },
                          {"train-images-idx3-ubyte.gz", "5 images", "train-labels-idx1-ubyte.gz",
                           "4 labels"}));
}

TEST_F(MnistFixtureTest, LabelOutOfRange) {
  write_mnist(kPixels, 5, {3, 1, 4, 10, 5}, 5);
  EXPECT_TRUE(throws_with([&] { nmsnn::load_mnist(dir.string(), false, PixelScale::unit); },
                          {"t10k-labels-idx1-ubyte", "label 10 at index 3"}));
}

TEST_F(MnistFixtureTest, MissingLabelFile) {
  write_mnist(kPixels, 5, kLabels, 5);
  fs::remove(dir / "train-labels-idx1-ubyte.gz");
  EXPECT_TRUE(throws_with([&] { nmsnn::load_mnist(dir.string(), true, PixelScale::unit); },
                          {dir.string(), "train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte"}));
  // The test split is still complete and loads.
  EXPECT_EQ(nmsnn::load_mnist(dir.string(), false, PixelScale::unit).count, 5);
}

TEST_F(MnistFixtureTest, MissingDirectory) {
  const std::string missing = path("nowhere");
  EXPECT_TRUE(throws_with([&] { nmsnn::load_mnist(missing, true, PixelScale::unit); },
                          {missing, "train-images-idx3-ubyte"}));
}

TEST_F(MnistFixtureTest, WrongRank) {
  write_mnist(kPixels, 5, kLabels, 5);
  write_gzip(dir / "train-images-idx3-ubyte.gz", idx_file({5, 6}, kPixels));
  EXPECT_TRUE(throws_with([&] { nmsnn::load_mnist(dir.string(), true, PixelScale::unit); },
                          {"train-images-idx3-ubyte.gz", "3-d", "[5, 6]"}));
}

// ---- load_mnist on the real data ---------------------------------------------------------------

namespace {
const std::string kMnistDir = std::string(NMSNN_SOURCE_DIR) + "/data/mnist";
}

TEST(MnistData, Train) {
  const Dataset d = nmsnn::load_mnist(kMnistDir, true, PixelScale::unit);
  EXPECT_EQ(d.name, "mnist-train");
  ASSERT_EQ(d.count, 60000);
  ASSERT_EQ(d.features, 784);
  ASSERT_EQ(d.labels.size(), 60000u);
  EXPECT_EQ(d.labels[0], 5);
  float lo = 1, hi = 0;
  for (float v : d.x) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  EXPECT_EQ(lo, 0.0f);
  EXPECT_EQ(hi, 1.0f);
  EXPECT_NO_THROW(d.validate());
}

TEST(MnistData, Test) {
  const Dataset d = nmsnn::load_mnist(kMnistDir, false, PixelScale::centered, 100);
  EXPECT_EQ(d.name, "mnist-test");
  EXPECT_EQ(d.count, 100);
  EXPECT_EQ(d.labels[0], 7);
  const Dataset all = nmsnn::load_mnist(kMnistDir, false, PixelScale::unit);
  ASSERT_EQ(all.count, 10000);
  EXPECT_EQ(all.features, 784);
  EXPECT_EQ(all.labels[0], 7);
  // Same pixels under both scales: centered is unit shifted by one half.
  for (size_t i = 0; i < d.x.size(); ++i) ASSERT_EQ(d.x[i], all.x[i] - 0.5f) << i;
}

// ---- Dataset -----------------------------------------------------------------------------------

namespace {
// 4 samples of 3 features, labels in [0, 3).
Dataset small_dataset() {
  Dataset d;
  d.name = "small";
  d.count = 4;
  d.features = 3;
  for (int i = 0; i < 12; ++i) d.x.push_back(float(i));
  d.labels = {0, 2, 1, 2};
  d.classes = 3;
  return d;
}
}  // namespace

TEST(DatasetValidate, AcceptsGoodDatasets) {
  EXPECT_NO_THROW(small_dataset().validate());
  Dataset r = small_dataset();
  r.labels.clear();
  r.classes = 0;
  r.target_size = 2;
  r.targets.assign(8, 0.5f);
  EXPECT_NO_THROW(r.validate());
  EXPECT_NO_THROW(Dataset{}.validate());  // empty is fine
}

TEST(DatasetValidate, ImageShapesHoldTheirFeatures) {
  Dataset d = small_dataset();
  d.shape = {3, 1, 1};
  EXPECT_NO_THROW(d.validate());
  // Slices and subsets keep it.
  EXPECT_EQ(d.slice(1, 2).shape, d.shape);
  EXPECT_EQ(nmsnn::subset(d, {3, 0}).shape, d.shape);
  d.shape = {1, 2, 2};
  EXPECT_TRUE(throws_with([&] { d.validate(); }, {"'small'", "shape [1, 2, 2]", "its 3 features"}));
  d.shape = {3, 1};
  EXPECT_TRUE(throws_with([&] { d.validate(); }, {"shape [3, 1]", "[channels, height, width]"}));
}

TEST(DatasetValidate, NonFiniteFeature) {
  Dataset d = small_dataset();
  d.x[1 * 3 + 2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(throws_with([&] { d.validate(); }, {"'small'", "sample 1 feature 2", "not finite"}));
  d.x[5] = 0;
  d.x[9] = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(throws_with([&] { d.validate(); }, {"sample 3 feature 0"}));
}

TEST(DatasetValidate, LabelOutOfRange) {
  Dataset d = small_dataset();
  d.labels[2] = 3;
  EXPECT_TRUE(throws_with([&] { d.validate(); }, {"sample 2 has label 3", "[0, 3)"}));
  d.labels[2] = -1;
  EXPECT_TRUE(throws_with([&] { d.validate(); }, {"sample 2 has label -1"}));
}

TEST(DatasetValidate, SizeMismatch) {
  Dataset d = small_dataset();
  d.x.pop_back();
  EXPECT_TRUE(throws_with([&] { d.validate(); }, {"x has 11 values", "4 * 3 = 12"}));
  d = small_dataset();
  d.labels.pop_back();
  EXPECT_TRUE(throws_with([&] { d.validate(); }, {"3 labels for 4 samples"}));
  d = small_dataset();
  d.target_size = 2;
  d.targets.assign(7, 0.0f);
  EXPECT_TRUE(throws_with([&] { d.validate(); }, {"targets has 7 values", "4 * 2 = 8"}));
  d = small_dataset();
  d.features = 0;
  d.x.clear();
  EXPECT_TRUE(throws_with([&] { d.validate(); }, {"features must be > 0"}));
  d = small_dataset();
  d.count = -1;
  EXPECT_TRUE(throws_with([&] { d.validate(); }, {"count must be >= 0, got -1"}));
}

TEST(DatasetValidate, NeedsLabelsOrTargets) {
  Dataset d = small_dataset();
  d.labels.clear();
  EXPECT_TRUE(throws_with([&] { d.validate(); }, {"neither labels nor targets"}));
  d.target_size = 1;
  d.targets = {0, 1, std::numeric_limits<float>::quiet_NaN(), 3};
  EXPECT_TRUE(throws_with([&] { d.validate(); }, {"sample 2 target 0", "not finite"}));
}

TEST(DatasetSlice, CopiesRows) {
  const Dataset d = small_dataset();
  const Dataset s = d.slice(1, 2);
  EXPECT_EQ(s.name, "small");
  EXPECT_EQ(s.count, 2);
  EXPECT_EQ(s.features, 3);
  EXPECT_EQ(s.classes, 3);
  EXPECT_EQ(s.x, (std::vector<float>{3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(s.labels, (std::vector<int>{2, 1}));
  EXPECT_NO_THROW(s.validate());
  EXPECT_EQ(d.slice(4, 0).count, 0);
  EXPECT_EQ(d.slice(0, 4).x, d.x);

  Dataset r = small_dataset();
  r.labels.clear();
  r.target_size = 2;
  r.targets = {0, 1, 2, 3, 4, 5, 6, 7};
  const Dataset rs = r.slice(3, 1);
  EXPECT_EQ(rs.target_size, 2);
  EXPECT_EQ(rs.targets, (std::vector<float>{6, 7}));
  EXPECT_TRUE(rs.labels.empty());
}

TEST(DatasetSlice, Bounds) {
  const Dataset d = small_dataset();
  EXPECT_TRUE(throws_with([&] { d.slice(-1, 2); }, {"'small'", "slice [-1, 1)", "[0, 4)"}));
  EXPECT_TRUE(throws_with([&] { d.slice(3, 2); }, {"slice [3, 5)"}));
  EXPECT_TRUE(throws_with([&] { d.slice(0, -1); }, {"slice [0, -1)"}));
  EXPECT_TRUE(throws_with([&] { d.slice(2, std::numeric_limits<int>::max()); }, {"outside"}));
}

TEST(PixelScaleNames, RoundTrip) {
  EXPECT_EQ(nmsnn::parse_pixel_scale("unit"), PixelScale::unit);
  EXPECT_EQ(nmsnn::parse_pixel_scale("centered"), PixelScale::centered);
  EXPECT_STREQ(nmsnn::to_string(PixelScale::unit), "unit");
  EXPECT_STREQ(nmsnn::to_string(PixelScale::centered), "centered");
  EXPECT_TRUE(throws_with([] { nmsnn::parse_pixel_scale("centred"); },
                          {"'centred'", "unit", "centered"}));
}
