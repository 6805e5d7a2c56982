#!/usr/bin/env bash
# scripts/perf-compare --callgrind finds a planted regression, and only it: the head side
# runs with TG_PLANT_SLOWDOWN=softmax_fwd (tg_probe then does softmax_fwd's work twice),
# both sides are this build. Instruction counts are deterministic, so the test is too.
# A second comparison without the plant must flag nothing. Exit 77 (skipped) without
# valgrind or in a sanitizer build (valgrind cannot run ASan binaries).
#
#   tests/perf_compare.sh BUILD_DIR [SANITIZERS]
set -uo pipefail
build="$1" sanitize="${2:-}"
root="$(cd "$(dirname "$0")/.." && pwd)"
[ -n "$sanitize" ] && { echo "sanitizer build: skipped"; exit 77; }
command -v valgrind >/dev/null || { echo "no valgrind: skipped"; exit 77; }
[ -x "$build/bench/tg_probe" ] || { echo "no tg_probe: skipped"; exit 77; }

ops='softmax_fwd|softmax_bwd|relu_fwd|adamw_step'
out=$("$root/scripts/perf-compare" --callgrind --base-build "$build" --head-build "$build" \
      --plant softmax_fwd --filter "$ops")
rc=$?
echo "$out"
[ "$rc" -eq 1 ] || { echo "FAIL: expected exit 1 for the planted slowdown, got $rc"; exit 1; }
slower=$(echo "$out" | grep -c ' SLOWER$')
[ "$slower" -eq 1 ] || { echo "FAIL: expected exactly one SLOWER row, got $slower"; exit 1; }
echo "$out" | grep -q '^softmax_fwd .* SLOWER$' || { echo "FAIL: the SLOWER row is not softmax_fwd"; exit 1; }
[ "$(echo "$out" | grep -cE ' (same|SLOWER|faster)$')" -eq 4 ] || { echo "FAIL: expected 4 rows"; exit 1; }

out=$("$root/scripts/perf-compare" --callgrind --base-build "$build" --head-build "$build" --filter "$ops")
rc=$?
echo "$out"
[ "$rc" -eq 0 ] || { echo "FAIL: identical builds flagged (exit $rc)"; exit 1; }
echo "perf-compare: the planted slowdown is flagged, alone"
