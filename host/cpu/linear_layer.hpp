// cpu/linear_layer.hpp — the weights shared by layers that apply W x[t] + bias at every step
// (Dense, and the spiking layer before its neurons), and the Dense layer itself.
//
// Engine layout: params[0] = WT[in_width, out_width] (W transposed, outputs padded to a multiple
// of 8), params[1] = bias[out_width]. Public layout (PyTorch's): weight [out_real, in_real],
// bias [out_real].
#pragma once

#include "cpu/layer.hpp"

namespace nmsnn::cpu {

template <class Real>
class LinearLayer : public CpuLayer<Real> {
 public:
  using Base = CpuLayer<Real>;
  int in_real = 0;

  LinearLayer(int in_width_, int in_real_, int steps, int size) {
    Base::in_width = in_width_;
    in_real = in_real_;
    Base::in_steps = Base::out_steps = steps;
    Base::out_real = size;
    Base::out_width = padded_width(size);
    Base::params.resize(2);
    Base::params[0].value.assign(size_t(in_width_) * Base::out_width, Real(0));
    Base::params[0].public_shape = {size, in_real_};
    Base::params[1].value.assign(Base::out_width, Real(0));
    Base::params[1].public_shape = {size};
    for (auto& p : Base::params) p.grad.assign(p.value.size(), Real(0));
  }

  bool takes_noisy_input() const override { return true; }
  // The passes read WT from an aligned copy made when each pass starts: std::vector's storage is
  // only 16-byte aligned, and with rows starting mid-line every AVX-512 load of a row straddles
  // two cache lines (the dense forward product ran ~15% slower). Copying 784 x 112 floats once
  // per batch costs nothing next to the batch's products.
  void prepare_pass() override {
    wt_.assign(Base::params[0].value.begin(), Base::params[0].value.end());
  }
  const Real* WT() const { return wt_.data(); }
  const Real* bias() const { return Base::params[1].value.data(); }

  void to_public(int k, const Real* engine, float* out) const override {
    if (k == 1) return Base::to_public(k, engine, out);
    for (int h = 0; h < Base::out_real; ++h)
      for (int i = 0; i < in_real; ++i)
        out[size_t(h) * in_real + i] = float(engine[size_t(i) * Base::out_width + h]);
  }
  void from_public(int k, const float* in, Real* engine) const override {
    if (k == 1) return Base::from_public(k, in, engine);
    for (int h = 0; h < Base::out_real; ++h)
      for (int i = 0; i < in_real; ++i)
        engine[size_t(i) * Base::out_width + h] = Real(in[size_t(h) * in_real + i]);
  }

 protected:
  Buffer<Real> wt_;  // params[0] as of prepare_pass, 64-byte aligned

  // W untransposed, [out_width, roundup8(in_width)], for input gradients; made on demand.
  const Real* weights_untransposed(LayerScratch<Real>& s) const {
    const int in_pad = padded_width(Base::in_width), W = Base::out_width;
    s.b.assign(size_t(W) * in_pad, Real(0));
    const Real* wt = WT();
    for (int i = 0; i < Base::in_width; ++i)
      for (int h = 0; h < W; ++h) s.b[size_t(h) * in_pad + i] = wt[size_t(i) * W + h];
    return s.b.data();
  }

  // dx[t, i] for i < in_width from du[T, out_width], through W.
  void input_gradient(const Real* du, Real* dx, LayerScratch<Real>& s) const {
    const int T = Base::in_steps, in_pad = padded_width(Base::in_width);
    const Real* W = weights_untransposed(s);
    if (in_pad == Base::in_width) return input_grad(T, Base::out_width, in_pad, du, W, dx);
    Buffer<Real> tmp(size_t(T) * in_pad);
    input_grad(T, Base::out_width, in_pad, du, W, tmp.data());
    for (int t = 0; t < T; ++t)
      std::copy_n(tmp.data() + size_t(t) * in_pad, Base::in_width, dx + size_t(t) * Base::in_width);
  }
};

// y[t] = W x[t] + bias (torch.nn.Linear over time).
template <class Real>
class DenseLayer final : public LinearLayer<Real> {
 public:
  using LinearLayer<Real>::LinearLayer;
  const char* kind() const override { return "dense"; }

  void forward(const SampleInput<Real>& x, uint32_t, const Pass<Real>&, LayerOutput<Real>& out,
               LayerScratch<Real>& s) const override {
    input_forward(x, this->WT(), this->bias(), this->out_width, out.y, s.gather);
    if (out.state) std::copy_n(out.y, size_t(this->out_steps) * this->out_width, out.state);
  }

  void backward(const SampleInput<Real>& x, uint32_t, const Pass<Real>&, const Real*,
                const LayerGrad<Real>& g, LayerScratch<Real>& s) const override {
    input_weight_grad(x, g.dy, this->out_width, g.grads[0], g.grads[1], s.gather);
    if (g.dx) this->input_gradient(g.dy, g.dx, s);
  }
};

}  // namespace nmsnn::cpu
