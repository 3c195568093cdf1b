// cpu/cpu_network.hpp — the CPU engine: a stack of layers run sample by sample.
//
// Each sample goes through the whole time loop of every layer while its data is in cache, then the
// readout (SPEC.md 3); in a training step (train_pass) its backward follows at once, on the same
// thread, so nothing of it leaves the cache in between. Samples are split into a fixed number of
// blocks that depends on the batch size only; each block sums its own weight gradients and the
// blocks are added in order, so a result never depends on the number of threads. Templated on the
// number type: the engine runs in float, the gradient tests in double.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "cpu/activation_layer.hpp"
#include "cpu/conv2d_layer.hpp"
#include "cpu/flatten_layer.hpp"
#include "cpu/layer.hpp"
#include "cpu/lif_layer.hpp"
#include "cpu/lif_neuron_layer.hpp"
#include "cpu/linear_layer.hpp"
#include "cpu/lowpass_layer.hpp"
#include "cpu/pool2d_layer.hpp"
#include "cpu/spiking_activation_layer.hpp"
#include "cpu/temporal_pool_layer.hpp"
#include "cpu/thread_pool.hpp"
#include "network/engine.hpp"
#include "nmsnn/error.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/spec.hpp"

namespace nmsnn::cpu {

// What backward needs, per layer [B, per-sample block]; and what the pass measured.
template <class Real>
struct SavedStates {
  int batch = 0;
  std::vector<Buffer<Real>> layer;
  size_t bytes() const {
    size_t n = 0;
    for (auto& x : layer) n += x.size() * sizeof(Real);
    return n;
  }
};

// Optional per-pass outputs besides the logits.
struct PassRecord {
  std::vector<LayerTrace>* trace = nullptr;  // every layer's returned values, [T, B, H]
  std::vector<std::vector<float>>* rates = nullptr;  // per layer [B, H] (spiking layers)
  double regularization = 0;  // sum of the regularization terms over the batch
};

template <class Real>
class CpuNetwork {
 public:
  CpuNetwork(const NetworkSpec& spec, ThreadPool& pool) : spec_(spec), pool_(pool) {
    int width = spec.inputs, real = spec.inputs, steps = spec.time_steps;
    const int L = int(spec.layers.size());
    for (int l = 0; l < L; ++l) {
      const LayerSpec& ls = spec.layers[l];
      std::unique_ptr<CpuLayer<Real>> layer;
      if (auto* s = std::get_if<SpikingLayer>(&ls))
        layer = std::make_unique<LifLayer<Real>>(width, real, steps, *s, l == L - 1);
      else if (auto* d = std::get_if<Dense>(&ls))
        layer = std::make_unique<DenseLayer<Real>>(width, real, steps, d->size);
      else if (auto* a = std::get_if<Activation>(&ls))
        layer = std::make_unique<ActivationLayer<Real>>(width, real, steps, a->kind);
      else if (auto* sa = std::get_if<SpikingActivation>(&ls))
        layer = std::make_unique<SpikingActivationLayer<Real>>(width, real, steps, *sa);
      else if (auto* f = std::get_if<Lowpass>(&ls))
        layer = std::make_unique<LowpassLayer<Real>>(width, real, steps, *f);
      else if (std::holds_alternative<TemporalAvgPool>(ls))
        layer = std::make_unique<TemporalPoolLayer<Real>>(width, real, steps);
      else if (auto* c = std::get_if<Conv2d>(&ls))
        layer = std::make_unique<Conv2dLayer<Real>>(width, steps, spec.layer_shape(l - 1), *c);
      else if (auto* p = std::get_if<AvgPool2d>(&ls))
        layer = std::make_unique<Pool2dLayer<Real>>(width, steps, spec.layer_shape(l - 1),
                                                    p->kernel, pool_stride(p->kernel, p->stride),
                                                    PoolMode::avg);
      else if (auto* m = std::get_if<MaxPool2d>(&ls))
        layer = std::make_unique<Pool2dLayer<Real>>(width, steps, spec.layer_shape(l - 1),
                                                    m->kernel, pool_stride(m->kernel, m->stride),
                                                    PoolMode::max);
      else if (std::holds_alternative<Flatten>(ls))
        layer = std::make_unique<FlattenLayer<Real>>(width, real, steps);
      else if (auto* n = std::get_if<Lif>(&ls))
        layer = std::make_unique<LifNeuronLayer<Real>>(width, real, steps, *n, l == L - 1);
      else
        detail::fail("the cpu engine does not run ", layer_kind(ls), " layers (layer ", l, ")");
      layer->index = l;
      width = layer->out_width;
      real = layer->out_real;
      steps = layer->out_steps;
      layers.push_back(std::move(layer));
    }
    // A layer's output is kept for backward when the next layer reads it there
    // (detail::backward_reads_input) and the layer cannot rebuild it from its own saved state.
    for (int l = 0; l < L; ++l)
      keeps_output_.push_back(l + 1 < L && detail::backward_reads_input(spec.layers[l + 1]) &&
                              !layers[l]->rebuilds_output());
    workers_.resize(pool_.size());
  }

