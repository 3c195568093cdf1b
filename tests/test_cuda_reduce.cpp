// test_cuda_reduce.cpp — data parallelism on the cuda engine (issue 14): reduce_gradients weights
// and sums the gradients; StepLoop given a communicator of several ranks runs the host path, or
// with one that sums device memory the device-resident step, which must compute what the host
// path does; and NetworkOptions::device names the device it runs on.
//
// The ranks are pretended: MirrorCommunicator is rank 0 of N whose other ranks hold exactly what
// it holds, so a sum over the ranks is its values times N, exact for N a power of two. Its
// device-capable twin (MirrorDeviceCommunicator, a detail::DeviceReducer) sums device memory the
// same way, so the cuda engine's path that NCCL takes is checked without NCCL. The cpu engine's
// reduce_gradients runs the same cases as the reference.
//
// The cuda cases skip without a device; in the CUDA emulation they run against the emulated
// runtime (which has one device, 0). Where the nccl component is built (NMSNN_TEST_NCCL), the
// NCCL communicator is checked too, as a group of one rank: a GPU may hold only one rank.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "distributed/device_reducer.hpp"
#include "engine_compare.hpp"
#include "network/engine.hpp"
#include "nmsnn/communicator.hpp"
#include "nmsnn/loss.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/optimizer.hpp"
#include "nmsnn/train_step.hpp"
#include "require_cuda.hpp"
#include "throws_with.hpp"
#include "training_fixtures.hpp"  // all_parameters

#if NMSNN_WITH_CUDA
#include <cuda_runtime.h>
#endif
#if NMSNN_TEST_NCCL
#include "nmsnn/nccl.hpp"
#endif

namespace {

using nmsnn::Engine;
using nmsnn::Input;
using nmsnn::Loss;
using nmsnn::Network;
using nmsnn::NetworkSpec;

// Rank `rank` of `ranks`, the others mirroring it. Counts its float sums, the gradients'
// collective.
class MirrorCommunicator : public nmsnn::Communicator {
 public:
  explicit MirrorCommunicator(int ranks, int rank = 0) : ranks_(ranks), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return ranks_; }
  std::string name() const override { return "mirror"; }
  void allreduce_sum(float* data, size_t n) override {
    ++host_float_sums;
    floats_summed = n;
    for (size_t i = 0; i < n; ++i) data[i] *= float(ranks_);
  }
  void allreduce_sum(double* data, size_t n) override {
    ++host_double_sums;
    for (size_t i = 0; i < n; ++i) data[i] *= double(ranks_);
  }
  void broadcast(void*, size_t, int) override {}  // every rank holds rank 0's data already
  void barrier() override {}

  int host_float_sums = 0, host_double_sums = 0;
  size_t floats_summed = 0;

 private:
  int ranks_, rank_;
};

#if NMSNN_WITH_CUDA
void cuda_ok(cudaError_t status) { ASSERT_EQ(status, cudaSuccess) << cudaGetErrorString(status); }

// The same ranks, able to sum device memory as NCCL does: on the given stream, after the work
// queued there. Stream-ordered work only, so that a step captured into a CUDA graph captures the
// sum too: a copy to pinned memory, a host function that multiplies by N, a copy back (this file
// is C++, it cannot launch a kernel). The pinned buffer is per device address, made at the first
// call, which the engine makes uncaptured.
class MirrorDeviceCommunicator : public MirrorCommunicator, public nmsnn::detail::DeviceReducer {
 public:
  using MirrorCommunicator::MirrorCommunicator;
  ~MirrorDeviceCommunicator() override {
    for (auto& s : staging_) cudaFreeHost(s.second.host);
  }
  void allreduce_sum_device(float* data, size_t n, void* cuda_stream) override {
    ++device_sums;
    floats_summed_on_device = n;
    sum(data, n, false, cuda_stream);
  }
  void allreduce_sum_device(double* data, size_t n, void* cuda_stream) override {
    ++device_double_sums;
    sum(data, n, true, cuda_stream);
  }
  int device_sums = 0, device_double_sums = 0;
  size_t floats_summed_on_device = 0;
  int sums_run = 0;  // host functions run: every sum, graph replays included

