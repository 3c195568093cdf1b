// network/network.cpp — nmsnn::Network: argument checks, the noise counter, and dispatch to an engine.
#include "nmsnn/network.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>

#include "network/engine.hpp"
#include "cpu/layer.hpp"
#include "core/finite.hpp"
#include "core/random_stream.hpp"
#include "network/initialize.hpp"
#include "nmsnn/error.hpp"
#include "nmsnn/limits.hpp"

namespace nmsnn {

using detail::fail;

// ---- engine names --------------------------------------------------------------------------
const char* to_string(Engine engine) { return engine == Engine::cpu ? "cpu" : "cuda"; }

Engine parse_engine(const std::string& name) {
  if (name == "cpu") return Engine::cpu;
  if (name == "cuda") return Engine::cuda;
  fail("unknown device ", detail::quote(name), " (expected cpu or cuda)");
}

// ---- ForwardPass ---------------------------------------------------------------------------
ForwardPass::ForwardPass() = default;
ForwardPass::~ForwardPass() = default;
ForwardPass::ForwardPass(ForwardPass&&) noexcept = default;
ForwardPass& ForwardPass::operator=(ForwardPass&&) noexcept = default;

namespace {
const detail::ForwardState& checked(const std::shared_ptr<detail::ForwardState>& s) {
  if (!s) fail("ForwardPass is empty (default-constructed or moved from)");
  return *s;
}
}  // namespace

const std::vector<float>& ForwardPass::logits() const { return checked(state_).logits; }
int ForwardPass::batch() const { return checked(state_).batch; }
int ForwardPass::outputs() const { return checked(state_).outputs; }
uint64_t ForwardPass::noise_pass() const { return checked(state_).noise.pass; }
size_t ForwardPass::saved_bytes() const { return checked(state_).saved_bytes; }
const std::vector<LayerTrace>& ForwardPass::trace() const { return checked(state_).trace; }
const std::vector<LayerRates>& ForwardPass::rates() const { return checked(state_).rates; }
double ForwardPass::regularization_loss() const { return checked(state_).regularization; }

// ---- what backward reads --------------------------------------------------------------------
namespace detail {

bool bypassed_lowpass(const LayerSpec& l, bool training) {
  const Lowpass* f = std::get_if<Lowpass>(&l);
  return f && training && !f->apply_during_training;
}

bool backward_reads_input(const LayerSpec& l) {
  return !std::holds_alternative<TemporalAvgPool>(l) && !bypassed_lowpass(l, true) &&
         !std::holds_alternative<AvgPool2d>(l) && !std::holds_alternative<Flatten>(l) &&
         !std::holds_alternative<Lif>(l);
}

}  // namespace detail

// ---- memory estimates ----------------------------------------------------------------------
namespace {

// One layer as the cpu engine lays it out (cpu/cpu_network.hpp and the layers in cpu/): widths
// padded where the layer has weights, the steps it returns, the floats it saves per sample of a
// training pass, and whether the network keeps its output for the next layer's backward.
struct CpuShape {
  double in_width = 0, width = 0, in_steps = 0, steps = 0, saved = 0, params = 0;
  double scratch = 0;  // per-worker scratch beyond the usual [T, W] arrays (a conv's im2col)
  double untransposed = 0;  // the weights' copy a dense layer's backward makes (linear_layer.hpp)
  bool rebuilds_output = false;
};

std::vector<CpuShape> cpu_shapes(const NetworkSpec& spec) {
  std::vector<CpuShape> out;
  double width = spec.inputs, steps = spec.time_steps;
  const size_t L = spec.layers.size();
  for (size_t l = 0; l < L; ++l) {
    const LayerSpec& layer = spec.layers[l];
    CpuShape s;
    s.in_width = width, s.in_steps = steps, s.width = width, s.steps = steps;
    if (auto* sp = std::get_if<SpikingLayer>(&layer)) {
      s.width = cpu::padded_width(sp->size);
      s.saved = steps * s.width;             // u[T, W]
      s.rebuilds_output = l + 1 < L;         // spikes from u; the last layer returns its state
    } else if (auto* d = std::get_if<Dense>(&layer)) {
      s.width = cpu::padded_width(d->size);
    } else if (auto* a = std::get_if<SpikingActivation>(&layer)) {
      s.steps = a->return_sequences ? steps : 1;
      s.saved = a->regularized() ? width : 0;
    } else if (auto* f = std::get_if<Lowpass>(&layer)) {
      s.steps = f->return_sequences ? steps : 1;
      s.saved = steps * width;
      s.params = 2 * width;
    } else if (std::holds_alternative<TemporalAvgPool>(layer)) {
      s.steps = 1;
    } else if (auto* c = std::get_if<Conv2d>(&layer)) {
      // WT[C kh kw, channels padded] and the bias; the maps [O, H', W'] padded at their end.
      const std::vector<int> in = spec.layer_shape(int(l) - 1);
      s.width = cpu::padded_width(spec.layer_width(int(l)));
      s.params = (double(in[0]) * c->kernel[0] * c->kernel[1] + 1) * cpu::padded_width(c->out_channels);
      // One step's colT[K, P padded], dy[O, P padded] and dY[P, O padded] (conv2d_layer.hpp).
      const std::vector<int> out = spec.layer_shape(int(l));
      const double P = double(out[1]) * out[2], Ppad = cpu::padded_width(out[1] * out[2]);
      s.scratch = (double(in[0]) * c->kernel[0] * c->kernel[1] + c->out_channels) * Ppad +
                  P * cpu::padded_width(c->out_channels);
    } else if (std::holds_alternative<AvgPool2d>(layer) ||
               std::holds_alternative<MaxPool2d>(layer)) {
      s.width = cpu::padded_width(spec.layer_width(int(l)));
    } else if (std::holds_alternative<Lif>(layer)) {
      s.saved = steps * s.width;        // u[T, W]
      s.rebuilds_output = l + 1 < L;    // as SpikingLayer
    }
    if (std::holds_alternative<SpikingLayer>(layer) || std::holds_alternative<Dense>(layer)) {
      s.untransposed = s.in_width * s.width;
      s.params = s.untransposed + s.width;
    }
    width = s.width, steps = s.steps;
    out.push_back(s);
  }
  return out;
}

// "2 layers (784-100-10)": the input width, then every layer's, the middle elided when long.
std::string describe_network(const NetworkSpec& spec) {
  const int L = int(spec.layers.size());
  std::string widths = std::to_string(spec.inputs);
  for (int l = 0; l < L; ++l) {
    if (L > 8 && l >= 4 && l < L - 2) {
      if (l == 4) widths += "-...";
      continue;
    }
    widths += "-" + std::to_string(spec.layer_width(l));
  }
  return std::to_string(L) + (L == 1 ? " layer (" : " layers (") + widths + ")";
}

int worker_threads(int threads) {
  if (threads > 0) return threads;
  return std::max(1, int(std::thread::hardware_concurrency()));
}

}  // namespace

double parameter_bytes(const NetworkSpec& spec) {
  double params = 0;
  for (const CpuShape& s : cpu_shapes(spec)) params += s.params;
  return 4.0 * params * sizeof(float);  // value, gradient, two optimiser moments
}

double pass_bytes(const NetworkSpec& spec, int batch, const ForwardOptions& options, int threads) {
  const std::vector<CpuShape> shapes = cpu_shapes(spec);
  const double B = batch;
  double saved = 0, worker = 0, params = 0, largest_weights = 0, largest_io = 0, traced = 0,
         rated = 0;
  for (size_t l = 0; l < shapes.size(); ++l) {
    const CpuShape& s = shapes[l];
    const double in = s.in_steps * s.in_width, out = s.steps * s.width;
    // Saved for backward, per sample: the layer's own floats and its output, where the next
    // layer reads it in backward and this one cannot rebuild it.
    const bool keeps_output = l + 1 < shapes.size() &&
                              detail::backward_reads_input(spec.layers[l + 1]) &&
                              !s.rebuilds_output;
    saved += s.saved + (keeps_output ? out : 0);
    // Per worker, kept for every layer and reused from sample to sample: the output, up to three
    // [T, W] scratch arrays, the gathered input and a convolution's im2col buffers. Backward
    // adds one dy and one dx, and the untransposed weights of a layer, reused from layer to
    // layer (the largest counts).
    worker += 4 * out + in + s.scratch;
    largest_io = std::max(largest_io, out + in);
    largest_weights = std::max(largest_weights, s.untransposed);
    params += s.params;
    if (options.record) traced += 2 * out;  // state and spikes
    if (options.rates) rated += s.width;
  }
  const double blocks = std::max(1.0, std::min(64.0, std::ceil(B / 8)));
  double floats = B * double(spec.outputs())                        // logits
                  + worker_threads(threads) *
                        (worker + (options.training ? largest_io + largest_weights : 0))
                  + B * (traced + rated);
  if (options.training) floats += B * saved + blocks * params;  // saved states, gradient sums
  return floats * sizeof(float);
}

// ---- Network -------------------------------------------------------------------------------
namespace {
std::unique_ptr<detail::EngineImpl> make_engine(const NetworkSpec& spec, const NetworkOptions& o) {
  if (o.threads < 0) fail("network options: threads must be >= 0, got ", o.threads);
  if (o.engine == Engine::cuda) return detail::make_cuda_engine(spec, o.matmul, o.saved, o.sample_clusters, o.device);
  return detail::make_cpu_engine(spec, o.threads);
}

// The spec, validated, and its parameters checked against the memory limit before the engine
// allocates them.
const NetworkSpec& validated(const NetworkSpec& spec) {
  spec.validate();
  check_memory("storing a network of " + describe_network(spec) +
                   " with its gradients and optimiser state",
               parameter_bytes(spec));
  return spec;
}

// The first non-finite value of an input, named by its position.
void check_finite(const Input& input, const NetworkSpec& spec) {
  const size_t k = detail::first_non_finite(input.data, input.count);
  if (k == input.count) return;
  const size_t I = size_t(spec.inputs), B = size_t(input.batch);
  if (input.kind != Input::Kind::sequence)
    fail("input x[", k / I, ", ", k % I, "] is ", input.data[k], ": inputs must be finite");
  fail("input sequence xi[", k / (B * I), ", ", (k / I) % B, ", ", k % I, "] is ",
       input.data[k], ": inputs must be finite");
}
// Each row's noise key from its contents (ForwardOptions::noise_by_row): FNV-1a over the bits of
// its values (for a sequence, row b at every step), then a splitmix64 finaliser so that rows
// differing in one feature get unrelated keys. Equal rows get equal keys, and so equal masks.
std::vector<uint32_t> row_keys(const Input& input, const NetworkSpec& spec) {
  const size_t B = size_t(input.batch), I = size_t(spec.inputs);
  const size_t steps = input.kind == Input::Kind::sequence ? size_t(spec.time_steps) : 1;
  std::vector<uint32_t> keys(B);
  for (size_t b = 0; b < B; ++b) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t t = 0; t < steps; ++t) {
      const float* row = input.data + (t * B + b) * I;
      for (size_t i = 0; i < I; ++i) {
        uint32_t bits;
        std::memcpy(&bits, &row[i], sizeof bits);
        h = (h ^ bits) * 0x100000001b3ull;
      }
    }
    const uint64_t z = detail::stream_key(h, 0x726f77 /* "row" */);
    keys[b] = uint32_t(z ^ (z >> 32));
  }
  return keys;
}

}  // namespace

