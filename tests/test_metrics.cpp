// tests/test_metrics.cpp — classification and regression metrics on cases worked out by hand.
//
// Every expected number is derived in the comment above it, so a reader can check the arithmetic
// without running scikit-learn; the ROC and AP cases are also the ones in scikit-learn's docs.
#include <gtest/gtest.h>

#include "throws_with.hpp"

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "nmsnn/error.hpp"
#include "nmsnn/metrics.hpp"

using Ints = std::vector<int>;
using Floats = std::vector<float>;
using Doubles = std::vector<double>;
constexpr float kInf = std::numeric_limits<float>::infinity();

namespace {

void expect_near_all(const Doubles& got, const Doubles& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], 1e-12) << what << "[" << i << "]";
  }
}

}  // namespace

// ---- confusion matrix, precision, recall, F1 ---------------------------------------------------

TEST(Classification, ThreeClassesByHand) {
  // truth 0 0 0 0 1 1 1 2 2 2
  // pred  0 0 1 2 1 1 0 2 2 1
  // Rows = truth, columns = prediction:
  //            pred 0  1  2   support
  //   truth 0     2  1  1   4
  //   truth 1     1  2  0   3
  //   truth 2     0  1  2   3
  //   predicted   3  4  3
  // accuracy = (2 + 2 + 2) / 10 = 0.6
  // precision = tp / column: 2/3, 2/4, 2/3;  recall = tp / row: 2/4, 2/3, 2/3
  // F1 = 2PR / (P + R): class 0: 2(2/3)(1/2) / (7/6) = 4/7; class 1: the same 4/7; class 2: 2/3
  // macro P = (2/3 + 1/2 + 2/3) / 3 = 11/18; macro R = 11/18; macro F1 = (4/7 + 4/7 + 2/3) / 3
  //         = 38/63
  const Ints truth = {0, 0, 0, 0, 1, 1, 1, 2, 2, 2};
  const Ints pred = {0, 0, 1, 2, 1, 1, 0, 2, 2, 1};
  const nmsnn::ConfusionMatrix cm = nmsnn::confusion_matrix(truth, pred, 3);
  EXPECT_EQ(cm.classes, 3);
  EXPECT_EQ(cm.counts, (std::vector<int64_t>{2, 1, 1, 1, 2, 0, 0, 1, 2}));
  EXPECT_EQ(cm.at(0, 2), 1);
  EXPECT_EQ(cm.at(2, 1), 1);
  EXPECT_EQ(cm.total(), 10);
  EXPECT_DOUBLE_EQ(nmsnn::accuracy(cm), 0.6);

  const nmsnn::ClassMetrics m = nmsnn::class_metrics(cm);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.6);
  expect_near_all(m.precision, {2.0 / 3, 0.5, 2.0 / 3}, "precision");
  expect_near_all(m.recall, {0.5, 2.0 / 3, 2.0 / 3}, "recall");
  expect_near_all(m.f1, {4.0 / 7, 4.0 / 7, 2.0 / 3}, "f1");
  EXPECT_EQ(m.support, (std::vector<int64_t>{4, 3, 3}));
  EXPECT_NEAR(m.macro_precision, 11.0 / 18, 1e-12);
  EXPECT_NEAR(m.macro_recall, 11.0 / 18, 1e-12);
  EXPECT_NEAR(m.macro_f1, 38.0 / 63, 1e-12);
}

