// test_napkin_math.cpp — the counts of bench/napkin_math.hpp on cases small enough to count by
// hand, and the two workloads' totals that bench/RESULTS.md quotes. (Suite "napkin", lower
// case, so that `ctest -R napkin` selects these.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "napkin_math.hpp"
#include "nmsnn/idx.hpp"

namespace {

const napkin::Kernel& find(const std::vector<napkin::Kernel>& ks, const std::string& name) {
  for (const auto& k : ks)
    if (k.name == name) return k;
  throw std::runtime_error("no kernel " + name);
}

TEST(napkin, ProductCounts) {
  // C[2, 3] = A[2, 4] B[4, 3]: 2*3*4 multiply-adds; 8 + 12 values read, 6 written.
  EXPECT_EQ(napkin::product_flop(2, 3, 4), 48);
  EXPECT_EQ(napkin::product_bytes(2, 3, 4), 4 * (8 + 12 + 6));
}

TEST(napkin, PhiloxCounts) {
  // From sm_90 SASS: 20 IMAD.WIDE (2 slots each), 20 LOP3, 4 SHF, 4 I2FP (4 slots each).
  EXPECT_EQ(napkin::kPhiloxIntOpsPerBlock, 80);
  // 5 features need 2 blocks (features 0-3 and 4) per (t, b).
  EXPECT_EQ(napkin::philox_blocks(2, 3, 5), 12);
  EXPECT_EQ(napkin::philox_blocks(2, 3, 4), 6);
}

TEST(napkin, MaskFloorByHand) {
  const napkin::Device d = napkin::h200();
  // W1, dense input: 128 x 1000 x 196 blocks made in the forward, and again in the weight
  // gradient by sample: 25 groups of 8 quads (8 + 8 + 8 + 1 in ranges of 64 quads) x 8 stages
  // x 16 rows a sample.
  const double blocks = 128.0 * 1000 * 196, wgrad_blocks = 1000.0 * 25 * 8 * 8 * 16;
  EXPECT_DOUBLE_EQ(napkin::mask_floor_seconds(napkin::w1(), d, 80),
                   (blocks + wgrad_blocks) * 80 / (d.int32 * d.e_int));
  // About 0.30 ms at the model's count: more than 3x W1's TF32 floor (0.25 ms) by itself; 0.15
  // ms at 40 slots.
  EXPECT_GT(napkin::mask_floor_seconds(napkin::w1(), d, napkin::kPhiloxIntOpsPerBlock),
            3 * napkin::step_floor_seconds(napkin::w1(), d, napkin::Math::tf32));
  EXPECT_NEAR(napkin::mask_floor_seconds(napkin::w1(), d, 40), 151.5e-6, 0.1e-6);
  // Unit-scaled MNIST: the forward makes only its live quads' masks (14.27 of 49 stages), the
  // weight gradient its 8.25 groups a digit: 0.094 ms at 80 slots, under the 3x point.
  EXPECT_DOUBLE_EQ(napkin::mask_floor_seconds(napkin::w1_unit_mnist(), d, 80),
                   (14.27 / 49 * blocks + 1000 * 8.25 * 8 * 8 * 16) * 80 / (d.int32 * d.e_int));
  // A batch under 8 samples walks the weight gradient by rows: every quad of every row.
  napkin::StepShape few = napkin::w1();
  few.B = 7;
  EXPECT_DOUBLE_EQ(napkin::mask_floor_seconds(few, d, 80),
                   2 * 128.0 * 7 * 196 * 80 / (d.int32 * d.e_int));
  EXPECT_LT(napkin::mask_floor_seconds(napkin::w1_unit_mnist(), d, napkin::kPhiloxIntOpsPerBlock),
            3 * napkin::step_floor_seconds(napkin::w1(), d, napkin::Math::tf32));
  // A layer over 128 neurons makes its masks once per slice; a sequence input makes none.
  napkin::StepShape wide = napkin::w1();
  wide.layers = {300, 10};
  EXPECT_DOUBLE_EQ(napkin::mask_floor_seconds(wide, d, 40),
                   3 * napkin::mask_floor_seconds(napkin::w1(), d, 40));
  EXPECT_EQ(napkin::mask_floor_seconds(napkin::w2(), d, 80), 0);
}

TEST(napkin, SmallStepByHand) {
  // T = 2, B = 3, 4 noisy inputs, layers of 5 and 6 neurons.
  const napkin::StepShape s{"small", 2, 3, 4, {5, 6}, true, true};
  const auto ks = napkin::step_kernels(s);
  // Hidden layer: reads a, writes spikes and 2-byte saved spikes, per neuron-step (2*3*5 = 30).
  EXPECT_DOUBLE_EQ(find(ks, "lif_forward L0").bytes, 30 * (4 + 4 + 2));
  // Last layer: reads a, keeps 1 bit per neuron-step (2*3*6 = 36), writes 3 x 6 logits.
  EXPECT_DOUBLE_EQ(find(ks, "lif_forward L1").bytes, 36 * (4 + 1.0 / 8) + 4 * 3 * 6);
  // Backward of the hidden layer, the 6-neuron layer's products fused in: saved spike16 and du
  // per neuron-step (30), the layer above's du (6 rows x 6), weights (6 x 5) and per-sample
  // weight gradients (3 x 6 x 5), B*H bias partials; 6 FLOP a neuron-step and 4 per du above.
  const auto& back0 = find(ks, "lif_backward L0");
  EXPECT_DOUBLE_EQ(back0.bytes, 30 * (2 + 4) + 4 * (36 + 30 + 90 + 15));
  EXPECT_DOUBLE_EQ(back0.flop, 30 * (6 + 4 * 6));
  // Its bias, the layer above's dW and that layer's bias summed in one launch (whose own sum
  // is then not a kernel of its own).
  EXPECT_DOUBLE_EQ(find(ks, "bias_grad_reduce_batch L0 + L1").bytes,
                   4 * (15 + 5) + 4 * (90 + 30) + 4 * (18 + 6));
  EXPECT_FALSE(std::any_of(ks.begin(), ks.end(), [](const napkin::Kernel& k) {
    return k.name == "bias_grad_reduce L1";
  }));
  for (const auto& k : ks)
    for (const char* gone :
         {"cuBLAS input grad L1", "cuBLAS weight grad L1", "spikes_from_saved L0"})
      EXPECT_NE(k.name, gone) << "fused into lif_backward L0";
  // Unfused: saved spike16, dL/dspikes and du per neuron-step, B*H partials.
  napkin::StepShape unfused = s;
  unfused.fuse_small = false;
  const auto ku = napkin::step_kernels(unfused);
  EXPECT_DOUBLE_EQ(find(ku, "lif_backward L0").bytes, 30 * (2 + 4 + 4) + 4 * 3 * 5);
  // Masked forward: x[3, 4] and W[5, 4] read, a[6, 5] written; 6 rows x 1 Philox block.
  const auto& fwd = find(ks, "masked_linear_forward L0");
  EXPECT_DOUBLE_EQ(fwd.bytes, 4 * (12 + 20 + 30));
  EXPECT_DOUBLE_EQ(fwd.flop, 2 * 6 * 5 * 4);
  EXPECT_DOUBLE_EQ(fwd.int_ops, 6 * 80);
  // Its loop: FP32, one tile of 128 x 64, one stage of 16 features: 8 warps x the counted
  // instructions per stage; TF32 and BF16, one block of 4 warps (32 rows each), one stage: 4 x
  // the counted warp-stage (N = 5: the narrowest class; on wgmma, the design). The weight
  // gradient: FP32 likewise (one split of 6 rows); mma.sync one warp with features (K = 4), one
  // stage.
  EXPECT_DOUBLE_EQ(fwd.warp_instructions[0], 8 * napkin::kSimtForwardLoop);
  // (T = 2: no arranged tiles, W staged from its quads.)
  EXPECT_DOUBLE_EQ(fwd.warp_instructions[1], 4 * napkin::kWgmmaForwardStagingLoop[0][0]);
  EXPECT_DOUBLE_EQ(fwd.warp_instructions[2], 4 * napkin::kWgmmaForwardStagingLoop[0][1]);
  EXPECT_FALSE(std::any_of(ks.begin(), ks.end(), [](const napkin::Kernel& k) {
    return k.name == "masked_linear_weight_tiles L0";
  }));
  EXPECT_DOUBLE_EQ(fwd.mma_instructions[1], 0);
  EXPECT_DOUBLE_EQ(find(ks, "masked_linear_wgrad L0").warp_instructions[0],
                   8 * napkin::kSimtWgradLoop);
  EXPECT_DOUBLE_EQ(find(ks, "masked_linear_wgrad L0").warp_instructions[1],
                   napkin::kMmaWgradLoop[0][0]);
  // Kernels whose other bounds cover their issue count none.
  EXPECT_DOUBLE_EQ(find(ks, "lif_forward L0").warp_instructions[1], 0);
  // Second layer's products: M = 6 rows, 6 neurons, 5 inputs.
  EXPECT_DOUBLE_EQ(find(ks, "cuBLAS forward L1").flop, 2 * 6 * 6 * 5);
  EXPECT_DOUBLE_EQ(find(ku, "cuBLAS input grad L1").bytes, 4 * (6 * 6 + 5 * 6 + 6 * 5));
  // SGD: (5*4 + 5) + (6*5 + 6) = 61 parameters; param and momentum read and written, grad read.
  EXPECT_DOUBLE_EQ(find(ks, "sgd_update").bytes, 4 * 5 * 61);
  // With the FP32 u kept instead: 4 bytes saved per neuron-step, read back in backward.
  napkin::StepShape fp32 = unfused;
  fp32.compact = false;
  const auto kf = napkin::step_kernels(fp32);
  EXPECT_DOUBLE_EQ(find(kf, "lif_forward L0").bytes, 30 * (4 + 4 + 4));
  EXPECT_DOUBLE_EQ(find(kf, "spikes_from_saved L0").bytes, 30 * (4 + 4));
  // Too few rows to split the weight gradient: no reduction kernel.
  EXPECT_EQ(napkin::wgrad_splits(6, 5, 4), 1);
  for (const auto& k : ks) EXPECT_NE(k.name, "reduce_partials L0");
}

// kMnistLiveStagesPerDigit from the data: for each of MNIST's 60000 training digits, the quads
// of 4 pixels with a nonzero one, in stages of 4 (what the forward block of that digit walks).
TEST(napkin, MnistLiveStages) {
  const nmsnn::IdxArray images =
      nmsnn::read_idx(NMSNN_SOURCE_DIR "/data/mnist/train-images-idx3-ubyte.gz");
  ASSERT_EQ(images.dims, (std::vector<int>{60000, 28, 28}));
  double stages = 0;
  for (size_t b = 0; b < 60000; ++b) {
    const uint8_t* digit = images.data.data() + b * 784;
    int live = 0;
    for (int c = 0; c < 196; ++c)
      live += digit[4 * c] || digit[4 * c + 1] || digit[4 * c + 2] || digit[4 * c + 3];
    stages += (live + 3) / 4;
  }
  EXPECT_NEAR(stages / 60000, napkin::kMnistLiveStagesPerDigit, 0.005);
  EXPECT_EQ(napkin::kMnistDenseStages, 784 / 16);
}

// kMnistLiveWgradTasksPerDigit and kMnistLiveWgradRangesPerDigit from the data: in each range of
// 64 quads, a digit's groups of 8 live quads (the weight gradient's tasks) and whether it has one.
TEST(napkin, MnistLiveWgradTasks) {
  const nmsnn::IdxArray images =
      nmsnn::read_idx(NMSNN_SOURCE_DIR "/data/mnist/train-images-idx3-ubyte.gz");
  ASSERT_EQ(images.dims, (std::vector<int>{60000, 28, 28}));
  double tasks = 0, ranges = 0;
  for (size_t b = 0; b < 60000; ++b) {
    const uint8_t* digit = images.data.data() + b * 784;
    for (int q0 = 0; q0 < 196; q0 += 64) {
      int live = 0;
      for (int c = q0; c < std::min(q0 + 64, 196); ++c)
        live += digit[4 * c] || digit[4 * c + 1] || digit[4 * c + 2] || digit[4 * c + 3];
      tasks += (live + 7) / 8;
      ranges += live > 0;
    }
  }
  EXPECT_NEAR(tasks / 60000, napkin::kMnistLiveWgradTasksPerDigit, 0.005);
  EXPECT_NEAR(ranges / 60000, napkin::kMnistLiveWgradRangesPerDigit, 0.005);
}

TEST(napkin, Workloads) {
  // W1: 2*(2*M*100*784) + 3*(2*M*10*100) with M = 128 * 1000.
  EXPECT_DOUBLE_EQ(napkin::step_product_flop(napkin::w1()), 40'908'800'000.0);
  const auto w1 = napkin::step_kernels(napkin::w1());
  // ~100M uniforms per pass: 128 * 1000 * 196 Philox blocks, made once for 100 neurons.
  EXPECT_DOUBLE_EQ(find(w1, "masked_linear_forward L0").int_ops, 128.0 * 1000 * 196 * 80);
  // The weight gradient by sample: 25 groups x 8 stages x 8 quads x 16 rows a sample.
  EXPECT_DOUBLE_EQ(find(w1, "masked_linear_wgrad L0").int_ops, 1000.0 * 25 * 8 * 128 * 80);
  // On unit-scaled MNIST the forward makes the masks, and does the products, of its live quads
  // only: 14.27 of 49 stages a digit; the FP32 loop (which walks them all) is left as it is.
  const auto mnist = napkin::step_kernels(napkin::w1_unit_mnist());
  const auto& live = find(mnist, "masked_linear_forward L0");
  auto near = [](double got, double want) { EXPECT_NEAR(got, want, 1e-12 * want); };
  near(live.int_ops, 128.0 * 1000 * 196 * 80 * 14.27 / 49);
  near(live.flop, 2 * 128000.0 * 100 * 784 * 14.27 / 49);
  // Its blocks have zero quads left out, so they stage W from its quads; a dense input's copy it
  // from the arranged tiles, which a kernel of their own makes (W read, 50 groups of 104 neurons
  // x 16 words written).
  near(live.warp_instructions[1], 1000 * 4 * 14.27 * napkin::kWgmmaForwardStagingLoop[1][0]);
  EXPECT_DOUBLE_EQ(find(w1, "masked_linear_forward L0").warp_instructions[1],
                   196000.0 * napkin::kWgmmaForwardLoop[1][0]);
  EXPECT_DOUBLE_EQ(find(w1, "masked_linear_weight_tiles L0").bytes,
                   4.0 * (100 * 784 + 50 * 104 * 16));
  const napkin::Device h200 = napkin::h200();
  EXPECT_STREQ(napkin::predict(find(w1, "masked_linear_weight_tiles L0"), h200,
                               napkin::Math::fp32).bound, "not run");
  EXPECT_STREQ(napkin::predict(find(w1, "masked_linear_weight_tiles L0"), h200,
                               napkin::Math::tf32).bound, "launch");
  EXPECT_DOUBLE_EQ(live.warp_instructions[0],
                   find(w1, "masked_linear_forward L0").warp_instructions[0]);
  EXPECT_DOUBLE_EQ(napkin::step_product_flop(napkin::w1_unit_mnist()),
                   napkin::step_product_flop(napkin::w1()));
  EXPECT_EQ(napkin::wgrad_splits(128000, 100, 784), 64);
  // FP32 block-stages: forward 2000 row tiles x 49 stages of 16 features; weight gradient 13
  // feature tiles x 64 splits x 125 stages of 16 rows (2000 rows each).
  EXPECT_DOUBLE_EQ(napkin::masked_forward_block_stages(128000, 100, 784), 2000.0 * 49);
  EXPECT_DOUBLE_EQ(napkin::masked_wgrad_block_stages(128000, 100, 784), 13.0 * 64 * 125);
  // mma.sync warp-stages: forward 1000 blocks x 4 warps x 49 stages (N = 100 in one slice of
  // 13 n8 tiles); weight gradient 25 strips of 32 features (784 / 32 = 24.5) x 64 splits x 125
  // stages (N = 100 in 7 m16 tiles).
  EXPECT_DOUBLE_EQ(napkin::mma_forward_warp_stages(128000, 100, 784), 1000.0 * 4 * 49);
  EXPECT_DOUBLE_EQ(napkin::mma_wgrad_warp_stages(128000, 100, 784), 25.0 * 64 * 125);
  // By sample (BF16) on mma.sync (MT = 7): 25,000 tasks x 8 stages of the counted loop less its
  // 4 staging items; 4,000 sample-ranges x 8 stages x 224 items (8 row pairs x 28 chunks of 4
  // neurons) on 32 lanes; 25,000 tasks x 28 float4 adds. On wgmma (NT = 13, the design): its
  // own loop (a round of one sample's path), 208 items (26 chunks) and the adds' loop a task
  // (26 float4 as counted in SASS).
  napkin::StepShape on_mma_sync = napkin::w1();
  on_mma_sync.wgmma = false;
  EXPECT_DOUBLE_EQ(find(napkin::step_kernels(on_mma_sync), "masked_linear_wgrad L0")
                       .warp_instructions[2],
                   25000.0 * 8 *
                           (napkin::kMmaLiveWgradLoop[1][1] - 4 * napkin::kLiveStagingItem[1]) +
                       4000.0 * 8 * 224 * napkin::kLiveStagingItem[1] / 32 +
                       25000.0 * 28 * napkin::kLiveAddPerFloat4);
  EXPECT_DOUBLE_EQ(find(w1, "masked_linear_wgrad L0").warp_instructions[2],
                   25000.0 * 8 *
                           (napkin::kWgmmaLiveWgradLoop[1][1] - 4 * napkin::kLiveStagingItem[1]) +
                       4000.0 * 8 * 208 * napkin::kLiveStagingItem[1] / 32 +
                       25000.0 * napkin::kWgmmaLiveAddLoop[1]);
  // Two slices of 128 neurons (N = 200): each makes its masks, and the FLOP are the layer's.
  napkin::StepShape wide = napkin::w1();
  wide.layers = {200, 10};
  const auto wide_kernels = napkin::step_kernels(wide);
  const auto& wide_wgrad = find(wide_kernels, "masked_linear_wgrad L0");
  EXPECT_DOUBLE_EQ(wide_wgrad.flop, 1000.0 * 25 * 8 * 2 * 16 * 32 * 200);
  EXPECT_DOUBLE_EQ(wide_wgrad.int_ops, 2 * 1000.0 * 25 * 8 * 128 * 80);
  EXPECT_EQ(napkin::live_wgrad_dense_tasks(784), 25);
  EXPECT_EQ(napkin::live_wgrad_ranges(784), 4);
  EXPECT_EQ(napkin::live_wgrad_splits(1000, 100, 784), 63);  // 16 samples each
  EXPECT_TRUE(napkin::wgrad_by_sample(16, 8));
  EXPECT_FALSE(napkin::wgrad_by_sample(15, 1000));
  EXPECT_FALSE(napkin::wgrad_by_sample(128, 7));
  // Wider layers: slices of 128 neurons in the widest class.
  EXPECT_DOUBLE_EQ(napkin::mma_forward_warp_stages(128, 200, 16), 4.0 * 2);
  EXPECT_EQ(napkin::mma_forward_class(104), 1);
  EXPECT_EQ(napkin::mma_forward_class(105), 2);
  EXPECT_EQ(napkin::mma_wgrad_class(112), 1);
  // In TF32 and BF16 the forward runs the time loop in the same kernel (T = 128 divides 128,
  // 100 neurons): 196,000 warp-stages x 508 instructions (its main loop), 1000 blocks x 4
  // warp-passes x 128 steps of the tail's loop, and the output layer's product (below), at 0.8 x
  // 4 a clock x 132 SMs x 1.98 GHz: 139 us; its Philox work at the integer rate (25.1M blocks x
  // 80 slots at 0.8 x 64 a clock) 150 us; its mma.sync instructions (196,000 warp-stages x 2 row
  // tiles x 13 n8 tiles x 2 in TF32, and the output layer's 1000 x 4 warps x 7 stages x 4 tiles
  // x 2) at 16 cycles each on 4 x 132 schedulers at 1.98 GHz: 159 us, which bounds it (80 us in
  // BF16: one m16n8k16 where TF32 takes two m16n8k8). The FP32 loops are bound by issue; the TF32
  // weight gradient by sample by its mma.sync too (25,000 tasks x 8 stages x 7 x 4 tiles x 2:
  // 171 us, against 25.6M Philox blocks: 153 us).
  const napkin::Device d = napkin::h200();
  // These are the forward on mma.sync (StepShape::wgmma false: a build without sm_90a); the
  // design's forward on wgmma follows.
  napkin::StepShape w1_mma_shape = napkin::w1();
  w1_mma_shape.wgmma = false;
  const auto w1_mma = napkin::step_kernels(w1_mma_shape);
  const auto& fwd = find(w1_mma, "masked_linear_lif_forward L0");
  const auto& wgrad = find(w1_mma, "masked_linear_wgrad L0");
  const double issue = 0.8 * 4 * 132 * 1.98e9;
  // The output layer's product (10 neurons) is made in the same kernel: per block its weights
  // staged (64 a thread), and per warp 7 stages of 16 hidden neurons and its stores (48); the
  // tail's loop puts the spikes in the tile (spike16 codes written, 417 a pass of 16 steps).
  EXPECT_NEAR(napkin::predict(fwd, d, napkin::Math::tf32).issue,
              (196000.0 * napkin::kMmaLifForwardLoop[1][0] +
               1000.0 * 4 * 128 * napkin::kLifTailNextLoop[2][0] / 16 +
               1000.0 * 4 * (64 + 7 * napkin::kNextProductLoop[0] + 48)) /
                  issue,
              1e-12);
  // Philox at the slots the H200 measured (one pass of W1's masks alone: 0.086 ms).
  EXPECT_NEAR(napkin::predict(fwd, d, napkin::Math::tf32).integer,
              128000.0 * 196 * d.philox_slots / (0.8 * 64 * 132 * 1.98e9), 1e-12);
  EXPECT_NEAR(128000.0 * 196 * d.philox_slots / (0.8 * 64 * 132 * 1.98e9), 0.086e-3, 1e-12);
  EXPECT_NEAR(d.philox_slots, 45.9, 0.05);
  const double schedulers = 4 * 132 * 1.98e9;
  EXPECT_DOUBLE_EQ(fwd.mma_instructions[1], 196000.0 * 52 + 1000.0 * 4 * 7 * 8);
  EXPECT_DOUBLE_EQ(fwd.mma_instructions[2], 196000.0 * 26 + 1000.0 * 4 * 7 * 4);
  EXPECT_NEAR(napkin::predict(fwd, d, napkin::Math::tf32).tensor,
              (196000.0 * 52 + 1000.0 * 4 * 7 * 8) * 16 / schedulers, 1e-12);
  EXPECT_STREQ(napkin::predict(fwd, d, napkin::Math::tf32).bound, "mma.sync");
  // On wgmma the same kernel issues its counted sm_90a loop (4 HGMMA a TF32 warp-stage), and its
  // product's tensor work is FLOP at the dense rate (0.8 x 494 TFLOP/s: 52 us); only the layer
  // above's product is still mma.sync. Its issue (128 us) then bounds it, over its Philox work
  // at the measured rate (86 us).
  const auto& fwd_wgmma = find(w1, "masked_linear_lif_forward L0");
  EXPECT_NEAR(napkin::predict(fwd_wgmma, d, napkin::Math::tf32).issue,
              (196000.0 * napkin::kWgmmaLifForwardLoop[1][0] +
               1000.0 * 4 * 128 * napkin::kLifTailNextLoop[2][0] / 16 +
               1000.0 * 4 * (64 + 7 * napkin::kNextProductLoop[0] + 48)) /
                  issue,
              1e-12);
  EXPECT_DOUBLE_EQ(fwd_wgmma.mma_instructions[1], 1000.0 * 4 * 7 * 8);
  EXPECT_DOUBLE_EQ(fwd_wgmma.mma_instructions[2], 1000.0 * 4 * 7 * 4);
  EXPECT_NEAR(napkin::predict(fwd_wgmma, d, napkin::Math::tf32).math,
              fwd_wgmma.flop / (0.8 * 494e12), 1e-12);
  EXPECT_DOUBLE_EQ(fwd_wgmma.flop, fwd.flop);
  EXPECT_STREQ(napkin::predict(fwd_wgmma, d, napkin::Math::tf32).bound, "issue");
  EXPECT_LT(napkin::predict(fwd_wgmma, d, napkin::Math::tf32).total,
            napkin::predict(fwd, d, napkin::Math::tf32).total);
  // a [T, B, 100] in FP32 is neither written nor read back, nor the spikes: x, W and the output
  // layer's W read, the spike16 codes and the output layer's current [T, B, 10] written.
  EXPECT_DOUBLE_EQ(fwd.bytes, 4.0 * (1000 * 784 + 100 * 784 + 10 * 100) + 128000.0 * 100 * 2 +
                                  4.0 * 128000 * 10);
  EXPECT_DOUBLE_EQ(fwd.flop, 2.0 * 128000 * 100 * 784 + 7.0 * 128000 * 100 +
                                 2.0 * 128000 * 10 * 100);
  // So cuBLAS runs that product in FP32 only; layer by layer (fuse_small_layers off) in all three.
  EXPECT_STREQ(napkin::predict(find(w1, "cuBLAS forward L1"), d, napkin::Math::tf32).bound,
               "not run");
  napkin::StepShape layered = napkin::w1();
  layered.fuse_small = false;
  const auto kl = napkin::step_kernels(layered);
  EXPECT_DOUBLE_EQ(find(kl, "masked_linear_lif_forward L0").bytes,
                   4.0 * (1000 * 784 + 100 * 784) + 128000.0 * 100 * (4 + 2));
  EXPECT_NEAR(napkin::predict(find(kl, "masked_linear_lif_forward L0"), d, napkin::Math::tf32).issue,
              (196000.0 * napkin::kWgmmaLifForwardLoop[1][0] +
               1000.0 * 4 * 128 * napkin::kLifTailLoop[2][0] / 16) / issue,
              1e-12);
  EXPECT_GT(napkin::predict(find(kl, "cuBLAS forward L1"), d, napkin::Math::tf32).total, 0);
  // The 16-bit masks what-if: 8 uniforms a Philox block at 68 integer slots (34 per 4 masks),
  // and half of the 224 mask instructions of a TF32 warp-stage left out (its 4 blocks of 4).
  napkin::StepShape masks16 = napkin::w1();
  masks16.masks16 = true;
  const auto k16 = napkin::step_kernels(masks16);
  EXPECT_DOUBLE_EQ(find(k16, "masked_linear_lif_forward L0").int_ops, 128000.0 * 196 * 34);
  EXPECT_DOUBLE_EQ(find(k16, "masked_linear_forward L0").warp_instructions[1],
                   196000.0 * (napkin::kWgmmaForwardLoop[1][0] - 112));
  // FP32 runs the product and the loop apart; TF32 and BF16 only the fused kernel.
  const auto& apart = find(w1, "masked_linear_forward L0");
  EXPECT_STREQ(napkin::predict(apart, d, napkin::Math::fp32).bound, "issue");
  EXPECT_STREQ(napkin::predict(apart, d, napkin::Math::tf32).bound, "not run");
  EXPECT_EQ(napkin::predict(find(w1, "lif_forward L0"), d, napkin::Math::bf16).total, 0);
  EXPECT_EQ(napkin::predict(fwd, d, napkin::Math::fp32).total, 0);
  EXPECT_STREQ(napkin::predict(wgrad, d, napkin::Math::fp32).bound, "issue");
  EXPECT_DOUBLE_EQ(wgrad.mma_instructions[1], 25000.0 * 8 * 56);
  EXPECT_DOUBLE_EQ(wgrad.mma_instructions[2], 25000.0 * 8 * 28);
  EXPECT_STREQ(napkin::predict(wgrad, d, napkin::Math::tf32).bound, "mma.sync");
  EXPECT_STREQ(napkin::predict(wgrad, d, napkin::Math::bf16).bound, "issue");
  // On wgmma no mma.sync is left: the TF32 weight gradient is bound by its issue (25,000 tasks
  // x 8 stages of its loop and the staging), below the mma.sync bound above.
  const auto& wgrad_wgmma = find(w1, "masked_linear_wgrad L0");
  EXPECT_DOUBLE_EQ(wgrad_wgmma.mma_instructions[1], 0);
  EXPECT_DOUBLE_EQ(wgrad_wgmma.flop, wgrad.flop);
  EXPECT_STREQ(napkin::predict(wgrad_wgmma, d, napkin::Math::tf32).bound, "issue");
  EXPECT_LT(napkin::predict(wgrad_wgmma, d, napkin::Math::tf32).total,
            napkin::predict(wgrad, d, napkin::Math::tf32).total);
  // Walked by rows (B < 8), a warp-stage of the weight gradient is 7 x 4 tiles too.
  napkin::StepShape few = napkin::w1();
  few.B = 4;
  const auto few_kernels = napkin::step_kernels(few);
  const auto& rows = find(few_kernels, "masked_linear_wgrad L0");
  EXPECT_DOUBLE_EQ(rows.mma_instructions[1],
                   napkin::mma_wgrad_warp_stages(512, 100, 784) * 56);
  EXPECT_DOUBLE_EQ(rows.mma_instructions[2],
                   napkin::mma_wgrad_warp_stages(512, 100, 784) * 28);
  // W2: forward and weight gradient of Linear(16384, 16384) over 500 * 16 rows.
  EXPECT_DOUBLE_EQ(napkin::step_product_flop(napkin::w2()), 2 * 2 * 8000.0 * 16384 * 16384);
  // forward, its BF16 operands, lif_forward, lif_backward, weight gradient, its BF16 operands
  // (no bias partials: T*B rows of a given sequence reduce in the loop's kernel).
  const auto w2 = napkin::step_kernels(napkin::w2());
  ASSERT_EQ(w2.size(), 7u);
  // In BF16 the forward's operands, x [8000, 16384] and W [16384, 16384], go to BF16 arrays
  // first: 4 bytes read and 2 written a value; that kernel runs in BF16 only.
  const auto& round = find(w2, "round_to_bf16 (cuBLAS forward L0)");
  EXPECT_DOUBLE_EQ(round.bytes, 6 * (8000.0 * 16384 + 16384.0 * 16384));
  EXPECT_STREQ(napkin::predict(round, d, napkin::Math::tf32).bound, "not run");
  EXPECT_STREQ(napkin::predict(round, d, napkin::Math::bf16).bound, "memory");
  EXPECT_DOUBLE_EQ(find(w2, "round_to_bf16 (cuBLAS weight grad L0)").bytes,
                   6 * (8000.0 * 16384 * 2));
}

TEST(napkin, ClusterForwardByHand) {
  const napkin::Device d = napkin::h200();
  // 16 clusters of 8 on 132 SMs; 17 samples: two rounds. T = 4, I = 64 (16 Philox blocks a
  // step, 2 per block of the cluster), H = 8, C = 8.
  napkin::StepShape s{"small", 4, 17, 64, {8, 8}, true, false};
  const napkin::ClusterPrediction p = napkin::sample_cluster_prediction(s, d, false);
  EXPECT_EQ(p.samples_per_cluster, 2);
  EXPECT_DOUBLE_EQ(p.masks, 4 * 2 * 80 / (64 * 0.8));
  // FMAs 4 x 8 x 8 + 4 x 8 x 8 / 8 at 128 x 0.8 a clock: 2.8 clocks; the register tiles' loads,
  // 4 x 8 x 8 / 64 wavefronts of 128 bytes at 128 x 0.9 bytes a clock: 4.4, the bound.
  ASSERT_LT(4 * (8 * 64 + 8 * 8) / 8.0 / (128 * 0.8), 4 * 8 * 8 / 64.0 / 0.9);
  EXPECT_DOUBLE_EQ(p.products, 4 * 8 * 8 / 64.0 * 128 / (128 * 0.9));
  EXPECT_DOUBLE_EQ(p.loops, 2 * 4 * 25.0);
  EXPECT_DOUBLE_EQ(p.reduces, 4 * 16 / 8.0);
  EXPECT_EQ(p.time_chunk, 4);
  EXPECT_DOUBLE_EQ(p.barriers, 2 * 400.0);  // after the partial currents and the output partial
  const double clock = 1.98e9;
  EXPECT_NEAR(p.seconds,
              2 * (p.masks + p.products + p.loops + p.reduces + p.barriers) / clock + d.launch,
              1e-15);
  // The training step: the weight gradient's product, the backward loops, du1 and du0 gathered.
  const napkin::ClusterPrediction q = napkin::sample_cluster_prediction(s, d, true);
  EXPECT_DOUBLE_EQ(q.masks, p.masks);
  EXPECT_DOUBLE_EQ(q.products, 2 * p.products);
  EXPECT_DOUBLE_EQ(q.loops, 4 * 4 * 25.0);
  EXPECT_DOUBLE_EQ(q.reduces, 4 * 16 / 8.0 + 4 * 16 / 8.0);
  EXPECT_DOUBLE_EQ(q.barriers, 4 * 400.0);
  // The inference pass layer by layer: a product and a loop per layer, the loops latency bound.
  // FP32 runs the first layer's product and loop apart; TF32 and BF16 as one kernel.
  // The second layer's product and its BF16 operands run in FP32 only and not at all.
  const auto ks = napkin::inference_kernels(s);
  ASSERT_EQ(ks.size(), 6u);
  EXPECT_EQ(ks[0].name, "masked_linear_forward L0");
  EXPECT_EQ(ks[2].name, "masked_linear_lif_forward L0");
  EXPECT_EQ(ks[4].name, "round_to_bf16 (cuBLAS forward L1)");
  EXPECT_STREQ(napkin::predict(ks[4], d, napkin::Math::bf16).bound, "not run");
  EXPECT_EQ(ks[5].name, "lif_forward L1");
  EXPECT_DOUBLE_EQ(ks[1].bytes, 4.0 * (4 * 17 * 8) * 2);    // reads a, writes the spikes
  EXPECT_DOUBLE_EQ(ks[5].bytes, 4.0 * (4 * 17 * 8 + 17 * 8));  // reads a, writes the logits
  // Reads x, W and the second layer's W, writes the second layer's current (8 neurons: made in
  // the same kernel, the spikes kept in shared memory); its main loop as counted in it, the tail
  // (one block of 68 rows: 17 samples x 8 neurons in 5 warp-passes of 4 steps, nothing written
  // but the spikes to the tile), and the second layer's product: the staging, one stage of 16
  // and the stores per warp.
  EXPECT_DOUBLE_EQ(ks[2].bytes, 4.0 * (17 * 64 + 8 * 64 + 8 * 8 + 4 * 17 * 8));
  EXPECT_DOUBLE_EQ(ks[2].warp_instructions[1],
                   ks[0].warp_instructions[1] * napkin::kWgmmaLifForwardStagingLoop[0][0] /
                           napkin::kWgmmaForwardStagingLoop[0][0] +
                       5 * 4 * napkin::kLifTailNextLoop[0][0] / 16 +
                       4 * (64 + napkin::kNextProductLoop[0] + 48));
  EXPECT_STREQ(napkin::predict(ks[3], d, napkin::Math::bf16).bound, "not run");
}

// The seed network by clusters: FP32 products bound by their shared-memory loads (8 per 16 FMAs
// a thread, a wavefront per warp-wide load); TF32 training in two time chunks (80 + 48 steps, as
// sample_cluster.cu's plan: tests/test_cuda_kernels.cpp SeedNetworkPlans), its fragments' loads
// counted tile by tile.
TEST(napkin, ClusterSeedNetworkByHand) {
  const napkin::Device d = napkin::h200();
  const napkin::StepShape w1 = napkin::w1();  // T = 128, I = 784 (F = 100 a block), 100, 10
  const double shared = 128 * 0.9;            // bytes a clock an SM reads from shared memory
  const auto fp32 = napkin::sample_cluster_prediction(w1, d, false);
  EXPECT_EQ(fp32.time_chunk, 128);
  EXPECT_DOUBLE_EQ(fp32.products, 128.0 * 100 * 100 / 64 * 128 / shared);
  EXPECT_DOUBLE_EQ(fp32.samples_per_cluster, 63);  // 1000 samples on 16 clusters

  const auto tf32 = napkin::sample_cluster_prediction(w1, d, true, napkin::Math::tf32);
  EXPECT_EQ(tf32.time_chunk, 80);
  // Forward: 8 + ... row tiles (5 for 80 steps, 3 for 48), 7 column tiles (H 100 -> 112), 13
  // steps of 8 features; dW0: 7 x 7 tiles (F 100 -> 112), 10 + 6 steps of 8 time steps.
  const double frag = 16 * 8 * 4;
  const double bytes = frag * 13 * (8 * 4 + 7 * (3 + 2)) + 4.0 * 128 * 112 +  // forward
                       frag * 16 * (7 * 4 + 7 * 4) + 2 * 2 * 4.0 * 112 * 112;  // dW0
  const double flop = 2.0 * 16 * 16 * 8 * (8 * 7 * 13 + 7 * 7 * 16);
  const double tf32_clock = 494e12 / (132 * 1.98e9);
  ASSERT_GT(bytes / shared, flop / (tf32_clock * 0.8) + 128.0 * 10 * 100 / 8 / (128 * 0.8))
      << "by these counts the products wait on shared memory";
  EXPECT_NEAR(tf32.products, bytes / shared, 1e-9);
  EXPECT_DOUBLE_EQ(tf32.barriers, (2 * 2 + 2) * 400.0);

  // BF16: 2-byte operands, so the whole sample's currents fit (one chunk); m16n16k16 tiles: 13
  // -> 7 steps of 16 features, 8 steps of 16 time steps for dW0, fragments of 16 x 16 values.
  const auto bf16 = napkin::sample_cluster_prediction(w1, d, true, napkin::Math::bf16);
  EXPECT_EQ(bf16.time_chunk, 128);
  const double bf16_bytes = frag * 7 * (8 * 4 + 7 * 4) + 4.0 * 128 * 112 +  // forward
                            frag * 8 * (7 * 4 + 7 * 4) + 2 * 4.0 * 112 * 112;  // dW0
  EXPECT_NEAR(bf16.products, bf16_bytes / shared, 1e-9);
  EXPECT_DOUBLE_EQ(bf16.barriers, (2 + 2) * 400.0);
  EXPECT_LT(bf16.seconds, tf32.seconds);
}

TEST(napkin, Prediction) {
  const napkin::Device d = napkin::h200();
  // 4.32 GB at 0.9 x 4.8 TB/s is 1 ms, memory bound.
  const napkin::Kernel copy{"copy", "", 4.32e9, 0, 0, 0, false};
  const auto p = napkin::predict(copy, d, napkin::Math::fp32);
  EXPECT_NEAR(p.total, 1e-3, 1e-12);
  EXPECT_STREQ(p.bound, "memory");
  // A tiny kernel costs the launch.
  EXPECT_EQ(napkin::predict({"tiny", "", 4, 1, 0, 0, false}, d, napkin::Math::fp32).total, d.launch);
  // 1 TFLOP on the tensor cores (TF32, BF16) or the CUDA cores (FP32), at 0.8 of each peak.
  const napkin::Kernel gemm{"gemm", "", 0, 1e12, 0, 0, true};
  EXPECT_NEAR(napkin::predict(gemm, d, napkin::Math::tf32).total, 1e12 / (494e12 * 0.8), 1e-12);
  EXPECT_NEAR(napkin::predict(gemm, d, napkin::Math::bf16).total, 1e12 / (989e12 * 0.8), 1e-12);
  EXPECT_NEAR(napkin::predict(gemm, d, napkin::Math::fp32).total, 1e12 / (67e12 * 0.8), 1e-12);
  EXPECT_STREQ(napkin::predict(gemm, d, napkin::Math::tf32).bound, "math");
  // Philox: W1's masks of one pass, counted at 80 slots a block, priced at the slots the H200
  // measured (0.086 ms for the pass); a device at 80 slots prices them as counted.
  const napkin::Kernel masks{"masks", "", 0, 0, napkin::philox_blocks(128, 1000, 784) * 80, 0, false};
  EXPECT_NEAR(napkin::predict(masks, d, napkin::Math::tf32).total, 0.086e-3, 1e-12);
  napkin::Device counted = d;
  counted.philox_slots = napkin::kPhiloxIntOpsPerBlock;
  EXPECT_NEAR(napkin::predict(masks, counted, napkin::Math::tf32).total,
              25'088'000.0 * 80 / (132 * 64 * 1.98e9 * 0.8), 1e-12);
  // 1 G warp instructions at 0.8 x 4 a clock x 132 SMs x 1.98 GHz.
  napkin::Kernel loop{"loop", "", 0, 0, 0, 0, false};
  loop.warp_instructions[1] = 1e9;
  EXPECT_NEAR(napkin::predict(loop, d, napkin::Math::tf32).total, 1e9 / (0.8 * 4 * 132 * 1.98e9),
              1e-12);
  EXPECT_STREQ(napkin::predict(loop, d, napkin::Math::tf32).bound, "issue");
  EXPECT_EQ(napkin::predict(loop, d, napkin::Math::bf16).total, d.launch);  // none counted there
  // 1 G mma.sync instructions at 16 tensor-pipe cycles each on 4 x 132 schedulers at 1.98 GHz.
  napkin::Kernel mma{"mma", "", 0, 0, 0, 0, true};
  mma.mma_instructions[2] = 1e9;
  EXPECT_NEAR(napkin::predict(mma, d, napkin::Math::bf16).total, 16e9 / (4 * 132 * 1.98e9), 1e-12);
  EXPECT_STREQ(napkin::predict(mma, d, napkin::Math::bf16).bound, "mma.sync");
  // The W1 step is slower than its TF32 floor, and W2 in BF16 faster than in TF32.
  EXPECT_GT(napkin::step_seconds(napkin::w1(), d, napkin::Math::tf32),
            napkin::step_floor_seconds(napkin::w1(), d, napkin::Math::tf32));
  EXPECT_LT(napkin::step_seconds(napkin::w2(), d, napkin::Math::bf16),
            napkin::step_seconds(napkin::w2(), d, napkin::Math::tf32));
}

}  // namespace

// Issue 13's point: the predicted W1 step in TF32 within 3x its TF32 floor (the products' 40.9
// GFLOP at 494 TFLOP/s), and BF16 below TF32. The margin is printed: a kernel change that makes
// the counted loops longer shows here first.
TEST(napkin, W1WithinThreeTimesTheTf32Floor) {
  const napkin::Device d = napkin::h200();
  const double floor = napkin::step_floor_seconds(napkin::w1(), d, napkin::Math::tf32);
  const double tf32 = napkin::step_seconds(napkin::w1(), d, napkin::Math::tf32);
  const double bf16 = napkin::step_seconds(napkin::w1(), d, napkin::Math::bf16);
  std::printf("W1 predicted: TF32 %.4f ms (%.3fx the TF32 floor %.4f ms), BF16 %.4f ms\n",
              tf32 * 1e3, tf32 / floor, floor * 1e3, bf16 * 1e3);
  EXPECT_LE(tf32, 3 * floor);
  EXPECT_LT(bf16, tf32);
}