  std::vector<std::unique_ptr<CpuLayer<Real>>> layers;

  // logits[B, C]; `saved` (training passes) receives what backward needs.
  void forward(const Pass<Real>& in, Real* logits, SavedStates<Real>* saved,
               PassRecord* record = nullptr) {
    const int B = in.batch, L = int(layers.size());
    if (saved) {
      saved->batch = B;
      saved->layer.resize(L);
      for (int l = 0; l < L; ++l) saved->layer[l].resize(size_t(B) * saved_block(l));
    }
    std::vector<LayerTrace>* trace = record ? record->trace : nullptr;
    if (trace) {
      trace->assign(L, LayerTrace{});
      for (int l = 0; l < L; ++l) {
        LayerTrace& tr = (*trace)[l];
        tr.steps = layers[l]->out_steps;
        tr.batch = B;
        tr.size = layers[l]->out_real;
        tr.state.assign(size_t(tr.steps) * B * tr.size, 0.0f);
        tr.spikes.assign(size_t(tr.steps) * B * tr.size, 0.0f);
      }
    }
    std::vector<std::vector<float>>* rates = record ? record->rates : nullptr;
    if (rates) {
      rates->assign(L, {});
      for (int l = 0; l < L; ++l)
        if (layers[l]->spiking()) (*rates)[l].assign(size_t(B) * layers[l]->out_real, 0.0f);
    }
    const int blocks = block_count(B);
    std::vector<double> regularization(B, 0.0);
    for (auto& layer : layers) layer->prepare_pass();
    pool_.parallel_for(blocks, [&](int block, int worker) {
      Worker& w = workers_[worker];
      set_keep_inputs(w, false);
      for (int b = block_begin(B, block); b < block_begin(B, block + 1); ++b)
        regularization[b] = forward_sample(in, b, b, logits, saved, trace, rates, w);
    });
    if (record) {
      record->regularization = 0;
      for (double r : regularization) record->regularization += r;
    }
  }

  // dlogits[B, C] -> every parameter's gradient; dinput for sequence ([T, B, I]) and repeated
  // ([B, I]) inputs when given.
  void backward(const Pass<Real>& in, const SavedStates<Real>& saved, const Real* dlogits,
                Real* dinput) {
    const int B = in.batch;
    const int blocks = block_count(B);
    // One gradient accumulator per block, so the sum over samples has a fixed order.
    partial_.resize(blocks);
    for (auto& layer : layers) layer->prepare_pass();
    pool_.parallel_for(blocks, [&](int block, int worker) {
      Worker& w = workers_[worker];
      set_keep_inputs(w, false);
      auto& part = zeroed_partial(block);
      const int C = layers.back()->out_real;
      for (int b = block_begin(B, block); b < block_begin(B, block + 1); ++b)
        backward_sample(in, saved, b, b, dlogits + size_t(b) * C, dinput, part, w);
    });
    reduce_partials(blocks);
  }

