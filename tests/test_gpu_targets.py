#!/usr/bin/env python3
"""scripts/gpu-targets on made-up runs (CTest gpu_targets): a target is met or missed by
the ratio the rows give, a missing row is "no data" (never met), and the command line
reads a gpu-check directory."""
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "gpu-targets")
_loader = importlib.machinery.SourceFileLoader("gpu_targets", SCRIPT)
_spec = importlib.util.spec_from_loader("gpu_targets", _loader)
targets = importlib.util.module_from_spec(_spec)
_loader.exec_module(targets)


def flops_row(name, tflops):
    return {"name": name + "/device:0", "run_type": "iteration", "FLOPS": tflops * 1e12}


def verdicts(rep):
    return {line[1]: line[4] for line in rep.lines}


class GpuTargets(unittest.TestCase):
    def run_of(self, rows):
        return {r["name"].removesuffix("/device:0"): r for r in rows}

    def test_ratios_against_the_peer_of_the_same_run(self):
        bench = self.run_of([
            flops_row("gemm/cublas/4096x4096x4096/nn", 50), flops_row("gemm/tilegrad/4096x4096x4096/nn", 41),
            flops_row("gemm/tilegrad/4096x4096x4096/nn_tile128", 41),
            flops_row("gemm/tilegrad/4096x4096x4096/nn_tile128_warp", 39),
            flops_row("gemm/cublas/8192x8192x8192/nn", 50), flops_row("gemm/tilegrad/8192x8192x8192/nn", 39.9),
            {"name": "copy/cuda/device_to_device/device:0", "bytes_per_second": 4000e9},
            {"name": "softmax_fwd/tilegrad/8192x32768/device:0", "bytes_per_second": 3500e9},
            {"name": "layer_norm_fwd/tilegrad/262144x1024/device:0", "bytes_per_second": 3100e9},
            flops_row("attention_fwd/tilegrad-bf16/4x16x4096x128", 310),
            flops_row("attention_fwd/tilegrad-bf16/4x16x4096x128/causal", 240),
            {"name": "train_step/tilegrad/mlp784-256-256-10/b1024/device:0", "real_time": 0.5},
            {"name": "train_step/tilegrad/mlp1-10-1/b10/adamw/eager/device:0", "real_time": 0.09},
            {"name": "train_step/tilegrad/mlp1-10-1/b10/adamw/graph/device:0", "real_time": 0.03},
            {"name": "train_step/tilegrad/mlp1-10-1/b10/sgd/eager/device:0", "real_time": 0.03},
            {"name": "train_step/tilegrad/mlp1-10-1/b10/sgd/graph/device:0", "real_time": 0.04},
        ])
        torch_step = self.run_of([{"name": "train_step/torch/mlp784-256-256-10/b1024/device:0", "real_time": 0.6}])
        v = verdicts(targets.evaluate(bench, torch_step))
        self.assertEqual(v["SGEMM 4096x4096x4096 (default config)"], "met")      # 82%
        self.assertEqual(v["SGEMM 4096x4096x4096 (best config)"], "met")
        self.assertEqual(v["SGEMM 8192x8192x8192 (default config)"], "MISSED")  # 79.8%
        self.assertEqual(v["SGEMM 8192x8192x8192 (best config)"], "no data")    # no per-config rows
        self.assertEqual(v["softmax_fwd 8192x32768"], "met")                    # 87.5% >= 85%
        self.assertEqual(v["layer_norm_fwd 262144x1024"], "MISSED")             # 77.5% < 80%
        self.assertEqual(v["gelu_erf_fwd 268435456"], "no data")
        self.assertEqual(v["bf16 attention fwd 4x16x4096x128 (mma.sync)"], "met")
        self.assertEqual(v["bf16 attention fwd 4x16x4096x128/causal (mma.sync)"], "MISSED")
        self.assertEqual(v["bf16 attention fwd 4x16x4096x128 (wgmma)"], "no data")
        self.assertEqual(v["MLP 784-256-256-10 step b1024 vs PyTorch"], "met")
        self.assertEqual(v["CUDA graph step mlp1-10-1/b10/adamw"], "met")     # the bench's row names
        self.assertEqual(v["CUDA graph step mlp1-10-1/b10/sgd"], "MISSED")    # slower than eager

    def test_an_empty_run_meets_nothing(self):
        rep = targets.evaluate({})
        self.assertTrue(rep.lines)
        self.assertEqual({line[4] for line in rep.lines}, {"no data"})
        self.assertIn(f"0 met, 0 missed, {len(rep.lines)} without data", rep.text())

    def test_the_command_reads_a_gpu_check_directory(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "gpu_bench.json"), "w") as f:
                json.dump({"benchmarks": [flops_row("gemm/cublas/4096x4096x4096/nt_bf16", 700),
                                          flops_row("gemm/tilegrad/4096x4096x4096/nt_bf16_wgmma", 630)]}, f)
            out = subprocess.run([sys.executable, SCRIPT, d], capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("bf16 GEMM 4096x4096x4096 wgmma", out.stdout)
            self.assertIn("90% of cuBLAS", out.stdout)
            bad = subprocess.run([sys.executable, SCRIPT, "--nonsense"], capture_output=True, text=True)
            self.assertEqual(bad.returncode, 2)


if __name__ == "__main__":
    unittest.main()
