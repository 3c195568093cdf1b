// cuda/workspace_layout.cu — planning a DeviceNetwork pass's workspace (see workspace_layout.hpp).
#include <algorithm>
#include <variant>

#include "network/engine.hpp"
#include "lif_saved.cuh"
#include "conv2d.cuh"
#include "cublas_gemm.cuh"
#include "lif_backward.cuh"
#include "masked_linear.cuh"
#include "workspace_layout.hpp"

namespace nmsnn::cuda {

namespace {
size_t align_up(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }
}  // namespace

bool has_weights(const LayerSpec& l) {
  return std::holds_alternative<SpikingLayer>(l) || std::holds_alternative<Dense>(l) ||
         std::holds_alternative<Conv2d>(l);
}

bool has_neurons(const LayerSpec& l) {
  return std::holds_alternative<SpikingLayer>(l) || std::holds_alternative<Lif>(l);
}

SpikingLayer neuron_settings(const LayerSpec& l) {
  if (auto* s = std::get_if<SpikingLayer>(&l)) return *s;
  const Lif& n = std::get<Lif>(l);
  SpikingLayer s;
  s.decay = n.decay;
  s.threshold = n.threshold;
  s.penalty = n.penalty;
  s.reset = n.reset;
  s.delay = n.delay;
  return s;
}

bool reads_static_input(const LayerSpec& layer0, Input::Kind kind) {
  if (kind == Input::Kind::sequence) return false;
  if (std::holds_alternative<SpikingLayer>(layer0) || std::holds_alternative<Dense>(layer0))
    return true;
  return std::holds_alternative<Conv2d>(layer0) && kind == Input::Kind::repeated;
}

bool small_above(const NetworkSpec& spec, int l) {
  const int L = int(spec.layers.size());
  if (l < 0 || l + 1 >= L) return false;
  if (!std::holds_alternative<SpikingLayer>(spec.layers[size_t(l)]) ||
      !std::holds_alternative<SpikingLayer>(spec.layers[size_t(l + 1)]))
    return false;
  return spec.layer_width(l + 1) <= kernels::kMaxFusedAbove &&
         spec.layer_steps(l + 1) == spec.layer_steps(l);
}

bool fused_with_above(const NetworkSpec& spec, int l) {
  // Not when l + 1 takes in l + 2 itself: one layer is not both ends of two fused pairs (its du
  // would wait in du_above while it reads l + 2's from there).
  return small_above(spec, l) && !small_above(spec, l + 1);
}

Layout make_layout(const NetworkSpec& spec, int B, Input::Kind kind, bool training,
                   SavedState saved, bool fuse_small_layers, MatmulPrecision matmul) {
  const int L = int(spec.layers.size());
  const std::vector<ParameterInfo> params = ::nmsnn::parameter_layout(spec);
  Layout lay;
  auto fused = [&](int l) { return fuse_small_layers && fused_with_above(spec, l); };
  lay.layer.resize(L);
  for (int l = 0; l < L; ++l) {
    LayerPlan& p = lay.layer[l];
    p.takes_in_above = fused(l);
    p.taken_in_below = l > 0 && fused(l - 1);
    p.in_width = l == 0 ? spec.inputs : spec.layer_width(l - 1);
    p.in_steps = l == 0 ? spec.time_steps : spec.layer_steps(l - 1);
    p.out_width = spec.layer_width(l);
    p.out_steps = spec.layer_steps(l);
    for (size_t k = 0; k < params.size(); ++k)
      if (params[k].layer == l) {
        p.param = int(k);
        break;
      }
  }
  auto floats_in = [&](int l) { return size_t(lay.layer[l].in_steps) * B * lay.layer[l].in_width; };
  auto floats_out = [&](int l) {
    return size_t(lay.layer[l].out_steps) * B * lay.layer[l].out_width;
  };
  auto lif = [&](int l) { return has_neurons(spec.layers[l]); };
  const bool direct0 = reads_static_input(spec.layers[0], kind);
  const bool made_input = kind != Input::Kind::sequence && !direct0;  // layer 0 input on device
  const bool repeated_rows = kind == Input::Kind::repeated && direct0;

  // Whether spiking layer l keeps its spikes (compact): some backward reads them as its input.
  auto spikes_read = [&](int l) { return l + 1 < L && backward_reads_input(spec.layers[l + 1]); };
  // A max pool above picks each window's first largest spike again in backward: from spike16
  // codes (9 significant bits) two nearly equal spikes could round to a tie and send the
  // gradient elsewhere than forward's choice, so such a layer keeps u in FP32 even when compact.
  auto exact_spikes = [&](int l) {
    return l + 1 < L && std::holds_alternative<MaxPool2d>(spec.layers[l + 1]);
  };
  const bool compact = saved == SavedState::compact;

  size_t offset = 0;
  auto take_bytes = [&](size_t bytes) {
    const size_t at = offset;
    offset = align_up(offset + bytes);
    return at;
  };
  auto take = [&](size_t floats) { return take_bytes(floats * sizeof(float)); };

  // Saved: what backward reads.
  for (int l = 0; l < L; ++l) {
    LayerPlan& p = lay.layer[l];
    const LayerSpec& ls = spec.layers[l];
    if (auto* a = std::get_if<SpikingActivation>(&ls))
      if (a->regularized()) p.saved_rates = take(size_t(B) * p.out_width);
    if (!training) continue;
    const bool fp32_u = !compact || exact_spikes(l);
    if (lif(l) && fp32_u) p.saved_u = take(floats_out(l));
    if (lif(l) && !fp32_u && spikes_read(l)) p.saved_spikes = take_bytes(floats_out(l) * 2);
    if (lif(l) && !fp32_u && !spikes_read(l)) {
      const int per_word = kernels::kGateBits;
      const size_t words = size_t((p.out_steps + per_word - 1) / per_word) * B * p.out_width;
      p.saved_gates = take_bytes(words * sizeof(uint32_t));
    }
    if (std::holds_alternative<Lowpass>(ls) && !bypassed_lowpass(ls, true))
      p.saved_level = take(size_t(p.in_steps) * B * p.in_width);
    // The output feeds the next layer's backward unless it is rebuilt from u (spiking layers).
    if (l + 1 < L && !lif(l)) {
      const Lowpass* f = std::get_if<Lowpass>(&ls);
      p.saved_y =
          (p.saved_level != kNone && f->return_sequences) ? p.saved_level : take(floats_out(l));
    }
  }
  lay.saved_end = offset;

  // A convolution's col and rows over its N images: N = B for a repeated input at layer 0 (the
  // same images at every step, convolved once), else steps*B.
  size_t col_floats = 0, conv_rows_floats = 0;
  for (int l = 0; l < L; ++l) {
    const Conv2d* c = std::get_if<Conv2d>(&spec.layers[l]);
    if (!c) continue;
    const std::vector<int> in = spec.layer_shape(l - 1);
    const kernels::Conv2dShape s = kernels::conv2d_shape({in[0], in[1], in[2]}, *c);
    const long long N = l == 0 && repeated_rows ? B : (long long)lay.layer[l].in_steps * B;
    col_floats = std::max(col_floats, kernels::conv2d_col_floats(s, N));
    conv_rows_floats = std::max(conv_rows_floats, size_t(N) * size_t(s.out_width()));
  }

  // Forward scratch.
  size_t out_floats = 0, u_floats = 0;
  for (int l = 0; l < L; ++l) {
    // a of a spiking layer whose u is not kept is made in its spikes' buffer, except the last's
    // (a Lif layer reads a from its input).
    if (std::holds_alternative<SpikingLayer>(spec.layers[l]) && (!training || compact) &&
        l == L - 1)
      u_floats = floats_out(l);
    const bool writes_logits = lif(l) && l == L - 1;
    if (!writes_logits && lay.layer[l].saved_y == kNone)
      out_floats = std::max(out_floats, floats_out(l));
  }
  if (out_floats) lay.out[0] = take(out_floats), lay.out[1] = take(out_floats);
  if (u_floats) lay.u_scratch = take(u_floats);
  if (made_input) lay.input = take(floats_in(0));
  if (repeated_rows) lay.rows = take(size_t(B) * lay.layer[0].out_width);
  if (col_floats) lay.col = take(col_floats), lay.conv_rows = take(conv_rows_floats);
  // A noisy first layer's W arranged for the TF32 and BF16 forward on wgmma (masked_linear.cuh),
  // TF32's size in both (BF16 takes half), so that the two layouts differ only by BF16's operands.
  if (kind == Input::Kind::noisy && direct0 && matmul != MatmulPrecision::fp32)
    lay.weight_tiles = take(kernels::masked_linear_weight_tiles_floats(
        lay.layer[0].out_width, spec.inputs, MatmulPrecision::tf32));
  const size_t forward_end = offset;

  // Backward scratch, over the same bytes.
  size_t backward_end = 0;
  if (training) {
    offset = lay.saved_end;
    size_t du = 0, rebuilt = 0, grad[2] = {0, 0}, widest = 0, du_above = 0, above_part = 0;
    for (int l = 0; l < L; ++l) {
      LayerPlan& p = lay.layer[l];
      widest = std::max({widest, size_t(p.out_width), size_t(p.in_width)});
      // (a Lif layer's du is its dx, written straight into the layer below's dy buffer)
      if (std::holds_alternative<SpikingLayer>(spec.layers[l])) du = std::max(du, floats_out(l));
      // A fused pair (l, l + 1): l + 1's du waits in du_above for l's backward, which makes l's
      // dy itself and needs no rebuilt spikes, and l + 1 sends no dx down.
      if (fused(l)) {
        du_above = std::max(du_above, floats_out(l + 1));
        above_part = std::max(above_part, size_t(B) * lay.layer[l + 1].out_width * p.out_width);
      }
      if (l > 0 && lif(l - 1) && backward_reads_input(spec.layers[l]) && !fused(l - 1))
        rebuilt = std::max(rebuilt, floats_in(l));
      // dy of layer l lives in buffer l % 2 and its dx goes to (l + 1) % 2, where layer l - 1
      // finds it as its dy. The last spiking layer takes dlogits directly.
      if (!(l == L - 1 && lif(l)) && !fused(l)) {
        p.dy_buffer = l % 2;
        grad[l % 2] = std::max(grad[l % 2], floats_out(l));
      }
      const bool dx_to_buffer =
          (l > 0 && !fused(l - 1)) || (l == 0 && made_input && kind == Input::Kind::repeated);
      if (dx_to_buffer) {
        p.dx_buffer = (l + 1) % 2;
        grad[(l + 1) % 2] = std::max(grad[(l + 1) % 2], floats_in(l));
      }
    }
    if (du) lay.du = take(du);
    if (du_above) lay.du_above = take(du_above), lay.above_part = take(above_part);
    if (rebuilt) lay.rebuilt = take(rebuilt);
    for (int k = 0; k < 2; ++k)
      if (grad[k]) lay.grad[k] = take(grad[k]);
    lay.part = take(2 * size_t(B) * widest);
    if (made_input) lay.b_input = take(floats_in(0));
    if (repeated_rows) lay.b_rows = take(size_t(B) * lay.layer[0].out_width);
    if (col_floats) lay.b_col = take(col_floats), lay.b_dyt = take(conv_rows_floats);
    if (kind == Input::Kind::noisy && direct0) {
      lay.wgrad_floats = kernels::masked_linear_wgrad_scratch(spec.time_steps, B,
                                                              lay.layer[0].out_width, spec.inputs);
      if (lay.wgrad_floats > 0) lay.wgrad = take(lay.wgrad_floats);
    }
    backward_end = offset;
  }
  lay.total = std::max(forward_end, backward_end);

  // The cuBLAS products of spiking and dense layers (cuda.cu): every layer's over its input
  // rows, but a noisy first layer's (the masked product, kernels/masked_linear.cuh) and a
  // repeated first layer's over its B rows. Convolutions round in cuBLAS (FAST_16BF).
  if (matmul == MatmulPrecision::bf16) {
    size_t bytes = 0;
    for (int l = 0; l < L; ++l) {
      const LayerSpec& ls = spec.layers[l];
      if (!has_weights(ls) || std::holds_alternative<Conv2d>(ls)) continue;
      if (l == 0 && kind == Input::Kind::noisy && direct0) continue;
      const LayerPlan& p = lay.layer[l];
      const long long M = l == 0 && repeated_rows ? B : (long long)p.in_steps * B;
      bytes = std::max(bytes, kernels::gemm_bf16_bytes(M, p.out_width, p.in_width));
    }
    if (bytes) {
      lay.bf16 = align_up(lay.total);
      lay.bf16_bytes = bytes;
      lay.total = lay.bf16 + bytes;
    }
  }
  return lay;
}

}  // namespace nmsnn::cuda
