"""PyTorch as a peer: the rows of tilegrad's benchmark binaries, timed in torch.

Run through scripts/peers/torch-bench, which picks the PyTorch build (PyPI's, in
build/torch-venv, or Debian's python3-torch with OpenBLAS pinned) and sets the thread
environment; this file does the timing. It writes Google Benchmark's JSON layout
(iteration rows, then mean, median and stddev per row) so scripts/bench-summary reads it
beside the C++ results, with rows named <op>/<impl>/<shape>/threads:<n> like the
binaries' rows (<impl>: pytorch for PyPI's build, pytorch_debian for Debian's).

Each row is computed once and compared with the same op in float64 before it is timed:
a peer that computes something else is an error, not a fast row. Outputs are written
into preallocated tensors (the out= forms), as the C++ rows do, so allocation is not
timed.
"""
import argparse
import itertools
import json
import os
import platform
import re
import statistics
import sys
import time

import torch

EPS = 1e-5
LEAKY_SLOPE = 0.01  # bench_eltwise's slope


def uniform(shape, lo, hi, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=torch.float32) * (hi - lo) + lo


# --- eltwise: forward y = f(x), backward dx = dy f'(x) (bench_eltwise's byte counts) ----

def _gelu(approx):
    def fwd(x, y):
        torch._C._nn.gelu(x, approximate=approx, out=y)

    def bwd(x, dy, dx):
        torch.ops.aten.gelu_backward.grad_input(dy, x, approximate=approx, grad_input=dx)

    def ref(x):
        return torch.nn.functional.gelu(x, approximate=approx)
    return fwd, bwd, ref


def _sigmoid_bwd(x, dy, dx):
    # torch's sigmoid_backward takes the forward's output, as autograd saves it
    torch.ops.aten.sigmoid_backward.grad_input(dy, torch.sigmoid(x), grad_input=dx)


ACTIVATIONS = {
    "relu": (lambda x, y: torch.clamp_min(x, 0.0, out=y),
             lambda x, dy, dx: torch.ops.aten.threshold_backward.grad_input(dy, x, 0.0, grad_input=dx),
             torch.relu),
    "leaky_relu": (lambda x, y: torch._C._nn.leaky_relu(x, LEAKY_SLOPE, out=y),
                   lambda x, dy, dx: torch.ops.aten.leaky_relu_backward.grad_input(
                       dy, x, LEAKY_SLOPE, False, grad_input=dx),
                   lambda x: torch.nn.functional.leaky_relu(x, LEAKY_SLOPE)),
    "gelu_erf": _gelu("none"),
    "gelu_tanh": _gelu("tanh"),
    "silu": (lambda x, y: torch._C._nn.silu(x, out=y),
             lambda x, dy, dx: torch.ops.aten.silu_backward.grad_input(dy, x, grad_input=dx),
             torch.nn.functional.silu),
    "sigmoid": (lambda x, y: torch.sigmoid(x, out=y), None, torch.sigmoid),
    "tanh": (lambda x, y: torch.tanh(x, out=y), None, torch.tanh),
}


def eltwise_rows(shapes):
    """(name, bytes, elements, setup) for every activation, forward and backward."""
    for act, (fwd, bwd, ref) in ACTIVATIONS.items():
        for backward in (False, True):
            if backward and bwd is None:
                continue  # sigmoid/tanh backward take the output in torch: not the same op
            for shape_name, shape in shapes:
                n = shape[0] * shape[1]

                def setup(shape=shape, fwd=fwd, bwd=bwd, ref=ref, backward=backward):
                    x = uniform(shape, -6, 6, 11)  # bench_eltwise's ranges
                    y = torch.empty(shape)
                    if not backward:
                        def run():
                            fwd(x, y)
                        def check():
                            run()
                            return y, ref(x.double())
                        return run, check
                    dy = uniform(shape, -1, 1, 12)

                    def run():
                        bwd(x, dy, y)

                    def check():
                        run()
                        xd = x.double().requires_grad_()
                        ref(xd).backward(dy.double())
                        return y, xd.grad
                    return run, check
                yield (f"{act}_{'bwd' if backward else 'fwd'}/pytorch/{shape_name}",
                       (12 if backward else 8) * n, n, setup)


# --- softmax, log_softmax and layer_norm over rows (bench_softmax's rows) ----------------

