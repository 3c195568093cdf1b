// cuda/workspace_layout.hpp — where a DeviceNetwork pass keeps what: the byte offsets of every
// buffer in the caller's workspace, planned from the spec, batch, input kind and pass kind.
//
// Layout: [ saved | scratch ], each buffer 256-byte aligned. Saved is what backward reads: u of
// spiking and lif layers (4 bytes per neuron per step; compact: spike16 codes, 2 bytes, or gate bits,
// 1 bit, see kernels/lif_saved.cuh), Lowpass levels, the rates of regularized spiking
// activations, and the outputs of other layers that feed a next layer. The scratch region is
// used by forward as its output buffers (alternating) and the FP32 a = x W^T of a last spiking
// layer whose u is not kept, and by backward as du, dy/dx (alternating), the rebuilt input, per-sample
// partial sums and the first layer's weight-gradient partials. In BF16, the cuBLAS products'
// BF16 operands follow both regions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "network/engine.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/spec.hpp"

namespace nmsnn::cuda {

constexpr size_t kAlign = 256;
constexpr size_t kNone = SIZE_MAX;  // "no such buffer"

// Layers with a weight and a bias: spiking, dense and conv2d.
bool has_weights(const LayerSpec& l);
// Layers of the seed's neurons whose pre-reset state u is saved and whose spikes are rebuilt from
// it: SpikingLayer, and Lif (the same neurons with no linear map of their own).
bool has_neurons(const LayerSpec& l);
// The neuron settings of a SpikingLayer or a Lif layer, as the kernels take them.
SpikingLayer neuron_settings(const LayerSpec& l);
// Whether layer 0 reads the caller's static input (noisy or repeated) itself: spiking and dense
// layers fuse the noise into their product and multiply repeated rows once; a convolution
// convolves the B repeated images once. Any other first layer gets the input made on the device,
// [T, B, I] (the noise masks applied, or the rows repeated).
bool reads_static_input(const LayerSpec& layer0, Input::Kind kind);
// network/engine.hpp: where backward reads a layer's input, a spiking layer below it keeps its
// spikes, else its gates are enough.
using detail::backward_reads_input;
using detail::bypassed_lowpass;

// Whether spiking layer l has a spiking layer l + 1 above it small enough for l's kernels to take
// in its products (at most kernels::kMaxFusedAbove neurons, the same steps): its backward
// products (fused_with_above), and over a fused first layer its forward product (cuda.cu).
bool small_above(const NetworkSpec& spec, int l);
// Whether spiking layer l's backward takes in the backward products of spiking layer l + 1, which
// then has at most kernels::kMaxFusedAbove neurons (DeviceOptions::fuse_small_layers): l + 1
// writes its du to Layout::du_above and stops there; l's lif_backward makes its own d_spikes and
// l + 1's per-sample weight gradients (Layout::above_part) from it.
bool fused_with_above(const NetworkSpec& spec, int l);

// Shapes, parameters and workspace offsets of one layer in one pass.
struct LayerPlan {
  int in_width = 0, in_steps = 0, out_width = 0, out_steps = 0;
  int param = -1;              // index of its first tensor in the parameter table
  size_t saved_u = kNone;      // spiking: pre-reset state u [steps, B, H] (training, fp32)
  size_t saved_spikes = kNone;  // spiking, compact: spike16 codes [steps, B, H] (uint16)
  size_t saved_gates = kNone;   // spiking, compact, spikes not read: [ceil(steps/32), B, H] uint32
  size_t saved_level = kNone;  // lowpass: level [steps, B, H] (training, when applied)
  size_t saved_rates = kNone;  // regularized spiking activation: rates [B, H]
  size_t saved_y = kNone;      // output kept for the next layer's backward (training)
  int dy_buffer = -1, dx_buffer = -1;  // backward: which grad buffer holds dy, receives dx
  // DeviceOptions::fuse_small_layers and fused_with_above: this layer's backward makes the
  // layer above's dx and dW (takes_in_above), or the layer below's makes this layer's
  // (taken_in_below)
  bool takes_in_above = false, taken_in_below = false;
};

// Byte offsets into the workspace.
struct Layout {
  std::vector<LayerPlan> layer;
  size_t saved_end = 0, total = 0;
  // forward scratch
  size_t out[2] = {kNone, kNone};  // layer outputs that are not saved, alternating
  // inference, or compact training: a of a last spiking layer (the others make a in the buffer
  // of their spikes)
  size_t u_scratch = kNone;
  size_t input = kNone;            // layer 0 input made on the device [T, B, I] (masked/repeated)
  size_t rows = kNone;             // repeated input into layer 0 with weights: [B, H0]
  size_t weight_tiles = kNone;     // noisy layer 0, TF32 and BF16: W arranged for its forward
  // backward scratch
  size_t du = kNone, rebuilt = kNone, grad[2] = {kNone, kNone}, part = kNone, wgrad = kNone;
  // fused_with_above: the upper layer's du [steps, B, above] and its weight gradient per sample
  // [B, above, width below]
  size_t du_above = kNone, above_part = kNone;
  size_t b_input = kNone, b_rows = kNone;
  // convolutions (kernels/conv2d.cuh), forward: col [N*P, CK] and the product's rows [N*P, O];
  // backward: col (then dcol) and dy as rows [N*P, O]. The largest over the conv layers.
  size_t col = kNone, conv_rows = kNone, b_col = kNone, b_dyt = kNone;
  size_t wgrad_floats = 0;
  // MatmulPrecision::bf16: where a cuBLAS product of a spiking or dense layer rounds its operands
  // to BF16 arrays (kernels::Bf16Operands), after everything else, since a product reads and
  // writes buffers of both the saved and the scratch regions.
  size_t bf16 = kNone, bf16_bytes = 0;
};

Layout make_layout(const NetworkSpec& spec, int B, Input::Kind kind, bool training,
                   SavedState saved, bool fuse_small_layers, MatmulPrecision matmul);

}  // namespace nmsnn::cuda
