// bench_cuda.cu — the CUDA engine on the two workloads of issue 3, against the cuBLAS floor.
//
//   build/bench/bench_cuda [--benchmark_filter=W1] [--benchmark_format=json]
//
//   W1  the seed's MNIST training step: 784-100-10, T=128, B=1000, noise-encoded input
//       (x/255 - 0.5 style: no zeros), forward + NLL loss + backward + SGD(momentum 0.5) update,
//       all on the device through nmsnn::cuda (no host round trip). Also through the Network API
//       (what `nmsnn train --device cuda` does: input up, logits down, loss on the host).
//   W2  a given input sequence through Linear(16384, 16384) + spiking layer, T=500, B=16,
//       forward + backward (weight and bias gradients; the input needs no gradient).
//   Floor: the same matrix products alone in cuBLAS, with the masked input already in memory:
//       W1: a0 = X W0^T, a1 = S W1^T, dW1 = dU1^T S, dS = dU1 W1, dW0 = dU0^T X
//       W2: a = X W^T, dW = dU^T X
//   First arg = the precision's index in kPrecisions: 0 = FP32 (the default engine), 1 = TF32
//   tensor cores (nmsnn::MatmulPrecision::tf32 against cuBLAS with CUBLAS_COMPUTE_32F_FAST_TF32),
//   2 = BF16 tensor cores (against cuBLAS on BF16 arrays, rounded before timing). Engine rows have
//   a second: 0 = the FP32 saved state, 1 = the compact one (nmsnn::SavedState,
//   DeviceOptions::saved).
//   PhiloxRate: Philox4x32-10 alone on W1's mask counters (no DRAM traffic), the rate that
//   napkin_math.hpp's integer count predicts; it decides how much W1 pays for its masks.
//   W1_Inference/<0 layered, 1 sample clusters>/<B>/<0 FP32, 1 TF32, 2 BF16>: W1's network in
//   inference; W1_StepLoop/<same>: its training step as `nmsnn train` runs it;
//   W1_StepLoopKept/<precision>/<graphs>/<B>: that step on a training set kept on the device
//   (StepLoop::keep_data), launched or replayed from a CUDA graph;
//   W1_StepLoopMnist/<B>/<precision>: that step layer by layer on real digits at x/255 (zeros in
//   the background, which the TF32 and BF16 forward leaves out; read from data/mnist, so run
//   from the repository root, as gpu_run.sh does).
//   W1_WeightGrad/<0 by rows, 1 by sample>/<0 centred, 1 unit-scaled>/<1 TF32, 2 BF16>: the
//   first layer's weight gradient alone (kernels::masked_linear_wgrad, WgradWalk) on W1's shapes
//   and the first 1000 training digits: which walk wins on each input, against the model.
//   W1_FirstLayerForward/<0 apart, 1 fused, 2 with the output's product>/<0 centred, 1
//   unit-scaled>/<1 TF32, 2 BF16>: the first layer's forward alone, its product and time loop as
//   two kernels or as one (kernels::masked_linear_lif_forward), or as one that also makes the
//   output layer's current (the engine's W1), on the same digits, against the model.
//
// Counters: samples/s; TFLOP/s of the dense products (2*M*N*K each, as PyTorch computes them);
// x_floor = our time / the floor's time on the same GPU and math; device_MB = the memory this
// benchmark allocated (parameters, gradients, optimiser state, input, workspace) and used_MB =
// the growth of the device's used memory (cudaMemGetInfo) over the run, which includes cuBLAS's
// own workspace. Times are GPU times between CUDA events around each iteration, after a warm-up
// and with every allocation and copy of the set-up finished (gpu_timing.cuh).
// Napkin math beside each time (bench/napkin_math.hpp, the model of every kernel's traffic and
// work on an H200): model_MB and model_GFLOP = what the step's kernels must move and compute,
// model_Gint = the Philox integer operations, pred_ms = the predicted time, x_pred = measured /
// predicted (above 1: slower than the model says the H200 allows).
#include <benchmark/benchmark.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "cublas_gemm.cuh"
#include "gpu_timing.cuh"
#include "lif_forward.cuh"
#include "masked_linear.cuh"
#include "napkin_math.hpp"
#include "nmsnn/cuda.hpp"
#include "nmsnn/nmsnn.hpp"

