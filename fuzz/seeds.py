#!/usr/bin/python3
"""Writes the fuzz targets' seed corpora (fuzz/corpus/TARGET/), small valid inputs
that reach each loader's main paths, from the formats' specifications. Rerun after
changing it: python3 fuzz/seeds.py (they are committed; this is how they were made)."""
import gzip
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, raw bytes)] in file order."""
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def f32(*v):
    return struct.pack(f"<{len(v)}f", *v)


put("safetensors", "empty", safetensors([]))
put("safetensors", "one_f32", safetensors([("w", "F32", [2, 2], f32(1, -2, 3.5, 0))]))
put("safetensors", "dtypes_meta", safetensors([
    ("a", "F64", [2], struct.pack("<2d", 1.0, -0.5)),
    ("b", "BF16", [3], struct.pack("<3H", 0x3F80, 0xC000, 0x7FC0)),
    ("c", "F16", [1, 2], struct.pack("<2H", 0x3C00, 0xFC00)),
    ("d", "I64", [2], struct.pack("<2q", -1, 1 << 40)),
    ("e", "F32", [0, 5], b""),
    ("s", "F32", [], f32(2.5)),
], {"format": "pt", "k\u00e9": "v\U0001f600"}))

put("json", "object", '{"a":[1,2.5e3,-0,true,false,null],"b":{"c":"x\\u00e9\\ud83d\\ude00\\n"}}')
put("json", "nested", "[[[[{}]]],[],{\"\":\"\"}]")
put("json", "numbers", "[0,-1,1e-308,1.7976931348623157e308,9223372036854775807,-9223372036854775808,18446744073709551616]")
put("json", "utf8", '{"\u00e9\u20ac\U0001f600":"\u0800\ud7ff"}')


def idx(magic, dims, payload):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload


put("idx", "labels", idx(0x801, [5], bytes([0, 1, 2, 9, 3])))
put("idx", "images", idx(0x803, [2, 2, 3], bytes(range(12))))
put("idx", "images_gz", gzip.compress(idx(0x803, [1, 4, 4], bytes(range(16))), mtime=0))

# The first byte picks the separator (low two bits: , ; tab space) and the fill (bit 2).
put("csv", "plain", b"\x00x,y,z\n1,2,3\n4.5,-6e2,7\n")
put("csv", "missing_median", b"\x04a,b\n1,NA\n2,\n?,3\n4,NaN\n")
put("csv", "quoted_semicolon", b'\x01"p";"q"\n"1";2\n 3 ; 4 \n')

# A state dict for the target's model: Linear(3, 4) + LayerNorm(4) + Linear(4, 2, no bias).
model = [("0.weight", "F32", [4, 3], f32(*[0.1 * i for i in range(12)])),
         ("0.bias", "F32", [4], f32(0, 1, 2, 3)),
         ("1.weight", "F32", [4], f32(1, 1, 1, 1)),
         ("1.bias", "F32", [4], f32(0, 0, 0, 0)),
         ("2.weight", "F32", [2, 4], f32(*range(8)))]
put("state_dict", "strict_match", b"\x01" + safetensors(model))
put("state_dict", "partial_f64", b"\x00" + safetensors([("0.bias", "F64", [4], struct.pack("<4d", 1, 2, 3, 4))]))
# The text corpus: the first byte asks for at least (byte + 1) bytes of text.
put("text", "ascii", b"\x00To be, or not to be, that is the question:\n")
put("text", "utf8_and_nul", "\x03na\u00efve caf\u00e9 \u2014 \x00 \U0001F600\n".encode())
put("text", "too_short", b"\x20short")
put("text", "all_bytes", b"\x00" + bytes(range(256)))
put("text", "empty", b"\x00")
# The examples' command line, one token a line.
put("args", "typical", "--threads\n2\n--seed\n42\n--epochs\n3\n--out\nresults\n--batch\n64\n--lr\n0.001\n--amp\nbf16\n--quick")
put("args", "device", "--device\ncuda:1\n--resume\nck.st\n--limit\n100\n--heads\n4")
put("args", "bad", "--threads\n3abc\n--seed\n-1\n--batch\n1e30\n--lr\nnan")
# The ops target reads its choices from bytes: a few fixed pseudo-random programs.
import random as _random
_r = _random.Random(20261206)
for _k in range(8):
    put("ops", f"program_{_k}", bytes(_r.getrandbits(8) for _ in range(160)))
put("state_dict", "wrong_shape", b"\x01" + safetensors(model[:4] + [("2.weight", "F32", [4, 2], f32(*range(8)))]))
