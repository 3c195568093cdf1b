// io/preprocess.cpp — seeded splits, subsets, and the feature and target scalers.
//
// The shuffle is our own Fisher-Yates over a splitmix64 stream (std::shuffle's algorithm differs
// between standard libraries), so a seed names the same split everywhere.
#include "nmsnn/preprocess.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <string>

#include "core/random_stream.hpp"
#include "nmsnn/error.hpp"

namespace nmsnn {

using detail::fail;

namespace {

std::string describe(const Dataset& d) {
  return d.name.empty() ? std::string("dataset") : "dataset " + detail::quote(d.name);
}

struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, k). Draws below 2^64 mod k are redrawn so every value is equally likely.
  uint64_t below(uint64_t k) {
    const uint64_t reject = (0 - k) % k;
    for (;;) {
      const uint64_t r = next();
      if (r >= reject) return r % k;
    }
  }
};

// Splits `total` into integer shares near `quota` (which sum to total) with share[c] <= cap[c]:
// floors first, then one more each by largest fractional part. False when the caps are too small.
bool allocate(int total, const std::vector<double>& quota, const std::vector<int>& cap,
              std::vector<int>& share) {
  const size_t k = quota.size();
  share.assign(k, 0);
  int left = total;
  for (size_t c = 0; c < k; ++c) {
    share[c] = std::min(int(std::floor(quota[c])), cap[c]);
    left -= share[c];
  }
  std::vector<size_t> order(k);
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return quota[a] - std::floor(quota[a]) > quota[b] - std::floor(quota[b]);
  });
  while (left > 0) {
    bool placed = false;
    for (size_t c : order) {
      if (left > 0 && share[c] < cap[c]) {
        ++share[c];
        --left;
        placed = true;
      }
    }
    if (!placed) return false;
  }
  return true;
}

void fit_columns(const std::vector<float>& v, int rows, int width, std::vector<float>& mean,
                 std::vector<float>& scale) {
  mean.assign(width, 0.0f);
  scale.assign(width, 1.0f);
  for (int j = 0; j < width; ++j) {
    // Two passes in double. The mean of equal floats comes out exactly equal to them, so a
    // constant column has variance exactly 0 and ends up exactly 0 after the transform.
    double sum = 0;
    for (int i = 0; i < rows; ++i) sum += v[size_t(i) * width + j];
    const double m = sum / rows;
    double ss = 0;
    for (int i = 0; i < rows; ++i) {
      const double e = v[size_t(i) * width + j] - m;
      ss += e * e;
    }
    mean[j] = float(m);
    const float s = float(std::sqrt(ss / rows));
    scale[j] = s >= std::numeric_limits<float>::min() ? s : 1.0f;  // constant: do not divide by 0
  }
}

void apply_columns(std::vector<float>& v, const std::vector<float>& mean,
                   const std::vector<float>& scale, bool inverse) {
  const size_t width = mean.size();
  for (size_t i = 0; i < v.size(); ++i) {
    const size_t j = i % width;
    v[i] = inverse ? v[i] * scale[j] + mean[j] : (v[i] - mean[j]) / scale[j];
  }
}

void check_fitted(const std::vector<float>& mean, const char* who) {
  if (mean.empty()) fail(who, ": not fitted; call fit on the training split first");
}

void check_features(const Standardizer& s, const Dataset& d, const char* who) {
  check_fitted(s.mean, who);
  if (size_t(d.features) != s.mean.size()) {
    fail(who, ": fitted on ", s.mean.size(), " features, ", describe(d), " has ", d.features);
  }
  if (d.x.size() != size_t(d.count) * d.features) {
    fail(who, ": ", describe(d), " has ", d.x.size(), " feature values, expected ", d.count, " * ",
         d.features);
  }
}