  // A training pass whose backward runs sample by sample straight after the forward: forward of
  // sample b, row_grad(b, logits of b, dlogits of b) (RowGrad: void(int, const Real*, Real*),
  // the loss's gradient for that row alone), then backward of b, while its saved state, and the
  // masked inputs of the noise encoder, are still in the worker's buffers. So the masks are made
  // once rather than twice (input_product.hpp), and no [B, ...] saved state is allocated. The
  // samples run in forward()'s blocks and each block's gradient in backward()'s order, so the
  // logits and gradients are those of forward() then backward(), bit for bit. Returns the
  // regularization summed over the batch.
  template <class RowGrad>
  double train_pass(const Pass<Real>& in, Real* logits, const RowGrad& row_grad) {
    const int B = in.batch, L = int(layers.size()), C = layers.back()->out_real;
    const int blocks = block_count(B);
    std::vector<double> regularization(B, 0.0);
    partial_.resize(blocks);
    for (auto& layer : layers) layer->prepare_pass();
    pool_.parallel_for(blocks, [&](int block, int worker) {
      Worker& w = workers_[worker];
      set_keep_inputs(w, true);
      w.own.batch = 1;
      w.own.layer.resize(L);
      for (int l = 0; l < L; ++l) w.own.layer[l].resize(saved_block(l));
      w.dlogits.resize(size_t(C));
      auto& part = zeroed_partial(block);
      for (int b = block_begin(B, block); b < block_begin(B, block + 1); ++b) {
        regularization[b] = forward_sample(in, b, 0, logits, &w.own, nullptr, nullptr, w);
        row_grad(b, static_cast<const Real*>(logits + size_t(b) * C), w.dlogits.data());
        backward_sample(in, w.own, b, 0, w.dlogits.data(), nullptr, part, w);
      }
    });
    reduce_partials(blocks);
    double total = 0;
    for (double r : regularization) total += r;
    return total;
  }

  const NetworkSpec& spec() const { return spec_; }

  // Sample b's block of layer l in `saved`: the layer's own saved floats first.
  const Real* saved_of(const SavedStates<Real>& saved, int l, int b) const {
    return saved.layer[l].data() + size_t(b) * saved_block(l);
  }

 private:
  // Buffers of one worker thread, reused across samples.
  struct Worker {
    std::vector<LayerScratch<Real>> scratch;  // per layer
    std::vector<Buffer<Real>> y;         // per layer output [steps, width]
    Buffer<Real> x0, state, spikes, rates, dy, dx, dlogits;
    SavedStates<Real> own;               // train_pass: the current sample's saved state
    bool keep_inputs = false;            // train_pass: backward reuses forward's layer-0 input
  };

  // In train_pass a sample's backward follows its forward on the same worker, so layer 0's input
  // (its masked noise, or the materialised w.x0) can be kept from one to the other.
  void set_keep_inputs(Worker& w, bool keep) {
    w.keep_inputs = keep;
    w.scratch.resize(layers.size());
    w.scratch[0].gather.keep = keep;
    w.scratch[0].gather.holds_all = false;  // nothing kept from an earlier pass counts
  }

  // Block `block`'s gradient accumulators, one per parameter, zeroed.
  std::vector<std::vector<Buffer<Real>>>& zeroed_partial(int block) {
    auto& part = partial_[block];
    const int L = int(layers.size());
    part.resize(L);
    for (int l = 0; l < L; ++l) {
      part[l].resize(layers[l]->params.size());
      for (size_t k = 0; k < part[l].size(); ++k)
        part[l][k].assign(layers[l]->params[k].value.size(), Real(0));
    }
    return part;
  }

  // Every parameter's gradient: the blocks' partial sums added in block order.
  void reduce_partials(int blocks) {
    for (size_t l = 0; l < layers.size(); ++l)
      for (size_t k = 0; k < layers[l]->params.size(); ++k)
        reduce_blocks(blocks, layers[l]->params[k].grad, [&](int j) -> const Buffer<Real>& {
          return partial_[j][l][k];
        });
  }

  // Blocks of about 8 samples, at most 64: enough tasks for any thread count, few partial sums.
  static int block_count(int B) { return std::max(1, std::min(64, (B + 7) / 8)); }
  static int block_begin(int B, int block) { return int((long long)B * block / block_count(B)); }

  size_t out_floats(int l) const { return size_t(layers[l]->out_steps) * layers[l]->out_width; }
  size_t saved_block(int l) const {
    return layers[l]->saved_floats() + (keeps_output_[l] ? out_floats(l) : 0);
  }

