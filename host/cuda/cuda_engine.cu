// cuda/cuda_engine.cu — the `cuda` engine behind nmsnn::Network, built on the device API
// (nmsnn::cuda::DeviceNetwork): it owns device memory for parameters, gradients and optimiser
// state, a stream and a cuBLAS handle, and moves the host API's arrays to and from the device.
//
// Parameters live on the device in the public layout (weight [H, I], bias [H]), all tensors in
// one allocation with each tensor starting on a 256-byte boundary, so an optimiser step is one
// kernel over the whole allocation (the zero padding between tensors has zero gradient and stays
// zero under SGD and Adam). Gradients and optimiser buffers have the same layout.
//
// Each training pass keeps its own device workspace (the input copied to the device, then the
// DeviceNetwork workspace with the saved state) until its ForwardPass is destroyed; workspaces
// are reused from pass to pass, so a training loop allocates once.
//
// The engine runs on the device NetworkOptions::device names: every call that touches the device
// first makes it the calling thread's current device (and leaves it so).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <tuple>
#include <variant>
#include <vector>

#include "distributed/device_reducer.hpp"
#include "network/engine.hpp"
#include "cuda_check.cuh"
#include "gather_rows.cuh"
#include "launch.cuh"
#include "optimizer_update.cuh"
#include "sample_cluster.cuh"
#include "train_step.cuh"
#include "nmsnn/communicator.hpp"
#include "nmsnn/cuda.hpp"
#include "nmsnn/error.hpp"

namespace nmsnn::detail {

std::unique_ptr<EngineImpl> make_cuda_engine_impl(const NetworkSpec& spec, MatmulPrecision matmul,
                                                  SavedState saved, bool sample_clusters,
                                                  int device);

namespace {

// ---- gradient weighting ------------------------------------------------------------------------

// x[i] *= w for i < n: a data-parallel rank's gradients weighted by its share of the batch before
// they are summed over the ranks. CPU twin: the host loop in CudaEngine::reduce_gradients (and
// the cpu engine's reduce_gradients), one float multiply per value on both.
__global__ void scale_kernel(float* x, size_t n, float w) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    x[i] *= w;
}

void scale(float* x, size_t n, float w, cudaStream_t stream) {
  if (n == 0) return;
  const int threads = 256;
  scale_kernel<<<kernels::grid_stride_for((long long)n, threads), threads, 0, stream>>>(x, n, w);
  NMSNN_CHECK_LAUNCH("scale_kernel", "n=", n);
}

// ---- memory ------------------------------------------------------------------------------------

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes_ == 0) return;
    const cudaError_t status = cudaMalloc(&data_, bytes_);
    if (status != cudaSuccess) {
      cudaGetLastError();  // an out-of-memory error is not sticky; clear it
      fail("cuda engine: cudaMalloc of ", bytes_, " bytes failed: ", cudaGetErrorName(status), " (",
           cudaGetErrorString(status), ")");
    }
  }
  ~DeviceBuffer() {
    if (data_) cudaFree(data_);  // cannot throw from here; a failure would be sticky anyway
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  float* floats() const { return static_cast<float*>(data_); }
  size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// Page-locked host memory, so copies to and from the device run at full speed and asynchronously.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() {
    if (data_) cudaFreeHost(data_);
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  // At least `floats` floats; contents are not kept when it grows.
  float* reserve(size_t floats) {
    if (floats > floats_) {
      if (data_) NMSNN_CUDA_CHECK(cudaFreeHost(data_));
      data_ = nullptr;
      floats_ = 0;
      NMSNN_CUDA_CHECK(cudaMallocHost(&data_, floats * sizeof(float)));
      floats_ = floats;
    }
    return static_cast<float*>(data_);
  }

 private:
  void* data_ = nullptr;
  size_t floats_ = 0;
};

size_t align_floats(size_t n) { return (n + 63) / 64 * 64; }  // 64 floats = 256 bytes

// ---- what a pass keeps -------------------------------------------------------------------------

struct CudaForwardState : ForwardState {
  using ForwardState::ForwardState;
  std::shared_ptr<DeviceBuffer> buffer;  // [input copy | workspace]
};

struct CudaOptimizerState : OptimizerState {
  std::unique_ptr<DeviceBuffer> m, v;  // momentum buffer (SGD) or moments (Adam), like params
  // Tells a captured step which buffers it was captured with (a reset makes new ones, which may
  // reuse a freed address).
  const uint64_t serial = next_serial();
  static uint64_t next_serial() {
    static std::atomic<uint64_t> counter{0};
    return ++counter;
  }
};

// ---- the device-resident step -----------------------------------------------------------------

// What the host writes for each step, at the start of the step's staging block: the noise pass
// and the optimiser's floats, read by the kernels from device memory.
struct StepScalars {
  uint64_t noise_pass;
  kernels::SgdFloats sgd;
  kernels::AdamFloats adam;
};

// A StepLoop's device memory. The staging block [scalars | rows | row keys | y | x] has fixed
// offsets for a batch capacity, so a captured step reads each step's data from the same
// addresses. A step staged by the host fills y and x; a step on kept data (keep_step_data) sends
// the rows' indices, and its first kernels gather y and x from the kept copy. In a data-parallel
// step the block holds this rank's rows only, and their row keys.
struct CudaStepState : StepState {
  Loss loss = Loss::nll;
  bool use_graphs = false;
  // Data parallelism: the communicator (null: one process) and its device sums.
  std::shared_ptr<Communicator> comm;
  DeviceReducer* reducer = nullptr;
  int rank = 0, ranks = 1;
  int capacity = 0;        // batch capacity of the buffers below (0: none yet)
  size_t rows_offset = 0, keys_offset = 0, y_offset = 0, x_offset = 0, block_bytes = 0;  // bytes
  size_t ws_bytes = 0;
  // The step runs by sample clusters (kernels/sample_cluster.cuh), whose partial gradients take
  // cluster_bytes after the workspace.
  bool by_sample = false;
  size_t cluster_bytes = 0;
  std::unique_ptr<DeviceBuffer> block;    // staging block on the device
  // [logits | dlogits | regularization | workspace | cluster partials]
  std::unique_ptr<DeviceBuffer> work;
  std::unique_ptr<DeviceBuffer> prev;     // the parameters before the last update
  std::unique_ptr<DeviceBuffer> records;  // kernels::StepRecords
  std::unique_ptr<DeviceBuffer> sums;     // the step's statistics (kernels::step_sums::count)
  // The kept training set (keep_step_data), or none: x [count, I] and y [count, y_words] as the
  // staging block's y holds them (write_y).
  std::unique_ptr<DeviceBuffer> data_x, data_y;
  Input::Kind data_kind = Input::Kind::noisy;
  PinnedBuffer slots[2];                  // host staging, used in turn
  cudaEvent_t copied[2] = {nullptr, nullptr};  // the slot's last copy to the device has run
  bool slot_used[2] = {false, false};
  int next_slot = 0;
  int since_reset = 0;                    // steps queued since the device's records were emptied
  std::vector<StepRecord> drained;        // records moved to the host early (the device's filled)
  // Captured steps by (batch, input kind, optimiser kind, optimiser buffers, on kept data); a
  // shape is run once uncaptured first, so cuBLAS has made its own allocations before a capture.
  using GraphKey = std::tuple<int, int, size_t, uint64_t, bool>;
  std::map<GraphKey, cudaGraphExec_t> graphs;
  std::map<GraphKey, bool> warmed;

