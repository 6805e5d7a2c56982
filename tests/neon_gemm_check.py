"""The NEON SGEMM micro-kernel's k loop, checked in the object code of an aarch64 build.

cpu/gemm/gemm_neon.cpp writes the 8x12 kernel in intrinsics and relies on the compiler
to keep its 24 accumulators, 2 A vectors and 3 B vectors in the 32 vector registers. A
compiler that spilled them, or turned FMLA by element into a DUP and a FMLA, would halve
the kernel's rate without changing a result, so no numerical test would notice. This
disassembles the kernel and finds its k loop (the shortest backward branch within the
function that encloses FMLAs), then requires of it:
  - 24 FMLAs per k step, each by element (`fmla vD.4s, vN.4s, vM.s[i]`), and no other
    multiply or DUP;
  - no load or store that addresses the stack (`[sp`), and no store at all;
  - 5 vector loads per k step at most (two of A, three of B; an LDP counts twice).

    python3 tests/neon_gemm_check.py aarch64-linux-gnu-objdump build-aarch64/cpu/libtilegrad_cpu.a
"""
import re
import subprocess
import sys

KERNEL = "gemm_neon_8x12"
FMLA_ELEM = re.compile(r"\bfmla\s+v\d+\.4s,\s*v\d+\.4s,\s*v\d+\.s\[[0-3]\]")
BRANCH = re.compile(r"\b(b\.\w+|cbn?z|tbn?z|b)\s+(?:[^,]*,\s*)*([0-9a-f]+)\s+<")


def kernel_body(objdump, lib):
    dis = subprocess.run([objdump, "-d", "--no-show-raw-insn", lib], capture_output=True, text=True,
                         check=True).stdout
    body, inside = [], False
    for line in dis.splitlines():
        head = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if head:
            inside = KERNEL in head[1]
            continue
        if inside:
            m = re.match(r"^\s*([0-9a-f]+):\s+(.*)$", line)
            if m:
                body.append((int(m[1], 16), m[2].strip()))
    return body


def main():
    objdump, lib = sys.argv[1], sys.argv[2]
    body = kernel_body(objdump, lib)
    if not body:
        sys.exit(f"{KERNEL} not found in {lib}")
    first = body[0][0]

    def instructions(loop):
        return [ins for addr, ins in body if loop[0] <= addr <= loop[1]]

    loops = []  # (start, end) of each backward branch's range inside the function
    for addr, ins in body:
        m = BRANCH.search(ins)
        if m and first <= int(m[2], 16) <= addr:
            loop = (int(m[2], 16), addr)
            if any(FMLA_ELEM.search(i) for i in instructions(loop)):
                loops.append(loop)
    if not loops:
        sys.exit(f"{KERNEL}: no loop of FMLAs found")
    hot = min(loops, key=lambda lp: lp[1] - lp[0])
    ins = instructions(hot)
    fmla = sum(bool(FMLA_ELEM.search(i)) for i in ins)
    loads = sum(2 if i.startswith("ldp") else 1 for i in ins if re.match(r"ld(r|p|1)\s+(q|v)", i))
    problems = []
    if fmla == 0 or fmla % 24:
        problems.append(f"{fmla} FMLAs by element in the loop, expected a multiple of 24")
    steps = max(fmla // 24, 1)
    other_mul = [i for i in ins if re.match(r"(fmul|fmla|fmadd|dup)\b", i) and not FMLA_ELEM.search(i)]
    if other_mul:
        problems.append(f"multiplies or DUPs that are not FMLA by element: {other_mul[:4]}")
    stack = [i for i in ins if "[sp" in i]
    if stack:
        problems.append(f"stack traffic in the loop: {stack[:4]}")
    stores = [i for i in ins if re.match(r"st(r|p|1|ur)\b", i)]
    if stores:
        problems.append(f"stores in the loop: {stores[:4]}")
    if loads > 5 * steps:
        problems.append(f"{loads} vector loads for {steps} k steps, expected at most {5 * steps}")
    print(f"{KERNEL}: loop at {hot[0]:#x}-{hot[1]:#x}, {len(ins)} instructions, {fmla} FMLA by element, "
          f"{loads} vector loads, {steps} k step(s) an iteration")
    if problems:
        sys.exit("\n".join(problems))


if __name__ == "__main__":
    main()
