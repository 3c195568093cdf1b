// cpu/lif_layer.hpp — the seed's spiking layer: a linear map, then leaky integrate-and-fire
// neurons over time (lif.hpp). It returns its spikes to the next layer, or its inner state when
// it is the network's last layer (the seed reads logits from the output layer's state).
//
// Saved per sample: u[T, out_width], the pre-reset state — 4 bytes per neuron and step in float;
// gates, spikes and the returned values are all recomputed from it.
#pragma once

#include "cpu/lif.hpp"
#include "cpu/linear_layer.hpp"

namespace nmsnn::cpu {

template <class Real>
class LifLayer final : public LinearLayer<Real> {
 public:
  LifLayer(int in_width, int in_real, int steps, const SpikingLayer& spec, bool returns_state)
      : LinearLayer<Real>(in_width, in_real, steps, spec.size),
        neurons_(LifNeurons<Real>::from(spec)),
        returns_state_(returns_state) {
    neurons_.size = this->out_width;
  }

  const char* kind() const override { return "spiking"; }
  bool spiking() const override { return true; }
  bool writes_spikes() const override { return true; }
  size_t saved_floats() const override { return size_t(this->out_steps) * this->out_width; }
  bool rebuilds_output() const override { return !returns_state_; }
  void rebuild_output(const Real* saved, Real* y) const override {
    lif_spikes_from_u(neurons_, this->out_steps, saved, y);
  }

  void forward(const SampleInput<Real>& x, uint32_t, const Pass<Real>&, LayerOutput<Real>& out,
               LayerScratch<Real>& s) const override {
    const int T = this->out_steps, W = this->out_width;
    const size_t n = size_t(T) * W;
    s.a.resize(3 * n);
    Real* a = s.a.data();
    Real* u = out.saved ? out.saved : a + n;
    Real* other = a + 2 * n;  // whichever of state/spikes is not returned
    input_forward(x, this->WT(), this->bias(), W, a, s.gather);
    Real* state = returns_state_ ? out.y : (out.state ? out.state : other);
    Real* spikes = returns_state_ ? (out.spikes ? out.spikes : other) : out.y;
    lif_forward(neurons_, T, a, u, state, spikes);
    if (out.state && returns_state_) std::copy_n(out.y, n, out.state);
    if (out.spikes && !returns_state_) std::copy_n(out.y, n, out.spikes);
    if (out.rates) {
      // Spikes per step: the fraction of steps at which each neuron fired.
      for (int h = 0; h < W; ++h) out.rates[h] = 0;
      for (int t = 0; t < T; ++t)
        for (int h = 0; h < W; ++h) out.rates[h] += u[size_t(t) * W + h] > neurons_.threshold;
      for (int h = 0; h < W; ++h) out.rates[h] /= Real(T);
    }
  }

  void backward(const SampleInput<Real>& x, uint32_t, const Pass<Real>&, const Real* saved,
                const LayerGrad<Real>& g, LayerScratch<Real>& s) const override {
    const int T = this->out_steps, W = this->out_width;
    const size_t n = size_t(T) * W;
    s.a.resize(2 * n);
    Real* du = s.a.data();  // written whole by lif_backward
    std::fill(s.a.data() + n, s.a.data() + 2 * n, Real(0));
    const Real* zeros = s.a.data() + n;
    lif_backward(neurons_, T, saved, returns_state_ ? g.dy : zeros, returns_state_ ? zeros : g.dy,
                 du);
    input_weight_grad(x, du, W, g.grads[0], g.grads[1], s.gather);
    if (g.dx) this->input_gradient(du, g.dx, s);
  }

 private:
  LifNeurons<Real> neurons_;
  bool returns_state_;
};

}  // namespace nmsnn::cpu
