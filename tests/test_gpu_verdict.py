#!/usr/bin/env python3
"""bench/gpu_verdict.py on made-up GPU outputs: the tables and the PASS/FAIL/MISSING lines."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "gpu_verdict.py")


def engine_row(name, label, ms, floor):
    return {"name": name, "run_name": name, "label": label, "ms": ms, "samples/s": 1000 / (ms / 1e3),
            "TFLOP/s": 1.0, "floor_ms": floor, "x_floor": ms / floor, "device_MB": 100.0}


def torch_row(workload, variant, math, ms):
    return {"workload": workload, "variant": variant, "math": math, "ms": ms,
            "samples_per_s": 1000 / (ms / 1e3), "tflops": 0.5, "peak_memory_mb": 200.0}


def run_log(seed_accuracy):
    return ("===== mnist seed preset fp32: build-gpu-bin/nmsnn train --device cuda --preset seed\n"
            "epoch 1/3 ...\n"
            f"test accuracy {seed_accuracy}  macro F1 0.90  (10000 samples)\n"
            "training throughput 250000 samples/s (180000 samples in 0.7 s, device cuda)\n"
            "===== bench_cuda: ...\n")


# Figures that meet every target: W1 200x eager and 2x the floor, W2 1.6x multi-step.
GOOD = dict(w1_ms=2.0, w1_floor=1.0, w1_eager=400.0, w2_ms=50.0, w2_multistep=80.0,
            seed_accuracy=0.9031)


class GpuVerdict(unittest.TestCase):
    def run_on(self, w1_ms, w1_floor, w1_eager, w2_ms, w2_multistep, seed_accuracy, drop=(),
               cut=False):
        bench = {"benchmarks": [
            engine_row("Floor/W1/0/iterations:1/manual_time", "W1 cuBLAS products only", w1_floor, w1_floor),
            engine_row("Engine/W1/0/manual_time", "W1 fp32", w1_ms, w1_floor),
            engine_row("Engine/W2/0/min_time:1.000/manual_time", "W2 fp32", w2_ms, 1.0),
            engine_row("Engine/W1/2/1/manual_time", "W1 bf16, saved compact", 1.5, w1_floor),
            engine_row("W1_StepLoop/1/16/1/real_time", "W1 step tf32 via StepLoop", 0.025, w1_floor),
            engine_row("W1_StepLoopMnist/1000/2/real_time", "W1 step bf16 on digits", 0.3, w1_floor),
            engine_row("W1_StepLoopKept/1/1/100/real_time", "W1 step tf32 on kept rows", 0.2,
                       w1_floor),
            engine_row("W1_WeightGrad/1/1/1/manual_time", "W1 weight gradient", 0.06, w1_floor),
            engine_row("W1_FirstLayerForward/1/0/2/manual_time", "W1 first-layer forward", 0.15,
                       w1_floor),
            engine_row("W1_FirstLayerForward/2/1/1/manual_time", "W1 first-layer forward", 0.055,
                       w1_floor),
            engine_row("W1_Inference/0/1000/real_time", "W1 inference fp32", 0.4, w1_floor),
            engine_row("W1_Inference/1/16/2/manual_time", "W1 inference bf16", 0.011, w1_floor),
            {"name": "TimeLoop/0/manual_time", "label": "lif forward", "ms": 0.5, "GB/s": 3000.0,
             "of_copy": 0.7},
        ]}
        pytorch = {"device": "NVIDIA H200", "torch": "2.11", "cuda": "13.0", "runs": [
            torch_row("W1", "eager", "fp32", w1_eager),
            torch_row("W2", "multistep", "fp32", w2_multistep),
            {"workload": "W2", "variant": "compiled", "math": "fp32", "error": "BackendCompilerFailed: no"},
        ]}
        with tempfile.TemporaryDirectory() as d:
            files = {"pytorch.json": json.dumps(pytorch), "run.log": run_log(seed_accuracy)}
            if "bench" not in drop:
                text = json.dumps(bench, indent=2)  # Google Benchmark's layout: rows at 4 spaces
                if cut:  # killed inside the W2 row, as the H200's first run was (2026-12-04)
                    text = text[:text.index('"Engine/W2/0')]
                files["bench_cuda.json"] = text
            for name, text in files.items():
                with open(os.path.join(d, name), "w") as f:
                    f.write(text)
            res = subprocess.run([sys.executable, SCRIPT, d], capture_output=True, text=True)
        self.assertEqual(res.returncode, 0, res.stderr)
        return res.stdout

    def test_targets_met(self):
        out = self.run_on(**GOOD)
        self.assertIn("- PASS: W1 fp32: 200.0x the seed's eager PyTorch step", out)
        self.assertIn("- PASS: W1 fp32: 2.00x the cuBLAS floor", out)
        self.assertIn("- PASS: W2 fp32: 50.000 ms against PyTorch multi-step 80.000 ms (1.60x", out)
        self.assertIn("- MISSING: W2 tf32 against PyTorch multi-step", out)
        self.assertIn("- PASS: mnist seed preset fp32: test accuracy 0.9031", out)
        # The table puts ours, the floor and PyTorch side by side, PyTorch's ratio to our floor too.
        self.assertIn("| nmsnn | fp32 | 2.000 |", out)
        self.assertIn("| PyTorch eager | fp32 | 400.000 | 2,500 | 0.50 | 400.00 | 200 |", out)
        self.assertIn("| PyTorch compiled | fp32 | failed: BackendCompilerFailed", out)
        self.assertIn("| lif forward | 0.500 | 3,000 | 0.70 |", out)
        # bench_cuda's two-argument rows: precision index, then the saved state (1 = compact).
        self.assertIn("| nmsnn, compact state | bf16 | 1.500 |", out)
        # The W1 rows: clusters or layers, the batch, then the precision (fp32 when left out).
        self.assertIn("| nmsnn StepLoop B 16, sample clusters | tf32 | 0.025 |", out)
        # The real digits at x / 255: the batch, then the precision.
        self.assertIn("| nmsnn StepLoop B 1000, unit-scaled MNIST | bf16 | 0.300 |", out)
        self.assertIn("| nmsnn StepLoop B 100, kept rows, CUDA graphs | tf32 | 0.200 |", out)
        # The first layer's weight gradient alone: the walk, the pixels, the precision.
        self.assertIn("| nmsnn first-layer weight gradient by sample, unit-scaled MNIST | tf32 | "
                      "0.060 |", out)
        # The first layer's forward alone: apart or fused, the pixels, the precision.
        self.assertIn("| nmsnn first-layer forward, one kernel, centred MNIST | bf16 | 0.150 |", out)
        self.assertIn("| nmsnn first-layer forward, one kernel with the output's product, "
                      "unit-scaled MNIST | tf32 | 0.055 |", out)
        self.assertIn("| nmsnn inference B 1000, layer by layer | fp32 | 0.400 |", out)
        self.assertIn("| nmsnn inference B 16, sample clusters | bf16 | 0.011 |", out)

    def test_targets_missed(self):
        out = self.run_on(**{**GOOD, "w1_ms": 8.0, "w2_ms": 90.0, "seed_accuracy": 0.5})
        self.assertIn("- FAIL: W1 fp32: 50.0x the seed's eager PyTorch step", out)
        self.assertIn("- FAIL: W1 fp32: 8.00x the cuBLAS floor", out)
        self.assertIn("- FAIL: W2 fp32", out)
        self.assertIn("- FAIL: mnist seed preset fp32: test accuracy 0.5000", out)

    def test_cut_off_benchmarks_keep_their_complete_rows(self):
        out = self.run_on(**GOOD, cut=True)
        self.assertIn("(bench_cuda.json ends early", out)
        self.assertIn("first 2 complete rows are read", out)
        self.assertIn("- PASS: W1 fp32: 2.00x the cuBLAS floor", out)
        self.assertIn("- MISSING: W2 fp32 against PyTorch multi-step", out)

    def test_missing_benchmark_is_reported_not_guessed(self):
        out = self.run_on(**GOOD, drop=("bench",))
        self.assertIn("(no bench_cuda.json", out)
        self.assertIn("- MISSING: W1 fp32 against eager PyTorch", out)
        self.assertIn("- MISSING: W1 fp32 against the cuBLAS floor", out)
        self.assertNotIn("PASS: W1", out)


if __name__ == "__main__":
    unittest.main()
