// training/trainer.cpp — mini-batch training and evaluation over an in-memory Dataset.
#include "nmsnn/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <future>
#include <numeric>
#include <sstream>

#include "core/random_stream.hpp"
#include "nmsnn/error.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/train_step.hpp"

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
                    Input::Kind encoding, long long noise_pass, Communicator* comm) {
  std::string error;
  try {
    if (batch_size < 1) fail("evaluate: batch size must be >= 1, got ", batch_size);
    check_fit(net, data, loss, "evaluation");
  } catch (const Error& e) {
    if (!comm) throw;
    error = e.what();
  }
  if (comm) comm->check(error);
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
  // One batch's outputs; a rank fills its own rows and leaves the others zero for the sum.
  std::vector<float> logits;
  for (int first = 0; first < data.count; first += batch_size) {
    const int n = std::min(batch_size, data.count - first);
    gather(data, order, first, n, batch);
    inference.use_noise_pass = noise_pass >= 0;
    inference.noise_pass = uint64_t(noise_pass) + uint64_t(first / batch_size);
    const Shard shard = comm ? shard_of(n, comm->rank(), comm->size()) : Shard{0, n};
    logits.assign(size_t(n) * C, 0.0f);
    if (shard.count > 0) {
      inference.first_row = shard.first;
      const size_t F = size_t(data.features);
      const std::vector<float> x(batch.x.begin() + size_t(shard.first) * F,
                                 batch.x.begin() + size_t(shard.first + shard.count) * F);
      ForwardPass pass = net.forward(static_input(encoding, x, shard.count), inference);
      std::copy(pass.logits().begin(), pass.logits().end(),
                logits.begin() + size_t(shard.first) * C);
    } else if (!inference.use_noise_pass) {
      net.set_noise_passes(net.noise_passes() + 1);  // the pass the other ranks draw
    }
    if (comm) comm->allreduce_sum(logits.data(), logits.size());
    // Finite parameters can still overflow the outputs on other data: say so plainly rather
    // than through the loss function's input check.
    for (size_t i = 0; i < logits.size(); ++i)
      if (!std::isfinite(logits[i]))
        fail("evaluation on ", detail::quote(data.name), ": the network's output for sample ",
             first + int(i / size_t(C)), " is not finite (", logits[i],
             "): its parameters are too large for this data (a lower learning rate helps)");
    const BatchLoss bl = batch_loss(loss, logits, batch, C);
    loss_sum += bl.value.value * n;
    correct += bl.correct;
    std::copy(logits.begin(), logits.end(), ev.outputs.begin() + size_t(first) * C);
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

namespace {

// FNV-1a over bytes, continued from `h`.
uint32_t fnv1a(const void* data, size_t bytes, uint32_t h = 2166136261u) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 16777619u;
  return h;
}

// Collective: the first rank whose `value` differs from rank 0's, or -1. Each rank's value goes in
// its own slots as two 32-bit halves (exact in a double), zeros elsewhere, so the sum gathers them.
int first_differing_rank(Communicator& comm, uint64_t value) {
  std::vector<double> halves(2 * size_t(comm.size()), 0.0);
  halves[2 * size_t(comm.rank())] = double(value >> 32);
  halves[2 * size_t(comm.rank()) + 1] = double(value & 0xffffffffu);
  comm.allreduce_sum(halves.data(), halves.size());
  for (size_t r = 1; r < size_t(comm.size()); ++r)
    if (halves[2 * r] != halves[0] || halves[2 * r + 1] != halves[1]) return int(r);
  return -1;
}

// Collective: every rank holds the same dataset, which each reads itself.
void check_same_data(Communicator& comm, const Dataset& data, const char* role) {
  const int r = first_differing_rank(comm, data.digest());
  if (r >= 0) {
    std::ostringstream out;
    out << "rank " << r << "'s " << role << " dataset " << detail::quote(data.name)
        << " differs from rank 0's: every rank must read the same data (the same files, the same "
           "preprocessing)";
    throw CollectiveError(out.str());
  }
}

}  // namespace

void check_same_parameters(Communicator& comm, const Network& net, const std::string& where) {
  uint32_t h = 2166136261u;
  for (const ParameterInfo& p : net.parameters()) {
    const std::vector<float> v = net.parameter(p.name);
    h = fnv1a(v.data(), v.size() * sizeof(float), h);
  }
  const int r = first_differing_rank(comm, h);
  if (r >= 0)
    throw CollectiveError("rank " + std::to_string(r) + "'s parameters differ from rank 0's " +
                          where +
                          ": every rank must build the same network from the same seed (or load "
                          "the same model)");
}

TrainingDiverged::TrainingDiverged(int epoch_, int batch_, double lr_, const std::string& reason_)
    : Error([&] {
        std::ostringstream out;
        out << "training diverged at epoch " << epoch_ << ", batch " << batch_ << ": " << reason_
            << "; lower the learning rate (" << lr_ << ")";
        return out.str();
      }()),
      epoch(epoch_),
      batch(batch_),
      lr(lr_),
      reason(reason_) {}

namespace {

// Every parameter of the network, in the public layout.
void read_parameters(const Network& net, std::vector<NamedTensor>& out) {
  const std::vector<ParameterInfo>& params = net.parameters();
  out.resize(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    out[i].name = params[i].name;
    out[i].shape.assign(params[i].shape.begin(), params[i].shape.end());
    out[i].data = net.parameter(params[i].name);
  }
}

void write_parameters(Network& net, const std::vector<NamedTensor>& values) {
  for (const NamedTensor& t : values) net.set_parameter(t.name, t.data);
}

// A value for a message: "nan" whatever its sign bit (streams print "-nan").
std::string show(double v) {
  if (std::isnan(v)) return "nan";
  std::ostringstream out;
  out << v;
  return out.str();
}

// "" when every value is finite, else what is not: "layers.0.weight[12] is inf".
std::string non_finite(const std::vector<NamedTensor>& params) {
  for (const NamedTensor& t : params)
    for (size_t i = 0; i < t.data.size(); ++i)
      if (!std::isfinite(t.data[i]))
        return t.name + "[" + std::to_string(i) + "] is " + show(t.data[i]);
  return "";
}

// Checks that a resume state belongs to this network, data and batch size.
void check_resume(const Network& net, const TrainState& s, int epochs, int batches,
                  int batch_size, int count) {
  if (s.epoch < 0 || s.epoch > epochs)
    fail("resume: the state is at epoch ", s.epoch + 1, ", the run has ", epochs);
  if (s.batch < 0 || s.batch >= batches || (s.epoch == epochs && s.batch != 0))
    fail("resume: the state is at batch ", s.batch + 1, ", an epoch has ", batches);
  if (s.samples_done != std::min(count, s.batch * batch_size))
    fail("resume: the state has ", s.samples_done, " samples done after ", s.batch,
         " batches of ", batch_size, " (a different batch size or dataset)");
  if (size_t(s.epoch) != s.epochs.size())
    fail("resume: the state is at epoch ", s.epoch + 1, " but holds ", s.epochs.size(),
         " completed epochs");
  const std::vector<ParameterInfo>& params = net.parameters();
  if (s.parameters.size() != params.size())
    fail("resume: the state has ", s.parameters.size(), " parameters, the network has ",
         params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const NamedTensor& t = s.parameters[i];
    if (t.name != params[i].name ||
        t.shape != std::vector<int64_t>(params[i].shape.begin(), params[i].shape.end()) ||
        t.data.size() != params[i].size)
      fail("resume: the state's parameter ", i, " (", detail::quote(t.name),
           ") does not match the network's ", params[i].name);
  }
  const std::string bad = non_finite(s.parameters);
  if (!bad.empty()) fail("resume: the state's parameter ", bad);
}

}  // namespace

TrainResult train(Network& net, const Dataset& data, const TrainOptions& options,
                  const Dataset* eval) {
  Communicator* comm = options.communicator.get();
  // Several ranks: an error one rank finds in its own data is raised on all of them.
  std::string error;
  try {
    if (options.epochs < 1) fail("train: epochs must be >= 1, got ", options.epochs);
    if (options.batch_size < 1) fail("train: batch size must be >= 1, got ", options.batch_size);
    if (options.checkpoint_every < 0)
      fail("train: checkpoint_every must be >= 0, got ", options.checkpoint_every);
    check_fit(net, data, options.loss, "training");
    if (eval) check_fit(net, *eval, options.loss, "evaluation");
  } catch (const Error& e) {
    if (!comm) throw;
    error = e.what();
  }
  if (comm) {
    comm->check(error);
    check_same_data(*comm, data, "training");
    if (eval) check_same_data(*comm, *eval, "evaluation");
    check_same_parameters(*comm, net, "before training");
  }

  const int batches = int((int64_t(data.count) + options.batch_size - 1) / options.batch_size);
  const double base_lr = learning_rate(options.optimizer);
  Optimizer optimizer(net, options.optimizer);
  TrainResult result;

  // Where the run starts: afresh, or where a resume state left it.
  int start_epoch = 0, start_batch = 0;
  double first_loss = std::nan("");
  const TrainState* resume = options.resume;
  if (resume) {
    check_resume(net, *resume, options.epochs, batches, options.batch_size, data.count);
    write_parameters(net, resume->parameters);
    optimizer.restore(resume->optimizer);
    net.set_noise_passes(resume->noise_passes);
    start_epoch = resume->epoch;
    start_batch = resume->batch;
    first_loss = resume->first_loss;
    result.train_seconds = resume->train_seconds;
    result.samples = resume->samples;
    for (EpochStats e : resume->epochs) {
      e.resumed = true;
      if (options.on_epoch) options.on_epoch(e);
      result.epochs.push_back(std::move(e));
    }
  }

  // Every step is one StepLoop call (train_step.hpp): on the cuda engine it is queued on the
  // device, which keeps the steps' losses until they are read, so the loop reads them back only
  // every kReadEvery steps or kReadSeconds, at checkpoints and at the end of an epoch (on the cpu
  // engine a read costs nothing and happens after every step). A divergence is found at the read
  // that returns it; the loop has put the parameters back at the last good ones by then.
  StepOptions step_options;
  step_options.guard.factor = kDivergenceFactor;
  step_options.guard.first_loss = first_loss;
  step_options.graphs = options.cuda_graphs;
  step_options.communicator = comm ? options.communicator : nullptr;
  StepLoop loop(net, optimizer, options.loss, step_options);
  // On the cuda engine the training set goes to the device once, and a step sends only its
  // rows' indices. On the H200 the host set the pace without it: 2.7 ms a step of `nmsnn train`
  // in TF32, for 1.07 ms of device work (2026-12-04), mostly the batch's gather, check and copy.
  const bool kept = net.engine() == Engine::cuda && options.data_on_device &&
                    options.encoding != Input::Kind::sequence &&
                    loop.keep_data({options.encoding, data.x.data(), data.count,
                                    data.labels.empty() ? nullptr : data.labels.data(),
                                    data.targets.empty() ? nullptr : data.targets.data()});
  result.data_on_device = kept;
  const bool read_each_step = net.engine() == Engine::cpu;
  constexpr int kReadEvery = 256;
  constexpr double kReadSeconds = 0.5;

  std::vector<NamedTensor> current;  // the parameters, read for checkpoints
  auto state_of = [&](int epoch, int k, double loss_sum, long long correct, int done,
                      double seconds) {
    read_parameters(net, current);
    TrainState s;
    s.epoch = epoch;
    s.batch = k;
    s.parameters = current;
    s.optimizer = optimizer.snapshot();
    s.noise_passes = net.noise_passes();
    s.first_loss = first_loss;
    s.loss_sum = loss_sum;
    s.correct = correct;
    s.samples_done = done;
    s.seconds = seconds;
    s.epochs = result.epochs;
    for (EpochStats& e : s.epochs) e.eval.outputs.clear(), e.eval.predictions.clear();
    s.train_seconds = result.train_seconds;
    s.samples = result.samples;
    return s;
  };
  const long long every = options.checkpoint_every;

  for (int epoch = start_epoch; epoch < options.epochs; ++epoch) {
    const bool mid_epoch = epoch == start_epoch && start_batch > 0;
    if (options.fresh_optimizer_each_epoch && !mid_epoch) optimizer.reset();
    optimizer.set_lr(options.schedule.lr_at(epoch, base_lr));
    const std::vector<int> order = epoch_order(data.count, options.seed, epoch, options.shuffle);
    EpochStats stats;
    stats.epoch = epoch + 1;
    stats.epochs = options.epochs;
    stats.lr = optimizer.lr();
    double loss_sum = 0, seconds_before = 0;
    long long correct = 0;
    int done = 0;
    if (mid_epoch) {
      loss_sum = resume->loss_sum;
      correct = resume->correct;
      done = resume->samples_done;
      seconds_before = resume->seconds;
    }
    const auto t0 = Clock::now();
    auto last_read = t0;
    double read_elapsed = seconds_before;  // the epoch's seconds at the previous read
    int next_record = mid_epoch ? start_batch : 0;  // the batch of the next record read back
    // Reads the queued steps' records: totals, progress, and a halt as TrainingDiverged.
    auto read_steps = [&] {
      const StepReport r = loop.read();
      last_read = Clock::now();
      first_loss = r.first_loss;
      const double elapsed = seconds_before + seconds_since(t0);
      // A read returns every step queued since the last one, all finished by now: their times
      // are spread evenly since that read (the device runs them back to back at one cost), so a
      // progress line's rate is the rate so far and not this read's samples over its time. On
      // the H200 (2026-12-04) a 60-step epoch took 0.16 s, all read at its end: the first line
      // said 3,172 samples/s and the last 368,000.
      const size_t count = r.steps.size();
      size_t i = 0;
      for (const StepRecord& rec : r.steps) {
        const double at = read_elapsed + (elapsed - read_elapsed) * double(++i) / double(count);
        loss_sum += rec.loss * rec.batch;
        correct += rec.correct;
        done += rec.batch;
        ++next_record;
        if (options.on_batch) {
          BatchStats b;
          b.epoch = epoch + 1;
          b.epochs = options.epochs;
          b.batch = next_record;
          b.batches = batches;
          b.samples_done = done;
          b.samples = data.count;
          b.loss = rec.loss;
          b.accuracy = double(rec.correct) / rec.batch;
          b.elapsed_seconds = at;
          b.samples_per_second = done / std::max(1e-9, b.elapsed_seconds);
          options.on_batch(b);
        }
      }
      read_elapsed = elapsed;
      if (r.halt != HaltReason::none)
        throw TrainingDiverged(epoch + 1, next_record + 1, optimizer.lr(),
                               r.reason(kDivergenceFactor));
    };
    bool checkpoint_at_end = every == 0;
    // Each batch is gathered on another thread while the one before it is checked, staged and
    // queued: the gather (1000 shuffled MNIST rows: ~1.1 ms on one core of the development
    // machine) was the largest part of the host's share of a step, and on the H200 the host set
    // the pace (2.7 ms a step against the device's 1.07 in TF32, 2026-12-04). step() copies its
    // input before it returns, so batch k's buffer is free for batch k + 2. A thread costs tens
    // of microseconds to start, more than a small batch's gather: batches under 64K values, and
    // any where no thread can be started, are gathered at get(), as before.
    Batch gathered[2];
    const bool big = size_t(options.batch_size) * size_t(data.features) >= (size_t(1) << 16);
    const auto policy = big ? std::launch::async | std::launch::deferred : std::launch::deferred;
    auto gather_async = [&](int k) {
      return std::async(policy, [&, k] {
        const int first = k * options.batch_size;
        gather(data, order, first, std::min(options.batch_size, data.count - first),
               gathered[k % 2]);
      });
    };
    const int first_batch = mid_epoch ? start_batch : 0;
    std::future<void> next;
    if (!kept && first_batch < batches) next = gather_async(first_batch);
    for (int k = first_batch; k < batches; ++k) {
      if (kept) {
        const int first = k * options.batch_size;
        loop.step_rows(order.data() + first, std::min(options.batch_size, data.count - first));
      } else {
        next.get();
        if (k + 1 < batches) next = gather_async(k + 1);
        const Batch& batch = gathered[k % 2];
        loop.step(static_input(options.encoding, batch.x, batch.size),
                  batch.labels.empty() ? nullptr : batch.labels.data(),
                  batch.targets.empty() ? nullptr : batch.targets.data());
      }
      // Checkpoints count the run's steps; one that falls on an epoch's last step waits for the
      // epoch's evaluation, so a checkpoint never stands between the two.
      const long long steps = (long long)epoch * batches + k + 1;
      const bool checkpoint = every > 0 && steps % every == 0 && options.on_checkpoint;
      if (read_each_step || checkpoint || k + 1 == batches || loop.pending() >= kReadEvery ||
          seconds_since(last_read) >= kReadSeconds)
        read_steps();
      if (checkpoint) {
        if (k + 1 < batches)
          options.on_checkpoint(state_of(epoch, k + 1, loss_sum, correct, done,
                                         seconds_before + seconds_since(t0)));
        else
          checkpoint_at_end = true;
      }
    }
    stats.train_seconds = seconds_before + seconds_since(t0);
    stats.samples_per_second = data.count / std::max(1e-9, stats.train_seconds);
    stats.train_loss = loss_sum / data.count;
    stats.train_accuracy = options.loss == Loss::mse ? 0.0 : double(correct) / data.count;
    result.train_seconds += stats.train_seconds;
    result.samples += data.count;
    if (eval) {
      stats.evaluated = true;
      stats.eval = evaluate(net, *eval, options.loss, options.eval_batch_size, options.encoding,
                            -1, comm);
    }
    // Ranks that start equal and apply the same sums stay equal; this says so if they did not.
    if (comm) check_same_parameters(*comm, net, "after epoch " + std::to_string(epoch + 1));
    if (options.on_epoch) options.on_epoch(stats);
    result.epochs.push_back(std::move(stats));
    if (checkpoint_at_end && options.on_checkpoint)
      options.on_checkpoint(state_of(epoch + 1, 0, 0, 0, 0, 0));
  }
  result.samples_per_second = result.samples / std::max(1e-9, result.train_seconds);
  return result;
}

}  // namespace nmsnn