 private:
  struct Staging {
    MirrorDeviceCommunicator* self = nullptr;
    void* host = nullptr;
    size_t n = 0;
    bool doubles = false;
  };
  static void multiply(void* p) {
    auto* s = static_cast<Staging*>(p);
    const int N = s->self->size();
    if (s->doubles)
      for (size_t i = 0; i < s->n; ++i) static_cast<double*>(s->host)[i] *= double(N);
    else
      for (size_t i = 0; i < s->n; ++i) static_cast<float*>(s->host)[i] *= float(N);
    ++s->self->sums_run;
  }
  void sum(void* data, size_t n, bool doubles, void* cuda_stream) {
    auto stream = static_cast<cudaStream_t>(cuda_stream);
    const size_t bytes = n * (doubles ? sizeof(double) : sizeof(float));
    Staging& s = staging_[data];
    if (!s.host || s.n != n || s.doubles != doubles) {
      if (s.host) cuda_ok(cudaFreeHost(s.host));
      s.host = nullptr;
      cuda_ok(cudaMallocHost(&s.host, bytes));
      s = {this, s.host, n, doubles};
    }
    cuda_ok(cudaMemcpyAsync(s.host, data, bytes, cudaMemcpyDeviceToHost, stream));
    cuda_ok(cudaLaunchHostFunc(stream, multiply, &s));
    cuda_ok(cudaMemcpyAsync(data, s.host, bytes, cudaMemcpyHostToDevice, stream));
  }
  std::map<const void*, Staging> staging_;  // nodes stay put: the host functions hold them
};
#endif

// How the gradients are summed: through host memory, or in device memory where the engine can.
enum class Path { host, device };

struct Case {
  Engine engine;
  Path path;
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return std::string(info.param.engine == Engine::cpu ? "cpu" : "cuda") +
         (info.param.path == Path::host ? "_host" : "_device");
}

std::vector<Case> cases() {
  std::vector<Case> out = {{Engine::cpu, Path::host}, {Engine::cuda, Path::host}};
#if NMSNN_WITH_CUDA
  // The cpu engine given a device-capable communicator still sums in host memory.
  out.push_back({Engine::cpu, Path::device});
  out.push_back({Engine::cuda, Path::device});
#endif
  return out;
}

std::shared_ptr<MirrorCommunicator> mirror(Path path, int ranks) {
#if NMSNN_WITH_CUDA
  if (path == Path::device) return std::make_shared<MirrorDeviceCommunicator>(ranks);
#endif
  (void)path;
  return std::make_shared<MirrorCommunicator>(ranks);
}

int device_sums(const MirrorCommunicator& comm) {
#if NMSNN_WITH_CUDA
  if (auto* d = dynamic_cast<const MirrorDeviceCommunicator*>(&comm)) return d->device_sums;
#endif
  (void)comm;
  return 0;
}

// Values in [-1, 1) from a small LCG: inputs, dlogits.
std::vector<float> values(size_t n, uint32_t seed) {
  std::vector<float> out(n);
  uint32_t s = seed * 2654435761u + 12345u;
  for (float& v : out) {
    s = s * 1664525u + 1013904223u;
    v = 2 * (float(s >> 8) / 16777216.0f) - 1;
  }
  return out;
}

std::vector<std::vector<float>> all_gradients(const Network& net) {
  std::vector<std::vector<float>> out;
  for (const auto& p : net.parameters()) out.push_back(net.gradient(p.name));
  return out;
}

using engine_compare::relative_error;  // the largest difference over the first's largest value

class ReduceGradients : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (GetParam().engine == Engine::cuda) REQUIRE_CUDA();
  }
  nmsnn::NetworkOptions options(uint64_t seed) const { return {GetParam().engine, seed, 1}; }
  const NetworkSpec spec_ = NetworkSpec::spiking(12, {16}, 4, 7);
};

