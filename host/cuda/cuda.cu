// cuda/cuda.cu — nmsnn::cuda::DeviceNetwork: the whole forward and backward pass of a
// layer stack as a short sequence of kernels and cuBLAS products on the caller's stream.
//
// Activations are time-major, [steps, B, width] per layer, so a layer's linear map over every
// step is one matrix product over all M = steps*B rows (its input does not depend on any neuron
// state), and every time loop runs in one kernel with the state in registers. Per layer kind:
//
//   spiking    a = x W^T (layer 0 noisy: masked_linear_forward, masks made in the tile loader;
//              else one cuBLAS product), then lif_forward: a -> u in place (saved), spikes out;
//              or, with DeviceOptions::saved = compact (and in inference), a made in the spikes'
//              buffer and turned into them in place, the spike16 codes or gate bits saved
//              (kernels/lif_saved.cuh); the last layer writes the logits from its fused readout.
//              The noisy layer 0 in TF32 or BF16 with T dividing 128 and at most 128 neurons
//              runs both in one kernel (masked_linear_lif_forward): a never reaches memory; a
//              spiking layer of at most 16 neurons above it (the seed's output) gets its current
//              from that kernel too, so layer 0's spikes never reach memory either.
//              backward: lif_backward, bias_grad_reduce, cuBLAS dW = du^T x and dx = du W (or
//              masked_linear_wgrad for noisy inputs); x is rebuilt from u (or the spike16 codes)
//              of the layer below when that layer is a spiking one (spikes_from_u,
//              spikes_from_spike16), so FP32 spikes are never kept. A spiking layer of at most
//              16 neurons over a spiking layer (the seed's output) stops after its lif_backward:
//              the layer below's lif_backward makes its dx and per-sample dW in its own loop
//              (DeviceOptions::fuse_small_layers; workspace_layout.hpp, fused_with_above).
//   dense      the same product, add_bias; backward the same products, bias from time_sum.
//   activation, spiking activation, lowpass, temporal pool: one kernel each way
//              (activation.cu, spiking_activation.cu, lowpass.cu, time_axis.cu).
//   conv2d     im2col over the N = steps*B images, one cuBLAS product, bias + transpose to
//              [N, O, OH, OW] (kernels/conv2d.cuh); backward: dy to rows, the bias's sums, dW and
//              dcol as two products, col2im as a gather. Its input is rebuilt or saved as for a
//              dense layer. Under the noise encoder at layer 0 it convolves the masked input
//              made on the device, per step (every step's image differs).
//   lif        lif_forward with a read from x and no bias (u kept in its own buffer); backward
//              lif_backward writes dL/da = dL/dx straight into the layer below's dy buffer.
//   avg/max_pool2d  one kernel each way (kernels/pool2d.cuh); max pooling recomputes each
//              window's first largest value from its saved input. flatten: a copy.
//   repeated inputs: layer 0 with weights multiplies the B rows (a convolution: the B images)
//              once and broadcasts over time; its gradients sum du over time first (time_sum),
//              then multiply B rows.
//
// That is two to three launches per layer forward and about five backward, whatever T is. What
// survives from forward to backward: u of spiking layers (4 bytes per neuron per step; compact:
// 2 bytes, or 1 bit for a layer whose spikes no backward reads), the level of Lowpass layers, the
// rates of regularized spiking activations, and the outputs of the other layers that feed a next
// layer (its input in backward).
//
// Bytes per neuron-step of a hidden spiking layer in a training step, FP32 saved state ->
// compact. Forward: its product writes a (4), lif_forward reads a and writes the spikes (8) and
// keeps u (4 -> 2), the layer above's product reads the spikes (4): 20 -> 18. Backward: the
// layer above's dx writes d_spikes (4), lif_backward reads the state (4 -> 2) and d_spikes and
// writes du (8), its dW and dx products read du (8), rebuilding the spikes reads the state
// (4 -> 2) and writes them (4), the layer above's dW reads them (4): 36 -> 32. In all 56 -> 50,
// and what stays in memory between the passes 4 -> 2 (a last layer: 4 -> 1/8). Inference
// passes no longer write u back (4 fewer). The rebuilt FP32 spikes exist because cuBLAS reads
// FP32; a weight-gradient kernel that decodes spike16 in its tile loader would save 8 more.
//
// With DeviceOptions::sample_clusters, an inference pass of a noisy pair of spiking layers is one
// kernel instead (kernels/sample_cluster.cuh: one sample per thread-block cluster, on chip).
//
// Where each buffer lives in the caller's workspace is planned in workspace_layout.hpp.
#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstdint>
#include <string>
#include <variant>

