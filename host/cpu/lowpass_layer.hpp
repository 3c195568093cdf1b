// cpu/lowpass_layer.hpp — PyTorchSpiking's Lowpass filter with trainable time constants
// (SPEC.md section 5), per unit h:
//
//   smoothing = sigmoid(p[h]);  level[t] = (1 - smoothing) x[t] + smoothing level[t-1]
//   level[-1] = initial_level[h] (trainable, zeros); p[h] starts at logit(exp(-dt / tau))
//
// Backward, with G[t] = dL/dlevel[t] = dy[t] + smoothing G[t+1]:
//   dx[t] = (1 - smoothing) G[t];  dL/dsmoothing = sum_t G[t] (level[t-1] - x[t]);
//   dL/dinitial = smoothing G[0];  dL/dp = dL/dsmoothing * smoothing (1 - smoothing).
// Saved per sample: level[T, width]. Without apply_during_training a training pass returns x.
#pragma once

#include <cmath>

#include "cpu/layer.hpp"

namespace nmsnn::cpu {

template <class Real>
class LowpassLayer final : public CpuLayer<Real> {
 public:
  LowpassLayer(int width, int real, int steps, const Lowpass& spec) : spec_(spec) {
    this->in_width = this->out_width = width;
    this->out_real = real;
    this->in_steps = steps;
    this->out_steps = spec.return_sequences ? steps : 1;
    this->params.resize(2);  // p (smoothing logits), initial level
    for (auto& p : this->params) {
      p.value.assign(width, Real(0));
      p.grad.assign(width, Real(0));
      p.public_shape = {real};
    }
  }
  const char* kind() const override { return "lowpass"; }
  size_t saved_floats() const override { return size_t(this->in_steps) * this->out_width; }

  void forward(const SampleInput<Real>& x, uint32_t, const Pass<Real>& pass,
               LayerOutput<Real>& out, LayerScratch<Real>& s) const override {
    const int T = this->in_steps, W = this->out_width;
    if (bypassed(pass)) {
      for (int k = 0; k < this->out_steps; ++k) {
        const int t = spec_.return_sequences ? k : T - 1;
        std::copy_n(x.data + t * x.t_stride, W, out.y + size_t(k) * W);
      }
      if (out.state) std::copy_n(out.y, size_t(this->out_steps) * W, out.state);
      return;
    }
    s.a.resize(size_t(T) * W);
    Real* level = out.saved ? out.saved : s.a.data();
    const Real* p = this->params[0].value.data();
    const Real* init = this->params[1].value.data();
    for (int t = 0; t < T; ++t) {
      const Real* xt = x.data + t * x.t_stride;
      for (int h = 0; h < W; ++h) {
        const Real sm = smoothing(p[h]);
        const Real prev = t == 0 ? init[h] : level[size_t(t - 1) * W + h];
        level[size_t(t) * W + h] = (Real(1) - sm) * xt[h] + sm * prev;
      }
    }
    if (spec_.return_sequences)
      std::copy_n(level, size_t(T) * W, out.y);
    else
      std::copy_n(level + size_t(T - 1) * W, W, out.y);
    if (out.state) std::copy_n(out.y, size_t(this->out_steps) * W, out.state);
  }

  void backward(const SampleInput<Real>& x, uint32_t, const Pass<Real>& pass, const Real* saved,
                const LayerGrad<Real>& g, LayerScratch<Real>&) const override {
    const int T = this->in_steps, W = this->out_width;
    if (bypassed(pass)) {
      if (!g.dx) return;
      for (int t = 0; t < T; ++t)
        for (int h = 0; h < W; ++h) {
          const Real* dy = spec_.return_sequences ? g.dy + size_t(t) * W
                                                  : (t == T - 1 ? g.dy : nullptr);
          g.dx[size_t(t) * W + h] = dy ? dy[h] : Real(0);
        }
      return;
    }
    const Real* p = this->params[0].value.data();
    const Real* init = this->params[1].value.data();
    for (int h = 0; h < W; ++h) {
      const Real sm = smoothing(p[h]);
      Real G = 0, dsm = 0;
      for (int t = T - 1; t >= 0; --t) {
        const Real dy = spec_.return_sequences ? g.dy[size_t(t) * W + h]
                                               : (t == T - 1 ? g.dy[h] : Real(0));
        G = dy + sm * G;
        const Real prev = t == 0 ? init[h] : saved[size_t(t - 1) * W + h];
        dsm += G * (prev - x.data[t * x.t_stride + h]);
        if (g.dx) g.dx[size_t(t) * W + h] = (Real(1) - sm) * G;
      }
      g.grads[0][h] += dsm * sm * (Real(1) - sm);
      g.grads[1][h] += sm * G;  // G now holds dL/dlevel[0]
    }
  }

 private:
  static Real smoothing(Real p) { return Real(1) / (Real(1) + std::exp(-p)); }
  bool bypassed(const Pass<Real>& pass) const { return pass.training && !spec_.apply_during_training; }
  Lowpass spec_;
};

}  // namespace nmsnn::cpu