// After a backward pass, reduce_gradients(comm, 0.25) over N mirrored ranks leaves N * (0.25 * g)
// in every gradient, to the bit (0.25 and N are powers of two); the cuda engine uses the device
// sum when the communicator has one, one call over all its gradients.
TEST_P(ReduceGradients, WeightsThenSums) {
  for (int ranks : {2, 4, 8}) {
    SCOPED_TRACE("ranks " + std::to_string(ranks));
    Network net(spec_, options(3));
    const int B = 5;
    const std::vector<float> x = values(size_t(B) * spec_.inputs, 1);
    nmsnn::ForwardPass pass = net.forward(Input::noisy(x, B));
    net.backward(pass, values(size_t(B) * spec_.outputs(), 2));
    const std::vector<std::vector<float>> before = all_gradients(net);

    auto comm = mirror(GetParam().path, ranks);
    net.engine_impl().reduce_gradients(*comm, 0.25f);
    const std::vector<std::vector<float>> after = all_gradients(net);

    ASSERT_EQ(after.size(), before.size());
    bool nonzero = false;
    for (size_t p = 0; p < before.size(); ++p)
      for (size_t i = 0; i < before[p].size(); ++i) {
        const float expected = float(ranks) * (0.25f * before[p][i]);
        ASSERT_EQ(after[p][i], expected) << net.parameters()[p].name << "[" << i << "]";
        nonzero = nonzero || before[p][i] != 0;
      }
    EXPECT_TRUE(nonzero) << "the backward pass left every gradient zero: nothing was checked";

    const bool on_device = GetParam().engine == Engine::cuda && GetParam().path == Path::device;
    EXPECT_EQ(device_sums(*comm), on_device ? 1 : 0);
    EXPECT_EQ(comm->host_float_sums, on_device ? 0 : 1);
    if (GetParam().engine == Engine::cuda && !on_device) {
      // Through the host: the public layout, packed.
      size_t total = 0;
      for (const auto& p : net.parameters()) total += p.size;
      EXPECT_EQ(comm->floats_summed, total);
    }
  }
}

// Weight 0 (a rank that computed no rows): zeros, whatever the gradients held, NaN included.
TEST_P(ReduceGradients, WeightZeroGivesZerosOverNaN) {
  Network net(spec_, options(3));
  nmsnn::detail::EngineImpl& engine = net.engine_impl();
  const int B = 3;
  const std::vector<float> x = values(size_t(B) * spec_.inputs, 4);
  // A NaN in dL/dlogits, which Network::backward would refuse: through the engine itself.
  std::vector<float> dlogits = values(size_t(B) * spec_.outputs(), 5);
  dlogits[1] = std::numeric_limits<float>::quiet_NaN();
  nmsnn::ForwardOptions training;
  std::shared_ptr<nmsnn::detail::ForwardState> state =
      engine.forward(Input::noisy(x, B), nmsnn::NoiseKey{3, 0}, {}, training);
  engine.backward(*state, dlogits.data(), nullptr);
  bool poisoned = false;
  for (const auto& g : all_gradients(net))
    for (float v : g) poisoned = poisoned || std::isnan(v);
  ASSERT_TRUE(poisoned) << "the NaN did not reach the gradients: nothing would be checked";

  auto comm = mirror(GetParam().path, 2);
  engine.reduce_gradients(*comm, 0.0f);
  const auto after = all_gradients(net);
  for (size_t p = 0; p < after.size(); ++p)
    for (size_t i = 0; i < after[p].size(); ++i)
      ASSERT_EQ(after[p][i], 0.0f) << net.parameters()[p].name << "[" << i << "]";
}

INSTANTIATE_TEST_SUITE_P(Engines, ReduceGradients, ::testing::ValuesIn(cases()), case_name);

