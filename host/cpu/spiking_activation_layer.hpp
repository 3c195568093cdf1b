// cpu/spiking_activation_layer.hpp — PyTorchSpiking's SpikingActivation (SPEC.md section 5).
//
//   voltage += f(x[t]) * dt;  n = floor(voltage);  voltage -= n;  y[t] = n / dt
//
// A neuron fires n spikes in a step: possibly several, and negative ones when f(x) < 0 drives
// the voltage below 0 (tanh, for instance), as in PyTorchSpiking. Backward is straight-through:
// dL/dx[t] = f'(x[t]) dL/dy[t]. Without spiking-aware training a training pass returns f(x) itself.
// The initial voltage of (sample b, neuron h) is U[0, 1) from Philox, keyed by voltage_key(seed,
// layer index) (initialize.hpp) and the pass counter, counter {h / 4, b, 0, pass} — the noise
// mapping of philox.hpp on its own stream — or 0 without random_initial_voltage.
// Rate regularization adds weight * mean_b sum_h (rate[b, h] - target)^2 with rate = mean_t y[t]
// over every step the layer ran (in Hz); `saved` keeps the rates for its gradient.
#pragma once

#include <cmath>

#include "cpu/activations.hpp"
#include "cpu/layer.hpp"
#include "network/initialize.hpp"

namespace nmsnn::cpu {

template <class Real>
class SpikingActivationLayer final : public CpuLayer<Real> {
 public:
  SpikingActivationLayer(int width, int real, int steps, const SpikingActivation& spec)
      : spec_(spec) {
    this->in_width = this->out_width = width;
    this->out_real = real;
    this->in_steps = steps;
    this->out_steps = spec.return_sequences ? steps : 1;
  }
  const char* kind() const override { return "spiking_activation"; }
  bool spiking() const override { return true; }
  size_t saved_floats() const override { return regularized() ? this->out_width : 0; }
  void set_dt(float dt) { spec_.dt = dt; }

  void forward(const SampleInput<Real>& x, uint32_t b, const Pass<Real>& pass,
               LayerOutput<Real>& out, LayerScratch<Real>& s) const override {
    const int T = this->in_steps, W = this->out_width;
    const Real dt = Real(spec_.dt);
    const bool spikes = !(pass.training && !spec_.spiking_aware_training);
    // The whole sequence is computed (rates need every step); only the last is returned when
    // return_sequences is off.
    s.a.resize(size_t(T) * W);
    Real* y = spec_.return_sequences ? out.y : s.a.data();
    std::vector<Real> voltage(W, Real(0));
    if (spikes && spec_.random_initial_voltage) {
      const NoiseKey key{nmsnn::detail::voltage_key(pass.key.seed, this->index), pass.key.pass,
                         pass.key.rows};
      for (int h = 0; h < W; ++h) voltage[h] = Real(noise_mask(key, 0, b, uint32_t(h)));
    }
    for (int t = 0; t < T; ++t) {
      const Real* xt = x.data + t * x.t_stride;
      Real* yt = y + size_t(t) * W;
      for (int h = 0; h < W; ++h) {
        // Padded columns stay 0 (f(0) may not be), so the next layer's padding stays inert.
        const Real f = h < this->out_real ? activate(spec_.activation, xt[h]) : Real(0);
        if (!spikes) {
          yt[h] = f;
          continue;
        }
        voltage[h] += f * dt;
        const Real n = std::floor(voltage[h]);
        voltage[h] -= n;
        yt[h] = n / dt;
        if (out.state) out.state[size_t(spec_.return_sequences ? t : 0) * W + h] = voltage[h];
      }
    }
    if (!spec_.return_sequences) std::copy_n(y + size_t(T - 1) * W, W, out.y);
    if (!spikes && out.state) std::copy_n(out.y, size_t(this->out_steps) * W, out.state);
    if (out.rates || regularized()) {
      std::vector<Real> rate(W, Real(0));
      for (int t = 0; t < T; ++t)
        for (int h = 0; h < W; ++h) rate[h] += y[size_t(t) * W + h];
      for (int h = 0; h < W; ++h) rate[h] /= Real(T);
      if (out.rates) std::copy(rate.begin(), rate.end(), out.rates);
      if (regularized()) {
        double sum = 0;
        for (int h = 0; h < this->out_real; ++h) {
          const double d = double(rate[h]) - spec_.rate_target;
          sum += d * d;
        }
        out.regularization = spec_.rate_weight * sum / pass.batch;
        if (out.saved) std::copy(rate.begin(), rate.end(), out.saved);
      }
    }
  }

  void backward(const SampleInput<Real>& x, uint32_t, const Pass<Real>& pass, const Real* saved,
                const LayerGrad<Real>& g, LayerScratch<Real>&) const override {
    if (!g.dx) return;
    const int T = this->in_steps, W = this->out_width;
    for (int t = 0; t < T; ++t) {
      const Real* xt = x.data + t * x.t_stride;
      Real* dxt = g.dx + size_t(t) * W;
      // dL/dy[t]: what came back for the returned steps, plus the regularization's share.
      const Real* dyt = spec_.return_sequences ? g.dy + size_t(t) * W
                                               : (t == T - 1 ? g.dy : nullptr);
      for (int h = 0; h < W; ++h) {
        Real dy = dyt ? dyt[h] : Real(0);
        if (regularized() && h < this->out_real)
          dy += Real(2 * spec_.rate_weight) * (saved[h] - Real(spec_.rate_target)) /
                (Real(pass.batch) * Real(T));
        dxt[h] = h < this->out_real ? activate_grad(spec_.activation, xt[h]) * dy : Real(0);
      }
    }
  }

 private:
  bool regularized() const { return spec_.regularized(); }
  SpikingActivation spec_;
};

}  // namespace nmsnn::cpu
