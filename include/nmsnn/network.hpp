// nmsnn/network.hpp — a spiking network: parameters, forward and backward through time.
//
//   nmsnn::Network net(nmsnn::NetworkSpec::seed_mnist(), {nmsnn::Engine::cpu, /*seed=*/1});
//   auto pass = net.forward(nmsnn::Input::noisy(x, batch));     // x: [B, 784] host floats
//   auto loss = nmsnn::nll_log_softmax(pass.logits(), batch, 10, labels);
//   net.backward(pass, loss.grad);                              // gradients of every parameter
//   optimizer.step();                                           // see optimizer.hpp
//
// Shapes are row-major: x[B, I], sequences xi[T, B, I], logits[B, C]. Every host array is checked
// against the shape it must have; a mismatch throws nmsnn::Error naming the argument and both sizes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nmsnn/matmul_precision.hpp"
#include "nmsnn/saved_state.hpp"
#include "nmsnn/spec.hpp"

namespace nmsnn {

namespace detail {
class EngineImpl;
struct ForwardState;
}  // namespace detail

// Where the network's numbers live and run.
enum class Engine {
  cpu,   // the reference engine: plain C++ loops over samples and time, threaded over the batch
  cuda,  // fused CUDA kernels (needs a build with CUDA and an NVIDIA GPU)
};
const char* to_string(Engine engine);
Engine parse_engine(const std::string& name);  // "cpu" or "cuda"

// True when this build has the CUDA engine and a CUDA device is present. `why`, when given,
// receives the reason when it is false.
bool cuda_available(std::string* why = nullptr);

// The CPU engine's kernel set on this machine, chosen at run time from the CPU's features: "avx2"
// (AVX2 + FMA) or "baseline" (any CPU of the architecture). NMSNN_CPU_KERNELS=baseline|avx2 forces
// one. Results within one set are bit-identical run to run; across sets they differ by rounding.
const char* cpu_kernel_set();

struct NetworkOptions {
  Engine engine = Engine::cpu;
  uint64_t seed = 0;  // initial weights and the noise masks derive from it
  int threads = 0;    // CPU engine worker threads; 0 = one per hardware thread
  MatmulPrecision matmul = MatmulPrecision::fp32;  // cuda engine only
  SavedState saved = SavedState::fp32;  // cuda engine only; the cpu engine always keeps fp32
  // cuda engine only: run inference passes and training steps of a noise-encoded pair of spiking
  // layers one sample per thread-block cluster, each sample's masks made once per step and kept
  // on chip (compute capability 9.0; nmsnn/cuda.hpp DeviceOptions has the details). Off by
  // default: predicted faster than the layered kernels for small batches only.
  bool sample_clusters = false;
  // cuda engine only: the CUDA device ordinal it runs on (a data-parallel run gives each rank on
  // a machine its own: the rank's local index modulo the device count).
  int device = 0;
};

// The input of one forward pass. It points at caller-owned host memory, which must stay alive
// and unchanged until forward() returns and, for a pass that will be differentiated, until
// backward() returns: the cpu engine's backward reads the input again (to regenerate the noise
// masks' products and the weight gradients) rather than keep a copy of it.
struct Input {
  enum class Kind {
    noisy,     // static features x[B, I], encoded per step by the Philox noise mask (SPEC.md 1)
    sequence,  // a given sequence xi[T, B, I] (spike trains, event data, sensor series)
    repeated,  // static features x[B, I], the same at every step (PyTorchSpiking's tutorial)
  };
  Kind kind = Kind::noisy;
  const float* data = nullptr;
  size_t count = 0;  // number of floats at data
  int batch = 0;

  static Input noisy(const float* x, size_t count, int batch) {
    return {Kind::noisy, x, count, batch};
  }
  static Input noisy(const std::vector<float>& x, int batch) {
    return noisy(x.data(), x.size(), batch);
  }
  static Input sequence(const float* xi, size_t count, int batch) {
    return {Kind::sequence, xi, count, batch};
  }
  static Input sequence(const std::vector<float>& xi, int batch) {
    return sequence(xi.data(), xi.size(), batch);
  }
  static Input repeated(const float* x, size_t count, int batch) {
    return {Kind::repeated, x, count, batch};
  }
  static Input repeated(const std::vector<float>& x, int batch) {
    return repeated(x.data(), x.size(), batch);
  }
};

// What one layer returned at each step of a recorded forward pass, each [steps, B, H]: for a
// spiking layer its inner state v and spikes s (with its output delay, as the seed records them);
// for a SpikingActivation its voltage and output; for a Lowpass its level (both); for other
// layers their output (both).
struct LayerTrace {
  int steps = 0, batch = 0, size = 0;
  std::vector<float> state;
  std::vector<float> spikes;
};

// Firing rates of one spiking layer in one forward pass, per sample and neuron [B, H]:
// SpikingActivation layers in Hz (spikes per simulated second), the seed's spiking layers in
// spikes per step (the fraction of steps at which a neuron fired).
struct LayerRates {
  int layer = 0;
  bool hertz = false;
  int batch = 0, size = 0;
  std::vector<float> rates;
};

struct ForwardOptions {
  bool record = false;   // keep every layer's per-step state and spikes (LayerTrace)
  bool rates = false;    // measure every spiking layer's firing rates (LayerRates)
  // A training pass keeps what backward() needs, and makes SpikingActivation layers without
  // spiking-aware training (and Lowpass layers without apply_during_training) behave as in
  // PyTorchSpiking's training mode. false: an inference pass.
  bool training = true;
  // The forward-pass counter for the noise masks. By default the network's own counter, which
  // advances by one per forward pass; give one to replay a pass's masks exactly.
  bool use_noise_pass = false;
  uint64_t noise_pass = 0;
  // Key each sample's noise masks (and SpikingActivation's random initial voltages) by the
  // sample's contents instead of its row in the batch: with a fixed noise_pass, a sample then
  // gets the same masks, and so the same logits, whatever batch it is in and wherever in it
  // (what Model's predictions use). Training passes keep the row index (false).
  bool noise_by_row = false;
  // Without noise_by_row, row b is keyed by first_row + b: the rows of a shard of a larger batch
  // (a data-parallel rank's) draw the masks they would draw in the whole batch.
  int first_row = 0;
};

// The result of a forward pass and the context backward() needs.
class ForwardPass {
 public:
  ForwardPass();
  ~ForwardPass();
  ForwardPass(ForwardPass&&) noexcept;
  ForwardPass& operator=(ForwardPass&&) noexcept;