Network::Network(const NetworkSpec& spec, const NetworkOptions& options)
    : options_(options), impl_(make_engine(validated(spec), options_)) {
  layout_ = parameter_layout(impl_->spec());
  initialize(options_.seed);
}

Network::~Network() = default;
Network::Network(Network&&) noexcept = default;
Network& Network::operator=(Network&&) noexcept = default;

const NetworkSpec& Network::spec() const { return impl_->spec(); }
Engine Network::engine() const { return options_.engine; }
uint64_t Network::seed() const { return options_.seed; }
uint64_t Network::noise_passes() const { return passes_; }
void Network::set_noise_passes(uint64_t passes) { passes_ = passes; }
detail::EngineImpl& Network::engine_impl() { return *impl_; }
const std::vector<ParameterInfo>& Network::parameters() const { return layout_; }

size_t Network::parameter_index(const std::string& name) const {
  for (size_t i = 0; i < layout_.size(); ++i)
    if (layout_[i].name == name) return i;
  std::string known;
  for (const auto& p : layout_) known += (known.empty() ? "" : ", ") + p.name;
  fail("no parameter named ", detail::quote(name), " (this network has: ", known, ")");
}

std::vector<float> Network::parameter(const std::string& name) const {
  const size_t i = parameter_index(name);
  std::vector<float> out(layout_[i].size);
  impl_->read_parameter(i, out.data());
  return out;
}

