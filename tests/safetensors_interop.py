"""Cross-tool round trip with the reference safetensors implementation (PyPI's, its
Rust core): a file it writes, read by tilegrad and written again by tilegrad
(tg_safetensors_copy), reads back in the reference with the same names, dtypes, shapes,
bytes and metadata. Every dtype tilegrad stores (F32, F64, BF16, F16, I64) with random
bits (NaNs, infinities, subnormals, -0 among them), empty and 0-d tensors, and metadata
beyond ASCII.

    build/st-venv/bin/python tests/safetensors_interop.py build/tests/tg_safetensors_copy

Exits 77 (CTest's skip) when the safetensors package is not installed
(scripts/peers/safetensors installs it).
"""
import os
import random
import subprocess
import sys
import tempfile

try:
    from safetensors import deserialize, safe_open, serialize
except ImportError:
    print("safetensors_interop: the safetensors package is missing (scripts/peers/safetensors); skipped")
    sys.exit(77)

SIZES = {"float32": 4, "float64": 8, "bfloat16": 2, "float16": 2, "int64": 8}
TAGS = {"float32": "F32", "float64": "F64", "bfloat16": "BF16", "float16": "F16", "int64": "I64"}


def main():
    tool = sys.argv[1]
    rng = random.Random(20261206)
    tensors = {}
    shapes = [[3, 4], [5], [2, 3, 2], [0, 3], [], [1, 1, 1, 7]]
    for k, dtype in enumerate(SIZES):
        for j, shape in enumerate(shapes):
            n = 1
            for d in shape:
                n *= d
            data = bytes(rng.getrandbits(8) for _ in range(n * SIZES[dtype]))
            tensors[f"{dtype}.{j}/\u00e9\u20ac"] = {"dtype": dtype, "shape": shape, "data": data}
    metadata = {"format": "pt", "k\u00e9y": "v\U0001f600", "empty": ""}
    with tempfile.TemporaryDirectory() as d:
        ref, ours = os.path.join(d, "ref.safetensors"), os.path.join(d, "ours.safetensors")
        with open(ref, "wb") as f:
            f.write(serialize(tensors, metadata=metadata))
        subprocess.run([tool, ref, ours], check=True)
        with open(ours, "rb") as f:
            back = dict(deserialize(f.read()))
        with safe_open(ours, framework="numpy") as f:
            meta_back = f.metadata()
    bad = []
    if set(back) != set(tensors):
        bad.append(f"names differ: {sorted(set(back) ^ set(tensors))}")
    for name, t in tensors.items():
        if name not in back:
            continue
        b = back[name]
        if b["dtype"] != TAGS[t["dtype"]] or list(b["shape"]) != t["shape"] or bytes(b["data"]) != t["data"]:
            bad.append(f"{name}: {b['dtype']} {b['shape']} ({len(b['data'])} bytes) against "
                       f"{TAGS[t['dtype']]} {t['shape']} ({len(t['data'])} bytes)")
    if meta_back != metadata:
        bad.append(f"metadata {meta_back} against {metadata}")
    for line in bad:
        print("safetensors_interop:", line)
    print(f"safetensors_interop: {len(tensors)} tensors, {len(bad)} differences")
    sys.exit(1 if bad else 0)


main()
