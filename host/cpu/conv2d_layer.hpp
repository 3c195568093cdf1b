// cpu/conv2d_layer.hpp — torch.nn.Conv2d at every step: y[t] = conv2d(x[t], W) + bias (zero
// padding, stride; no dilation, no groups).
//
// Shapes for one sample: x[T, in_width] holds the maps [C, H, W] flat in (c, y, x) order;
// y[T, out_width] holds [O, H', W'] likewise, P = H' W' positions per channel; both are padded
// at their end with zeros. K = C kh kw is one window in PyTorch's (c, ky, kx) order.
//
// The convolution is one product per sample: im2col gathers every position's window into a row
// of col[T*P, K] (zeros where the window overhangs the padding), then
//     Y[T*P, Opad] = bias + col WT                   (gemm_accumulate, tile_gemm.hpp)
// and Y's (position, channel) rows are transposed into y's (channel, position) order.
// Backward runs the same product backwards:
//     dY = dy transposed;  dbias += sum_rows dY;  dWT += col^T dY;
//     dcol = dY W;  dx = col2im(dcol) (each dcol entry added back to the feature it was read from)
// A repeated static input (t_stride 0) is the same at every step: it is convolved once and the
// result copied to every step; backward sums dY over the steps first (one product, not T).
// Where im2col reads from is fixed by the shapes: for every output position and kernel row, a
// run of contiguous input features (runs_), made once in the constructor.
//
// Engine layout: params[0] = WT[K, Opad] (Opad = padded_width(O), zero columns past O),
// params[1] = bias[Opad]. Public layout (PyTorch's): weight [O, C, kh, kw], bias [O].
// Saves nothing: backward gathers col again from x, which the network keeps or rebuilds.
#pragma once

#include <algorithm>
#include <vector>

#include "cpu/layer.hpp"

namespace nmsnn::cpu {

template <class Real>
class Conv2dLayer final : public CpuLayer<Real> {
 public:
  // in_shape: [C, H, W] of the input maps (NetworkSpec::layer_shape of the layer before).
  Conv2dLayer(int in_width, int steps, const std::vector<int>& in_shape, const Conv2d& spec)
      : C_(in_shape.at(0)), H_(in_shape.at(1)), W_(in_shape.at(2)), O_(spec.out_channels),
        kh_(spec.kernel[0]), kw_(spec.kernel[1]) {
    const int kh = kh_, kw = kw_;
    const auto out = window_output({H_, W_}, spec.kernel, spec.stride, spec.padding);
    P_ = out[0] * out[1];
    K_ = C_ * kh * kw;
    Opad_ = padded_width(O_);
    Kpad_ = padded_width(K_);
    this->in_width = in_width;
    this->in_steps = this->out_steps = steps;
    this->out_real = O_ * P_;
    this->out_width = padded_width(this->out_real);
    this->params.resize(2);
    this->params[0].value.assign(size_t(K_) * Opad_, Real(0));
    this->params[0].public_shape = {O_, C_, kh, kw};
    this->params[1].value.assign(Opad_, Real(0));
    this->params[1].public_shape = {O_};
    for (auto& p : this->params) p.grad.assign(p.value.size(), Real(0));

    // runs_[p*kh + ky]: where window row ky of position p reads, the same in every channel.
    runs_.resize(size_t(P_) * kh);
    for (int oy = 0; oy < out[0]; ++oy)
      for (int ox = 0; ox < out[1]; ++ox)
        for (int ky = 0; ky < kh; ++ky) {
          Run& r = runs_[size_t(oy * out[1] + ox) * kh + ky];
          const int iy = oy * spec.stride[0] - spec.padding[0] + ky;
          const int ix = ox * spec.stride[1] - spec.padding[1];  // input column of kx = 0
          r.begin = std::clamp(-ix, 0, kw);
          r.end = std::clamp(W_ - ix, r.begin, kw);
          if (iy < 0 || iy >= H_) r.begin = r.end = 0;  // the whole row is in the padding
          r.offset = r.begin < r.end ? iy * W_ + ix + r.begin : 0;
        }
  }

  const char* kind() const override { return "conv2d"; }

  // An aligned copy of WT for the products (see LinearLayer::prepare_pass) and W untransposed,
  // [O, Kpad], for the input gradient: both made once per pass, not per sample.
  void prepare_pass() override {
    const std::vector<Real>& wt = this->params[0].value;
    wt_.assign(wt.begin(), wt.end());
    w_.assign(size_t(O_) * Kpad_, Real(0));
    for (int k = 0; k < K_; ++k)
      for (int o = 0; o < O_; ++o) w_[size_t(o) * Kpad_ + k] = wt[size_t(k) * Opad_ + o];
  }

