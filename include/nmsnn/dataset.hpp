// nmsnn/dataset.hpp — in-memory datasets and the MNIST loader.
//
// A Dataset is a dense feature matrix x[count, features] with either class labels (classification)
// or real targets (regression). Loaders validate what they read and throw nmsnn::Error naming the
// file and the problem.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nmsnn {

struct Dataset {
  std::string name;
  int count = 0;            // N samples
  int features = 0;         // F features per sample
  // [C, H, W] when each sample is an image stored flat in (c, y, x) order (IDX files give
  // [1, rows, cols]); empty for tables. What a model file without "input_shape" takes for its
  // convolutions (spec_json.hpp).
  std::vector<int> shape;
  std::vector<float> x;     // [N, F], row-major
  std::vector<int> labels;  // [N] class ids in [0, classes), for classification
  int classes = 0;          // number of classes (0 for regression)
  std::vector<float> targets;  // [N * target_size] real targets, for regression
  int target_size = 0;

  // Optional names, kept so models and reports can speak the data's language.
  std::vector<std::string> feature_names;  // [features], e.g. CSV column headers
  std::vector<std::string> class_names;    // [classes], e.g. "Iris-setosa"; empty = "0", "1", ...
  std::vector<std::string> target_names;   // [target_size], regression target columns

  // Checks sizes (and that `shape`, when given, holds `features` values), labels in range and
  // finite features; throws nmsnn::Error naming the problem.
  void validate() const;

  // Samples [first, first + n) as a new dataset.
  Dataset slice(int first, int n) const;

  // A 64-bit FNV-1a digest of the samples (features, labels, targets, as 32-bit words): equal data
  // gives equal digests on every machine. What checkpoints and data-parallel ranks compare. The
  // shape is not in it: a network that reads it records it in its description (input_shape),
  // which checkpoints compare too.
  uint64_t digest() const;
};

// How MNIST pixels (0..255) become features.
enum class PixelScale {
  unit,      // x / 255, in [0, 1]: background pixels are exactly 0, so the noise mask keeps them 0
  centered,  // x / 255 - 0.5: what the seed's MNIST example feeds its network
};

// Loads the MNIST-format dataset in `dir`: "train-images-idx3-ubyte(.gz)" and
// "train-labels-idx1-ubyte(.gz)" when `train`, else the "t10k-" pair. Images are flattened to
// rows*cols features, and `shape` is [1, rows, cols]. `limit` > 0 keeps only the first `limit` samples. Throws nmsnn::Error on
// missing, truncated or mismatched files (naming them).
Dataset load_mnist(const std::string& dir, bool train, PixelScale scale, int limit = 0);

PixelScale parse_pixel_scale(const std::string& name);  // "unit" or "centered"
const char* to_string(PixelScale scale);

}  // namespace nmsnn