  ~CudaStepState() override {
    for (auto& g : graphs) cudaGraphExecDestroy(g.second);
    for (cudaEvent_t e : copied)
      if (e) cudaEventDestroy(e);
  }
};

// ---- the engine --------------------------------------------------------------------------------

class CudaEngine final : public EngineImpl {
 public:
  // `device` has been checked against the device count (make_cuda_engine).
  CudaEngine(const NetworkSpec& spec, MatmulPrecision matmul, SavedState saved,
             bool sample_clusters, int device)
      : spec_(spec), device_(device) {
    use_device();  // the stream, the cuBLAS handle and every buffer belong to this device
    NMSNN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    const cublasStatus_t status = cublasCreate(&cublas_);
    if (status != CUBLAS_STATUS_SUCCESS) {
      cudaStreamDestroy(stream_);
      fail("cuda engine: cublasCreate failed: ", cublasGetStatusName(status));
    }
    try {
      NMSNN_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
      cuda::DeviceOptions options;
      options.matmul = matmul;
      options.saved = saved;
      options.sample_clusters = sample_clusters;
      net_ = std::make_unique<cuda::DeviceNetwork>(spec_, cublas_, options);
      layout_ = parameter_layout(spec_);
      size_t total = 0;
      for (const ParameterInfo& p : layout_) {
        offsets_.push_back(total);
        total += align_floats(p.size);
      }
      total_floats_ = total;
      params_ = std::make_unique<DeviceBuffer>(total * sizeof(float));
      grads_ = std::make_unique<DeviceBuffer>(total * sizeof(float));
      // Zero everything once: the padding between tensors must stay zero, and gradients read
      // before the first backward are zeros.
      NMSNN_CUDA_CHECK(cudaMemsetAsync(params_->data(), 0, params_->bytes(), stream_));
      NMSNN_CUDA_CHECK(cudaMemsetAsync(grads_->data(), 0, grads_->bytes(), stream_));
      NMSNN_CUDA_CHECK(cudaStreamSynchronize(stream_));
      for (size_t i = 0; i < layout_.size(); ++i) {
        param_table_.push_back(params_->floats() + offsets_[i]);
        grad_table_.push_back(grads_->floats() + offsets_[i]);
      }
    } catch (...) {
      release();
      throw;
    }
  }

  ~CudaEngine() override { release(); }

  void read_parameter(size_t index, float* out) const override {
    copy_to_host(out, param_table_.at(index), layout_[index].size);
  }

  void write_parameter(size_t index, const float* values) override {
    use_device();
    NMSNN_CUDA_CHECK(cudaMemcpyAsync(param_table_.at(index), values,
                                     layout_[index].size * sizeof(float), cudaMemcpyHostToDevice,
                                     stream_));
    sync("write_parameter");  // the caller may free `values` when this returns
  }

  void read_gradient(size_t index, float* out) const override {
    copy_to_host(out, grad_table_.at(index), layout_[index].size);
  }

  const NetworkSpec& spec() const override { return spec_; }

