// training/loss.cpp — the public losses: argument checks around the math in losses.hpp.
#include "nmsnn/loss.hpp"

#include <cmath>

#include "training/loss_math.hpp"
#include "nmsnn/error.hpp"

namespace nmsnn {

using detail::fail;

const char* to_string(Loss loss) {
  switch (loss) {
    case Loss::nll: return "nll";
    case Loss::bce: return "bce";
    case Loss::mse: return "mse";
  }
  return "?";
}

Loss parse_loss(const std::string& name) {
  if (name == "nll") return Loss::nll;
  if (name == "bce") return Loss::bce;
  if (name == "mse") return Loss::mse;
  fail("unknown loss '", name, "' (expected nll, bce or mse)");
}

namespace {
void check_finite(const char* what, const char* name, const std::vector<float>& v) {
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i])) fail(what, ": ", name, "[", i, "] is ", v[i], ", must be finite");
}
}  // namespace

LossValue nll_log_softmax(const std::vector<float>& logits, int batch, int classes,
                          const std::vector<int>& labels) {
  if (batch < 1 || classes < 1)
    fail("nll_log_softmax: batch and classes must be >= 1, got ", batch, " and ", classes);
  if (logits.size() != size_t(batch) * classes)
    fail("nll_log_softmax: logits has ", logits.size(), " values, expected batch*classes = ",
         batch, "*", classes);
  if (labels.size() != size_t(batch))
    fail("nll_log_softmax: ", labels.size(), " labels for a batch of ", batch);
  for (int b = 0; b < batch; ++b)
    if (labels[b] < 0 || labels[b] >= classes)
      fail("nll_log_softmax: label[", b, "] = ", labels[b], " is outside [0, ", classes, ")");
  check_finite("nll_log_softmax", "logits", logits);
  LossValue out;
  out.grad.resize(logits.size());
  std::vector<double> z(logits.begin(), logits.end()), g(logits.size());
  out.value = detail::nll_log_softmax(z.data(), batch, classes, labels.data(), g.data());
  for (size_t i = 0; i < g.size(); ++i) out.grad[i] = float(g[i]);
  return out;
}

LossValue bce_with_logits(const std::vector<float>& logits, const std::vector<float>& targets) {
  if (logits.empty()) fail("bce_with_logits: no logits");
  if (targets.size() != logits.size())
    fail("bce_with_logits: ", logits.size(), " logits but ", targets.size(), " targets");
  check_finite("bce_with_logits", "logits", logits);
  for (size_t i = 0; i < targets.size(); ++i)
    if (!(targets[i] >= 0 && targets[i] <= 1))
      fail("bce_with_logits: target[", i, "] = ", targets[i], " is outside [0, 1]");
  LossValue out;
  out.grad.resize(logits.size());
  std::vector<double> z(logits.begin(), logits.end()), y(targets.begin(), targets.end()),
      g(logits.size());
  out.value = detail::bce_with_logits(z.data(), y.data(), int(z.size()), g.data());
  for (size_t i = 0; i < g.size(); ++i) out.grad[i] = float(g[i]);
  return out;
}

LossValue mse(const std::vector<float>& predictions, const std::vector<float>& targets) {
  if (predictions.empty()) fail("mse: no predictions");
  if (targets.size() != predictions.size())
    fail("mse: ", predictions.size(), " predictions but ", targets.size(), " targets");
  check_finite("mse", "predictions", predictions);
  check_finite("mse", "targets", targets);
  LossValue out;
  out.grad.resize(predictions.size());
  std::vector<double> p(predictions.begin(), predictions.end()),
      y(targets.begin(), targets.end()), g(p.size());
  out.value = detail::mse(p.data(), y.data(), int(p.size()), g.data());
  for (size_t i = 0; i < g.size(); ++i) out.grad[i] = float(g[i]);
  return out;
}

}  // namespace nmsnn
