// tests/test_preprocess.cpp — seeded splits, subsets and the feature and target scalers.
//
// Splits are checked for sizes, disjointness, reproducibility and class proportions; the scalers
// on data built so that fitting on anything but the training rows would visibly move the mean.
#include <gtest/gtest.h>

#include "throws_with.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "nmsnn/dataset.hpp"
#include "nmsnn/error.hpp"
#include "nmsnn/preprocess.hpp"

using nmsnn::Dataset;
using nmsnn::Split;
using Ints = std::vector<int>;
using Floats = std::vector<float>;

namespace {

// The three splits together, sorted: a partition of [0, n) gives exactly 0..n-1.
Ints all_of(const Split& s) {
  Ints v = s.train;
  v.insert(v.end(), s.validation.begin(), s.validation.end());
  v.insert(v.end(), s.test.begin(), s.test.end());
  std::sort(v.begin(), v.end());
  return v;
}

Ints iota(int n) {
  Ints v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  return v;
}

int count_label(const Ints& indices, const Ints& labels, int label) {
  return int(std::count_if(indices.begin(), indices.end(),
                           [&](int i) { return labels[i] == label; }));
}

// Column j of d.x as doubles.
std::vector<double> column(const Dataset& d, int j) {
  std::vector<double> c;
  for (int i = 0; i < d.count; ++i) c.push_back(d.x[size_t(i) * d.features + j]);
  return c;
}
double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / v.size();
}
double pop_std_of(const std::vector<double>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / v.size());
}

// Six samples of two features: rows 0-3 are "train" with feature 0 = 1, 2, 3, 4 (mean 2.5,
// population std sqrt(1.25)); rows 4-5 are "test" with 100 and 200, so a fit that saw them would
// have mean 310 / 6 = 51.67. Feature 1 is 7 in training and 9 in the test rows.
Dataset leaky_fixture() {
  Dataset d;
  d.name = "leak";
  d.count = 6;
  d.features = 2;
  d.x = {1, 7, 2, 7, 3, 7, 4, 7, 100, 9, 200, 9};
  d.labels = {0, 1, 0, 1, 0, 1};
  d.classes = 2;
  d.feature_names = {"f", "constant"};
  return d;
}

}  // namespace

// ---- split_indices -----------------------------------------------------------------------------

TEST(Split, SizesAndDisjointness) {
  const Split s = nmsnn::split_indices(100, 0.2, 0.1, 7);
  EXPECT_EQ(s.test.size(), 20u);
  EXPECT_EQ(s.validation.size(), 10u);
  EXPECT_EQ(s.train.size(), 70u);
  EXPECT_EQ(all_of(s), iota(100));  // every index once: disjoint and complete
  EXPECT_TRUE(std::is_sorted(s.train.begin(), s.train.end()));
  EXPECT_TRUE(std::is_sorted(s.test.begin(), s.test.end()));
  // A shuffle, not a cut: the test rows are not simply the first or the last 20.
  EXPECT_NE(s.test, iota(20));
  EXPECT_NE(s.test.front(), 80);

  // No validation requested: none given. round(0.25 * 10) = 3 (halves round away from zero).
  const Split t = nmsnn::split_indices(10, 0.25, 0.0, 7);
  EXPECT_EQ(t.test.size(), 3u);
  EXPECT_TRUE(t.validation.empty());
  EXPECT_EQ(t.train.size(), 7u);
}

TEST(Split, SameSeedSameSplitOtherSeedOther) {
  const Split a = nmsnn::split_indices(50, 0.2, 0.2, 1234);
  const Split b = nmsnn::split_indices(50, 0.2, 0.2, 1234);
  const Split c = nmsnn::split_indices(50, 0.2, 0.2, 1235);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.validation, b.validation);
  EXPECT_EQ(a.test, b.test);
  EXPECT_NE(a.test, c.test);
  EXPECT_NE(a.validation, c.validation);
}

