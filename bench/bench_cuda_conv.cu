// bench_cuda_conv.cu — the MNIST spiking CNN on the CUDA engine's device API, with the napkin
// math of its forward pass beside the time. Linked into bench_cuda:
//
//   build/bench/bench_cuda --benchmark_filter=Cnn
//
// Network: input [1, 28, 28], T = 8, B = 256:
//   conv2d(16, k5) -> lif -> max_pool2d(2) -> conv2d(32, k5) -> lif -> max_pool2d(2) -> flatten
//   -> spiking(10)
// Rows: CnnForward/<input kind>/<precision> (a training forward, FP32 saved state) and
// CnnStep (forward + backward, no update). Input kinds: 0 noisy (conv1 convolves every step's
// masked image, N = T*B = 2048), 1 repeated (conv1 convolves the B images once).
// Counters: pred_ms = the model below on an H200 (bench/napkin_math.hpp's h200(): 4.32 TB/s
// effective, FP32 53.6 TFLOP/s, 2 us per launch, 0.6 us per dependent step of a time loop),
// x_pred = measured / predicted. The model counts what each forward kernel must move:
//   conv     im2col x in, col out; product col in, rows out; bias + transpose rows in, y out
//   lif      a in, u and spikes out (T dependent steps)
//   pool     x in, y out;  flatten: a copy
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "gpu_timing.cuh"
#include "napkin_math.hpp"
#include "nmsnn/cuda.hpp"
#include "nmsnn/nmsnn.hpp"

namespace {

using bench::Arena;
using bench::Gpu;

constexpr int kT = 8, kB = 256;

nmsnn::NetworkSpec mnist_cnn() {
  nmsnn::NetworkSpec spec;
  spec.inputs = 784;
  spec.input_shape = {1, 28, 28};
  spec.time_steps = kT;
  nmsnn::Conv2d c1, c2;
  c1.out_channels = 16, c1.kernel = {5, 5};
  c2.out_channels = 32, c2.kernel = {5, 5};
  nmsnn::SpikingLayer out;
  out.size = 10;
  spec.layers = {c1, nmsnn::Lif{}, nmsnn::MaxPool2d{}, c2, nmsnn::Lif{}, nmsnn::MaxPool2d{},
                 nmsnn::Flatten{}, out};
  spec.validate();
  return spec;
}

// The forward's kernels for the napkin model (N0: the images conv1 convolves).
std::vector<napkin::Kernel> forward_kernels(bool noisy) {
  const double N = double(kT) * kB, N0 = noisy ? N : kB, f = 4;
  std::vector<napkin::Kernel> k;
  auto add = [&](const char* name, double bytes, double flop = 0, double serial = 0) {
    k.push_back({name, "conv2d.cu / pool2d.cu", bytes, flop, 0, serial, flop > 0});
  };
  if (noisy) add("masked_input", f * N * 784);
  const double col1 = f * N0 * 576 * 25, rows1 = f * N0 * 576 * 16, y1 = f * N * 576 * 16;
  add("conv1 im2col", f * N0 * 784 + col1);
  add("conv1 product", col1 + rows1, 2 * N0 * 576 * 16 * 25);
  add("conv1 bias+transpose", 2 * rows1);
  if (!noisy) add("conv1 time_broadcast", rows1 + y1);
  add("lif1", 3 * y1, 0, kT);
  const double p1 = f * N * 16 * 144;
  add("max_pool1", y1 + p1);
  const double col2 = f * N * 64 * 400, rows2 = f * N * 64 * 32;
  add("conv2 im2col", p1 + col2);
  add("conv2 product", col2 + rows2, 2 * N * 64 * 32 * 400);
  add("conv2 bias+transpose", 2 * rows2);
  add("lif2", 3 * rows2, 0, kT);
  const double p2 = f * N * 512;
  add("max_pool2", rows2 + p2);
  add("flatten", 2 * p2);
  add("spiking(10) product", p2 + f * N * 10, 2 * N * 10 * 512);
  add("spiking(10) lif + readout", 2 * f * N * 10, 0, kT);
  return k;
}

void run(benchmark::State& state, bool backward) {
  if (!bench::have_gpu(state)) return;
  try {
    const bool noisy = state.range(0) == 0;
    const nmsnn::MatmulPrecision math =
        state.range(1) ? nmsnn::MatmulPrecision::tf32 : nmsnn::MatmulPrecision::fp32;
    const nmsnn::Input::Kind kind = noisy ? nmsnn::Input::Kind::noisy : nmsnn::Input::Kind::repeated;
    const nmsnn::NetworkSpec spec = mnist_cnn();
    Gpu gpu;
    Arena arena;
    nmsnn::cuda::DeviceNetwork net(spec, gpu.cublas, {math, nmsnn::SavedState::fp32});
    std::vector<float*> params, grads;
    for (const auto& p : net.parameters()) {
      params.push_back(arena.floats(p.size, -0.2f, 0.2f, 4));
      grads.push_back(arena.floats(p.size));
    }
    float* x = arena.floats(size_t(kB) * 784, 0.0f, 1.0f, 5);
    float* logits = arena.floats(size_t(kB) * 10);
    float* dlogits = arena.floats(size_t(kB) * 10, -0.01f, 0.01f, 6);
    const size_t ws_bytes = net.workspace_bytes(kB, kind, true);
    void* ws = arena.bytes(ws_bytes);
    nmsnn::cuda::DeviceInput input;
    input.kind = kind;
    input.data = x;
    input.batch = kB;
    uint64_t pass = 0;
    const double ms = bench::timed_loop(state, gpu.stream, [&] {
      input.noise = {1, pass++};
      net.forward(params.data(), input, logits, true, {ws, ws_bytes}, gpu.stream);
      if (backward)
        net.backward(params.data(), input, dlogits, grads.data(), nullptr, {ws, ws_bytes},
                     gpu.stream);
    });
    state.counters["workspace_MB"] = ws_bytes / 1e6;
    if (!backward) {
      const napkin::Device h200 = napkin::h200();
      const napkin::Math m = state.range(1) ? napkin::Math::tf32 : napkin::Math::fp32;
      double bytes = 0, flop = 0, seconds = 0;
      for (const napkin::Kernel& k : forward_kernels(noisy)) {
        bytes += k.bytes, flop += k.flop;
        seconds += napkin::predict(k, h200, m).total;
      }
      state.counters["model_MB"] = bytes / 1e6;
      state.counters["model_GFLOP"] = flop / 1e9;
      state.counters["pred_ms"] = seconds * 1e3;
      state.counters["x_pred"] = ms / (seconds * 1e3);
    }
    state.SetLabel(std::string(noisy ? "noisy" : "repeated") + " " + nmsnn::to_string(math));
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void CnnForward(benchmark::State& state) { run(state, false); }
void CnnStep(benchmark::State& state) { run(state, true); }

}  // namespace

BENCHMARK(CnnForward)->ArgsProduct({{0, 1}, {0, 1}})->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(CnnStep)->ArgsProduct({{0, 1}, {0, 1}})->UseManualTime()->Unit(benchmark::kMillisecond);
