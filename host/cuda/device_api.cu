// cuda/device_api.cu — nmsnn::cuda::DeviceNetwork: the whole forward and backward pass of a
// spiking network as a short sequence of kernels and cuBLAS products on the caller's stream.
//
// Activations are time-major, [T, B, H] per layer, so the linear map of every step is one matrix
// product over all M = T*B rows (its input does not depend on the neuron state). Per training
// step, for a network of L layers:
//
//   forward, per layer l:
//     a_l = x_l W_l^T            layer 0 noisy: masked_linear_forward (masks made in the tile
//                                loader); else one cuBLAS product. Written into u_l's buffer.
//     lif_forward                the time loop in registers; a_l -> u_l in place (saved), the
//                                returned spikes -> x_{l+1}; the last layer writes the logits.
//   backward, per layer l from L-1 down to 0:
//     lif_backward               reverse time loop from u_l: du_l, per-sample bias sums
//     bias_grad_reduce           dbias_l
//     l > 0:  spikes_from_u      x_l again, from u_{l-1}
//             cuBLAS dW_l = du_l^T x_l, then dx_l = du_l W_l (into x_l's buffer)
//     l = 0:  noisy: masked_linear_wgrad (+ its partial-sum pass); sequence: cuBLAS dW_0 and,
//             when asked, dinput = du_0 W_0
//
// That is 2L launches forward and about 5L backward, whatever T is. What survives from forward
// to backward is u: 4 bytes per neuron per step.
//
// Workspace layout (offsets 256-byte aligned):
//   [ saved u_0 | u_1 | ... | u_{L-1} ]  (training only)   then one scratch region, used
//   forward as   [ u (inference only) | spikes ping | spikes pong ]
//   backward as  [ du | x/dx | bias partials [B, H] | first-layer weight-gradient partials ]
#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include <variant>

#include "backend.hpp"
#include "cublas_gemm.cuh"
#include "cuda_check.cuh"
#include "lif_backward.cuh"
#include "lif_forward.cuh"
#include "masked_linear.cuh"
#include "nll_loss.cuh"
#include "nmsnn/cuda.hpp"
#include "nmsnn/error.hpp"
#include "optimizer_update.cuh"

