// napkin_math.hpp — what each CUDA kernel of a training step must move and compute, from the
// shapes alone, and the time that implies on a given GPU. Plain C++ (no CUDA), so a unit test
// checks the counts (tests/test_napkin_math.cpp), bench/bench_cuda.cu prints them beside the
// measured times, and bench/napkin_table.cpp prints the table of bench/RESULTS.md.
//
// Predicted time of a kernel = max(bytes / (bandwidth * e_mem), FLOP / (peak * e_math),
//                                  Philox blocks * philox_slots / (int peak * e_int),
//                                  warp instructions / (issue rate * e_issue),
//                                  mma.sync instructions * mma_cycles / scheduler cycles per s,
//                                  serial chain, launch)
// where the warp instructions are counted, for loops whose SASS issues more than their
// arithmetic needs (the masked products: scripts/sass_loop_counts.sh), from that SASS; the
// serial chain is a time loop's dependent memory round trips (one thread runs all T
// steps of a neuron, loading kTimeLoopAhead steps at a time) and launch is the least a kernel
// costs. Bytes are DRAM bytes of the data each kernel must touch once (re-reads are assumed to
// hit L2); FLOP are 2*M*N*K per product and a few per element elsewhere.
//
// The kernels are modelled as designed after issue 13 (the design column says which):
//   - masked_linear forward and weight gradient: each mask of a pass is made once (per slice of
//     128 neurons), in registers, never stored; in TF32 and BF16 a warp makes exactly the masked
//     inputs its mma.sync or wgmma fragments hold (wgmma on the H200: the forward and the weight
//     gradient by sample, StepShape::wgmma); the weight gradient splits its rows into partial
//     sums added afterwards.
//   - spiking layers keep for backward only 2 bytes per neuron-step (the spike as 16 bits) when
//     a product reads their spikes in backward, and 1 bit (the gate) for the last layer
//     (SavedState::compact; StepShape::compact = false models the FP32 u instead).
//   - cuBLAS products read and write FP32 arrays in FP32 and TF32 (cuBLAS converts TF32
//     operands on the fly); in BF16 a kernel first rounds both operands into BF16 arrays
//     (kernels/cublas_gemm.cu), counted as its own kernel, and the product's bytes are still
//     counted as FP32 (an overcount of its operand reads; these products are math-bound).
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace napkin {

enum class Math { fp32, tf32, bf16 };

inline const char* to_string(Math m) {
  return m == Math::fp32 ? "fp32" : m == Math::tf32 ? "tf32" : "bf16";
}

// Philox4x32-10, per block of 4 uniforms, in 32-bit integer op slots (64 per clock per SM),
// counted from the sm_90 SASS of this repository's philox.hpp (nvcc 13 -O3, cuobjdump -sass on a
// kernel that makes masks as masked_quad does): per block 20 IMAD.WIDE.U32 (a 32x32->64-bit
// multiply each: hi and lo in one instruction, assumed half rate, 2 slots), 20 LOP3 (the
// three-input xors; the key schedule is hoisted out of the loop), 4 SHF and 4 I2FP (the masks'
// conversion, a quarter-rate unit: 4 slots each): 40 + 24 + 16 = 80 slots when nothing overlaps.
// The multiplies (FMA pipe), the logic (ALU pipe) and the conversions run on different pipes, so
// the real cost is between 40 (the FMA pipe alone) and 80; the H200 measured about 46
// (Device::philox_slots), which its integer bound takes. (The 64-bit form
// of the products also made an add of a known zero per product, 19 per block: philox.hpp's
// device path uses __umulhi, which removed them.) bench_cuda's PhiloxRate row measures it.
constexpr double kPhiloxIntOpsPerBlock = 2 * 20 + 20 + 4 + 4 * 4;

// ---- the GPU ---------------------------------------------------------------------------------

struct Device {
  const char* name;
  double bandwidth;      // DRAM bytes/s
  double fp32;           // FLOP/s on the CUDA cores (an FMA counts 2)
  double tf32, bf16;     // dense tensor-core FLOP/s
  double int32;          // 32-bit integer ops/s
  double e_mem, e_math, e_int;  // fraction of each peak a good kernel reaches
  double latency;        // seconds per dependent DRAM round trip
  double launch;         // seconds: the least a kernel costs in a stream of launches
  double issue;          // warp instructions/s the schedulers issue
  double e_issue;        // fraction of that a busy loop reaches
  double mma_cycles;     // scheduler cycles a tensor pipe takes per mma.sync instruction
  // Integer slots a Philox block takes at the integer rate, where the masks' bound is priced:
  // between 40 (its multiplies alone) and kPhiloxIntOpsPerBlock (80: nothing overlaps).
  double philox_slots;
};

// H200 SXM, datasheet figures: 4.8 TB/s HBM3e; dense 989 TFLOP/s BF16, 494 TF32, 67 FP32.
// Integer: 64 32-bit integer ops (add, logic, shift, multiply) per clock per SM (CUDA
// programming guide, throughput table, compute capability 9.0) x 132 SMs x 1.98 GHz = 16.7 T/s.
// Efficiencies from what this workplace measured on an H200 (KINDS.md): a device copy at
// 4.3 TB/s (0.9 of 4.8), an 8192^3 BF16 product at ~790 TFLOP/s (0.8 of 989); 0.8 assumed for
// the CUDA-core and integer rates. Latency: ~600 ns per HBM round trip under load. Launch: 2 us
// per kernel (back-to-back launches from one host thread, no CUDA graph). Issue: 4 schedulers per
// SM, one warp instruction each per clock, x 132 SMs x 1.98 GHz = 1.05 T warp instructions/s;
// 0.8 of it assumed for a loop with two blocks (16 warps) per SM to hide its latencies.
// mma.sync (the masked products' own kernels; cuBLAS takes the dense rates above): 16 cycles of a
// scheduler's tensor pipe per m16n8k8 TF32 or m16n8k16 BF16 instruction, i.e. 134 TF32 and 268
// BF16 TFLOP/s, 27 % of the dense peaks. Not a datasheet figure: fitted to the H200's first-layer
// forward (2026-12-04, bench/RESULTS.md), whose stage time in TF32 and BF16 was the sum of its
// Philox, its other instructions and 16 cycles per mma (within 3 %). Reports for the H100 put
// mma.sync nearer half the dense peak; the next profile (gpu_run.sh's ncu stage) decides.
// Philox: one pass of W1's masks (25.1 M blocks) took 0.086 ms alone (bench_cuda's PhiloxRate,
// 2026-12-04), 1.7x faster than 80 slots a block at 0.8 of 64 a clock: about 46 slots, which the
// H200's integer bound takes (the Philox pipes overlap).
constexpr double kH200PhiloxPassSeconds = 0.086e-3, kW1PhiloxBlocks = 128.0 * 1000 * 196;
inline Device h200() {
  const double int32 = 132 * 64 * 1.98e9, e_int = 0.8;
  return {"H200 SXM", 4.8e12, 67e12, 494e12, 989e12, int32,
          0.9, 0.8, e_int, 600e-9, 2e-6, 132 * 4 * 1.98e9, 0.8, 16,
          kH200PhiloxPassSeconds * int32 * e_int / kW1PhiloxBlocks};
}

// ---- one kernel ------------------------------------------------------------------------------

struct Kernel {
  std::string name;
  std::string design;       // which implementation the counts assume
  double bytes = 0;         // DRAM bytes read + written
  double flop = 0;          // floating-point operations
  double int_ops = 0;       // 32-bit integer operations (Philox)
  double serial_steps = 0;  // dependent DRAM round trips of one thread (time loops)
  bool tensor = false;      // FLOP on tensor cores when the precision is tf32 or bf16
  // Warp instructions the kernel's loops issue, by precision (Math: fp32, tf32, bf16); 0 where
  // the other bounds are assumed to cover it.
  double warp_instructions[3] = {0, 0, 0};
  // Of those, the mma.sync instructions (m16n8k8 TF32, m16n8k16 BF16), by precision: their
  // tensor-pipe time is a bound of its own (Device::mma_cycles).
  double mma_instructions[3] = {0, 0, 0};
  // The precisions (Math) it runs in: the TF32 and BF16 first layer runs its time loop inside its
  // product (masked_lif_forward), so a step lists that kernel for them and the two apart for FP32.
  bool runs[3] = {true, true, true};
};

inline double math_peak(const Device& d, const Kernel& k, Math m) {
  if (!k.tensor || m == Math::fp32) return d.fp32;
  return m == Math::tf32 ? d.tf32 : d.bf16;
}

// The parts of a kernel's predicted time, seconds.
struct Prediction {
  double memory, math, integer, issue, tensor, serial, total;
  const char* bound;  // which part sets the total
};

inline Prediction predict(const Kernel& k, const Device& d, Math m) {
  Prediction p{};
  if (!k.runs[int(m)]) {
    p.bound = "not run";
    return p;
  }
  p.memory = k.bytes / (d.bandwidth * d.e_mem);
  p.math = k.flop / (math_peak(d, k, m) * d.e_math);
  // int_ops counts kPhiloxIntOpsPerBlock a block; the device prices a block at philox_slots.
  p.integer = k.int_ops * (d.philox_slots / kPhiloxIntOpsPerBlock) / (d.int32 * d.e_int);
  p.issue = k.warp_instructions[int(m)] / (d.issue * d.e_issue);
  p.tensor = k.mma_instructions[int(m)] * d.mma_cycles / d.issue;
  p.serial = k.serial_steps * d.latency;
  p.total = d.launch;
  p.bound = "launch";
  const std::pair<double, const char*> parts[] = {{p.memory, "memory"},
                                                  {p.math, "math"},
                                                  {p.integer, "int (Philox)"},
                                                  {p.issue, "issue"},
                                                  {p.tensor, "mma.sync"},
                                                  {p.serial, "latency"}};
  for (const auto& [t, why] : parts)
    if (t > p.total) p.total = t, p.bound = why;
  return p;
}

// ---- counting rules --------------------------------------------------------------------------

constexpr double kFloat = 4;  // bytes of an FP32 value

// C[M, N] = A[M, K] B[K, N]-shaped products: 2 FLOP per multiply-add.
inline double product_flop(double M, double N, double K) { return 2 * M * N * K; }
// Both operands read once and the result written once, FP32.
inline double product_bytes(double M, double N, double K) {
  return kFloat * (M * K + N * K + M * N);
}

constexpr double kUniformsPerBlock = 4;

// The TF32 and BF16 forward leaves out the quads (features 4c .. 4c+3) whose inputs are all 0 in
// every sample of its block, masks and products both (masked_linear.cu); with T a multiple of 128
// a block is one sample. Over MNIST's 60000 training digits scaled to [0, 1] (x / 255, the
// `default` preset) a digit has 55.6 live quads of 196 (28%) and its block walks ceil(live / 4)
// stages of 4 quads: 14.27 on average, against 49 for a dense input (test_napkin_math's
// MnistLiveStages counts them again from data/mnist). The seed's centred pixels (x / 255 - 0.5)
// have no zeros.
constexpr double kMnistLiveStagesPerDigit = 14.27;
constexpr double kMnistDenseStages = 49;  // ceil(784 / 16)
// The weight gradient by sample on the same digits: in each range of 64 quads a digit makes
// ceil(live / 8) tasks, 8.25 a digit over the 4 ranges (a dense input: 8 + 8 + 8 + 1 = 25), and
// has a live quad in 3.01 of the ranges, whose blocks stage its dU (test_napkin_math's
// MnistLiveWgradTasks counts them again).
constexpr double kMnistLiveWgradTasksPerDigit = 8.25;
constexpr double kMnistLiveWgradRangesPerDigit = 3.01;

// Philox blocks for the masks of T steps x B samples x K features (features in groups of 4).
inline double philox_blocks(double T, double B, double K) {
  return T * B * std::ceil(K / kUniformsPerBlock);
}

constexpr int kLayerPerBlock = 128;  // neurons one masked-linear block covers (masks made once)

// The masked products' main loops (kernels/masked_linear.cu), counted in the sm_90 SASS (nvcc 13,
// scripts/sass_loop_counts.sh, at the commit that last changed the kernel; the K % 4 == 0
// instantiations, W1's).
// FP32 (CUDA cores): a block of 8 warps computes a 128 (neurons) x 64 (rows, or features) tile,
// 16 values of the sum per stage, and each stage issues per thread:
constexpr double kSimtForwardLoop = 706, kSimtWgradLoop = 770;
constexpr double kSimtWarps = 8, kSimtTileQ = 64, kMaskedDepth = 16;
// TF32 and BF16 (mma.sync, the masked input made in registers in fragment order): a warp owns 32
// rows x all 8 NT neurons of a slice (forward) or 16 MT neurons x a strip of 32 features (weight
// gradient), 16 values of the sum per stage, and each warp-stage issues, by width class (forward
// NT = 8, 13, 16 for N <= 64, <= 104, else; weight gradient MT = 4, 7, 8 for N <= 64, <= 112,
// else), {tf32, bf16}:
constexpr double kMmaForwardLoop[3][2] = {{423, 355}, {513, 408}, {537, 438}};
constexpr double kMmaWgradLoop[3][2] = {{567, 461}, {718, 568}, {742, 573}};
// The forward on wgmma (kernels/wgmma.cuh; the library's choice on compute capability 9.0 when
// built for sm_90a, the default: StepShape::wgmma), counted in the sm_90a SASS, by class and
// precision as kMmaForwardLoop: the same warp-stage with 4 (TF32) or 2 (BF16) HGMMA for its
// 2 row tiles instead of 2 NT (BF16 NT) mma.sync and their B fragments' loads. Its tensor work
// runs at the dense rates (Device::tf32, bf16), asynchronously: a warp issues the stage's
// product, makes the next stage's masks and stages its W, and then waits. Counted in W1's
// instantiation (K % 4 == 0, T % 32 == 0: a warp's rows are one sample's, whose x quad a lane
// loads once a stage), whose loop comes in two (forward_tiles): W's stage copied from the
// arranged tiles (a dense input's blocks; masked_linear_weight_tiles) and W staged from its
// quads, loaded, rounded and scattered (StagingLoop: blocks with zero quads left out).
constexpr double kWgmmaForwardLoop[3][2] = {{335, 286}, {344, 286}, {339, 286}};
constexpr double kWgmmaForwardStagingLoop[3][2] = {{379, 312}, {441, 354}, {441, 355}};
// The same with the time loop fused in (its main loop, as kMmaLifForwardLoop).
constexpr double kWgmmaLifForwardLoop[3][2] = {{335, 285}, {343, 286}, {340, 286}};
constexpr double kWgmmaLifForwardStagingLoop[3][2] = {{379, 314}, {441, 354}, {441, 355}};
// Of each warp-stage, the masks of 4 Philox blocks: per block 20 IMAD.WIDE.U32, 20 LOP3, and per
// mask a SHF, an I2FP and two FMULs (the scale and x), ~56 (the SASS has 78 + 88 + 17 + 16 + 32 =
// 231 in the TF32 forward's loop).
constexpr double kMmaMaskInstructions = 4 * 56;
// The forward with the time loop fused in (masked_linear_lif_forward; sass_loop_counts.sh lists
// its innermost loops). Its main loop, by class and precision as kMmaForwardLoop (within a few
// instructions of the plain kernel's):
constexpr double kMmaLifForwardLoop[3][2] = {{420, 352}, {508, 403}, {536, 437}};
// After the main loop one thread a (sample, neuron) of the block runs lif_neuron.cuh's loop on
// the block's tile (a function of its own, not inlined), its outputs fixed for the common sets;
// per warp, a pass of 16 steps issues (the scale rule) with {the spikes only (inference), FP32 u
// and the spikes, spike16 codes and the spikes} written, {tf32, bf16}:
constexpr double kLifTailLoop[3][2] = {{290, 290}, {349, 349}, {459, 458}};
// With the layer above's product fused in (a layer of at most 16 neurons: NextLayerProduct), the
// loop puts its spikes in the tile, in place of the currents, instead of out: {nothing else
// (inference), FP32 u, spike16 codes}, {tf32, bf16}:
constexpr double kLifTailNextLoop[3][2] = {{249, 249}, {309, 309}, {417, 417}};
// That product (next_layer_product): per warp, a stage of 16 neurons of the layer below (the
// tile's spikes as A, 4 rows of 4 a lane) times the 16 staged neurons above (two n8 tiles),
// {tf32, bf16}; ceil(H / 16) stages.
constexpr double kNextProductLoop[2] = {81, 53};
// Around it, counted by hand (not checked): the weights' staging, one row of a stage per thread
// (16 guarded loads, their rounding, 4 shared stores: ~64 instructions), and each warp's stores
// of its 32 rows x up to 16 outputs (8 guarded pairs and their addresses: ~48).
constexpr double kNextStagingPerThread = 64, kNextStoresPerWarp = 48;
// The weight gradient by sample (masked_linear.cu's WgradWalk::samples: the TF32 and BF16
// default for T >= 16 and B >= 8). A warp's task is a group of 8 live quads of one sample in a
// range of 64 quads (256 features), over the sample's steps, 16 a stage: 4 Philox blocks a lane
// a stage, as above. A round of up to 4 samples stages 16 rows of dU per sample a stage, shared
// by that sample's tasks. The loop as counted, by class MT = 4, 7, 8, {tf32, bf16}, holds the
// staging of kLiveItemsCounted items a thread (the most a round of 4 samples needs; a round
// issues only its own samples' items):
constexpr double kMmaLiveWgradLoop[3][2] = {{469, 376}, {640, 491}, {650, 500}};
// The same on wgmma (StepShape::wgmma; masked_linear.cu's Tf32WgradWgmma, Bf16WgradWgmma: the
// product taken as dW^T = X^T dU, the masked input as A, dU's stage read by the tensor cores),
// its stage loop in the sm_90a SASS by class NT = 8, 13, 16 (up to 64, 104 neurons, else) and
// precision, with the same staging items a thread. The loop holds one product per sample of
// the warpgroup's groups: counted once, as a dense sample (all 8 warps on it) issues it.
constexpr double kWgmmaLiveWgradLoop[3][2] = {{477, 400}, {615, 499}, {615, 499}};
constexpr double kLiveItemsCounted[3] = {2, 4, 4};
// One item (2 rows x 4 neurons of dU loaded, rounded and scattered into their units) issues
// about kLiveStagingItem {tf32, bf16}: how much N = 100's loop count drops per item a thread
// when the kernel is built with rounds of one sample (1 item a thread; 2026-12-04, not checked by
// check_loop_constants.py). After its steps a task adds its accumulators to the block's tile in
// shared memory, 4 float4 a lane per m16 tile, at about kLiveAddPerFloat4 instructions each (a
// load, 4 adds, a store, addressing; not counted in SASS). On wgmma, 2 float4 a lane per n8 tile
// of neurons, the sample's loop of adds as counted in the sm_90a SASS, by class NT = 8, 13, 16
// (the same in both precisions; a round adds its samples one after another).
constexpr double kLiveStagingItem[2] = {69, 51};
constexpr double kLiveAddPerFloat4 = 8;
constexpr double kWgmmaLiveAddLoop[3] = {126, 165, 201};
constexpr double kLiveRangeQuads = 64;
constexpr int kTimeLoopAhead = 16;   // steps a time-loop thread loads at once (lif_*.cu kAhead)
constexpr int kFusedLoopAhead = 8;   // the same in lif_backward fused with the layer above

// Rows of partial weight gradients of the masked product: about 1024 tiles of 128 neurons x 64
// features, at most 64 partials, at least 256 rows each (masked_linear.cu's rule, every
// precision). The rows of a split, as the kernel rounds them: ceil(M / splits) to a multiple of
// 16.
inline double wgrad_splits(double M, double N, double K) {
  const double tiles = std::ceil(N / kLayerPerBlock) * std::ceil(K / 64);
  return std::max(1.0, std::min({std::floor(1024 / tiles), 64.0, std::floor(M / 256)}));
}
inline double wgrad_split_rows(double M, double N, double K) {
  return std::ceil(std::ceil(M / wgrad_splits(M, N, K)) / kMaskedDepth) * kMaskedDepth;
}

// FP32 block-stages of the masked forward: ceil(M / 64) x ceil(N / 128) tiles, ceil(K / 16)
// stages; of the weight gradient: ceil(K / 64) x ceil(N / 128) tiles, each in `splits` shares,
// 16 rows a stage.
inline double masked_forward_block_stages(double M, double N, double K) {
  return std::ceil(M / kSimtTileQ) * std::ceil(N / kLayerPerBlock) * std::ceil(K / kMaskedDepth);
}
inline double masked_wgrad_block_stages(double M, double N, double K) {
  return std::ceil(K / kSimtTileQ) * std::ceil(N / kLayerPerBlock) * wgrad_splits(M, N, K) *
         std::ceil(wgrad_split_rows(M, N, K) / kMaskedDepth);
}
// mma.sync warp-stages of the forward: ceil(M / 128) blocks of 4 warps per slice of neurons (one
// slice for N <= 104, else slices of 128), ceil(K / 16) stages each.
inline double mma_forward_warp_stages(double M, double N, double K) {
  const double slices = N <= 104 ? 1 : std::ceil(N / kLayerPerBlock);
  return std::ceil(M / 128) * 4 * slices * std::ceil(K / kMaskedDepth);
}
// Of the weight gradient: per slice of neurons (one for N <= 112, else slices of 128) and split,
// ceil(K / 32) warps with features to do (a block's warps past K only help stage dU), each
// walking the split's rows in stages of 16.
inline double mma_wgrad_warp_stages(double M, double N, double K) {
  const double slices = N <= 112 ? 1 : std::ceil(N / kLayerPerBlock);
  return slices * std::ceil(K / 32) * wgrad_splits(M, N, K) *
         std::ceil(wgrad_split_rows(M, N, K) / kMaskedDepth);
}
inline int mma_forward_class(double N) { return N <= 64 ? 0 : N <= 104 ? 1 : 2; }
inline int mma_wgrad_class(double N) { return N <= 64 ? 0 : N <= 112 ? 1 : 2; }
// mma.sync instructions a warp-stage issues, {tf32, bf16} (a TF32 m16n8k8 does half the sum's
// depth of a BF16 m16n8k16): the forward's 2 m16 row tiles x NT n8 tiles, the weight gradient's
// MT m16 tiles x 4 n8 tiles, over a stage of 16.
inline double mma_per_warp_stage(double tiles, Math m) { return m == Math::tf32 ? 2 * tiles : tiles; }
// The class's n8 tiles of the forward (NT) and m16 tiles of the weight gradient (MT).
inline double mma_forward_nt(double N) {
  const int c = mma_forward_class(N);
  return c == 0 ? 8 : c == 1 ? 13 : 16;
}
inline double mma_wgrad_mt(double N) {
  const int c = mma_wgrad_class(N);
  return c == 0 ? 4 : c == 1 ? 7 : 8;
}
inline double mma_forward_tiles(double N) { return 2 * mma_forward_nt(N); }
inline double mma_wgrad_tiles(double N) { return 4 * mma_wgrad_mt(N); }

// Sets the masked forward's (wgrad false) or weight gradient's warp instructions: FP32 from the
// block-stages, TF32 and BF16 from the warp-stages, less `saved` per warp-stage (a what-if).
inline void set_loop_instructions(Kernel& k, double M, double N, double K, bool wgrad,
                                  double saved = 0, double stages = 1, bool wgmma = false,
                                  bool weight_tiles = false) {
  k.warp_instructions[int(Math::fp32)] =
      (wgrad ? masked_wgrad_block_stages(M, N, K) * kSimtWgradLoop
             : masked_forward_block_stages(M, N, K) * kSimtForwardLoop) * kSimtWarps;
  const double warp_stages =
      stages * (wgrad ? mma_wgrad_warp_stages(M, N, K) : mma_forward_warp_stages(M, N, K));
  const bool on_wgmma = wgmma && !wgrad;
  const double(&loop)[2] = wgrad      ? kMmaWgradLoop[mma_wgrad_class(N)]
                           : on_wgmma ? (weight_tiles ? kWgmmaForwardLoop
                                               : kWgmmaForwardStagingLoop)[mma_forward_class(N)]
                                      : kMmaForwardLoop[mma_forward_class(N)];
  k.warp_instructions[int(Math::tf32)] = warp_stages * (loop[0] - saved);
  k.warp_instructions[int(Math::bf16)] = warp_stages * (loop[1] - saved);
  // wgmma's tensor work is the math bound (the dense rates); only mma.sync has its own.
  const double tiles = wgrad ? mma_wgrad_tiles(N) : mma_forward_tiles(N);
  for (Math m : {Math::tf32, Math::bf16})
    k.mma_instructions[int(m)] = on_wgmma ? 0 : warp_stages * mma_per_warp_stage(tiles, m);
}

// The weight gradient by sample: whether it runs (masked_linear.cu's automatic walk), a dense
// sample's tasks (ceil(quads / 8) in each range of 64 quads) and ranges, and its splits (about 512
// blocks, at most 64 partials, whole samples each, as masked_linear_wgrad_sample_split).
inline bool wgrad_by_sample(double T, double B) { return T >= kMaskedDepth && B >= 8; }
inline double live_wgrad_ranges(double K) {
  return std::ceil(std::ceil(K / 4) / kLiveRangeQuads);
}
inline double live_wgrad_dense_tasks(double K) {
  const double quads = std::ceil(K / 4);
  double tasks = 0;
  for (double q0 = 0; q0 < quads; q0 += kLiveRangeQuads)
    tasks += std::ceil(std::min(kLiveRangeQuads, quads - q0) / 8);
  return tasks;
}
inline double live_wgrad_splits(double B, double N, double K) {
  const double tiles = live_wgrad_ranges(K) * (N <= 112 ? 1 : std::ceil(N / kLayerPerBlock));
  const double splits = std::min({std::max(1.0, std::floor(512 / tiles)), 64.0, B});
  return std::ceil(B / std::ceil(B / splits));
}

// ---- a training step -------------------------------------------------------------------------

// A stack of spiking layers over T steps and B samples. noisy: the input x[B, I] goes through
// the noise encoder (masks made inside the first layer's products); else a sequence [T, B, I].
// update: loss (NLL of log-softmax) and SGD with momentum after backward.
struct StepShape {
  const char* name;
  int T, B, I;
  std::vector<int> layers;  // neurons per spiking layer
  bool noisy, update;
  bool compact = true;  // saved state: compact (spike16 / gate bits) or the FP32 u
  // A what-if, not the design: the forward also writes the masked input in BF16 (2 bytes per
  // value) and the weight gradient reads it back instead of making the masks again.
  bool store_masked_input = false;
  // A what-if: the masks cost nothing, neither integer work nor instructions in the TF32 and
  // BF16 loops (their floor without Philox).
  bool free_masks = false;
  // A what-if, a SPEC-level change: 16-bit uniforms, 8 a Philox block (both engines' masks).
  bool masks16 = false;
  // A layer of at most 16 neurons over a spiking layer has its backward products taken into the
  // lower layer's lif_backward (DeviceOptions::fuse_small_layers, the default); false: cuBLAS.
  bool fuse_small = true;
  // The fraction of a dense input's stages the TF32 and BF16 masked forward walks, its Philox
  // blocks with them: 1 for a dense input, MNIST's live quads for unit-scaled digits
  // (kMnistLiveStagesPerDigit, w1_unit_mnist).
  double forward_stages = 1;
  // The TF32 and BF16 masked forward and weight gradient by sample on wgmma (an H200 with the
  // default sm_90a build); false: on mma.sync, as an sm_80 or sm_90 build runs them (a what-if on
  // the H200). The weight gradient by rows is mma.sync either way.
  bool wgmma = true;
  // The TF32 and BF16 weight gradient by sample (T >= 16 and B >= 8): its tasks (groups of 8
  // live quads in a range of 64) and the ranges where a sample has a live quad, per sample; 0: a
  // dense input's (live_wgrad_dense_tasks, live_wgrad_ranges).
  double wgrad_tasks = 0, wgrad_ranges = 0;
};

// W1: the seed's MNIST training step (bench/bench_cuda.cu). Its pixels are centred (x / 255 -
// 0.5, the `seed` preset), so no input is 0 and the forward walks every quad.
inline StepShape w1() { return {"W1", 128, 1000, 784, {100, 10}, true, true}; }
// W1 on the pixels the `default` preset feeds (x / 255): the background is exactly 0, and the
// TF32 and BF16 forward walks only each digit's live quads.
inline StepShape w1_unit_mnist() {
  StepShape s = w1();
  s.name = "W1 unit-scaled";
  s.forward_stages = kMnistLiveStagesPerDigit / kMnistDenseStages;
  s.wgrad_tasks = kMnistLiveWgradTasksPerDigit;
  s.wgrad_ranges = kMnistLiveWgradRangesPerDigit;
  return s;
}
// W2: Linear(16384, 16384) + spiking layer over a given sequence, forward + backward.
inline StepShape w2() { return {"W2", 500, 16, 16384, {16384}, false, false}; }

// The dense FLOP of a step (products only: forward, weight gradient, and input gradient of every
// layer but the first), as bench_cuda's TFLOP/s counter counts them.
inline double step_product_flop(const StepShape& s) {
  const double M = double(s.T) * s.B;
  double flop = 0, in = s.I;
  for (size_t l = 0; l < s.layers.size(); ++l) {
    const double H = s.layers[l];
    flop += 2 * product_flop(M, H, in) + (l > 0 ? product_flop(M, H, in) : 0);
    in = H;
  }
  return flop;
}

// StepShape::masks16, counted by hand (not built): each Philox block gives 8 uniforms of 16 bits
// (m = h * 2^-16, h a half of a word) instead of 4 of 24. Per block 20 IMAD.WIDE (40 slots) and
// 20 LOP3 as now, and per mask one integer op (the half into a float's mantissa, LOP3 or PRMT)
// and one FFMA (that float less its offset, times x: exact before its one rounding), against a
// SHF, an I2FP and two FMULs: 68 integer slots for 8 masks against 80 for 4, and half the
// loops' mask instructions.
constexpr double kPhilox16IntOpsPer4Masks = (2 * 20 + 20 + 8) / 2.0;
inline double mask_int_factor(const StepShape& s) {
  return s.masks16 ? kPhilox16IntOpsPer4Masks / kPhiloxIntOpsPerBlock : 1;
}
// Mask instructions a TF32 or BF16 warp-stage leaves out under the what-ifs.
inline double mask_instructions_saved(const StepShape& s, bool free_masks) {
  return free_masks ? kMmaMaskInstructions : s.masks16 ? kMmaMaskInstructions / 2 : 0;
}

// Whether the TF32 and BF16 forward on wgmma has W's arranged tiles (the engine gives them,
// host/cuda/workspace_layout.cu; the kernels with a warp's rows one sample read them: T % 32 ==
// 0, K % 4 == 0), made by their own kernel (weight_tiles) each forward; and whether it copies
// W's stages from them (forward_tiles): on a dense input, whose blocks have no zero quad left
// out (a sparse one stages W from its quads, kWgmmaForwardStagingLoop).
inline bool weight_tiles_made(const StepShape& s) {
  return s.noisy && s.wgmma && s.T % 32 == 0 && s.I % 4 == 0;
}
inline bool forward_tiles(const StepShape& s) {
  return weight_tiles_made(s) && s.forward_stages >= 1;
}

// The kernel that arranges them: W read, the tiles written (ceil(K / 16) + 1 groups of 8 NT
// neurons x 16 (TF32) or 8 (BF16) words a slice), TF32 and BF16 only; launch-bound.
inline Kernel weight_tiles(const StepShape& s, double H) {
  const double K = s.I, slices = H <= 104 ? 1 : std::ceil(H / kLayerPerBlock);
  const double words = slices * (std::ceil(K / 16) + 1) * mma_forward_nt(H) * 8 * 16;
  Kernel k{"masked_linear_weight_tiles L0", "W arranged for the forward's stage copies",
           kFloat * (H * K + words), 0, 0, 0, false};
  k.runs[int(Math::fp32)] = false;
  return k;
}

// The first layer's masked forward of a noisy step (H neurons over the s.I inputs): masks made
// once, in registers, for the live stages' share (s.forward_stages) of the products and masks.
// The FP32 kernel walks every quad, but its issue count (unscaled) bounds it far above either.
// store and free_masks: the what-ifs of StepShape.
inline Kernel masked_forward(const StepShape& s, double H, const std::string& tag, bool store,
                             bool free_masks) {
  const double T = s.T, B = s.B, M = T * B, K = s.I, live = s.forward_stages;
  Kernel k{"masked_linear_forward" + tag,
           std::string(store ? "masks once, BF16 masked input stored"
                             : "masks made once, in registers") +
               (s.wgmma ? "; wgmma" : "; mma.sync") +
               (live < 1 ? "; zero-input quads left out" : ""),
           kFloat * (B * K + H * K + M * H) + (store ? 2 * M * K : 0),
           live * product_flop(M, H, K),
           free_masks ? 0
                      : live * philox_blocks(T, B, K) * std::ceil(H / kLayerPerBlock) *
                            kPhiloxIntOpsPerBlock * mask_int_factor(s),
           0, true};
  set_loop_instructions(k, M, H, K, false, mask_instructions_saved(s, free_masks), live,
                        s.wgmma, forward_tiles(s));
  return k;
}

// Whether the first layer's forward runs its time loop inside the product in TF32 and BF16
// (masked_linear_lif_fusable: T divides 128, so a block's 128 rows are whole samples, and at
// most 128 neurons, one slice).
inline bool lif_fused(const StepShape& s) {
  return s.noisy && s.T <= 128 && 128 % s.T == 0 && s.layers[0] <= 128;
}

// Whether that kernel also makes layer 1's current from its spikes (DeviceOptions::
// fuse_small_layers and a spiking layer of at most 16 neurons above: host/cuda/cuda.cu), so that
// layer's product (cuBLAS) runs in FP32 only.
inline bool next_fused(const StepShape& s) {
  return lif_fused(s) && s.fuse_small && s.layers.size() > 1 && s.layers[1] <= 16;
}

// That kernel, from the two it replaces in TF32 and BF16 (which then run in FP32 only): a is
// neither written nor read back; the rest of both, the main loop as counted in this kernel, plus
// the tail's loop: per block of 128 rows, one warp-pass of T steps per 32 of its (sample,
// neuron) pairs. training: the state kept for backward (s.compact) is written; else the spikes.
// With next_fused, layer 1's product too: the spikes are not written but layer 1's current is
// (and W1 read), its FLOP on the tensor cores, and per block the weights' staging, each warp's
// stages and stores, and the tail's loop putting its spikes in the tile.
inline Kernel masked_lif_forward(const StepShape& s, Kernel& product, Kernel& loop,
                                 bool training) {
  const double T = s.T, B = s.B, M = T * B, H = s.layers[0];
  const double a_bytes = kFloat * M * H, blocks = std::ceil(M / 128);
  const bool next = next_fused(s);
  const double H1 = next ? s.layers[1] : 0;
  Kernel k{"masked_linear_lif_forward L0",
           product.design + "; time loop fused in" + (next ? "; layer 1's product too" : ""),
           product.bytes - a_bytes + loop.bytes - a_bytes +
               (next ? kFloat * (M * H1 + H1 * H) - a_bytes : 0),
           product.flop + loop.flop + (next ? product_flop(M, H1, H) : 0), product.int_ops, 0,
           true};
  const double passes = blocks * std::ceil(std::min(128 / T, B) * H / 32);
  const int set = !training ? 0 : s.compact ? 2 : 1;
  const int c = mma_forward_class(H);
  const bool tiles = forward_tiles(s);
  const double(&plain)[2] = !s.wgmma ? kMmaForwardLoop[c]
                            : tiles  ? kWgmmaForwardLoop[c]
                                     : kWgmmaForwardStagingLoop[c];
  const double(&fused)[2] = !s.wgmma ? kMmaLifForwardLoop[c]
                            : tiles  ? kWgmmaLifForwardLoop[c]
                                     : kWgmmaLifForwardStagingLoop[c];
  for (int p = 0; p < 2; ++p) {
    const double tail =
        passes * T * (next ? kLifTailNextLoop : kLifTailLoop)[set][p] / kTimeLoopAhead;
    // A block's 4 warps (128 threads).
    const double above = next ? blocks * 4 *
                                    (kNextStagingPerThread + std::ceil(H / 16) * kNextProductLoop[p] +
                                     kNextStoresPerWarp)
                              : 0;
    k.warp_instructions[1 + p] = product.warp_instructions[1 + p] * fused[p] / plain[p] + tail +
                                 above;
    // Layer 1's product: per warp ceil(H / 16) stages of 2 m16 x 2 n8 tiles.
    const Math m = p == 0 ? Math::tf32 : Math::bf16;
    k.mma_instructions[1 + p] =
        product.mma_instructions[1 + p] +
        (next ? blocks * 4 * std::ceil(H / 16) * mma_per_warp_stage(4, m) : 0);
  }
  k.runs[int(Math::fp32)] = false;
  product.runs[int(Math::tf32)] = product.runs[int(Math::bf16)] = false;
  loop.runs[int(Math::tf32)] = loop.runs[int(Math::bf16)] = false;
  product.design += " (FP32; TF32 and BF16 fused below)";
  loop.design += " (FP32)";
  return k;
}

// Layer 1's product when the fused first layer makes it (next_fused): FP32 only.
inline void fused_above(Kernel& product) {
  product.runs[int(Math::tf32)] = product.runs[int(Math::bf16)] = false;
  product.design += " (FP32; TF32 and BF16 in the first layer's kernel)";
}

// A BF16 cuBLAS product's operands (a and b values, FP32) rounded into BF16 arrays before it:
// 4 bytes read and 2 written a value, in BF16 only and only where the product runs.
inline Kernel bf16_operands(const Kernel& product, double a, double b) {
  Kernel k{"round_to_bf16 (" + product.name + ")", "both operands to BF16 arrays",
           6 * (a + b), a + b, 0, 0, false};
  k.runs[int(Math::fp32)] = k.runs[int(Math::tf32)] = false;
  k.runs[int(Math::bf16)] = product.runs[int(Math::bf16)];
  return k;
}

// The first layer's weight gradient by sample (TF32 and BF16; FP32 walks rows, its issue count
// as the row-walking kernel's): tasks x stages of the counted loop, less the staging it holds,
// plus each sample's staging in each range where it has a live quad, plus the tasks' adds to the
// tile. Its Philox blocks: 8 quads x 16 rows a task-stage (the last group's padding included).
// free_masks: the what-if of StepShape.
inline Kernel masked_wgrad_by_sample(const StepShape& s, double H, const std::string& tag,
                                     double splits, bool free_masks) {
  const double T = s.T, B = s.B, M = T * B, K = s.I;
  const double slices = H <= 112 ? 1 : std::ceil(H / kLayerPerBlock);
  const double tasks = B * slices * (s.wgrad_tasks > 0 ? s.wgrad_tasks : live_wgrad_dense_tasks(K));
  const double ranges = B * slices * (s.wgrad_ranges > 0 ? s.wgrad_ranges : live_wgrad_ranges(K));
  const double stages = std::ceil(T / kMaskedDepth);
  // The slice's neurons as the kernel pads them: 16 MT (mma.sync) or 8 NT (wgmma).
  const int c = s.wgmma ? mma_forward_class(H) : mma_wgrad_class(H);
  const double padded = s.wgmma ? 8 * mma_forward_nt(H) : 16 * mma_wgrad_mt(H);
  Kernel k{"masked_linear_wgrad" + tag,
           "by sample: groups of 8 live quads; " + std::string(s.wgmma ? "wgmma; " : "") +
               std::to_string(int(splits)) + " sample splits",
           kFloat * (M * H + B * K + splits * H * K), tasks * stages * 2 * 16 * 32 * H / slices,
           free_masks ? 0
                      : tasks * stages * 8 * 16 * kPhiloxIntOpsPerBlock * mask_int_factor(s),
           0, true};
  k.warp_instructions[int(Math::fp32)] =
      masked_wgrad_block_stages(M, H, K) * kSimtWgradLoop * kSimtWarps;
  for (int p = 0; p < 2; ++p) {
    const double loop = s.wgmma ? kWgmmaLiveWgradLoop[c][p] : kMmaLiveWgradLoop[c][p];
    const double own = loop - kLiveItemsCounted[c] * kLiveStagingItem[p] -
                       mask_instructions_saved(s, free_masks);
    // Staging: 8 row pairs x padded / 4 chunks of neurons a sample-range-stage, on 32 lanes;
    // adds: a float4 a lane per 4 neurons and feature pair (mma.sync: 4 x MT, wgmma: 2 x NT).
    const double adds = s.wgmma ? kWgmmaLiveAddLoop[c] : padded / 4 * kLiveAddPerFloat4;
    k.warp_instructions[1 + p] = tasks * stages * own +
                                 ranges * stages * 2 * padded * kLiveStagingItem[p] / 32 +
                                 tasks * adds;
    // wgmma's tensor work is the math bound (the dense rates); mma.sync has its own.
    k.mma_instructions[1 + p] =
        s.wgmma ? 0
                : tasks * stages *
                      mma_per_warp_stage(mma_wgrad_tiles(H), p == 0 ? Math::tf32 : Math::bf16);
  }
  return k;
}

// The same walked by rows (B < 8 or T < 16, and FP32 always): every quad of every row, the
// loop as counted; free_masks (a what-if) saves the warp-stage's 4 Philox blocks.
inline Kernel masked_wgrad_by_rows(const StepShape& s, double H, const std::string& tag,
                                   double splits, bool free_masks) {
  const double T = s.T, B = s.B, M = T * B, K = s.I;
  Kernel k{"masked_linear_wgrad" + tag,
           "masks made once, in registers; " + std::to_string(int(splits)) + " row splits",
           kFloat * (M * H + B * K + splits * H * K), product_flop(M, H, K),
           free_masks ? 0
                      : philox_blocks(T, B, K) * std::ceil(H / kLayerPerBlock) *
                            kPhiloxIntOpsPerBlock * mask_int_factor(s),
           0, true};
  set_loop_instructions(k, M, H, K, true, mask_instructions_saved(s, free_masks));
  return k;
}

// Every kernel of one step, in launch order.
inline std::vector<Kernel> step_kernels(const StepShape& s) {
  std::vector<Kernel> ks;
  const double T = s.T, B = s.B, M = T * B;
  const int L = int(s.layers.size());
  const double chain = std::ceil(T / kTimeLoopAhead);
  auto width = [&](int l) { return double(l == 0 ? s.I : s.layers[size_t(l - 1)]); };
  // Bytes kept per neuron-step for backward: compact, the spike as 16 bits where a product reads
  // it (every layer but the last), else the gate as 1 bit; or u in FP32, written over a.
  auto saved = [&](int l) { return !s.compact ? kFloat : l < L - 1 ? 2.0 : 1.0 / 8; };

  // forward
  for (int l = 0; l < L; ++l) {
    const double K = width(l), H = s.layers[size_t(l)], n = M * H;
    const std::string tag = " L" + std::to_string(l);
    if (l == 0 && s.noisy) {
      if (weight_tiles_made(s)) ks.push_back(weight_tiles(s, H));
      ks.push_back(masked_forward(s, H, tag, s.store_masked_input, s.free_masks));
    } else {
      ks.push_back({"cuBLAS forward" + tag, "a = x W^T, FP32 arrays", product_bytes(M, H, K),
                    product_flop(M, H, K), 0, 0, true});
      if (l == 1 && next_fused(s)) fused_above(ks.back());
      ks.push_back(bf16_operands(ks.back(), M * K, H * K));
    }
    const bool last = l == L - 1;
    // reads a; writes the spikes (next layer's input) unless last, the saved state, and the
    // logits (last layer: B x H).
    ks.push_back({"lif_forward" + tag,
                  !s.compact ? "FP32 u saved" : last ? "gate bits saved, readout" : "spike16 saved",
                  n * (kFloat + (last ? 0 : kFloat) + saved(l)) + (last ? kFloat * B * H : 0),
                  7 * n, 0, chain, false});
    if (l == 0 && lif_fused(s))
      ks.push_back(masked_lif_forward(s, ks[ks.size() - 2], ks[ks.size() - 1], true));
  }
  if (s.update) {
    const double C = s.layers.back();
    ks.push_back({"nll_log_softmax", "one thread per sample", kFloat * 3 * B * C, 20 * B * C, 0,
                  0, false});
  }
  // backward
  // Layer l takes in layer l + 1's backward products (kernels/lif_backward.cuh; never both ends
  // of two pairs, as host/cuda/workspace_layout.cu decides).
  auto small_above = [&](int l) {
    return s.fuse_small && l + 1 < L && s.layers[size_t(l + 1)] <= 16;
  };
  auto fused_above = [&](int l) { return small_above(l) && !small_above(l + 1); };
  for (int l = L - 1; l >= 0; --l) {
    const double K = width(l), H = s.layers[size_t(l)], n = M * H;
    const std::string tag = " L" + std::to_string(l);
    const bool last = l == L - 1;
    if (fused_above(l)) {
      // Reads the saved state (the gates and the spikes' values) and the layer above's du
      // (M x A, once from DRAM; its other H - 1 reads hit the cache) and weights; writes du,
      // the bias partials and the layer above's per-sample weight gradients (B x A x H).
      const double A = s.layers[size_t(l + 1)];
      ks.push_back({"lif_backward" + tag,
                    std::string(!s.compact ? "reads FP32 u" : "spike16 gates and spikes") +
                        ", L" + std::to_string(l + 1) + "'s dx and dW fused in",
                    n * (saved(l) + kFloat) + kFloat * (M * A + A * H + B * A * H + B * H),
                    (6 + 4 * A) * n, 0, std::ceil(T / kFusedLoopAhead), false});
      // Its bias and the layer above's dW and bias, sums of B partials, in one launch
      // (bias_grad_reduce_batch).
      ks.push_back({"bias_grad_reduce_batch" + tag + " + L" + std::to_string(l + 1),
                    "bias, dW and bias above: sums of B partials",
                    kFloat * (B * H + H) + kFloat * (B * A * H + A * H) + kFloat * (B * A + A),
                    B * H + B * A * H + B * A, 0, 0, false});
    } else {
      // reads the saved state and dL/dspikes (from the layer above); writes du and B x H
      // per-sample bias partials.
      ks.push_back({"lif_backward" + tag,
                    !s.compact ? "reads FP32 u" : last ? "gate bits, dlogits" : "spike16 gates",
                    n * (saved(l) + (last ? 0 : kFloat) + kFloat) + kFloat * B * H, 6 * n, 0,
                    chain, false});
      // A layer taken into the one below has its bias summed in that layer's batch.
      if (!(l > 0 && fused_above(l - 1)))
        ks.push_back({"bias_grad_reduce" + tag, "sum of B partials", kFloat * (B * H + H), B * H,
                      0, 0, false});
    }
    if (l > 0 && fused_above(l - 1)) continue;  // its products run in the layer below's loop
    if (l == 0 && s.noisy) {
      const bool by_sample = wgrad_by_sample(T, B) && !s.store_masked_input;
      const double splits = by_sample ? live_wgrad_splits(B, H, K) : wgrad_splits(M, H, K);
      const std::string split_note = "; " + std::to_string(int(splits)) + " row splits";
      if (by_sample)
        ks.push_back(masked_wgrad_by_sample(s, H, tag, splits, s.free_masks));
      else if (s.store_masked_input) {
        ks.push_back({"masked_linear_wgrad" + tag, "reads the stored BF16 masked input" + split_note,
                      kFloat * (M * H + splits * H * K) + 2 * M * K, product_flop(M, H, K), 0, 0,
                      true});
        // The row walk's loop less the warp-stage's 4 Philox blocks (the loads of x become
        // loads of the stored input).
        set_loop_instructions(ks.back(), M, H, K, true, kMmaMaskInstructions);
      } else {
        ks.push_back(masked_wgrad_by_rows(s, H, tag, splits, s.free_masks));
      }
      if (splits > 1)
        ks.push_back({"reduce_partials" + tag, "adds the splits in order",
                      kFloat * (splits + 1) * H * K, splits * H * K, 0, 0, false});
      continue;
    }
    if (l > 0) {
      // The spikes of the layer below, FP32 again for the product (saved state in, 4 bytes out).
      ks.push_back({"spikes_from_saved L" + std::to_string(l - 1),
                    s.compact ? "spike16 to FP32" : "relu(u - threshold)",
                    M * K * (saved(l - 1) + kFloat), M * K, 0, 0, false});
    }
    ks.push_back({"cuBLAS weight grad" + tag, "dW = du^T x, FP32 arrays", product_bytes(H, K, M),
                  product_flop(H, K, M), 0, 0, true});
    ks.push_back(bf16_operands(ks.back(), M * H, M * K));
    if (l > 0) {
      ks.push_back({"cuBLAS input grad" + tag, "dx = du W, FP32 arrays", product_bytes(M, K, H),
                    product_flop(M, K, H), 0, 0, true});
      ks.push_back(bf16_operands(ks.back(), M * H, H * K));
    }
  }
  if (s.update) {
    double params = 0, in = s.I;
    for (int H : s.layers) params += H * in + H, in = H;
    // param and momentum read and written, gradient read
    ks.push_back({"sgd_update", "one thread per parameter", kFloat * 5 * params, 4 * params, 0,
                  0, false});
  }
  return ks;
}

// Sum of the kernels' predicted times, seconds.
inline double step_seconds(const StepShape& s, const Device& d, Math m) {
  double t = 0;
  for (const Kernel& k : step_kernels(s)) t += predict(k, d, m).total;
  return t;
}

// The step's products alone at the tensor-core (or CUDA-core) peak, no efficiency factor: the
// floor a step cannot beat.
inline double step_floor_seconds(const StepShape& s, const Device& d, Math m) {
  const double peak = m == Math::fp32 ? d.fp32 : m == Math::tf32 ? d.tf32 : d.bf16;
  return step_product_flop(s) / peak;
}

// A step's noise masks (step_kernels: forward and backward), their integer work alone, at
// `slots` per Philox block (kPhiloxIntOpsPerBlock, or 40: the FMA pipe's IMAD.WIDEs with all
// else overlapped), at the integer efficiency. SPEC section 1 has the backward make the masks
// again instead of storing T x B x I numbers, so a layered step (the forward and the weight
// gradient in different kernels, the time loop between them) makes each mask twice, once per
// neuron slice of kLayerPerBlock: no layered design of the step is faster than this. The forward
// makes only the masks of live quads (s.forward_stages of a dense input's), and so does the
// weight gradient by sample, in groups of 8 (s.wgrad_tasks); the one by rows makes all of them.
inline double mask_floor_seconds(const StepShape& s, const Device& d, double slots) {
  if (!s.noisy) return 0;
  const double H = s.layers[0], slices = std::ceil(H / double(kLayerPerBlock));
  const double forward = s.forward_stages * philox_blocks(s.T, s.B, s.I) * slices;
  // The weight gradient by sample makes 8 x 16 blocks a task-stage (its last groups' padding
  // included), in its own slices (one up to 112 neurons).
  const double wgrad =
      wgrad_by_sample(s.T, s.B)
          ? s.B * slices *
                (s.wgrad_tasks > 0 ? s.wgrad_tasks : live_wgrad_dense_tasks(s.I)) *
                std::ceil(s.T / kMaskedDepth) * 8 * 16
          : philox_blocks(s.T, s.B, s.I) * slices;
  return (forward + wgrad) * slots / (d.int32 * d.e_int);
}

// ---- an inference pass -----------------------------------------------------------------------

// A pass that keeps nothing for backward, layer by layer: each layer's product, then its time
// loop reading a and writing the spikes (the last layer only its logits).
inline std::vector<Kernel> inference_kernels(const StepShape& s) {
  std::vector<Kernel> ks;
  const double T = s.T, B = s.B, M = T * B;
  const int L = int(s.layers.size());
  const double chain = std::ceil(T / kTimeLoopAhead);
  double K = s.I;
  for (int l = 0; l < L; ++l) {
    const double H = s.layers[size_t(l)], n = M * H;
    const std::string tag = " L" + std::to_string(l);
    if (l == 0 && s.noisy) {
      if (weight_tiles_made(s)) ks.push_back(weight_tiles(s, H));
      ks.push_back(masked_forward(s, H, tag, false, false));
    } else {
      ks.push_back({"cuBLAS forward" + tag, "a = x W^T, FP32 arrays", product_bytes(M, H, K),
                    product_flop(M, H, K), 0, 0, true});
      if (l == 1 && next_fused(s)) fused_above(ks.back());
      ks.push_back(bf16_operands(ks.back(), M * K, H * K));
    }
    const bool last = l == L - 1;
    ks.push_back({"lif_forward" + tag, last ? "readout, nothing kept" : "spikes out, nothing kept",
                  n * kFloat + (last ? kFloat * B * H : n * kFloat), 7 * n, 0, chain, false});
    if (l == 0 && lif_fused(s))
      ks.push_back(masked_lif_forward(s, ks[ks.size() - 2], ks[ks.size() - 1], false));
    K = H;
  }
  return ks;
}

// The same pass of a noisy pair of spiking layers by sample clusters, as built
// (kernels/sample_cluster.cuh), and its training step: one kernel, whose DRAM traffic (input
// rows, parameters, logits; the step's partial gradients) is negligible. Each cluster of 8 blocks
// (one block per SM: the seed network's blocks take 166-225 KB of shared memory) runs its samples
// one after another, and a sample's phases one after another with barriers between them, so
// nothing overlaps across phases: the time is the samples per cluster times the sum of one
// sample's phases on one SM, at the efficiencies above:
//   masks     T x ceil(I / 32) Philox blocks (a block's share) at 64 integer slots a clock;
//   products  the two products with W0's shape (forward currents; training: the weight gradient)
//             over a block's F = 4 ceil(I / 32) features, and the small ones with W1's (FP32):
//             the slower of their arithmetic and their shared-memory reads, one 128-byte
//             wavefront a clock per SM (e_mem of it). FP32: T x H x F FMAs each at 128 a clock;
//             the 4 x 4 register tiles load 8 floats per 16 FMAs, one wavefront per warp-wide
//             load, T H F / 64 wavefronts (conflict-free at best). TF32 (BF16): m16n16k8
//             (m16n16k16) tiles over the padded shapes (T and H to 16, F to 8 (16) as depth and
//             16 as width) at the TF32 (BF16) rate; each warp's 2 x 2 tile blocks load every A
//             fragment (512 bytes: 16 x 8 floats or 16 x 16 BF16 values) once per pair of column
//             tiles and every B fragment once per pair of row tiles, plus the FP32 tiles stored
//             (and, for dW0, loaded) once per time chunk;
//   loops     the two layers' time loops, T dependent steps each at kOnChipStepCycles (a shared
//             memory load and four dependent floating-point operations); training: twice;
//   reduces   the partial currents read from the other blocks: T x (H + C) / 8 x 8 loads of
//             distributed shared memory, kDsmemLoadsPerClock a clock; training also gathers
//             du1 (T x C) and every du0 (T x H);
//   barriers  the cluster barriers, kClusterSyncCycles each: 2 per time chunk (forward), and 2
//             more in training.
constexpr double kClusterBlocks = 8;
constexpr double kOnChipStepCycles = 25;
constexpr double kDsmemLoadsPerClock = 8;   // 32 bytes a clock per SM, assumed
constexpr double kSharedBytesPerClock = 128;  // 32 banks x 4 bytes per SM
constexpr double kClusterSyncCycles = 400;  // assumed: never measured here
constexpr double kSharedOptinFloats = 232448 / 4;  // sm_90: 227 KB a block

struct ClusterPrediction {
  double samples_per_cluster, cycles_per_sample;
  double masks, products, loops, reduces, barriers;  // cycles of one sample on one SM
  int time_chunk;                                    // steps per chunk of partial currents
  double seconds;
};

inline double round_up(double n, double k) { return std::ceil(n / k) * k; }

// The kernel's time chunk (sample_cluster.cu's Plan, the same rule): the most steps (whole tiles
// of 16 with tensor cores) whose partial currents fit beside the rest of a block's 227 KB. The
// operands (xi, W0's columns) take 2 bytes in BF16, 4 otherwise.
inline int cluster_time_chunk(int T, int I, int H, int C, bool train, Math m) {
  const bool tensor = m != Math::fp32, half = m == Math::bf16;
  const double F = 4 * std::ceil(std::ceil(I / 4.0) / kClusterBlocks);
  const double G = std::ceil(H / kClusterBlocks);
  auto stride = [](double n) { return n + double((12 - int(n) % 8) % 8); };
  auto stride_bf16 = [](double n) {
    const int k = int(round_up(n, 8)) / 8;
    return 8.0 * (k % 2 ? k : k + 1);
  };
  const double es = half ? 2 : 4;  // operand bytes
  const double ds = tensor ? stride(round_up(F, 16)) : F;
  const double xs = half ? stride_bf16(round_up(F, 16)) : ds;
  const double Tp = tensor ? round_up(T, 16) : T, Hp = tensor ? round_up(H, 16) : H;
  const double ps = tensor ? stride(Hp) : H;
  double fixed = round_up(std::ceil(Tp * xs * es / 4), 8) +
                 round_up(std::ceil(Hp * xs * es / 4), 8) + 2 * round_up(T * G, 8) +
                 round_up(C * G, 8) + 2 * round_up(T * C, 8);
  if (train)
    fixed += round_up(Hp * ds, 8) + round_up(G, 8) + round_up(C * G, 8) + 3 * round_up(C, 8);
  const int step = tensor ? 16 : 1;
  const int room = int(kSharedOptinFloats - fixed - 7);
  const int chunk = std::max(step, std::min(int(Tp), room / int(ps) / step * step));
  return std::min(chunk, T);
}

inline ClusterPrediction sample_cluster_prediction(const StepShape& s, const Device& d,
                                                   bool train, Math m = Math::fp32,
                                                   double sms = 132) {
  ClusterPrediction p{};
  const double T = s.T, I = s.I, H = s.layers[0], C = s.layers[1];
  const bool tensor = m != Math::fp32, half = m == Math::bf16;
  const double clock = d.int32 / (64 * sms);
  const double clusters = std::floor(sms / kClusterBlocks);
  const double F = 4 * std::ceil(std::ceil(I / 4) / kClusterBlocks);
  p.samples_per_cluster = std::ceil(s.B / clusters);
  p.time_chunk = cluster_time_chunk(s.T, s.I, s.layers[0], s.layers[1], train, m);
  const double chunks = std::ceil(T / p.time_chunk);
  p.masks =
      T * std::ceil(std::ceil(I / 4) / kClusterBlocks) * kPhiloxIntOpsPerBlock / (64 * d.e_int);
  const double small_fma = T * C * H / kClusterBlocks;  // the output layer's partial currents
  const double wave = kSharedBytesPerClock * d.e_mem;   // bytes a clock
  if (!tensor) {
    const double fma = (train ? 2 : 1) * T * H * F;
    const double waves = (train ? 2 : 1) * T * H * F / 64;
    p.products =
        std::max((fma + small_fma) / (128 * d.e_math), waves * kSharedBytesPerClock / wave);
  } else {
    const double per_clock = (half ? d.bf16 : d.tf32) / (sms * clock);  // FLOP a clock per SM
    const double K = half ? 16 : 8;  // depth of a tile product
    const double frag = 512;         // bytes of an operand fragment: 16 x K operands
    // Row tiles of the forward over the chunks (the last chunk's partial tile counts whole).
    double mt = 0, mpairs = 0, ksteps_w = 0;
    for (double t0 = 0; t0 < T; t0 += p.time_chunk) {
      const double rows = std::min<double>(p.time_chunk, T - t0);
      mt += std::ceil(rows / 16);
      mpairs += std::ceil(std::ceil(rows / 16) / 2);
      ksteps_w += std::ceil(rows / K);
    }
    const double nt = round_up(H, 16) / 16, ks = std::ceil(F / K);
    double flop = 2 * 16 * 16 * K * mt * nt * ks;
    double bytes = frag * ks * (mt * std::ceil(nt / 2) + nt * mpairs) +
                   kFloat * mt * 16 * nt * 16;  // the partial currents stored
    if (train) {
      const double mw = nt, nw = std::ceil(F / 16);  // dW0: rows are neurons, columns features
      flop += 2 * 16 * 16 * K * mw * nw * ksteps_w;
      bytes += frag * ksteps_w * (mw * std::ceil(nw / 2) + nw * std::ceil(mw / 2)) +
               2 * chunks * kFloat * mw * 16 * nw * 16;  // dW0 loaded and stored per chunk
    }
    p.products = std::max(flop / (per_clock * d.e_math) + small_fma / (128 * d.e_math),
                          bytes / wave);
  }
  p.loops = (train ? 4 : 2) * T * kOnChipStepCycles;
  p.reduces = T * (H + C) / kClusterBlocks * kClusterBlocks / kDsmemLoadsPerClock +
              (train ? T * (C + H) / kDsmemLoadsPerClock : 0);
  p.barriers = (2 * chunks + (train ? 2 : 0)) * kClusterSyncCycles;
  p.cycles_per_sample = p.masks + p.products + p.loops + p.reduces + p.barriers;
  p.seconds = p.samples_per_cluster * p.cycles_per_sample / clock + d.launch;
  return p;
}

}  // namespace napkin
