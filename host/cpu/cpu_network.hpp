// cpu/cpu_network.hpp — the CPU engine: a stack of spiking layers run sample by sample.
//
// Each sample goes through the whole time loop of every layer while its data is in cache, then
// the readout (SPEC.md 3). Samples are split into a fixed number of blocks that depends on the
// batch size only; each block sums its own weight gradients and the blocks are added in order,
// so a result never depends on the number of threads. Templated on the number type: the engine
// runs in float, the gradient tests in double.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/input_product.hpp"
#include "cpu/lif.hpp"
#include "cpu/thread_pool.hpp"
#include "nmsnn/error.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/spec.hpp"

namespace nmsnn::cpu {

// A layer's parameters in the engine's layout. Its `out` neurons are padded with zero-weight
// neurons to `width`, a multiple of 8, for the product kernel: a padded neuron's input current
// is 0, so it never fires, and its gradients are exactly 0, so it stays that way.
template <class Real>
struct LayerParams {
  int in = 0;     // rows of WT: the network's inputs for layer 0, else the previous width
  int out = 0;    // neurons
  int width = 0;  // out rounded up to a multiple of 8
  std::vector<Real> WT, bias;    // WT[in, width] = W transposed, bias[width]
  std::vector<Real> dWT, dbias;  // gradients of the last backward, same layout
  std::vector<Real> W;           // [width, roundup8(in)]: WT untransposed, rebuilt by backward
};

inline int padded_width(int n) { return (n + 7) / 8 * 8; }

// The whole batch's input: static x[B, I] under the noise encoder, or a sequence xi[T, B, I].
template <class Real>
struct BatchInput {
  bool noisy = true;
  const Real* data = nullptr;
  int batch = 0;
  NoiseKey key;
};

// What backward needs: every layer's pre-reset state u, [B, T, width] per layer.
template <class Real>
struct SavedStates {
  int batch = 0;
  std::vector<std::vector<Real>> u;
  size_t bytes() const {
    size_t n = 0;
    for (auto& x : u) n += x.size() * sizeof(Real);
    return n;
  }
};

template <class Real>
class CpuNetwork {
 public:
  CpuNetwork(const NetworkSpec& spec, ThreadPool& pool) : spec_(spec), pool_(pool) {
    int in = spec.inputs;
    for (const LayerSpec& layer : spec.layers) {
      const SpikingLayer& s = std::get<SpikingLayer>(layer);
      LayerParams<Real> p;
      p.in = in;
      p.out = s.size;
      p.width = padded_width(s.size);
      p.WT.assign(size_t(in) * p.width, Real(0));
      p.bias.assign(p.width, Real(0));
      p.dWT = p.WT;
      p.dbias = p.bias;
      layers.push_back(std::move(p));
      LifNeurons<Real> n = LifNeurons<Real>::from(s);
      n.size = layers.back().width;
      neurons_.push_back(n);
      in = layers.back().width;
    }
    workers_.resize(pool_.size());
  }

  std::vector<LayerParams<Real>> layers;

  // logits[B, C]. `saved` (for training) receives u; `trace` (optional) every layer's returned
  // state and spikes, [T, B, H].
  void forward(const BatchInput<Real>& in, Real* logits, SavedStates<Real>* saved,
               std::vector<LayerTrace>* trace) {
    const int B = in.batch, T = spec_.time_steps, L = int(layers.size());
    if (saved) {
      saved->batch = B;
      saved->u.resize(L);
      for (int l = 0; l < L; ++l) saved->u[l].resize(size_t(B) * T * layers[l].width);
    }
    if (trace) {
      trace->assign(L, LayerTrace{});
      for (int l = 0; l < L; ++l) {
        LayerTrace& tr = (*trace)[l];
        tr.steps = T;
        tr.batch = B;
        tr.size = layers[l].out;
        tr.state.assign(size_t(T) * B * tr.size, 0.0f);
        tr.spikes.assign(size_t(T) * B * tr.size, 0.0f);
      }
    }
    const int blocks = block_count(B);
    pool_.parallel_for(blocks, [&](int block, int worker) {
      Worker& w = workers_[worker];
      for (int b = block_begin(B, block); b < block_begin(B, block + 1); ++b)
        forward_sample(in, b, logits, saved, trace, w);
    });
  }

