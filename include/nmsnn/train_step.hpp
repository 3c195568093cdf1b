// nmsnn/train_step.hpp — the whole training step as one call: forward, the loss and its gradient,
// backward and the optimiser's update, with the trainer's divergence checks, on the engine.
//
//   nmsnn::Optimizer opt(net, nmsnn::Adam{2e-3});
//   nmsnn::StepLoop loop(net, opt, nmsnn::Loss::nll);
//   for (each batch) loop.step(nmsnn::Input::noisy(x, n), labels.data());
//   nmsnn::StepReport r = loop.read();  // the steps' losses and accuracies since the last read
//
// Or on a training set kept by the loop (on the device, for the cuda engine), each step naming
// its rows: what nmsnn::train does.
//
//   loop.keep_data({nmsnn::Input::Kind::noisy, data.x.data(), data.count, data.labels.data()});
//   for (each batch) loop.step_rows(order.data() + first, B);
//
// On the cuda engine a step is queued on the engine's stream and step() returns at once: the
// loss is computed on the device and the steps' records stay there until read(), the only call
// that waits for the device. With `graphs`, the device work of a step is captured into a CUDA
// graph once per batch size and replayed. On the cpu engine a step runs when it is called, as
// Network::forward/backward and Optimizer::step would in sequence (the same arithmetic).
//
// Divergence (what nmsnn::train reports as TrainingDiverged): a step whose outputs or loss are
// not finite, or whose loss exceeds `factor` times max(first loss, 1), and an update that makes
// a parameter not finite, halt the loop. Steps queued after a halt do nothing; read() then
// reports it, with the network's parameters back at the last ones whose loss passed the checks
// and its noise counter and the optimiser's step count where they were after the halting step.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nmsnn/communicator.hpp"
#include "nmsnn/loss.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/optimizer.hpp"

namespace nmsnn {

namespace detail {
struct StepState;
}

struct StepGuard {
  bool enabled = true;
  double factor = 1e6;  // a loss above factor * max(first loss, 1) is divergence
  // The loss of the run's first step (a resumed run passes its own), or NaN: the next step's.
  double first_loss = std::nan("");
};

struct StepOptions {
  StepGuard guard;
  // cuda engine: capture each batch size's step into a CUDA graph and replay it (ignored by the
  // cpu engine). Off by default until it has been measured on a GPU.
  bool graphs = false;
  // Data parallelism (communicator.hpp): with more than one rank, every rank's step() is given
  // the same global batch and computes the rows shard_of() gives it; the gradients are summed
  // over the ranks, weighted by each rank's share, so every rank applies the update one process
  // would for the whole batch. The noise masks are keyed by the row's index in the global batch.
  // The loss statistics are summed too, so every rank records the batch's loss and takes the
  // same guard decision. On the cuda engine with a communicator that sums device memory (NCCL)
  // the step stays on the device: both sums are queued on the engine's stream, inside the step
  // (and its graph, with `graphs`). With any other communicator, and on the cpu engine, steps run
  // on the host path. Null: one process. A communicator of one rank takes the same path as
  // several (on the cpu engine with the same bits as none), which checks it on one machine or GPU.
  std::shared_ptr<Communicator> communicator;
};

// A training set for StepLoop::keep_data: x [count, inputs] row-major, fed as `kind` (noisy or
// repeated), with labels [count] (nll; bce when no targets are given) or targets ([count *
// outputs] for mse, [count] for bce). The caller keeps the arrays alive and unchanged while the
// loop steps on them.
struct StepData {
  Input::Kind kind = Input::Kind::noisy;
  const float* x = nullptr;
  int count = 0;
  const int* labels = nullptr;
  const float* targets = nullptr;
};

// One completed step (of the global batch, in a data-parallel run).
struct StepRecord {
  int batch = 0;       // samples
  double loss = 0;     // the batch's mean loss plus its regularization terms
  int correct = 0;     // nll and bce: samples predicted right; mse: 0
};

enum class HaltReason { none, outputs_not_finite, loss_not_finite, loss_grew, parameter_not_finite };

struct StepReport {
  std::vector<StepRecord> steps;  // completed steps since the last read, in order
  HaltReason halt = HaltReason::none;
  // When halted: the halting step's index among the steps of this read (the records before it
  // are complete), the offending output, loss or parameter value, and for parameter_not_finite
  // which parameter ("layers.0.weight[12]").
  int halt_step = -1;
  double halt_value = 0;
  std::string parameter;
  double first_loss = std::nan("");  // the guard's first loss as it stands
  // "the loss grew to 3e+07, more than 1e+06 times its 2.3 at the first batch", or "".
  std::string reason(double factor) const;
};

class StepLoop {
 public:
  // Checks that `optimizer` belongs to `network`. The loop's device buffers are made here.
  StepLoop(Network& network, Optimizer& optimizer, Loss loss, const StepOptions& options = {});
  ~StepLoop();
  StepLoop(const StepLoop&) = delete;
  StepLoop& operator=(const StepLoop&) = delete;

  // One step on `input` (noisy or repeated, batch B) with a fresh noise pass, as
  // Network::forward would draw it. labels: [B] host memory for nll (in [0, C)) and bce (0 or 1);
  // targets: [B * C] host memory for mse, and for bce in place of labels (in [0, 1]). Checked here;
  // the caller may reuse its buffers when step() returns.
  void step(const Input& input, const int* labels, const float* targets = nullptr);
  // Keeps a training set for step_rows(), checked here once (finite x, labels and targets as
  // step() checks them) instead of at every step. The cuda engine copies it to device memory
  // when it takes at most half of the device's free memory (and its step runs on the device):
  // each step then sends only its rows' indices, and a kernel gathers the rows where the step
  // runs. Returns whether it did (data_on_device()); otherwise step_rows gathers the rows on the
  // host and takes step()'s path, with the same results. Replaces any data kept before.
  bool keep_data(const StepData& data);
  bool data_on_device() const { return data_on_device_; }
  // One step on rows rows[0..B) of the kept data, in that order: the same step, noise pass and
  // results as step() on those rows gathered into a batch. The caller may reuse `rows` at return.
  void step_rows(const int* rows, int B);
  // Steps queued since the last read().
  int pending() const { return pending_; }
  // Waits for the queued steps and returns their records (see above for a halt).
  StepReport read();

  Loss loss() const { return loss_; }
  const StepOptions& options() const { return options_; }

 private:
  Network* network_;
  Optimizer* optimizer_;
  Loss loss_;
  StepOptions options_;
  std::unique_ptr<detail::StepState> state_;
  StepData data_;                // what keep_data kept (count 0: nothing)
  bool data_on_device_ = false;
  std::vector<float> rows_x_, rows_targets_;  // step_rows' batch, gathered on the host
  std::vector<int> rows_labels_;
  int pending_ = 0;
  uint64_t passes_at_read_ = 0;
  int64_t optimizer_steps_at_read_ = 0;
};

}  // namespace nmsnn
