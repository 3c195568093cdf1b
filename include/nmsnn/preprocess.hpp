// nmsnn/preprocess.hpp — train/validation/test splits and feature and target scaling.
//
// Splits are seeded and the same on every platform. Scalers learn their statistics only from the
// data passed to fit(): callers fit on the training split alone and then transform the validation
// and test splits with those same numbers, so nothing about held-out rows leaks into training.
#pragma once

#include <cstdint>
#include <vector>

#include "nmsnn/dataset.hpp"

namespace nmsnn {

// Sample indices of each split, each in ascending order; together a partition of [0, n).
struct Split {
  std::vector<int> train, validation, test;
};

// Shuffles [0, n) with a seeded Fisher-Yates and cuts it into test (round(test_fraction * n)),
// validation (round(validation_fraction * n)) and train (the rest). Fractions are in [0, 1) and sum
// to less than 1; a split whose fraction is > 0 gets at least one sample, and train always does
// (too few samples for that is an error). With `stratify_labels` ([n], e.g. Dataset::labels) each
// label is spread over the splits in proportion to its count, keeping one of each in train.
Split split_indices(int n, double test_fraction, double validation_fraction, uint64_t seed,
                    const std::vector<int>* stratify_labels = nullptr);

// The samples at `indices` (any order, repeats allowed) as a new dataset with the same names.
Dataset subset(const Dataset& d, const std::vector<int>& indices);

// Per-feature standardisation x' = (x - mean) / scale, scale = population standard deviation.
// A constant feature gets scale 1 (and becomes exactly 0), so nothing divides by zero.
struct Standardizer {
  std::vector<float> mean, scale;  // [features]

  void fit(const Dataset& train);                  // statistics of train.x only
  void transform(Dataset& d) const;                // d.x in place
  void inverse_transform(Dataset& d) const;        // undoes transform
  bool fitted() const { return !mean.empty(); }
};

// The same for regression targets: fit on the training targets, train on scaled targets, and map
// the network's predictions back with inverse_transform.
struct TargetScaler {
  std::vector<float> mean, scale;  // [target_size]

  void fit(const Dataset& train);                  // statistics of train.targets only
  void transform(Dataset& d) const;                // d.targets in place
  void inverse_transform(Dataset& d) const;
  // Values laid out [N, target_size], e.g. predictions; size must be a multiple of target_size.
  void transform(std::vector<float>& values) const;
  void inverse_transform(std::vector<float>& values) const;
  bool fitted() const { return !mean.empty(); }
};

}  // namespace nmsnn
