// report/metrics.cpp — confusion matrices, per-class scores, ROC and PR curves, regression errors.
//
// Counts are integers and sums run in double, so the small hand-checkable cases in the tests come
// out exact. Both curves share one pass over the samples sorted by descending score.
#include "nmsnn/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "nmsnn/error.hpp"

namespace nmsnn {

using detail::fail;

namespace {

double ratio(double num, double den) { return den == 0 ? 0.0 : num / den; }  // 0/0 -> 0

void check_scores(const char* who, const std::vector<int>& truth01,
                  const std::vector<float>& scores) {
  if (truth01.empty()) fail(who, ": no samples");
  if (truth01.size() != scores.size()) {
    fail(who, ": ", truth01.size(), " truth values but ", scores.size(), " scores");
  }
  for (size_t i = 0; i < truth01.size(); ++i) {
    if (truth01[i] != 0 && truth01[i] != 1) {
      fail(who, ": truth[", i, "] is ", truth01[i], "; expected 0 or 1");
    }
    if (!std::isfinite(scores[i])) fail(who, ": score[", i, "] is not finite (", scores[i], ")");
  }
}

// Cumulative (false, true) positive counts at each distinct score, highest first, after a leading
// (0, 0) at +inf: the points both curves are drawn through.
struct Counts {
  std::vector<double> fp, tp;
  std::vector<float> thresholds;
};

Counts cumulative_counts(const std::vector<int>& truth01, const std::vector<float>& scores) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  Counts c;
  c.fp.push_back(0);
  c.tp.push_back(0);
  c.thresholds.push_back(std::numeric_limits<float>::infinity());
  double fp = 0, tp = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    (truth01[order[k]] ? tp : fp) += 1;
    // Tied scores cannot be told apart by any threshold, so they enter the curve together.
    if (k + 1 == order.size() || scores[order[k + 1]] != scores[order[k]]) {
      c.fp.push_back(fp);
      c.tp.push_back(tp);
      c.thresholds.push_back(scores[order[k]]);
    }
  }
  return c;
}

}  // namespace

int64_t ConfusionMatrix::total() const {
  return std::accumulate(counts.begin(), counts.end(), int64_t(0));
}

ConfusionMatrix confusion_matrix(const std::vector<int>& truth, const std::vector<int>& pred,
                                 int classes) {
  if (classes < 1) fail("confusion_matrix: classes must be >= 1, got ", classes);
  if (truth.empty()) fail("confusion_matrix: no samples");
  if (truth.size() != pred.size()) {
    fail("confusion_matrix: ", truth.size(), " true labels but ", pred.size(), " predictions");
  }
  ConfusionMatrix cm;
  cm.classes = classes;
  cm.counts.assign(size_t(classes) * classes, 0);
  for (size_t i = 0; i < truth.size(); ++i) {
    if (truth[i] < 0 || truth[i] >= classes) {
      fail("confusion_matrix: true label ", truth[i], " at sample ", i, " is outside [0, ",
           classes, ")");
    }
    if (pred[i] < 0 || pred[i] >= classes) {
      fail("confusion_matrix: predicted label ", pred[i], " at sample ", i, " is outside [0, ",
           classes, ")");
    }
    ++cm.counts[size_t(truth[i]) * classes + pred[i]];
  }
  return cm;
}

double accuracy(const ConfusionMatrix& cm) {
  const int64_t total = cm.total();
  if (total == 0) fail("accuracy: the confusion matrix is empty");
  int64_t right = 0;
  for (int c = 0; c < cm.classes; ++c) right += cm.at(c, c);
  return double(right) / double(total);
}

ClassMetrics class_metrics(const ConfusionMatrix& cm) {
  if (cm.classes < 1 || cm.counts.size() != size_t(cm.classes) * cm.classes) {
    fail("class_metrics: confusion matrix of ", cm.counts.size(), " counts for ", cm.classes,
         " classes");
  }
  const int C = cm.classes;
  ClassMetrics m;
  m.accuracy = accuracy(cm);
  m.precision.assign(C, 0);
  m.recall.assign(C, 0);
  m.f1.assign(C, 0);
  m.support.assign(C, 0);
  int present = 0;
  for (int c = 0; c < C; ++c) {
    int64_t predicted = 0;
    for (int t = 0; t < C; ++t) predicted += cm.at(t, c);
    for (int p = 0; p < C; ++p) m.support[c] += cm.at(c, p);
    const double tp = double(cm.at(c, c));
    m.precision[c] = ratio(tp, double(predicted));
    m.recall[c] = ratio(tp, double(m.support[c]));
    m.f1[c] = ratio(2 * m.precision[c] * m.recall[c], m.precision[c] + m.recall[c]);
    if (predicted == 0 && m.support[c] == 0) continue;  // a class nobody saw or predicted
    ++present;
    m.macro_precision += m.precision[c];
    m.macro_recall += m.recall[c];
    m.macro_f1 += m.f1[c];
  }
  m.macro_precision /= present;
  m.macro_recall /= present;
  m.macro_f1 /= present;
  return m;
}

