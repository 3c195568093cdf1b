// cuda_runtime.h (emulated) — the part of the CUDA runtime API nmsnn uses, on the host: memory
// calls are host allocations and copies, streams are handles whose work runs at once (so every
// call is already "synchronised"), and no call fails, except as CUDA's stream capture would:
// while a stream is captured into a graph, its work is recorded instead of run (and replayed by
// cudaGraphLaunch), and synchronising it or allocating memory returns an error, as on a GPU.
#pragma once
#include <algorithm>
#include <functional>
#include <vector>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
typedef enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
} cudaError_t;
// A graph is the work recorded from a stream, in order (a captured stream is one chain).
struct CUgraph_st {
  std::vector<std::function<void()>> work;
};
typedef CUgraph_st* cudaGraph_t;
struct CUgraphExec_st {
  std::vector<std::function<void()>> work;
};
typedef CUgraphExec_st* cudaGraphExec_t;
struct CUstream_st {
  CUgraph_st* capture = nullptr;  // the graph being recorded, or null
};
typedef CUstream_st* cudaStream_t;
struct CUevent_st {
  double seconds = 0;  // host clock when recorded (work on a stream has finished by then)
};
typedef CUevent_st* cudaEvent_t;
enum cudaMemcpyKind {
  cudaMemcpyHostToHost,
  cudaMemcpyHostToDevice,
  cudaMemcpyDeviceToHost,
  cudaMemcpyDeviceToDevice,
  cudaMemcpyDefault
};
#define cudaStreamNonBlocking 1
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
  unsigned x, y, z;
};
struct float4 {
  float x, y, z, w;
};
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
struct alignas(8) float2 {
  float x, y;
};
inline float2 make_float2(float a, float b) { return {a, b}; }
struct alignas(8) uint2 {
  unsigned x, y;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
namespace emulated {
// Runs `work` at once, or appends it to the graph that `stream` is being captured into.
inline void enqueue(cudaStream_t stream, std::function<void()> work) {
  if (stream && stream->capture)
    stream->capture->work.push_back(std::move(work));
  else
    work();
}
// Streams being captured now: allocation and device-wide synchronisation are errors meanwhile.
int& captures_active();
void* device_malloc(size_t n);
void device_free(void* p);
void check_range(const void* p, size_t n, const char* what);  // aborts past an allocation
}  // namespace emulated
inline const char* cudaGetErrorString(cudaError_t e) { return e ? "emulated error" : "no error"; }
inline const char* cudaGetErrorName(cudaError_t e) {
  return e ? "cudaErrorEmulated" : "cudaSuccess";
}
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
inline cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
// The emulated device is an sm_90 (thread-block clusters and 227 KB of shared memory a block),
// so every kernel's cluster path runs in the emulation.
enum cudaDeviceAttr {
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
  cudaDevAttrMultiProcessorCount = 16,
};
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int) {
  switch (attr) {
    case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = 232448; break;
    case cudaDevAttrMultiProcessorCount: *value = 132; break;
  }
  return cudaSuccess;
}
template <class T>
cudaError_t cudaMalloc(T** p, size_t n) {
  if (emulated::captures_active()) return cudaErrorStreamCaptureUnsupported;
  *p = (T*)emulated::device_malloc(n);
  return cudaSuccess;
}
inline cudaError_t cudaFree(void* p) {
  if (emulated::captures_active()) return cudaErrorStreamCaptureUnsupported;
  emulated::device_free(p);
  return cudaSuccess;
}
template <class T>
cudaError_t cudaMallocHost(T** p, size_t n) {
  *p = (T*)std::malloc(n);
  return cudaSuccess;
}
inline cudaError_t cudaFreeHost(void* p) {
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void* d, const void* s, size_t n, cudaMemcpyKind) {
  std::memcpy(d, s, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind,
                                   cudaStream_t stream = nullptr) {
  emulated::enqueue(stream, [=] { std::memcpy(d, s, n); });
  return cudaSuccess;
}
inline cudaError_t cudaMemset(void* d, int v, size_t n) {
  std::memset(d, v, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* d, int v, size_t n, cudaStream_t stream = nullptr) {
  emulated::enqueue(stream, [=] { std::memset(d, v, n); });
  return cudaSuccess;
}
// A host function run in stream order (captured as a graph's host node, as CUDA does).
typedef void (*cudaHostFn_t)(void* user_data);
inline cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void* user_data) {
  emulated::enqueue(stream, [=] { fn(user_data); });
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  return s && s->capture ? cudaErrorStreamCaptureUnsupported : cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize() {
  return emulated::captures_active() ? cudaErrorStreamCaptureUnsupported : cudaSuccess;
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = new CUstream_st;
  return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
// ---- launches with attributes: thread-block clusters and dynamic shared memory ------------------
// cudaLaunchKernelEx itself is in emulated_kernel.hpp, beside the launch it calls.
enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
};
namespace emulated {
// Dynamic shared memory a kernel may take beyond the default 48 KB (cudaFuncSetAttribute), by
// kernel address: a launch asking for more fails, as on the device.
int& max_dynamic_shared(const void* kernel);
constexpr int kDefaultDynamicShared = 48 * 1024;
constexpr int kMaxDynamicShared = 232448;  // sm_90: 227 KB a block, opted in
}  // namespace emulated
template <class Kernel>
cudaError_t cudaFuncSetAttribute(Kernel* kernel, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
      value > emulated::kMaxDynamicShared)
    return cudaErrorInvalidValue;
  emulated::max_dynamic_shared(reinterpret_cast<const void*>(kernel)) = value;
  return cudaSuccess;
}
// What the launch wrappers ask of a kernel: the emulation has no registers to run out of, so
// every kernel takes a block of 1024 threads.
struct cudaFuncAttributes {
  int maxThreadsPerBlock;
  int numRegs;
};
template <class Kernel>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, Kernel*) {
  *attr = cudaFuncAttributes{1024, 0};
  return cudaSuccess;
}
enum cudaLaunchAttributeID { cudaLaunchAttributeClusterDimension = 4 };
union cudaLaunchAttributeValue {
  char pad[64];
  struct {
    unsigned int x, y, z;
  } clusterDim;
};
struct cudaLaunchAttribute {
  cudaLaunchAttributeID id;
  char pad[8 - sizeof(cudaLaunchAttributeID)];
  cudaLaunchAttributeValue val;
};
struct cudaLaunchConfig_t {
  dim3 gridDim;
  dim3 blockDim;
  size_t dynamicSmemBytes;
  cudaStream_t stream;
  cudaLaunchAttribute* attrs;
  unsigned int numAttrs;
};
// ---- stream capture and graphs -----------------------------------------------------------------
enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal,
  cudaStreamCaptureModeThreadLocal,
  cudaStreamCaptureModeRelaxed
};
enum cudaStreamCaptureStatus { cudaStreamCaptureStatusNone, cudaStreamCaptureStatusActive };
inline cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
  if (!s || s->capture) return cudaErrorStreamCaptureUnsupported;  // the legacy stream cannot
  s->capture = new CUgraph_st;
  ++emulated::captures_active();
  return cudaSuccess;
}
inline cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph) {
  if (!s || !s->capture) return cudaErrorStreamCaptureInvalidated;
  *graph = s->capture;
  s->capture = nullptr;
  --emulated::captures_active();
  return cudaSuccess;
}
inline cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status) {
  *status = s && s->capture ? cudaStreamCaptureStatusActive : cudaStreamCaptureStatusNone;
  return cudaSuccess;
}
inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph,
                                        unsigned long long = 0) {
  *exec = new CUgraphExec_st{graph->work};
  return cudaSuccess;
}
inline cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  for (const auto& work : exec->work) emulated::enqueue(stream, work);
  return cudaSuccess;
}
inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}
inline cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
inline cudaError_t cudaMemGetInfo(size_t* f, size_t* t) {
  *f = 1 << 30;
  *t = 2u << 30;
  return cudaSuccess;
}
// Events: a stream's work has run by the time it is queued, so an event is the host clock.
inline cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new CUevent_st;
  return cudaSuccess;
}
#define cudaEventDisableTiming 2
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
  *e = new CUevent_st;
  return cudaSuccess;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t = nullptr) {
  e->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  return cudaSuccess;
}
inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t stop) {
  *ms = float((stop->seconds - start->seconds) * 1e3);
  return cudaSuccess;
}
