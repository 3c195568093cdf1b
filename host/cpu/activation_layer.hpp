// cpu/activation_layer.hpp — y[t] = f(x[t]) element-wise (the seed's non-spiking ReLU layers).
// Padded columns stay 0 even where f(0) != 0 (sigmoid), so the next layer's padding stays inert.
#pragma once

#include "cpu/activations.hpp"
#include "cpu/layer.hpp"

namespace nmsnn::cpu {

template <class Real>
class ActivationLayer final : public CpuLayer<Real> {
 public:
  ActivationLayer(int width, int real, int steps, ActivationKind kind) : kind_(kind) {
    this->in_width = this->out_width = width;
    this->out_real = real;
    this->in_steps = this->out_steps = steps;
  }
  const char* kind() const override { return "activation"; }

  void forward(const SampleInput<Real>& x, uint32_t, const Pass<Real>&, LayerOutput<Real>& out,
               LayerScratch<Real>&) const override {
    const int W = this->out_width, R = this->out_real;
    for (int t = 0; t < this->out_steps; ++t)
      for (int h = 0; h < W; ++h)
        out.y[size_t(t) * W + h] = h < R ? activate(kind_, x.data[t * x.t_stride + h]) : Real(0);
    if (out.state) std::copy_n(out.y, size_t(this->out_steps) * W, out.state);
  }

  void backward(const SampleInput<Real>& x, uint32_t, const Pass<Real>&, const Real*,
                const LayerGrad<Real>& g, LayerScratch<Real>&) const override {
    if (!g.dx) return;
    const int W = this->out_width, R = this->out_real;
    for (int t = 0; t < this->out_steps; ++t)
      for (int h = 0; h < W; ++h)
        g.dx[size_t(t) * W + h] =
            h < R ? activate_grad(kind_, x.data[t * x.t_stride + h]) * g.dy[size_t(t) * W + h]
                  : Real(0);
  }

 private:
  ActivationKind kind_;
};

}  // namespace nmsnn::cpu