  std::shared_ptr<ForwardState> forward(const Input& input, NoiseKey noise,
                                        std::vector<uint32_t> row_keys,
                                        const ForwardOptions& options) override {
    use_device();
    const int B = input.batch, C = spec_.outputs();
    auto state = std::make_shared<CudaForwardState>(this, input, noise, std::move(row_keys),
                                                    options.training, C);
    const ForwardState& pass = *state;

    // One device buffer: [input, row keys | logits, regularization loss | workspace], each part
    // 256-byte aligned.
    const size_t in_floats = input_floats(pass);
    const size_t logit_floats = align_floats(size_t(B) * C + 1);  // then the regularization loss
    const size_t ws_bytes = net_->workspace_bytes(B, input.kind, options.training);
    const size_t bytes = (in_floats + logit_floats) * sizeof(float) + ws_bytes;
    std::shared_ptr<DeviceBuffer> buffer = acquire(bytes);
    float* x = buffer->floats();
    float* logits = x + in_floats;
    void* ws = logits + logit_floats;

    // Input: host -> pinned -> device.
    float* staged = staging_in_.reserve(in_floats);
    std::memcpy(staged, input.data, input.count * sizeof(float));
    if (!pass.row_keys.empty())  // 32-bit keys stored in the floats' place: the same 4 bytes
      std::memcpy(staged + row_keys_offset(pass), pass.row_keys.data(), size_t(B) * sizeof(uint32_t));
    NMSNN_CUDA_CHECK(
        cudaMemcpyAsync(x, staged, in_floats * sizeof(float), cudaMemcpyHostToDevice, stream_));

    // Recording: device arrays [steps, B, H] per layer for state and spikes, [B, H] for the
    // rates of spiking layers; the regularization loss goes after the logits.
    const int L = int(spec_.layers.size());
    auto fires = [&](int l) { return ::nmsnn::fires(spec_.layers[size_t(l)]); };  // have rates
    auto trace_floats = [&](int l) {
      return size_t(spec_.layer_steps(l)) * B * size_t(spec_.layer_width(l));
    };
    // The trace buffer comes from the pool too, so recording every pass allocates nothing after
    // the first; it is idle again once this pass has copied it out.
    std::shared_ptr<DeviceBuffer> trace_buffer;
    cuda::DeviceTrace trace;
    // Only a regularized network asks for the loss: otherwise the device would zero it every pass.
    const size_t logit_copy = size_t(B) * C + (regularized_ ? 1 : 0);
    trace.regularization = regularized_ ? logits + size_t(B) * C : nullptr;
    if (options.record || options.rates) {
      size_t floats = 0;
      for (int l = 0; l < L; ++l) {
        if (options.record) floats += 2 * align_floats(trace_floats(l));
        if (options.rates && fires(l)) floats += align_floats(size_t(B) * spec_.layer_width(l));
      }
      trace_buffer = acquire(floats * sizeof(float));
      float* p = trace_buffer->floats();
      for (int l = 0; l < L; ++l) {
        if (options.record) {
          const size_t n = align_floats(trace_floats(l));
          trace.state.push_back(p);
          trace.spikes.push_back(p + n);
          p += 2 * n;
        }
        if (options.rates) {
          trace.rates.push_back(fires(l) ? p : nullptr);
          if (fires(l)) p += align_floats(size_t(B) * spec_.layer_width(l));
        }
      }
    }

    net_->forward(param_table_.data(), device_input(x, pass), logits,
                  options.training, {ws, ws_bytes}, stream_, &trace);

    // The logits and the regularization loss after them, in one copy.
    float* host_logits = staging_out_.reserve(logit_copy);
    NMSNN_CUDA_CHECK(cudaMemcpyAsync(host_logits, logits, logit_copy * sizeof(float),
                                     cudaMemcpyDeviceToHost, stream_));
    if (options.record) {
      state->trace.resize(size_t(L));
      for (int l = 0; l < L; ++l) {
        LayerTrace& tr = state->trace[size_t(l)];
        tr.steps = spec_.layer_steps(l);
        tr.batch = B;
        tr.size = spec_.layer_width(l);
        const size_t n = trace_floats(l);
        tr.state.resize(n);
        tr.spikes.resize(n);
        NMSNN_CUDA_CHECK(cudaMemcpyAsync(tr.state.data(), trace.state[size_t(l)], n * sizeof(float),
                                         cudaMemcpyDeviceToHost, stream_));
        NMSNN_CUDA_CHECK(cudaMemcpyAsync(tr.spikes.data(), trace.spikes[size_t(l)],
                                         n * sizeof(float), cudaMemcpyDeviceToHost, stream_));
      }
    }
    if (options.rates) {
      for (int l = 0; l < L; ++l) {
        if (!fires(l)) continue;
        LayerRates r;
        r.layer = l;
        // SpikingActivation rates are in Hz, the seed's layers' in spikes per step.
        r.hertz = std::holds_alternative<SpikingActivation>(spec_.layers[size_t(l)]);
        r.batch = B;
        r.size = spec_.layer_width(l);
        r.rates.resize(size_t(B) * r.size);
        NMSNN_CUDA_CHECK(cudaMemcpyAsync(r.rates.data(), trace.rates[size_t(l)],
                                         r.rates.size() * sizeof(float), cudaMemcpyDeviceToHost,
                                         stream_));
        state->rates.push_back(std::move(r));
      }
    }
    sync("forward");
    state->logits.assign(host_logits, host_logits + size_t(B) * C);
    state->regularization = regularized_ ? double(host_logits[size_t(B) * C]) : 0.0;
    if (options.training) {
      state->buffer = std::move(buffer);
      state->saved_bytes = net_->saved_bytes(B);
    }
    return state;
  }

  void backward(ForwardState& base, const float* dlogits, float* dinput) override {
    use_device();
    auto& state = dynamic_cast<CudaForwardState&>(base);
    if (!state.buffer) fail("cuda engine: backward: the forward pass kept no device state");
    const int B = state.batch, C = state.outputs;
    const size_t in_floats = input_floats(state);
    const size_t logit_floats = align_floats(size_t(B) * C + 1);  // as forward laid it out
    float* x = state.buffer->floats();
    float* d_logits = x + in_floats;  // the pass's logits are no longer needed: reuse the space
    void* ws = d_logits + logit_floats;
    const size_t ws_bytes = net_->workspace_bytes(B, state.input.kind, true);

    float* staged = staging_in_.reserve(size_t(B) * C);
    std::memcpy(staged, dlogits, size_t(B) * C * sizeof(float));
    NMSNN_CUDA_CHECK(cudaMemcpyAsync(d_logits, staged, size_t(B) * C * sizeof(float),
                                     cudaMemcpyHostToDevice, stream_));
    float* d_input = nullptr;
    if (dinput) {
      if (!dinput_ || dinput_->bytes() < state.input.count * sizeof(float))
        dinput_ = std::make_unique<DeviceBuffer>(state.input.count * sizeof(float));
      d_input = dinput_->floats();
    }
    net_->backward(param_table_.data(), device_input(x, state), d_logits,
                   grad_table_.data(), d_input, {ws, ws_bytes}, stream_);
    if (dinput) {
      float* host = staging_out_.reserve(state.input.count);
      NMSNN_CUDA_CHECK(cudaMemcpyAsync(host, d_input, state.input.count * sizeof(float),
                                       cudaMemcpyDeviceToHost, stream_));
      sync("backward");
      std::memcpy(dinput, host, state.input.count * sizeof(float));
    } else {
      sync("backward");  // report errors here, not at some later call
    }
  }

  void set_dt(int layer, float dt) override {
    use_device();
    net_->set_dt(layer, dt);
    std::get<SpikingActivation>(spec_.layers[size_t(layer)]).dt = dt;
  }