TEST(Classification, ZeroOverZeroCountsAsZero) {
  // 4 classes; class 2 is in the truth but never predicted, class 3 is nowhere.
  // truth 0 1 2, pred 0 1 1:
  //   class 0: P = 1/1, R = 1/1, F1 = 1
  //   class 1: P = 1/2, R = 1/1, F1 = 2(1/2)(1) / (3/2) = 2/3
  //   class 2: P = 0/0 -> 0, R = 0/1 = 0, F1 = 0/0 -> 0
  //   class 3: P = R = F1 = 0 (0/0), and it is left out of the macro averages
  // macro P = (1 + 1/2 + 0) / 3 = 1/2; macro R = (1 + 1 + 0) / 3 = 2/3; macro F1 = (1 + 2/3) / 3
  //         = 5/9
  const nmsnn::ClassMetrics m =
      nmsnn::class_metrics(nmsnn::confusion_matrix({0, 1, 2}, {0, 1, 1}, 4));
  expect_near_all(m.precision, {1, 0.5, 0, 0}, "precision");
  expect_near_all(m.recall, {1, 1, 0, 0}, "recall");
  expect_near_all(m.f1, {1, 2.0 / 3, 0, 0}, "f1");
  EXPECT_EQ(m.support, (std::vector<int64_t>{1, 1, 1, 0}));
  EXPECT_NEAR(m.macro_precision, 0.5, 1e-12);
  EXPECT_NEAR(m.macro_recall, 2.0 / 3, 1e-12);
  EXPECT_NEAR(m.macro_f1, 5.0 / 9, 1e-12);
  EXPECT_NEAR(m.accuracy, 2.0 / 3, 1e-12);
}

TEST(Classification, BadInput) {
  EXPECT_TRUE(throws_with([] { nmsnn::confusion_matrix({0, 1}, {0}, 2); },
                          {"2 true labels but 1 predictions"}));
  EXPECT_TRUE(throws_with([] { nmsnn::confusion_matrix({}, {}, 2); }, {"no samples"}));
  EXPECT_TRUE(throws_with([] { nmsnn::confusion_matrix({0, 3}, {0, 1}, 3); },
                          {"true label 3 at sample 1 is outside [0, 3)"}));
  EXPECT_TRUE(throws_with([] { nmsnn::confusion_matrix({0, 1}, {-1, 1}, 3); },
                          {"predicted label -1 at sample 0 is outside [0, 3)"}));
  EXPECT_TRUE(throws_with([] { nmsnn::confusion_matrix({0}, {0}, 0); },
                          {"classes must be >= 1, got 0"}));
}

// ---- ROC ---------------------------------------------------------------------------------------

TEST(Roc, FourSamplesByHand) {
  // scores 0.1 0.4 0.35 0.8, truth 0 0 1 1 (2 positives, 2 negatives). Descending:
  //   0.8 (pos) -> tp 1 fp 0 -> (fpr, tpr) = (0, 0.5)
  //   0.4 (neg) -> tp 1 fp 1 -> (0.5, 0.5)
  //   0.35 (pos) -> tp 2 fp 1 -> (0.5, 1)
  //   0.1 (neg) -> tp 2 fp 2 -> (1, 1)
  // Trapezoids: 0.5 * (0.5 + 0.5) / 2 + 0.5 * (1 + 1) / 2 = 0.25 + 0.5 = 0.75.
  // Mann-Whitney: pairs (pos, neg) won: 0.35>0.1, 0.8>0.1, 0.8>0.4; lost: 0.35<0.4 -> 3/4.
  const nmsnn::RocCurve r = nmsnn::roc_curve({0, 0, 1, 1}, {0.1f, 0.4f, 0.35f, 0.8f});
  expect_near_all(r.fpr, {0, 0, 0.5, 0.5, 1}, "fpr");
  expect_near_all(r.tpr, {0, 0.5, 0.5, 1, 1}, "tpr");
  EXPECT_EQ(r.thresholds, (Floats{kInf, 0.8f, 0.4f, 0.35f, 0.1f}));
  EXPECT_DOUBLE_EQ(r.auc, 0.75);
}

