// cpu/lif_layer.hpp — the seed's spiking layer: a linear map, then leaky integrate-and-fire
// neurons over time (lif_stage.hpp). It returns its spikes to the next layer, or its inner state
// when it is the network's last layer (the seed reads logits from the output layer's state).
//
// Saved per sample: u[T, out_width], the pre-reset state — 4 bytes per neuron and step in float;
// gates, spikes and the returned values are all recomputed from it.
#pragma once

#include "cpu/lif_stage.hpp"
#include "cpu/linear_layer.hpp"

namespace nmsnn::cpu {

template <class Real>
class LifLayer final : public LinearLayer<Real> {
 public:
  LifLayer(int in_width, int in_real, int steps, const SpikingLayer& spec, bool returns_state)
      : LinearLayer<Real>(in_width, in_real, steps, spec.size),
        stage_(neurons(spec, this->out_width), returns_state) {}

  const char* kind() const override { return "spiking"; }
  bool spiking() const override { return true; }
  bool writes_spikes() const override { return true; }
  size_t saved_floats() const override { return stage_.saved_floats(this->out_steps); }
  bool rebuilds_output() const override { return !stage_.returns_state(); }
  void rebuild_output(const Real* saved, Real* y) const override {
    stage_.rebuild_output(this->out_steps, saved, y);
  }

  void forward(const SampleInput<Real>& x, uint32_t, const Pass<Real>&, LayerOutput<Real>& out,
               LayerScratch<Real>& s) const override {
    s.a.resize(size_t(this->out_steps) * this->out_width);
    input_forward(x, this->WT(), this->bias(), this->out_width, s.a.data(), s.gather);
    stage_.forward(this->out_steps, s.a.data(), out, s.b);
  }

  void backward(const SampleInput<Real>& x, uint32_t, const Pass<Real>&, const Real* saved,
                const LayerGrad<Real>& g, LayerScratch<Real>& s) const override {
    const Real* du = stage_.backward(this->out_steps, saved, g.dy, s.a);
    input_weight_grad(x, du, this->out_width, g.grads[0], g.grads[1], s.gather);
    if (g.dx) this->input_gradient(du, g.dx, s);  // uses s.b, not s.a
  }

 private:
  // The neurons over the padded width: padded neurons get zero currents and never fire.
  static LifNeurons<Real> neurons(const SpikingLayer& spec, int width) {
    LifNeurons<Real> n = LifNeurons<Real>::from(spec);
    n.size = width;
    return n;
  }
  LifStage<Real> stage_;
};

}  // namespace nmsnn::cpu
