// bench_cpu_engine.cpp — Google Benchmark timings of the CPU engine, with napkin math.
//
//   build/bench/bench_cpu_engine [--benchmark_filter=TrainStep]
//
// Every benchmark reports samples (or values) per second and GFLOP/s. FLOPs count the dense
// formulation (what PyTorch computes): per training sample 2*T*(I*H + H*C) for the forward
// products, the same again for the weight gradients and 2*T*H*C for the hidden-layer input
// gradient. `useful_GFLOP/s` counts only products with nonzero inputs, which is what the engine
// does. Compare with the machine's FMA peak from bench/cpu_peak.
//
// The dense-step benchmarks also report `GFLOP/core-s`, the dense FLOPs per second of the
// process's CPU time (all threads), and `%peak`, that against the FMA peak of one core with the
// kernel set in use (bench/fma_peak.hpp, the same measurement as cpu_peak's per-core CPU-time
// line). CPU time rather than wall time because the development machine is shared: with other
// builds running, wall-clock rates fall with every time slice they take, CPU-time rates do not
// (cache sharing aside). On an idle machine both agree (2 threads x the per-core peak).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "fma_peak.hpp"
#include "nmsnn/nmsnn.hpp"

namespace {

struct Mnist {
  nmsnn::Dataset unit, centered;
};

// The first 1000 MNIST training images if the repo's data is there, else synthetic images with
// the same share of zero pixels (80%).
const Mnist& mnist() {
  static Mnist m = [] {
    Mnist out;
    try {
      out.unit = nmsnn::load_mnist(NMSNN_SOURCE_DIR "/data/mnist", true, nmsnn::PixelScale::unit, 1000);
      out.centered = nmsnn::load_mnist(NMSNN_SOURCE_DIR "/data/mnist", true,
                                       nmsnn::PixelScale::centered, 1000);
    } catch (const nmsnn::Error&) {
      std::mt19937 rng(1);
      std::uniform_real_distribution<float> u(0, 1);
      out.unit.count = out.centered.count = 1000;
      out.unit.features = out.centered.features = 784;
      for (int k = 0; k < 1000 * 784; ++k) {
        const float x = u(rng) < 0.8f ? 0.0f : u(rng);
        out.unit.x.push_back(x);
        out.centered.x.push_back(x - 0.5f);
      }
      for (int k = 0; k < 1000; ++k) out.unit.labels.push_back(k % 10);
      out.centered.labels = out.unit.labels;
    }
    return out;
  }();
  return m;
}

// The FMA peak of one core with the kernel set in use, GFLOP per CPU-second, measured once.
double core_peak() {
  static const double peak = fma_peak::gflops_per_core(nmsnn::cpu_kernel_set());
  return peak;
}

// GFLOP/core-s and %peak from the dense FLOPs done and the process CPU time they took.
void report_cpu_time(benchmark::State& state, double flop, double cpu_seconds) {
  const double rate = flop / cpu_seconds / 1e9;
  state.counters["GFLOP/core-s"] = rate;
  state.counters["%peak"] = 100.0 * rate / core_peak();
}

double nonzero_fraction(const std::vector<float>& x) {
  size_t n = 0;
  for (float v : x) n += v != 0.0f;
  return double(n) / x.size();
}

// Both training-step benchmarks report the same counters from the same FLOP counts.
void report_step(benchmark::State& state, const nmsnn::Dataset& d, double cpu0) {
  const int B = 1000, T = 128, I = 784, H = 100, C = 10;
  const double flops = 2.0 * T * (2.0 * (I * H + H * C) + H * C);
  report_cpu_time(state, double(state.iterations()) * B * flops,
                  fma_peak::process_cpu_seconds() - cpu0);
  const double useful = 2.0 * T * (2.0 * (nonzero_fraction(d.x) * I * H + H * C) + H * C);
  state.counters["samples/s"] = benchmark::Counter(B, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(B * flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["useful_GFLOP/s"] =
      benchmark::Counter(B * useful / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

// One seed-MNIST training step (784-100-10, T=128, batch 1000, SGD momentum 0.5) as `nmsnn train`
// runs it: StepLoop::step (forward, loss, backward, update; on the cpu engine each sample's
// backward follows its forward). Arg 0: inputs x/255; arg 1: x/255 - 0.5 (the seed's).
void TrainStep(benchmark::State& state) {
  const nmsnn::Dataset& d = state.range(0) == 0 ? mnist().unit : mnist().centered;
  const int B = 1000;
  nmsnn::Network net(nmsnn::NetworkSpec::seed_mnist(), {nmsnn::Engine::cpu, 1, 0});
  nmsnn::Optimizer opt(net, nmsnn::Sgd{0.1, 0.5});
  nmsnn::StepLoop loop(net, opt, nmsnn::Loss::nll);
  core_peak();  // measured before the timed loop
  const double cpu0 = fma_peak::process_cpu_seconds();
  for (auto _ : state) {
    loop.step(nmsnn::Input::noisy(d.x, B), d.labels.data());
    benchmark::DoNotOptimize(loop.read());
  }
  report_step(state, d, cpu0);
}
BENCHMARK(TrainStep)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same step through the step-by-step API: Network::forward for the whole batch, the loss,
// Network::backward, Optimizer::step (the saved state of all 1000 samples is kept in between).
void StepByStep(benchmark::State& state) {
  const nmsnn::Dataset& d = state.range(0) == 0 ? mnist().unit : mnist().centered;
  const int B = 1000, C = 10;
  nmsnn::Network net(nmsnn::NetworkSpec::seed_mnist(), {nmsnn::Engine::cpu, 1, 0});
  nmsnn::Optimizer opt(net, nmsnn::Sgd{0.1, 0.5});
  core_peak();
  const double cpu0 = fma_peak::process_cpu_seconds();
  for (auto _ : state) {
    auto pass = net.forward(nmsnn::Input::noisy(d.x, B));
    auto loss = nmsnn::nll_log_softmax(pass.logits(), B, C, d.labels);
    net.backward(pass, loss.grad);
    opt.step();
  }
  report_step(state, d, cpu0);
}
BENCHMARK(StepByStep)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// Inference only (no saved state), same network and batch.
void Inference(benchmark::State& state) {
  const nmsnn::Dataset& d = state.range(0) == 0 ? mnist().unit : mnist().centered;
  nmsnn::Network net(nmsnn::NetworkSpec::seed_mnist(), {nmsnn::Engine::cpu, 1, 0});
  nmsnn::ForwardOptions inference;
  inference.training = false;
  core_peak();
  const double cpu0 = fma_peak::process_cpu_seconds();
  for (auto _ : state) benchmark::DoNotOptimize(net.forward(nmsnn::Input::noisy(d.x, 1000), inference));
  const double flops = 2.0 * 128 * (784 * 100 + 100 * 10);
  report_cpu_time(state, double(state.iterations()) * 1000 * flops,
                  fma_peak::process_cpu_seconds() - cpu0);
  state.counters["samples/s"] = benchmark::Counter(1000, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(1000 * flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(Inference)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// A spiking CNN for MNIST on one thread, the same image at every step (repeated input):
//   [1, 28, 28] -> conv2d(16, 5x5) -> lif -> max_pool2d(2) -> conv2d(32, 5x5) -> lif
//   -> max_pool2d(2) -> flatten -> dense(10),  T = 8, batch 64
// Arg 0: an inference pass; arg 1: a training pass and its backward (no optimiser step).
// FLOPs are 2 x the multiply-adds the engine does per sample: the first convolution once (its
// input repeats, conv2d_layer.hpp), the second at every step; backward adds both weight
// gradients and the second convolution's input gradient (the first has none to give).
void ConvStep(benchmark::State& state) {
  const nmsnn::Dataset& d = mnist().unit;
  const bool training = state.range(0) == 1;
  const int B = 64, T = 8;
  nmsnn::NetworkSpec spec;
  spec.inputs = 784;
  spec.input_shape = {1, 28, 28};
  spec.time_steps = T;
  nmsnn::Conv2d c1, c2;
  c1.out_channels = 16, c1.kernel = {5, 5};
  c2.out_channels = 32, c2.kernel = {5, 5};
  spec.layers = {c1, nmsnn::Lif{}, nmsnn::MaxPool2d{}, c2, nmsnn::Lif{}, nmsnn::MaxPool2d{},
                 nmsnn::Flatten{}, nmsnn::Dense{10}};
  nmsnn::Network net(spec, {nmsnn::Engine::cpu, 1, 1});
  nmsnn::ForwardOptions options;
  options.training = training;
  const std::vector<float> x(d.x.begin(), d.x.begin() + size_t(B) * 784);
  const std::vector<float> dlogits(size_t(B) * 10, 0.01f);
  core_peak();
  const double cpu0 = fma_peak::process_cpu_seconds();
  for (auto _ : state) {
    auto pass = net.forward(nmsnn::Input::repeated(x, B), options);
    if (training) net.backward(pass, dlogits);
  }
  const double conv1 = 24.0 * 24 * 25 * 16, conv2 = T * 8.0 * 8 * 400 * 32, dense = T * 512.0 * 10;
  const double flops = 2.0 * (training ? 2 * conv1 + 3 * conv2 + 3 * dense : conv1 + conv2 + dense);
  report_cpu_time(state, double(state.iterations()) * B * flops,
                  fma_peak::process_cpu_seconds() - cpu0);
  state.counters["samples/s"] = benchmark::Counter(B, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["us/sample"] = benchmark::Counter(
      B / 1e6, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["GFLOP/s"] =
      benchmark::Counter(B * flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(ConvStep)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

// The noise encoder's Philox masks alone (one thread): masks per second.
void NoiseMasks(benchmark::State& state) {
  float sum = 0;
  uint32_t t = 0;
  for (auto _ : state) {
    for (uint32_t i = 0; i < 784; ++i) sum += nmsnn::noise_mask({1, 2}, t, 0, i);
    ++t;
  }
  benchmark::DoNotOptimize(sum);
  state.counters["masks/s"] = benchmark::Counter(784, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(NoiseMasks);

}  // namespace

BENCHMARK_MAIN();
