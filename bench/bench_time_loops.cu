// bench_time_loops.cu — the time-loop kernels alone, against the device's copy bandwidth.
//
// Each kernel runs one neuron per thread through all T steps with its state in registers, so it
// reads and writes each [T, B, H] tensor once: memory bound. Reported per kernel: GB/s of the
// tensors it must move (below) and of_copy = that over the bandwidth of cudaMemcpyAsync
// device-to-device on tensors of the same size (read + write), the practical ceiling.
//
//   kernel                     bytes per (t, b, h)
//   lif_forward                12: a in, u out (in place), spikes out
//   lif_backward               12: u, dL/dspikes in, du out
//   spiking_activation fwd      8: x in, y out
//   spiking_activation bwd     12: x, dy in, dx out
//   lowpass forward            12: x in, y and saved level out
//   lowpass backward           16: x, level, dy in, dx out
//
// Shape: T = 100, B = 256, H = 4096 (105 M elements, 419 MB per tensor). Linked into bench_cuda.
#include "gpu_timing.cuh"
#include "lif_backward.cuh"
#include "lif_forward.cuh"
#include "lowpass.cuh"
#include "spiking_activation.cuh"

namespace {

using bench::Arena;
using bench::Gpu;

constexpr int kT = 100, kB = 256, kH = 4096;
constexpr size_t kElements = size_t(kT) * kB * kH;

// Device-to-device copy bandwidth on one tensor of this shape, GB/s (bytes read + written).
double copy_gbps() {
  static double cached = 0;
  if (cached > 0) return cached;
  Gpu gpu;
  Arena arena;
  float* a = arena.floats(kElements, -1, 1, 1);
  float* b = arena.floats(kElements);
  const double ms = bench::median_ms(gpu.stream, 5, [&] {
    CHECK(cudaMemcpyAsync(b, a, kElements * sizeof(float), cudaMemcpyDeviceToDevice, gpu.stream));
  });
  cached = 2.0 * kElements * sizeof(float) / (ms / 1e3) / 1e9;
  return cached;
}

enum Kernel { lif_fwd, lif_bwd, sa_fwd, sa_bwd, lowpass_fwd, lowpass_bwd };
const char* kNames[] = {"lif_forward", "lif_backward", "spiking_activation_forward",
                        "spiking_activation_backward", "lowpass_forward", "lowpass_backward"};
const int kBytesPerElement[] = {12, 12, 8, 12, 12, 16};

void TimeLoop(benchmark::State& state) {
  if (!bench::have_gpu(state)) return;
  const Kernel kernel = Kernel(state.range(0));
  try {
    const double ceiling = copy_gbps();
    Gpu gpu;
    Arena arena;
    float* in = arena.floats(kElements, -1.0f, 2.0f, 2);  // a, u or x
    float* grad = arena.floats(kElements, -1.0f, 1.0f, 3);  // dL/dspikes or dy
    float* out = arena.floats(kElements);
    float* out2 = arena.floats(kElements);
    float* per_neuron = arena.floats(size_t(kB) * kH);
    float* params = arena.floats(2 * kH, -0.5f, 0.5f, 4);
    nmsnn::SpikingLayer lif;
    lif.size = kH;
    nmsnn::SpikingActivation sa;
    sa.dt = 0.01f;
    const double ms = bench::timed_loop(state, gpu.stream, [&] {
      switch (kernel) {
        case lif_fwd: {
          nmsnn::kernels::LifForwardArgs a;
          a.T = kT, a.B = kB, a.H = kH, a.bias = params, a.u = in, a.spikes = out;
          nmsnn::kernels::lif_forward(lif, a, gpu.stream);
          break;
        }
        case lif_bwd: {
          nmsnn::kernels::LifBackwardArgs a;
          a.T = kT, a.B = kB, a.H = kH, a.u = in, a.d_spikes = grad, a.du = out;
          a.dbias_part = per_neuron;
          nmsnn::kernels::lif_backward(lif, a, gpu.stream);
          break;
        }
        case sa_fwd: {
          nmsnn::kernels::SpikingActivationForwardArgs a;
          a.T = kT, a.B = kB, a.H = kH, a.x = in, a.y = out;
          nmsnn::kernels::spiking_activation_forward(sa, a, gpu.stream);
          break;
        }
        case sa_bwd: {
          nmsnn::kernels::SpikingActivationBackwardArgs a;
          a.T = kT, a.B = kB, a.H = kH, a.x = in, a.dy = grad, a.dx = out;
          nmsnn::kernels::spiking_activation_backward(sa, a, gpu.stream);
          break;
        }
        case lowpass_fwd: {
          nmsnn::kernels::LowpassForwardArgs a;
          a.T = kT, a.B = kB, a.H = kH, a.p = params, a.initial = params + kH, a.x = in;
          a.y = out, a.level = out2;
          nmsnn::kernels::lowpass_forward(a, gpu.stream);
          break;
        }
        case lowpass_bwd: {
          nmsnn::kernels::LowpassBackwardArgs a;
          a.T = kT, a.B = kB, a.H = kH, a.p = params, a.initial = params + kH, a.x = in;
          a.level = out2, a.dy = grad, a.dx = out, a.dp_part = per_neuron;
          a.dinitial_part = per_neuron;  // the benchmark ignores the values
          nmsnn::kernels::lowpass_backward(a, gpu.stream);
          break;
        }
      }
    });
    const double gbps = double(kBytesPerElement[kernel]) * kElements / (ms / 1e3) / 1e9;
    state.counters["ms"] = ms;
    state.counters["GB/s"] = gbps;
    state.counters["copy_GB/s"] = ceiling;
    state.counters["of_copy"] = gbps / ceiling;
    state.SetLabel(kNames[kernel]);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

}  // namespace

BENCHMARK(TimeLoop)->DenseRange(0, 5)->UseManualTime()->Unit(benchmark::kMillisecond);