  void forward(const SampleInput<Real>& x, uint32_t, const Pass<Real>&, LayerOutput<Real>& out,
               LayerScratch<Real>& s) const override {
    const int T = this->out_steps, Wout = this->out_width;
    const int steps = x.t_stride == 0 ? 1 : T;  // a repeated input: one step, copied below
    const size_t rows = size_t(steps) * P_;
    s.a.resize(rows * K_);
    Real* col = s.a.data();
    im2col(x, steps, col);
    // Y[rows, Opad] = bias + col WT
    s.b.resize(rows * Opad_);
    Real* Y = s.b.data();
    const Real* bias = this->params[1].value.data();
    for (size_t r = 0; r < rows; ++r) std::copy_n(bias, Opad_, Y + r * Opad_);
    gemm_accumulate<Real>(int(rows), K_, Opad_, col, size_t(K_), 1,
                          {wt_.data(), size_t(Opad_), nullptr}, {Y, size_t(Opad_), nullptr});
    // y[t, o*P + p] = Y[t*P + p, o], zeros past out_real.
    for (int t = 0; t < steps; ++t) {
      Real* yt = out.y + size_t(t) * Wout;
      const Real* Yt = Y + size_t(t) * P_ * Opad_;
      for (int p = 0; p < P_; ++p)
        for (int o = 0; o < O_; ++o) yt[size_t(o) * P_ + p] = Yt[size_t(p) * Opad_ + o];
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
    const int steps = repeated ? 1 : T;
    const size_t rows = size_t(steps) * P_;
    // dY[rows, Opad] = dy transposed (summed over t for a repeated input), zeros past O.
    s.b.assign(rows * Opad_, Real(0));
    Real* dY = s.b.data();
    for (int t = 0; t < T; ++t) {
      const Real* dyt = g.dy + size_t(t) * Wout;
      Real* dYt = dY + (repeated ? 0 : size_t(t) * P_ * Opad_);
      for (int p = 0; p < P_; ++p)
        for (int o = 0; o < O_; ++o) dYt[size_t(p) * Opad_ + o] += dyt[size_t(o) * P_ + p];
    }
    Real* dbias = g.grads[1];
    for (size_t r = 0; r < rows; ++r)
      for (int o = 0; o < O_; ++o) dbias[o] += dY[r * Opad_ + o];
    // dWT[K, Opad] += col^T dY: col read transposed (row k of the product is column k of col).
    s.a.resize(rows * std::max(K_, Kpad_));
    Real* col = s.a.data();
    im2col(x, steps, col);
    gemm_accumulate<Real>(K_, int(rows), Opad_, col, 1, size_t(K_), {dY, size_t(Opad_), nullptr},
                          {g.grads[0], size_t(Opad_), nullptr});
    if (!g.dx) return;
    // dcol[rows, Kpad] = dY W (only the O real channels: the rest of dY is 0), in col's place.
    Real* dcol = col;
    std::fill(dcol, dcol + rows * Kpad_, Real(0));
    gemm_accumulate<Real>(int(rows), O_, Kpad_, dY, size_t(Opad_), 1,
                          {w_.data(), size_t(Kpad_), nullptr}, {dcol, size_t(Kpad_), nullptr});
    // col2im: every window entry's gradient back to the input feature it was read from.
    std::fill(g.dx, g.dx + size_t(this->in_steps) * this->in_width, Real(0));
    for (int t = 0; t < steps; ++t) {
      Real* dxt = g.dx + size_t(t) * this->in_width;
      for (int p = 0; p < P_; ++p) {
        const Real* d = dcol + (size_t(t) * P_ + p) * Kpad_;
        for (int c = 0; c < C_; ++c)
          for (int ky = 0; ky < kh_; ++ky) {
            const Run& r = runs_[size_t(p) * kh_ + ky];
            Real* dst = dxt + size_t(c) * H_ * W_ + r.offset;
            const Real* src = d + (c * kh_ + ky) * kw_ + r.begin;
            for (int i = 0; i < r.end - r.begin; ++i) dst[i] += src[i];
          }
      }
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
  // Window row ky of output position p reads input row iy, columns ix + begin .. ix + end - 1
  // (offset: the first of them in a channel's map); its entries before begin and from end on
  // lie in the zero padding. begin = end = 0 when the whole row does.
  struct Run {
    int offset = 0, begin = 0, end = 0;
  };

  // col[steps*P, K] for steps 0 .. steps-1 of x: per position, channel and kernel row, a run of
  // contiguous input features between zeros.
  void im2col(const SampleInput<Real>& x, int steps, Real* col) const {
    for (int t = 0; t < steps; ++t) {
      const Real* xt = x.data + t * x.t_stride;
      for (int p = 0; p < P_; ++p) {
        Real* row = col + (size_t(t) * P_ + p) * K_;
        for (int c = 0; c < C_; ++c)
          for (int ky = 0; ky < kh_; ++ky) {
            const Run& r = runs_[size_t(p) * kh_ + ky];
            const Real* src = xt + size_t(c) * H_ * W_ + r.offset;
            Real* dst = row + (c * kh_ + ky) * kw_;
            for (int kx = 0; kx < r.begin; ++kx) dst[kx] = 0;
            for (int kx = r.begin; kx < r.end; ++kx) dst[kx] = src[kx - r.begin];
            for (int kx = r.end; kx < kw_; ++kx) dst[kx] = 0;
          }
      }
    }
  }

  int C_, H_, W_, O_, kh_, kw_;
  int P_ = 0, K_ = 0, Opad_ = 0, Kpad_ = 0;
  std::vector<Run> runs_;  // [P, kh]
  Buffer<Real> wt_, w_;      // WT aligned, and W [O, Kpad], as of prepare_pass
};

}  // namespace nmsnn::cpu
