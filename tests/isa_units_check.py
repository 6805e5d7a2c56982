"""The CPU library's units compiled with different ISA flags must not share code.

Each path's translation unit (*_avx512.cpp with the AVX-512 flags, *_avx2.cpp with
AVX2/FMA, the rest with none) instantiates the op templates of the *_impl.hpp headers.
An inline function or template instantiation with the same name in two of them is
emitted in both as a weak (COMDAT) symbol and the linker keeps one copy, from whichever
unit it happens to take: an AVX-512 body could then serve the AVX2 or portable path on
a CPU without AVX-512 (an illegal instruction, or only on some link orders). The
*_impl.hpp headers therefore give their contents internal linkage (docs/design.md).

This reads libtilegrad_cpu.a with nm and fails on any weak symbol defined both by a unit of a
wider path and by one of a narrower path, except the library glue the headers cannot
avoid (std::, tg::Error and its throw helper, and clang's __clang_call_terminate, the
landing pad it emits beside noexcept code), whose bodies the check also reads: they
must not touch a ymm, zmm or mask register there.

    python3 tests/isa_units_check.py build/cpu/libtilegrad_cpu.a
"""
import re
import subprocess
import sys

GLUE = re.compile(
    r"^(std::|tg::Error|typeinfo|vtable|void tg::detail::throw_error|tg::detail::throw_error|DW\.ref\.|__clang_call_terminate$)")
WIDE_REG = re.compile(r"%(ymm|zmm)\d+|%k[1-7]\b|%xmm(1[6-9]|2\d|3[01])\b")


def tier(member):
    if "avx512" in member:
        return 2
    if "avx2" in member:
        return 1
    return 0


def main():
    lib = sys.argv[1]
    out = subprocess.run(["nm", "-A", "-C", "--defined-only", lib], capture_output=True, text=True, check=True).stdout
    where = {}  # symbol -> set of tiers
    for line in out.splitlines():
        m = re.match(r"^[^:]+:([^:]+):\s*[0-9a-f]*\s+([WVu])\s+(.*)$", line)
        if m:
            where.setdefault(m[3], set()).add(tier(m[1]))
    shared = sorted(s for s, tiers in where.items() if len(tiers) > 1)
    bad = [s for s in shared if not GLUE.match(s)]
    glue = [s for s in shared if GLUE.match(s)]
    # The glue's bodies in the wider units: no register only a wider ISA has.
    dis = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", lib], capture_output=True, text=True,
                         check=True).stdout
    member, name, wide_glue = "", "", set()
    for line in dis.splitlines():
        if line.startswith("In archive") or line.endswith("file format elf64-x86-64"):
            member = line
            continue
        m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if m:
            name = m[1]
            continue
        if name in glue and tier(member) > 0 and WIDE_REG.search(line):
            wide_glue.add(name)
    for s in bad:
        print(f"isa_units_check: {s} is defined by units of different ISA paths", file=sys.stderr)
    for s in sorted(wide_glue):
        print(f"isa_units_check: shared glue {s} uses a wide register in a wider unit", file=sys.stderr)
    print(f"isa_units_check: {len(where)} weak symbols, {len(glue)} shared glue, {len(bad) + len(wide_glue)} problems")
    return 1 if bad or wide_glue else 0


if __name__ == "__main__":
    sys.exit(main())