  // The input of layer 0 for sample b, as the layer takes it. Layers other than dense and spiking
  // ones cannot read the noise encoder directly: its masked values are made into w.x0 [T, I]
  // for them, in forward and again (the same masks) in backward, unless train_pass kept them.
  // `again` (backward): in train_pass w.x0 still holds this sample's values from its forward.
  SampleInput<Real> first_input(const Pass<Real>& in, int b, Worker& w, bool again = false) const {
    SampleInput<Real> s;
    s.T = spec_.time_steps;
    s.I = spec_.inputs;
    s.data = in.data + size_t(b) * spec_.inputs;
    switch (in.kind) {
      case Input::Kind::noisy:
        s.noisy = true;
        s.key = in.key;
        s.b = uint32_t(b);
        if (!layers[0]->takes_noisy_input()) {
          if (again && w.keep_inputs) return dense(w.x0.data(), s.T, s.I);
          w.x0.resize(size_t(s.T) * s.I);
          for (int t = 0; t < s.T; ++t)
            for (int i = 0; i < s.I; ++i)
              w.x0[size_t(t) * s.I + i] = Real(noise_mask(in.key, t, uint32_t(b), i)) * s.data[i];
          s = dense(w.x0.data(), s.T, s.I);
        }
        break;
      case Input::Kind::repeated: s.t_stride = 0; break;
      case Input::Kind::sequence: s.t_stride = size_t(in.batch) * spec_.inputs; break;
    }
    return s;
  }

  static SampleInput<Real> dense(const Real* data, int T, int width) {
    SampleInput<Real> s;
    s.T = T;
    s.I = width;
    s.data = data;
    s.t_stride = size_t(width);
    return s;
  }

  // Sample b, whose saved state goes to row `row` of `saved` (b, or 0 for a worker's own).
  double forward_sample(const Pass<Real>& in, int b, int row, Real* logits,
                        SavedStates<Real>* saved, std::vector<LayerTrace>* trace,
                        std::vector<std::vector<float>>* rates, Worker& w) {
    const int L = int(layers.size());
    w.scratch.resize(L);
    w.y.resize(L);
    SampleInput<Real> x = first_input(in, b, w);
    double regularization = 0;
    for (int l = 0; l < L; ++l) {
      const CpuLayer<Real>& layer = *layers[l];
      const size_t n = out_floats(l);
      w.y[l].resize(n);
      LayerOutput<Real> out;
      out.y = w.y[l].data();
      Real* block = saved ? saved->layer[l].data() + size_t(row) * saved_block(l) : nullptr;
      out.saved = block && layer.saved_floats() ? block : nullptr;
      if (trace) out.state = (w.state.resize(n), w.state.data());
      if (trace) out.spikes = (w.spikes.resize(n), w.spikes.data());
      if (rates && layer.spiking()) out.rates = (w.rates.resize(layer.out_width), w.rates.data());
      layer.forward(x, uint32_t(b), in, out, w.scratch[l]);
      regularization += out.regularization;
      if (block && keeps_output_[l]) std::copy_n(out.y, n, block + layer.saved_floats());
      if (trace && !layer.writes_spikes()) std::copy_n(out.y, n, out.spikes);
      if (trace) record_trace((*trace)[l], layer, b, out);
      if (out.rates)
        std::copy_n(out.rates, layer.out_real, (*rates)[l].data() + size_t(b) * layer.out_real);
      x = dense(out.y, layer.out_steps, layer.out_width);
    }
    // Readout: reduce the last layer's output over t = begin_eval .. steps-1.
    const CpuLayer<Real>& last = *layers.back();
    const Real* v = w.y[L - 1].data();
    const int begin = spec_.readout.begin_eval, T = last.out_steps, W = last.out_width;
    const Real scale = spec_.readout.reduce == Reduce::mean ? Real(1) / Real(T - begin) : Real(1);
    for (int c = 0; c < last.out_real; ++c) {
      Real sum = 0;
      for (int t = begin; t < T; ++t) sum += v[size_t(t) * W + c];
      logits[size_t(b) * last.out_real + c] = sum * scale;
    }
    return regularization;
  }

  static void record_trace(LayerTrace& tr, const CpuLayer<Real>& layer, int b,
                           const LayerOutput<Real>& out) {
    const int W = layer.out_width;
    for (int t = 0; t < layer.out_steps; ++t)
      for (int h = 0; h < layer.out_real; ++h) {
        const size_t dst = (size_t(t) * tr.batch + b) * tr.size + h;
        tr.state[dst] = float(out.state[size_t(t) * W + h]);
        tr.spikes[dst] = float(out.spikes[size_t(t) * W + h]);
      }
  }

