// cpu/lif_neuron_layer.hpp — the lif layer: the seed's leaky integrate-and-fire neurons on the
// previous layer's output itself (a convolution's feature maps, a dense layer's outputs), one
// neuron per input feature and no weights: the current at step t is a[t] = x[t].
//
// The neurons, what they return (spikes, or the state v when the layer is the network's last)
// and what they save (u[T, W]) are those of the seed's spiking layer (lif_stage.hpp); dL/dx is
// dL/du. Padded features carry zero current, so they never fire and stay 0.
#pragma once

#include <algorithm>

#include "cpu/lif_stage.hpp"

namespace nmsnn::cpu {

template <class Real>
class LifNeuronLayer final : public CpuLayer<Real> {
 public:
  LifNeuronLayer(int width, int real, int steps, const Lif& spec, bool returns_state)
      : stage_(LifNeurons<Real>::from(spec, width), returns_state) {
    this->in_width = this->out_width = width;
    this->out_real = real;
    this->in_steps = this->out_steps = steps;
  }

  const char* kind() const override { return "lif"; }
  bool spiking() const override { return true; }
  bool writes_spikes() const override { return true; }
  size_t saved_floats() const override { return stage_.saved_floats(this->out_steps); }
  bool rebuilds_output() const override { return !stage_.returns_state(); }
  void rebuild_output(const Real* saved, Real* y) const override {
    stage_.rebuild_output(this->out_steps, saved, y);
  }

  void forward(const SampleInput<Real>& x, uint32_t, const Pass<Real>&, LayerOutput<Real>& out,
               LayerScratch<Real>& s) const override {
    const int T = this->out_steps, W = this->out_width;
    const Real* a = x.data;
    if (x.t_stride != size_t(W)) {  // a repeated static input (t_stride 0): one row per step
      s.a.resize(size_t(T) * W);
      for (int t = 0; t < T; ++t) std::copy_n(x.data + t * x.t_stride, W, s.a.data() + size_t(t) * W);
      a = s.a.data();
    }
    stage_.forward(T, a, out, s.b);
  }

  void backward(const SampleInput<Real>&, uint32_t, const Pass<Real>&, const Real* saved,
                const LayerGrad<Real>& g, LayerScratch<Real>& s) const override {
    if (!g.dx) return;  // no parameters: only the input's gradient to give
    const Real* du = stage_.backward(this->out_steps, saved, g.dy, s.a);
    std::copy_n(du, size_t(this->out_steps) * this->out_width, g.dx);
  }

 private:
  LifStage<Real> stage_;
};

}  // namespace nmsnn::cpu
