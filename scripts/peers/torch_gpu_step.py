#!/usr/bin/env python3
"""PyTorch's MLP 784-256-256-10 AdamW training step at batch 1024 on the GPU: the peer of
tg_gpu_bench's train_step row (the CUDA issue's target: tilegrad's step faster than this).

  scripts/peers/torch_gpu_step.py [--out FILE.json]

Same model, loss, optimizer and timing as tg_gpu_bench: 6 warm-up steps, then the median
over 10 runs of 20 steps, CUDA events. Prints one line; exits 3 when torch or a CUDA
device is missing (scripts/gpu-check then reports the peer as absent).
"""
import json
import statistics
import sys


def main(argv):
    out = argv[argv.index("--out") + 1] if "--out" in argv else None
    try:
        import torch
    except ImportError:
        print("torch_gpu_step: torch is not installed")
        return 3
    if not torch.cuda.is_available():
        print("torch_gpu_step: torch sees no CUDA device")
        return 3
    dev = torch.device("cuda:0")
    torch.manual_seed(5)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, 10)).to(dev)
    x = torch.randn(1024, 784, device=dev)
    y = (torch.arange(1024, device=dev) % 10).long()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(6):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(10):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(20):
            step()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / 20)
    ms = statistics.median(times)
    flop = 6.0 * 1024 * (784 * 256 + 256 * 256 + 256 * 10)
    print(f"torch_gpu_step: torch {torch.__version__}, {torch.cuda.get_device_name(0)}: "
          f"mlp_step/784-256-256-10/b1024 {ms:.3f} ms")
    if out:
        row = {"name": "train_step/torch/mlp784-256-256-10/b1024/device:0", "run_type": "iteration",
               "real_time": ms, "time_unit": "ms", "FLOPS": flop / ms * 1e3}
        with open(out + ".tmp", "w") as f:
            json.dump({"context": {"torch": torch.__version__}, "benchmarks": [row]}, f)
        import os
        os.replace(out + ".tmp", out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
