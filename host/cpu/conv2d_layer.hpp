// cpu/conv2d_layer.hpp — torch.nn.Conv2d at every step: y[t] = conv2d(x[t], W) + bias (zero
// padding, stride; no dilation, no groups).
//
// Shapes for one sample: x[T, in_width] holds the maps [C, H, W] flat in (c, y, x) order;
// y[T, out_width] holds [O, H', W'] likewise, P = H' W' positions per channel; both are padded
// at their end with zeros. K = C kh kw is one window in PyTorch's (c, ky, kx) order; Ppad, Opad
// are P and O padded for the product kernel (layer.hpp).
//
// The convolution is one product per step, in the maps' own (channel, position) order:
// im2col gathers, for every window entry k, the input feature it reads at every position into
// a row of colT[K, Ppad] (zeros where the window overhangs the padding), then
//     Y[O, Ppad] = bias + W colT                    (gemm_accumulate, tile_gemm.hpp)
// whose rows are y[t]'s channels. A row of colT is, for each output row, a run of contiguous
// input features (stride 1), Wo long (8-24 on MNIST) rather than kw (5) in the [P, K] layout.
// Step by step rather than all T at once keeps colT (K*Ppad values) small enough for the cache.
// im2col and col2im still take about a third of a training step of the MNIST CNN in
// bench_cpu_engine's ConvStep (perf, avx512), about twice the time of the products.
// Backward runs the same products backwards, per step:
//     dbias += sum_p dy;  dWT += colT dY (dY: dy transposed to [P, Opad]);
//     dcolT = W^T dy;  dx = col2im(dcolT) (each entry added back to the feature it was read from)
// A repeated static input (t_stride 0) is the same at every step: it is convolved once and the
// result copied to every step; backward sums dy over the steps first (one product, not T).
//
// Engine layout: params[0] = WT[K, Opad] (Opad = padded_width(O), zero columns past O),
// params[1] = bias[Opad]. Public layout (PyTorch's): weight [O, C, kh, kw], bias [O].
// The products read W out of WT through the kernel's strides: no copy in the other orientation.
// Saves nothing: backward gathers colT again from x, which the network keeps or rebuilds.
#pragma once

#include <algorithm>
#include <utility>
#include <vector>

#include "cpu/layer.hpp"

namespace nmsnn::cpu {

template <class Real>
class Conv2dLayer final : public CpuLayer<Real> {
 public:
  // in_shape: [C, H, W] of the input maps (NetworkSpec::layer_shape of the layer before).
  Conv2dLayer(int in_width, int steps, const std::vector<int>& in_shape, const Conv2d& spec)
      : C_(in_shape.at(0)), H_(in_shape.at(1)), W_(in_shape.at(2)), O_(spec.out_channels),
        kh_(spec.kernel[0]), kw_(spec.kernel[1]), sy_(spec.stride[0]), sx_(spec.stride[1]),
        py_(spec.padding[0]), px_(spec.padding[1]) {
    const auto out = window_output({H_, W_}, spec.kernel, spec.stride, spec.padding);
    Ho_ = out[0], Wo_ = out[1];
    P_ = Ho_ * Wo_;
    K_ = C_ * kh_ * kw_;
    Opad_ = padded_width(O_);
    Ppad_ = padded_width(P_);
    this->in_width = in_width;
    this->in_steps = this->out_steps = steps;
    this->out_real = O_ * P_;
    this->out_width = padded_width(this->out_real);
    this->params.resize(2);
    this->params[0].value.assign(size_t(K_) * Opad_, Real(0));
    this->params[0].public_shape = {O_, C_, kh_, kw_};
    this->params[1].value.assign(Opad_, Real(0));
    this->params[1].public_shape = {O_};
    for (auto& p : this->params) p.grad.assign(p.value.size(), Real(0));

    // Kernel column kx reads input column ox*sx - px + kx, inside the map for ox in
    // [columns_[kx].first, columns_[kx].second).
    for (int kx = 0; kx < kw_; ++kx) {
      int first = 0, last = 0;
      for (int ox = 0; ox < Wo_; ++ox) {
        const int ix = ox * sx_ - px_ + kx;
        if (ix < 0) first = ox + 1;
        if (ix < W_) last = ox + 1;
      }
      columns_.push_back({std::min(first, last), last});
    }
  }

