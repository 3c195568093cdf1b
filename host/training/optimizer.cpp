// training/optimizer.cpp — PyTorch's SGD and Adam update rules, and the Optimizer front end.
#include "nmsnn/optimizer.hpp"

#include <cmath>
#include <sstream>

#include "network/engine.hpp"
#include "nmsnn/error.hpp"
#include "nmsnn/network.hpp"

namespace nmsnn {

using detail::fail;

std::string describe(const OptimizerSpec& spec) {
  std::ostringstream out;
  if (const Sgd* s = std::get_if<Sgd>(&spec)) {
    out << "sgd(lr=" << s->lr << ", momentum=" << s->momentum;
    if (s->dampening != 0) out << ", dampening=" << s->dampening;
    if (s->weight_decay != 0) out << ", weight_decay=" << s->weight_decay;
    if (s->nesterov) out << ", nesterov";
  } else {
    const Adam& a = std::get<Adam>(spec);
    out << "adam(lr=" << a.lr << ", betas=(" << a.beta1 << ", " << a.beta2 << "), eps=" << a.eps;
    if (a.weight_decay != 0) out << ", weight_decay=" << a.weight_decay;
  }
  out << ")";
  return out.str();
}

double learning_rate(const OptimizerSpec& spec) {
  return std::visit([](const auto& o) { return o.lr; }, spec);
}

void set_learning_rate(OptimizerSpec& spec, double lr) {
  std::visit([lr](auto& o) { o.lr = lr; }, spec);
}

namespace {
void validate(const OptimizerSpec& spec) {
  const double lr = learning_rate(spec);
  if (!std::isfinite(lr) || lr < 0) fail("optimizer: learning rate must be >= 0, got ", lr);
  if (const Sgd* s = std::get_if<Sgd>(&spec)) {
    if (!(s->momentum >= 0)) fail("sgd: momentum must be >= 0, got ", s->momentum);
    if (!(s->weight_decay >= 0)) fail("sgd: weight_decay must be >= 0, got ", s->weight_decay);
    if (s->nesterov && (s->momentum <= 0 || s->dampening != 0))
      fail("sgd: nesterov needs momentum > 0 and dampening 0");
  } else {
    const Adam& a = std::get<Adam>(spec);
    if (!(a.beta1 >= 0 && a.beta1 < 1)) fail("adam: beta1 must be in [0, 1), got ", a.beta1);
    if (!(a.beta2 >= 0 && a.beta2 < 1)) fail("adam: beta2 must be in [0, 1), got ", a.beta2);
    if (!(a.eps >= 0)) fail("adam: eps must be >= 0, got ", a.eps);
    if (!(a.weight_decay >= 0)) fail("adam: weight_decay must be >= 0, got ", a.weight_decay);
  }
}
}  // namespace

void sgd_update(const Sgd& sgd, float* param, const float* grad, float* buf, size_t n,
                int64_t step) {
  const float wd = float(sgd.weight_decay), momentum = float(sgd.momentum);
  const float keep = float(1.0 - sgd.dampening), lr = float(sgd.lr);
  for (size_t i = 0; i < n; ++i) {
    float d = grad[i] + wd * param[i];
    if (sgd.momentum != 0) {
      buf[i] = step == 1 ? d : momentum * buf[i] + keep * d;
      d = sgd.nesterov ? d + momentum * buf[i] : buf[i];
    }
    param[i] -= lr * d;
  }
}

void adam_update(const Adam& adam, float* param, const float* grad, float* m, float* v, size_t n,
                 int64_t step) {
  const double bias1 = 1.0 - std::pow(adam.beta1, double(step));
  const double bias2 = 1.0 - std::pow(adam.beta2, double(step));
  const float step_size = float(adam.lr / bias1);
  const float bias2_sqrt = float(std::sqrt(bias2));
  const float b1 = float(adam.beta1), b2 = float(adam.beta2);
  const float one_minus_b1 = float(1.0 - adam.beta1), one_minus_b2 = float(1.0 - adam.beta2);
  const float eps = float(adam.eps), wd = float(adam.weight_decay);
  for (size_t i = 0; i < n; ++i) {
    const float g = grad[i] + wd * param[i];
    m[i] = b1 * m[i] + one_minus_b1 * g;
    v[i] = b2 * v[i] + one_minus_b2 * g * g;
    param[i] -= step_size * m[i] / (std::sqrt(v[i]) / bias2_sqrt + eps);
  }
}

Optimizer::Optimizer(Network& network, const OptimizerSpec& spec)
    : network_(&network), spec_(spec) {
  validate(spec_);
  state_ = network_->engine_impl().make_optimizer_state();
}

Optimizer::~Optimizer() = default;
Optimizer::Optimizer(Optimizer&&) noexcept = default;
Optimizer& Optimizer::operator=(Optimizer&&) noexcept = default;

void Optimizer::step() {
  ++steps_;
  network_->engine_impl().optimizer_step(*state_, spec_, steps_);
}

void Optimizer::reset() {
  steps_ = 0;
  state_ = network_->engine_impl().make_optimizer_state();
}

OptimizerSnapshot Optimizer::snapshot() const {
  OptimizerSnapshot s;
  s.steps = steps_;
  s.lr = lr();
  const std::vector<ParameterInfo>& params = network_->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    s.m.emplace_back(params[i].size);
    s.v.emplace_back(params[i].size);
    network_->engine_impl().read_optimizer_buffer(*state_, 0, i, s.m.back().data());
    network_->engine_impl().read_optimizer_buffer(*state_, 1, i, s.v.back().data());
  }
  return s;
}

void Optimizer::restore(const OptimizerSnapshot& s) {
  const std::vector<ParameterInfo>& params = network_->parameters();
  if (s.steps < 0) fail("optimizer state: step count must be >= 0, got ", s.steps);
  if (s.m.size() != params.size() || s.v.size() != params.size())
    fail("optimizer state: it has buffers for ", s.m.size(), " parameters, the network has ",
         params.size());
  for (size_t i = 0; i < params.size(); ++i)
    if (s.m[i].size() != params[i].size || s.v[i].size() != params[i].size)
      fail("optimizer state: the buffers of ", params[i].name, " have ", s.m[i].size(), " and ",
           s.v[i].size(), " values, the parameter has ", params[i].size);
  set_lr(s.lr);
  for (size_t i = 0; i < params.size(); ++i) {
    network_->engine_impl().write_optimizer_buffer(*state_, 0, i, s.m[i].data());
    network_->engine_impl().write_optimizer_buffer(*state_, 1, i, s.v[i].data());
  }
  steps_ = s.steps;
}

double Optimizer::lr() const { return learning_rate(spec_); }

void Optimizer::set_lr(double lr) {
  OptimizerSpec next = spec_;
  set_learning_rate(next, lr);
  validate(next);
  spec_ = next;
}

}  // namespace nmsnn
