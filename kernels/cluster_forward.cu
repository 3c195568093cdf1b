// cluster_forward.cu — the two-layer spiking forward pass, one sample per thread-block cluster
// (see cluster_forward.cuh for the math and the split of the work).
//
// Per sample, in each block of the cluster (R = kClusterBlocks blocks, 256 threads each):
//   1. masks   xi[t, f] for the block's features (whole Philox blocks), into shared memory;
//   2. product p[t, h] = sum over those features of xi[t, f] W0[h, f]: 4 x 4 register tiles,
//              one FMA chain per element in order of f (the block's W0 columns are staged once
//              per launch);
//   -- cluster.sync(): every block's partials are complete --
//   3. reduce  a0[t, h] = sum_r p_r[t, h] for the block's own neurons, read from the other
//              blocks' shared memory in rank order (deterministic);
//   4. loop    their time loop, spikes s0[t, h] kept in shared memory;
//   5. partial p1[t, c] = sum over the block's neurons of W1[c, h] s0[t, h];
//   -- cluster.sync() --
//   6. rank 0  a1[t, c] = sum_r p1_r[t, c], the output layer's time loop and the readout.
// A block reads another's shared memory only between a cluster.sync() and the next one after
// which the owner writes it again (p is rewritten after the next sample's masks, p1 after its
// product and first sync), and the launch ends with a cluster.sync() so that no block leaves
// while rank 0 may still read its p1.
//
// Shared memory per block (floats; F = the block's features, rounded up to whole Philox blocks,
// G = ceil(H / R) neurons): xi T F, W0 columns H F, p T H, a0 and s0 T G each, W1 columns C G,
// p1 and a1 T C each. The seed network (T = 128, I = 784, H = 100, C = 10): 166 KB.
#include <cooperative_groups.h>

#include <algorithm>

#include "cluster_forward.cuh"
#include "cuda_check.cuh"
#include "launch.cuh"

namespace nmsnn::kernels {

namespace {

namespace cg = cooperative_groups;

// Where each array lives in a block's shared memory, in floats from its start (each a multiple
// of 4 floats, 16 bytes), and the split of features and neurons over the cluster.
struct Plan {
  int quads;      // Philox blocks (4 features) per block
  int F;          // features per block, 4 * quads
  int G;          // hidden neurons per block
  int xi, w0, p, a0, s0, w1, p1, a1, total;
};

__host__ __device__ inline int round4(int n) { return (n + 3) / 4 * 4; }

__host__ __device__ inline Plan plan_for(int T, int I, int H, int C) {
  Plan s;
  s.quads = ((I + 3) / 4 + kClusterBlocks - 1) / kClusterBlocks;
  s.F = 4 * s.quads;
  s.G = (H + kClusterBlocks - 1) / kClusterBlocks;
  int at = 0;
  auto take = [&at](int floats) {
    const int start = at;
    at += round4(floats);
    return start;
  };
  s.xi = take(T * s.F);
  s.w0 = take(H * s.F);
  s.p = take(T * H);
  s.a0 = take(T * s.G);
  s.s0 = take(T * s.G);
  s.w1 = take(C * s.G);
  s.p1 = take(T * C);
  s.a1 = take(T * C);
  s.total = at;
  return s;
}

// One neuron's step (lif_forward.cuh): returns the new state v[t] and sets the spike s.
template <ResetRule Rule>
__device__ inline float lif_step(float a, float bias, float v, const SpikingLayer& n, float& s) {
  const float u = (a + bias) + n.decay * v;
  s = fmaxf(u - n.threshold, 0.0f);
  const float g = s > 0.0f ? 1.0f : 0.0f;
  return Rule == ResetRule::scale ? u - (n.penalty / n.threshold) * u * g
                                  : u - (n.penalty + s) * g;
}

template <ResetRule Hidden, ResetRule Output>
__global__ void __launch_bounds__(kClusterThreads)
    cluster_forward_kernel(ClusterForwardArgs a) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
  extern __shared__ __align__(16) float shared[];
  cg::cluster_group cluster = cg::this_cluster();
  const int R = kClusterBlocks;
  const int rank = int(cluster.block_rank());
  const int tid = int(threadIdx.x), threads = int(blockDim.x);
  const int T = a.T, I = a.I, H = a.H, C = a.C;
  const Plan s = plan_for(T, I, H, C);
  float* xi = shared + s.xi;
  float* w0 = shared + s.w0;
  float* p = shared + s.p;
  float* a0 = shared + s.a0;
  float* s0 = shared + s.s0;
  float* w1 = shared + s.w1;
  float* p1 = shared + s.p1;
  float* a1 = shared + s.a1;

