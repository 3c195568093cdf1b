// cpu/temporal_pool_layer.hpp — TemporalAvgPool: the mean over time, [T, W] -> [1, W].
#pragma once

#include "cpu/layer.hpp"

namespace nmsnn::cpu {

template <class Real>
class TemporalPoolLayer final : public CpuLayer<Real> {
 public:
  TemporalPoolLayer(int width, int real, int steps) {
    this->in_width = this->out_width = width;
    this->out_real = real;
    this->in_steps = steps;
    this->out_steps = 1;
  }
  const char* kind() const override { return "temporal_avg_pool"; }

  void forward(const SampleInput<Real>& x, uint32_t, const Pass<Real>&, LayerOutput<Real>& out,
               LayerScratch<Real>&) const override {
    const int T = this->in_steps, W = this->out_width;
    for (int h = 0; h < W; ++h) out.y[h] = 0;
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < W; ++h) out.y[h] += x.data[t * x.t_stride + h];
    for (int h = 0; h < W; ++h) out.y[h] /= Real(T);
    if (out.state) std::copy_n(out.y, W, out.state);
  }

  void backward(const SampleInput<Real>&, uint32_t, const Pass<Real>&, const Real*,
                const LayerGrad<Real>& g, LayerScratch<Real>&) const override {
    if (!g.dx) return;
    const int T = this->in_steps, W = this->out_width;
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < W; ++h) g.dx[size_t(t) * W + h] = g.dy[h] / Real(T);
  }
};

}  // namespace nmsnn::cpu