  // dlogits[B, C] -> every layer's dWT and dbias; dinput[T, B, I] for a sequence input if given.
  void backward(const BatchInput<Real>& in, const SavedStates<Real>& saved, const Real* dlogits,
                Real* dinput) {
    const int B = in.batch;
    const int blocks = block_count(B);
    // The input gradients need W untransposed; it is rebuilt here so it can never be stale.
    for (auto& p : layers) {
      const int in_pad = padded_width(p.in);
      p.W.assign(size_t(p.width) * in_pad, Real(0));
      for (int i = 0; i < p.in; ++i)
        for (int h = 0; h < p.width; ++h) p.W[size_t(h) * in_pad + i] = p.WT[size_t(i) * p.width + h];
    }
    // One gradient accumulator per block, so the sum over samples has a fixed order.
    partial_.resize(blocks);
    pool_.parallel_for(blocks, [&](int block, int worker) {
      Worker& w = workers_[worker];
      auto& part = partial_[block];
      part.resize(layers.size());
      for (size_t l = 0; l < layers.size(); ++l) {
        part[l].dWT.assign(layers[l].WT.size(), Real(0));
        part[l].dbias.assign(layers[l].bias.size(), Real(0));
      }
      for (int b = block_begin(B, block); b < block_begin(B, block + 1); ++b)
        backward_sample(in, saved, b, dlogits, dinput, part, w);
    });
    // Sum the blocks in order, in parallel over slices of each gradient.
    for (size_t l = 0; l < layers.size(); ++l) {
      reduce_blocks(blocks, layers[l].dWT, [&](int k) -> const std::vector<Real>& {
        return partial_[k][l].dWT;
      });
      reduce_blocks(blocks, layers[l].dbias, [&](int k) -> const std::vector<Real>& {
        return partial_[k][l].dbias;
      });
    }
  }

  const NetworkSpec& spec() const { return spec_; }

 private:
  struct Grad {
    std::vector<Real> dWT, dbias;
  };
  // Buffers of one worker thread, reused across samples.
  struct Worker {
    GatherBuffers<Real> gather;
    std::vector<std::vector<Real>> a, u, state, spikes;  // per layer, [T, H]
    std::vector<Real> d_out, d_prev, du, x_prev, zeros;
  };

  // Blocks of about 8 samples, at most 64: enough tasks for any thread count, few partial sums.
  static int block_count(int B) { return std::max(1, std::min(64, (B + 7) / 8)); }
  static int block_begin(int B, int block) {
    return int((long long)B * block / block_count(B));
  }

  SampleInput<Real> sample_input(const BatchInput<Real>& in, int b) const {
    SampleInput<Real> s;
    s.noisy = in.noisy;
    s.T = spec_.time_steps;
    s.I = spec_.inputs;
    if (in.noisy) {
      s.data = in.data + size_t(b) * spec_.inputs;
      s.key = in.key;
      s.b = uint32_t(b);
    } else {
      s.data = in.data + size_t(b) * spec_.inputs;
      s.t_stride = size_t(in.batch) * spec_.inputs;
    }
    return s;
  }

  // The input of layer l > 0: the previous layer's returned spikes, [T, width_prev].
  SampleInput<Real> hidden_input(int l, const Real* spikes) const {
    SampleInput<Real> s;
    s.T = spec_.time_steps;
    s.I = layers[l].in;
    s.data = spikes;
    s.t_stride = size_t(layers[l].in);
    return s;
  }

  void forward_sample(const BatchInput<Real>& in, int b, Real* logits, SavedStates<Real>* saved,
                      std::vector<LayerTrace>* trace, Worker& w) {
    const int T = spec_.time_steps, L = int(layers.size());
    w.a.resize(L);
    w.u.resize(L);
    w.state.resize(L);
    w.spikes.resize(L);
    SampleInput<Real> x = sample_input(in, b);
    for (int l = 0; l < L; ++l) {
      const LayerParams<Real>& p = layers[l];
      const int H = p.width;
      const bool last = l == L - 1;
      w.a[l].resize(size_t(T) * H);
      input_forward(x, p.WT.data(), p.bias.data(), H, w.a[l].data(), w.gather);
      w.u[l].resize(size_t(T) * H);
      w.state[l].resize(size_t(T) * H);
      w.spikes[l].resize(size_t(T) * H);
      Real* u = saved ? saved->u[l].data() + size_t(b) * T * H : w.u[l].data();
      // The last layer returns its state to the readout, the others their spikes to the next
      // layer (and both go to a trace when recording).
      Real* state = w.state[l].data();
      Real* spikes = w.spikes[l].data();
      lif_forward(neurons_[l], T, w.a[l].data(), u, state, spikes);
      if (trace) {
        LayerTrace& tr = (*trace)[l];
        for (int t = 0; t < T; ++t)
          for (int h = 0; h < p.out; ++h) {
            const size_t dst = (size_t(t) * tr.batch + b) * p.out + h;
            tr.state[dst] = float(state[size_t(t) * H + h]);
            tr.spikes[dst] = float(spikes[size_t(t) * H + h]);
          }
      }
      if (!last) x = hidden_input(l + 1, spikes);
    }
    // Readout: reduce the last layer's returned state over t = begin_eval .. T-1.
    const int C = layers.back().out, CW = layers.back().width;
    const Real* v = w.state[L - 1].data();
    const int begin = spec_.readout.begin_eval;
    const Real scale = spec_.readout.reduce == Reduce::mean ? Real(1) / Real(T - begin) : Real(1);
    for (int c = 0; c < C; ++c) {
      Real sum = 0;
      for (int t = begin; t < T; ++t) sum += v[size_t(t) * CW + c];
      logits[size_t(b) * C + c] = sum * scale;
    }
  }