namespace nmsnn::cuda {

using ::nmsnn::detail::fail;

namespace {

// The kernels' arithmetic for a public Math choice.
kernels::GemmMath gemm_math_of(Math m) {
  return m == Math::tf32 ? kernels::GemmMath::tf32 : kernels::GemmMath::fp32;
}
kernels::TileMath tile_math_of(Math m) {
  return m == Math::tf32 ? kernels::TileMath::tf32 : kernels::TileMath::fp32;
}

constexpr size_t kAlign = 256;
size_t align_up(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

const SpikingLayer& layer_at(const NetworkSpec& spec, int l) {
  return std::get<SpikingLayer>(spec.layers[size_t(l)]);
}
int inputs_of(const NetworkSpec& spec, int l) {
  return l == 0 ? spec.inputs : layer_at(spec, l - 1).size;
}

// Byte offsets into the workspace.
struct Layout {
  std::vector<size_t> saved;  // u_l, training only
  size_t u_scratch = 0;       // inference: the one u buffer all layers use in turn
  size_t spikes[2] = {0, 0};  // forward: layer l writes its returned spikes to spikes[l % 2]
  size_t du = 0, x = 0, dbias = 0, wgrad = 0;  // backward
  size_t wgrad_floats = 0;
  size_t saved_end = 0, total = 0;
};

Layout make_layout(const NetworkSpec& spec, int B, Input::Kind kind, bool training) {
  const int L = int(spec.layers.size());
  const size_t TB = size_t(spec.time_steps) * size_t(B);
  size_t max_h = 0, max_hidden = 0;  // widest layer; widest layer that feeds another
  for (int l = 0; l < L; ++l) {
    max_h = std::max(max_h, size_t(layer_at(spec, l).size));
    if (l < L - 1) max_hidden = std::max(max_hidden, size_t(layer_at(spec, l).size));
  }
  Layout lay;
  size_t offset = 0;
  auto take = [&](size_t floats) {
    const size_t at = offset;
    offset = align_up(offset + floats * sizeof(float));
    return at;
  };
  if (training)
    for (int l = 0; l < L; ++l) lay.saved.push_back(take(TB * size_t(layer_at(spec, l).size)));
  lay.saved_end = offset;

  // Forward scratch.
  if (!training) lay.u_scratch = take(TB * max_h);
  if (L > 1) lay.spikes[0] = take(TB * max_hidden);
  if (L > 2) lay.spikes[1] = take(TB * max_hidden);
  const size_t forward_end = offset;

  // Backward scratch, over the same bytes.
  size_t backward_end = 0;
  if (training) {
    offset = lay.saved_end;
    lay.du = take(TB * max_h);
    if (L > 1) lay.x = take(TB * max_hidden);
    lay.dbias = take(size_t(B) * max_h);
    if (kind == Input::Kind::noisy) {
      lay.wgrad_floats =
          kernels::masked_linear_wgrad_scratch(spec.time_steps, B, layer_at(spec, 0).size, spec.inputs);
      if (lay.wgrad_floats > 0) lay.wgrad = take(lay.wgrad_floats);
    }
    backward_end = offset;
  }
  lay.total = std::max(forward_end, backward_end);
  return lay;
}

// Rejects batches whose row count does not fit the int dimensions of cuBLAS and of the kernels'
// grids. (Element offsets are computed in 64 bits everywhere.)
void check_batch(const NetworkSpec& spec, int B, const char* what) {
  if (B < 1) fail(what, ": batch must be >= 1, got ", B);
  const long long rows = (long long)spec.time_steps * B;
  if (rows > INT_MAX)
    fail(what, ": time_steps*batch = ", spec.time_steps, "*", B, " = ", rows,
         " rows is more than the ", INT_MAX, " one pass can index; use smaller batches");
}

// The engine takes noise-encoded static inputs and given sequences; other kinds are refused by
// name rather than misread.
void check_kind(Input::Kind kind, const char* what) {
  if (kind != Input::Kind::noisy && kind != Input::Kind::sequence)
    fail(what, ": the cuda engine takes noise-encoded (Input::noisy) and given-sequence "
               "(Input::sequence) inputs only; use the cpu engine for this input kind");
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

// Binds the caller's cuBLAS handle to the stream and the settings these products need, and puts
// back what it found when the pass is queued.
class CublasScope {
 public:
  CublasScope(cublasHandle_t handle, cudaStream_t stream) : handle_(handle) {
    NMSNN_CUBLAS_CHECK(cublasGetStream(handle_, &stream_));
    NMSNN_CUBLAS_CHECK(cublasGetPointerMode(handle_, &pointer_));
    NMSNN_CUBLAS_CHECK(cublasGetMathMode(handle_, &math_));
    NMSNN_CUBLAS_CHECK(cublasGetAtomicsMode(handle_, &atomics_));
    rebound_ = stream_ != stream;
    try {
      if (rebound_) NMSNN_CUBLAS_CHECK(cublasSetStream(handle_, stream));
      NMSNN_CUBLAS_CHECK(cublasSetPointerMode(handle_, CUBLAS_POINTER_MODE_HOST));  // alpha, beta
      // Default math: FP32 products unless a call asks for TF32 by its compute type.
      NMSNN_CUBLAS_CHECK(cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH));
      // No atomics: every product gives the same bits on every run.
      NMSNN_CUBLAS_CHECK(cublasSetAtomicsMode(handle_, CUBLAS_ATOMICS_NOT_ALLOWED));
    } catch (...) {
      restore();
      throw;
    }
  }
  ~CublasScope() { restore(); }
  CublasScope(const CublasScope&) = delete;
  CublasScope& operator=(const CublasScope&) = delete;

 private:
  void restore() noexcept {  // best effort: a destructor must not throw
    cublasSetAtomicsMode(handle_, atomics_);
    cublasSetMathMode(handle_, math_);
    cublasSetPointerMode(handle_, pointer_);
    if (rebound_) cublasSetStream(handle_, stream_);
  }
  cublasHandle_t handle_;
  cudaStream_t stream_ = nullptr;
  cublasPointerMode_t pointer_ = CUBLAS_POINTER_MODE_HOST;
  cublasMath_t math_ = CUBLAS_DEFAULT_MATH;
  cublasAtomicsMode_t atomics_ = CUBLAS_ATOMICS_NOT_ALLOWED;
  bool rebound_ = false;
};

}  // namespace

// ---- DeviceNetwork -----------------------------------------------------------------------------

DeviceNetwork::DeviceNetwork(const NetworkSpec& spec, cublasHandle_t cublas,
                             const DeviceOptions& options)
    : spec_(spec), cublas_(cublas), options_(options) {
  spec_.validate();
  for (size_t l = 0; l < spec_.layers.size(); ++l)
    if (!std::holds_alternative<SpikingLayer>(spec_.layers[l]))
      fail("the cuda engine runs stacks of spiking layers only; layer ", l,
           " is another kind (use the cpu engine for this network)");
  if (!cublas_) fail("DeviceNetwork: the cuBLAS handle is null (create one with cublasCreate)");
  layout_ = ::nmsnn::detail::parameter_layout(spec_);
}

size_t DeviceNetwork::workspace_bytes(int batch, Input::Kind kind, bool training) const {
  check_batch(spec_, batch, "DeviceNetwork::workspace_bytes");
  check_kind(kind, "DeviceNetwork::workspace_bytes");
  return make_layout(spec_, batch, kind, training).total;
}

size_t DeviceNetwork::saved_bytes(int batch) const {
  check_batch(spec_, batch, "DeviceNetwork::saved_bytes");
  size_t neurons = 0;
  for (const LayerSpec& l : spec_.layers) neurons += size_t(std::get<SpikingLayer>(l).size);
  return size_t(spec_.time_steps) * size_t(batch) * neurons * sizeof(float);
}

void DeviceNetwork::forward(const float* const* params, const DeviceInput& input, float* logits,
                            bool training, Workspace workspace, cudaStream_t stream,
                            const DeviceTrace* trace) const {
  const char* what = "DeviceNetwork::forward";
  const int T = spec_.time_steps, B = input.batch, L = int(spec_.layers.size());
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
  const Layout lay = make_layout(spec_, B, input.kind, training);
  check_workspace(workspace, lay.total, what, B, training);
  char* ws = static_cast<char*>(workspace.data);
  auto at = [ws](size_t offset) { return reinterpret_cast<float*>(ws + offset); };

  const kernels::GemmMath gemm_math = gemm_math_of(options_.math);
  const kernels::TileMath tile_math = tile_math_of(options_.math);
  CublasScope scope(cublas_, stream);

  const float* x = input.data;  // this layer's input [T*B, I] (dense cases)
  for (int l = 0; l < L; ++l) {
    const SpikingLayer& layer = layer_at(spec_, l);
    const int H = layer.size, I = inputs_of(spec_, l);
    const bool last = l == L - 1;
    float* u = training ? at(lay.saved[l]) : at(lay.u_scratch);
    // a = x W^T over all T*B rows, into u's buffer; lif_forward adds the bias.
    if (l == 0 && input.kind == Input::Kind::noisy) {
      kernels::masked_linear_forward(input.noise, input.data, T, B, I, params[0], H, u, tile_math,
                                     stream);
    } else {
      const std::string name = "layer " + std::to_string(l) + " forward";
      kernels::gemm_forward(cublas_, gemm_math, T * B, H, I, x, params[2 * l], u, name.c_str());
    }
    kernels::LifForwardArgs args;
    args.T = T;
    args.B = B;
    args.H = H;
    args.bias = params[2 * l + 1];
    args.u = u;
    args.spikes = last ? nullptr : at(lay.spikes[l % 2]);
    if (trace && !trace->state.empty()) args.trace_state = trace->state[l];
    if (trace && !trace->spikes.empty()) args.trace_spikes = trace->spikes[l];
    if (trace && !trace->rates.empty()) args.rates = trace->rates[l];
    if (last) {
      args.logits = logits;
      args.begin_eval = spec_.readout.begin_eval;
      args.readout_scale =
          spec_.readout.reduce == Reduce::mean ? 1.0f / float(T - spec_.readout.begin_eval) : 1.0f;
    }
    kernels::lif_forward(layer, args, stream);
    x = args.spikes;
  }
}

void DeviceNetwork::backward(const float* const* params, const DeviceInput& input,
                             const float* dlogits, float* const* grads, float* dinput,
                             Workspace workspace, cudaStream_t stream) const {
  const char* what = "DeviceNetwork::backward";
  const int T = spec_.time_steps, B = input.batch, L = int(spec_.layers.size());
  const bool noisy = input.kind == Input::Kind::noisy;
  check_batch(spec_, B, what);
  check_kind(input.kind, what);
  check_tables(params, layout_.size(), what, "params");
  check_tables(grads, layout_.size(), what, "grads");
  if (!input.data) fail(what, ": input data pointer is null");
  if (!dlogits) fail(what, ": dlogits pointer is null");
  if (dinput && noisy)
    fail(what, ": input gradients exist only for sequence inputs (the noise mask of a static "
               "input has no gradient)");
  const Layout lay = make_layout(spec_, B, input.kind, true);
  check_workspace(workspace, lay.total, what, B, true);
  char* ws = static_cast<char*>(workspace.data);
  auto at = [ws](size_t offset) { return reinterpret_cast<float*>(ws + offset); };

  const kernels::GemmMath gemm_math = gemm_math_of(options_.math);
  const kernels::TileMath tile_math = tile_math_of(options_.math);
  CublasScope scope(cublas_, stream);

  float* du = at(lay.du);
  float* x = L > 1 ? at(lay.x) : nullptr;  // x_l, then dL/dx_l, of the layer below
  float* dbias_part = at(lay.dbias);
  for (int l = L - 1; l >= 0; --l) {
    const SpikingLayer& layer = layer_at(spec_, l);
    const int H = layer.size, I = inputs_of(spec_, l);
    const bool last = l == L - 1;
    kernels::LifBackwardArgs args;
    args.T = T;
    args.B = B;
    args.H = H;
    args.u = at(lay.saved[l]);
    args.d_spikes = last ? nullptr : x;  // dL/dx_{l+1}, from the layer above
    if (last) {
      args.dlogits = dlogits;
      args.begin_eval = spec_.readout.begin_eval;
      args.readout_scale =
          spec_.readout.reduce == Reduce::mean ? 1.0f / float(T - spec_.readout.begin_eval) : 1.0f;
    }
    args.du = du;
    args.dbias_part = dbias_part;
    kernels::lif_backward(layer, args, stream);
    kernels::bias_grad_reduce(dbias_part, B, H, grads[2 * l + 1], stream);

    const std::string name = "layer " + std::to_string(l);
    if (l > 0) {
      // This layer's input was the spikes layer l-1 returned: made again from u_{l-1}.
      kernels::spikes_from_u(layer_at(spec_, l - 1), T, B, I, at(lay.saved[l - 1]), x, stream);
      kernels::gemm_weight_grad(cublas_, gemm_math, T * B, H, I, du, x, grads[2 * l],
                                (name + " weight gradient").c_str());
      // Stream order: the weight gradient has read x before this overwrites it with dL/dx.
      kernels::gemm_input_grad(cublas_, gemm_math, T * B, H, I, du, params[2 * l], x,
                               (name + " input gradient").c_str());
    } else if (noisy) {
      kernels::masked_linear_wgrad(input.noise, input.data, T, B, I, du, H, grads[0],
                                   lay.wgrad_floats ? at(lay.wgrad) : nullptr, tile_math, stream);
    } else {
      kernels::gemm_weight_grad(cublas_, gemm_math, T * B, H, I, du, input.data, grads[0],
                                (name + " weight gradient").c_str());
      if (dinput)
        kernels::gemm_input_grad(cublas_, gemm_math, T * B, H, I, du, params[0], dinput,
                                 (name + " input gradient").c_str());
    }
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

void nll_log_softmax(const float* logits, const int* labels, int batch, int classes,
                     float* dlogits, float* losses, cudaStream_t stream) {
  kernels::nll_log_softmax(logits, labels, batch, classes, dlogits, losses, stream);
}

}  // namespace nmsnn::cuda
