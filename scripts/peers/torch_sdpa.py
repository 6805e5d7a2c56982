#!/usr/bin/env python3
"""PyTorch's scaled_dot_product_attention on the GPU: the peer of tg_gpu_bench's attention
rows (scripts/gpu-targets compares our fused attention with it).

  scripts/peers/torch_sdpa.py [--out FILE.json] [--ours gpu_bench.json]

The shapes of tg_gpu_bench (B 4, H 16, S 1024 and 4096, head dims 64 and 128, causal and
not), forward and backward, in fp32 (whatever backend torch picks for fp32: the
memory-efficient kernel on an H200) and in bf16 with the flash backend forced. Timing as
tg_gpu_bench: one warm-up, then the median of 10 forward calls (5 backward), CUDA events.
FLOPs 4 B H S^2 D, halved when causal; the backward counts 2.5x the forward. With
--ours, each row also gets our kernel's rate from tg_gpu_bench's JSON and the ratio
(ours / torch): fp32 rows our fp32 kernel, bf16 rows our bf16 tensor-core forward. Exits 3 when torch or a CUDA device is missing.
"""
import json
import statistics
import sys


def median_ms(torch, f, reps):
    f()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        f()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def main(argv):
    out = argv[argv.index("--out") + 1] if "--out" in argv else None
    ours_path = argv[argv.index("--ours") + 1] if "--ours" in argv else None
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("torch_sdpa: torch is not installed")
        return 3
    if not torch.cuda.is_available():
        print("torch_sdpa: torch sees no CUDA device")
        return 3
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # older torch: no backend selection, bf16 rows use the default
        SDPBackend, sdpa_kernel = None, None
    ours = {}
    if ours_path:
        try:
            for row in json.load(open(ours_path))["benchmarks"]:
                ours[row["name"]] = row.get("FLOPS", 0.0)
        except (OSError, ValueError, KeyError) as e:
            print(f"torch_sdpa: cannot read {ours_path}: {e}")
    dev = torch.device("cuda:0")
    torch.manual_seed(3)
    B, H = 4, 16
    rows = []
    print(f"{'attention (B 4, H 16)':34s} {'fwd TF/s':>9s} {'bwd TF/s':>9s} {'ours fwd':>9s} {'ratio':>6s} "
          f"{'ours bwd':>9s} {'ratio':>6s} {'atomic dQ':>9s} {'ratio':>6s}")
    for S in (1024, 4096):
        for D in (64, 128):
            for causal in (False, True):
                shape = f"{B}x{H}x{S}x{D}" + ("/causal" if causal else "")
                flop = 4.0 * B * H * S * S * D / (2 if causal else 1)
                for dtype, impl in ((torch.float32, "torch-sdpa-fp32"), (torch.bfloat16, "torch-flash-bf16")):
                    q, k, v = (torch.randn(B, H, S, D, device=dev, dtype=dtype, requires_grad=True) for _ in range(3))
                    do = torch.randn(B, H, S, D, device=dev, dtype=dtype)

                    def fwd():
                        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

                    def run(f):
                        if dtype == torch.bfloat16 and sdpa_kernel is not None:
                            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                                return f()
                        return f()

                    try:
                        t_fwd = median_ms(torch, lambda: run(fwd), 10)
                        o = run(fwd)
                        t_bwd = median_ms(torch, lambda: torch.autograd.grad(o, (q, k, v), do, retain_graph=True), 5)
                    except RuntimeError as e:  # a backend that refuses the shape
                        print(f"{shape:34s} {impl}: {str(e).splitlines()[0]}")
                        continue
                    fwd_tf, bwd_tf = flop / t_fwd / 1e9, 2.5 * flop / t_bwd / 1e9
                    line = f"{impl[6:] + ' ' + shape:34s} {fwd_tf:9.1f} {bwd_tf:9.1f}"
                    if ours:  # fp32 rows against our fp32 kernel, bf16 rows against our bf16 forward
                        ours_impl = "tilegrad" if dtype == torch.float32 else "tilegrad-bf16"
                        of = ours.get(f"attention_fwd/{ours_impl}/{shape}/device:0", 0.0) / 1e12
                        ob = ours.get(f"attention_bwd/{ours_impl}/{shape}/device:0", 0.0) / 1e12
                        oa = ours.get(f"attention_bwd_atomic_dq/{ours_impl}/{shape}/device:0", 0.0) / 1e12
                        line += f" {of:9.1f} {of / fwd_tf if fwd_tf else 0:6.2f}"
                        if ob:
                            line += f" {ob:9.1f} {ob / bwd_tf if bwd_tf else 0:6.2f}"
                        if oa:
                            line += f" {oa:9.1f} {oa / bwd_tf if bwd_tf else 0:6.2f}"
                    print(line)
                    for kind, ms, f in (("attention_fwd", t_fwd, flop), ("attention_bwd", t_bwd, 2.5 * flop)):
                        rows.append({"name": f"{kind}/{impl}/{shape}/device:0", "run_type": "iteration",
                                     "real_time": ms, "time_unit": "ms", "FLOPS": f / ms * 1e3})
                    del q, k, v, do, o
    if out:
        with open(out + ".tmp", "w") as f:
            json.dump({"context": {"torch": torch.__version__, "device": torch.cuda.get_device_name(0)},
                       "benchmarks": rows}, f, indent=1)
        import os
        os.replace(out + ".tmp", out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
