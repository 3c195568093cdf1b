// cpu/lif_stage.hpp — the neuron half of a spiking layer: leaky integrate-and-fire neurons
// (lif.hpp) run on one sample's input currents a[T, W], and what the layer returns.
//
// Shared by the seed's spiking layer (lif_layer.hpp: currents W x[t] + bias) and the lif layer
// (lif_neuron_layer.hpp: currents x[t] themselves), so both return, save and rebuild alike:
// spikes to the next layer, or the inner state v when the layer is the network's last (the seed
// reads its logits from the output layer's state). Saved per sample: u[T, W], the pre-reset
// state; gates, spikes and the returned values are all recomputed from it.
#pragma once

#include <algorithm>

#include "cpu/layer.hpp"
#include "cpu/lif.hpp"

namespace nmsnn::cpu {

template <class Real>
class LifStage {
 public:
  LifStage(const LifNeurons<Real>& neurons, bool returns_state)
      : neurons_(neurons), returns_state_(returns_state) {}

  const LifNeurons<Real>& neurons() const { return neurons_; }
  bool returns_state() const { return returns_state_; }
  size_t saved_floats(int T) const { return size_t(T) * neurons_.size; }

  // The spikes the layer returned, from its saved u (only when it returns spikes).
  void rebuild_output(int T, const Real* u, Real* y) const { lif_spikes_from_u(neurons_, T, u, y); }

  // a[T, W] -> out.y (spikes, or v when last) and the optional outputs: out.saved receives u,
  // out.state / out.spikes the traces, out.rates the fraction of steps each neuron fired at.
  // scratch: room for u (inference passes) and whichever of state/spikes is not returned.
  void forward(int T, const Real* a, LayerOutput<Real>& out, Buffer<Real>& scratch) const {
    const int W = neurons_.size;
    const size_t n = size_t(T) * W;
    scratch.resize(2 * n);
    Real* u = out.saved ? out.saved : scratch.data();
    Real* other = scratch.data() + n;
    Real* state = returns_state_ ? out.y : (out.state ? out.state : other);
    Real* spikes = returns_state_ ? (out.spikes ? out.spikes : other) : out.y;
    lif_forward(neurons_, T, a, u, state, spikes);
    if (out.state && returns_state_) std::copy_n(out.y, n, out.state);
    if (out.spikes && !returns_state_) std::copy_n(out.y, n, out.spikes);
    if (out.rates) {
      for (int h = 0; h < W; ++h) out.rates[h] = 0;
      for (int t = 0; t < T; ++t)
        for (int h = 0; h < W; ++h) out.rates[h] += u[size_t(t) * W + h] > neurons_.threshold;
      for (int h = 0; h < W; ++h) out.rates[h] /= Real(T);
    }
  }

  // dL/du[T, W] (= dL/da) from the saved u and dL/dy; returned in scratch.
  const Real* backward(int T, const Real* u, const Real* dy, Buffer<Real>& scratch) const {
    const size_t n = size_t(T) * neurons_.size;
    scratch.resize(2 * n);
    Real* du = scratch.data();  // written whole by lif_backward
    Real* zeros = scratch.data() + n;  // the gradient of the output that went nowhere
    std::fill(zeros, zeros + n, Real(0));
    lif_backward(neurons_, T, u, returns_state_ ? dy : zeros, returns_state_ ? zeros : dy, du);
    return du;
  }

 private:
  LifNeurons<Real> neurons_;
  bool returns_state_;
};

}  // namespace nmsnn::cpu