#include "activation.cuh"
#include "network/engine.hpp"
#include "bias.cuh"
#include "conv2d.cuh"
#include "cublas_gemm.cuh"
#include "cublas_scope.hpp"
#include "cuda_check.cuh"
#include "network/initialize.hpp"
#include "lif_backward.cuh"
#include "lif_forward.cuh"
#include "lowpass.cuh"
#include "masked_linear.cuh"
#include "nll_loss.cuh"
#include "nmsnn/cuda.hpp"
#include "nmsnn/error.hpp"
#include "noise_mask.cuh"
#include "optimizer_update.cuh"
#include "pool2d.cuh"
#include "sample_cluster.cuh"
#include "spiking_activation.cuh"
#include "time_axis.cuh"
#include "workspace_layout.hpp"

namespace nmsnn::cuda {

using ::nmsnn::detail::fail;

namespace {

// Rejects batches whose row count does not fit the int dimensions of cuBLAS and of the kernels'
// grids. (Element offsets are computed in 64 bits everywhere.)
void check_batch(const NetworkSpec& spec, int B, const char* what) {
  if (B < 1) fail(what, ": batch must be >= 1, got ", B);
  const long long rows = (long long)spec.time_steps * B;
  if (rows > INT_MAX)
    fail(what, ": time_steps*batch = ", spec.time_steps, "*", B, " = ", rows,
         " rows is more than the ", INT_MAX, " one pass can index; use smaller batches");
}

void check_kind(Input::Kind kind, const char* what) {
  if (kind != Input::Kind::noisy && kind != Input::Kind::sequence && kind != Input::Kind::repeated)
    fail(what, ": unknown input kind ", int(kind));
}

void check_workspace(const Workspace& ws, size_t needed, const char* what, int B, bool training) {
  if (!ws.data) fail(what, ": workspace pointer is null");
  if (reinterpret_cast<uintptr_t>(ws.data) % kAlign != 0)
    fail(what, ": workspace must be ", kAlign, "-byte aligned (as cudaMalloc returns it)");
  if (ws.bytes < needed)
    fail(what, ": workspace has ", ws.bytes, " bytes, a ", training ? "training" : "inference",
         " pass of batch ", B, " needs ", needed, " (DeviceNetwork::workspace_bytes)");
}

void check_tables(const float* const* params, size_t count, const char* what, const char* name) {
  if (!params) fail(what, ": the ", name, " pointer table is null");
  for (size_t i = 0; i < count; ++i)
    if (!params[i]) fail(what, ": ", name, "[", i, "] is null");
}

void copy_on_device(float* to, const float* from, size_t floats, cudaStream_t stream) {
  if (to != from)
    NMSNN_CUDA_CHECK(
        cudaMemcpyAsync(to, from, floats * sizeof(float), cudaMemcpyDeviceToDevice, stream));
}
void zero_on_device(float* to, size_t floats, cudaStream_t stream) {
  NMSNN_CUDA_CHECK(cudaMemsetAsync(to, 0, floats * sizeof(float), stream));
}

// The maps layer l receives, [C, H, W].
std::array<int, 3> maps_into(const NetworkSpec& spec, int l) {
  const std::vector<int> in = spec.layer_shape(l - 1);
  if (in.size() != 3) fail("layer ", l, ": expects feature maps [C, H, W], gets ", in.size(), "-d");
  return {in[0], in[1], in[2]};
}

template <class Pool>
kernels::Pool2dShape pool_shape(const NetworkSpec& spec, int l, const Pool& pool) {
  return kernels::pool2d_shape(maps_into(spec, l), pool.kernel, pool.stride);
}

float readout_scale(const NetworkSpec& spec, int steps) {
  return spec.readout.reduce == Reduce::mean ? 1.0f / float(steps - spec.readout.begin_eval) : 1.0f;
}

}  // namespace

// ---- DeviceNetwork -----------------------------------------------------------------------------

DeviceNetwork::DeviceNetwork(const NetworkSpec& spec, cublasHandle_t cublas,
                             const DeviceOptions& options)
    : spec_(spec), cublas_(cublas), options_(options) {
  spec_.validate();
  if (!cublas_) fail("DeviceNetwork: the cuBLAS handle is null (create one with cublasCreate)");
  layout_ = ::nmsnn::parameter_layout(spec_);
}

void DeviceNetwork::set_dt(int layer, float dt) {
  if (layer < 0 || layer >= int(spec_.layers.size()))
    fail("DeviceNetwork::set_dt: no layer ", layer, " (the network has ", spec_.layers.size(), ")");
  auto* a = std::get_if<SpikingActivation>(&spec_.layers[size_t(layer)]);
  if (!a) fail("DeviceNetwork::set_dt: layer ", layer, " is not a spiking activation");
  if (!(std::isfinite(dt) && dt > 0)) fail("DeviceNetwork::set_dt: dt must be > 0, got ", dt);
  a->dt = dt;
}

size_t DeviceNetwork::workspace_bytes(int batch, Input::Kind kind, bool training) const {
  check_batch(spec_, batch, "DeviceNetwork::workspace_bytes");
  check_kind(kind, "DeviceNetwork::workspace_bytes");
  return make_layout(spec_, batch, kind, training, options_.saved, options_.fuse_small_layers,
                     options_.matmul)
      .total;
}

size_t DeviceNetwork::saved_bytes(int batch) const {
  check_batch(spec_, batch, "DeviceNetwork::saved_bytes");
  return make_layout(spec_, batch, Input::Kind::sequence, true, options_.saved,
                     options_.fuse_small_layers, options_.matmul).saved_end;
}

bool DeviceNetwork::runs_by_sample(const DeviceInput& input, bool training,
                                   const DeviceTrace* trace) const {
  auto recorded = [](const std::vector<float*>& v) {
    return std::any_of(v.begin(), v.end(), [](const float* p) { return p != nullptr; });
  };
  if (!options_.sample_clusters || training || input.kind != Input::Kind::noisy) return false;
  if (trace && (recorded(trace->state) || recorded(trace->spikes) || recorded(trace->rates)))
    return false;
  int device = 0;
  NMSNN_CUDA_CHECK(cudaGetDevice(&device));
  return kernels::sample_cluster_supports(spec_, false, options_.matmul, device);
}

void DeviceNetwork::forward(const float* const* params, const DeviceInput& input, float* logits,
                            bool training, Workspace workspace, cudaStream_t stream,
                            const DeviceTrace* trace) const {
  const char* what = "DeviceNetwork::forward";
  const int T = spec_.time_steps, B = input.batch, L = int(spec_.layers.size()), I = spec_.inputs;
  check_batch(spec_, B, what);
  check_kind(input.kind, what);
  check_tables(params, layout_.size(), what, "params");
  if (!input.data) fail(what, ": input data pointer is null");
  if (!logits) fail(what, ": logits pointer is null");
  if (trace && ((!trace->state.empty() && trace->state.size() != size_t(L)) ||
                (!trace->spikes.empty() && trace->spikes.size() != size_t(L)) ||
                (!trace->rates.empty() && trace->rates.size() != size_t(L))))
    fail(what, ": a trace needs one pointer per layer (", L, "), got ", trace->state.size(),
         " state, ", trace->spikes.size(), " spike and ", trace->rates.size(), " rate pointers");
  const Layout lay =
      make_layout(spec_, B, input.kind, training, options_.saved, options_.fuse_small_layers,
                  options_.matmul);
  check_workspace(workspace, lay.total, what, B, training);
  char* ws = static_cast<char*>(workspace.data);
  auto at = [ws](size_t offset) {
    return offset == kNone ? nullptr : reinterpret_cast<float*>(ws + offset);
  };
  auto at_codes = [ws](size_t offset) {  // compact saved state (kernels/lif_saved.cuh)
    return offset == kNone ? nullptr : reinterpret_cast<uint16_t*>(ws + offset);
  };
  auto at_gates = [ws](size_t offset) {
    return offset == kNone ? nullptr : reinterpret_cast<uint32_t*>(ws + offset);
  };
  // The trace pointer of layer l for one field (state, spikes, rates), or null.
  auto traced = [trace](std::vector<float*> DeviceTrace::*field, int l) -> float* {
    if (!trace || (trace->*field).empty()) return nullptr;
    return (trace->*field)[size_t(l)];
  };

  if (runs_by_sample(input, training, trace)) {
    kernels::sample_cluster_forward(
        kernels::sample_cluster_args(spec_, options_.matmul, params, input.noise, input.data, B,
                                     logits),
        stream);
    if (trace && trace->regularization) zero_on_device(trace->regularization, 1, stream);
    return;
  }

  const MatmulPrecision matmul = options_.matmul;
  CublasScope scope(cublas_, stream);
  // BF16: the cuBLAS products' operands rounded into BF16 arrays here (none in other precisions).
  const kernels::Bf16Operands bf16{lay.bf16 == kNone ? nullptr : ws + lay.bf16, lay.bf16_bytes};
  float* regularization = trace ? trace->regularization : nullptr;
  bool regularization_written = false;

  // This layer's input [steps, B, width] on the device; null while layer 0 reads the caller's
  // static input through the noise encoder or the repeated-row product.
  const float* x = nullptr;
  const bool direct0 = reads_static_input(spec_.layers[0], input.kind);
  if (input.kind == Input::Kind::sequence) {
    x = input.data;
  } else if (!direct0) {
    x = at(lay.input);
    if (input.kind == Input::Kind::noisy)
      kernels::masked_input(input.noise, input.data, T, B, I, at(lay.input), stream);
    else
      kernels::time_broadcast(input.data, T, (long long)B * I, 0, 1.0f, at(lay.input), stream);
  }

  // Where spiking layer l's current a is made: in place of u when u is kept for backward, else
  // in the spikes' buffer (turned into them in place), or the last layer's scratch.
  auto current_buffer = [&](int l) {
    const LayerPlan& p = lay.layer[size_t(l)];
    if (training && p.saved_u != kNone) return at(p.saved_u);
    if (l == L - 1) return at(lay.u_scratch);
    return p.saved_y != kNone ? at(p.saved_y) : at(lay.out[l % 2]);
  };
  // Set when the fused first layer has made layer 1's current in its own kernel.
  bool current_made_below = false;

  for (int l = 0; l < L; ++l) {
    const LayerSpec& ls = spec_.layers[size_t(l)];
    const LayerPlan& p = lay.layer[size_t(l)];
    const bool last = l == L - 1;
    const size_t rows = size_t(p.out_steps) * B;
    float* y = p.saved_y != kNone ? at(p.saved_y) : at(lay.out[l % 2]);  // this layer's output
    const std::string name = "layer " + std::to_string(l) + " forward";

    // a = x W^T over every row, into `a` (spiking and dense layers).
    auto product = [&](float* a, int H) {
      const float* W = params[p.param];
      if (l == 0 && input.kind == Input::Kind::noisy) {
        kernels::masked_linear_forward(input.noise, input.data, T, B, I, W, H, a, matmul,
                                       stream, kernels::MmaInstruction::automatic,
                                       at(lay.weight_tiles));
      } else if (l == 0 && input.kind == Input::Kind::repeated) {
        kernels::gemm_forward(cublas_, matmul, B, H, I, input.data, W, at(lay.rows),
                              name.c_str(), bf16);
        kernels::time_broadcast(at(lay.rows), T, (long long)B * H, 0, 1.0f, a, stream);
      } else {
        kernels::gemm_forward(cublas_, matmul, int(size_t(p.in_steps) * B), H, p.in_width, x, W,
                              a, name.c_str(), bf16);
      }
    };

    const auto* s = std::get_if<SpikingLayer>(&ls);
    if (s || std::holds_alternative<Lif>(ls)) {
      const bool keep_u = training && p.saved_u != kNone;
      // The noisy first layer in TF32 or BF16 runs its time loop inside its product's kernel
      // where a block's rows are whole samples: a never crosses memory.
      const bool fused = s && l == 0 && input.kind == Input::Kind::noisy &&
                         kernels::masked_linear_lif_fusable(T, s->size, matmul);
      // With it, a small spiking layer above (the seed's 10 outputs) gets its current from the
      // same kernel, out of the spikes in shared memory: they need not reach memory at all.
      static_assert(kernels::kNextLayerMaxWidth >= kernels::kMaxFusedAbove,
                    "the fused forward takes every layer small_above lets in");
      const bool makes_above =
          fused && options_.fuse_small_layers && small_above(spec_, l) && p.saved_y == kNone;
      kernels::NextLayerProduct next;
      if (makes_above) {
        next.W = params[lay.layer[size_t(l + 1)].param];
        next.H = lay.layer[size_t(l + 1)].out_width;
        next.a = current_buffer(l + 1);
      }
      kernels::LifForwardArgs args;
      args.T = p.out_steps;
      args.B = B;
      args.H = p.out_width;
      if (fused) {
        args.u = keep_u ? at(p.saved_u) : nullptr;
        args.bias = params[p.param + 1];
      } else if (s) {
        // u is kept in place of a for backward (FP32 saved state), or not at all: then a is
        // made in the spikes' buffer and turned into them in place (the last layer, which
        // returns no spikes, has a scratch buffer).
        args.u = current_buffer(l);
        if (!current_made_below) product(args.u, s->size);
        args.bias = params[p.param + 1];
      } else {
        // The seed's neurons on x as their current: lif_forward reads a from x, with no bias,
        // and keeps u in its own saved buffer (nothing else to overwrite).
        args.a = x;
        args.u = keep_u ? at(p.saved_u) : nullptr;
      }
      args.write_u = keep_u;
      if (training) {
        args.saved_spikes = at_codes(p.saved_spikes);
        args.saved_gates = at_gates(p.saved_gates);
      }
      args.spikes = last || makes_above ? nullptr : y;
      args.trace_state = traced(&DeviceTrace::state, l);
      args.trace_spikes = traced(&DeviceTrace::spikes, l);
      args.rates = traced(&DeviceTrace::rates, l);
      if (last) {
        args.logits = logits;
        args.begin_eval = spec_.readout.begin_eval;
        args.readout_scale = readout_scale(spec_, p.out_steps);
      }
      if (fused)
        kernels::masked_linear_lif_forward(input.noise, input.data, T, B, I, params[p.param], *s,
                                           args, matmul, stream, next,
                                           kernels::MmaInstruction::automatic,
                                           at(lay.weight_tiles));
      else
        kernels::lif_forward(neuron_settings(ls), args, stream);
      current_made_below = makes_above;
      x = y;
      continue;  // its trace is written by the kernel
    }

    float* trace_state = traced(&DeviceTrace::state, l);
    if (auto* c = std::get_if<Conv2d>(&ls)) {
      const kernels::Conv2dShape shape = kernels::conv2d_shape(maps_into(spec_, l), *c);
      const float* W = params[p.param];
      const float* bias = params[p.param + 1];
      if (l == 0 && input.kind == Input::Kind::repeated) {
        // The same B images at every step: convolve them once, then repeat the maps over time.
        kernels::conv2d_forward(cublas_, matmul, shape, B, input.data, W, bias, at(lay.col),
                                at(lay.conv_rows), at(lay.rows), stream, name.c_str());
        kernels::time_broadcast(at(lay.rows), T, (long long)B * p.out_width, 0, 1.0f, y, stream);
      } else {
        kernels::conv2d_forward(cublas_, matmul, shape, (long long)p.in_steps * B, x, W, bias,
                                at(lay.col), at(lay.conv_rows), y, stream, name.c_str());
      }
    } else if (auto* ap = std::get_if<AvgPool2d>(&ls)) {
      kernels::avg_pool2d_forward(pool_shape(spec_, l, *ap), (long long)p.in_steps * B, x, y,
                                  stream);
    } else if (auto* mp = std::get_if<MaxPool2d>(&ls)) {
      kernels::max_pool2d_forward(pool_shape(spec_, l, *mp), (long long)p.in_steps * B, x, y,
                                  stream);
    } else if (std::holds_alternative<Flatten>(ls)) {
      copy_on_device(y, x, rows * p.out_width, stream);  // the same floats, (c, y, x) order
    } else if (auto* d = std::get_if<Dense>(&ls)) {
      product(y, d->size);
      kernels::add_bias(y, (long long)rows, d->size, params[p.param + 1], stream);
    } else if (auto* a = std::get_if<Activation>(&ls)) {
      kernels::activation_forward(a->kind, x, rows * p.out_width, y, stream);
    } else if (auto* sa = std::get_if<SpikingActivation>(&ls)) {
      kernels::SpikingActivationForwardArgs args;
      args.T = p.in_steps;
      args.B = B;
      args.H = p.out_width;
      args.x = x;
      args.y = y;
      args.spikes = !(training && !sa->spiking_aware_training);
      args.voltage_key = {::nmsnn::detail::voltage_key(input.noise.seed, l), input.noise.pass,
                          input.noise.rows, input.noise.pass_at};
      args.trace_state = trace_state;
      float* rates = traced(&DeviceTrace::rates, l);
      args.rates = p.saved_rates != kNone ? at(p.saved_rates) : rates;
      kernels::spiking_activation_forward(*sa, args, stream);
      if (rates && args.rates != rates)
        copy_on_device(rates, args.rates, size_t(B) * p.out_width, stream);
      if (p.saved_rates != kNone && regularization) {
        kernels::rate_regularization_loss(*sa, args.rates, B, p.out_width, regularization_written,
                                          regularization, stream);
        regularization_written = true;
      }
      trace_state = nullptr;  // written by the kernel
    } else if (auto* f = std::get_if<Lowpass>(&ls)) {
      if (bypassed_lowpass(ls, training)) {
        const size_t slab = size_t(B) * p.out_width;
        copy_on_device(y, f->return_sequences ? x : x + size_t(p.in_steps - 1) * slab,
                       rows * p.out_width, stream);
      } else {
        kernels::LowpassForwardArgs args;
        args.T = p.in_steps;
        args.B = B;
        args.H = p.out_width;
        args.p = params[p.param];
        args.initial = params[p.param + 1];
        args.x = x;
        args.y = y;
        args.level = at(p.saved_level);
        args.return_sequences = f->return_sequences;
        kernels::lowpass_forward(args, stream);
      }
    } else if (std::holds_alternative<TemporalAvgPool>(ls)) {
      kernels::time_sum(x, p.in_steps, (long long)B * p.out_width, 0, 1.0f / float(p.in_steps), y,
                        stream);
    }
    // Traces of layers that have no inner state of their own show their output.
    const size_t n = rows * p.out_width;
    if (trace_state) copy_on_device(trace_state, y, n, stream);
    if (float* spikes = traced(&DeviceTrace::spikes, l)) copy_on_device(spikes, y, n, stream);
    if (last)
      kernels::time_sum(y, p.out_steps, (long long)B * p.out_width, spec_.readout.begin_eval,
                        readout_scale(spec_, p.out_steps), logits, stream);
    x = y;
  }
  if (regularization && !regularization_written) zero_on_device(regularization, 1, stream);
}

void DeviceNetwork::backward(const float* const* params, const DeviceInput& input,
                             const float* dlogits, float* const* grads, float* dinput,
                             Workspace workspace, cudaStream_t stream) const {
  const char* what = "DeviceNetwork::backward";
  const int T = spec_.time_steps, B = input.batch, L = int(spec_.layers.size()), I = spec_.inputs;
  const Input::Kind kind = input.kind;
  check_batch(spec_, B, what);
  check_kind(kind, what);
  check_tables(params, layout_.size(), what, "params");
  check_tables(grads, layout_.size(), what, "grads");
  if (!input.data) fail(what, ": input data pointer is null");
  if (!dlogits) fail(what, ": dlogits pointer is null");
  if (dinput && kind == Input::Kind::noisy)
    fail(what,
         ": input gradients exist only for sequence and repeated inputs (the noise mask of "
         "a static input has no gradient)");
  const Layout lay =
      make_layout(spec_, B, kind, true, options_.saved, options_.fuse_small_layers,
                  options_.matmul);
  check_workspace(workspace, lay.total, what, B, true);
  char* ws = static_cast<char*>(workspace.data);
  auto at = [ws](size_t offset) {
    return offset == kNone ? nullptr : reinterpret_cast<float*>(ws + offset);
  };
  auto at_codes = [ws](size_t offset) {  // compact saved state (kernels/lif_saved.cuh)
    return offset == kNone ? nullptr : reinterpret_cast<uint16_t*>(ws + offset);
  };
  auto at_gates = [ws](size_t offset) {
    return offset == kNone ? nullptr : reinterpret_cast<uint32_t*>(ws + offset);
  };

  const MatmulPrecision matmul = options_.matmul;
  CublasScope scope(cublas_, stream);
  // BF16: the cuBLAS products' operands rounded into BF16 arrays here (none in other precisions).
  const kernels::Bf16Operands bf16{lay.bf16 == kNone ? nullptr : ws + lay.bf16, lay.bf16_bytes};
  const bool direct0 = reads_static_input(spec_.layers[0], kind);
  float* part = at(lay.part);  // [2, B, widest]: per-sample partial sums

  // The neurons of spiking layer or Lif layer l, backward: dL/da into du, and its sum over time
  // per sample into dbias_part unless null. dy is dL/d(returned spikes), or null for the last
  // layer, which takes the readout's dlogits.
  auto neuron_backward = [&](int l, const float* dy, float* du, float* dbias_part) {
    const LayerPlan& p = lay.layer[size_t(l)];
    kernels::LifBackwardArgs args;
    if (p.takes_in_above) {
      // The layer above left its du here; its dx (this layer's dy) and dW are made in the loop.
      const LayerPlan& above = lay.layer[size_t(l + 1)];
      args.du_above = at(lay.du_above);
      args.w_above = params[above.param];
      args.above = above.out_width;
      args.dw_above_part = at(lay.above_part);
      dy = nullptr;
    }
    args.T = p.out_steps;
    args.B = B;
    args.H = p.out_width;
    args.u = at(p.saved_u);
    args.saved_spikes = at_codes(p.saved_spikes);
    args.saved_gates = at_gates(p.saved_gates);
    if (l == L - 1) {
      args.dlogits = dlogits;
      args.begin_eval = spec_.readout.begin_eval;
      args.readout_scale = readout_scale(spec_, p.out_steps);
    } else {
      args.d_spikes = dy;
    }
    args.du = du;
    args.dbias_part = dbias_part;
    kernels::lif_backward(neuron_settings(spec_.layers[size_t(l)]), args, stream);
  };

  for (int l = L - 1; l >= 0; --l) {
    const LayerSpec& ls = spec_.layers[size_t(l)];
    const LayerPlan& p = lay.layer[size_t(l)];
    const bool last = l == L - 1;
    const size_t in_n = size_t(p.in_steps) * B * p.in_width;
    const std::string name = "layer " + std::to_string(l);

    // dL/dy of this layer: the readout's gradient for the last layer (spiking layers take
    // dlogits themselves), else what the layer above left in the ping-pong buffer.
    float* dy = p.dy_buffer >= 0 ? at(lay.grad[p.dy_buffer]) : nullptr;
    if (last && dy)
      kernels::time_broadcast(dlogits, p.out_steps, (long long)B * p.out_width,
                              spec_.readout.begin_eval, readout_scale(spec_, p.out_steps), dy,
                              stream);

    // This layer's input x, as forward saw it (null: layer 0 reading the caller's static input).
    const float* x = nullptr;
    if (l > 0) {
      const LayerPlan& below = lay.layer[size_t(l - 1)];
      const LayerSpec& below_spec = spec_.layers[size_t(l - 1)];
      if (has_neurons(below_spec)) {
        // (not when the layer below takes this layer's backward in: it rebuilds x in registers)
        if (backward_reads_input(ls) && !p.taken_in_below) {
          const SpikingLayer s = neuron_settings(below_spec);
          if (below.saved_u != kNone)
            kernels::spikes_from_u(s, below.out_steps, B, below.out_width, at(below.saved_u),
                                   at(lay.rebuilt), stream);
          else
            kernels::spikes_from_spike16(s, below.out_steps, B, below.out_width,
                                         at_codes(below.saved_spikes), at(lay.rebuilt), stream);
          x = at(lay.rebuilt);
        }
      } else {
        x = at(below.saved_y);
      }
    } else if (kind == Input::Kind::sequence) {
      x = input.data;
    } else if (!direct0) {
      x = at(lay.b_input);
      if (kind == Input::Kind::noisy)
        kernels::masked_input(input.noise, input.data, T, B, I, at(lay.b_input), stream);
      else
        kernels::time_broadcast(input.data, T, (long long)B * I, 0, 1.0f, at(lay.b_input), stream);
    }
    // Where dL/dx goes: the buffer of the layer below, the caller's dinput (sequences), or
    // nowhere (layer 0 under the noise encoder, or no dinput asked for).
    float* dx = p.dx_buffer >= 0 ? at(lay.grad[p.dx_buffer]) : nullptr;
    if (l == 0 && kind == Input::Kind::sequence) dx = dinput;
    if (l == 0 && kind == Input::Kind::repeated && !dinput) dx = nullptr;

    if (auto* c = std::get_if<Conv2d>(&ls)) {
      const kernels::Conv2dShape shape = kernels::conv2d_shape(maps_into(spec_, l), *c);
      if (l == 0 && kind == Input::Kind::repeated) {
        // The same images at every step: sum dy over time, then one backward over B images,
        // its input gradient straight into dinput.
        float* dy_sum = at(lay.b_rows);
        kernels::time_sum(dy, T, (long long)B * p.out_width, 0, 1.0f, dy_sum, stream);
        kernels::conv2d_backward(cublas_, matmul, shape, 1, B, input.data, params[p.param], dy_sum,
                                 at(lay.b_dyt), at(lay.b_col), part, grads[p.param],
                                 grads[p.param + 1], dinput, stream, name.c_str());
      } else {
        kernels::conv2d_backward(cublas_, matmul, shape, p.in_steps, B, x, params[p.param], dy,
                                 at(lay.b_dyt), at(lay.b_col), part, grads[p.param],
                                 grads[p.param + 1], dx, stream, name.c_str());
      }
      continue;
    }

    if (has_weights(ls)) {
      const int H = p.out_width;
      const float* W = params[p.param];
      float* dW = grads[p.param];
      float* dbias = grads[p.param + 1];
      float* du = dy;  // dense: dL/da is dL/dy
      if (std::holds_alternative<SpikingLayer>(ls)) {
        du = at(p.taken_in_below ? lay.du_above : lay.du);
        // A layer the one below takes in keeps its bias partials past where that layer's loop
        // writes its own ([B, H below] at `part`; part holds 2 B x the widest), to be summed
        // there with them.
        auto past_own = [&](int below) {
          return part + size_t(B) * lay.layer[size_t(below)].out_width;
        };
        neuron_backward(l, dy, du, p.taken_in_below ? past_own(l - 1) : part);
        const bool own_bias = !(l == 0 && kind == Input::Kind::repeated);
        if (p.takes_in_above) {
          // The layer above's dW, made in this loop, and its bias: their sums and this layer's
          // bias's in one launch.
          const LayerPlan& above = lay.layer[size_t(l + 1)];
          const int A = above.out_width;
          kernels::ColumnSums sums[kernels::kMaxColumnSums];
          int count = 0;
          if (own_bias) sums[count++] = {part, B, H, dbias};
          sums[count++] = {at(lay.above_part), B, A * H, grads[above.param]};
          sums[count++] = {past_own(l), B, A, grads[above.param + 1]};
          kernels::bias_grad_reduce_batch(sums, count, stream);
        } else if (own_bias && !p.taken_in_below) {
          kernels::bias_grad_reduce(part, B, H, dbias, stream);
        }
        // The layer below makes this layer's dW (and its own dy) in its backward loop.
        if (p.taken_in_below) continue;
      } else if (!(l == 0 && kind == Input::Kind::repeated)) {
        kernels::time_sum(du, p.out_steps, (long long)B * H, 0, 1.0f, part, stream);
        kernels::bias_grad_reduce(part, B, H, dbias, stream);
      }
      if (l == 0 && kind == Input::Kind::noisy) {
        kernels::masked_linear_wgrad(input.noise, input.data, T, B, I, du, H, dW,
                                     lay.wgrad_floats ? at(lay.wgrad) : nullptr, matmul, stream);
      } else if (l == 0 && kind == Input::Kind::repeated) {
        // The same x at every step: sum du over time, then products over B rows.
        float* du_sum = at(lay.b_rows);
        kernels::time_sum(du, T, (long long)B * H, 0, 1.0f, du_sum, stream);
        kernels::bias_grad_reduce(du_sum, B, H, dbias, stream);
        kernels::gemm_weight_grad(cublas_, matmul, B, H, I, du_sum, input.data, dW,
                                  (name + " weight gradient").c_str(), bf16);
        if (dinput)
          kernels::gemm_input_grad(cublas_, matmul, B, H, I, du_sum, W, dinput,
                                   (name + " input gradient").c_str(), bf16);
      } else {
        const int M = int(size_t(p.in_steps) * B);
        kernels::gemm_weight_grad(cublas_, matmul, M, H, p.in_width, du, x, dW,
                                  (name + " weight gradient").c_str(), bf16);
        if (dx)
          kernels::gemm_input_grad(cublas_, matmul, M, H, p.in_width, du, W, dx,
                                   (name + " input gradient").c_str(), bf16);
      }
      continue;
    }

    if (std::holds_alternative<Lif>(ls)) {
      // dL/da of the neurons is dL/dx: lif_backward writes it straight into dx.
      if (dx) neuron_backward(l, dy, dx, nullptr);
    } else if (auto* ap = std::get_if<AvgPool2d>(&ls)) {
      if (dx)
        kernels::avg_pool2d_backward(pool_shape(spec_, l, *ap), (long long)p.in_steps * B, dy, dx,
                                     stream);
    } else if (auto* mp = std::get_if<MaxPool2d>(&ls)) {
      if (dx)
        kernels::max_pool2d_backward(pool_shape(spec_, l, *mp), (long long)p.in_steps * B, x, dy,
                                     dx, stream);
    } else if (std::holds_alternative<Flatten>(ls)) {
      if (dx) copy_on_device(dx, dy, in_n, stream);
    } else if (auto* a = std::get_if<Activation>(&ls)) {
      if (dx) kernels::activation_backward(a->kind, x, dy, in_n, dx, stream);
    } else if (auto* sa = std::get_if<SpikingActivation>(&ls)) {
      if (dx) {
        kernels::SpikingActivationBackwardArgs args;
        args.T = p.in_steps;
        args.B = B;
        args.H = p.out_width;
        args.x = x;
        args.dy = dy;
        args.rates = at(p.saved_rates);
        args.dx = dx;
        kernels::spiking_activation_backward(*sa, args, stream);
      }
    } else if (auto* f = std::get_if<Lowpass>(&ls)) {
      const int H = p.out_width;
      if (bypassed_lowpass(ls, true)) {
        zero_on_device(grads[p.param], size_t(H), stream);
        zero_on_device(grads[p.param + 1], size_t(H), stream);
        if (dx) {
          if (f->return_sequences) {
            copy_on_device(dx, dy, in_n, stream);
          } else {
            const size_t slab = size_t(B) * H;
            zero_on_device(dx, in_n - slab, stream);
            copy_on_device(dx + in_n - slab, dy, slab, stream);
          }
        }
      } else {
        kernels::LowpassBackwardArgs args;
        args.T = p.in_steps;
        args.B = B;
        args.H = H;
        args.p = params[p.param];
        args.initial = params[p.param + 1];
        args.x = x;
        args.level = at(p.saved_level);
        args.dy = dy;
        args.return_sequences = f->return_sequences;
        args.dx = dx;
        args.dp_part = part;
        args.dinitial_part = part + size_t(B) * H;
        kernels::lowpass_backward(args, stream);
        const kernels::ColumnSums sums[] = {{args.dp_part, B, H, grads[p.param]},
                                            {args.dinitial_part, B, H, grads[p.param + 1]}};
        kernels::bias_grad_reduce_batch(sums, 2, stream);
      }
    } else {  // TemporalAvgPool: every input step gets dy / steps
      if (dx)
        kernels::time_broadcast(dy, p.in_steps, (long long)B * p.out_width, 0,
                                1.0f / float(p.in_steps), dx, stream);
    }
    // A repeated input that reached a layer without weights: its gradient is the sum over time.
    if (l == 0 && kind == Input::Kind::repeated && dinput)
      kernels::time_sum(dx, T, (long long)B * I, 0, 1.0f, dinput, stream);
  }
}

// ---- optimisers and loss -----------------------------------------------------------------------

void sgd_update(const Sgd& sgd, float* param, const float* grad, float* momentum_buffer, size_t n,
                int64_t step, cudaStream_t stream) {
  if (step < 1) fail("sgd_update: step counts from 1, got ", step);
  kernels::sgd_update(sgd, param, grad, momentum_buffer, n, step, stream);
}

void adam_update(const Adam& adam, float* param, const float* grad, float* m, float* v, size_t n,
                 int64_t step, cudaStream_t stream) {
  if (step < 1) fail("adam_update: step counts from 1, got ", step);
  kernels::adam_update(adam, param, grad, m, v, n, step, stream);
}

void nll_log_softmax(const float* logits, const int* labels, int batch, int classes, float* dlogits,
                     float* losses, cudaStream_t stream) {
  kernels::nll_log_softmax(logits, labels, batch, classes, dlogits, losses, stream);
}

}  // namespace nmsnn::cuda