TEST(Roc, TiedScoresMoveTogether) {
  // scores 0.9 0.5 0.5 0.5 0.2, truth 1 1 0 0 0 (P = 2, N = 3). The three 0.5s (1 pos, 2 neg)
  // share one threshold, so the curve jumps diagonally:
  //   0.9 -> (0, 1/2);  0.5 -> (2/3, 1);  0.2 -> (1, 1)
  // Trapezoids: (2/3) * (1/2 + 1) / 2 + (1/3) * 1 = 1/2 + 1/3 = 5/6.
  // Mann-Whitney over 6 pairs: 0.9 beats all 3 negatives (3); the positive 0.5 ties two
  // negatives (1/2 + 1/2) and beats 0.2 (1): (3 + 2) / 6 = 5/6.
  const nmsnn::RocCurve r = nmsnn::roc_curve({1, 1, 0, 0, 0}, {0.9f, 0.5f, 0.5f, 0.5f, 0.2f});
  expect_near_all(r.fpr, {0, 0, 2.0 / 3, 1}, "fpr");
  expect_near_all(r.tpr, {0, 0.5, 1, 1}, "tpr");
  EXPECT_EQ(r.thresholds, (Floats{kInf, 0.9f, 0.5f, 0.2f}));
  EXPECT_NEAR(r.auc, 5.0 / 6, 1e-12);

  // All scores equal: one diagonal step, AUC 1/2 (every pair a tie).
  const nmsnn::RocCurve flat = nmsnn::roc_curve({0, 1, 1}, {0.3f, 0.3f, 0.3f});
  expect_near_all(flat.fpr, {0, 1}, "fpr");
  expect_near_all(flat.tpr, {0, 1}, "tpr");
  EXPECT_DOUBLE_EQ(flat.auc, 0.5);
}

TEST(Roc, AucEqualsMannWhitneyCount) {
  // 200 samples whose scores take only 7 values, so most pairs tie: the trapezoid area must equal
  // the pair count (1 per positive above a negative, 1/2 per tie) divided by P * N.
  uint32_t state = 12345;
  auto next = [&state] { return state = state * 1664525u + 1013904223u; };
  Ints truth;
  Floats scores;
  for (int i = 0; i < 200; ++i) {
    truth.push_back(int(next() >> 31));
    scores.push_back(float((next() >> 16) % 7) / 7.0f);
  }
  double wins = 0, pairs = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    for (size_t j = 0; j < truth.size(); ++j) {
      if (truth[i] != 1 || truth[j] != 0) continue;
      pairs += 1;
      wins += scores[i] > scores[j] ? 1.0 : scores[i] == scores[j] ? 0.5 : 0.0;
    }
  }
  const nmsnn::RocCurve r = nmsnn::roc_curve(truth, scores);
  EXPECT_EQ(r.fpr.size(), 8u);  // (0, 0) and one point per distinct score
  EXPECT_NEAR(r.auc, wins / pairs, 1e-12);
  EXPECT_GT(r.auc, 0.0);
  EXPECT_LT(r.auc, 1.0);
}

TEST(Roc, PerfectAndInverted) {
  const Floats scores = {0.1f, 0.2f, 0.8f, 0.9f};
  EXPECT_DOUBLE_EQ(nmsnn::roc_curve({0, 0, 1, 1}, scores).auc, 1.0);
  EXPECT_DOUBLE_EQ(nmsnn::roc_curve({1, 1, 0, 0}, scores).auc, 0.0);
  // Perfect: straight up the left edge then along the top.
  const nmsnn::RocCurve r = nmsnn::roc_curve({0, 0, 1, 1}, scores);
  expect_near_all(r.fpr, {0, 0, 0, 0.5, 1}, "fpr");
  expect_near_all(r.tpr, {0, 0.5, 1, 1, 1}, "tpr");
}