  // This block's features [f0, f0 + nf) and hidden neurons [h0, h0 + nh); either may be empty.
  const int q0 = rank * s.quads;
  const int f0 = 4 * q0;
  const int nf = std::max(0, std::min(I - f0, s.F));
  const int nq = (nf + 3) / 4;
  const int h0 = rank * s.G;
  const int nh = std::max(0, std::min(H - h0, s.G));

  // The weights this block multiplies, once per launch: W0's columns of its features (zero past
  // I, so padded features add nothing) and W1's columns of its neurons.
  for (int k = tid; k < H * s.F; k += threads) {
    const int h = k / s.F, f = k - h * s.F;
    w0[k] = f < nf ? a.W0[size_t(h) * I + f0 + f] : 0.0f;
  }
  for (int k = tid; k < C * s.G; k += threads) {
    const int c = k / s.G, j = k - c * s.G;
    w1[k] = j < nh ? a.W1[size_t(c) * H + h0 + j] : 0.0f;
  }

  const int clusters = int(gridDim.x) / R;
  for (int b = int(blockIdx.x) / R; b < a.B; b += clusters) {
    // 1. The masks of this block's Philox blocks: four features of one step each.
    const float* xb = a.x + size_t(b) * I;
    for (int k = tid; k < T * nq; k += threads) {
      const int t = k / nq, q = k - t * nq;
      const Philox4x32 r = noise_block(a.key, uint32_t(q0 + q), uint32_t(b), uint32_t(t));
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int f = 4 * q + j;
        xi[t * s.F + f] = f < nf ? uniform_from_bits(r.v[j]) * xb[f0 + f] : 0.0f;
      }
    }
    __syncthreads();

    // 2. Partial currents over this block's features, 4 steps x 4 neurons per thread. Rows past
    // T or H are read clamped and not stored.
    const int tiles_h = (H + 3) / 4, tiles = (T + 3) / 4 * tiles_h;
    for (int k = tid; k < tiles; k += threads) {
      const int t0 = k / tiles_h * 4, n0 = (k - k / tiles_h * tiles_h) * 4;
      const float* xr[4];
      const float* wr[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        xr[i] = xi + std::min(t0 + i, T - 1) * s.F;
        wr[i] = w0 + std::min(n0 + i, H - 1) * s.F;
      }
      float acc[4][4] = {};
      for (int f = 0; f < nf; ++f) {
        float xv[4], wv[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) xv[i] = xr[i][f], wv[i] = wr[i][f];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[i][j] += xv[i] * wv[j];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
          if (t0 + i < T && n0 + j < H) p[(t0 + i) * H + n0 + j] = acc[i][j];
    }
    cluster.sync();

    // 3. This block's neurons' currents: the cluster's partials added in rank order.
    for (int k = tid; k < T * nh; k += threads) {
      const int t = k / nh, j = k - t * nh;
      float sum = 0.0f;
      for (int r = 0; r < R; ++r) sum += cluster.map_shared_rank(p, r)[t * H + h0 + j];
      a0[t * s.G + j] = sum;
    }
    __syncthreads();

    // 4. Their time loop; s0 holds what each step returns (the spikes the next layer reads).
    if (tid < nh) {
      const float bias = a.b0[h0 + tid];
      float v = 0.0f, s_last = 0.0f;
      for (int t = 0; t < T; ++t) {
        float spike;
        v = lif_step<Hidden>(a0[t * s.G + tid], bias, v, a.hidden, spike);
        s0[t * s.G + tid] = a.hidden.delay ? s_last : spike;
        s_last = spike;
      }
    }
    __syncthreads();

    // 5. The output layer's partial currents over this block's neurons.
    for (int k = tid; k < T * C; k += threads) {
      const int t = k / C, c = k - t * C;
      float sum = 0.0f;
      for (int j = 0; j < nh; ++j) sum += w1[c * s.G + j] * s0[t * s.G + j];
      p1[k] = sum;
    }
    cluster.sync();

    // 6. Rank 0: the output layer's currents, its time loop and the readout of its state v.
    if (rank == 0) {
      for (int k = tid; k < T * C; k += threads) {
        float sum = 0.0f;
        for (int r = 0; r < R; ++r) sum += cluster.map_shared_rank(p1, r)[k];
        a1[k] = sum;
      }
      __syncthreads();
      if (tid < C) {
        const float bias = a.b1[tid];
        float v = 0.0f, readout = 0.0f;
        for (int t = 0; t < T; ++t) {
          float spike;
          const float next = lif_step<Output>(a1[t * C + tid], bias, v, a.output, spike);
          // With delay step t returns v[t-1] (0 at step 0), else v[t].
          if (t >= a.begin_eval) readout += a.output.delay ? v : next;
          v = next;
        }
        a.logits[size_t(b) * C + tid] = readout * a.readout_scale;
      }
    }
  }
  cluster.sync();  // rank 0 may still read the others' p1 until here
#else
  __trap();  // cluster_forward_fits sends devices below sm_90 to the layered kernels
#endif
}

}  // namespace