void check_targets(const TargetScaler& s, const Dataset& d, const char* who) {
  check_fitted(s.mean, who);
  if (size_t(d.target_size) != s.mean.size()) {
    fail(who, ": fitted on ", s.mean.size(), " targets per sample, ", describe(d), " has ",
         d.target_size);
  }
  if (d.targets.size() != size_t(d.count) * d.target_size) {
    fail(who, ": ", describe(d), " has ", d.targets.size(), " target values, expected ", d.count,
         " * ", d.target_size);
  }
}

void check_values(const TargetScaler& s, const std::vector<float>& v, const char* who) {
  check_fitted(s.mean, who);
  if (v.size() % s.mean.size() != 0) {
    fail(who, ": ", v.size(), " values is not a multiple of the ", s.mean.size(),
         " targets per sample");
  }
}

}  // namespace

Split split_indices(int n, double test_fraction, double validation_fraction, uint64_t seed,
                    const std::vector<int>* stratify_labels) {
  if (n < 1) fail("split: need at least 1 sample, got ", n);
  for (auto [name, f] : {std::pair<const char*, double>{"test", test_fraction},
                         {"validation", validation_fraction}}) {
    if (!(f >= 0.0 && f < 1.0)) fail("split: ", name, " fraction must be in [0, 1), got ", f);
  }
  if (!(test_fraction + validation_fraction < 1.0)) {
    fail("split: test fraction ", test_fraction, " + validation fraction ", validation_fraction,
         " must be < 1 to leave samples for training");
  }
  auto wanted = [n](double f) { return f > 0 ? std::max(1, int(std::lround(f * n))) : 0; };
  int n_test = wanted(test_fraction), n_val = wanted(validation_fraction);
  const int needed = 1 + (n_test > 0) + (n_val > 0);
  if (n < needed) {
    fail("split: ", n, " samples cannot fill train", n_val ? ", validation" : "",
         n_test ? " and test" : "", " with at least one sample each");
  }
  while (n_test + n_val > n - 1) {  // rounding up can eat the last training sample
    if (n_test >= n_val && n_test > 1) {
      --n_test;
    } else if (n_val > 1) {
      --n_val;
    } else {
      --n_test;
    }
  }

  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  SplitMix64 rng{detail::stream_key(seed, 0x73706c6974ull /* "split" */)};
  for (int i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(uint64_t(i) + 1)]);

  Split s;
  if (!stratify_labels) {
    s.test.assign(order.begin(), order.begin() + n_test);
    s.validation.assign(order.begin() + n_test, order.begin() + n_test + n_val);
    s.train.assign(order.begin() + n_test + n_val, order.end());
  } else {
    const std::vector<int>& labels = *stratify_labels;
    if (labels.size() != size_t(n)) {
      fail("split: ", labels.size(), " stratification labels for ", n, " samples");
    }
    std::map<int, std::vector<int>> groups;  // label -> its samples in shuffled order
    for (int i : order) groups[labels[i]].push_back(i);
    std::vector<double> quota;
    std::vector<int> cap, test_share, val_share;
    for (const auto& [label, members] : groups) {
      quota.push_back(double(n_test) * members.size() / n);
      cap.push_back(int(members.size()) - 1);  // one of each class stays in train
    }
    bool ok = allocate(n_test, quota, cap, test_share);
    if (ok) {
      size_t c = 0;
      for (const auto& [label, members] : groups) {
        quota[c] = double(n_val) * members.size() / n;
        cap[c] = int(members.size()) - 1 - test_share[c];
        ++c;
      }
      ok = allocate(n_val, quota, cap, val_share);
    }
    if (!ok) {
      fail("split: cannot stratify ", n, " samples of ", groups.size(), " labels into ", n_test,
           " test and ", n_val, " validation samples while keeping every label in training");
    }
    size_t c = 0;
    for (const auto& [label, members] : groups) {
      const auto first = members.begin();
      s.test.insert(s.test.end(), first, first + test_share[c]);
      s.validation.insert(s.validation.end(), first + test_share[c],
                          first + test_share[c] + val_share[c]);
      s.train.insert(s.train.end(), first + test_share[c] + val_share[c], members.end());
      ++c;
    }
  }
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.validation.begin(), s.validation.end());
  std::sort(s.test.begin(), s.test.end());
  return s;
}