TEST(Roc, OneVsRest) {
  // Scores per row for classes 0, 1, 2; truth 0 0 1 1 2 2.
  //   class 0 column: .8 .6 | .2 .5 | .1 .3 -> both positives beat all 4 negatives: AUC 1
  //   class 1 column: .1 .3 | .7 .25 | .1 .3 -> positives .7 and .25, negatives .1 .3 .1 .3:
  //     .7 beats 4; .25 beats .1 twice, loses to .3 twice -> (4 + 2) / 8 = 0.75
  //   class 2 column: .1 .1 | .1 .25 | .7 .4 -> positives .7 .4 beat all 4 negatives: AUC 1
  // macro AUC = (1 + 0.75 + 1) / 3 = 11/12
  const Floats scores = {0.8f, 0.1f, 0.1f,  0.6f, 0.3f,  0.1f,  0.2f, 0.7f, 0.1f,
                         0.5f, 0.25f, 0.25f, 0.1f, 0.1f, 0.7f, 0.3f, 0.3f, 0.4f};
  const Ints truth = {0, 0, 1, 1, 2, 2};
  const nmsnn::OneVsRestRoc o = nmsnn::roc_one_vs_rest(truth, scores, 3);
  expect_near_all(o.auc, {1, 0.75, 1}, "auc");
  EXPECT_NEAR(o.macro_auc, 11.0 / 12, 1e-12);
  ASSERT_EQ(o.curves.size(), 3u);
  EXPECT_EQ(o.curves[1].thresholds.front(), kInf);
  EXPECT_DOUBLE_EQ(o.curves[1].auc, 0.75);

  // A class absent from the truth has no AUC (NaN) and is left out of the macro mean.
  // 4 columns, truth 0 0 1: class 0's column .9 .8 | .3 is perfect (AUC 1); class 1's .1 .2 | .05
  // puts its one positive below both negatives (AUC 0); macro = (1 + 0) / 2.
  const Floats four = {0.9f, 0.1f, 0.0f, 0.0f, 0.8f, 0.2f, 0.0f, 0.0f, 0.3f, 0.05f, 0.2f, 0.45f};
  const nmsnn::OneVsRestRoc p = nmsnn::roc_one_vs_rest({0, 0, 1}, four, 4);
  EXPECT_DOUBLE_EQ(p.auc[0], 1.0);
  EXPECT_DOUBLE_EQ(p.auc[1], 0.0);
  EXPECT_TRUE(std::isnan(p.auc[2]));
  EXPECT_TRUE(std::isnan(p.auc[3]));
  EXPECT_TRUE(p.curves[2].fpr.empty());
  EXPECT_DOUBLE_EQ(p.macro_auc, 0.5);

  EXPECT_TRUE(throws_with([&] { nmsnn::roc_one_vs_rest(truth, Floats(17, 0.5f), 3); },
                          {"17 scores for 6 samples of 3 classes (expected 18)"}));
  EXPECT_TRUE(throws_with([&] { nmsnn::roc_one_vs_rest({0, 3}, Floats(6, 0.5f), 3); },
                          {"true label 3 at sample 1 is outside [0, 3)"}));
}

TEST(Roc, BadInput) {
  EXPECT_TRUE(throws_with([] { nmsnn::roc_curve({0, 1}, {0.5f}); },
                          {"roc_curve", "2 truth values but 1 scores"}));
  EXPECT_TRUE(throws_with([] { nmsnn::roc_curve({}, {}); }, {"roc_curve: no samples"}));
  EXPECT_TRUE(throws_with([] { nmsnn::roc_curve({0, 2}, {0.1f, 0.2f}); },
                          {"truth[1] is 2; expected 0 or 1"}));
  EXPECT_TRUE(throws_with([] { nmsnn::roc_curve({0, 1}, {0.1f, std::nanf("")}); },
                          {"score[1] is not finite"}));
  EXPECT_TRUE(throws_with([] { nmsnn::roc_curve({0, 1}, {kInf, 0.2f}); },
                          {"score[0] is not finite"}));
}

// ---- one class in the truth: undefined, not an error ---------------------------------------------
// A test split can hold one class only; the metrics that rank positives against negatives are then
// undefined (NaN, reported as "undefined" / JSON null), and the rest of the evaluation stands.

