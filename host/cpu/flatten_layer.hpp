// cpu/flatten_layer.hpp — torch.nn.Flatten: [C, H, W] -> [C*H*W] at every step.
//
// Feature maps are already stored flat in PyTorch's (c, y, x) order (conv2d_layer.hpp), so
// flattening moves nothing: y = x and dx = dy, copied (the network gives each layer its own
// output buffer).
#pragma once

#include <algorithm>

#include "cpu/layer.hpp"

namespace nmsnn::cpu {

template <class Real>
class FlattenLayer final : public CpuLayer<Real> {
 public:
  FlattenLayer(int width, int real, int steps) {
    this->in_width = this->out_width = width;
    this->out_real = real;
    this->in_steps = this->out_steps = steps;
  }
  const char* kind() const override { return "flatten"; }

  void forward(const SampleInput<Real>& x, uint32_t, const Pass<Real>&, LayerOutput<Real>& out,
               LayerScratch<Real>&) const override {
    const int W = this->out_width;
    for (int t = 0; t < this->out_steps; ++t)
      std::copy_n(x.data + t * x.t_stride, W, out.y + size_t(t) * W);
    if (out.state) std::copy_n(out.y, size_t(this->out_steps) * W, out.state);
  }

  void backward(const SampleInput<Real>&, uint32_t, const Pass<Real>&, const Real*,
                const LayerGrad<Real>& g, LayerScratch<Real>&) const override {
    if (g.dx) std::copy_n(g.dy, size_t(this->out_steps) * this->out_width, g.dx);
  }
};

}  // namespace nmsnn::cpu
