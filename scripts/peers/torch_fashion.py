"""PyTorch as a peer for examples/mlp_fashion: the same recipe, timed to an accuracy.

MLP 784 -> 256 -> 256 -> 10 (ReLU), cross-entropy, AdamW (lr 1e-3, weight decay 1e-4),
a linear warmup from 0.1 x lr over min(500, one epoch) steps then a cosine over the rest
of --epochs, batch 128, inputs scaled to [0, 1], reshuffled each epoch. Batches are
gathered by indexing the preloaded tensors (what a user who cares about speed writes;
DataLoader's per-sample collate would cost torch more than the model does). Only the
training loop is timed, as in mlp_fashion; the test set is scored after every epoch.

Run through scripts/train-bench, which pins the BLAS and thread environment as
scripts/peers/torch-bench does. Ends with the same `result ...` line as the example.
"""
import argparse
import gzip
import math
import os
import struct
import sys
import time

import torch


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, kind, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or kind != 0x08:
        raise SystemExit(f"{path}: not an IDX file of unsigned bytes")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8)
    return data.reshape(dims)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--epochs", type=int, default=15, help="the schedule's length")
    ap.add_argument("--target", type=float, default=2.0, help="stop once test accuracy reaches this")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    load = lambda name: read_idx(os.path.join(args.data, name))
    train_x = load("train-images-idx3-ubyte.gz").reshape(-1, 784).float() / 255
    train_y = load("train-labels-idx1-ubyte.gz").long()
    test_x = load("t10k-images-idx3-ubyte.gz").reshape(-1, 784).float() / 255
    test_y = load("t10k-labels-idx1-ubyte.gz").long()
    n = train_x.shape[0]

    nn = torch.nn
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4)
    steps_per_epoch = math.ceil(n / args.batch)
    warmup = min(steps_per_epoch, 500)
    t_max = max(1, args.epochs * steps_per_epoch - warmup)

    def factor(step):
        if step < warmup:
            return 0.1 + 0.9 * step / warmup
        return (1 + math.cos(math.pi * min(step - warmup, t_max) / t_max)) / 2
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)

    print(f"torch_fashion: torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"{args.epochs}-epoch schedule", file=sys.stderr)
    trained, accuracy, seconds_to_target, epochs_run = 0.0, 0.0, -1.0, 0
    for epoch in range(args.epochs):
        order = torch.randperm(n)
        start = time.perf_counter()
        total = 0.0
        for b in range(0, n, args.batch):
            idx = order[b:b + args.batch]
            loss = torch.nn.functional.cross_entropy(model(train_x[idx]), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * idx.numel()
        secs = time.perf_counter() - start
        trained += secs
        epochs_run = epoch + 1
        with torch.no_grad():
            accuracy = (model(test_x).argmax(1) == test_y).float().mean().item()
        print(f"epoch {epoch + 1}/{args.epochs}  loss {total / n:.6f}  test accuracy {accuracy:.4f}  "
              f"{n / secs:.0f} samples/s  {secs:.1f} s", file=sys.stderr)
        if seconds_to_target < 0 and accuracy >= 0.88:
            seconds_to_target = trained
        if accuracy >= args.target:
            break
    print(f"result test_accuracy={accuracy:.6g} epochs={epochs_run} seconds={trained:.6g} "
          f"samples_per_s={n * epochs_run / trained:.6g} seconds_to_88={seconds_to_target:.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
