// nmsnn/optimizer.hpp — SGD with momentum and Adam, with PyTorch's update rules.
//
//   nmsnn::Optimizer opt(net, nmsnn::Adam{2e-3f});
//   ... net.backward(pass, loss.grad); opt.step();
//
// The optimiser's state (momentum buffers, Adam moments) lives with the engine — on the GPU for
// the CUDA engine — and updates every parameter of the network from its last gradient.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace nmsnn {

class Network;

// torch.optim.SGD: d = g + wd*p; buf = d (first step) or momentum*buf + (1-dampening)*d;
// d = nesterov ? d + momentum*buf : buf (when momentum != 0); p -= lr*d.
// Hyper-parameters are doubles, like PyTorch's Python floats: coefficients such as 1 - beta2 are
// formed in double and rounded to float once, as torch does.
struct Sgd {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

// torch.optim.Adam (amsgrad off): g = grad + wd*p; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
// p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
struct Adam {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

using OptimizerSpec = std::variant<Sgd, Adam>;

std::string describe(const OptimizerSpec& spec);  // e.g. "sgd(lr=0.1, momentum=0.5)"
double learning_rate(const OptimizerSpec& spec);
void set_learning_rate(OptimizerSpec& spec, double lr);

// One update of n values, exactly as PyTorch does it. `step` counts from 1; for SGD the momentum
// buffer is initialised from the gradient at step 1. The CPU engine calls these; the CUDA engine
// runs the same arithmetic in a kernel.
void sgd_update(const Sgd& sgd, float* param, const float* grad, float* momentum_buffer,
                size_t n, int64_t step);
void adam_update(const Adam& adam, float* param, const float* grad, float* m, float* v, size_t n,
                 int64_t step);

namespace detail {
struct OptimizerState;
}

// An optimiser's whole state in host memory, for a training checkpoint: restored into an
// optimiser for the same network, the next step() is the one the saved optimiser would have made.
struct OptimizerSnapshot {
  int64_t steps = 0;  // updates since the last reset (Adam's bias correction, SGD's first step)
  double lr = 0;
  // Per parameter, in Network::parameters() order and the parameter's layout: SGD's momentum
  // buffer or Adam's first moment (m) and Adam's second moment (v; zeros for SGD).
  std::vector<std::vector<float>> m, v;
};

class Optimizer {
 public:
  Optimizer(Network& network, const OptimizerSpec& spec);
  ~Optimizer();
  Optimizer(Optimizer&&) noexcept;
  Optimizer& operator=(Optimizer&&) noexcept;

  // Applies one update to every parameter from its gradient of the last backward().
  void step();
  // Forgets momentum and moments, as a freshly made PyTorch optimiser would.
  void reset();

  double lr() const;
  void set_lr(double lr);
  const OptimizerSpec& spec() const { return spec_; }
  int64_t steps() const { return steps_; }

  OptimizerSnapshot snapshot() const;
  // Throws nmsnn::Error, changing nothing, when the buffers do not fit the network's parameters.
  void restore(const OptimizerSnapshot& snapshot);

 private:
  friend class StepLoop;  // queues updates on the engine and rewinds steps_ after a halt
  Network* network_;
  OptimizerSpec spec_;
  int64_t steps_ = 0;
  std::unique_ptr<detail::OptimizerState> state_;
};

}  // namespace nmsnn