def norm_rows(shapes):
    for op in ("softmax_fwd", "softmax_bwd", "log_softmax_fwd", "log_softmax_bwd",
               "layer_norm_fwd", "layer_norm_bwd"):
        for shape_name, shape in shapes:
            n = shape[0] * shape[1]

            def setup(op=op, shape=shape):
                x = uniform(shape, -4, 4, 21)
                dy = uniform(shape, -1, 1, 22)
                out = torch.empty(shape)
                cols = shape[1]
                if op == "softmax_fwd":
                    run = lambda: torch.ops.aten._softmax.out(x, -1, False, out=out)
                    ref = lambda: torch.softmax(x.double(), -1)
                elif op == "log_softmax_fwd":
                    run = lambda: torch.ops.aten._log_softmax.out(x, -1, False, out=out)
                    ref = lambda: torch.log_softmax(x.double(), -1)
                elif op == "softmax_bwd":
                    y = torch.softmax(x, -1)
                    run = lambda: torch.ops.aten._softmax_backward_data.out(
                        dy, y, -1, torch.float32, grad_input=out)
                    yd = y.double()
                    ref = lambda: yd * (dy.double() - (dy.double() * yd).sum(-1, keepdim=True))
                elif op == "log_softmax_bwd":
                    y = torch.log_softmax(x, -1)
                    run = lambda: torch.ops.aten._log_softmax_backward_data.out(
                        dy, y, -1, torch.float32, out=out)
                    yd = y.double()
                    ref = lambda: dy.double() - yd.exp() * dy.double().sum(-1, keepdim=True)
                elif op == "layer_norm_fwd":
                    # native_layer_norm has no out= form: its timing includes allocating
                    # y, mean and rstd, as every torch call of it does
                    run = lambda: torch.native_layer_norm(x, [cols], None, None, EPS)
                    ref = lambda: torch.nn.functional.layer_norm(x.double(), [cols], eps=EPS)
                    check = lambda: (torch.native_layer_norm(x, [cols], None, None, EPS)[0], ref())
                    return run, check
                else:
                    _, mean, rstd = torch.native_layer_norm(x, [cols], None, None, EPS)
                    run = lambda: torch.ops.aten.native_layer_norm_backward(
                        dy, x, [cols], mean, rstd, None, None, [True, False, False])

                    def check():
                        xd = x.double().requires_grad_()
                        torch.nn.functional.layer_norm(xd, [cols], eps=EPS).backward(dy.double())
                        return run()[0], xd.grad
                    return run, check

                def check():
                    run()
                    return out, ref()
                return run, check
            yield (f"{op}/pytorch/{shape_name}", (12 if op.endswith("bwd") else 8) * n, n, setup)


def cross_entropy_rows():
    """The fused cross-entropy as bench_softmax's cross_entropy rows: logits U(-4, 4),
    targets i mod classes. Forward: aten's nll_loss of log_softmax is what
    F.cross_entropy(reduction='none') runs; backward: the gradient of the per-row losses
    weighted 1/rows (the mean's), through autograd from saved activations, as a training
    step runs it. Bytes: forward 4 per logit, backward 8."""
    for backward in (False, True):
        for rows, classes in ((1024, 10), (4096, 1024), (256, 32000)):
            n = rows * classes

            def setup(rows=rows, classes=classes, backward=backward):
                z = uniform((rows, classes), -4, 4, 23)
                t = torch.arange(rows) % classes
                w = torch.full((rows,), 1.0 / rows)
                if not backward:
                    run = lambda: torch.nn.functional.cross_entropy(z, t, reduction="none")
                    check = lambda: (run(), torch.nn.functional.cross_entropy(z.double(), t, reduction="none"))
                    return run, check
                zg = z.clone().requires_grad_()

                def run():
                    zg.grad = None
                    torch.nn.functional.cross_entropy(zg, t, reduction="none").backward(w)
                    return zg.grad

                def check():
                    zd = z.double().requires_grad_()
                    torch.nn.functional.cross_entropy(zd, t, reduction="none").backward(w.double())
                    return run() * rows, zd.grad * rows
                return run, check
            name = f"cross_entropy_{'bwd' if backward else 'fwd'}/pytorch/{rows}x{classes}"
            yield name, (8 if backward else 4) * n, n, setup


# --- autograd overhead (bench_autograd's rows) ---------------------------------------