TEST(Split, FixedAcrossPlatforms) {
  // The exact split of seed 43: the shuffle is our own splitmix64 Fisher-Yates, so this must hold
  // on every compiler and standard library. A change here silently changes users' experiments.
  const Split s = nmsnn::split_indices(10, 0.2, 0.2, 43);
  EXPECT_EQ(s.test, (Ints{5, 9}));
  EXPECT_EQ(s.validation, (Ints{2, 3}));
  EXPECT_EQ(s.train, (Ints{0, 1, 4, 6, 7, 8}));
}

TEST(Split, EverySampleEquallyLikelyInTest) {
  // Over 2000 seeds each of 10 samples lands in a 2-sample test set with probability 1/5: expect
  // 400 each, standard deviation sqrt(2000 * 0.2 * 0.8) = 17.9; 320..480 is over 4 sigma.
  Ints hits(10, 0);
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    for (int i : nmsnn::split_indices(10, 0.2, 0.0, seed).test) ++hits[i];
  }
  for (int i = 0; i < 10; ++i) {
    EXPECT_GT(hits[i], 320) << "sample " << i;
    EXPECT_LT(hits[i], 480) << "sample " << i;
  }
}

TEST(Split, SmallDatasetsStillFillEverySplit) {
  // 3 samples, 20% each: rounding gives 1 and 1 and the rest (1) trains.
  const Split s = nmsnn::split_indices(3, 0.2, 0.2, 5);
  EXPECT_EQ(s.test.size(), 1u);
  EXPECT_EQ(s.validation.size(), 1u);
  EXPECT_EQ(s.train.size(), 1u);
  // round(0.5 * 3) = 2 and round(0.4 * 3) = 1 would leave no training sample; test gives one back.
  const Split t = nmsnn::split_indices(3, 0.5, 0.4, 5);
  EXPECT_EQ(t.test.size(), 1u);
  EXPECT_EQ(t.validation.size(), 1u);
  EXPECT_EQ(t.train.size(), 1u);
  EXPECT_TRUE(throws_with([] { nmsnn::split_indices(2, 0.2, 0.2, 5); },
                          {"2 samples cannot fill train, validation and test"}));
}

TEST(Split, BadFractions) {
  EXPECT_TRUE(throws_with([] { nmsnn::split_indices(10, -0.1, 0.1, 1); },
                          {"test fraction must be in [0, 1), got -0.1"}));
  EXPECT_TRUE(throws_with([] { nmsnn::split_indices(10, 0.1, 1.0, 1); },
                          {"validation fraction must be in [0, 1), got 1"}));
  EXPECT_TRUE(throws_with([] { nmsnn::split_indices(10, std::nan(""), 0.1, 1); },
                          {"test fraction must be in [0, 1)"}));
  EXPECT_TRUE(throws_with([] { nmsnn::split_indices(10, 0.5, 0.5, 1); },
                          {"test fraction 0.5 + validation fraction 0.5 must be < 1"}));
  EXPECT_TRUE(throws_with([] { nmsnn::split_indices(0, 0.1, 0.1, 1); },
                          {"need at least 1 sample, got 0"}));
}

TEST(Split, StratifiedKeepsClassProportions) {
  // 60 / 30 / 10 samples of classes 0 / 1 / 2, interleaved; 20% test and 10% validation are
  // exactly 12 / 6 / 2 and 6 / 3 / 1 per class.
  Ints labels;
  for (int i = 0; i < 100; ++i) labels.push_back(i % 10 < 6 ? 0 : i % 10 < 9 ? 1 : 2);
  const Split s = nmsnn::split_indices(100, 0.2, 0.1, 99, &labels);
  EXPECT_EQ(all_of(s), iota(100));
  EXPECT_EQ(count_label(s.test, labels, 0), 12);
  EXPECT_EQ(count_label(s.test, labels, 1), 6);
  EXPECT_EQ(count_label(s.test, labels, 2), 2);
  EXPECT_EQ(count_label(s.validation, labels, 0), 6);
  EXPECT_EQ(count_label(s.validation, labels, 1), 3);
  EXPECT_EQ(count_label(s.validation, labels, 2), 1);
  EXPECT_EQ(count_label(s.train, labels, 2), 7);
  const Split again = nmsnn::split_indices(100, 0.2, 0.1, 99, &labels);
  EXPECT_EQ(s.test, again.test);
  EXPECT_EQ(s.validation, again.validation);
}