  std::unique_ptr<OptimizerState> make_optimizer_state() override {
    use_device();
    auto state = std::make_unique<CudaOptimizerState>();
    state->m = std::make_unique<DeviceBuffer>(total_floats_ * sizeof(float));
    state->v = std::make_unique<DeviceBuffer>(total_floats_ * sizeof(float));
    NMSNN_CUDA_CHECK(cudaMemsetAsync(state->m->data(), 0, state->m->bytes(), stream_));
    NMSNN_CUDA_CHECK(cudaMemsetAsync(state->v->data(), 0, state->v->bytes(), stream_));
    return state;
  }

  void optimizer_step(OptimizerState& base, const OptimizerSpec& spec, int64_t step) override {
    use_device();
    auto& s = dynamic_cast<CudaOptimizerState&>(base);
    // One launch over every tensor at once (the layout is the same for all four buffers).
    if (const Sgd* sgd = std::get_if<Sgd>(&spec))
      cuda::sgd_update(*sgd, params_->floats(), grads_->floats(), s.m->floats(), total_floats_,
                       step, stream_);
    else
      cuda::adam_update(std::get<Adam>(spec), params_->floats(), grads_->floats(), s.m->floats(),
                        s.v->floats(), total_floats_, step, stream_);
    // No synchronisation: the next forward or parameter read is queued behind the update. Its
    // launch errors were checked; errors while it runs appear at that next call.
  }

  // The buffers have the layout of params_ (the public one, at offsets_).
  void read_optimizer_buffer(const OptimizerState& base, int which, size_t index,
                             float* out) const override {
    const auto& s = dynamic_cast<const CudaOptimizerState&>(base);
    const DeviceBuffer& buffer = which == 0 ? *s.m : *s.v;
    copy_to_host(out, buffer.floats() + offsets_.at(index), layout_[index].size);
  }

  void write_optimizer_buffer(OptimizerState& base, int which, size_t index,
                              const float* values) override {
    use_device();
    auto& s = dynamic_cast<CudaOptimizerState&>(base);
    DeviceBuffer& buffer = which == 0 ? *s.m : *s.v;
    NMSNN_CUDA_CHECK(cudaMemcpyAsync(buffer.floats() + offsets_.at(index), values,
                                     layout_[index].size * sizeof(float), cudaMemcpyHostToDevice,
                                     stream_));
    sync("write_optimizer_buffer");  // the caller may free `values` when this returns
  }

  // ---- data parallelism --------------------------------------------------------------------------

  // The gradients are one allocation (grads_, the padding between tensors zero), so a
  // communicator that sums device memory (NCCL) gets them in one call, on the engine's stream.
  // Any other stages them through host memory, packed in the public layout in parameter order
  // (no padding), so the count and order of the values summed depend on the spec alone.
  void reduce_gradients(Communicator& comm, float weight) override {
    if (!(std::isfinite(weight) && weight >= 0))
      fail("cuda engine: reduce_gradients: weight must be finite and >= 0, got ", weight);
    use_device();
    if (auto* reducer = dynamic_cast<DeviceReducer*>(&comm)) {
      // weight 0: zeros, not 0 * gradient, which would keep a NaN this rank's gradients held.
      if (weight == 0)
        NMSNN_CUDA_CHECK(cudaMemsetAsync(grads_->data(), 0, grads_->bytes(), stream_));
      else if (weight != 1)
        scale(grads_->floats(), total_floats_, weight, stream_);
      reducer->allreduce_sum_device(grads_->floats(), total_floats_, stream_);
      sync("reduce_gradients");  // report a failed sum here, not at some later call
      return;
    }
    size_t total = 0;
    for (const ParameterInfo& p : layout_) total += p.size;
    reduce_staging_.resize(total);
    float* host = reduce_staging_.data();
    if (weight == 0) {
      std::fill(reduce_staging_.begin(), reduce_staging_.end(), 0.0f);
    } else {
      size_t at = 0;
      for (size_t i = 0; i < layout_.size(); ++i) {
        NMSNN_CUDA_CHECK(cudaMemcpyAsync(host + at, grad_table_[i], layout_[i].size * sizeof(float),
                                         cudaMemcpyDeviceToHost, stream_));
        at += layout_[i].size;
      }
      sync("reduce_gradients: reading the gradients");
      if (weight != 1)
        for (float& g : reduce_staging_) g *= weight;
    }
    comm.allreduce_sum(host, total);
    size_t at = 0;
    for (size_t i = 0; i < layout_.size(); ++i) {
      NMSNN_CUDA_CHECK(cudaMemcpyAsync(grad_table_[i], host + at, layout_[i].size * sizeof(float),
                                       cudaMemcpyHostToDevice, stream_));
      at += layout_[i].size;
    }
    sync("reduce_gradients: writing the sums");  // reduce_staging_ is reused by the next call
  }

  // ---- the device-resident step ------------------------------------------------------------------
  // Without a communicator, or with one that sums device memory (a DeviceReducer: NCCL), the
  // whole step is queued on the stream. A data-parallel one computes this rank's shard of the
  // batch and sums its statistics and its weighted gradients with the reducer on the stream, the
  // host path's arithmetic (training/train_step.cpp) with no wait for the host. With any other
  // communicator (single process, local group, MPI: sums in host memory) the step is the host
  // path (EngineImpl's), which calls reduce_gradients; its state is then not a CudaStepState,
  // which train_step and read_steps tell by dynamic_cast.

  std::unique_ptr<StepState> make_step_state(Loss loss, const StepOptions& options) override {
    auto* reducer = dynamic_cast<DeviceReducer*>(options.communicator.get());
    if (options.communicator && !reducer) return EngineImpl::make_step_state(loss, options);
    use_device();
    auto s = std::make_unique<CudaStepState>();
    s->loss = loss;
    s->use_graphs = options.graphs;
    s->comm = options.communicator;
    s->reducer = reducer;
    if (s->comm) {
      s->rank = s->comm->rank();
      s->ranks = s->comm->size();
    }
    s->by_sample = steps_by_sample();
    s->sums = std::make_unique<DeviceBuffer>(kernels::step_sums::count(s->ranks) * sizeof(double));
    s->records = std::make_unique<DeviceBuffer>(sizeof(kernels::StepRecords));
    s->prev = std::make_unique<DeviceBuffer>(params_->bytes());
    for (cudaEvent_t& e : s->copied)
      NMSNN_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    kernels::StepRecords r{};
    r.guard = options.guard.enabled ? 1 : 0;
    r.bad_index = kernels::kNoIndex;
    r.factor = options.guard.factor;
    r.first_loss = options.guard.first_loss;
    NMSNN_CUDA_CHECK(cudaMemcpyAsync(s->records->data(), &r, sizeof(r), cudaMemcpyHostToDevice,
                                     stream_));
    // The parameters to go back to if the very first step fails.
    NMSNN_CUDA_CHECK(cudaMemcpyAsync(s->prev->data(), params_->data(), params_->bytes(),
                                     cudaMemcpyDeviceToDevice, stream_));
    sync("make_step_state");  // `r` is on this stack
    return s;
  }

