#!/usr/bin/env python3
"""The CUDA checks that need no GPU (CTest cuda_static), on what the tg_cuda build left in
its keep directory (cuda/CMakeLists.txt): ptxas's resource report and the PTX.

  cuda_static_check.py KEEP_DIR          check, print a table of every kernel
  cuda_static_check.py --sass KEEP_DIR   also disassemble the cubins with cuobjdump and
                                         check the SASS (scripts/gpu-check; needs cuobjdump)

Checks, each a failure when it does not hold:
  report  every kernel: 0 bytes spill stores and loads; the kernels named in
          NO_STACK (GEMM, softmax, layer norm, reductions, cross-entropy, attention): a
          0-byte stack frame (no local memory); those in NO_INJECTED_WAIT (the Hopper
          GEMM, every step): no warpgroup.wait injected by ptxas (C7517) anywhere but
          right before a `trap;` (the PTX line ptxas names: the hang guard's exit)
  PTX     the SGEMM kernels: no local memory (.local, ld.local, st.local); their hottest
          loop (the one with the most fma.rn.f32) multiplies with fma.rn.f32, reads
          shared memory only with ld.shared.v4.f32, and does >= 8 FMAs per such load; the
          cp.async configuration copies with cp.async.cg.shared.global and waits on it
          the tensor-core kernels (TENSOR_CORE: TF32 and BF16): no local memory, their
          mma.sync in the hot loop, TF32 inputs rounded by cvt.rna, BF16 tiles by cp.async;
          the BF16 attention kernels also ldmatrix (.trans) and a cp.async double buffer;
          the FP32 attention forward its cp.async K/V double buffer
  SASS    the SGEMM kernels: FFMA and LDS.128 present, no LDL / STL; tensor cores: HMMA
"""
import glob
import os
import re
import shutil
import subprocess
import sys

NO_STACK = ("sgemm", "softmax", "layer_norm", "reduce", "cross_entropy", "attention")
SGEMM = ("sgemm_tiled<128,", "sgemm_tiled<64,")  # the FP32 SGEMM kernels (tile128*, tile64)
# wgmma kernels whose products must stay asynchronous: ptxas may not inject a
# warpgroup.wait (C7517) to reach their accumulators. ptxas also retires the products
# in flight before a thread exits, and barrier_wait's hang guard (a trap after ~10 s)
# is such an exit: an injection at a PTX line that is `trap;` is on that path, which a
# working kernel never takes, and is only reported (step 1 has one in each type; with
# the guard compiled out it has none).
NO_INJECTED_WAIT = ("gemm_wgmma", "attention_fwd_wgmma")
# The tensor-core kernels: name -> (their mma, how many per iteration of the hot loop at
# least, what else their PTX must hold).
WGMMA_NEEDS = ["cp.async.bulk.tensor.2d", "mbarrier.try_wait.parity", "mbarrier.arrive.expect_tx",
               "wgmma.fence.sync.aligned", "wgmma.commit_group.sync.aligned", "wgmma.wait_group.sync.aligned"]
WGMMA_WS_NEEDS = WGMMA_NEEDS + ["setmaxnreg.dec.sync.aligned.u32", "setmaxnreg.inc.sync.aligned.u32",
                                "mbarrier.arrive.shared::cta.b64"]
WGMMA_CLUSTER_NEEDS = [n for n in WGMMA_WS_NEEDS if n != "mbarrier.arrive.shared::cta.b64"] + [
    ".multicast::cluster", "mapa.shared::cluster.u32", "mbarrier.arrive.release.cluster.shared::cluster.b64",
    "barrier.cluster.arrive.release.aligned", "barrier.cluster.wait.acquire.aligned"]
# The Hopper attention forward: 4-D TMA copies into a ring with full and empty barriers,
# S = Q K^T from shared memory (m64n64k16, kD / 16 per 64 keys in the hot loop), O += P V^T
# with P in registers (m64n{kD}k16: its A operand a register list).
ATTN_WGMMA_NEEDS = ["cp.async.bulk.tensor.4d", "mbarrier.try_wait.parity", "mbarrier.arrive.expect_tx",
                    "mbarrier.arrive.shared::cta.b64", "wgmma.fence.sync.aligned", "wgmma.commit_group.sync.aligned",
                    "wgmma.wait_group.sync.aligned", "}, {%r"]  # the last: an A operand in registers