TEST(Split, StratifiedRoundsByLargestRemainder) {
  // 7 of class 0 and 3 of class 1, 30% test = 3 samples. Exact shares 2.1 and 0.9: floors 2 and 0,
  // and the one left over goes to the larger remainder (class 1), so 2 + 1.
  const Ints labels = {0, 0, 0, 0, 0, 0, 0, 1, 1, 1};
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const Split s = nmsnn::split_indices(10, 0.3, 0.0, seed, &labels);
    EXPECT_EQ(count_label(s.test, labels, 0), 2);
    EXPECT_EQ(count_label(s.test, labels, 1), 1);
  }
  // Four singleton classes cannot give a test sample and keep each class in training.
  const Ints singletons = {0, 1, 2, 3};
  EXPECT_TRUE(throws_with([&] { nmsnn::split_indices(4, 0.25, 0.0, 1, &singletons); },
                          {"cannot stratify 4 samples of 4 labels"}));
  const Ints short_labels = {0, 1};
  EXPECT_TRUE(throws_with([&] { nmsnn::split_indices(4, 0.25, 0.0, 1, &short_labels); },
                          {"2 stratification labels for 4 samples"}));
}

// ---- subset ------------------------------------------------------------------------------------

TEST(Subset, PicksRowsAndKeepsNames) {
  const Dataset d = leaky_fixture();
  const Dataset s = nmsnn::subset(d, {5, 0, 0});
  EXPECT_EQ(s.name, "leak");
  EXPECT_EQ(s.count, 3);
  EXPECT_EQ(s.features, 2);
  EXPECT_EQ(s.x, (Floats{200, 9, 1, 7, 1, 7}));
  EXPECT_EQ(s.labels, (Ints{1, 0, 0}));
  EXPECT_EQ(s.classes, 2);
  EXPECT_EQ(s.feature_names, d.feature_names);
  EXPECT_TRUE(throws_with([&] { nmsnn::subset(d, {0, 6}); },
                          {"dataset 'leak'", "index 6 at position 1 is outside [0, 6)"}));
}

// ---- Standardizer and TargetScaler -------------------------------------------------------------

TEST(Standardizer, FitsOnTrainingRowsOnly) {
  const Dataset all = leaky_fixture();
  Dataset train = nmsnn::subset(all, {0, 1, 2, 3});
  Dataset test = nmsnn::subset(all, {4, 5});
  nmsnn::Standardizer s;
  EXPECT_FALSE(s.fitted());
  s.fit(train);
  ASSERT_TRUE(s.fitted());
  EXPECT_EQ(s.mean, (Floats{2.5f, 7.0f}));  // 51.67 had the test rows leaked in
  EXPECT_FLOAT_EQ(s.scale[0], float(std::sqrt(1.25)));
  EXPECT_EQ(s.scale[1], 1.0f);  // constant column: no division by zero

  s.transform(train);
  EXPECT_NEAR(mean_of(column(train, 0)), 0.0, 1e-7);
  EXPECT_NEAR(pop_std_of(column(train, 0)), 1.0, 1e-6);
  EXPECT_EQ(column(train, 1), (std::vector<double>{0, 0, 0, 0}));  // exactly 0, not noise

  // Test rows use the training statistics, so they are far from mean 0 / std 1.
  s.transform(test);
  EXPECT_FLOAT_EQ(test.x[0], float((100 - 2.5) / std::sqrt(1.25)));
  EXPECT_FLOAT_EQ(test.x[2], float((200 - 2.5) / std::sqrt(1.25)));
  EXPECT_EQ(test.x[1], 2.0f);  // (9 - 7) / 1
  EXPECT_GT(mean_of(column(test, 0)), 100.0);
}