  const char* kind() const override { return "conv2d"; }

  // An aligned copy of WT for the products (see LinearLayer::prepare_pass).
  void prepare_pass() override {
    wt_.assign(this->params[0].value.begin(), this->params[0].value.end());
  }

  void forward(const SampleInput<Real>& x, uint32_t, const Pass<Real>&, LayerOutput<Real>& out,
               LayerScratch<Real>& s) const override {
    const int T = this->out_steps, Wout = this->out_width;
    const int steps = x.t_stride == 0 ? 1 : T;  // a repeated input: one step, copied below
    s.a.resize(size_t(K_) * Ppad_);
    s.b.resize(size_t(O_) * Ppad_);
    Real* colT = s.a.data();
    Real* Y = s.b.data();
    const Real* bias = this->params[1].value.data();
    for (int t = 0; t < steps; ++t) {
      im2col(x.data + t * x.t_stride, colT);
      // Y[O, Ppad] = bias + W colT, W read from WT[K, Opad] as A(o, k) = WT[k*Opad + o].
      for (int o = 0; o < O_; ++o) std::fill_n(Y + size_t(o) * Ppad_, Ppad_, bias[o]);
      gemm_accumulate<Real>(O_, K_, Ppad_, wt_.data(), 1, size_t(Opad_),
                            {colT, size_t(Ppad_), nullptr}, {Y, size_t(Ppad_), nullptr});
      Real* yt = out.y + size_t(t) * Wout;
      for (int o = 0; o < O_; ++o) std::copy_n(Y + size_t(o) * Ppad_, P_, yt + size_t(o) * P_);
      std::fill(yt + this->out_real, yt + Wout, Real(0));
    }
    for (int t = steps; t < T; ++t) std::copy_n(out.y, Wout, out.y + size_t(t) * Wout);
    if (out.state) std::copy_n(out.y, size_t(T) * Wout, out.state);
  }

  // For a repeated input dx[0] receives the gradient of all steps together and the other steps
  // 0: the network sums a repeated input's gradient over the steps (write_input_grad).
  void backward(const SampleInput<Real>& x, uint32_t, const Pass<Real>&, const Real*,
                const LayerGrad<Real>& g, LayerScratch<Real>& s) const override {
    const int T = this->out_steps, Wout = this->out_width;
    const bool repeated = x.t_stride == 0;
    s.a.resize(size_t(K_) * Ppad_);
    s.b.resize(size_t(O_) * Ppad_ + size_t(P_) * Opad_);
    Real* colT = s.a.data();
    Real* dyt = s.b.data();                          // [O, Ppad]: dy[t] with padded rows
    Real* dY = s.b.data() + size_t(O_) * Ppad_;      // [P, Opad]: dy[t] transposed
    Real* dbias = g.grads[1];
    if (g.dx) std::fill(g.dx, g.dx + size_t(this->in_steps) * this->in_width, Real(0));
    for (int t = 0; t < (repeated ? 1 : T); ++t) {
      // dy of this step (a repeated input: summed over every step), in both layouts.
      std::fill(dyt, dyt + size_t(O_) * Ppad_, Real(0));
      for (int u = repeated ? 0 : t; u < (repeated ? T : t + 1); ++u)
        for (int o = 0; o < O_; ++o) {
          const Real* src = g.dy + size_t(u) * Wout + size_t(o) * P_;
          Real* dst = dyt + size_t(o) * Ppad_;
          for (int p = 0; p < P_; ++p) dst[p] += src[p];
        }
      std::fill(dY, dY + size_t(P_) * Opad_, Real(0));
      for (int o = 0; o < O_; ++o) {
        Real sum = 0;
        for (int p = 0; p < P_; ++p) {
          const Real d = dyt[size_t(o) * Ppad_ + p];
          dY[size_t(p) * Opad_ + o] = d;
          sum += d;
        }
        dbias[o] += sum;
      }
      // dWT[K, Opad] += colT dY
      im2col(x.data + t * x.t_stride, colT);
      gemm_accumulate<Real>(K_, P_, Opad_, colT, size_t(Ppad_), 1, {dY, size_t(Opad_), nullptr},
                            {g.grads[0], size_t(Opad_), nullptr});
      if (!g.dx) continue;
      // dcolT[K, Ppad] = W^T dy[t], W^T read from WT as A(k, o) = WT[k*Opad + o]; in colT's place.
      Real* dcolT = colT;
      std::fill(dcolT, dcolT + size_t(K_) * Ppad_, Real(0));
      gemm_accumulate<Real>(K_, O_, Ppad_, wt_.data(), size_t(Opad_), 1,
                            {dyt, size_t(Ppad_), nullptr}, {dcolT, size_t(Ppad_), nullptr});
      col2im(dcolT, g.dx + size_t(t) * this->in_width);
    }
  }