void Network::set_parameter(const std::string& name, const std::vector<float>& values) {
  const size_t i = parameter_index(name);
  if (values.size() != layout_[i].size)
    fail("set_parameter(", detail::quote(name), "): got ", values.size(), " values, the parameter has ",
         layout_[i].size);
  for (size_t k = 0; k < values.size(); ++k)
    if (!std::isfinite(values[k]))
      fail("set_parameter(", detail::quote(name), "): value ", k, " is ", values[k], ", must be finite");
  impl_->write_parameter(i, values.data());
}

std::vector<float> Network::gradient(const std::string& name) const {
  const size_t i = parameter_index(name);
  std::vector<float> out(layout_[i].size);
  impl_->read_gradient(i, out.data());
  return out;
}

void Network::set_dt(int layer, float dt) {
  const NetworkSpec& s = spec();
  if (layer < 0 || layer >= int(s.layers.size()))
    fail("set_dt: no layer ", layer, " (the network has ", s.layers.size(), ")");
  if (!std::holds_alternative<SpikingActivation>(s.layers[layer]))
    fail("set_dt: layer ", layer, " is a ", layer_kind(s.layers[layer]),
         " layer, not a spiking activation");
  if (!(std::isfinite(dt) && dt > 0)) fail("set_dt: dt must be > 0, got ", dt);
  impl_->set_dt(layer, dt);
}

