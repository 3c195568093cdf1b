// training/train_step.cpp — StepLoop, and the host path of the training step (EngineImpl's
// defaults, which the cpu engine runs): forward and backward (EngineImpl::forward_backward, the
// loss's gradient taken row by row), the loss on the host, the update, with the trainer's
// divergence checks, giving exactly the step-by-step API's parameters. A step that halts has
// computed its gradients but applies none of them.
#include "nmsnn/train_step.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/finite.hpp"
#include "network/engine.hpp"
#include "step_sums.cuh"
#include "training/loss_math.hpp"
#include "nmsnn/error.hpp"
#include "nmsnn/limits.hpp"

namespace nmsnn {

using detail::fail;

namespace {

// A value for a message: "nan" whatever its sign bit (streams print "-nan").
std::string show(double v) {
  if (std::isnan(v)) return "nan";
  std::ostringstream out;
  out << v;
  return out.str();
}

// What step() and keep_data() check of the labels or targets of B rows for `loss` (C outputs).
void check_targets(const char* what, Loss loss, int B, int C, const int* labels,
                   const float* targets) {
  switch (loss) {
    case Loss::nll:
      if (!labels) fail(what, ": nll needs labels");
      for (int b = 0; b < B; ++b)
        if (labels[b] < 0 || labels[b] >= C)
          fail(what, ": label[", b, "] = ", labels[b], " is outside [0, ", C, ")");
      break;
    case Loss::bce:
      if (targets) {
        for (int b = 0; b < B; ++b)
          if (!(targets[b] >= 0 && targets[b] <= 1))
            fail(what, ": bce target[", b, "] = ", targets[b], " is outside [0, 1]");
      } else if (labels) {
        for (int b = 0; b < B; ++b)
          if (labels[b] != 0 && labels[b] != 1)
            fail(what, ": bce label[", b, "] = ", labels[b], " is not 0 or 1");
      } else {
        fail(what, ": bce needs labels or targets");
      }
      break;
    case Loss::mse:
      if (!targets) fail(what, ": mse needs targets");
      for (size_t i = 0; i < size_t(B) * C; ++i)
        if (!std::isfinite(targets[i]))
          fail(what, ": mse target[", i / C, ", ", i % C, "] is ", targets[i], ", must be finite");
      break;
  }
}

}  // namespace

std::string StepReport::reason(double factor) const {
  std::ostringstream why;
  switch (halt) {
    case HaltReason::none: return "";
    case HaltReason::outputs_not_finite:
      why << "the network's outputs became " << show(halt_value);
      break;
    case HaltReason::loss_not_finite:
      why << "the loss became " << show(halt_value);
      if (std::isfinite(first_loss)) why << " (it was " << first_loss << " at the first batch)";
      break;
    case HaltReason::loss_grew:
      why << "the loss grew to " << halt_value << ", more than " << factor << " times its "
          << first_loss << " at the first batch";
      break;
    case HaltReason::parameter_not_finite:
      why << "the update made a parameter not finite (" << parameter << " is " << show(halt_value)
          << ")";
      break;
  }
  return why.str();
}

// ---- the host path -------------------------------------------------------------------------------

namespace detail {

namespace {

struct HostStepState : StepState {
  Loss loss = Loss::nll;
  StepGuard guard;
  std::shared_ptr<Communicator> comm;       // null: one process
  std::vector<ParameterInfo> layout;        // the parameters' names and sizes
  StepReport report;                        // what the next read returns
  std::vector<std::vector<float>> good;     // the last parameters whose loss passed
  std::vector<std::vector<float>> current;  // the parameters after the last update
  bool halted = false;
};

void read_all(const EngineImpl& engine, const std::vector<ParameterInfo>& layout,
              std::vector<std::vector<float>>& out) {
  out.resize(layout.size());
  for (size_t i = 0; i < layout.size(); ++i) {
    out[i].resize(layout[i].size);
    engine.read_parameter(i, out[i].data());
  }
}

// Rows [first, first + count) of a noisy or repeated input (both [B, I] row-major).
Input rows_of(const Input& input, int first, int count) {
  const size_t width = input.count / size_t(input.batch);
  Input out = input;
  out.data = input.data + size_t(first) * width;
  out.count = size_t(count) * width;
  out.batch = count;
  return out;
}

// What this rank's rows of a step came to, to be summed over the ranks: its share of the loss
// and of the correct count, and per rank whether its outputs were finite (with the first value
// that was not), so that every rank takes the same decision from the same sums. The layout is
// the device step's (step_sums.cuh).
struct StepSums {
  explicit StepSums(int ranks) : values(kernels::step_sums::count(ranks), 0.0) {}
  std::vector<double> values;
  double& loss() { return values[kernels::step_sums::loss]; }
  double& correct() { return values[kernels::step_sums::correct]; }
  double& bad_outputs(int rank) { return values[kernels::step_sums::bad_outputs(rank)]; }
  double& bad_value(int rank) { return values[kernels::step_sums::bad_value(rank)]; }
};

}  // namespace

std::shared_ptr<ForwardState> EngineImpl::forward_backward(const Input& input, NoiseKey noise,
                                                           std::vector<uint32_t> row_keys,
                                                           const RowGrad& row_grad) {
  ForwardOptions options;
  options.training = true;
  std::shared_ptr<ForwardState> pass = forward(input, noise, std::move(row_keys), options);
  const int C = pass->outputs;
  std::vector<float> dlogits(pass->logits.size());
  for (int b = 0; b < input.batch; ++b)
    row_grad(b, pass->logits.data() + size_t(b) * C, dlogits.data() + size_t(b) * C);
  backward(*pass, dlogits.data(), nullptr);
  return pass;
}

std::unique_ptr<StepState> EngineImpl::make_step_state(Loss loss, const StepOptions& options) {
  auto s = std::make_unique<HostStepState>();
  s->loss = loss;
  s->guard = options.guard;
  s->comm = options.communicator;
  s->layout = parameter_layout(spec());
  read_all(*this, s->layout, s->current);
  s->good = s->current;
  return s;
}

void EngineImpl::train_step(StepState& base, const Input& input, NoiseKey noise,
                            const int* labels, const float* targets, OptimizerState& optimizer,
                            const OptimizerSpec& spec, int64_t step) {
  auto& s = dynamic_cast<HostStepState&>(base);
  if (s.halted) return;  // the steps queued after a halt do nothing, as on the device
  const int B = input.batch, C = this->spec().outputs();
  const int rank = s.comm ? s.comm->rank() : 0, ranks = s.comm ? s.comm->size() : 1;
  // This rank's rows of the batch; their noise is keyed by their index in the whole batch.
  const Shard shard = shard_of(B, rank, ranks);
  std::vector<uint32_t> row_keys;
  if (s.comm)
    for (int b = 0; b < shard.count; ++b) row_keys.push_back(uint32_t(shard.first + b));
  const int* my_labels = labels ? labels + shard.first : nullptr;
  const float* my_targets =
      targets ? targets + size_t(shard.first) * (s.loss == Loss::mse ? size_t(C) : 1) : nullptr;

  const int index = int(s.report.steps.size());
  auto halt = [&](HaltReason reason, double value) {
    s.halted = true;
    s.report.halt = reason;
    s.report.halt_step = index;
    s.report.halt_value = value;
    for (size_t i = 0; i < s.good.size(); ++i) write_parameter(i, s.good[i].data());
  };

  std::shared_ptr<ForwardState> pass;
  StepSums sums(ranks);
  LossValue value;
  if (shard.count > 0) {
    const int n = shard.count;
    // Row b's dL/dlogits, as the batch losses below compute it (loss_math.hpp's rows, in double,
    // over the mean's n or n*C terms). Non-finite logits give non-finite gradients here and a
    // halt (or the loss function's error) below, before any update.
    auto row_grad = [&, n, C](int b, const float* z, float* g) {
      const std::vector<double> zv(z, z + C);
      std::vector<double> gv(static_cast<size_t>(C));
      const double* zp = zv.data();
      double* gp = gv.data();
      if (s.loss == Loss::nll) {
        nll_row(zp, C, my_labels[b], double(n), gp);
      } else if (s.loss == Loss::bce) {
        const double y = my_targets ? double(my_targets[b]) : double(float(my_labels[b]));
        bce_row(zp[0], y, double(n), gp);
      } else {
        const float* y = my_targets + size_t(b) * C;
        for (int c = 0; c < C; ++c) mse_row(zp[c], double(y[c]), double(n) * C, gp + c);
      }
      for (int c = 0; c < C; ++c) g[c] = float(gp[c]);
    };
    pass = forward_backward(rows_of(input, shard.first, shard.count), noise, std::move(row_keys),
                            row_grad);
    const std::vector<float>& logits = pass->logits;
    if (s.guard.enabled)
      for (float z : logits)
        if (!std::isfinite(z)) {
          sums.bad_outputs(rank) = 1;
          sums.bad_value(rank) = z;
          break;
        }
    if (sums.bad_outputs(rank) == 0) {
      int correct = 0;
      if (s.loss == Loss::nll) {
        const std::vector<int> y(my_labels, my_labels + n);
        value = nmsnn::nll_log_softmax(logits, n, C, y);
        for (int b = 0; b < n; ++b) {
          const float* z = logits.data() + size_t(b) * C;
          correct += int(std::max_element(z, z + C) - z) == y[size_t(b)];
        }
      } else if (s.loss == Loss::bce) {
        std::vector<float> y = my_targets ? std::vector<float>(my_targets, my_targets + n)
                                          : std::vector<float>(my_labels, my_labels + n);
        value = nmsnn::bce_with_logits(logits, y);
        for (int b = 0; b < n; ++b) correct += (logits[size_t(b)] > 0) == (y[size_t(b)] > 0.5f);
      } else {
        value = nmsnn::mse(logits, std::vector<float>(my_targets, my_targets + size_t(n) * C));
      }
      // One process: the loss as it is. Several: this rank's rows' share of the batch mean.
      const double loss = value.value + pass->regularization;
      sums.loss() = s.comm ? loss * n / B : loss;
      sums.correct() = correct;
    }
  }
  if (s.comm) s.comm->allreduce_sum(sums.values.data(), sums.values.size());
  for (int r = 0; r < ranks; ++r)
    if (sums.bad_outputs(r) != 0) return halt(HaltReason::outputs_not_finite, sums.bad_value(r));

  StepRecord record;
  record.batch = B;
  record.loss = sums.loss();
  record.correct = int(sums.correct());
  if (s.guard.enabled) {
    const double first = s.guard.first_loss;
    if (!std::isfinite(record.loss)) return halt(HaltReason::loss_not_finite, record.loss);
    if (std::isfinite(first) && record.loss > s.guard.factor * std::max(first, 1.0))
      return halt(HaltReason::loss_grew, record.loss);
  }
  if (!std::isfinite(s.guard.first_loss)) s.guard.first_loss = record.loss;
  std::swap(s.good, s.current);  // these parameters passed

  // Each rank's gradient is the mean over its rows: weighted by its share, the sum over the
  // ranks is the mean over the batch, as one process would compute it.
  if (s.comm) reduce_gradients(*s.comm, float(double(shard.count) / B));
  optimizer_step(optimizer, spec, step);
  read_all(*this, s.layout, s.current);
  if (s.guard.enabled) {
    for (size_t i = 0; i < s.current.size(); ++i)
      for (size_t k = 0; k < s.current[i].size(); ++k)
        if (!std::isfinite(s.current[i][k])) {
          s.report.parameter = s.layout[i].name + "[" + std::to_string(k) + "]";
          return halt(HaltReason::parameter_not_finite, s.current[i][k]);
        }
  }
  s.report.steps.push_back(record);
}

StepReport EngineImpl::read_steps(StepState& base) {
  auto& s = dynamic_cast<HostStepState&>(base);
  StepReport out = std::move(s.report);
  out.first_loss = s.guard.first_loss;
  s.report = StepReport();
  // After a halt the loop starts again from the restored parameters.
  if (s.halted) {
    read_all(*this, s.layout, s.current);
    s.good = s.current;
    s.halted = false;
  }
  return out;
}

bool EngineImpl::keep_step_data(StepState&, const StepData&) { return false; }

void EngineImpl::train_step_rows(StepState&, const int*, int, NoiseKey, OptimizerState&,
                                 const OptimizerSpec&, int64_t) {
  fail("internal: train_step_rows on an engine that keeps no training set");
}

}  // namespace detail

// ---- StepLoop ------------------------------------------------------------------------------------

StepLoop::StepLoop(Network& network, Optimizer& optimizer, Loss loss, const StepOptions& options)
    : network_(&network), optimizer_(&optimizer), loss_(loss), options_(options) {
  if (optimizer.network_ != &network)
    fail("StepLoop: the optimizer was made for another network");
  if (!(options.guard.factor > 0))
    fail("StepLoop: guard factor must be > 0, got ", options.guard.factor);
  const int C = network.spec().outputs();
  if (loss == Loss::bce && C != 1) fail("bce loss needs a network with 1 output, this one has ", C);
  state_ = network.engine_impl().make_step_state(loss, options);
  passes_at_read_ = network.noise_passes();
  optimizer_steps_at_read_ = optimizer.steps_;
}

StepLoop::~StepLoop() = default;

void StepLoop::step(const Input& input, const int* labels, const float* targets) {
  if (input.kind == Input::Kind::sequence)
    fail("StepLoop::step: sequence inputs are not supported; use noisy or repeated");
  ForwardOptions training;
  training.training = true;
  network_->check_input(input, training, "StepLoop::step");
  check_targets("StepLoop::step", loss_, input.batch, network_->spec().outputs(), labels,
                targets);
  const NoiseKey key{network_->seed(), network_->passes_};
  ++network_->passes_;
  ++optimizer_->steps_;
  ++pending_;
  network_->engine_impl().train_step(*state_, input, key, labels,
                                     loss_ == Loss::nll ? nullptr : targets, *optimizer_->state_,
                                     optimizer_->spec_, optimizer_->steps_);
}

bool StepLoop::keep_data(const StepData& data) {
  const char* what = "StepLoop::keep_data";
  data_ = StepData();
  data_on_device_ = false;
  if (data.kind == Input::Kind::sequence)
    fail(what, ": sequence inputs are not supported; use noisy or repeated");
  detail::checked_range((std::string(what) + ": count").c_str(), data.count, 1, kMaxSamples);
  if (!data.x) fail(what, ": x is null");
  const NetworkSpec& spec = network_->spec();
  const size_t I = size_t(spec.inputs), values = size_t(data.count) * I;
  const size_t k = detail::first_non_finite(data.x, values);
  if (k != values)
    fail(what, ": x[", k / I, ", ", k % I, "] is ", data.x[k], ": inputs must be finite");
  check_targets(what, loss_, data.count, spec.outputs(), data.labels,
                loss_ == Loss::nll ? nullptr : data.targets);
  data_on_device_ = network_->engine_impl().keep_step_data(*state_, data);
  data_ = data;
  return data_on_device_;
}

void StepLoop::step_rows(const int* rows, int B) {
  const char* what = "StepLoop::step_rows";
  if (data_.count == 0) fail(what, ": no data kept; call keep_data first");
  detail::checked_range((std::string(what) + ": batch").c_str(), B, 1, kMaxBatchSize);
  if (!rows) fail(what, ": rows is null");
  for (int b = 0; b < B; ++b)
    if (rows[b] < 0 || rows[b] >= data_.count)
      fail(what, ": rows[", b, "] = ", rows[b], " is outside the kept data's [0, ", data_.count,
           ")");
  const int C = network_->spec().outputs();
  const size_t I = size_t(network_->spec().inputs);
  const bool labels = data_.labels && (loss_ == Loss::nll || !data_.targets);
  if (!data_on_device_) {
    // The batch on the host, and step()'s path (its checks then pass: the data's did).
    const size_t width = loss_ == Loss::mse ? size_t(C) : 1;
    rows_x_.resize(size_t(B) * I);
    rows_labels_.clear();
    rows_targets_.clear();
    for (int b = 0; b < B; ++b) {
      const size_t r = size_t(rows[b]);
      std::copy_n(data_.x + r * I, I, rows_x_.begin() + size_t(b) * I);
      if (labels) rows_labels_.push_back(data_.labels[r]);
      else rows_targets_.insert(rows_targets_.end(), data_.targets + r * width,
                                data_.targets + (r + 1) * width);
    }
    const Input input{data_.kind, rows_x_.data(), rows_x_.size(), B};
    return step(input, labels ? rows_labels_.data() : nullptr,
                labels ? nullptr : rows_targets_.data());
  }
  ForwardOptions training;
  training.training = true;
  network_->check_pass_memory(B, training);
  const NoiseKey key{network_->seed(), network_->passes_};
  ++network_->passes_;
  ++optimizer_->steps_;
  ++pending_;
  network_->engine_impl().train_step_rows(*state_, rows, B, key, *optimizer_->state_,
                                          optimizer_->spec_, optimizer_->steps_);
}

StepReport StepLoop::read() {
  StepReport report = network_->engine_impl().read_steps(*state_);
  if (report.halt != HaltReason::none) {
    // Where a run that stopped at the halting step would stand: its forward drew a noise pass;
    // its update counts only when it was the update that failed.
    const int done = report.halt_step + 1;
    network_->passes_ = passes_at_read_ + uint64_t(done);
    optimizer_->steps_ = optimizer_steps_at_read_ + report.halt_step +
                         (report.halt == HaltReason::parameter_not_finite ? 1 : 0);
  }
  options_.guard.first_loss = report.first_loss;
  pending_ = 0;
  passes_at_read_ = network_->passes_;
  optimizer_steps_at_read_ = optimizer_->steps_;
  return report;
}

}  // namespace nmsnn
