// network.cpp — nmsnn::Network: argument checks, the noise counter, and dispatch to an engine.
#include "nmsnn/network.hpp"

#include <cmath>

#include "backend.hpp"
#include "initialize.hpp"
#include "nmsnn/error.hpp"

namespace nmsnn {

using detail::fail;

// ---- engine names --------------------------------------------------------------------------
const char* to_string(Engine engine) { return engine == Engine::cpu ? "cpu" : "cuda"; }

Engine parse_engine(const std::string& name) {
  if (name == "cpu") return Engine::cpu;
  if (name == "cuda") return Engine::cuda;
  fail("unknown device '", name, "' (expected cpu or cuda)");
}

const char* to_string(MatmulPrecision precision) {
  return precision == MatmulPrecision::fp32 ? "fp32" : "tf32";
}

MatmulPrecision parse_matmul_precision(const std::string& name) {
  if (name == "fp32") return MatmulPrecision::fp32;
  if (name == "tf32") return MatmulPrecision::tf32;
  fail("unknown matmul precision '", name, "' (expected fp32 or tf32)");
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

// ---- Network -------------------------------------------------------------------------------
namespace {
std::unique_ptr<detail::Backend> make_backend(const NetworkSpec& spec, const NetworkOptions& o) {
  if (o.threads < 0) fail("network options: threads must be >= 0, got ", o.threads);
  if (o.engine == Engine::cuda) return detail::make_cuda_backend(spec, o.matmul);
  return detail::make_cpu_backend(spec, o.threads);
}

const NetworkSpec& validated(const NetworkSpec& spec) {
  spec.validate();
  return spec;
}

// The first non-finite value of an input, named by its position.
void check_finite(const Input& input, const NetworkSpec& spec) {
  for (size_t k = 0; k < input.count; ++k) {
    if (std::isfinite(input.data[k])) continue;
    const size_t I = size_t(spec.inputs), B = size_t(input.batch);
    if (input.kind != Input::Kind::sequence)
      fail("input x[", k / I, ", ", k % I, "] is ", input.data[k], ": inputs must be finite");
    fail("input sequence xi[", k / (B * I), ", ", (k / I) % B, ", ", k % I, "] is ",
         input.data[k], ": inputs must be finite");
  }
}
}  // namespace

Network::Network(const NetworkSpec& spec, const NetworkOptions& options)
    : spec_(validated(spec)), options_(options), backend_(make_backend(spec_, options_)) {
  layout_ = detail::parameter_layout(spec_);
  initialize(options_.seed);
}

Network::~Network() = default;
Network::Network(Network&&) noexcept = default;
Network& Network::operator=(Network&&) noexcept = default;

const NetworkSpec& Network::spec() const { return spec_; }
Engine Network::engine() const { return options_.engine; }
uint64_t Network::seed() const { return options_.seed; }
uint64_t Network::noise_passes() const { return passes_; }
detail::Backend& Network::backend() { return *backend_; }
const std::vector<ParameterInfo>& Network::parameters() const { return layout_; }

size_t Network::parameter_index(const std::string& name) const {
  for (size_t i = 0; i < layout_.size(); ++i)
    if (layout_[i].name == name) return i;
  std::string known;
  for (const auto& p : layout_) known += (known.empty() ? "" : ", ") + p.name;
  fail("no parameter named '", name, "' (this network has: ", known, ")");
}

std::vector<float> Network::parameter(const std::string& name) const {
  const size_t i = parameter_index(name);
  std::vector<float> out(layout_[i].size);
  backend_->read_parameter(i, out.data());
  return out;
}

void Network::set_parameter(const std::string& name, const std::vector<float>& values) {
  const size_t i = parameter_index(name);
  if (values.size() != layout_[i].size)
    fail("set_parameter('", name, "'): got ", values.size(), " values, the parameter has ",
         layout_[i].size);
  for (size_t k = 0; k < values.size(); ++k)
    if (!std::isfinite(values[k]))
      fail("set_parameter('", name, "'): value ", k, " is ", values[k], ", must be finite");
  backend_->write_parameter(i, values.data());
}

std::vector<float> Network::gradient(const std::string& name) const {
  const size_t i = parameter_index(name);
  std::vector<float> out(layout_[i].size);
  backend_->read_gradient(i, out.data());
  return out;
}

void Network::set_dt(int layer, float dt) {
  if (layer < 0 || layer >= int(spec_.layers.size()))
    fail("set_dt: no layer ", layer, " (the network has ", spec_.layers.size(), ")");
  auto* a = std::get_if<SpikingActivation>(&spec_.layers[layer]);
  if (!a) fail("set_dt: layer ", layer, " is a ", layer_kind(spec_.layers[layer]),
               " layer, not a spiking activation");
  if (!(std::isfinite(dt) && dt > 0)) fail("set_dt: dt must be > 0, got ", dt);
  backend_->set_dt(layer, dt);
  a->dt = dt;
}

void Network::initialize(uint64_t seed) {
  const auto values = detail::initial_parameters(spec_, seed);
  for (size_t i = 0; i < values.size(); ++i) backend_->write_parameter(i, values[i].data());
}

ForwardPass Network::forward(const Input& input, const ForwardOptions& options) {
  const size_t B = size_t(input.batch), I = size_t(spec_.inputs), T = size_t(spec_.time_steps);
  if (input.batch < 1) fail("forward: batch must be >= 1, got ", input.batch);
  const bool noisy = input.kind != Input::Kind::sequence;  // one static x[B, I]
  const size_t expected = noisy ? B * I : T * B * I;
  if (input.count != expected) {
    if (noisy)
      fail("forward: input x has ", input.count, " values, expected batch*inputs = ", B, "*", I,
           " = ", expected);
    fail("forward: input sequence has ", input.count, " values, expected time_steps*batch*inputs = ",
         T, "*", B, "*", I, " = ", expected);
  }
  if (!input.data) fail("forward: input data pointer is null");
  check_finite(input, spec_);

  NoiseKey key{options_.seed, options.use_noise_pass ? options.noise_pass : passes_};
  if (!options.use_noise_pass) ++passes_;
  auto state = backend_->forward(input, key, options);
  state->owner = backend_.get();
  state->input = input;
  state->noise = key;
  state->training = options.training;
  ForwardPass pass;
  pass.state_ = std::move(state);
  return pass;
}

void Network::backward(const ForwardPass& pass, const std::vector<float>& dlogits,
                       std::vector<float>* dinput) {
  if (!pass.state_) fail("backward: the ForwardPass is empty");
  detail::ForwardState& s = *pass.state_;
  if (s.owner != backend_.get()) fail("backward: the ForwardPass comes from another network");
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
  backend_->backward(s, dlogits.data(), dx);
}

}  // namespace nmsnn