void Network::initialize(uint64_t seed) {
  const auto values = detail::initial_parameters(spec(), seed);
  for (size_t i = 0; i < values.size(); ++i) impl_->write_parameter(i, values[i].data());
}

void Network::check_pass_memory(int batch, const ForwardOptions& options) {
  // Only the cpu engine's host buffers are estimated; the cuda engine's live in device memory,
  // whose allocations report their own failures.
  if (options_.engine != Engine::cpu) return;
  const int64_t kind = int64_t(batch) * 8 + options.training * 4 + options.record * 2 + options.rates;
  const int64_t limit = memory_limit();
  if (kind == checked_pass_ && limit == checked_limit_) return;
  std::string what = options.training ? "a training pass" : "an inference pass";
  if (options.record) what += " recording traces";
  what += " of batch " + std::to_string(batch) + " at T=" + std::to_string(spec().time_steps) +
          " through " + describe_network(spec());
  check_memory(what, pass_bytes(spec(), batch, options, options_.threads));
  checked_pass_ = kind, checked_limit_ = limit;
}

void Network::check_input(const Input& input, const ForwardOptions& options, const char* what) {
  detail::checked_range((std::string(what) + ": batch").c_str(), input.batch, 1, kMaxBatchSize);
  if (options.first_row < 0) fail(what, ": first_row must be >= 0, got ", options.first_row);
  const size_t B = size_t(input.batch), I = size_t(spec().inputs), T = size_t(spec().time_steps);
  const bool noisy = input.kind != Input::Kind::sequence;  // one static x[B, I]
  // T*B*I can pass 2^64 at the limits: compared in double too, so a wrapped product never
  // matches (exact up to 2^53 floats, far more than any real input).
  const size_t expected = noisy ? B * I : T * B * I;
  const double exact = noisy ? double(B) * double(I) : double(T) * double(B) * double(I);
  if (input.count != expected || double(input.count) != exact) {
    const std::string want = exact < 9e18 ? std::to_string(expected) : "more than 2^63";
    if (noisy)
      fail(what, ": input x has ", input.count, " values, expected batch*inputs = ", B, "*", I,
           " = ", want);
    fail(what, ": input sequence has ", input.count,
         " values, expected time_steps*batch*inputs = ", T, "*", B, "*", I, " = ", want);
  }
  if (!input.data) fail(what, ": input data pointer is null");
  check_finite(input, spec());
  check_pass_memory(input.batch, options);
}

ForwardPass Network::forward(const Input& input, const ForwardOptions& options) {
  check_input(input, options, "forward");
  const NoiseKey key{options_.seed, options.use_noise_pass ? options.noise_pass : passes_};
  if (!options.use_noise_pass) ++passes_;
  ForwardPass pass;
  std::vector<uint32_t> keys;
  if (options.noise_by_row) {
    keys = row_keys(input, spec());
  } else if (options.first_row != 0) {
    for (int b = 0; b < input.batch; ++b) keys.push_back(uint32_t(options.first_row + b));
  }
  pass.state_ = impl_->forward(input, key, std::move(keys), options);
  return pass;
}

void Network::backward(const ForwardPass& pass, const std::vector<float>& dlogits,
                       std::vector<float>* dinput) {
  if (!pass.state_) fail("backward: the ForwardPass is empty");
  detail::ForwardState& s = *pass.state_;
  if (s.owner != impl_.get()) fail("backward: the ForwardPass comes from another network");
  if (!s.training)
    fail("backward: the forward pass was made with training = false and kept no saved state");
  const size_t expected = size_t(s.batch) * s.outputs;
  if (dlogits.size() != expected)
    fail("backward: dlogits has ", dlogits.size(), " values, expected batch*outputs = ", s.batch,
         "*", s.outputs, " = ", expected);
  for (size_t k = 0; k < dlogits.size(); ++k)
    if (!std::isfinite(dlogits[k]))
      fail("backward: dlogits[", k / s.outputs, ", ", k % s.outputs, "] is ", dlogits[k],
           ", must be finite");
  float* dx = nullptr;
  if (dinput) {
    if (s.input.kind == Input::Kind::noisy)
      fail("backward: input gradients exist only for sequence and repeated inputs (the noise "
           "encoder's input has none)");
    dinput->assign(s.input.count, 0.0f);
    dx = dinput->data();
  }
  impl_->backward(s, dlogits.data(), dx);
}

}  // namespace nmsnn