  void train_step(StepState& base, const Input& input, NoiseKey noise, const int* labels,
                  const float* targets, OptimizerState& optimizer, const OptimizerSpec& spec,
                  int64_t step) override {
    auto* own = dynamic_cast<CudaStepState*>(&base);
    if (!own)
      return EngineImpl::train_step(base, input, noise, labels, targets, optimizer, spec, step);
    use_device();
    CudaStepState& s = *own;
    auto& opt = dynamic_cast<CudaOptimizerState&>(optimizer);
    const int B = input.batch;
    // This rank's rows (all of them in one process); their noise is keyed by their global index.
    const Shard shard = s.comm ? shard_of(B, s.rank, s.ranks) : Shard{0, B};
    const int n = shard.count;
    // Stage this step's scalars, targets and input (and row keys in a data-parallel step) in a
    // pinned slot, then one copy to the device.
    int slot = 0;
    char* host = staging_slot(s, n, input.kind, slot);
    write_scalars(host, noise, spec, step);
    const int first = shard.first;
    write_y(host + s.y_offset, s.loss, labels, targets, first, n);
    const size_t row = input.count / size_t(B);  // floats per row of x
    std::memcpy(host + s.x_offset, input.data + size_t(first) * row,
                size_t(n) * row * sizeof(float));
    write_row_keys(s, host, first, n);
    send_step(s, host, slot, s.x_offset + size_t(n) * row * sizeof(float));
    run_step(s, B, n, input.kind, noise.seed, opt, spec, false);
  }

  // The training set on the device, when it takes at most half of the device's free memory:
  // MNIST's 60,000 rows are 188 MB of an H200's 140 GB. A copy that does not fit leaves the
  // loop on the host's staging, which works for any size.
  bool keep_step_data(StepState& base, const StepData& data) override {
    auto* own = dynamic_cast<CudaStepState*>(&base);
    if (!own) return false;
    use_device();
    CudaStepState& s = *own;
    sync("keeping a training set");  // queued steps may read the set this one replaces
    drop_graphs(s);
    s.data_x.reset();
    s.data_y.reset();
    const size_t N = size_t(data.count), I = size_t(spec_.inputs), W = y_words(s.loss);
    size_t free = 0, total = 0;
    NMSNN_CUDA_CHECK(cudaMemGetInfo(&free, &total));
    if ((N * I + N * W) * sizeof(uint32_t) > free / 2) return false;
    std::vector<uint32_t> y(N * W);
    write_y(reinterpret_cast<char*>(y.data()), s.loss, data.labels,
            s.loss == Loss::nll ? nullptr : data.targets, 0, int(N));
    s.data_x = std::make_unique<DeviceBuffer>(N * I * sizeof(float));
    s.data_y = std::make_unique<DeviceBuffer>(N * W * sizeof(uint32_t));
    NMSNN_CUDA_CHECK(cudaMemcpyAsync(s.data_x->data(), data.x, N * I * sizeof(float),
                                     cudaMemcpyHostToDevice, stream_));
    NMSNN_CUDA_CHECK(cudaMemcpyAsync(s.data_y->data(), y.data(), N * W * sizeof(uint32_t),
                                     cudaMemcpyHostToDevice, stream_));
    sync("copying a training set to the device");  // from pageable memory and `y`
    s.data_kind = data.kind;
    return true;
  }

  void train_step_rows(StepState& base, const int* rows, int B, NoiseKey noise,
                       OptimizerState& optimizer, const OptimizerSpec& spec,
                       int64_t step) override {
    auto* own = dynamic_cast<CudaStepState*>(&base);
    if (!own || !own->data_x)
      fail("internal: train_step_rows on a cuda step that keeps no training set");
    use_device();
    CudaStepState& s = *own;
    auto& opt = dynamic_cast<CudaOptimizerState&>(optimizer);
    const Shard shard = s.comm ? shard_of(B, s.rank, s.ranks) : Shard{0, B};
    const int n = shard.count;
    int slot = 0;
    char* host = staging_slot(s, n, s.data_kind, slot);
    write_scalars(host, noise, spec, step);
    std::memcpy(host + s.rows_offset, rows + shard.first, size_t(n) * sizeof(int));
    write_row_keys(s, host, shard.first, n);
    send_step(s, host, slot,
              (s.comm ? s.keys_offset : s.rows_offset) + size_t(n) * sizeof(uint32_t));
    run_step(s, B, n, s.data_kind, noise.seed, opt, spec, true);
  }