TEST(Roc, OneClassInTheTruthIsUndefined) {
  for (const Ints& truth : {Ints{1, 1, 1}, Ints{0, 0, 0}}) {
    const nmsnn::RocCurve r = nmsnn::roc_curve(truth, {0.1f, 0.7f, 0.2f});
    EXPECT_TRUE(std::isnan(r.auc)) << r.auc;
    EXPECT_TRUE(r.fpr.empty() && r.tpr.empty() && r.thresholds.empty());
  }
  // Bad input is still an error, whatever the classes.
  EXPECT_TRUE(throws_with([] { nmsnn::roc_curve({1, 1}, {0.1f, kInf}); },
                          {"score[1] is not finite"}));
  // A curve never computed has no AUC either (not a misleading 0).
  EXPECT_TRUE(std::isnan(nmsnn::RocCurve().auc));
}

TEST(Roc, OneVsRestWithOneClassIsUndefined) {
  // Three samples of class 1 among 3 classes: no class has both positives and negatives.
  const nmsnn::OneVsRestRoc o = nmsnn::roc_one_vs_rest({1, 1, 1}, Floats(9, 0.5f), 3);
  EXPECT_TRUE(std::isnan(o.macro_auc)) << o.macro_auc;
  ASSERT_EQ(o.auc.size(), 3u);
  for (int c = 0; c < 3; ++c) {
    EXPECT_TRUE(std::isnan(o.auc[c])) << c;
    EXPECT_TRUE(o.curves[c].fpr.empty()) << c;
  }
  EXPECT_TRUE(std::isnan(nmsnn::OneVsRestRoc().macro_auc));
}

TEST(PrecisionRecall, NoPositiveIsUndefined) {
  const nmsnn::PrCurve c = nmsnn::pr_curve({0, 0}, {0.1f, 0.2f});
  EXPECT_TRUE(std::isnan(c.average_precision)) << c.average_precision;
  EXPECT_TRUE(c.precision.empty() && c.recall.empty() && c.thresholds.empty());
  // Positives only is defined: every threshold has precision 1, AP = 1.
  EXPECT_DOUBLE_EQ(nmsnn::pr_curve({1, 1}, {0.1f, 0.2f}).average_precision, 1.0);
  EXPECT_TRUE(std::isnan(nmsnn::PrCurve().average_precision));
}

// ---- precision-recall --------------------------------------------------------------------------

TEST(PrecisionRecall, AveragePrecisionByHand) {
  // scores 0.1 0.4 0.35 0.8, truth 0 0 1 1 (P = 2). Descending thresholds:
  //   0.8:  tp 1 fp 0 -> precision 1,   recall 1/2
  //   0.4:  tp 1 fp 1 -> precision 1/2, recall 1/2
  //   0.35: tp 2 fp 1 -> precision 2/3, recall 1
  //   0.1:  tp 2 fp 2 -> precision 1/2, recall 1
  // AP = sum (R_n - R_n-1) P_n = (1/2)(1) + 0 + (1/2)(2/3) + 0 = 5/6 (scikit-learn's doc example).
  const nmsnn::PrCurve c = nmsnn::pr_curve({0, 0, 1, 1}, {0.1f, 0.4f, 0.35f, 0.8f});
  expect_near_all(c.precision, {1, 1, 0.5, 2.0 / 3, 0.5}, "precision");
  expect_near_all(c.recall, {0, 0.5, 0.5, 1, 1}, "recall");
  EXPECT_EQ(c.thresholds, (Floats{kInf, 0.8f, 0.4f, 0.35f, 0.1f}));
  EXPECT_NEAR(c.average_precision, 5.0 / 6, 1e-12);

  // With ties (the ROC case above): 0.9 -> P 1, R 1/2; the 0.5s -> tp 2 fp 2: P 1/2, R 1;
  // 0.2 -> P 2/5, R 1. AP = (1/2)(1) + (1/2)(1/2) + 0 = 3/4.
  const nmsnn::PrCurve t = nmsnn::pr_curve({1, 1, 0, 0, 0}, {0.9f, 0.5f, 0.5f, 0.5f, 0.2f});
  expect_near_all(t.precision, {1, 1, 0.5, 0.4}, "precision");
  expect_near_all(t.recall, {0, 0.5, 1, 1}, "recall");
  EXPECT_NEAR(t.average_precision, 0.75, 1e-12);

  // A perfect ranking has AP 1; an inverted one with P = 1 of N = 4 reaches recall 1 only at the
  // last threshold, with precision 1/4.
  EXPECT_DOUBLE_EQ(nmsnn::pr_curve({0, 0, 1, 1}, {0.1f, 0.2f, 0.8f, 0.9f}).average_precision, 1.0);
  EXPECT_DOUBLE_EQ(nmsnn::pr_curve({1, 0, 0, 0}, {0.1f, 0.2f, 0.3f, 0.4f}).average_precision,
                   0.25);

  EXPECT_TRUE(throws_with([] { nmsnn::pr_curve({0, 1, 1}, {0.1f, 0.2f}); },
                          {"pr_curve", "3 truth values but 2 scores"}));
}