def autograd_rows():
    def add_fwd(no_grad):
        def setup():
            a = torch.full((1,), 1.0, requires_grad=True)
            b = torch.full((1,), 2.0, requires_grad=True)
            if no_grad:
                def run():
                    with torch.no_grad():
                        return a + b
            else:
                def run():
                    return a + b
            return run, lambda: (run().detach(), torch.tensor([3.0], dtype=torch.float64))
        return setup

    def chain10():
        x = torch.full((1,), 1.5, requires_grad=True)
        c, d = torch.full((1,), 1.01), torch.full((1,), 0.5)
        one = torch.ones(1)

        def run():
            y = x
            for _ in range(5):
                y = (y * c) + d
            y.backward(one)
            g = x.grad
            x.grad = None
            return g
        return run, lambda: (run(), torch.tensor([1.01 ** 5], dtype=torch.float64))

    def mlp_step():
        g = torch.Generator().manual_seed(0)
        w1 = torch.randn(10, 1, generator=g).requires_grad_()
        b1 = torch.zeros(10, requires_grad=True)
        w2 = (torch.randn(1, 10, generator=g) * 0.3).requires_grad_()
        b2 = torch.zeros(1, requires_grad=True)
        x = torch.randn(10, 1, generator=g)
        t = x * 3 + 1
        F = torch.nn.functional

        def run():
            loss = F.mse_loss(F.linear(F.relu(F.linear(x, w1, b1)), w2, b2), t)
            loss.backward()
            with torch.no_grad():
                for p in (w1, b1, w2, b2):
                    p.add_(p.grad, alpha=-0.01)
                    p.grad = None
            return loss

        def check():
            first = run().detach()
            for _ in range(200):
                run()
            last = run().detach()
            return torch.tensor([float(last < first)]), torch.tensor([1.0], dtype=torch.float64)
        return run, check

    yield "add_fwd/pytorch/1", 0, 1, add_fwd(False)
    yield "add_fwd/pytorch/1/no_grad", 0, 1, add_fwd(True)
    yield "chain10_fwdbwd/pytorch/1", 0, 10, chain10
    yield "mlp_step/pytorch/1x10x1_b10", 0, 1, mlp_step


# --- training throughput (bench_train's rows) --------------------------------------------

def train_rows():
    nn, F = torch.nn, torch.nn.functional

    def step_row(model, opt, loss_fn, x, y, warmup):
        """run: one training step; check: the loss fell after `warmup` more steps."""
        def run():
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss

        def check():
            first = run().item()
            for _ in range(warmup):
                run()
            return torch.tensor([float(run().item() < first)]), torch.tensor([1.0], dtype=torch.float64)
        return run, check

    def linreg(batch):
        def setup():
            g = torch.Generator().manual_seed(1)
            x = torch.randn(batch, 10, generator=g)
            y = x @ (100 * torch.rand(10, 1, generator=g)) + torch.randn(batch, 1, generator=g)
            model = nn.Linear(10, 1)
            return step_row(model, torch.optim.SGD(model.parameters(), lr=0.01), F.mse_loss, x, y, 50)
        return setup

    def mlp_seed_run():
        g = torch.Generator().manual_seed(1)
        x = torch.randn(72, 1, generator=g)
        y = 100 * torch.rand(1, generator=g) * x + 10 * torch.randn(72, 1, generator=g)
        data = torch.utils.data.TensorDataset(x, y)

        def run():
            torch.manual_seed(3)
            model = nn.Sequential(nn.Linear(1, 10), nn.ReLU(), nn.Linear(10, 1))
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            loader = torch.utils.data.DataLoader(data, batch_size=10, shuffle=True)
            for _ in range(100):
                for xb, yb in loader:
                    loss = F.mse_loss(model(xb), yb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            return loss
        return run, lambda: (torch.tensor([float(run().item() > 0)]), torch.tensor([1.0], dtype=torch.float64))

    def mlp_fashion(batch):
        def setup():
            g = torch.Generator().manual_seed(5)
            x = torch.rand(batch, 784, generator=g)
            y = torch.arange(batch) % 10
            model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                                  nn.Linear(256, 10))
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
            return step_row(model, opt, F.cross_entropy, x, y, 20)
        return setup

    for b in (10, 1024):
        yield f"train_step/pytorch/linreg_d10_b{b}", 0, b, linreg(b)
    yield "train_run/pytorch/mlp_1x10x1_e100", 0, 7200, mlp_seed_run
    for b in (128, 1024):
        yield f"train_step/pytorch/mlp_784x256x256x10_b{b}", 0, b, mlp_fashion(b)