  StepReport read_steps(StepState& base) override {
    auto* own = dynamic_cast<CudaStepState*>(&base);
    if (!own) return EngineImpl::read_steps(base);
    use_device();
    CudaStepState& s = *own;
    kernels::StepRecords r;
    NMSNN_CUDA_CHECK(cudaMemcpyAsync(&r, s.records->data(), sizeof(r), cudaMemcpyDeviceToHost,
                                     stream_));
    sync("a training step");
    StepReport report;
    report.steps = std::move(s.drained);
    s.drained.clear();
    int halt = r.halt, halt_step = r.halt_step;
    if (halt == 0 && r.guard && r.bad_index != kernels::kNoIndex) {
      halt = int(HaltReason::parameter_not_finite);  // the last queued update failed
      halt_step = r.count - 1;
    }
    const int kept = halt ? halt_step : r.count;
    for (int k = 0; k < kept; ++k) report.steps.push_back({r.batch[k], r.loss[k], r.correct[k]});
    report.first_loss = r.first_loss;
    if (halt) {
      report.halt = HaltReason(halt);
      report.halt_step = int(report.steps.size());
      report.halt_value = r.halt_value;
      if (report.halt == HaltReason::parameter_not_finite) {
        const size_t index = size_t(r.bad_index);
        size_t i = 0;
        while (i + 1 < offsets_.size() && offsets_[i + 1] <= index) ++i;
        float value = 0;
        NMSNN_CUDA_CHECK(cudaMemcpyAsync(&value, params_->floats() + index, sizeof(float),
                                         cudaMemcpyDeviceToHost, stream_));
        sync("reading the parameter that is not finite");
        report.halt_value = value;
        report.parameter = layout_[i].name + "[" + std::to_string(index - offsets_[i]) + "]";
      }
      // Back to the last parameters whose loss passed (prev has them: every update since the
      // halt was skipped).
      NMSNN_CUDA_CHECK(cudaMemcpyAsync(params_->data(), s.prev->data(), params_->bytes(),
                                       cudaMemcpyDeviceToDevice, stream_));
    }
    // Empty the records; the guard's settings and first loss stay.
    r.count = 0;
    r.halt = 0;
    r.halt_step = 0;
    r.bad_index = kernels::kNoIndex;
    NMSNN_CUDA_CHECK(cudaMemcpyAsync(s.records->data(), &r, offsetof(kernels::StepRecords, loss),
                                     cudaMemcpyHostToDevice, stream_));
    sync("a training step's read");  // `r` is on this stack
    s.since_reset = 0;
    return report;
  }

 private:
  // Buffers for a step of this rank's n rows of this kind, and the pinned slot to stage it in
  // (its last copy to the device done): the host memory returned, its index in `slot`.
  char* staging_slot(CudaStepState& s, int n, Input::Kind kind, int& slot) {
    reserve_step(s, std::max(n, 1), kind);  // a rank with no rows still stages scalars
    if (s.since_reset == kernels::kStepRecords) drain_records(s);
    slot = s.next_slot;
    s.next_slot ^= 1;
    if (s.slot_used[slot]) NMSNN_CUDA_CHECK(cudaEventSynchronize(s.copied[slot]));
    return reinterpret_cast<char*>(s.slots[slot].reserve(s.block_bytes / sizeof(float)));
  }

  // 32-bit words of a row's y: a label for nll, a target for bce, C targets for mse.
  int y_words(Loss loss) const { return loss == Loss::mse ? spec_.outputs() : 1; }

  // Rows [first, first + n) of y as a step reads it: labels for nll; targets as floats for bce
  // (labels 0/1 made floats when no targets are given) and mse.
  void write_y(char* dst, Loss loss, const int* labels, const float* targets, int first,
               int n) const {
    const size_t W = size_t(y_words(loss));
    if (loss == Loss::nll) {
      std::memcpy(dst, labels + first, size_t(n) * sizeof(int));
    } else if (loss == Loss::bce && !targets) {
      float* y = reinterpret_cast<float*>(dst);
      for (int b = 0; b < n; ++b) y[b] = float(labels[first + b]);
    } else {
      std::memcpy(dst, targets + size_t(first) * W, size_t(n) * W * sizeof(float));
    }
  }

  // The step's scalars at the start of its staging block.
  static void write_scalars(char* host, NoiseKey noise, const OptimizerSpec& spec, int64_t step) {
    StepScalars scalars{};
    scalars.noise_pass = noise.pass;
    if (const Sgd* sgd = std::get_if<Sgd>(&spec)) scalars.sgd = kernels::sgd_floats(*sgd, step);
    else scalars.adam = kernels::adam_floats(std::get<Adam>(spec), step);
    std::memcpy(host, &scalars, sizeof(scalars));
  }

  // A data-parallel step's row keys: its rows' indices in the global batch.
  static void write_row_keys(const CudaStepState& s, char* host, int first, int n) {
    if (!s.comm) return;
    auto* keys = reinterpret_cast<uint32_t*>(host + s.keys_offset);
    for (int b = 0; b < n; ++b) keys[b] = uint32_t(first + b);
  }

  // The first `bytes` of a staging slot to the device's block, on the stream.
  void send_step(CudaStepState& s, const char* host, int slot, size_t bytes) {
    NMSNN_CUDA_CHECK(
        cudaMemcpyAsync(s.block->data(), host, bytes, cudaMemcpyHostToDevice, stream_));
    NMSNN_CUDA_CHECK(cudaEventRecord(s.copied[slot], stream_));
    s.slot_used[slot] = true;
  }

  // Queues a staged step: its device work as it is, or as a CUDA graph's replay.
  void run_step(CudaStepState& s, int B, int n, Input::Kind kind, uint64_t seed,
                CudaOptimizerState& opt, const OptimizerSpec& spec, bool gather) {
    const CudaStepState::GraphKey key{B, int(kind), spec.index(), opt.serial, gather};
    if (!s.use_graphs || !s.warmed[key]) {
      enqueue_step(s, B, n, kind, seed, opt, spec, gather);
      s.warmed[key] = true;
    } else {
      auto found = s.graphs.find(key);
      if (found == s.graphs.end()) {
        cudaGraph_t graph = nullptr;
        NMSNN_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
        try {
          enqueue_step(s, B, n, kind, seed, opt, spec, gather);
        } catch (...) {
          cudaStreamEndCapture(stream_, &graph);
          if (graph) cudaGraphDestroy(graph);
          throw;
        }
        NMSNN_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
        cudaGraphExec_t exec = nullptr;
        const cudaError_t status = cudaGraphInstantiate(&exec, graph, 0);
        cudaGraphDestroy(graph);
        NMSNN_CUDA_CHECK(status);
        found = s.graphs.emplace(key, exec).first;
      }
      NMSNN_CUDA_CHECK(cudaGraphLaunch(found->second, stream_));
    }
    ++s.since_reset;
  }

  // Captured steps hold the addresses of the buffers they read: dropped when those change.
  static void drop_graphs(CudaStepState& s) {
    for (auto& g : s.graphs) cudaGraphExecDestroy(g.second);
    s.graphs.clear();
    s.warmed.clear();
  }