  // Sample b, saved at row `row` of `saved`; dlogits is its row [C].
  void backward_sample(const Pass<Real>& in, const SavedStates<Real>& saved, int b, int row,
                       const Real* dlogits, Real* dinput,
                       std::vector<std::vector<Buffer<Real>>>& grads, Worker& w) {
    const int L = int(layers.size());
    w.scratch.resize(L);
    w.y.resize(L);
    // Readout backward: every counted step of the last layer's output gets dlogits (scaled).
    const CpuLayer<Real>& last = *layers.back();
    const int begin = spec_.readout.begin_eval, T = last.out_steps, W = last.out_width;
    const Real scale = spec_.readout.reduce == Reduce::mean ? Real(1) / Real(T - begin) : Real(1);
    w.dy.assign(out_floats(L - 1), Real(0));
    for (int t = begin; t < T; ++t)
      for (int c = 0; c < last.out_real; ++c)
        w.dy[size_t(t) * W + c] = dlogits[c] * scale;

    for (int l = L - 1; l >= 0; --l) {
      const CpuLayer<Real>& layer = *layers[l];
      const Real* block = saved.layer[l].data() + size_t(row) * saved_block(l);
      // This layer's input: the sample's input, or the previous layer's kept or rebuilt output.
      SampleInput<Real> x;
      if (l == 0) {
        x = first_input(in, b, w, true);
      } else if (!detail::backward_reads_input(spec_.layers[l])) {  // x.data is then null
        x = dense(static_cast<const Real*>(nullptr), layer.in_steps, layer.in_width);
      } else {
        const CpuLayer<Real>& prev = *layers[l - 1];
        const Real* prev_block = saved.layer[l - 1].data() + size_t(row) * saved_block(l - 1);
        const Real* y = prev_block + prev.saved_floats();
        if (!keeps_output_[l - 1]) {
          w.y[l - 1].resize(out_floats(l - 1));
          prev.rebuild_output(prev_block, w.y[l - 1].data());
          y = w.y[l - 1].data();
        }
        x = dense(y, prev.out_steps, prev.out_width);
      }
      const bool want_dx = l > 0 || (dinput && in.kind != Input::Kind::noisy);
      w.dx.assign(want_dx ? size_t(layer.in_steps) * layer.in_width : 0, Real(0));
      std::vector<Real*> g;
      for (auto& acc : grads[l]) g.push_back(acc.data());
      LayerGrad<Real> lg;
      lg.dy = w.dy.data();
      lg.dx = want_dx ? w.dx.data() : nullptr;
      lg.grads = g.data();
      layer.backward(x, uint32_t(b), in, layer.saved_floats() ? block : nullptr, lg,
                     w.scratch[l]);
      if (l == 0 && want_dx) write_input_grad(in, b, w.dx.data(), dinput);
      std::swap(w.dy, w.dx);
    }
  }

  // dL/dinput of sample b: a sequence gets every step, a repeated input the sum over steps.
  void write_input_grad(const Pass<Real>& in, int b, const Real* dx, Real* dinput) const {
    const int T = spec_.time_steps, I = spec_.inputs;
    if (in.kind == Input::Kind::sequence) {
      for (int t = 0; t < T; ++t)
        std::copy_n(dx + size_t(t) * I, I, dinput + (size_t(t) * in.batch + b) * I);
    } else {
      Real* out = dinput + size_t(b) * I;
      for (int i = 0; i < I; ++i) out[i] = 0;
      for (int t = 0; t < T; ++t)
        for (int i = 0; i < I; ++i) out[i] += dx[size_t(t) * I + i];
    }
  }

  template <class Get>
  void reduce_blocks(int blocks, std::vector<Real>& out, Get&& part) {
    const size_t n = out.size();
    const int slices = std::max(1, int(std::min<size_t>(64, (n + 4095) / 4096)));
    pool_.parallel_for(slices, [&](int slice, int) {
      const size_t lo = n * slice / slices, hi = n * (slice + 1) / slices;
      for (size_t i = lo; i < hi; ++i) out[i] = Real(0);
      for (int k = 0; k < blocks; ++k) {
        const Buffer<Real>& src = part(k);
        for (size_t i = lo; i < hi; ++i) out[i] += src[i];
      }
    });
  }

  NetworkSpec spec_;
  ThreadPool& pool_;
  std::vector<bool> keeps_output_;
  std::vector<Worker> workers_;
  std::vector<std::vector<std::vector<Buffer<Real>>>> partial_;  // [block][layer][param]
};

}  // namespace nmsnn::cpu
