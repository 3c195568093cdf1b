// napkin_table.cpp — prints bench/RESULTS.md's "Predicted (napkin math, not measured)" tables:
// every kernel of a W1 and a W2 step with its bytes, FLOP, Philox integer work and (where
// counted from the SASS) the warp instructions its loops issue, and its predicted time on an
// H200 per precision (bench/napkin_math.hpp holds the model).
//
//   build/bench/napkin_table > predicted.md
#include <cstdio>

#include "napkin_math.hpp"

namespace {

using napkin::Math;

constexpr Math kMaths[] = {Math::fp32, Math::tf32, Math::bf16};

void kernel_table(const napkin::StepShape& s, const napkin::Device& d) {
  std::printf("\n%s: T = %d, B = %d, inputs %d, spiking layers", s.name, s.T, s.B, s.I);
  for (int h : s.layers) std::printf(" %d", h);
  std::printf(", %s input, %s", s.noisy ? "noise-encoded" : "sequence",
              s.update ? "forward + loss + backward + SGD" : "forward + backward");
  if (s.forward_stages < 1)
    std::printf("; the TF32 and BF16 forward walks %.1f%% of a dense input's stages (its "
                "samples' live quads), the weight gradient %.2f groups of 8 live quads a sample "
                "(a dense input: %.0f)",
                100 * s.forward_stages, s.wgrad_tasks, napkin::live_wgrad_dense_tasks(s.I));
  std::printf("\n\n");
  std::printf("| kernel | design assumed | MB | GFLOP | G int ops | M warp instr fp32 / tf32 / "
              "bf16 | fp32 us | tf32 us | bf16 us | bound (tf32) |\n");
  std::printf("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
  double total[3] = {0, 0, 0}, bytes = 0, flop = 0, ints = 0;
  for (const napkin::Kernel& k : napkin::step_kernels(s)) {
    std::printf("| %s | %s | %.1f | %.3f | %.2f | ", k.name.c_str(), k.design.c_str(),
                k.bytes / 1e6, k.flop / 1e9, k.int_ops / 1e9);
    if (k.warp_instructions[1] > 0) {
      for (int i = 0; i < 3; ++i) {
        if (k.runs[i])
          std::printf("%.0f", k.warp_instructions[i] / 1e6);
        else
          std::printf("-");
        if (i < 2) std::printf(" / ");
      }
    }
    for (int i = 0; i < 3; ++i) {
      const double t = napkin::predict(k, d, kMaths[i]).total;
      total[i] += t;
      if (k.runs[i])
        std::printf(" | %.1f", t * 1e6);
      else
        std::printf(" | -");
    }
    std::printf(" | %s |\n", napkin::predict(k, d, Math::tf32).bound);
    // The step's bytes, FLOP and integer work: the TF32 and BF16 kernels'.
    if (k.runs[int(Math::tf32)]) bytes += k.bytes, flop += k.flop, ints += k.int_ops;
  }
  std::printf("| **step** | | **%.0f** | **%.1f** | **%.2f** | | **%.0f** | **%.0f** | **%.0f** "
              "| |\n",
              bytes / 1e6, flop / 1e9, ints / 1e9, total[0] * 1e6, total[1] * 1e6, total[2] * 1e6);
}

}  // namespace

int main() {
  const napkin::Device d = napkin::h200();
  std::printf("Device: %s: %.1f TB/s, %.0f TFLOP/s FP32, %.0f TF32, %.0f BF16 (dense), %.1f T "
              "int32 ops/s, %.2f T warp instructions/s issued; efficiencies: memory %.1f, math "
              "%.1f, integer %.1f, issue %.1f; %.0f ns per dependent DRAM round trip; %.0f us least per "
              "kernel. Philox4x32-10: %.0f integer ops per block of 4 uniforms counted, priced at "
              "%.1f (measured). Masked products' "
              "loops (sm_90 SASS): fp32 %.0f / %.0f instructions per thread per block-stage "
              "(forward / weight gradient); mma.sync warp-stages at N = 100, tf32 %.0f / %.0f, "
              "bf16 %.0f / %.0f (weight gradient by rows); by sample, tf32 %.0f, bf16 %.0f with "
              "%.0f staging items a thread counted (%.0f and %.0f instructions an item); mma.sync: %.0f "
              "cycles of a scheduler's tensor pipe an instruction (fitted to the measured loops); "
              "wgmma (sm_90a SASS, the design): forward tf32 %.0f, bf16 %.0f (W copied from its "
              "tiles), by sample tf32 %.0f, bf16 %.0f (a round of one sample) a warp-stage, its "
              "tensor work at the dense rates.\n",
              d.name, d.bandwidth / 1e12, d.fp32 / 1e12, d.tf32 / 1e12, d.bf16 / 1e12,
              d.int32 / 1e12, d.issue / 1e12, d.e_mem, d.e_math, d.e_int, d.e_issue,
              d.latency * 1e9, d.launch * 1e6, napkin::kPhiloxIntOpsPerBlock, d.philox_slots,
              napkin::kSimtForwardLoop, napkin::kSimtWgradLoop, napkin::kMmaForwardLoop[1][0],
              napkin::kMmaWgradLoop[1][0], napkin::kMmaForwardLoop[1][1],
              napkin::kMmaWgradLoop[1][1], napkin::kMmaLiveWgradLoop[1][0],
              napkin::kMmaLiveWgradLoop[1][1], napkin::kLiveItemsCounted[1],
              napkin::kLiveStagingItem[0], napkin::kLiveStagingItem[1], d.mma_cycles,
              napkin::kWgmmaLifForwardLoop[1][0], napkin::kWgmmaLifForwardLoop[1][1],
              napkin::kWgmmaLiveWgradLoop[1][0], napkin::kWgmmaLiveWgradLoop[1][1]);
  const napkin::StepShape shapes[] = {napkin::w1(), napkin::w1_unit_mnist(), napkin::w2()};
  for (const auto& s : shapes) kernel_table(s, d);

  std::printf("\nPer step: the products' FLOP at the precision's full peak (the floor) against "
              "the predicted step.\n\n");
  std::printf("| workload | product GFLOP | precision | floor ms | predicted ms | predicted / "
              "floor | predicted / TF32 floor |\n");
  std::printf("| --- | ---: | --- | ---: | ---: | ---: | ---: |\n");
  for (const auto& s : shapes) {
    const double tf32_floor = napkin::step_floor_seconds(s, d, Math::tf32);
    for (Math m : kMaths) {
      const double floor = napkin::step_floor_seconds(s, d, m);
      const double t = napkin::step_seconds(s, d, m);
      std::printf("| %s | %.1f | %s | %.3f | %.3f | %.1fx | %.1fx |\n", s.name,
                  napkin::step_product_flop(s) / 1e9, napkin::to_string(m), floor * 1e3, t * 1e3,
                  t / floor, t / tf32_floor);
    }
  }

  // What-ifs for W1, TF32: which changes would bring the step near its floor.
  napkin::StepShape stored = napkin::w1();
  stored.store_masked_input = true;
  napkin::StepShape fp32_saved = napkin::w1();
  fp32_saved.compact = false;
  napkin::Device fast_philox = d;
  fast_philox.int32 *= 2;  // 40 slots: the FMA pipe alone (see kPhiloxIntOpsPerBlock)
  napkin::StepShape free_masks = napkin::w1();
  free_masks.free_masks = true;
  const double floor = napkin::step_floor_seconds(napkin::w1(), d, Math::tf32);
  std::printf("\nWhat-ifs for W1 (not the design; TF32 floor %.3f ms):\n\n", floor * 1e3);
  std::printf("| change | tf32 ms | / floor | bf16 ms | / TF32 floor |\n| --- | ---: | ---: | ---: | ---: |\n");
  auto row = [&](const char* what, const napkin::StepShape& s, const napkin::Device& dev) {
    const double t = napkin::step_seconds(s, dev, Math::tf32), b = napkin::step_seconds(s, dev, Math::bf16);
    std::printf("| %s | %.3f | %.1fx | %.3f | %.1fx |\n", what, t * 1e3, t / floor, b * 1e3, b / floor);
  };
  row("none (the design above)", napkin::w1(), d);
  napkin::StepShape mma_sync = napkin::w1();
  mma_sync.wgmma = false;
  row("both masked products on mma.sync (a build without sm_90a, as measured on 2026-12-04)",
      mma_sync, d);
  row("FP32 u kept for backward (SavedState::fp32, the default) instead of compact", fp32_saved, d);
  row("Philox at 40 slots per block (its pipes fully overlapped)", napkin::w1(), fast_philox);
  row("forward stores the BF16 masked input for the weight gradient", stored, d);
  row("masks free in the TF32 and BF16 loops (no Philox: the floor of this design)", free_masks,
      d);
  row("unit-scaled MNIST digits (the default preset's x / 255): both products on live quads",
      napkin::w1_unit_mnist(), d);
  napkin::StepShape masks16 = napkin::w1();
  masks16.masks16 = true;
  row("16-bit masks, 8 a Philox block (a SPEC-level change to both engines' masks; by hand)",
      masks16, d);

  // What no layered design of W1 can go below: the masks made twice (SPEC section 1), against
  // the 3x target, at the model's Philox count and at the FMA pipe's alone.
  double others = 0;  // this design's kernels but the two masked products, TF32
  for (const napkin::Kernel& k : napkin::step_kernels(napkin::w1()))
    if (k.name.rfind("masked_linear_", 0) != 0 || k.name == "masked_linear_weight_tiles L0")
      others += napkin::predict(k, d, Math::tf32).total;
  std::printf("\nThe masks' floor of a layered W1 step: each mask made in the forward and again "
              "in the weight gradient (SPEC section 1), Philox's integer work alone, against 3x "
              "the TF32 floor (%.3f ms). This design's other kernels (all but the two masked "
              "products, the forward with the first layer's time loop in it) take %.3f ms in "
              "TF32.\n\n",
              3 * floor * 1e3, others * 1e3);
  std::printf("| Philox slots per block | masks ms | 3x TF32 floor ms | left for the rest ms |\n"
              "| --- | ---: | ---: | ---: |\n");
  for (const napkin::StepShape& s : {napkin::w1(), napkin::w1_unit_mnist()})
    for (const double slots : {napkin::kPhiloxIntOpsPerBlock, d.philox_slots, 40.0}) {
      const double masks = napkin::mask_floor_seconds(s, d, slots);
      std::printf("| %.0f (%s)%s | %.3f | %.3f | %.3f |\n", slots,
                  slots == napkin::kPhiloxIntOpsPerBlock ? "counted: nothing overlaps"
                  : slots == 40.0                        ? "the FMA pipe alone"
                                                         : "as the H200 measured, the model's",
                  s.forward_stages < 1 ? ", unit-scaled digits: live quads only" : "",
                  masks * 1e3, 3 * floor * 1e3, (3 * floor - masks) * 1e3);
    }

  // Inference passes and training steps of the seed network, the layered kernels against the
  // sample-cluster kernel as built (DeviceOptions / NetworkOptions::sample_clusters), by batch
  // size, with FP32, TF32 and BF16 products.
  const double params = 784.0 * 100 + 100 + 100 * 10 + 10;
  for (const bool train : {false, true}) {
    if (train)
      std::printf("\nTraining steps of W1's network (forward + loss + backward + SGD), layer by "
                  "layer (FP32 u kept) against by sample clusters (the sum of the partial "
                  "gradients and the update added):\n\n");
    else
      std::printf("\nInference passes of W1's network (784-100-10, T = 128, nothing kept), layer "
                  "by layer against by sample clusters:\n\n");
    std::printf("| B | layered fp32 us | clusters fp32 us | layered tf32 us | clusters tf32 us | "
                "layered bf16 us | clusters bf16 us | samples per cluster | cycles per sample, "
                "fp32 / tf32 / bf16 (masks + products + loops + reduces + barriers) |\n"
                "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
    for (int B : {1, 16, 64, 256, 1000}) {
      napkin::StepShape s = napkin::w1();
      s.B = B;
      s.update = train;
      s.compact = false;
      double layered[3] = {0, 0, 0}, clusters[3] = {0, 0, 0};
      napkin::ClusterPrediction c[3];
      const Math maths[3] = {Math::fp32, Math::tf32, Math::bf16};
      for (int i = 0; i < 3; ++i) {
        if (train) {
          layered[i] = napkin::step_seconds(s, d, maths[i]);
        } else {
          for (const napkin::Kernel& k : napkin::inference_kernels(s))
            layered[i] += napkin::predict(k, d, maths[i]).total;
        }
        c[i] = napkin::sample_cluster_prediction(s, d, train, maths[i]);
        clusters[i] = c[i].seconds;
        if (train) {
          // The clusters' partial gradients summed (clusters x parameters read, one write), the
          // step's statistics and the update, as separate kernels.
          const double n = std::min<double>(B, 16);
          const napkin::Kernel sum{"sum_partials", "", 4 * (n + 1) * params, n * params,
                                   0, 0, false};
          clusters[i] += napkin::predict(sum, d, Math::fp32).total;
          for (const napkin::Kernel& k : napkin::step_kernels(s))
            if (k.name == "nll_log_softmax" || k.name == "sgd_update")
              clusters[i] += napkin::predict(k, d, Math::fp32).total;
        }
      }
      std::printf("| %d |", B);
      for (int i = 0; i < 3; ++i) std::printf(" %.1f | %.1f |", layered[i] * 1e6, clusters[i] * 1e6);
      std::printf(" %.0f |", c[0].samples_per_cluster);
      for (int i = 0; i < 3; ++i)
        std::printf(" %s%.0f (%.0f + %.0f + %.0f + %.0f + %.0f)", i ? "/ " : "",
                    c[i].cycles_per_sample, c[i].masks, c[i].products, c[i].loops, c[i].reduces,
                    c[i].barriers);
      std::printf(" |\n");
    }
  }
  return 0;
}