  // Buffers of a step state for batches of up to B samples of this kind. Growing them drops the
  // captured steps, which hold their addresses.
  void reserve_step(CudaStepState& s, int B, Input::Kind kind) {
    const int C = spec_.outputs(), I = spec_.inputs;
    const size_t ws = net_->workspace_bytes(std::max(B, s.capacity), kind, true);
    if (B <= s.capacity && ws <= s.ws_bytes) return;
    sync("a training step");  // the old buffers may be in use
    drop_graphs(s);
    s.capacity = std::max(B, s.capacity);
    const size_t cap = size_t(s.capacity);
    auto align = [](size_t bytes) { return (bytes + 255) / 256 * 256; };
    // The small parts first: a step on kept data sends only the block's start.
    s.rows_offset = align(sizeof(StepScalars));
    s.keys_offset = s.rows_offset + align(cap * sizeof(int));
    s.y_offset = s.keys_offset + align(cap * sizeof(uint32_t));
    s.x_offset = s.y_offset + align(cap * size_t(std::max(C, 1)) * sizeof(float));
    s.block_bytes = s.x_offset + align(cap * size_t(I) * sizeof(float));
    s.ws_bytes = std::max(ws, net_->workspace_bytes(int(cap), kind, true));
    s.block = std::make_unique<DeviceBuffer>(s.block_bytes);
    const size_t logits = align(cap * size_t(C) * sizeof(float));
    s.cluster_bytes = s.by_sample ? kernels::sample_cluster_scratch_floats(
                                        int(cap), I, spec_.layer_width(0), C) * sizeof(float)
                                  : 0;
    s.work = std::make_unique<DeviceBuffer>(2 * logits + 256 + s.ws_bytes + s.cluster_bytes);
  }

  // The device's records are full: move them to the host and empty them (not after a halt,
  // whose step index refers to them; the halted steps add no records).
  void drain_records(CudaStepState& s) {
    kernels::StepRecords r;
    NMSNN_CUDA_CHECK(cudaMemcpyAsync(&r, s.records->data(), sizeof(r), cudaMemcpyDeviceToHost,
                                     stream_));
    sync("a training step");
    s.since_reset = 0;
    if (r.halt != 0 || (r.guard && r.bad_index != kernels::kNoIndex)) return;
    for (int k = 0; k < r.count; ++k) s.drained.push_back({r.batch[k], r.loss[k], r.correct[k]});
    NMSNN_CUDA_CHECK(cudaMemsetAsync(s.records->data(), 0, sizeof(int), stream_));  // count = 0
  }

  // The device work of one step, all on stream_ and nothing that waits: what a graph captures.
  // B: the step's batch; n: this rank's rows of it (B in one process), staged in the block, or
  // with `gather` their indices, whose rows are gathered from the kept data first.
  void enqueue_step(CudaStepState& s, int B, int n, Input::Kind kind, uint64_t seed,
                    CudaOptimizerState& opt, const OptimizerSpec& spec, bool gather) {
    const int C = spec_.outputs();
    char* block = static_cast<char*>(s.block->data());
    if (gather && n > 0) {
      const int* rows = reinterpret_cast<const int*>(block + s.rows_offset);
      kernels::gather_rows(static_cast<const uint32_t*>(s.data_x->data()), spec_.inputs, rows, n,
                           reinterpret_cast<uint32_t*>(block + s.x_offset), stream_);
      kernels::gather_rows(static_cast<const uint32_t*>(s.data_y->data()), y_words(s.loss), rows,
                           n, reinterpret_cast<uint32_t*>(block + s.y_offset), stream_);
    }
    auto* scalars = reinterpret_cast<StepScalars*>(block);
    const size_t logit_bytes = (size_t(s.capacity) * C * sizeof(float) + 255) / 256 * 256;
    char* work = static_cast<char*>(s.work->data());
    float* logits = reinterpret_cast<float*>(work);
    float* dlogits = reinterpret_cast<float*>(work + logit_bytes);
    float* regularization = reinterpret_cast<float*>(work + 2 * logit_bytes);
    void* ws = work + 2 * logit_bytes + 256;
    auto* records = static_cast<kernels::StepRecords*>(s.records->data());

    cuda::DeviceInput in;
    in.kind = kind;
    in.data = reinterpret_cast<const float*>(block + s.x_offset);
    in.batch = n;
    in.noise.seed = seed;
    in.noise.pass_at = &scalars->noise_pass;
    if (s.comm) in.noise.rows = reinterpret_cast<const uint32_t*>(block + s.keys_offset);
    cuda::DeviceTrace trace;
    trace.regularization = regularized_ ? regularization : nullptr;
    // A rank with no rows computes nothing, but takes part in both sums below. By sample
    // clusters, one kernel computes the logits and the gradients (of each row's share of the
    // mean loss, as step_partial's dlogits give them); step_partial then only takes the
    // statistics, and a halted step's gradients, like any, reach no parameter (the guarded update
    // does nothing).
    const bool by_sample = s.by_sample && kind == Input::Kind::noisy;
    if (n > 0 && by_sample) {
      kernels::SampleClusterArgs c =
          kernels::sample_cluster_args(spec_, net_->options().matmul, param_table_.data(),
                                       in.noise, in.data, n, logits);
      c.loss = s.loss;
      if (s.loss == Loss::nll) c.labels = reinterpret_cast<const int*>(block + s.y_offset);
      else c.targets = reinterpret_cast<const float*>(block + s.y_offset);
      c.dW0 = grad_table_[0], c.db0 = grad_table_[1];
      c.dW1 = grad_table_[2], c.db1 = grad_table_[3];
      c.scratch = reinterpret_cast<float*>(static_cast<char*>(ws) + s.ws_bytes);
      kernels::sample_cluster_step(c, stream_);
    } else if (n > 0) {
      net_->forward(param_table_.data(), in, logits, true, {ws, s.ws_bytes}, stream_, &trace);
    }

    kernels::StepLossArgs a;
    a.loss = s.loss;
    a.B = n;
    a.C = C;
    a.logits = logits;
    if (s.loss == Loss::nll) a.labels = reinterpret_cast<const int*>(block + s.y_offset);
    else a.targets = reinterpret_cast<const float*>(block + s.y_offset);
    a.regularization = trace.regularization;
    a.dlogits = dlogits;
    a.records = records;
    a.batch = B;
    a.sharded = s.comm != nullptr;
    a.rank = s.rank;
    a.ranks = s.ranks;
    a.sums = static_cast<double*>(s.sums->data());
    kernels::step_partial(a, stream_);
    // Every rank then decides from the same sums (the host path's order: statistics, gradients).
    if (s.reducer)
      s.reducer->allreduce_sum_device(a.sums, kernels::step_sums::count(s.ranks), stream_);
    kernels::step_guard(a, stream_);

    if (n > 0 && !by_sample)
      net_->backward(param_table_.data(), in, dlogits, grad_table_.data(), nullptr,
                     {ws, s.ws_bytes}, stream_);
    if (s.reducer) {
      // Each rank's gradient is the mean over its rows: weighted by its share, the sum over the
      // ranks is the batch's mean (reduce_gradients' arithmetic; weight 0: zeros, not 0 * stale).
      const float weight = float(double(n) / B);
      if (weight == 0)
        NMSNN_CUDA_CHECK(cudaMemsetAsync(grads_->data(), 0, grads_->bytes(), stream_));
      else if (weight != 1)
        scale(grads_->floats(), total_floats_, weight, stream_);
      s.reducer->allreduce_sum_device(grads_->floats(), total_floats_, stream_);
    }
    if (std::holds_alternative<Sgd>(spec))
      kernels::sgd_update_guarded(&scalars->sgd, &records->halt, params_->floats(),
                                  s.prev->floats(), grads_->floats(), opt.m->floats(),
                                  total_floats_, &records->bad_index, stream_);
    else
      kernels::adam_update_guarded(&scalars->adam, &records->halt, params_->floats(),
                                   s.prev->floats(), grads_->floats(), opt.m->floats(),
                                   opt.v->floats(), total_floats_, &records->bad_index, stream_);
  }