TEST(Standardizer, InverseRoundTripsAndChecksShapes) {
  const Dataset all = leaky_fixture();
  nmsnn::Standardizer s;
  s.fit(all);
  Dataset d = all;
  s.transform(d);
  EXPECT_NE(d.x, all.x);
  s.inverse_transform(d);
  for (size_t i = 0; i < d.x.size(); ++i) {
    EXPECT_NEAR(d.x[i], all.x[i], 1e-5 * std::max(1.0f, std::abs(all.x[i]))) << "value " << i;
  }

  nmsnn::Standardizer unfitted;
  EXPECT_TRUE(throws_with([&] { unfitted.transform(d); },
                          {"Standardizer::transform", "not fitted"}));
  Dataset narrow;
  narrow.name = "narrow";
  narrow.count = 1;
  narrow.features = 3;
  narrow.x = {1, 2, 3};
  EXPECT_TRUE(throws_with([&] { s.transform(narrow); },
                          {"fitted on 2 features, dataset 'narrow' has 3"}));
  Dataset empty;
  EXPECT_TRUE(throws_with([&] { s.fit(empty); }, {"Standardizer::fit", "0 samples"}));
}

TEST(TargetScaler, ScalesTargetsAndPredictions) {
  Dataset d;
  d.name = "prices";
  d.count = 4;
  d.features = 1;
  d.x = {0, 0, 0, 0};
  d.targets = {10, 20, 30, 40};  // mean 25, population std sqrt(125)
  d.target_size = 1;
  nmsnn::TargetScaler t;
  t.fit(d);
  EXPECT_EQ(t.mean, (Floats{25.0f}));
  EXPECT_FLOAT_EQ(t.scale[0], float(std::sqrt(125.0)));

  Dataset scaled = d;
  t.transform(scaled);
  EXPECT_FLOAT_EQ(scaled.targets[0], float(-15 / std::sqrt(125.0)));
  EXPECT_FLOAT_EQ(scaled.targets[3], float(15 / std::sqrt(125.0)));
  t.inverse_transform(scaled);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(scaled.targets[i], d.targets[i], 1e-5);

  // A network's output in scaled units maps back to prices: 0 is the mean, 1 one std above.
  Floats predictions = {0.0f, 1.0f};
  t.inverse_transform(predictions);
  EXPECT_FLOAT_EQ(predictions[0], 25.0f);
  EXPECT_FLOAT_EQ(predictions[1], float(25 + std::sqrt(125.0)));
  t.transform(predictions);
  EXPECT_NEAR(predictions[0], 0.0f, 1e-6);
  EXPECT_NEAR(predictions[1], 1.0f, 1e-6);

  Dataset constant = d;
  constant.targets = {0.1f, 0.1f, 0.1f, 0.1f};
  t.fit(constant);
  EXPECT_EQ(t.mean, (Floats{0.1f}));
  EXPECT_EQ(t.scale, (Floats{1.0f}));
  t.transform(constant);
  EXPECT_EQ(constant.targets, (Floats{0, 0, 0, 0}));

  Dataset classes = leaky_fixture();
  EXPECT_TRUE(throws_with([&] { t.fit(classes); },
                          {"TargetScaler::fit", "dataset 'leak' has no regression targets"}));
  Floats odd = {1, 2, 3};
  nmsnn::TargetScaler two;
  Dataset pairs = d;
  pairs.count = 2;
  pairs.target_size = 2;
  two.fit(pairs);
  EXPECT_TRUE(throws_with([&] { two.inverse_transform(odd); },
                          {"3 values is not a multiple of the 2 targets per sample"}));
}