// A batch of 8 over 2 mirrored ranks: rank 0 computes rows 0..3, its gradient (their mean) is
// weighted by 1/2 and summed with the mirror's, so each update is the one a single process makes
// on those 4 rows, and the step's loss and correct count are theirs. So a StepLoop with the
// communicator must follow a StepLoop without one fed rows 0..3: exactly on the cpu engine (the
// same host arithmetic; halving and doubling are exact); on the cuda engine within the tolerance
// test_train_step gives its device-resident step, which the run without a communicator takes
// (its loss is computed on the device), while the run with one takes the host path and calls
// reduce_gradients, or with a device-capable one (cuda_device) the device-resident step, which
// sums on the device.
TEST_P(ReduceGradients, StepLoopWithACommunicatorComputesItsShard) {
  const Engine engine = GetParam().engine;
  for (const nmsnn::OptimizerSpec& o : {nmsnn::OptimizerSpec(nmsnn::Sgd{0.2, 0.9}),
                                        nmsnn::OptimizerSpec(nmsnn::Adam{1e-2})}) {
    SCOPED_TRACE(nmsnn::describe(o));
    Network a(spec_, options(5)), b(spec_, options(5));
    nmsnn::Optimizer oa(a, o), ob(b, o);
    auto comm = mirror(GetParam().path, 2);
    nmsnn::StepOptions with;
    with.communicator = comm;
    nmsnn::StepLoop loop_a(a, oa, Loss::nll, with);
    nmsnn::StepLoop loop_b(b, ob, Loss::nll);
    const int B = 8, half = 4, C = spec_.outputs();
    for (int k = 0; k < 3; ++k) {
      const std::vector<float> x = values(size_t(B) * spec_.inputs, uint32_t(10 + k));
      std::vector<int> labels;
      for (int i = 0; i < B; ++i) labels.push_back((i * 7 + k) % C);
      loop_a.step(Input::noisy(x, B), labels.data());
      loop_b.step(Input::noisy(x.data(), size_t(half) * spec_.inputs, half), labels.data());
    }
    const nmsnn::StepReport ra = loop_a.read(), rb = loop_b.read();
    ASSERT_EQ(ra.halt, nmsnn::HaltReason::none);
    ASSERT_EQ(rb.halt, nmsnn::HaltReason::none);
    ASSERT_EQ(ra.steps.size(), 3u);
    ASSERT_EQ(rb.steps.size(), 3u);
    for (size_t k = 0; k < 3; ++k) {
      EXPECT_EQ(ra.steps[k].batch, B);
      EXPECT_EQ(ra.steps[k].correct, 2 * rb.steps[k].correct) << "step " << k;
      if (engine == Engine::cpu)
        EXPECT_EQ(ra.steps[k].loss, rb.steps[k].loss) << "step " << k;
      else
        EXPECT_NEAR(ra.steps[k].loss, rb.steps[k].loss, 1e-9 * std::max(1.0, rb.steps[k].loss));
    }
    if (engine == Engine::cpu)
      EXPECT_TRUE(all_parameters(a) == all_parameters(b));
    else
      EXPECT_LE(relative_error(all_parameters(a), all_parameters(b)), 1e-5);

    // One gradient sum and one of the statistics per step, where the engine sums.
    const bool on_device = engine == Engine::cuda && GetParam().path == Path::device;
    EXPECT_EQ(device_sums(*comm), on_device ? 3 : 0);
    EXPECT_EQ(comm->host_float_sums, on_device ? 0 : 3);
    EXPECT_EQ(comm->host_double_sums, on_device ? 0 : 3);
  }
}

#if NMSNN_WITH_CUDA
// ---- the data-parallel step on the device -------------------------------------------------------

struct StepRun {
  nmsnn::StepReport report;
  std::vector<float> parameters;
};

// `steps` steps of StepLoop on the cuda engine with `comm`, each on a fresh batch of B; `kept`:
// the batches kept as one training set (StepLoop::keep_data) and stepped on by their rows.
StepRun run_steps(const NetworkSpec& spec, Loss loss, const nmsnn::OptimizerSpec& o,
                  std::shared_ptr<nmsnn::Communicator> comm, bool graphs, int B, int steps,
                  bool kept = false) {
  nmsnn::NetworkOptions no;
  no.engine = Engine::cuda;
  no.seed = 5;
  Network net(spec, no);
  nmsnn::Optimizer opt(net, o);
  nmsnn::StepOptions so;
  so.communicator = std::move(comm);
  so.graphs = graphs;
  nmsnn::StepLoop loop(net, opt, loss, so);
  const int C = spec.outputs();
  std::vector<float> xs, all_targets;
  std::vector<int> all_labels;
  for (int k = 0; k < steps; ++k) {
    const std::vector<float> x = values(size_t(B) * spec.inputs, uint32_t(20 + k));
    const std::vector<float> targets = values(size_t(B) * C, uint32_t(40 + k));
    std::vector<int> labels;
    for (int i = 0; i < B; ++i) labels.push_back((i * 7 + k) % C);
    xs.insert(xs.end(), x.begin(), x.end());
    all_targets.insert(all_targets.end(), targets.begin(), targets.end());
    all_labels.insert(all_labels.end(), labels.begin(), labels.end());
  }
  const float* targets = loss == Loss::mse ? all_targets.data() : nullptr;
  if (kept &&
      !loop.keep_data({Input::Kind::noisy, xs.data(), B * steps, all_labels.data(), targets}))
    ADD_FAILURE() << "the training set was not kept on the device";
  for (int k = 0; k < steps; ++k) {
    if (kept) {
      std::vector<int> rows(static_cast<size_t>(B));
      for (int i = 0; i < B; ++i) rows[size_t(i)] = k * B + i;
      loop.step_rows(rows.data(), B);
      continue;
    }
    const size_t first = size_t(k) * B;
    loop.step(Input::noisy(xs.data() + first * spec.inputs, size_t(B) * spec.inputs, B),
              all_labels.data() + first, targets ? targets + first * C : nullptr);
  }
  return {loop.read(), all_parameters(net)};
}

