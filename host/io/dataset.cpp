// io/dataset.cpp — Dataset checks and slicing, and the MNIST loader.
//
// Datasets are validated once, at the edge, so the engines can trust sizes and values; every
// message names the dataset or file and the first offending sample.
#include "nmsnn/dataset.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>

#include "nmsnn/error.hpp"
#include "nmsnn/idx.hpp"

namespace nmsnn {

using detail::fail;

namespace {

std::string describe(const Dataset& d) {
  return d.name.empty() ? std::string("dataset") : "dataset " + detail::quote(d.name);
}

std::string dims_string(const std::vector<int>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// MNIST is distributed gzipped but often unpacked by hand; accept either spelling.
std::string find_mnist_file(const std::string& dir, const std::string& base) {
  namespace fs = std::filesystem;
  for (const std::string& name : {base + ".gz", base}) {
    const fs::path p = fs::path(dir) / name;
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  fail("MNIST directory ", detail::quote(dir), " has no ", base, ".gz or ", base);
}

}  // namespace

void Dataset::validate() const {
  const std::string what = describe(*this);
  if (count < 0) fail(what, ": count must be >= 0, got ", count);
  if (features < 0 || (count > 0 && features == 0)) {
    fail(what, ": features must be > 0, got ", features);
  }
  if (!shape.empty()) {
    int64_t n = 1;
    for (int d : shape) n *= d;
    if (shape.size() != 3 || n != features)
      fail(what, ": shape ", dims_string(shape), " does not hold its ", features,
           " features (expected [channels, height, width])");
  }
  const size_t n = size_t(count), f = size_t(features);
  if (x.size() != n * f) {
    fail(what, ": x has ", x.size(), " values, expected count * features = ", count, " * ",
         features, " = ", n * f);
  }
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) {
      fail(what, ": sample ", i / f, " feature ", i % f, " is not finite (", x[i], ")");
    }
  }
  if (classes < 0) fail(what, ": classes must be >= 0, got ", classes);
  if (!labels.empty()) {
    if (labels.size() != n) fail(what, ": ", labels.size(), " labels for ", count, " samples");
    if (classes == 0) fail(what, ": has labels but classes is 0");
    for (size_t i = 0; i < n; ++i) {
      if (labels[i] < 0 || labels[i] >= classes) {
        fail(what, ": sample ", i, " has label ", labels[i], ", outside [0, ", classes, ")");
      }
    }
  }
  if (target_size < 0) fail(what, ": target_size must be >= 0, got ", target_size);
  if (!targets.empty()) {
    if (target_size == 0) fail(what, ": has targets but target_size is 0");
    const size_t t = size_t(target_size);
    if (targets.size() != n * t) {
      fail(what, ": targets has ", targets.size(), " values, expected count * target_size = ",
           count, " * ", target_size, " = ", n * t);
    }
    for (size_t i = 0; i < targets.size(); ++i) {
      if (!std::isfinite(targets[i])) {
        fail(what, ": sample ", i / t, " target ", i % t, " is not finite (", targets[i], ")");
      }
    }
  }
  if (count > 0 && labels.empty() && targets.empty()) {
    fail(what, ": has ", count, " samples but neither labels nor targets");
  }
}

uint64_t Dataset::digest() const {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint32_t word) { h = (h ^ word) * 1099511628211ull; };
  for (float v : x) {
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    mix(bits);
  }
  for (int v : labels) mix(uint32_t(v));
  for (float v : targets) {
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    mix(bits);
  }
  return h;
}

Dataset Dataset::slice(int first, int n) const {
  // int64 so that first + n cannot overflow before the comparison.
  if (first < 0 || n < 0 || int64_t(first) + n > count) {
    fail(describe(*this), ": slice [", first, ", ", int64_t(first) + n, ") is outside [0, ",
         count, ")");
  }
  Dataset out;
  out.name = name;
  out.count = n;
  out.features = features;
  out.shape = shape;
  out.classes = classes;
  out.target_size = target_size;
  out.feature_names = feature_names;
  out.class_names = class_names;
  out.target_names = target_names;
  const size_t f = size_t(features);
  out.x.assign(x.begin() + first * f, x.begin() + (first + size_t(n)) * f);
  if (!labels.empty()) out.labels.assign(labels.begin() + first, labels.begin() + first + n);
  if (!targets.empty()) {
    const size_t t = size_t(target_size);
    out.targets.assign(targets.begin() + first * t, targets.begin() + (first + size_t(n)) * t);
  }
  return out;
}

Dataset load_mnist(const std::string& dir, bool train, PixelScale scale, int limit) {
  if (limit < 0) fail("MNIST sample limit must be >= 0 (0 keeps all samples), got ", limit);
  const std::string prefix = train ? "train" : "t10k";
  const std::string images_path = find_mnist_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_mnist_file(dir, prefix + "-labels-idx1-ubyte");

  const IdxArray images = read_idx(images_path);
  if (images.dims.size() != 3) {
    fail(detail::quote(images_path), ": MNIST images must be 3-d [count, rows, cols], got ",
         dims_string(images.dims));
  }
  const IdxArray labels = read_idx(labels_path);
  if (labels.dims.size() != 1) {
    fail(detail::quote(labels_path), ": MNIST labels must be 1-d [count], got ",
         dims_string(labels.dims));
  }
  const int total = images.dims[0];
  if (labels.dims[0] != total) {
    fail("MNIST files disagree: ", detail::quote(images_path), " has ", total, " images but ",
         detail::quote(labels_path), " has ", labels.dims[0], " labels");
  }
  for (int i = 0; i < total; ++i) {
    if (labels.data[i] >= 10) {
      fail(detail::quote(labels_path), ": label ", int(labels.data[i]), " at index ", i,
           " is not a digit 0-9");
    }
  }

  Dataset d;
  d.name = train ? "mnist-train" : "mnist-test";
  d.count = limit > 0 && limit < total ? limit : total;
  d.features = images.dims[1] * images.dims[2];
  d.shape = {1, images.dims[1], images.dims[2]};
  d.classes = 10;
  d.labels.assign(labels.data.begin(), labels.data.begin() + d.count);

  // One table lookup per pixel; the values are exactly those of the formula in PixelScale.
  float table[256];
  for (int v = 0; v < 256; ++v) {
    table[v] = scale == PixelScale::centered ? v / 255.0f - 0.5f : v / 255.0f;
  }
  d.x.resize(size_t(d.count) * d.features);
  for (size_t i = 0; i < d.x.size(); ++i) d.x[i] = table[images.data[i]];
  return d;
}

PixelScale parse_pixel_scale(const std::string& name) {
  if (name == "unit") return PixelScale::unit;
  if (name == "centered") return PixelScale::centered;
  fail("unknown pixel scale ", detail::quote(name), "; valid names are: unit, centered");
}

const char* to_string(PixelScale scale) {
  switch (scale) {
    case PixelScale::unit: return "unit";
    case PixelScale::centered: return "centered";
  }
  return "unknown";
}

}  // namespace nmsnn
