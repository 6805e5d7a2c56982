#!/usr/bin/env bash
# The examples end to end: same seed and threads give the same output to the last digit
# (timings stripped; mlp_fashion under f16 autocast with loss scaling too), and mlp_fashion resumed from a checkpoint ends where an
# uninterrupted run ends; --profile writes a trace, a CSV and a table whose rows add up
# to the time measured around the recorded steps, and changes no digit of the output;
# mlp_fashion --dist under two ranks (mpirun) reaches the single process's accuracy and
# resumes from the checkpoint rank 0 wrote exactly where its uninterrupted run ends, with
# DataParallel and with the sharded optimizer (the same digits either way);
# tiny_transformer --dist reaches the single process's losses.
# Exit 77 (skipped) when the Fashion-MNIST files are absent (or, for dist, MPI).
#
#   tests/examples.sh BUILD_DIR reproducible|resume|profile|dist
set -euo pipefail
build="$1" what="$2"
ex="$build/examples"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
strip() { sed -E 's/(seconds|samples_per_s|seconds_to_88|tokens_per_s)=[^ ]*//g; s/ [0-9.]+ samples\/s//; s/ [0-9.]+ s$//'; }
have_data() { [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; }

case "$what" in
  reproducible)
    for run in 1 2; do
      "$ex/linear_regression" --threads 2 --seed 3 | strip > "$tmp/lin$run"
      "$ex/mlp_regression" --threads 2 --seed 3 | strip > "$tmp/mlp$run"
      "$ex/tiny_transformer" --threads 2 --epochs 1 --steps 5 --batch 4 --sample 30 | strip > "$tmp/tt$run"
    done
    diff "$tmp/lin1" "$tmp/lin2"
    diff "$tmp/mlp1" "$tmp/mlp2"
    diff "$tmp/tt1" "$tmp/tt2"
    grep -q "^result train_loss=" "$tmp/tt1"
    if have_data; then
      for run in 1 2; do
        "$ex/mlp_fashion" --threads 2 --limit 3000 --epochs 2 2>/dev/null | strip > "$tmp/fm$run"
        "$ex/mlp_fashion" --threads 2 --limit 2000 --epochs 1 --amp f16 2>/dev/null | strip > "$tmp/fm16_$run"
      done
      diff "$tmp/fm1" "$tmp/fm2"
      diff "$tmp/fm16_1" "$tmp/fm16_2"
      grep -q "f16 autocast" "$tmp/fm16_1"
    fi
    grep -q "^result t0=" "$tmp/lin1" && grep -q "^result test_mse=" "$tmp/mlp1"
    # --cuda-graph without a device: a usage error (exit 2) that says what it needs.
    status=0
    "$ex/mlp_fashion" --cuda-graph > /dev/null 2> "$tmp/graph_err" || status=$?
    [ "$status" -eq 2 ] && grep -q "needs --device cuda" "$tmp/graph_err"
    echo "examples: identical output on repeated runs"
    ;;
  resume)
    have_data || { echo "no Fashion-MNIST files: skipped"; exit 77; }
    args=(--threads 2 --limit 3000 --epochs 3)
    "$ex/mlp_fashion" "${args[@]}" 2>/dev/null | strip | grep -E "^epoch 3/3|^result" > "$tmp/straight"
    "$ex/mlp_fashion" "${args[@]}" --stop-after 2 --out "$tmp/ck" > /dev/null 2>&1
    "$ex/mlp_fashion" "${args[@]}" --resume "$tmp/ck/checkpoint.safetensors" 2>/dev/null | strip |
      grep -E "^epoch 3/3|^result" > "$tmp/resumed"
    diff "$tmp/straight" "$tmp/resumed"
    [ -s "$tmp/straight" ]
    echo "examples: the resumed run ends where the uninterrupted one does"
    ;;
  profile)
    check_profile() {  # $1: the output; $2: the trace
      python3 - "$1" "$2" <<'PY'
import csv, json, re, sys
out, trace = open(sys.argv[1]).read(), sys.argv[2]
m = re.search(r"the op rows add up to ([0-9.]+) ms \(([0-9.]+)% of the measured ([0-9.]+) ms\)", out)
assert m, "no profile summary line"
rows, measured = float(m[1]), float(m[3])
assert measured > 0 and abs(rows - measured) <= 0.05 * measured, (rows, measured)
events = json.load(open(trace))["traceEvents"]
assert any(e.get("cat") == "kernel" and e["name"] == "gemm" for e in events)
assert all(k in e for e in events if e.get("ph") == "X" for k in ("ts", "dur", "tid", "pid", "name"))
table = list(csv.DictReader(open(trace[:-5] + ".csv")))
assert abs(sum(float(r["total_ms"]) for r in table if r["table"] == "op") - rows) < 1e-3 * max(1.0, rows)
PY
    }
    "$ex/linear_regression" --threads 2 --seed 3 | strip > "$tmp/lin_plain"
    "$ex/linear_regression" --threads 2 --seed 3 --profile "$tmp/lin.json" > "$tmp/lin_prof"
    check_profile "$tmp/lin_prof" "$tmp/lin.json"
    # The same numbers with profiling on: the epochs' losses and the result line agree.
    keep() { strip | grep -E "^  epoch|^result"; }
    diff <(keep < "$tmp/lin_plain") <(keep < "$tmp/lin_prof")
    [ "$(keep < "$tmp/lin_plain" | wc -l)" -gt 2 ]
    "$ex/tiny_transformer" --threads 2 --epochs 1 --steps 30 --batch 4 --sample 30 --profile "$tmp/tt.json" > "$tmp/tt_prof"
    check_profile "$tmp/tt_prof" "$tmp/tt.json"
    grep -q "attention_forward" "$tmp/tt_prof"
    if have_data; then
      "$ex/mlp_fashion" --threads 2 --limit 4000 --epochs 1 --profile "$tmp/fm.json" 2>/dev/null > "$tmp/fm_prof"
      check_profile "$tmp/fm_prof" "$tmp/fm.json"
      grep -q "^Mlp.fc1 " "$tmp/fm_prof"
    fi
    echo "examples: --profile writes a trace and tables that add up to the measured steps"
    ;;
  dist)
    have_data || { echo "no Fashion-MNIST files: skipped"; exit 77; }
    command -v mpirun > /dev/null || { echo "no mpirun: skipped"; exit 77; }
    export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    export OMPI_MCA_btl_vader_single_copy_mechanism=none
    two=(mpirun -np 2 --oversubscribe "$ex/mlp_fashion" --dist)
    args=(--limit 3000 --epochs 3)
    status=0
    "${two[@]}" "${args[@]}" 2>"$tmp/err" | strip | grep -E "^epoch 3/3|^result" > "$tmp/straight" || status=$?
    if grep -q "needs a build with MPI" "$tmp/err"; then echo "built without MPI: skipped"; exit 77; fi
    [ "$status" -eq 0 ] || { cat "$tmp/err"; exit 1; }
    "${two[@]}" "${args[@]}" --stop-after 2 --out "$tmp/ck" > /dev/null 2>&1
    "${two[@]}" "${args[@]}" --resume "$tmp/ck/checkpoint.safetensors" 2>/dev/null | strip |
      grep -E "^epoch 3/3|^result" > "$tmp/resumed"
    diff "$tmp/straight" "$tmp/resumed"
    grep -q "ranks=2" "$tmp/straight"
    # --shard-optimizer: the same averages (a two-rank sum is one addition, in either
    # order) and the same elementwise AdamW on each shard, so the same digits; it resumes
    # from its gathered checkpoint, and that checkpoint resumes DataParallel too.
    "${two[@]}" --shard-optimizer "${args[@]}" 2>/dev/null | strip | grep -E "^epoch 3/3|^result" > "$tmp/sharded"
    diff "$tmp/straight" "$tmp/sharded"
    "${two[@]}" --shard-optimizer "${args[@]}" --stop-after 2 --out "$tmp/cks" > /dev/null 2>&1
    "${two[@]}" --shard-optimizer "${args[@]}" --resume "$tmp/cks/checkpoint.safetensors" 2>/dev/null | strip |
      grep -E "^epoch 3/3|^result" > "$tmp/sharded_resumed"
    diff "$tmp/straight" "$tmp/sharded_resumed"
    "${two[@]}" "${args[@]}" --resume "$tmp/cks/checkpoint.safetensors" 2>/dev/null | strip |
      grep -E "^epoch 3/3|^result" > "$tmp/unsharded_resumed"
    diff "$tmp/straight" "$tmp/unsharded_resumed"
    # One process on the whole batch: the same training up to summation order.
    "$ex/mlp_fashion" --threads 1 "${args[@]}" 2>/dev/null | grep "^result" > "$tmp/one"
    acc() { sed -E 's/.*test_accuracy=([0-9.]+).*/\1/' "$1"; }
    python3 -c "import sys; a, b = map(float, sys.argv[1:]); assert abs(a - b) <= 0.005, (a, b)" \
      "$(acc "$tmp/one")" "$(grep "^result" "$tmp/straight" | sed -E 's/.*test_accuracy=([0-9.]+).*/\1/')"
    # tiny_transformer --dist: each rank its part of the same global batches; the losses
    # are the single process's up to summation order (4 decimals printed).
    t_args=(--epochs 2 --steps 10 --sample 0)
    mpirun -np 2 --oversubscribe "$ex/tiny_transformer" --dist "${t_args[@]}" 2>/dev/null | grep "^result" > "$tmp/t2"
    "$ex/tiny_transformer" --threads 1 "${t_args[@]}" 2>/dev/null | grep "^result" > "$tmp/t1"
    loss() { sed -E "s/.*$2=([0-9.]+).*/\1/" "$1"; }
    for k in train_loss val_loss; do
      python3 -c "import sys; a, b = map(float, sys.argv[1:]); assert abs(a - b) <= 1e-3, (a, b)" \
        "$(loss "$tmp/t1" $k)" "$(loss "$tmp/t2" $k)"
    done
    echo "examples: two ranks train as one process does and resume where they left off"
    ;;
  *) echo "usage: $0 BUILD_DIR reproducible|resume|profile|dist" >&2; exit 2 ;;
esac