size_t cluster_forward_shared_bytes(int T, int I, int H, int C) {
  return size_t(plan_for(T, I, H, C).total) * sizeof(float);
}

bool cluster_forward_fits(int T, int I, int H, int C, int device, const char** why) {
  int major = 0, optin = 0;
  NMSNN_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  NMSNN_CUDA_CHECK(
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  const char* reason = nullptr;
  if (major < 9) reason = "thread-block clusters need compute capability 9.0";
  else if (cluster_forward_shared_bytes(T, I, H, C) > size_t(optin))
    reason = "a block's shared memory would exceed what the device allows";
  if (why) *why = reason;
  return reason == nullptr;
}

void cluster_forward(const ClusterForwardArgs& a, cudaStream_t stream) {
  if (a.T < 1 || a.B < 1 || a.I < 1 || a.H < 1 || a.C < 1)
    ::nmsnn::detail::fail("cluster_forward: T, B, I, H and C must be >= 1, got ", a.T, ", ", a.B,
                          ", ", a.I, ", ", a.H, ", ", a.C);
  if (a.begin_eval < 0 || a.begin_eval >= a.T)
    ::nmsnn::detail::fail("cluster_forward: begin_eval must be in [0, T = ", a.T, "), got ",
                          a.begin_eval);
  int device = 0, sms = 0;
  NMSNN_CUDA_CHECK(cudaGetDevice(&device));
  const char* why = nullptr;
  if (!cluster_forward_fits(a.T, a.I, a.H, a.C, device, &why))
    ::nmsnn::detail::fail("cluster_forward (T=", a.T, ", I=", a.I, ", H=", a.H, ", C=", a.C,
                          "): ", why);
  NMSNN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const size_t bytes = cluster_forward_shared_bytes(a.T, a.I, a.H, a.C);
  // One block per SM (the shared memory allows no more); more clusters than fit would only wait.
  const int clusters = std::max(1, std::min(a.B, sms / kClusterBlocks));

  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeClusterDimension;
  attribute[0].val.clusterDim.x = kClusterBlocks;
  attribute[0].val.clusterDim.y = 1;
  attribute[0].val.clusterDim.z = 1;
  // Grid, block, shared bytes, stream, attributes (by position: the CUDA emulation defines the
  // names gridDim and blockDim as macros).
  const cudaLaunchConfig_t config = {dim3(unsigned(clusters * kClusterBlocks)),
                                     dim3(kClusterThreads), bytes, stream, attribute, 1};
  auto launch = [&](auto kernel) {
    NMSNN_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
    NMSNN_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, a));
  };
  const bool hidden_scale = a.hidden.reset == ResetRule::scale;
  const bool output_scale = a.output.reset == ResetRule::scale;
  if (hidden_scale && output_scale)
    launch(cluster_forward_kernel<ResetRule::scale, ResetRule::scale>);
  else if (hidden_scale)
    launch(cluster_forward_kernel<ResetRule::scale, ResetRule::subtract>);
  else if (output_scale)
    launch(cluster_forward_kernel<ResetRule::subtract, ResetRule::scale>);
  else
    launch(cluster_forward_kernel<ResetRule::subtract, ResetRule::subtract>);
  NMSNN_CHECK_LAUNCH("cluster_forward", "T=", a.T, ", B=", a.B, ", I=", a.I, ", H=", a.H,
                     ", C=", a.C, ", ", bytes, " bytes of shared memory a block");
}

}  // namespace nmsnn::kernels