def attention_rows(seqs):
    """softmax(Q K^T / sqrt(d)) V with autograd, (1, 8, S, 64) for each S of seqs and the
    small models' causal (16, 4, 64, 16) and (8, 6, 256, 64), as bench_attention's rows.

    Two forms: the composition (rows .../pytorch/...), what users of torch 1.13 (Debian
    12) write, causal masks by masked_fill of the upper triangle; and, where torch has it
    (2.0 and later), torch.nn.functional.scaled_dot_product_attention (rows
    .../pytorch_sdpa/...), whose CPU kernel is a fused flash-attention one. FLOPs as
    bench_attention counts them (visible pairs only).
    """
    sdpa_fn = getattr(torch.nn.functional, "scaled_dot_product_attention", None)

    def make(B, heads, S, dim, causal, backward, sdpa):
        def setup():
            g = torch.Generator().manual_seed(7)
            q, k, v = (torch.rand(B, heads, S, dim, generator=g) * 2 - 1 for _ in range(3))
            dout = torch.rand(B, heads, S, dim, generator=g) * 2 - 1
            hidden = torch.triu(torch.ones(S, S, dtype=torch.bool), diagonal=1) if causal else None
            scale = 1 / dim ** 0.5
            if backward:
                q.requires_grad_(), k.requires_grad_(), v.requires_grad_()

            def attend(q, k, v):
                if sdpa:
                    return sdpa_fn(q, k, v, is_causal=causal)
                s = (q @ k.transpose(-1, -2)) * scale
                if hidden is not None:
                    s = s.masked_fill(hidden, float("-inf"))
                return torch.softmax(s, dim=-1) @ v

            def run():
                if not backward:
                    with torch.no_grad():
                        return attend(q, k, v)
                q.grad = k.grad = v.grad = None
                out = attend(q, k, v)
                out.backward(dout)
                return out

            def check():
                small = slice(0, min(S, 64))
                got = attend(q, k, v)[0, 0, small].detach()
                qd, kd, vd = (t.detach().double()[0, 0] for t in (q, k, v))
                s = qd @ kd.T * scale
                if causal:
                    s = s.masked_fill(torch.triu(torch.ones(S, S, dtype=torch.bool), 1), float("-inf"))
                want = (torch.softmax(s, -1) @ vd)[small]
                return got, want
            return run, check
        return setup

    cases = [((1, 8, S, 64), causal) for S in seqs for causal in (False, True)]
    cases += [((16, 4, 64, 16), True), ((8, 6, 256, 64), True)]
    for backward in (False, True):
        for (B, heads, S, dim), causal in cases:
            for sdpa in (False, True) if sdpa_fn else (False,):
                pairs = B * heads * (S * (S + 1) / 2 if causal else S * S)
                impl = "pytorch_sdpa" if sdpa else "pytorch"
                name = (f"attention_{'fwdbwd' if backward else 'fwd'}/{impl}/{B}x{heads}x{S}x{S}x{dim}" +
                        ("/causal" if causal else ""))
                yield name, 0, (14 if backward else 4) * pairs * dim, make(B, heads, S, dim, causal, backward, sdpa)