RocCurve roc_curve(const std::vector<int>& truth01, const std::vector<float>& scores) {
  check_scores("roc_curve", truth01, scores);
  const Counts c = cumulative_counts(truth01, scores);
  const double P = c.tp.back(), N = c.fp.back();
  RocCurve r;
  if (P == 0 || N == 0) return r;  // one class: no pair to rank, the AUC is undefined (NaN)
  r.thresholds = c.thresholds;
  double twice_area = 0;  // in units of one positive-negative pair
  for (size_t k = 0; k < c.tp.size(); ++k) {
    r.fpr.push_back(c.fp[k] / N);
    r.tpr.push_back(c.tp[k] / P);
    if (k > 0) twice_area += (c.fp[k] - c.fp[k - 1]) * (c.tp[k] + c.tp[k - 1]);
  }
  r.auc = twice_area / (2 * P * N);
  return r;
}

OneVsRestRoc roc_one_vs_rest(const std::vector<int>& truth, const std::vector<float>& scores,
                             int classes) {
  if (classes < 2) fail("roc_one_vs_rest: classes must be >= 2, got ", classes);
  if (truth.empty()) fail("roc_one_vs_rest: no samples");
  if (scores.size() != truth.size() * classes) {
    fail("roc_one_vs_rest: ", scores.size(), " scores for ", truth.size(), " samples of ", classes,
         " classes (expected ", truth.size() * classes, ")");
  }
  std::vector<int64_t> count(classes, 0);
  for (size_t i = 0; i < truth.size(); ++i) {
    if (truth[i] < 0 || truth[i] >= classes) {
      fail("roc_one_vs_rest: true label ", truth[i], " at sample ", i, " is outside [0, ", classes,
           ")");
    }
    ++count[truth[i]];
  }
  OneVsRestRoc out;
  out.curves.resize(classes);
  out.auc.assign(classes, std::numeric_limits<double>::quiet_NaN());
  int defined = 0;
  double sum = 0;
  for (int c = 0; c < classes; ++c) {
    if (count[c] == 0 || count[c] == int64_t(truth.size())) continue;
    std::vector<int> is_c(truth.size());
    std::vector<float> column(truth.size());
    for (size_t i = 0; i < truth.size(); ++i) {
      is_c[i] = truth[i] == c;
      column[i] = scores[i * classes + c];
    }
    out.curves[c] = roc_curve(is_c, column);
    out.auc[c] = out.curves[c].auc;
    sum += out.auc[c];
    ++defined;
  }
  if (defined > 0) out.macro_auc = sum / defined;  // else NaN: every sample has one true class
  return out;
}

PrCurve pr_curve(const std::vector<int>& truth01, const std::vector<float>& scores) {
  check_scores("pr_curve", truth01, scores);
  const Counts c = cumulative_counts(truth01, scores);
  const double P = c.tp.back();
  PrCurve r;
  if (P == 0) return r;  // no positive: recall is 0/0, the curve undefined (NaN AP)
  r.average_precision = 0;
  r.thresholds = c.thresholds;
  r.precision.push_back(1);  // the empty prediction set, by convention
  r.recall.push_back(0);
  for (size_t k = 1; k < c.tp.size(); ++k) {
    r.precision.push_back(c.tp[k] / (c.tp[k] + c.fp[k]));
    r.recall.push_back(c.tp[k] / P);
    r.average_precision += (r.recall[k] - r.recall[k - 1]) * r.precision[k];
  }
  return r;
}

RegressionMetrics regression_metrics(const std::vector<float>& truth,
                                     const std::vector<float>& pred) {
  if (truth.empty()) fail("regression_metrics: no samples");
  if (truth.size() != pred.size()) {
    fail("regression_metrics: ", truth.size(), " true values but ", pred.size(), " predictions");
  }
  const size_t n = truth.size();
  double mean = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(truth[i])) {
      fail("regression_metrics: truth[", i, "] is not finite (", truth[i], ")");
    }
    if (!std::isfinite(pred[i])) {
      fail("regression_metrics: prediction[", i, "] is not finite (", pred[i], ")");
    }
    mean += truth[i];
  }
  mean /= double(n);
  double ss_res = 0, ss_tot = 0, abs_sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const double e = double(truth[i]) - double(pred[i]);
    ss_res += e * e;
    abs_sum += std::fabs(e);
    ss_tot += (truth[i] - mean) * (truth[i] - mean);
  }
  RegressionMetrics m;
  m.mse = ss_res / double(n);
  m.rmse = std::sqrt(m.mse);
  m.mae = abs_sum / double(n);
  // Constant truth has no variance to explain. (The double mean of equal floats is exact, so
  // ss_tot is exactly 0 then.)
  m.r2 = ss_tot == 0 ? (ss_res == 0 ? 1.0 : 0.0) : 1.0 - ss_res / ss_tot;
  return m;
}

}  // namespace nmsnn