RING_NEEDS = ["ldmatrix.sync.aligned.m8n8.x4.", "cp.async.cg.shared.global", "cp.async.wait_group 1"]
ATTENTION_NEEDS = ["ldmatrix.sync.aligned.m8n8.x4.shared.b16", "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16",
                   "cp.async.cg.shared.global", "cp.async.wait_group 1", "ex2.approx.ftz.f32"]
# The atomic-dQ kernels add dQ's pairs with sm_90's 8-byte vector adds (atom. or red.).
ATOMIC_DQ_NEEDS = ATTENTION_NEEDS + ["global.add.v2.f32"]
TENSOR_CORE = {
    "sgemm_tf32": ("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32", 16, ["cvt.rna.tf32.f32"]),
    "gemm_half_128x128<false>": ("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 32,
                                 ["cp.async.cg.shared.global", "cp.async.wait_group"]),
    "gemm_half_128x128<true>": ("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", 32,
                                ["cp.async.cg.shared.global", "cp.async.wait_group"]),
    # The ring configuration: 3 cp.async stages, ldmatrix fragment reads (.trans for
    # operands stored k-major: the other transposes).
    "gemm_half_ring_128x128<false,": ("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 32, RING_NEEDS),
    "gemm_half_ring_128x128<true,": ("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", 32, RING_NEEDS),
    # Attention forward on 16-bit tensor cores: per 64-key tile, S = Q K^T and O += P V;
    # K and V double-buffered by cp.async, their fragments by ldmatrix (V's by .trans).
    "attention_fwd_16<64, false>": ("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 64, ATTENTION_NEEDS),
    "attention_fwd_16<128, false>": ("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 128, ATTENTION_NEEDS),
    "attention_fwd_16<64, true>": ("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", 64, ATTENTION_NEEDS),
    "attention_fwd_16<128, true>": ("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", 128, ATTENTION_NEEDS),
    # Its backward: per 32-query step S^T, dP^T, dV, dK; per 64-key step S, dP, dQ. At
    # head dim 128 the k loop of S and dP stays rolled (unrolled, it spills): 80 and 96
    # in the loop's text, 128 and 192 per step. The atomic path's dK / dV kernel (last
    # template argument true) adds dS K per step (16 or 2 x 16 mma) and its atomics.
    "attention_bwd_kv_16<64, false, false>": ("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 64, ATTENTION_NEEDS),
    "attention_bwd_kv_16<128, false, false>": ("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 80, ATTENTION_NEEDS),
    "attention_bwd_kv_16<64, false, true>": ("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 80, ATOMIC_DQ_NEEDS),
    "attention_bwd_kv_16<128, false, true>": ("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 96, ATOMIC_DQ_NEEDS),
    "attention_bwd_q_16<64, false>": ("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 96, ATTENTION_NEEDS),
    "attention_bwd_q_16<128, false>": ("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 96, ATTENTION_NEEDS),
    "attention_bwd_kv_16<64, true, false>": ("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", 64, ATTENTION_NEEDS),
    "attention_bwd_kv_16<128, true, false>": ("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", 80, ATTENTION_NEEDS),
    "attention_bwd_kv_16<64, true, true>": ("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", 80, ATOMIC_DQ_NEEDS),
    "attention_bwd_kv_16<128, true, true>": ("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", 96, ATOMIC_DQ_NEEDS),
    "attention_bwd_q_16<64, true>": ("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", 96, ATTENTION_NEEDS),
    "attention_bwd_q_16<128, true>": ("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", 96, ATTENTION_NEEDS),
    "attention_fwd_wgmma<64, 0>": ("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16", 4,
                                   ATTN_WGMMA_NEEDS + ["m64n64k16.f32.bf16.bf16 {"]),
    "attention_fwd_wgmma<128, 0>": ("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16", 8,
                                    ATTN_WGMMA_NEEDS + ["m64n128k16.f32.bf16.bf16 {"]),
    "attention_fwd_wgmma<64, 1>": ("wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16", 4,
                                   ATTN_WGMMA_NEEDS + ["m64n64k16.f32.f16.f16 {"]),
    "attention_fwd_wgmma<128, 1>": ("wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16", 8,
                                    ATTN_WGMMA_NEEDS + ["m64n128k16.f32.f16.f16 {"]),
    # The Hopper kernel (sm_90a): 4 warpgroup MMAs per k tile of 64, operands by TMA.
    "gemm_wgmma_128x128<0>": ("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16", 4, WGMMA_NEEDS),
    "gemm_wgmma_128x128<1>": ("wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16", 4, WGMMA_NEEDS),
    "gemm_wgmma_128x128<2>": ("wgmma.mma_async.sync.aligned.m64n128k8.f32.tf32.tf32", 4, WGMMA_NEEDS),
    # Step 2: 128 x 256 tiles, warp-specialized (a TMA producer, two consumers that
    # release stages on empty barriers; registers handed over by setmaxnreg).
    "gemm_wgmma_ws_128x256<0, 1>": ("wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16", 4, WGMMA_WS_NEEDS),
    "gemm_wgmma_ws_128x256<1, 1>": ("wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16", 4, WGMMA_WS_NEEDS),
    "gemm_wgmma_ws_128x256<2, 1>": ("wgmma.mma_async.sync.aligned.m64n256k8.f32.tf32.tf32", 4, WGMMA_WS_NEEDS),
    # Step 3: the same in clusters of two, B's halves multicast, stages released to both.
    "gemm_wgmma_ws_128x256<0, 2>": ("wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16", 4, WGMMA_CLUSTER_NEEDS),
    "gemm_wgmma_ws_128x256<1, 2>": ("wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16", 4, WGMMA_CLUSTER_NEEDS),
    "gemm_wgmma_ws_128x256<2, 2>": ("wgmma.mma_async.sync.aligned.m64n256k8.f32.tf32.tf32", 4, WGMMA_CLUSTER_NEEDS),
}


# Kernels that must copy by cp.async (no mma): the FP32 attention forward's K/V double
# buffer (head dims to 128; 256 is single-buffered, its copies waited for at once).
ASYNC_COPY = {
    "attention_fwd<32>": ["cp.async.cg.shared.global", "cp.async.wait_group 1"],
    "attention_fwd<64>": ["cp.async.cg.shared.global", "cp.async.wait_group 1"],
    "attention_fwd<128>": ["cp.async.cg.shared.global", "cp.async.wait_group 1"],
    "attention_fwd<256>": ["cp.async.cg.shared.global", "cp.async.wait_group 0"],
}


def demangle(names):
    tool = shutil.which("c++filt")
    if not tool or not names:
        return {n: n for n in names}
    out = subprocess.run([tool], input="\n".join(names), capture_output=True, text=True).stdout.split("\n")
    return {n: (out[i] if i < len(out) and out[i] else n) for i, n in enumerate(names)}


def short(name):
    """'tg::cuda::gemmk::sgemm_tiled<128, false, true, ...>(...)' -> 'sgemm_tiled<128, false, true, ...>'"""
    name = re.sub(r"\(anonymous namespace\)::", "", name)
    depth, cut = 0, len(name)
    for i, ch in enumerate(name):  # drop the parameter list (the first '(' outside <...>)
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "(" and depth == 0:
            cut = i
            break
    return re.sub(r"^void ", "", name[:cut].replace("tg::cuda::", ""))


def parse_report(path):
    """{mangled kernel: {stack, spill_st, spill_ld, regs, smem, injected_wait}} from one ptxas -v
    report; injected_wait lists the PTX lines ptxas names."""
    kernels, current = {}, None
    for line in open(path, errors="replace"):
        # ptxas serializing wgmma: "(C7517) warpgroup.wait is injected in around line N ... in function 'NAME'"
        m = re.search(r"\(C7517\).*?line (\d+).*in function '([^']+)'", line)
        if m:
            k = kernels.setdefault(m.group(2), {"regs": 0, "smem": 0})
            k.setdefault("injected_wait", []).append(int(m.group(1)))
            continue
        m = re.search(r"Function properties for (\S+)", line)
        if m:
            current = kernels.setdefault(m.group(1), {"regs": 0, "smem": 0})
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m and current is not None:
            current.update(stack=int(m.group(1)), spill_st=int(m.group(2)), spill_ld=int(m.group(3)))
            continue
        m = re.search(r"Used (\d+) registers", line)
        if m and current is not None:
            current["regs"] = int(m.group(1))
            s = re.search(r"(\d+) bytes smem", line)
            current["smem"] = int(s.group(1)) if s else 0
            current = None
    return kernels


def ptx_line(path, number):
    """Line `number` (1-based) of a PTX file, stripped; '' past its end or without the file."""
    if not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        for i, line in enumerate(f, 1):
            if i == number:
                return line.strip()
    return ""


def ptx_entries(path):
    """{mangled entry: body text} of one PTX file."""
    text = open(path, errors="replace").read()
    starts = [(m.start(), m.group(1)) for m in re.finditer(r"\.entry\s+(\S+?)\s*\(", text)]
    entries = {}
    for i, (pos, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        entries[name] = text[pos:end]
    return entries


def loops(body):
    """The bodies of the PTX loops: from a label to a later branch back to it."""
    lines = body.split("\n")
    where = {}
    found = []
    for i, line in enumerate(lines):
        m = re.match(r"\s*(\$L__\w+):", line)
        if m:
            where[m.group(1)] = i
        m = re.search(r"\bbra(?:\.uni)?\s+(\$L__\w+);", line)
        if m and m.group(1) in where:
            found.append("\n".join(lines[where[m.group(1)]:i + 1]))
    return found


def check_sgemm_ptx(name, body, failures):
    if re.search(r"\.local\b|ld\.local|st\.local|__local_depot", body):
        failures.append(f"PTX {name}: uses local memory")
    candidates = loops(body)
    if not candidates:
        failures.append(f"PTX {name}: no loop found")
        return None
    hot = max(candidates, key=lambda l: l.count("fma.rn.f32"))
    fma = hot.count("fma.rn.f32")
    v4 = len(re.findall(r"ld\.shared\.v4\.f32", hot))
    narrow = len(re.findall(r"ld\.shared\.(?:v2\.)?f32", hot))
    if fma == 0:
        failures.append(f"PTX {name}: the hottest loop has no fma.rn.f32")
    if v4 == 0:
        failures.append(f"PTX {name}: the hottest loop has no ld.shared.v4.f32")
    if narrow:
        failures.append(f"PTX {name}: the hottest loop has {narrow} narrower shared loads (ld.shared.f32 / .v2)")
    if v4 and fma < 8 * v4:
        failures.append(f"PTX {name}: {fma} FMAs for {v4} 128-bit shared loads (< 8 per load)")
    return fma, v4


def check_tensor_core_ptx(name, body, failures, mma_op, least, needs):
    if re.search(r"\.local\b|ld\.local|st\.local|__local_depot", body):
        failures.append(f"PTX {name}: uses local memory")
    candidates = loops(body)
    hot = max(candidates, key=lambda l: l.count(mma_op)) if candidates else ""
    mma = hot.count(mma_op)
    if mma < least:
        failures.append(f"PTX {name}: the hottest loop has {mma} {mma_op} (expected >= {least})")
    for need in needs:
        if need not in body:
            failures.append(f"PTX {name}: no {need}")
    return mma


def check_sass(tool, cubin, failures):
    """Checks one cubin's tensor-core and SGEMM functions; returns how many SGEMMs it holds."""
    out = subprocess.run([tool, "-sass", cubin], capture_output=True, text=True)
    if out.returncode != 0:
        failures.append(f"SASS: cuobjdump -sass {cubin} failed: {out.stderr.strip()}")
        return 0
    functions = re.split(r"\n\s*Function : ", out.stdout)[1:]
    seen = 0
    names = [fn.split("\n", 1)[0].strip() for fn in functions]
    labels = demangle(names)  # cuobjdump names functions mangled; the keys are demangled
    for name, fn in zip(names, functions):
        label = short(labels[name])
        if any(k in label for k in TENSOR_CORE):
            # wgmma is HGMMA in SASS, mma.sync HMMA.
            op = "HGMMA" if "wgmma" in label else "HMMA"
            count = len(re.findall(r"\b" + op + r"\.", fn))
            print(f"SASS {label}: {op} {count}")
            if count == 0:
                failures.append(f"SASS {label}: no {op} (tensor-core) instruction")
            continue
        if not any(k in label for k in SGEMM):
            continue
        seen += 1
        ffma, lds128 = len(re.findall(r"\bFFMA\b", fn)), len(re.findall(r"\bLDS\.128\b", fn))
        local = len(re.findall(r"\b(?:LDL|STL)\b", fn))
        print(f"SASS {label}: FFMA {ffma}, LDS.128 {lds128}, LDL/STL {local}")
        if ffma == 0 or lds128 == 0:
            failures.append(f"SASS {name}: FFMA {ffma}, LDS.128 {lds128} (both expected)")
        if local:
            failures.append(f"SASS {name}: {local} local-memory instructions (LDL/STL)")
    return seen


def main(argv):
    sass = "--sass" in argv
    args = [a for a in argv if a != "--sass"]
    if len(args) != 1:
        print(__doc__)
        return 2
    keep = args[0]
    reports = sorted(glob.glob(os.path.join(keep, "*.ptxas.txt")))
    ptxs = sorted(glob.glob(os.path.join(keep, "*.ptx")))
    failures = []
    if not reports or not ptxs:
        print(f"cuda_static_check: no ptxas reports or PTX in {keep} (build tg_cuda first)")
        return 1

    kernels, ptx_of = {}, {}
    for r in reports:
        found = parse_report(r)
        kernels.update(found)
        ptx_of.update({name: r[: -len(".ptxas.txt")] + ".ptx" for name in found})
    names = demangle(sorted(kernels))
    print(f"{'kernel':58} {'regs':>5} {'smem':>7} {'stack':>6} {'spills':>7}")
    for mangled in sorted(kernels, key=lambda n: short(names[n])):
        k = kernels[mangled]
        if "stack" not in k:
            failures.append(f"report {mangled}: no stack/spill line")
            continue
        label = short(names[mangled])
        print(f"{label[:58]:58} {k['regs']:5} {k['smem']:7} {k['stack']:6} {k['spill_st'] + k['spill_ld']:7}")
        if k["spill_st"] or k["spill_ld"]:
            failures.append(f"report {label}: {k['spill_st']} bytes spill stores, {k['spill_ld']} bytes spill loads")
        if k["stack"] and any(s in label for s in NO_STACK):
            failures.append(f"report {label}: {k['stack']} bytes stack frame (local memory)")
        for line in k.get("injected_wait", []):
            at = ptx_line(ptx_of[mangled], line)
            if at == "trap;":
                print(f"NOTE report {label}: ptxas injected a warpgroup.wait (C7517) before the trap at PTX line "
                      f"{line} (the hang guard's exit, never taken by a working kernel)")
                continue
            note = (f"report {label}: ptxas injected a warpgroup.wait (C7517) at PTX line {line} ({at!r}): "
                    "its wgmma do not overlap")
            if any(s in label for s in NO_INJECTED_WAIT):
                failures.append(note)
            else:
                print("NOTE", note)

    sgemm_seen, keys_seen, sgemm_keys_seen = 0, set(), set()
    for p in ptxs:
        entries = ptx_entries(p)
        dm = demangle(sorted(entries))
        for mangled, body in sorted(entries.items()):
            label = short(dm[mangled])
            for key, needs in ASYNC_COPY.items():
                if label.endswith(key):
                    keys_seen.add(key)
                    missing = [n for n in needs if n not in body]
                    if missing:
                        failures.append(f"PTX {label}: no {', '.join(missing)}")
                    print(f"PTX {label}: " + ("cp.async double buffer" if "wait_group 1" in needs[1] else "cp.async"))
            kind = next((k for k in TENSOR_CORE if k in label), None)
            if kind:
                keys_seen.add(kind)
                mma_op, least, needs = TENSOR_CORE[kind]
                mma = check_tensor_core_ptx(label, body, failures, mma_op, least, needs)
                print(f"PTX {label}: hottest loop {mma} x {mma_op}")
                continue
            sgemm_key = next((k for k in SGEMM if k in label), None)
            if sgemm_key is None:
                continue
            sgemm_seen += 1
            sgemm_keys_seen.add(sgemm_key)
            got = check_sgemm_ptx(label, body, failures)
            # The cp.async configuration (sgemm_tiled's last template argument) copies by cp.async.
            if (re.search(r",\s*true>$", label)
                    and not ("cp.async.cg.shared.global" in body and "cp.async.wait_group" in body)):
                failures.append(f"PTX {label}: the cp.async kernel has no cp.async.cg.shared.global / wait_group")
            if got:
                print(f"PTX {label}: hottest loop {got[0]} fma.rn.f32, {got[1]} ld.shared.v4.f32")
    for key in SGEMM:
        if key not in sgemm_keys_seen:
            failures.append(f"PTX: no SGEMM entry {key!r} in {keep}/*.ptx")
    # A kernel renamed or given another template argument would escape its checks.
    for key in sorted((set(TENSOR_CORE) | set(ASYNC_COPY)) - keys_seen):
        failures.append(f"PTX: no entry matches {key!r} (renamed? its checks would not run)")

    if sass:
        tool = shutil.which("cuobjdump") or ("/usr/local/cuda/bin/cuobjdump" if os.path.exists("/usr/local/cuda/bin/cuobjdump") else None)
        cubins = sorted(glob.glob(os.path.join(keep, "*.cubin")))
        if not tool:
            failures.append("SASS: cuobjdump not found")
        elif sum(check_sass(tool, cubin, failures) for cubin in cubins) == 0:
            failures.append(f"SASS: no SGEMM function in {keep}/*.cubin")

    for f in failures:
        print("FAIL", f)
    print(f"cuda_static_check: {len(kernels)} kernels, {sgemm_seen} SGEMM entries, "
          f"{'ok' if not failures else str(len(failures)) + ' failures'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