  // Whether training steps run by sample clusters (NetworkOptions::sample_clusters): a noisy
  // pair of spiking layers in FP32 or TF32 that fits the device (kernels/sample_cluster.cuh).
  bool steps_by_sample() const {
    const cuda::DeviceOptions& o = net_->options();
    return o.sample_clusters && kernels::sample_cluster_supports(spec_, true, o.matmul, device_);
  }

  // Where a pass's row keys sit in its device buffer, after the input, and the floats both take.
  static size_t row_keys_offset(const ForwardState& p) { return align_floats(p.input.count); }
  static size_t input_floats(const ForwardState& p) {
    const size_t keys = p.row_keys.empty() ? 0 : align_floats(p.row_keys.size());
    return align_floats(p.input.count) + keys;
  }

  // The pass's input as the device API takes it, x being the start of its device buffer.
  static cuda::DeviceInput device_input(const float* x, const ForwardState& p) {
    cuda::DeviceInput in;
    in.kind = p.input.kind;
    in.data = x;
    in.batch = p.input.batch;
    in.noise = p.noise;
    if (!p.row_keys.empty())
      in.noise.rows = reinterpret_cast<const uint32_t*>(x + row_keys_offset(p));
    return in;
  }

  void use_device() const { NMSNN_CUDA_CHECK(cudaSetDevice(device_)); }

  void sync(const char* what) const {
    const cudaError_t status = cudaStreamSynchronize(stream_);
    if (status != cudaSuccess)
      fail("cuda engine: ", what, ": a kernel or copy failed: ", cudaGetErrorName(status), " (",
           cudaGetErrorString(status), "); run under compute-sanitizer to find which");
  }

  void copy_to_host(float* out, const float* device, size_t n) const {
    use_device();
    NMSNN_CUDA_CHECK(
        cudaMemcpyAsync(out, device, n * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    sync("reading a parameter or gradient");
  }

  // A device buffer of at least `bytes` that no live pass holds. Idle buffers that are too small
  // are freed first, so memory is held only for passes that are alive, plus one.
  std::shared_ptr<DeviceBuffer> acquire(size_t bytes) {
    for (auto& b : pool_)
      if (b.use_count() == 1 && b->bytes() >= bytes) return b;
    // cudaFree synchronises the device, which is safe here: no live pass uses these buffers.
    pool_.erase(
        std::remove_if(pool_.begin(), pool_.end(),
                       [](const std::shared_ptr<DeviceBuffer>& b) { return b.use_count() == 1; }),
        pool_.end());
    pool_.push_back(std::make_shared<DeviceBuffer>(bytes));
    return pool_.back();
  }

  void release() noexcept {
    cudaSetDevice(device_);  // the buffers, stream and handle are this device's
    if (stream_) cudaStreamSynchronize(stream_);
    pool_.clear();
    dinput_.reset();
    params_.reset();
    grads_.reset();
    net_.reset();
    if (cublas_) cublasDestroy(cublas_);
    if (stream_) cudaStreamDestroy(stream_);
    cublas_ = nullptr;
    stream_ = nullptr;
  }

  NetworkSpec spec_;
  // Some SpikingActivation layer has a rate regularizer (fixed for the network's life).
  const bool regularized_ = std::any_of(spec_.layers.begin(), spec_.layers.end(), [](const auto& l) {
    const auto* a = std::get_if<SpikingActivation>(&l);
    return a && a->regularized();
  });
  const int device_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  std::unique_ptr<cuda::DeviceNetwork> net_;
  std::vector<ParameterInfo> layout_;
  std::vector<size_t> offsets_;  // floats from the start of params_ / grads_
  size_t total_floats_ = 0;
  std::unique_ptr<DeviceBuffer> params_, grads_, dinput_;
  std::vector<float*> param_table_, grad_table_;
  std::vector<std::shared_ptr<DeviceBuffer>> pool_;
  PinnedBuffer staging_in_, staging_out_;
  std::vector<float> reduce_staging_;  // the gradients, packed, on their way through the host
};

}  // namespace

std::unique_ptr<EngineImpl> make_cuda_engine_impl(const NetworkSpec& spec, MatmulPrecision matmul,
                                                  SavedState saved, bool sample_clusters,
                                                  int device) {
  return std::make_unique<CudaEngine>(spec, matmul, saved, sample_clusters, device);
}

}  // namespace nmsnn::detail
