// trainer.cpp — mini-batch training and evaluation over an in-memory Dataset.
#include "nmsnn/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "initialize.hpp"
#include "nmsnn/error.hpp"
#include "nmsnn/network.hpp"

namespace nmsnn {

using detail::fail;

double LrSchedule::lr_at(int epoch, double base_lr) const {
  if (!per_epoch.empty()) return per_epoch[std::min<size_t>(epoch, per_epoch.size() - 1)];
  if (step_epochs > 0) return base_lr * std::pow(gamma, double(epoch / step_epochs));
  return base_lr;
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Checks that a dataset can feed this network under this loss.
void check_fit(const Network& net, const Dataset& data, Loss loss, const char* role) {
  data.validate();
  const NetworkSpec& spec = net.spec();
  if (data.count < 1) fail(role, " dataset '", data.name, "' is empty");
  if (data.features != spec.inputs)
    fail(role, " dataset '", data.name, "' has ", data.features,
         " features per sample, the network expects ", spec.inputs, " inputs");
  const int C = spec.outputs();
  switch (loss) {
    case Loss::nll:
      if (data.labels.empty()) fail(role, " dataset '", data.name, "' has no class labels");
      if (data.classes > C)
        fail(role, " dataset '", data.name, "' has ", data.classes,
             " classes but the network has only ", C, " outputs");
      break;
    case Loss::bce:
      if (C != 1) fail("bce loss needs a network with 1 output, this one has ", C);
      if (data.labels.empty() && data.targets.empty())
        fail(role, " dataset '", data.name, "' has neither labels nor targets");
      for (size_t i = 0; i < data.labels.size(); ++i)
        if (data.labels[i] != 0 && data.labels[i] != 1)
          fail(role, " dataset '", data.name, "': bce needs labels 0 or 1, sample ", i, " has ",
               data.labels[i]);
      break;
    case Loss::mse:
      if (data.targets.empty()) fail(role, " dataset '", data.name, "' has no regression targets");
      if (data.target_size != C)
        fail(role, " dataset '", data.name, "' has ", data.target_size,
             " targets per sample, the network has ", C, " outputs");
      break;
  }
}

// A batch copied out of the dataset in the order given by `order`.
struct Batch {
  int size = 0;
  std::vector<float> x;
  std::vector<int> labels;
  std::vector<float> targets;
};

void gather(const Dataset& data, const std::vector<int>& order, int first, int n, Batch& out) {
  const size_t F = size_t(data.features);
  out.size = n;
  out.x.resize(size_t(n) * F);
  out.labels.clear();
  out.targets.clear();
  for (int k = 0; k < n; ++k) {
    const int s = order[first + k];
    std::copy_n(data.x.begin() + size_t(s) * F, F, out.x.begin() + size_t(k) * F);
    if (!data.labels.empty()) out.labels.push_back(data.labels[s]);
    for (int j = 0; j < data.target_size; ++j)
      out.targets.push_back(data.targets[size_t(s) * data.target_size + j]);
  }
}

struct BatchLoss {
  LossValue value;
  int correct = 0;  // classification only
};

BatchLoss batch_loss(Loss loss, const std::vector<float>& logits, const Batch& batch, int C) {
  BatchLoss out;
  if (loss == Loss::nll) {
    out.value = nll_log_softmax(logits, batch.size, C, batch.labels);
    for (int b = 0; b < batch.size; ++b) {
      const float* z = logits.data() + size_t(b) * C;
      out.correct += int(std::max_element(z, z + C) - z) == batch.labels[b];
    }
  } else if (loss == Loss::bce) {
    std::vector<float> y = batch.targets;
    if (y.empty()) y.assign(batch.labels.begin(), batch.labels.end());
    out.value = bce_with_logits(logits, y);
    for (int b = 0; b < batch.size; ++b) out.correct += (logits[b] > 0) == (y[b] > 0.5f);
  } else {
    out.value = mse(logits, batch.targets);
  }
  return out;
}

// A shuffled order of n samples for one epoch: Fisher-Yates driven by splitmix64, the same on
// every platform (std::shuffle's algorithm is implementation-defined).
std::vector<int> epoch_order(int n, uint64_t seed, int epoch, bool shuffle) {
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  if (!shuffle) return order;
  uint64_t state = detail::stream_key(seed, 0x73687566ull + uint64_t(epoch) * 0x10000ull);
  for (int i = n - 1; i > 0; --i) {
    state = detail::stream_key(state, uint64_t(i));
    const int j = int(state % uint64_t(i + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

}  // namespace

namespace {
Input static_input(Input::Kind encoding, const std::vector<float>& x, int n) {
  if (encoding == Input::Kind::sequence)
    fail("the trainer feeds static datasets: use the noisy or repeated encoding, not sequence");
  return encoding == Input::Kind::noisy ? Input::noisy(x, n) : Input::repeated(x, n);
}
}  // namespace

Evaluation evaluate(Network& net, const Dataset& data, Loss loss, int batch_size,
                    Input::Kind encoding, long long noise_pass) {
  if (batch_size < 1) fail("evaluate: batch size must be >= 1, got ", batch_size);
  check_fit(net, data, loss, "evaluation");
  const int C = net.spec().outputs();
  const auto t0 = Clock::now();
  Evaluation ev;
  ev.count = data.count;
  ev.outputs.resize(size_t(data.count) * C);
  std::vector<int> order(data.count);
  std::iota(order.begin(), order.end(), 0);
  Batch batch;
  double loss_sum = 0;
  long long correct = 0;
  ForwardOptions inference;
  inference.training = false;
  for (int first = 0; first < data.count; first += batch_size) {
    const int n = std::min(batch_size, data.count - first);
    gather(data, order, first, n, batch);
    inference.use_noise_pass = noise_pass >= 0;
    inference.noise_pass = uint64_t(noise_pass) + uint64_t(first / batch_size);
    ForwardPass pass = net.forward(static_input(encoding, batch.x, n), inference);
    const BatchLoss bl = batch_loss(loss, pass.logits(), batch, C);
    loss_sum += bl.value.value * n;
    correct += bl.correct;
    std::copy(pass.logits().begin(), pass.logits().end(), ev.outputs.begin() + size_t(first) * C);
  }
  ev.loss = loss_sum / data.count;
  ev.accuracy = loss == Loss::mse ? 0.0 : double(correct) / data.count;
  if (loss == Loss::nll) {
    ev.predictions.resize(data.count);
    for (int s = 0; s < data.count; ++s) {
      const float* z = ev.outputs.data() + size_t(s) * C;
      ev.predictions[s] = int(std::max_element(z, z + C) - z);
    }
  } else if (loss == Loss::bce) {
    ev.predictions.resize(data.count);
    for (int s = 0; s < data.count; ++s) ev.predictions[s] = ev.outputs[s] > 0 ? 1 : 0;
  }
  ev.seconds = seconds_since(t0);
  return ev;
}

TrainResult train(Network& net, const Dataset& data, const TrainOptions& options,
                  const Dataset* eval) {
  if (options.epochs < 1) fail("train: epochs must be >= 1, got ", options.epochs);
  if (options.batch_size < 1) fail("train: batch size must be >= 1, got ", options.batch_size);
  check_fit(net, data, options.loss, "training");
  if (eval) check_fit(net, *eval, options.loss, "evaluation");

  const int C = net.spec().outputs();
  const int batches = (data.count + options.batch_size - 1) / options.batch_size;
  const double base_lr = learning_rate(options.optimizer);
  Optimizer optimizer(net, options.optimizer);
  TrainResult result;
  Batch batch;
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    if (options.fresh_optimizer_each_epoch) optimizer.reset();
    optimizer.set_lr(options.schedule.lr_at(epoch, base_lr));
    const std::vector<int> order = epoch_order(data.count, options.seed, epoch, options.shuffle);
    EpochStats stats;
    stats.epoch = epoch + 1;
    stats.epochs = options.epochs;
    stats.lr = optimizer.lr();
    const auto t0 = Clock::now();
    double loss_sum = 0;
    long long correct = 0;
    int done = 0;
    for (int k = 0; k < batches; ++k) {
      const int first = k * options.batch_size;
      const int n = std::min(options.batch_size, data.count - first);
      gather(data, order, first, n, batch);
      ForwardPass pass = net.forward(static_input(options.encoding, batch.x, n));
      const BatchLoss bl = batch_loss(options.loss, pass.logits(), batch, C);
      const double batch_loss_value = bl.value.value + pass.regularization_loss();
      if (!std::isfinite(batch_loss_value))
        fail("train: the loss became ", batch_loss_value, " at epoch ", epoch + 1, ", batch ",
             k + 1, " (try a lower learning rate)");
      net.backward(pass, bl.value.grad);
      optimizer.step();
      loss_sum += batch_loss_value * n;
      correct += bl.correct;
      done += n;
      if (options.on_batch) {
        BatchStats b;
        b.epoch = epoch + 1;
        b.epochs = options.epochs;
        b.batch = k + 1;
        b.batches = batches;
        b.samples_done = done;
        b.samples = data.count;
        b.loss = batch_loss_value;
        b.accuracy = double(bl.correct) / n;
        b.elapsed_seconds = seconds_since(t0);
        b.samples_per_second = done / std::max(1e-9, b.elapsed_seconds);
        options.on_batch(b);
      }
    }
    stats.train_seconds = seconds_since(t0);
    stats.samples_per_second = data.count / std::max(1e-9, stats.train_seconds);
    stats.train_loss = loss_sum / data.count;
    stats.train_accuracy = options.loss == Loss::mse ? 0.0 : double(correct) / data.count;
    result.train_seconds += stats.train_seconds;
    result.samples += data.count;
    if (eval) {
      stats.evaluated = true;
      stats.eval = evaluate(net, *eval, options.loss, options.eval_batch_size, options.encoding);
    }
    if (options.on_epoch) options.on_epoch(stats);
    result.epochs.push_back(std::move(stats));
  }
  result.samples_per_second = result.samples / std::max(1e-9, result.train_seconds);
  return result;
}

}  // namespace nmsnn