  void backward_sample(const BatchInput<Real>& in, const SavedStates<Real>& saved, int b,
                       const Real* dlogits, Real* dinput, std::vector<Grad>& grad, Worker& w) {
    const int T = spec_.time_steps, L = int(layers.size());
    const int C = layers.back().out, CW = layers.back().width;
    // Readout backward: every counted step of the last layer's state gets dlogits (scaled).
    const int begin = spec_.readout.begin_eval;
    const Real scale = spec_.readout.reduce == Reduce::mean ? Real(1) / Real(T - begin) : Real(1);
    w.d_out.assign(size_t(T) * CW, Real(0));
    for (int t = begin; t < T; ++t)
      for (int c = 0; c < C; ++c) w.d_out[size_t(t) * CW + c] = dlogits[size_t(b) * C + c] * scale;

    for (int l = L - 1; l >= 0; --l) {
      const LayerParams<Real>& p = layers[l];
      const int H = p.width;
      const bool last = l == L - 1;
      const Real* u = saved.u[l].data() + size_t(b) * T * H;
      w.du.resize(size_t(T) * H);
      w.zeros.assign(size_t(T) * H, Real(0));
      lif_backward(neurons_[l], T, u, last ? w.d_out.data() : w.zeros.data(),
                   last ? w.zeros.data() : w.d_out.data(), w.du.data());
      if (l > 0) {
        // This layer's input was the previous layer's spikes: recompute them from its saved u.
        const int Hp = layers[l - 1].width;
        w.x_prev.resize(size_t(T) * Hp);
        lif_spikes_from_u(neurons_[l - 1], T, saved.u[l - 1].data() + size_t(b) * T * Hp,
                          w.x_prev.data());
        input_weight_grad(hidden_input(l, w.x_prev.data()), w.du.data(), H, grad[l].dWT.data(),
                          grad[l].dbias.data(), w.gather);
        w.d_prev.resize(size_t(T) * Hp);
        input_grad(T, H, Hp, w.du.data(), p.W.data(), w.d_prev.data());
        std::swap(w.d_out, w.d_prev);
      } else {
        input_weight_grad(sample_input(in, b), w.du.data(), H, grad[0].dWT.data(),
                          grad[0].dbias.data(), w.gather);
        if (dinput && !in.noisy) {
          const int in_pad = padded_width(p.in);
          w.d_prev.resize(size_t(T) * in_pad);
          input_grad(T, H, in_pad, w.du.data(), p.W.data(), w.d_prev.data());
          for (int t = 0; t < T; ++t)
            std::copy_n(w.d_prev.data() + size_t(t) * in_pad, p.in,
                        dinput + (size_t(t) * in.batch + b) * p.in);
        }
      }
    }
  }

  template <class Get>
  void reduce_blocks(int blocks, std::vector<Real>& out, Get&& part) {
    const size_t n = out.size();
    const int slices = int(std::min<size_t>(64, (n + 4095) / 4096));
    pool_.parallel_for(std::max(1, slices), [&](int slice, int) {
      const size_t lo = n * slice / std::max(1, slices), hi = n * (slice + 1) / std::max(1, slices);
      for (size_t i = lo; i < hi; ++i) out[i] = Real(0);
      for (int k = 0; k < blocks; ++k) {
        const std::vector<Real>& src = part(k);
        for (size_t i = lo; i < hi; ++i) out[i] += src[i];
      }
    });
  }

  NetworkSpec spec_;
  ThreadPool& pool_;
  std::vector<LifNeurons<Real>> neurons_;
  std::vector<Worker> workers_;
  std::vector<std::vector<Grad>> partial_;
};

}  // namespace nmsnn::cpu