// ---- regression --------------------------------------------------------------------------------

TEST(Regression, FourPointsByHand) {
  // truth 1 2 3 4, pred 1.5 2 2 5: errors -0.5 0 1 -1
  //   SS_res = 0.25 + 0 + 1 + 1 = 2.25;  MSE = 2.25 / 4 = 0.5625;  RMSE = 0.75
  //   MAE = (0.5 + 0 + 1 + 1) / 4 = 0.625
  //   mean truth 2.5, SS_tot = 2.25 + 0.25 + 0.25 + 2.25 = 5;  R² = 1 - 2.25 / 5 = 0.55
  const nmsnn::RegressionMetrics m = nmsnn::regression_metrics({1, 2, 3, 4}, {1.5f, 2, 2, 5});
  EXPECT_DOUBLE_EQ(m.mse, 0.5625);
  EXPECT_DOUBLE_EQ(m.rmse, 0.75);
  EXPECT_DOUBLE_EQ(m.mae, 0.625);
  EXPECT_NEAR(m.r2, 0.55, 1e-12);
  // Predicting the mean everywhere scores R² = 0; worse than that is negative.
  EXPECT_NEAR(nmsnn::regression_metrics({1, 2, 3, 4}, {2.5f, 2.5f, 2.5f, 2.5f}).r2, 0.0, 1e-12);
  // pred 4 3 2 1: SS_res = 9 + 1 + 1 + 9 = 20, R² = 1 - 20/5 = -3.
  EXPECT_NEAR(nmsnn::regression_metrics({1, 2, 3, 4}, {4, 3, 2, 1}).r2, -3.0, 1e-12);
}

TEST(Regression, ConstantTruth) {
  // SS_tot = 0: R² is 1 for an exact prediction and 0 otherwise (scikit-learn's force_finite).
  // Also for a value with no short binary form, whose mean could in principle carry rounding.
  EXPECT_DOUBLE_EQ(nmsnn::regression_metrics({0.1f, 0.1f, 0.1f}, {0.1f, 0.1f, 0.1f}).r2, 1.0);
  const nmsnn::RegressionMetrics m = nmsnn::regression_metrics({3, 3, 3}, {3, 3, 4});
  EXPECT_DOUBLE_EQ(m.r2, 0.0);
  EXPECT_NEAR(m.mse, 1.0 / 3, 1e-12);
  EXPECT_NEAR(m.mae, 1.0 / 3, 1e-12);
}

TEST(Regression, BadInput) {
  EXPECT_TRUE(throws_with([] { nmsnn::regression_metrics({}, {}); }, {"no samples"}));
  EXPECT_TRUE(throws_with([] { nmsnn::regression_metrics({1, 2}, {1}); },
                          {"2 true values but 1 predictions"}));
  EXPECT_TRUE(throws_with([] { nmsnn::regression_metrics({1, kInf}, {1, 2}); },
                          {"truth[1] is not finite"}));
  EXPECT_TRUE(throws_with([] { nmsnn::regression_metrics({1, 2}, {std::nanf(""), 2}); },
                          {"prediction[0] is not finite"}));
}