namespace {

using bench::Arena;
using bench::Gpu;
using bench::have_gpu;
using bench::median_ms;
using bench::timed_loop;
using bench::used_device_bytes;

// The precisions benchmarked, by Arg index.
const nmsnn::MatmulPrecision kPrecisions[] = {
    nmsnn::MatmulPrecision::fp32, nmsnn::MatmulPrecision::tf32, nmsnn::MatmulPrecision::bf16};
constexpr int kPrecisionCount = int(sizeof(kPrecisions) / sizeof(kPrecisions[0]));

// ---- the workloads -----------------------------------------------------------------------------

struct Workload {
  const char* name;
  nmsnn::NetworkSpec spec;
  int batch;
  nmsnn::Input::Kind kind;
  bool update;  // training step with loss and SGD (W1) or forward + backward only (W2)
};

Workload w1() {
  return {"W1", nmsnn::NetworkSpec::seed_mnist(), 1000, nmsnn::Input::Kind::noisy, true};
}

Workload w2() {
  nmsnn::NetworkSpec spec = nmsnn::NetworkSpec::spiking(16384, {}, 16384, 500);
  return {"W2", spec, 16, nmsnn::Input::Kind::sequence, false};
}

// Dense FLOPs of one step: each layer's forward product and weight gradient (2*M*H*I each), plus
// the input gradient of every layer but the first.
double step_flops(const Workload& w) {
  const double M = double(w.spec.time_steps) * w.batch;
  double flops = 0;
  int in = w.spec.inputs;
  for (size_t l = 0; l < w.spec.layers.size(); ++l) {
    const int h = std::get<nmsnn::SpikingLayer>(w.spec.layers[l]).size;
    flops += 2 * (2.0 * M * h * in);
    if (l > 0) flops += 2.0 * M * h * in;
    in = h;
  }
  return flops;
}

// The same step for the napkin model: T, B, inputs and the spiking layers' sizes.
napkin::StepShape napkin_shape(const Workload& w, nmsnn::SavedState saved = nmsnn::SavedState::compact) {
  napkin::StepShape s{w.name, w.spec.time_steps, w.batch, w.spec.inputs, {},
                      w.kind == nmsnn::Input::Kind::noisy, w.update};
  s.compact = saved == nmsnn::SavedState::compact;
  for (const auto& layer : w.spec.layers) s.layers.push_back(std::get<nmsnn::SpikingLayer>(layer).size);
  return s;
}

napkin::Math napkin_math(nmsnn::MatmulPrecision p) {
  const std::string name = nmsnn::to_string(p);
  return name == "bf16" ? napkin::Math::bf16 : name == "tf32" ? napkin::Math::tf32 : napkin::Math::fp32;
}

// The model's bytes, FLOP, integer work and predicted time of the given kernels, and measured /
// predicted.
void napkin_counters(benchmark::State& state, const std::vector<napkin::Kernel>& kernels,
                     nmsnn::MatmulPrecision math, double measured_ms) {
  const napkin::Device h200 = napkin::h200();
  double bytes = 0, flop = 0, ints = 0, seconds = 0;
  for (const napkin::Kernel& k : kernels) {
    if (!k.runs[int(napkin_math(math))]) continue;  // another precision's kernel
    bytes += k.bytes, flop += k.flop, ints += k.int_ops;
    seconds += napkin::predict(k, h200, napkin_math(math)).total;
  }
  state.counters["model_MB"] = bytes / 1e6;
  state.counters["model_GFLOP"] = flop / 1e9;
  state.counters["model_Gint"] = ints / 1e9;
  state.counters["pred_ms"] = seconds * 1e3;
  state.counters["x_pred"] = measured_ms / (seconds * 1e3);
}

// The model's kernels that are cuBLAS products (what the floor runs).
std::vector<napkin::Kernel> product_kernels(const Workload& w) {
  std::vector<napkin::Kernel> products;
  for (napkin::Kernel k : napkin::step_kernels(napkin_shape(w))) {
    if (!k.tensor) continue;
    k.int_ops = 0;  // the floor multiplies a masked input already in memory, with cuBLAS
    for (double& w : k.warp_instructions) w = 0;
    products.push_back(k);
  }
  return products;
}

// The cuBLAS products of one step, alone, on preallocated operands.
double floor_ms(const Workload& w, nmsnn::MatmulPrecision math) {
  static std::map<std::pair<std::string, int>, double> cache;
  const auto key = std::make_pair(std::string(w.name), int(math));
  if (cache.count(key)) return cache[key];
  Gpu gpu;
  Arena arena;
  const int M = w.spec.time_steps * w.batch;
  const nmsnn::MatmulPrecision gm = math;
  struct Op {
    int kind, N, K;  // 0 forward, 1 weight gradient, 2 input gradient
    float *a, *b, *c;
    nmsnn::kernels::Bf16Operands bf16;  // BF16: the operands as BF16 arrays, made before timing
  };
  std::vector<Op> ops;
  int in = w.spec.inputs;
  for (size_t l = 0; l < w.spec.layers.size(); ++l) {
    const int h = std::get<nmsnn::SpikingLayer>(w.spec.layers[l]).size;
    float* X = arena.floats(size_t(M) * in, -1, 1, 1);
    float* W = arena.floats(size_t(h) * in, -0.1f, 0.1f, 2);
    float* A = arena.floats(size_t(M) * h);
    float* dU = arena.floats(size_t(M) * h, -1, 1, 3);
    float* dW = arena.floats(size_t(h) * in);
    ops.push_back({0, h, in, X, W, A});
    ops.push_back({1, h, in, dU, X, dW});
    if (l > 0) ops.push_back({2, h, in, dU, W, X});
    in = h;
  }
  auto run = [&](const Op& op) {
    if (op.kind == 0) nmsnn::kernels::gemm_forward(gpu.cublas, gm, M, op.N, op.K, op.a, op.b, op.c, "floor", op.bf16);
    if (op.kind == 1) nmsnn::kernels::gemm_weight_grad(gpu.cublas, gm, M, op.N, op.K, op.a, op.b, op.c, "floor", op.bf16);
    if (op.kind == 2) nmsnn::kernels::gemm_input_grad(gpu.cublas, gm, M, op.N, op.K, op.a, op.b, op.c, "floor", op.bf16);
  };
  // In BF16 the floor is the products on BF16 arrays (what the engine's cuBLAS products read
  // since 2026-12-04, after rounding their FP32 operands into them): each op rounds its operands
  // once here, untimed, and the timed runs reuse them.
  if (gm == nmsnn::MatmulPrecision::bf16) {
    for (Op& op : ops) {
      const size_t bytes = nmsnn::kernels::gemm_bf16_bytes(M, op.N, op.K);
      op.bf16 = {arena.bytes(bytes), bytes};
      run(op);
      op.bf16.rounded = true;
    }
    CHECK(cudaStreamSynchronize(gpu.stream));
  }
  const double ms = median_ms(gpu.stream, w.update ? 20 : 5, [&] {
    for (const Op& op : ops) run(op);
  });
  cache[key] = ms;
  return ms;
}

nmsnn::MatmulPrecision math_of(benchmark::State& state) {
  return kPrecisions[state.range(0)];
}

void set_counters(benchmark::State& state, const Workload& w, double ms, double floor,
                  double megabytes, double used_megabytes) {
  state.counters["ms"] = ms;
  state.counters["samples/s"] = w.batch / (ms / 1e3);
  state.counters["TFLOP/s"] = step_flops(w) / (ms / 1e3) / 1e12;
  state.counters["floor_ms"] = floor;
  state.counters["x_floor"] = ms / floor;
  state.counters["device_MB"] = megabytes;
  state.counters["used_MB"] = used_megabytes;
}

// Our engine on a workload, through the device API.
void Engine(benchmark::State& state, const Workload& w) {
  if (!have_gpu(state)) return;
  try {
    const nmsnn::MatmulPrecision math = math_of(state);
    const nmsnn::SavedState saved = state.range(1) ? nmsnn::SavedState::compact : nmsnn::SavedState::fp32;
    const double floor = floor_ms(w, math);
    const size_t used0 = used_device_bytes();
    Gpu gpu;
    Arena arena;
    nmsnn::cuda::DeviceNetwork net(w.spec, gpu.cublas, {math, saved});
    const int B = w.batch, C = w.spec.outputs(), T = w.spec.time_steps, I = w.spec.inputs;

    // Parameters, gradients and momentum in one allocation each (one optimiser launch).
    std::vector<size_t> offsets;
    size_t total = 0;
    for (const auto& p : net.parameters()) {
      offsets.push_back(total);
      total += (p.size + 63) / 64 * 64;
    }
    float* params = arena.floats(total, -0.05f, 0.05f, 4);
    float* grads = arena.floats(total);
    float* momentum = arena.floats(total);
    std::vector<float*> ptable, gtable;
    for (size_t o : offsets) ptable.push_back(params + o), gtable.push_back(grads + o);

    const bool noisy = w.kind == nmsnn::Input::Kind::noisy;
    const size_t in_count = noisy ? size_t(B) * I : size_t(T) * B * I;
    float* x = arena.floats(in_count, noisy ? -0.5f : 0.0f, noisy ? 0.5f : 1.0f, 5);
    float* logits = arena.floats(size_t(B) * C);
    float* dlogits = arena.floats(size_t(B) * C, -0.01f, 0.01f, 6);
    int* labels = static_cast<int*>(arena.bytes(B * sizeof(int)));
    std::vector<int> host_labels(B);
    for (int b = 0; b < B; ++b) host_labels[b] = b % C;
    CHECK(cudaMemcpy(labels, host_labels.data(), B * sizeof(int), cudaMemcpyHostToDevice));
    const size_t ws_bytes = net.workspace_bytes(B, w.kind, true);
    void* ws = arena.bytes(ws_bytes);

    nmsnn::cuda::DeviceInput input;
    input.kind = w.kind;
    input.data = x;
    input.batch = B;
    int64_t step = 0;
    const nmsnn::Sgd sgd{0.1f, 0.5f};
    const double ms = timed_loop(state, gpu.stream, [&] {
      input.noise = {1, uint64_t(step)};
      net.forward(ptable.data(), input, logits, true, {ws, ws_bytes}, gpu.stream);
      if (w.update) nmsnn::cuda::nll_log_softmax(logits, labels, B, C, dlogits, nullptr, gpu.stream);
      net.backward(ptable.data(), input, dlogits, gtable.data(), nullptr, {ws, ws_bytes}, gpu.stream);
      if (w.update) nmsnn::cuda::sgd_update(sgd, params, grads, momentum, total, ++step, gpu.stream);
    });
    set_counters(state, w, ms, floor, arena.megabytes(), (used_device_bytes() - used0) / 1e6);
    state.counters["saved_MB"] = net.saved_bytes(B) / 1e6;
    napkin_counters(state, napkin::step_kernels(napkin_shape(w, saved)), math, ms);
    state.SetLabel(std::string(w.name) + " " + nmsnn::to_string(math) + ", saved " + nmsnn::to_string(saved));
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// The floor alone, as its own row.
void Floor(benchmark::State& state, const Workload& w) {
  if (!have_gpu(state)) return;
  try {
    const double ms = floor_ms(w, math_of(state));
    for (auto _ : state) state.SetIterationTime(ms / 1e3);
    set_counters(state, w, ms, ms, 0, 0);
    napkin_counters(state, product_kernels(w), math_of(state), ms);
    state.SetLabel(std::string(w.name) + " cuBLAS products only, " + nmsnn::to_string(math_of(state)));
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// A host batch of W1: B rows of centred inputs (no zeros) and labels b % 10.
struct W1Batch {
  std::vector<float> x;
  std::vector<int> labels;
};
W1Batch w1_batch(int B) {
  W1Batch batch;
  batch.x.resize(size_t(B) * 784);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(-0.5f, 0.5f);
  for (float& v : batch.x) v = d(rng);
  for (int b = 0; b < B; ++b) batch.labels.push_back(b % 10);
  return batch;
}

// W1 through the public Network API, as `nmsnn train --device cuda` runs it: the input goes up,
// the logits come down, the loss is computed on the host, dlogits go up, and the update runs on
// the device. Wall-clock time (host work included).
void W1_NetworkApi(benchmark::State& state) {
  if (!have_gpu(state)) return;
  try {
    const int B = 1000, C = 10;
    nmsnn::Network net(nmsnn::NetworkSpec::seed_mnist(), {nmsnn::Engine::cuda, 1, 0});
    nmsnn::Optimizer opt(net, nmsnn::Sgd{0.1f, 0.5f});
    const W1Batch batch = w1_batch(B);
    const std::vector<float>& x = batch.x;
    const std::vector<int>& labels = batch.labels;
    auto step = [&] {
      auto pass = net.forward(nmsnn::Input::noisy(x, B));
      const auto loss = nmsnn::nll_log_softmax(pass.logits(), B, C, labels);
      net.backward(pass, loss.grad);
      opt.step();
    };
    step();  // warm-up
    net.parameter("layers.0.bias");  // waits for it: the timed steps start on an idle GPU
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) step();
    net.parameter("layers.0.bias");  // waits for the last update
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
                      double(std::max<benchmark::IterationCount>(1, state.iterations()));
    const Workload w = w1();
    state.counters["ms"] = ms;
    state.counters["samples/s"] = B / (ms / 1e3);
    state.counters["TFLOP/s"] = step_flops(w) / (ms / 1e3) / 1e12;
    state.counters["x_floor"] = ms / floor_ms(w, nmsnn::MatmulPrecision::fp32);
    napkin_counters(state, napkin::step_kernels(napkin_shape(w, nmsnn::SavedState::fp32)),
                    nmsnn::MatmulPrecision::fp32, ms);
    state.SetLabel("W1 fp32 via nmsnn::Network (host loss, copies)");
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// The W1 rows' precisions (their third arg).
const nmsnn::MatmulPrecision kW1Maths[] = {
    nmsnn::MatmulPrecision::fp32, nmsnn::MatmulPrecision::tf32, nmsnn::MatmulPrecision::bf16};
const napkin::Math kW1NapkinMaths[] = {napkin::Math::fp32, napkin::Math::tf32,
                                       napkin::Math::bf16};

// W1's network in inference (a forward pass that keeps nothing), B samples, in each precision:
// layer by layer (first arg 0) or one sample per thread-block cluster (1:
// DeviceOptions::sample_clusters; kernels/sample_cluster.cuh). The napkin model predicts the
// clusters faster for small batches only (bench/RESULTS.md, "Predicted"); these rows measure both.
void W1_Inference(benchmark::State& state) {
  if (!have_gpu(state)) return;
  try {
    const bool clusters = state.range(0) == 1;
    const int B = int(state.range(1));
    const nmsnn::MatmulPrecision math = kW1Maths[state.range(2)];
    Gpu gpu;
    Arena arena;
    nmsnn::cuda::DeviceOptions options;
    options.sample_clusters = clusters;
    options.matmul = math;
    const nmsnn::NetworkSpec spec = nmsnn::NetworkSpec::seed_mnist();
    nmsnn::cuda::DeviceNetwork net(spec, gpu.cublas, options);
    const int C = spec.outputs(), I = spec.inputs;
    std::vector<float*> ptable;
    int seed = 10;
    for (const auto& p : net.parameters())
      ptable.push_back(arena.floats(p.size, -0.05f, 0.05f, ++seed));
    float* x = arena.floats(size_t(B) * I, -0.5f, 0.5f, 5);
    float* logits = arena.floats(size_t(B) * C);
    const size_t ws_bytes = net.workspace_bytes(B, nmsnn::Input::Kind::noisy, false);
    void* ws = arena.bytes(ws_bytes);
    nmsnn::cuda::DeviceInput input;
    input.data = x;
    input.batch = B;
    if (net.runs_by_sample(input, false) != clusters)
      throw std::runtime_error(clusters ? "this device cannot run the sample clusters"
                                        : "the layered path was not chosen");
    int64_t pass = 0;
    const double ms = timed_loop(state, gpu.stream, [&] {
      input.noise = {1, uint64_t(++pass)};
      net.forward(ptable.data(), input, logits, false, {ws, ws_bytes}, gpu.stream);
    });
    napkin::StepShape shape = napkin::w1();
    shape.B = B;
    shape.update = false;
    const double flop =
        napkin::product_flop(128.0 * B, 100, 784) + napkin::product_flop(128.0 * B, 10, 100);
    state.counters["ms"] = ms;
    state.counters["samples/s"] = B / (ms / 1e3);
    state.counters["TFLOP/s"] = flop / (ms / 1e3) / 1e12;
    if (clusters) {
      const double pred = napkin::sample_cluster_prediction(shape, napkin::h200(), false,
                                                            kW1NapkinMaths[state.range(2)])
                              .seconds *
                          1e3;
      state.counters["model_GFLOP"] = flop / 1e9;
      state.counters["model_Gint"] =
          napkin::philox_blocks(128, B, 784) * napkin::kPhiloxIntOpsPerBlock / 1e9;
      state.counters["pred_ms"] = pred;
      state.counters["x_pred"] = ms / pred;
    } else {
      napkin_counters(state, napkin::inference_kernels(shape), math, ms);
    }
    state.SetLabel(std::string("W1 inference ") + nmsnn::to_string(math) + ", B " +
                   std::to_string(B) +
                   (clusters ? ", sample clusters" : ", layer by layer"));
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// Wall-clock ms a step over the benchmark's iterations of step(), queued on `loop` and read back
// once at the end (which waits for the last).
template <typename Step>
double queued_step_ms(benchmark::State& state, nmsnn::StepLoop& loop, Step step) {
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) step();
  loop.read();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
         double(std::max<benchmark::IterationCount>(1, state.iterations()));
}

// A StepLoop row's counters: its time, samples/s and the napkin model's step on `shape`.
void step_loop_counters(benchmark::State& state, napkin::StepShape shape, int B,
                        nmsnn::MatmulPrecision math, double ms) {
  shape.B = B;
  shape.compact = false;
  state.counters["ms"] = ms;
  state.counters["samples/s"] = B / (ms / 1e3);
  napkin_counters(state, napkin::step_kernels(shape), math, ms);
}

// One W1 training step through StepLoop (what `nmsnn train --device cuda` runs: the input up,
// then forward, loss, backward and update on the device with no wait), wall-clock ms per step over
// the benchmark's iterations of queued steps, read back once.
double step_loop_ms(benchmark::State& state, const nmsnn::NetworkOptions& options,
                    const W1Batch& batch, int B) {
  nmsnn::Network net(nmsnn::NetworkSpec::seed_mnist(), options);
  nmsnn::Optimizer opt(net, nmsnn::Sgd{0.1f, 0.5f});
  nmsnn::StepLoop loop(net, opt, nmsnn::Loss::nll);
  const nmsnn::Input input = nmsnn::Input::noisy(batch.x, B);
  loop.step(input, batch.labels.data());  // warm-up
  loop.read();
  return queued_step_ms(state, loop, [&] { loop.step(input, batch.labels.data()); });
}

// W1's training step through StepLoop, B samples of centred inputs, in each precision (third
// arg): layer by layer (first arg 0) or by sample clusters (1: NetworkOptions::sample_clusters).
void W1_StepLoop(benchmark::State& state) {
  if (!have_gpu(state)) return;
  try {
    const bool clusters = state.range(0) == 1;
    const int B = int(state.range(1));
    const nmsnn::MatmulPrecision math = kW1Maths[state.range(2)];
    nmsnn::NetworkOptions options{nmsnn::Engine::cuda, 1, 0};
    options.sample_clusters = clusters;
    options.matmul = math;
    const double ms = step_loop_ms(state, options, w1_batch(B), B);
    napkin::StepShape shape = napkin::w1();
    shape.B = B;
    shape.compact = false;
    state.counters["ms"] = ms;
    state.counters["samples/s"] = B / (ms / 1e3);
    if (clusters) {
      const double pred =
          napkin::sample_cluster_prediction(shape, napkin::h200(), true,
                                            kW1NapkinMaths[state.range(2)])
              .seconds *
          1e3;
      state.counters["pred_ms"] = pred;  // the kernel alone
      state.counters["x_pred"] = ms / pred;
    } else {
      napkin_counters(state, napkin::step_kernels(shape), math, ms);
    }
    state.SetLabel(std::string("W1 step ") + nmsnn::to_string(math) + " via StepLoop, B " +
                   std::to_string(B) +
                   (clusters ? ", sample clusters" : ", layer by layer"));
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// W1's training step through StepLoop on a kept training set (StepLoop::keep_data: what
// `nmsnn train --device cuda` runs since 2026-12-04): 10 batches' rows of centred inputs on the
// device, each step on a batch of B of them taken in a shuffled order, so a step sends only B
// indices. Args: precision, graphs (0: each step's kernels launched; 1: replayed from a CUDA
// graph, StepOptions::graphs), B (1000: the seed preset's; 100: the default preset's, where the
// launches weigh most). Against W1_StepLoop (the batch staged and copied up by the host) and
// Engine/W1 (the device's work alone), it shows what is left of the host's share, and whether
// graphs should be on by default.
void W1_StepLoopKept(benchmark::State& state) {
  if (!have_gpu(state)) return;
  try {
    const int B = int(state.range(2)), batches = 10;
    const nmsnn::MatmulPrecision math = kW1Maths[state.range(0)];
    const bool graphs = state.range(1) == 1;
    const W1Batch data = w1_batch(B * batches);
    std::vector<int> order(size_t(B) * batches);
    for (size_t k = 0; k < order.size(); ++k) order[k] = int(k);
    std::shuffle(order.begin(), order.end(), std::mt19937(7));
    nmsnn::NetworkOptions options{nmsnn::Engine::cuda, 1, 0};
    options.matmul = math;
    nmsnn::Network net(nmsnn::NetworkSpec::seed_mnist(), options);
    nmsnn::Optimizer opt(net, nmsnn::Sgd{0.1f, 0.5f});
    nmsnn::StepOptions step_options;
    step_options.graphs = graphs;
    nmsnn::StepLoop loop(net, opt, nmsnn::Loss::nll, step_options);
    if (!loop.keep_data({nmsnn::Input::Kind::noisy, data.x.data(), B * batches,
                         data.labels.data()}))
      throw std::runtime_error("the training set was not kept on the device");
    int k = 0;
    auto step = [&] { loop.step_rows(order.data() + size_t(B) * (k++ % batches), B); };
    for (int w = 0; w < 3; ++w) step();  // warm-up: with graphs, the capture
    loop.read();
    const double ms = queued_step_ms(state, loop, step);
    step_loop_counters(state, napkin::w1(), B, math, ms);
    state.SetLabel(std::string("W1 step ") + nmsnn::to_string(math) +
                   " via StepLoop on kept rows, B " + std::to_string(B) +
                   (graphs ? ", graphs" : ""));
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// The same step, layer by layer, on the first B MNIST training digits scaled to [0, 1] (the
// default preset's pixels: the background exactly 0) with their labels, in each precision (second
// arg). Its TF32 and BF16 forward leaves out each digit's zero quads (kernels/masked_linear.cu),
// which the model counts with MNIST's live stages (napkin::w1_unit_mnist). The digits are read
// from data/mnist under the working directory: gpu_run.sh runs from the repository root.
void W1_StepLoopMnist(benchmark::State& state) {
  if (!have_gpu(state)) return;
  try {
    const int B = int(state.range(0));
    const nmsnn::MatmulPrecision math = kW1Maths[state.range(1)];
    const nmsnn::Dataset digits =
        nmsnn::load_mnist("data/mnist", true, nmsnn::PixelScale::unit, B);
    if (digits.count != B) throw std::runtime_error("data/mnist holds fewer than B digits");
    nmsnn::NetworkOptions options{nmsnn::Engine::cuda, 1, 0};
    options.matmul = math;
    const double ms = step_loop_ms(state, options, {digits.x, digits.labels}, B);
    step_loop_counters(state, napkin::w1_unit_mnist(), B, math, ms);
    state.SetLabel(std::string("W1 step ") + nmsnn::to_string(math) +
                   " via StepLoop on unit-scaled MNIST digits, B " + std::to_string(B));
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// The first B training digits (K pixels each) on the device, centred (x / 255 - 0.5, the seed's)
// or unit-scaled (x / 255, the default preset's).
const float* w1_digits(Arena& arena, bool unit, int B, int K) {
  const nmsnn::Dataset digits = nmsnn::load_mnist(
      "data/mnist", true, unit ? nmsnn::PixelScale::unit : nmsnn::PixelScale::centered, B);
  if (digits.count != B || digits.features != K)
    throw std::runtime_error("data/mnist holds fewer than " + std::to_string(B) + " digits of " +
                             std::to_string(K) + " pixels");
  float* x = arena.floats(size_t(B) * K);
  CHECK(cudaMemcpy(x, digits.x.data(), sizeof(float) * B * K, cudaMemcpyHostToDevice));
  return x;
}

// The first layer's weight gradient of W1 alone, walked by rows or by sample, on the first 1000
// training digits centred (no zeros) or unit-scaled, with a random dU: against the model's kernel
// for that walk and input (its partials' sum included).
void W1_WeightGrad(benchmark::State& state) {
  if (!have_gpu(state)) return;
  try {
    const bool by_sample = state.range(0) == 1, unit = state.range(1) == 1;
    const nmsnn::MatmulPrecision math = kW1Maths[state.range(2)];
    // The last argument as W1_FirstLayerForward's: wgmma (1, by sample only) or mma.sync (0).
    if (state.range(3) == 1 && (!by_sample || !nmsnn::kernels::masked_linear_wgmma_available())) {
      state.SkipWithError(by_sample ? "no wgmma here (compute capability 9.0 and sm_90a code "
                                      "needed)"
                                    : "the weight gradient by rows has no wgmma form");
      return;
    }
    const bool wgmma = state.range(3) == 1;
    const auto instruction = wgmma ? nmsnn::kernels::MmaInstruction::wgmma
                                   : nmsnn::kernels::MmaInstruction::mma_sync;
    const int T = 128, B = 1000, K = 784, N = 100;
    Gpu gpu;
    Arena arena;
    const float* x = w1_digits(arena, unit, B, K);
    const float* dU = arena.floats(size_t(T) * B * N, -1.0f, 1.0f, 7);
    float* dW = arena.floats(size_t(N) * K);
    float* scratch = arena.floats(nmsnn::kernels::masked_linear_wgrad_scratch(T, B, N, K));
    using nmsnn::kernels::WgradWalk;
    const WgradWalk walk = by_sample ? WgradWalk::samples : WgradWalk::rows;
    int64_t pass = 0;
    const double ms = timed_loop(state, gpu.stream, [&] {
      nmsnn::kernels::masked_linear_wgrad({1, uint64_t(++pass)}, x, T, B, K, dU, N, dW, scratch,
                                          math, gpu.stream, walk, instruction);
    });
    napkin::StepShape shape = unit ? napkin::w1_unit_mnist() : napkin::w1();
    shape.wgmma = wgmma;
    const double splits = by_sample ? napkin::live_wgrad_splits(B, N, K)
                                    : napkin::wgrad_splits(double(T) * B, N, K);
    std::vector<napkin::Kernel> ks = {
        by_sample ? napkin::masked_wgrad_by_sample(shape, N, " L0", splits, false)
                  : napkin::masked_wgrad_by_rows(shape, N, " L0", splits, false)};
    ks.push_back({"reduce_partials L0", "", 4 * (splits + 1) * N * K, splits * N * K, 0, 0, false});
    state.counters["ms"] = ms;
    state.counters["TFLOP/s"] = 2.0 * T * B * N * K / (ms / 1e3) / 1e12;
    napkin_counters(state, ks, math, ms);
    state.SetLabel(std::string("W1 first-layer weight gradient by ") +
                   (by_sample ? "sample" : "rows") + ", " + (unit ? "unit-scaled" : "centred") +
                   " digits, " + nmsnn::to_string(math) + (wgmma ? ", wgmma" : ", mma.sync"));
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// The first layer's forward of a W1 training step alone, its product and time loop apart
// (masked_linear_forward, then lif_forward) or as one kernel (masked_linear_lif_forward), the
// spike16 codes and the spikes kept as in the model's W1 (SavedState::compact); or as one kernel
// that makes the output layer's current [T, B, 10] from its spikes instead of writing them (as
// the engine runs W1). On the first 1000 training digits: what each fusion saves, against the
// model's kernels for each (the first two from the model with fuse_small_layers off). The last
// argument: the product on the library's choice of instruction (1: wgmma on an H200 built for
// sm_90a) or on mma.sync (0), side by side.
void W1_FirstLayerForward(benchmark::State& state) {
  if (!have_gpu(state)) return;
  try {
    const bool fused = state.range(0) >= 1, above = state.range(0) == 2;
    const bool unit = state.range(1) == 1;
    const nmsnn::MatmulPrecision math = kW1Maths[state.range(2)];
    const bool wgmma = state.range(3) == 1 && nmsnn::kernels::masked_linear_wgmma_available();
    if (state.range(3) == 1 && !wgmma) {
      state.SkipWithError("no wgmma here (compute capability 9.0 and sm_90a code needed)");
      return;
    }
    const auto instruction = wgmma ? nmsnn::kernels::MmaInstruction::wgmma
                                   : nmsnn::kernels::MmaInstruction::mma_sync;
    const int T = 128, B = 1000, K = 784, N = 100;
    Gpu gpu;
    Arena arena;
    const float* x = w1_digits(arena, unit, B, K);
    const float* W = arena.floats(size_t(N) * K, -0.08f, 0.08f, 3);
    const float* bias = arena.floats(size_t(N), -0.03f, 0.03f, 4);
    const size_t n = size_t(T) * B * N;
    float* spikes = arena.floats(n);
    uint16_t* codes = reinterpret_cast<uint16_t*>(arena.floats((n + 1) / 2));
    nmsnn::SpikingLayer layer;  // the seed's neuron
    nmsnn::kernels::LifForwardArgs args;
    args.T = T, args.B = B, args.H = N;
    args.bias = bias;
    args.write_u = false;
    args.saved_spikes = codes;
    args.spikes = above ? nullptr : spikes;
    nmsnn::kernels::NextLayerProduct next;
    if (above) {
      const int C = 10;
      next = {arena.floats(size_t(C) * N, -0.2f, 0.2f, 5), C, arena.floats(size_t(T) * B * C)};
    }
    // W's arranged tiles, as the engine gives them (made by each call, on wgmma).
    const size_t tile_floats = nmsnn::kernels::masked_linear_weight_tiles_floats(N, K, math);
    float* tiles = tile_floats ? arena.floats(tile_floats) : nullptr;
    int64_t pass = 0;
    const double ms = timed_loop(state, gpu.stream, [&] {
      const nmsnn::NoiseKey key{1, uint64_t(++pass)};
      if (fused) {
        nmsnn::kernels::masked_linear_lif_forward(key, x, T, B, K, W, layer, args, math,
                                                  gpu.stream, next, instruction, tiles);
      } else {  // a made in the spikes' buffer and turned into them in place, as the engine does
        nmsnn::kernels::masked_linear_forward(key, x, T, B, K, W, N, spikes, math, gpu.stream,
                                              instruction, tiles);
        nmsnn::kernels::LifForwardArgs apart = args;
        apart.u = spikes;
        nmsnn::kernels::lif_forward(layer, apart, gpu.stream);
      }
    });
    napkin::StepShape shape = unit ? napkin::w1_unit_mnist() : napkin::w1();
    shape.fuse_small = above;
    shape.wgmma = wgmma;
    std::vector<napkin::Kernel> ks;
    for (const napkin::Kernel& k : napkin::step_kernels(shape)) {
      if (k.name != "masked_linear_forward L0" && k.name != "lif_forward L0" &&
          k.name != "masked_linear_lif_forward L0" && k.name != "masked_linear_weight_tiles L0")
        continue;
      const bool wanted = k.name == "masked_linear_weight_tiles L0"
                              ? tiles && wgmma  // made where the forward reads them
                              : fused == (k.name == "masked_linear_lif_forward L0");
      if (!wanted) continue;
      ks.push_back(k);
      for (bool& runs : ks.back().runs) runs = true;  // apart: what TF32 would take unfused
    }
    state.counters["ms"] = ms;
    state.counters["TFLOP/s"] = 2.0 * T * B * N * K / (ms / 1e3) / 1e12;
    napkin_counters(state, ks, math, ms);
    const char* how = above ? "in one kernel with the output's product"
                      : fused ? "in one kernel"
                              : "apart";
    state.SetLabel(std::string("W1 first-layer forward, product and time loop ") + how + ", " +
                   (unit ? "unit-scaled" : "centred") + " digits, " + nmsnn::to_string(math) +
                   (math == nmsnn::MatmulPrecision::fp32 ? ""
                    : wgmma                              ? ", wgmma"
                                                         : ", mma.sync"));
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// Philox4x32-10 blocks for W1's masks (T x B x ceil(I/4) counters), nothing else: each thread
// folds its blocks' uniforms into one float so the compiler keeps every round and conversion,
// and writes it once (2 MB in all, against ~2.7 G integer operations).
__global__ void philox_only_kernel(nmsnn::NoiseKey key, int T, int B, int Q, float* sink) {
  // Work item = one row (t, b) and a quarter of its Q counters: the divisions that find (t, b)
  // are paid once per ~49 blocks, not per block.
  const int quarter = (Q + 3) / 4, items = T * B * 4;
  float acc = 0.0f;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < items; i += gridDim.x * blockDim.x) {
    const int row = i >> 2, t = row / B, b = row - t * B;
    const int q_end = min(Q, (i & 3) * quarter + quarter);
    for (int q = (i & 3) * quarter; q < q_end; ++q) {
      const nmsnn::Philox4x32 r = nmsnn::noise_block(key, uint32_t(q), uint32_t(b), uint32_t(t));
      acc += nmsnn::uniform_from_bits(r.v[0]) + nmsnn::uniform_from_bits(r.v[1]) +
             nmsnn::uniform_from_bits(r.v[2]) + nmsnn::uniform_from_bits(r.v[3]);
    }
  }
  sink[blockIdx.x * blockDim.x + threadIdx.x] = acc;
}

// One pass of W1's masks through Philox alone: measured against napkin_math's integer count.
void PhiloxRate(benchmark::State& state) {
  if (!have_gpu(state)) return;
  try {
    Gpu gpu;
    Arena arena;
    const int T = 128, B = 1000, Q = (784 + 3) / 4;
    int sms = 0;
    CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    const int threads = 256, blocks = sms * 8;  // 2048 resident threads per SM
    float* sink = arena.floats(size_t(threads) * blocks);
    int64_t pass = 0;
    const double ms = timed_loop(state, gpu.stream, [&] {
      philox_only_kernel<<<blocks, threads, 0, gpu.stream>>>({1, uint64_t(++pass)}, T, B, Q, sink);
      CHECK(cudaGetLastError());
    });
    const double philox_blocks = napkin::philox_blocks(T, B, 784);
    const napkin::Kernel k{"philox", "", 0, 0, philox_blocks * napkin::kPhiloxIntOpsPerBlock, 0, false};
    state.counters["ms"] = ms;
    state.counters["Gblocks/s"] = philox_blocks / (ms / 1e3) / 1e9;
    // The integer rate this implies if a block costs kPhiloxIntOpsPerBlock operations.
    state.counters["Tint/s"] = k.int_ops / (ms / 1e3) / 1e12;
    napkin_counters(state, {k}, nmsnn::MatmulPrecision::fp32, ms);
    state.SetLabel("W1 masks of one pass, Philox only");
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// Arg(i) for every precision of kPrecisions.
void all_precisions(benchmark::internal::Benchmark* b) {
  for (int i = 0; i < kPrecisionCount; ++i) b->Arg(i);
}
// Args({i, saved}) for every precision and both saved states.
void all_precisions_and_saved(benchmark::internal::Benchmark* b) {
  for (int i = 0; i < kPrecisionCount; ++i) b->Args({i, 0})->Args({i, 1});
}

}  // namespace

BENCHMARK_CAPTURE(Floor, W1, w1())->Apply(all_precisions)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK_CAPTURE(Engine, W1, w1())->Apply(all_precisions_and_saved)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(PhiloxRate)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(W1_NetworkApi)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(W1_Inference)->ArgsProduct({{0, 1}, {16, 1000}, {0, 1, 2}})->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(W1_StepLoop)->ArgsProduct({{0, 1}, {16, 1000}, {0, 1, 2}})->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(W1_StepLoopKept)->ArgsProduct({{0, 1, 2}, {0, 1}, {1000, 100}})->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(W1_StepLoopMnist)->ArgsProduct({{1000}, {0, 1, 2}})->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(W1_WeightGrad)->ArgsProduct({{0, 1}, {0, 1}, {1, 2}, {1, 0}})->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(W1_FirstLayerForward)->ArgsProduct({{0, 1, 2}, {0, 1}, {1, 2}, {1, 0}})->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Floor, W2, w2())->Apply(all_precisions)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK_CAPTURE(Engine, W2, w2())->Apply(all_precisions_and_saved)->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);

BENCHMARK_MAIN();