Dataset subset(const Dataset& d, const std::vector<int>& indices) {
  if (d.x.size() != size_t(d.count) * d.features) {
    fail("subset: ", describe(d), " has ", d.x.size(), " feature values, expected ", d.count, " * ",
         d.features);
  }
  if (!d.labels.empty() && d.labels.size() != size_t(d.count)) {
    fail("subset: ", describe(d), " has ", d.labels.size(), " labels for ", d.count, " samples");
  }
  if (!d.targets.empty() && d.targets.size() != size_t(d.count) * d.target_size) {
    fail("subset: ", describe(d), " has ", d.targets.size(), " target values, expected ", d.count,
         " * ", d.target_size);
  }
  Dataset out;
  out.name = d.name;
  out.count = int(indices.size());
  out.features = d.features;
  out.shape = d.shape;
  out.classes = d.classes;
  out.target_size = d.target_size;
  out.feature_names = d.feature_names;
  out.class_names = d.class_names;
  out.target_names = d.target_names;
  const size_t f = size_t(d.features), t = size_t(d.target_size);
  const bool labels = !d.labels.empty(), targets = !d.targets.empty();
  out.x.reserve(indices.size() * f);
  for (size_t k = 0; k < indices.size(); ++k) {
    const int i = indices[k];
    if (i < 0 || i >= d.count) {
      fail("subset of ", describe(d), ": index ", i, " at position ", k, " is outside [0, ",
           d.count, ")");
    }
    out.x.insert(out.x.end(), d.x.begin() + i * f, d.x.begin() + (i + 1) * f);
    if (labels) out.labels.push_back(d.labels[i]);
    if (targets) out.targets.insert(out.targets.end(), d.targets.begin() + i * t,
                                    d.targets.begin() + (i + 1) * t);
  }
  return out;
}

void Standardizer::fit(const Dataset& train) {
  if (train.count < 1 || train.features < 1) {
    fail("Standardizer::fit: ", describe(train), " has ", train.count, " samples of ",
         train.features, " features; need at least one of each");
  }
  if (train.x.size() != size_t(train.count) * train.features) {
    fail("Standardizer::fit: ", describe(train), " has ", train.x.size(),
         " feature values, expected ", train.count, " * ", train.features);
  }
  fit_columns(train.x, train.count, train.features, mean, scale);
}

void Standardizer::transform(Dataset& d) const {
  check_features(*this, d, "Standardizer::transform");
  apply_columns(d.x, mean, scale, false);
}

void Standardizer::inverse_transform(Dataset& d) const {
  check_features(*this, d, "Standardizer::inverse_transform");
  apply_columns(d.x, mean, scale, true);
}

void TargetScaler::fit(const Dataset& train) {
  if (train.count < 1 || train.target_size < 1 || train.targets.empty()) {
    fail("TargetScaler::fit: ", describe(train), " has no regression targets to fit");
  }
  if (train.targets.size() != size_t(train.count) * train.target_size) {
    fail("TargetScaler::fit: ", describe(train), " has ", train.targets.size(),
         " target values, expected ", train.count, " * ", train.target_size);
  }
  fit_columns(train.targets, train.count, train.target_size, mean, scale);
}

void TargetScaler::transform(Dataset& d) const {
  check_targets(*this, d, "TargetScaler::transform");
  apply_columns(d.targets, mean, scale, false);
}

void TargetScaler::inverse_transform(Dataset& d) const {
  check_targets(*this, d, "TargetScaler::inverse_transform");
  apply_columns(d.targets, mean, scale, true);
}

void TargetScaler::transform(std::vector<float>& values) const {
  check_values(*this, values, "TargetScaler::transform");
  apply_columns(values, mean, scale, false);
}

void TargetScaler::inverse_transform(std::vector<float>& values) const {
  check_values(*this, values, "TargetScaler::inverse_transform");
  apply_columns(values, mean, scale, true);
}

}  // namespace nmsnn
