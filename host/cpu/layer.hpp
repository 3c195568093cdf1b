// cpu/layer.hpp — the interface every layer kind of the CPU engine implements.
//
// A layer maps one sample's sequence x[in_steps, in_width] to y[out_steps, out_width] and back:
// forward keeps what its backward needs in a per-sample `saved` block, backward turns dL/dy into
// dL/dx and accumulates its parameters' gradients. The network (cpu_network.hpp) runs the stack
// sample by sample and owns every buffer; layers hold only their parameters.
//
// Widths: layers with weights pad their outputs for the product kernel (tile_gemm.hpp): to a
// multiple of 16 with the avx512 kernel set, of 8 otherwise. 16 floats are one 64-byte cache
// line, so with the aligned buffers of aligned.hpp every row starts on a line and AVX-512 loads
// never straddle two (a width of 104 for 100 neurons ran the dense product ~15% slower than 112,
// though 112 does more work); 32-byte AVX2 loads do not straddle at a multiple of 8, and there
// the extra columns would only cost time. A padded neuron has zero weights and bias, so its
// output is 0 (or f(0) for an activation), the next layer's weights for it are 0, and its
// gradients stay exactly 0.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cpu/input_product.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/philox.hpp"

namespace nmsnn::cpu {

// n rounded up to a multiple of 16 (avx512 kernel set) or 8. The sum is taken in 64 bits so that
// no int overflows even near INT_MAX; validated specs keep n <= kMaxLayerSize (limits.hpp), so
// the result fits an int.
inline int padded_width(int n) {
  const int64_t to = active_kernel_set() == KernelSet::avx512 ? 16 : 8;
  return int((int64_t(n) + to - 1) / to * to);
}

// One forward or backward pass over a batch: its input and what every layer knows about the pass.
// The input is static x[B, I] (noisy: under the noise encoder; repeated: the same at every step)
// or a sequence xi[T, B, I]; it must stay unchanged until the pass's backward has run.
template <class Real>
struct Pass {
  Input::Kind kind = Input::Kind::noisy;
  const Real* data = nullptr;
  int batch = 0;          // B, also for terms averaged over the batch
  NoiseKey key;           // the pass's noise key (encoder masks, initial voltages)
  bool training = false;  // a training pass (SpikingActivation's swap, Lowpass's option)
};

// Per-sample results of a layer's forward pass. y and saved are always given (saved is null in
// inference passes); the others only when asked for.
template <class Real>
struct LayerOutput {
  Real* y = nullptr;            // [out_steps, out_width]
  Real* saved = nullptr;        // [saved_floats()] or null
  Real* state = nullptr;        // [out_steps, out_width]: inner state for traces, or null
  Real* spikes = nullptr;       // [out_steps, out_width]: spikes for traces (layers that write
                                // them; for the others the trace shows y), or null
  Real* rates = nullptr;        // [out_width]: firing rates (spiking layers), or null
  double regularization = 0;    // this sample's regularization loss (already / batch)
};

// Per-sample inputs of a layer's backward pass.
template <class Real>
struct LayerGrad {
  const Real* dy = nullptr;     // [out_steps, out_width]
  Real* dx = nullptr;           // [in_steps, in_width], or null when nobody needs it
  Real* const* grads = nullptr; // one accumulator per parameter, engine layout
};

// Buffers of one worker thread, reused from sample to sample.
template <class Real>
struct LayerScratch {
  GatherBuffers<Real> gather;
  Buffer<Real> a, b;
};

template <class Real>
class CpuLayer {
 public:
  virtual ~CpuLayer() = default;

  int in_width = 0, in_steps = 0;
  int out_width = 0, out_steps = 0;
  int out_real = 0;  // real outputs; out_width - out_real are padding
  int index = 0;     // position in the stack

  struct Param {
    std::vector<Real> value, grad;
    std::vector<int> public_shape;
  };
  std::vector<Param> params;

  virtual const char* kind() const = 0;
  // Floats kept per sample of a training pass.
  virtual size_t saved_floats() const { return 0; }
  // Whether it can rebuild y from `saved` (then the network need not keep y for the next layer).
  virtual bool rebuilds_output() const { return false; }
  virtual void rebuild_output(const Real* /*saved*/, Real* /*y*/) const {}
  // Whether it fires (has firing rates to report), and whether it writes LayerOutput::spikes.
  virtual bool spiking() const { return false; }
  virtual bool writes_spikes() const { return false; }
  // Whether it accepts the noise encoder's input directly (layers with weights do).
  virtual bool takes_noisy_input() const { return false; }

  // b: the sample's row in the batch (its masks and initial voltages are keyed by
  // noise_row(pass.key, b)).
  // Called once before every forward and backward pass over a batch, before the samples run in
  // parallel: a layer may arrange its parameters for the pass here (LinearLayer aligns WT).
  virtual void prepare_pass() {}
  virtual void forward(const SampleInput<Real>& x, uint32_t b, const Pass<Real>& pass,
                       LayerOutput<Real>& out, LayerScratch<Real>& s) const = 0;
  virtual void backward(const SampleInput<Real>& x, uint32_t b, const Pass<Real>& pass,
                        const Real* saved, const LayerGrad<Real>& g,
                        LayerScratch<Real>& s) const = 0;

  // Parameter k between the engine layout and the public one (PyTorch's).
  virtual void to_public(int k, const Real* engine, float* out) const {
    const Param& p = params[k];
    size_t n = 1;
    for (int d : p.public_shape) n *= size_t(d);
    for (size_t i = 0; i < n; ++i) out[i] = float(engine[i]);
  }
  virtual void from_public(int k, const float* in, Real* engine) const {
    const Param& p = params[k];
    size_t n = 1;
    for (int d : p.public_shape) n *= size_t(d);
    for (size_t i = 0; i < n; ++i) engine[i] = Real(in[i]);
  }
};

}  // namespace nmsnn::cpu
