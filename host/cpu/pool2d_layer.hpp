// cpu/pool2d_layer.hpp — torch.nn.AvgPool2d and MaxPool2d at every step: the mean or the
// maximum of each kh x kw window of every channel, windows moved by the stride; no padding,
// floor rounding (the last partial windows are dropped).
//
// Shapes for one sample: x[T, in_width] holds [C, H, W] flat in (c, y, x) order, y[T, out_width]
// holds [C, H', W'] likewise; both padded at their end with zeros.
// Backward: avg gives every entry of a window dy / (kh kw); max gives dy to the FIRST largest
// entry of its window in row-major (ky, kx) order (PyTorch's rule; spike maps tie often, and the
// CUDA engine picks the same entry). Which entry that is is found again in backward from x, which
// the network keeps or rebuilds, so nothing is saved. Windows overlap when the stride is less than
// the kernel, so dx is accumulated.
#pragma once

#include <algorithm>
#include <array>
#include <vector>

#include "cpu/layer.hpp"

namespace nmsnn::cpu {

enum class PoolMode { avg, max };

template <class Real>
class Pool2dLayer final : public CpuLayer<Real> {
 public:
  // in_shape: [C, H, W] of the input maps; stride as pool_stride() gives it (never 0).
  Pool2dLayer(int in_width, int steps, const std::vector<int>& in_shape,
              std::array<int, 2> kernel, std::array<int, 2> stride, PoolMode mode)
      : C_(in_shape.at(0)), H_(in_shape.at(1)), W_(in_shape.at(2)), kernel_(kernel),
        stride_(stride), mode_(mode) {
    const auto out = window_output({H_, W_}, kernel, stride, {0, 0});
    Ho_ = out[0], Wo_ = out[1];
    this->in_width = in_width;
    this->in_steps = this->out_steps = steps;
    this->out_real = C_ * Ho_ * Wo_;
    this->out_width = padded_width(this->out_real);
  }

  const char* kind() const override { return mode_ == PoolMode::avg ? "avg_pool2d" : "max_pool2d"; }

  void forward(const SampleInput<Real>& x, uint32_t, const Pass<Real>&, LayerOutput<Real>& out,
               LayerScratch<Real>&) const override {
    const int Wout = this->out_width, kh = kernel_[0], kw = kernel_[1];
    const Real area = Real(kh * kw);
    for (int t = 0; t < this->out_steps; ++t) {
      const Real* xt = x.data + t * x.t_stride;
      Real* yt = out.y + size_t(t) * Wout;
      for (int c = 0; c < C_; ++c)
        for (int oy = 0; oy < Ho_; ++oy)
          for (int ox = 0; ox < Wo_; ++ox) {
            const Real* win = xt + corner(c, oy, ox);
            Real value;
            if (mode_ == PoolMode::max) {
              value = win[first_max(win)];
            } else {
              Real sum = 0;
              for (int ky = 0; ky < kh; ++ky)
                for (int kx = 0; kx < kw; ++kx) sum += win[ky * W_ + kx];
              value = sum / area;
            }
            yt[(size_t(c) * Ho_ + oy) * Wo_ + ox] = value;
          }
      std::fill(yt + this->out_real, yt + Wout, Real(0));
    }
    if (out.state) std::copy_n(out.y, size_t(this->out_steps) * Wout, out.state);
  }

  void backward(const SampleInput<Real>& x, uint32_t, const Pass<Real>&, const Real*,
                const LayerGrad<Real>& g, LayerScratch<Real>&) const override {
    if (!g.dx) return;
    const int Win = this->in_width, kh = kernel_[0], kw = kernel_[1];
    const Real area = Real(kh * kw);
    std::fill(g.dx, g.dx + size_t(this->in_steps) * Win, Real(0));
    for (int t = 0; t < this->out_steps; ++t) {
      const Real* xt = mode_ == PoolMode::max ? x.data + t * x.t_stride : nullptr;
      const Real* dyt = g.dy + size_t(t) * this->out_width;
      Real* dxt = g.dx + size_t(t) * Win;
      for (int c = 0; c < C_; ++c)
        for (int oy = 0; oy < Ho_; ++oy)
          for (int ox = 0; ox < Wo_; ++ox) {
            const Real d = dyt[(size_t(c) * Ho_ + oy) * Wo_ + ox];
            const size_t at = corner(c, oy, ox);
            if (mode_ == PoolMode::max) {
              dxt[at + first_max(xt + at)] += d;
            } else {
              for (int ky = 0; ky < kh; ++ky)
                for (int kx = 0; kx < kw; ++kx) dxt[at + ky * W_ + kx] += d / area;
            }
          }
    }
  }

 private:
  // Offset of window (oy, ox) of channel c: its top-left input feature.
  size_t corner(int c, int oy, int ox) const {
    return (size_t(c) * H_ + size_t(oy) * stride_[0]) * W_ + size_t(ox) * stride_[1];
  }
  // Offset, from the window's corner, of its first largest entry in row-major order: a later
  // entry replaces the best only when strictly larger.
  size_t first_max(const Real* win) const {
    size_t best = 0;
    for (int ky = 0; ky < kernel_[0]; ++ky)
      for (int kx = 0; kx < kernel_[1]; ++kx) {
        const size_t at = size_t(ky) * W_ + kx;
        if (win[at] > win[best]) best = at;
      }
    return best;
  }

  int C_, H_, W_, Ho_ = 0, Wo_ = 0;
  std::array<int, 2> kernel_, stride_;
  PoolMode mode_;
};

}  // namespace nmsnn::cpu