  const std::vector<float>& logits() const;  // [B, C]
  int batch() const;
  int outputs() const;
  uint64_t noise_pass() const;   // the counter its masks used
  size_t saved_bytes() const;    // memory held for backward (0 for an inference pass)
  const std::vector<LayerTrace>& trace() const;  // empty unless recorded
  const std::vector<LayerRates>& rates() const;  // empty unless asked for
  // The regularization terms of the pass (SpikingActivation rate regularization), a loss to add
  // to the task's; backward() adds their gradients itself.
  double regularization_loss() const;

 private:
  friend class Network;
  std::shared_ptr<detail::ForwardState> state_;
};

// ---- memory --------------------------------------------------------------------------------
// What a network needs, estimated from its spec alone, before anything is allocated. Network
// checks these against memory_limit() (limits.hpp), so a size that cannot fit is one clear error
// ("a training pass of batch 100 at T=1000000 through 784-100-10 needs 37.3 GiB, more than the
// memory limit of ...") rather than std::bad_alloc. `spec` must be valid (NetworkSpec::validate);
// the sums are taken in double, so even the largest valid spec gives a finite number.

// Bytes of the parameters with their gradients and optimiser state (momentum, or Adam's two
// moments): 4 floats per parameter, with the cpu engine's padding of widths to multiples of 8.
double parameter_bytes(const NetworkSpec& spec);

// Bytes one forward pass of `batch` samples allocates on the cpu engine with `threads` worker
// threads: what a training pass keeps for backward (per layer up to [T, B, width]) and the
// per-block gradient sums of its backward, each worker's per-sample buffers, the logits, and the
// traces and rates asked for in `options`. An estimate within 2x of what the engine allocates.
double pass_bytes(const NetworkSpec& spec, int batch, const ForwardOptions& options, int threads);

class Network {
 public:
  // Validates the spec, checks parameter_bytes(spec) against memory_limit() (limits.hpp), creates
  // the engine and initialises the parameters from options.seed.
  explicit Network(const NetworkSpec& spec, const NetworkOptions& options = {});
  ~Network();
  Network(Network&&) noexcept;
  Network& operator=(Network&&) noexcept;

  const NetworkSpec& spec() const;
  Engine engine() const;
  uint64_t seed() const;

  // ---- parameters --------------------------------------------------------------------------
  const std::vector<ParameterInfo>& parameters() const;
  std::vector<float> parameter(const std::string& name) const;
  void set_parameter(const std::string& name, const std::vector<float>& values);
  // The seed's initialisation: Xavier-uniform weights, PyTorch-Linear bias
  // U(-1/sqrt(fan_in), 1/sqrt(fan_in)); deterministic in `seed`.
  void initialize(uint64_t seed);
  // dL/dparameter from the last backward() (zeros before the first).
  std::vector<float> gradient(const std::string& name) const;

  // ---- forward and backward ----------------------------------------------------------------
  // input.batch must be in [1, kMaxBatchSize] (limits.hpp); on the cpu engine the pass's memory
  // (pass_bytes) is checked against memory_limit() before anything is allocated.
  ForwardPass forward(const Input& input, const ForwardOptions& options = {});
  // dlogits: dL/dlogits [B, C]. Overwrites every parameter's gradient (with the pass's
  // regularization terms included). `dinput`, when given, receives dL/dxi [T, B, I] for a
  // sequence input, dL/dx [B, I] for a repeated one. Throws if `pass` was not a training pass.
  void backward(const ForwardPass& pass, const std::vector<float>& dlogits,
                std::vector<float>* dinput = nullptr);

  // Forward passes made so far (the next pass's default noise counter).
  uint64_t noise_passes() const;
  // Sets that counter, so a training run resumed from a checkpoint draws the masks it would have.
  void set_noise_passes(uint64_t passes);

  // Changes the dt of SpikingActivation layer `layer` (PyTorchSpiking lets you change dt at
  // inference to trade accuracy for temporal sparsity). Throws for other layer kinds.
  void set_dt(int layer, float dt);

  // The engine behind this network; for the library's own optimisers.
  detail::EngineImpl& engine_impl();

 private:
  friend class StepLoop;  // checks its inputs as forward() does and draws its noise passes
  size_t parameter_index(const std::string& name) const;
  void check_input(const Input& input, const ForwardOptions& options, const char* what);
  void check_pass_memory(int batch, const ForwardOptions& options);

  NetworkOptions options_;  // the spec lives in the engine (EngineImpl::spec), its one copy
  uint64_t passes_ = 0;
  std::unique_ptr<detail::EngineImpl> impl_;
  std::vector<ParameterInfo> layout_;
  // The last kind of pass whose memory was checked, and the limit it was checked against, so
  // that a training loop checks once, not at every batch.
  int64_t checked_pass_ = -1, checked_limit_ = 0;
};

}  // namespace nmsnn