  // weight [O, C, kh, kw] = WT[k, o] with k = (c kh + ky) kw + kx: PyTorch's flat [O, K].
  void to_public(int k, const Real* engine, float* out) const override {
    if (k == 1) return CpuLayer<Real>::to_public(k, engine, out);
    for (int o = 0; o < O_; ++o)
      for (int j = 0; j < K_; ++j) out[size_t(o) * K_ + j] = float(engine[size_t(j) * Opad_ + o]);
  }
  void from_public(int k, const float* in, Real* engine) const override {
    if (k == 1) return CpuLayer<Real>::from_public(k, in, engine);
    for (int o = 0; o < O_; ++o)
      for (int j = 0; j < K_; ++j) engine[size_t(j) * Opad_ + o] = Real(in[size_t(o) * K_ + j]);
  }

 private:
  // colT[K, Ppad] of one step's input maps xt: row k = (c, ky, kx) holds, at p = oy*Wo + ox,
  // the feature (c, oy*sy - py + ky, ox*sx - px + kx), or 0 in the padding (and past P).
  void im2col(const Real* xt, Real* colT) const {
    for (int c = 0; c < C_; ++c)
      for (int ky = 0; ky < kh_; ++ky)
        for (int kx = 0; kx < kw_; ++kx) {
          Real* row = colT + size_t((c * kh_ + ky) * kw_ + kx) * Ppad_;
          const int first = columns_[kx].first, last = columns_[kx].second;
          for (int oy = 0; oy < Ho_; ++oy) {
            Real* dst = row + size_t(oy) * Wo_;
            const int iy = oy * sy_ - py_ + ky;
            if (iy < 0 || iy >= H_) {
              std::fill(dst, dst + Wo_, Real(0));
              continue;
            }
            for (int ox = 0; ox < first; ++ox) dst[ox] = 0;
            if (first < last) {
              // Input column of ox = first; the run steps by sx.
              const Real* src = xt + (size_t(c) * H_ + iy) * W_ + (first * sx_ - px_ + kx);
              if (sx_ == 1)
                std::copy_n(src, last - first, dst + first);
              else
                for (int ox = first; ox < last; ++ox) dst[ox] = src[size_t(ox - first) * sx_];
            }
            for (int ox = last; ox < Wo_; ++ox) dst[ox] = 0;
          }
          std::fill(row + P_, row + Ppad_, Real(0));
        }
  }

  // dxt += col2im(dcolT): every entry's gradient back to the input feature it was read from.
  void col2im(const Real* dcolT, Real* dxt) const {
    for (int c = 0; c < C_; ++c)
      for (int ky = 0; ky < kh_; ++ky)
        for (int kx = 0; kx < kw_; ++kx) {
          const Real* row = dcolT + size_t((c * kh_ + ky) * kw_ + kx) * Ppad_;
          const int first = columns_[kx].first, last = columns_[kx].second;
          for (int oy = 0; oy < Ho_; ++oy) {
            const int iy = oy * sy_ - py_ + ky;
            if (iy < 0 || iy >= H_ || first >= last) continue;
            const Real* src = row + size_t(oy) * Wo_;
            Real* dst = dxt + (size_t(c) * H_ + iy) * W_ + (first * sx_ - px_ + kx);
            for (int ox = first; ox < last; ++ox) dst[size_t(ox - first) * sx_] += src[ox];
          }
        }
  }

  int C_, H_, W_, O_, kh_, kw_, sy_, sx_, py_, px_;
  int Ho_ = 0, Wo_ = 0, P_ = 0, K_ = 0, Opad_ = 0, Ppad_ = 0;
  std::vector<std::pair<int, int>> columns_;  // [kw]: the ox range inside the map
  Buffer<Real> wt_;                           // WT aligned, as of prepare_pass
};

}  // namespace nmsnn::cpu