bool same_value(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

// The device step against the host path: the same records (the losses to rounding: the device
// sums a batch's losses in a tree, the host in order) and halt, parameters within 1e-5 (dlogits
// rounded to float on either side may differ by an ulp).
void expect_same_run(const StepRun& device, const StepRun& host) {
  EXPECT_EQ(device.report.halt, host.report.halt) << device.report.reason(1e6) << " vs "
                                                  << host.report.reason(1e6);
  EXPECT_EQ(device.report.halt_step, host.report.halt_step);
  EXPECT_TRUE(same_value(device.report.halt_value, host.report.halt_value))
      << device.report.halt_value << " vs " << host.report.halt_value;
  ASSERT_EQ(device.report.steps.size(), host.report.steps.size());
  for (size_t k = 0; k < host.report.steps.size(); ++k) {
    const nmsnn::StepRecord &d = device.report.steps[k], &h = host.report.steps[k];
    EXPECT_EQ(d.batch, h.batch) << "step " << k;
    EXPECT_EQ(d.correct, h.correct) << "step " << k;
    EXPECT_NEAR(d.loss, h.loss, 1e-6 * std::max(1.0, std::fabs(h.loss))) << "step " << k;
  }
  EXPECT_LE(relative_error(device.parameters, host.parameters), 1e-5);
}

// Two mirrored ranks: with a device-capable communicator the cuda engine's step runs on the
// device (two device sums a step, statistics then gradients, and no host sum) and computes what
// the host path computes with the same ranks summed through the host: nll and mse with Adam, a
// shard that is not the first (its row keys start past 0), and a rank with no rows (B = 1: rank
// 0 has none, rank 1 the one row), which still takes part in both sums.
TEST(DeviceDataParallelStep, MatchesTheHostPath) {
  REQUIRE_CUDA();
  const NetworkSpec spec = NetworkSpec::spiking(12, {16}, 4, 7);
  struct Setting {
    Loss loss;
    int rank, B;
  };
  const int steps = 4;
  for (const Setting& c : {Setting{Loss::nll, 0, 8}, Setting{Loss::mse, 0, 7},
                           Setting{Loss::nll, 1, 9}, Setting{Loss::nll, 0, 1}}) {
    SCOPED_TRACE(std::string(c.loss == Loss::nll ? "nll" : "mse") + " rank " +
                 std::to_string(c.rank) + " B " + std::to_string(c.B));
    auto on_device = std::make_shared<MirrorDeviceCommunicator>(2, c.rank);
    auto on_host = std::make_shared<MirrorCommunicator>(2, c.rank);
    const nmsnn::OptimizerSpec adam = nmsnn::Adam{1e-2};
    const StepRun device = run_steps(spec, c.loss, adam, on_device, false, c.B, steps);
    const StepRun host = run_steps(spec, c.loss, adam, on_host, false, c.B, steps);
    ASSERT_EQ(host.report.halt, nmsnn::HaltReason::none) << host.report.reason(1e6);
    ASSERT_EQ(host.report.steps.size(), size_t(steps));
    expect_same_run(device, host);
    EXPECT_EQ(on_device->device_double_sums, steps);
    EXPECT_EQ(on_device->device_sums, steps);
    EXPECT_EQ(on_device->sums_run, 2 * steps);
    EXPECT_EQ(on_device->host_float_sums + on_device->host_double_sums, 0);
    EXPECT_EQ(on_host->host_double_sums, steps);
    EXPECT_EQ(on_host->host_float_sums, steps);
    if (c.B == 1) {
      for (const nmsnn::StepRecord& r : device.report.steps) {
        EXPECT_EQ(r.batch, 1);
        EXPECT_EQ(r.loss, 0.0);  // rank 0 computed nothing, its mirror neither
      }
    }
  }
}

// The device data-parallel step on kept rows: each rank gathers its shard's rows from its copy of
// the training set; the same bits as its steps on batches from the host, on a rank whose shard
// starts past 0 (with graphs) and on a rank with no rows.
TEST(DeviceDataParallelStep, KeptRowsGiveTheSameBits) {
  REQUIRE_CUDA();
  const NetworkSpec spec = NetworkSpec::spiking(12, {16}, 4, 7);
  const nmsnn::OptimizerSpec adam = nmsnn::Adam{1e-2};
  struct Setting {
    Loss loss;
    int rank, B;
    bool graphs;
  };
  for (const Setting& c : {Setting{Loss::mse, 1, 9, true}, Setting{Loss::nll, 0, 1, false}}) {
    SCOPED_TRACE(std::string(c.loss == Loss::nll ? "nll" : "mse") + " rank " +
                 std::to_string(c.rank) + " B " + std::to_string(c.B));
    auto staged = std::make_shared<MirrorDeviceCommunicator>(2, c.rank);
    auto kept = std::make_shared<MirrorDeviceCommunicator>(2, c.rank);
    const StepRun a = run_steps(spec, c.loss, adam, staged, c.graphs, c.B, 3);
    const StepRun b = run_steps(spec, c.loss, adam, kept, c.graphs, c.B, 3, true);
    ASSERT_EQ(a.report.halt, nmsnn::HaltReason::none);
    ASSERT_EQ(b.report.steps.size(), a.report.steps.size());
    for (size_t k = 0; k < a.report.steps.size(); ++k) {
      EXPECT_EQ(b.report.steps[k].loss, a.report.steps[k].loss) << "step " << k;
      EXPECT_EQ(b.report.steps[k].correct, a.report.steps[k].correct) << "step " << k;
    }
    EXPECT_TRUE(a.parameters == b.parameters);
    EXPECT_EQ(kept->device_sums, staged->device_sums);
  }
}

// Outputs that overflow (the first Adam step of 1e30 makes the weights ~1e30, the second pass's
// outputs infinite): both paths halt at the second step with the same value and the initial
// parameters back.
TEST(DeviceDataParallelStep, HaltsAsTheHostPathDoes) {
  REQUIRE_CUDA();
  const NetworkSpec spec = NetworkSpec::mlp(6, {8}, 3);
  const nmsnn::OptimizerSpec adam = nmsnn::Adam{1e30};
  auto on_device = std::make_shared<MirrorDeviceCommunicator>(2);
  const StepRun device = run_steps(spec, Loss::nll, adam, on_device, false, 8, 3);
  const StepRun host =
      run_steps(spec, Loss::nll, adam, std::make_shared<MirrorCommunicator>(2), false, 8, 3);
  ASSERT_EQ(host.report.halt, nmsnn::HaltReason::outputs_not_finite) << host.report.reason(1e6);
  EXPECT_EQ(host.report.halt_step, 1);
  expect_same_run(device, host);
  EXPECT_TRUE(device.parameters == host.parameters);
  EXPECT_EQ(on_device->device_double_sums, 3);  // the steps after a halt still take part
}

// The step captured into a CUDA graph (the device sums with it) and replayed gives the bits of
// the uncaptured one, and its sums run at every replay.
TEST(DeviceDataParallelStep, GraphsGiveTheSameBits) {
  REQUIRE_CUDA();
  const NetworkSpec spec = NetworkSpec::spiking(12, {16}, 4, 7);
  const nmsnn::OptimizerSpec adam = nmsnn::Adam{1e-2};
  const int steps = 4;
  auto plain = std::make_shared<MirrorDeviceCommunicator>(2);
  auto graphed = std::make_shared<MirrorDeviceCommunicator>(2);
  const StepRun a = run_steps(spec, Loss::nll, adam, plain, false, 8, steps);
  const StepRun b = run_steps(spec, Loss::nll, adam, graphed, true, 8, steps);
  ASSERT_EQ(a.report.halt, nmsnn::HaltReason::none);
  ASSERT_EQ(b.report.halt, nmsnn::HaltReason::none);
  ASSERT_EQ(b.report.steps.size(), size_t(steps));
  for (size_t k = 0; k < size_t(steps); ++k) {
    EXPECT_EQ(b.report.steps[k].loss, a.report.steps[k].loss) << "step " << k;
    EXPECT_EQ(b.report.steps[k].correct, a.report.steps[k].correct) << "step " << k;
    EXPECT_EQ(b.report.steps[k].batch, 8);
  }
  EXPECT_TRUE(a.parameters == b.parameters);
  // The first step runs uncaptured (it warms the shape), the second is captured; every step but
  // the first is a replay.
  EXPECT_EQ(graphed->device_sums, 2);
  EXPECT_EQ(graphed->sums_run, 2 * steps);
}
#endif

// ---- the device ---------------------------------------------------------------------------------

TEST(CudaDevice, OneThatDoesNotExistIsAClearError) {
  REQUIRE_CUDA();
  nmsnn::NetworkOptions o;
  o.engine = Engine::cuda;
  o.device = 99;
  const NetworkSpec spec = NetworkSpec::spiking(4, {8}, 2, 3);
  expect_throws([&] { Network net(spec, o); },
                {"cannot use the cuda engine", "CUDA device 99 requested, this machine has"});
  o.device = -1;
  expect_throws([&] { Network net(spec, o); }, {"CUDA device must be >= 0, got -1"});
}

TEST(CudaReduce, RejectsANegativeWeight) {
  REQUIRE_CUDA();
  nmsnn::NetworkOptions o;
  o.engine = Engine::cuda;
  Network net(NetworkSpec::spiking(4, {8}, 2, 3), o);
  MirrorCommunicator comm(2);
  expect_throws([&] { net.engine_impl().reduce_gradients(comm, -0.5f); },
                {"weight must be finite and >= 0, got -0.5"});
}

#if NMSNN_TEST_NCCL
// ---- the NCCL communicator ----------------------------------------------------------------------

// One rank: the sum over the ranks is the weighted gradient itself, summed by ncclAllReduce on the
// engine's stream.
TEST(NcclCommunicator, OneRankSumsOnTheDevice) {
  REQUIRE_CUDA();
  auto comm = nmsnn::nccl_communicator(nmsnn::single_process(), 0);
  EXPECT_EQ(comm->name(), "NCCL");
  EXPECT_EQ(comm->size(), 1);
  EXPECT_EQ(comm->rank(), 0);
  ASSERT_NE(dynamic_cast<nmsnn::detail::DeviceReducer*>(comm.get()), nullptr);

  const NetworkSpec spec = NetworkSpec::spiking(12, {16}, 4, 7);
  nmsnn::NetworkOptions o;
  o.engine = Engine::cuda;
  o.seed = 3;
  Network net(spec, o);
  const int B = 5;
  const std::vector<float> x = values(size_t(B) * spec.inputs, 1);
  nmsnn::ForwardPass pass = net.forward(Input::noisy(x, B));
  net.backward(pass, values(size_t(B) * spec.outputs(), 2));
  const auto before = all_gradients(net);
  net.engine_impl().reduce_gradients(*comm, 0.25f);
  const auto after = all_gradients(net);
  for (size_t p = 0; p < before.size(); ++p)
    for (size_t i = 0; i < before[p].size(); ++i)
      ASSERT_EQ(after[p][i], 0.25f * before[p][i]) << net.parameters()[p].name << "[" << i << "]";

  // Host collectives go through the bootstrap.
  double d = 1.5;
  comm->allreduce_sum(&d, 1);
  EXPECT_EQ(d, 1.5);
  comm->barrier();
}

TEST(NcclCommunicator, ADeviceThatDoesNotExistIsAClearError) {
  REQUIRE_CUDA();
  expect_throws([] { nmsnn::nccl_communicator(nmsnn::single_process(), 99); },
                {"rank 0: NCCL communicator: CUDA device 99 requested, this machine has"});
  expect_throws([] { nmsnn::nccl_communicator(nullptr, 0); }, {"bootstrap communicator is null"});
}
#endif

}  // namespace
