// nmsnn/loss.hpp — losses on the network's logits, each with its gradient dL/dlogits.
//
// All three average over the batch as PyTorch's default reduction="mean" does.
#pragma once

#include <string>
#include <vector>

namespace nmsnn {

enum class Loss {
  nll,  // multiclass: NLL of log_softmax(logits) (= cross-entropy), labels in [0, C)
  bce,  // binary: BCE-with-logits on one logit per sample, targets in [0, 1]
  mse,  // regression: mean squared error over all outputs
};
const char* to_string(Loss loss);
Loss parse_loss(const std::string& name);  // "nll", "bce" or "mse"

struct LossValue {
  double value = 0;        // the mean loss
  std::vector<float> grad;  // dL/dlogits, same shape as the logits
};

// logits[B, C], labels[B]: -mean_b log_softmax(logits[b])[labels[b]].
LossValue nll_log_softmax(const std::vector<float>& logits, int batch, int classes,
                          const std::vector<int>& labels);
// logits[B], targets[B]: mean_b [max(z,0) - z*y + log(1 + exp(-|z|))], PyTorch's stable form.
LossValue bce_with_logits(const std::vector<float>& logits, const std::vector<float>& targets);
// predictions[N], targets[N]: mean (p - y)^2.
LossValue mse(const std::vector<float>& predictions, const std::vector<float>& targets);

}  // namespace nmsnn
