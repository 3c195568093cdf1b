// nmsnn/metrics.hpp — how good predictions are: classification and regression metrics.
//
// Definitions follow scikit-learn so numbers can be checked against it: 0/0 in precision, recall
// and F1 counts as 0 (zero_division=0); ROC and precision-recall curves put one point at every
// distinct score (ties move together, like roc_curve with drop_intermediate=False); AUC is the
// trapezoid area, which equals the Mann-Whitney probability that a positive outscores a negative
// with ties counted 1/2; average precision is sum_n (R_n - R_n-1) P_n. Bad input (empty, sizes that
// disagree, labels out of range, non-finite values) throws nmsnn::Error saying which.
//
// A metric the data cannot define is NaN, not an error: AUC when the truth holds one class only
// (no negatives to rank positives against, or no positives), average precision without a positive.
// A test split of one class is a fact about the data, and reports say "undefined" (JSON null).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace nmsnn {

// ---- classification ----------------------------------------------------------------------------

struct ConfusionMatrix {
  int classes = 0;
  std::vector<int64_t> counts;  // [classes, classes]: row = true class, column = predicted class
  int64_t at(int truth, int pred) const { return counts[std::size_t(truth) * classes + pred]; }
  int64_t total() const;
};

ConfusionMatrix confusion_matrix(const std::vector<int>& truth, const std::vector<int>& pred,
                                 int classes);

double accuracy(const ConfusionMatrix& cm);  // trace / total

struct ClassMetrics {
  double accuracy = 0;
  std::vector<double> precision, recall, f1;  // [classes]; 0 where the ratio is 0/0
  std::vector<int64_t> support;               // [classes] samples whose true class is c
  // Unweighted means over the classes that occur in the truth or the predictions (scikit-learn's
  // default label set); macro_f1 is the mean of the per-class F1, not F1 of the macro P and R.
  double macro_precision = 0, macro_recall = 0, macro_f1 = 0;
};

ClassMetrics class_metrics(const ConfusionMatrix& cm);

// Binary ROC: truth01[i] in {0, 1}, higher score = more positive. With one class only in the
// truth the curve is undefined: fpr, tpr and thresholds are empty and auc is NaN.
struct RocCurve {
  std::vector<double> fpr, tpr;   // [points], from (0, 0) to (1, 1)
  std::vector<float> thresholds;  // [points]: predict positive when score >= threshold; [0] = +inf
  double auc = std::numeric_limits<double>::quiet_NaN();  // NaN until computed, or undefined
};

RocCurve roc_curve(const std::vector<int>& truth01, const std::vector<float>& scores);

// One-vs-rest ROC for C classes from scores [N, C] (row-major, e.g. softmax outputs).
struct OneVsRestRoc {
  std::vector<RocCurve> curves;  // [classes]; empty where the AUC is undefined
  std::vector<double> auc;       // [classes]; NaN for a class absent from (or all of) the truth
  // Mean over the classes whose AUC is defined; NaN when none is (every sample of one class).
  double macro_auc = std::numeric_limits<double>::quiet_NaN();
};

OneVsRestRoc roc_one_vs_rest(const std::vector<int>& truth, const std::vector<float>& scores,
                             int classes);

// Binary precision-recall curve. Without a positive in the truth recall is 0/0: the curve is
// empty and average_precision is NaN.
struct PrCurve {
  std::vector<double> precision, recall;  // [points], from (recall 0, precision 1) at +inf
  std::vector<float> thresholds;          // [points], descending; [0] = +inf
  double average_precision = std::numeric_limits<double>::quiet_NaN();  // NaN: undefined
};

PrCurve pr_curve(const std::vector<int>& truth01, const std::vector<float>& scores);

// ---- regression --------------------------------------------------------------------------------

// One target column: truth[i] against pred[i]. R² = 1 - SS_res / SS_tot; when the truth is
// constant (SS_tot = 0) R² is 1 for a perfect prediction and 0 otherwise, as in scikit-learn.
struct RegressionMetrics {
  double mse = 0, rmse = 0, mae = 0, r2 = 0;
};

RegressionMetrics regression_metrics(const std::vector<float>& truth,
                                     const std::vector<float>& pred);

}  // namespace nmsnn