def optimizer_rows():
    """torch.optim.AdamW and SGD(momentum) with foreach=True (the multi-tensor path)
    over 64 tensors, as bench_optimizer's rows; bytes as it counts them."""
    def make(kind, n):
        def setup():
            g = torch.Generator().manual_seed(1)
            params = [torch.nn.Parameter(torch.rand(n // 64, generator=g) * 2 - 1) for _ in range(64)]
            for p in params:
                p.grad = (torch.rand(p.shape, generator=g) * 2 - 1) * 1e-2
            if kind == "adamw":
                opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2, foreach=True)
            else:
                opt = torch.optim.SGD(params, lr=1e-2, momentum=0.9, foreach=True)
            opt.step()  # state allocated outside the timing

            def run():
                opt.step()

            def check():
                before = params[0].detach().clone().double()
                opt.step()
                moved = (params[0].detach().double() - before).abs().max()
                return torch.tensor([float(moved > 0)]), torch.tensor([1.0], dtype=torch.float64)
            return run, check
        return setup

    for n in (1 << 20, 1 << 24):
        yield f"adamw_step/pytorch/{n}", 7 * 4 * n, n, make("adamw", n)
        yield f"sgd_momentum_step/pytorch/{n}", 5 * 4 * n, n, make("sgd", n)


SUITES = {
    "eltwise": lambda: eltwise_rows([("16777216", (1, 16777216)), ("4096x1024", (4096, 1024)),
                                     ("65536x64", (65536, 64)), ("64x65536", (64, 65536))]),
    "softmax": lambda: itertools.chain(
        norm_rows([("4096x1024", (4096, 1024)), ("65536x64", (65536, 64)),
                   ("64x65536", (64, 65536)), ("1x1048576", (1, 1048576))]),
        cross_entropy_rows()),
    "autograd": autograd_rows,
    "train": train_rows,
    "optimizer": optimizer_rows,
    "attention": lambda: attention_rows([int(x) for x in os.environ.get("TG_ATTENTION_SEQS", "256 512 1024 2048").split()]),
}


# Suites whose "items" are FLOPs: their rows carry a FLOPS counter like the C++ rows.
FLOP_SUITES = {"attention"}


def max_rel_error(got, want):
    got, want = got.double(), want.double()
    scale = want.abs().max().clamp_min(1e-30)
    return float((got - want).abs().max() / scale)


def time_row(run, min_time, repetitions):
    """Seconds per call for each repetition: calls batched to last min_time each."""
    run()
    iters, elapsed = 1, 0.0
    while True:
        t0 = time.perf_counter()
        for _ in range(iters):
            run()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time / 4:
            break
        iters *= 4
    iters = max(1, int(iters * min_time / max(elapsed, 1e-9)))
    times = []
    for _ in range(repetitions):
        t0 = time.perf_counter()
        for _ in range(iters):
            run()
        times.append((time.perf_counter() - t0) / iters)
    return iters, times


def cpu_capability():
    """The CPU kernels torch dispatches to (AVX512, AVX2, ...); older releases lack the query."""
    query = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    return query() if query else "unknown (torch < 2.0)"


def loaded_blas():
    mkl = re.search(r"Math Kernel Library Version ([\w.-]+)", torch.__config__.show())
    if mkl:  # PyPI's build links MKL into libtorch_cpu: no library of its own to find
        return f"MKL {mkl.group(1)} (linked into torch)"
    torch.ones(64, 64) @ torch.ones(64, 64)  # make sure the BLAS is loaded
    with open("/proc/self/maps") as f:
        libs = sorted(set(re.findall(r"(/\S*(?:blas|mkl)\S*\.so[.\d]*)", f.read())))
    return ", ".join(libs) or "none found"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", choices=sorted(SUITES), required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--filter", default="")
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.2, help="seconds per repetition")
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--impl", default="pytorch", help="the rows' implementation name")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    blas = loaded_blas()
    print(f"torch {torch.__version__}, CPU capability {cpu_capability()}, "
          f"{torch.get_num_threads()} threads, BLAS: {blas}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}", file=sys.stderr)
    pattern = re.compile(args.filter)
    rows = []
    for name, nbytes, items, setup in SUITES[args.suite]():
        name = f"{name}/threads:{args.threads}".replace("/pytorch/", f"/{args.impl}/", 1)
        if not pattern.search(name):
            continue
        run, check = setup()
        got, want = check()
        err = max_rel_error(got, want)
        if not err < 1e-3:
            rows.append({"name": name, "run_name": name, "run_type": "iteration",
                         "error_occurred": True,
                         "error_message": f"result check failed: relative error {err:.3g}"})
            print(f"{name}: result check failed ({err:.3g})", file=sys.stderr)
            continue
        iters, times = time_row(run, args.min_time, args.repetitions)
        base = {"run_name": name, "repetitions": args.repetitions, "threads": args.threads,
                "iterations": iters, "time_unit": "us"}
        for i, t in enumerate(times):
            row = {**base, "name": name, "run_type": "iteration", "repetition_index": i,
                   "real_time": t * 1e6, "items_per_second": items / t}
            if args.suite in FLOP_SUITES:
                row["FLOPS"] = items / t
            if nbytes:
                row["bytes_per_second"] = nbytes / t
            rows.append(row)
        for agg, t in (("mean", statistics.mean(times)), ("median", statistics.median(times))):
            row = {**base, "name": f"{name}_{agg}", "run_type": "aggregate",
                   "aggregate_name": agg, "real_time": t * 1e6, "items_per_second": items / t}
            if args.suite in FLOP_SUITES:
                row["FLOPS"] = items / t
            if nbytes:
                row["bytes_per_second"] = nbytes / t
            rows.append(row)
        med = statistics.median(times)
        rate = f"{nbytes / med / 1e9:.1f} GB/s" if nbytes else f"{med * 1e6:.3f} us per call"
        print(f"{name}: {rate} (median of {args.repetitions})", file=sys.stderr)

    doc = {"context": {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host_name": platform.node(),
                       "executable": f"torch {torch.__version__}", "tg_threads": args.threads,
                       "tg_peer": f"pytorch {torch.__version__} ({args.impl}), CPU capability "
                                  f"{cpu_capability()}, BLAS {blas}",
                       "tg_cpu_model": platform.processor() or platform.machine()},
           "benchmarks": rows}
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, args.out)  # never a partly written file
    return 0


if __name__ == "__main__":
    sys.exit(main())
