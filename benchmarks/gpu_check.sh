#!/usr/bin/env bash
# benchmarks/gpu_check.sh: the GPU check of issue 13, one prepared script for one GPU, < 8 minutes.
#
#   1. nvidia-smi, torch and what it sees
#   2. the main job with its GPU defaults (--gpus-per-trial 0.25: four trials per GPU; 200 trials,
#      5 epochs, 20,000 images), cut to a 150 s search budget so the script fits in 8 minutes
#   3. one final training: `nasty train` on the search's run (or, when step 2 left no winner,
#      NASNet-A's cells) at N=4, F=32 with --recipe paper (cutout, drop-path, aux head) for 3 epochs
#   4. the trainer's images/s against a plain DataLoader loop (benchmarks/bench_trainer.py)
#
# Every step runs under `timeout` and may fail without stopping the others. The figures go to
# $OUT/gpu_check.txt (the device tool copies $OUT back), each step's whole log to $OUT/logs.txt.
# Nothing here needs the network: the packages must be importable already, or given as wheels
# in .whl/ (installed offline into /tmp/nasty-site), and Fashion-MNIST must be in $DATA_DIR
# (default: /usr/share/datasets/fashion-mnist, else data/fashion-mnist in this checkout).
#
#   bash benchmarks/gpu_check.sh              # on the GPU machine
#   CPU=1 bash benchmarks/gpu_check.sh        # dry run: the same steps at a tiny size on the CPU
#
# CI never runs this script; tests/test_final_train.py runs its CPU=1 form.
set -u
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:-$REPO/gpu_check_out}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/nasty-gpu-check.XXXXXX)
REPORT=$OUT/gpu_check.txt
LOGS=$OUT/logs.txt
: >"$REPORT"
: >"$LOGS"
CPU=${CPU:-0}

say() { echo "$*" | tee -a "$REPORT"; }

# step NAME SECONDS CMD...: run CMD under a time limit; its log to logs.txt, its tail and rc to the report
step() {
    local name=$1 limit=$2
    shift 2
    local log=$WORK/$name.log t0 t1 rc
    say ""
    say "## $name (limit ${limit}s): $*"
    t0=$(date +%s.%N)
    timeout --kill-after=15 "$limit" "$@" >"$log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    { echo "===== $name: $*"; cat "$log"; } >>"$LOGS"
    tail -n "${TAIL:-25}" "$log" | sed 's/^/    /' >>"$REPORT"
    local why=""
    [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && why=" (time limit reached)"
    say "-- $name: exit $rc$why after $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s"
    return 0
}

# ---------------------------------------------------------------- python, packages, data
PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x "$REPO/.venv/bin/python" ] && "$REPO/.venv/bin/python" -c "import torch" 2>/dev/null; then
        PY=$REPO/.venv/bin/python
    else
        PY=python3
    fi
fi
if compgen -G "$REPO/.whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/nasty-site \
        "$REPO"/.whl/*.whl >>"$LOGS" 2>&1 && export PYTHONPATH=/tmp/nasty-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
if [ -z "${DATA_DIR:-}" ]; then
    DATA_DIR=/usr/share/datasets/fashion-mnist
    [ -d "$DATA_DIR" ] || DATA_DIR=$REPO/data/fashion-mnist
fi
NASTY=("$PY" -m nasty.cli)

say "# nasty gpu_check $(date -u '+%Y-%m-%d %H:%M:%S UTC') $([ "$CPU" = 1 ] && echo '(CPU=1 dry run: tiny sizes, no GPU)')"
say "commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$REPO" diff --quiet 2>/dev/null || echo ' +changes'); python $PY; data $DATA_DIR"

TAIL=40 step nvidia-smi 30 nvidia-smi
step environment 120 "$PY" -c "
import importlib, os, torch
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available(),
      'cpus', os.cpu_count())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print('gpu', p.name, round(p.total_memory / 2**30), 'GiB,', p.multi_processor_count, 'SMs')
for m in ('ray', 'optuna', 'onnx', 'onnxscript', 'rich', 'networkx', 'matplotlib'):
    try:
        print(m, getattr(importlib.import_module(m), '__version__', 'present'))
    except Exception as e:
        print(m, 'MISSING:', type(e).__name__, e)
"

# ---------------------------------------------------------------- sizes
if [ "$CPU" = 1 ]; then
    SEARCH=(--trials 2 --epochs 1 --subset 300 --val-subset 100 --time-budget 60)
    TRAIN=(--set N=2,F=16 --recipe paper --epochs 2 --subset 256 --val-subset 128 --device cpu --threads 1)
    BENCH=(--images 512 --reps 1 --device cpu)
    LIMITS=(300 300 180)
else
    SEARCH=(--gpus-per-trial 0.25 --time-budget 150)
    TRAIN=(--set N=4,F=32 --recipe paper --epochs 3 --device cuda)
    BENCH=(--images 20000 --epochs 2 --reps 3 --batch 256 --device cuda)
    LIMITS=(240 150 75)
fi

# ---------------------------------------------------------------- 1. the main job, GPU defaults
step search "${LIMITS[0]}" "${NASTY[@]}" search --space nasnet --budget 600MFLOPs "${SEARCH[@]}" \
    --data-dir "$DATA_DIR" --runs-dir "$WORK/runs" --name main

# ---------------------------------------------------------------- 2. one final training
RUN=$WORK/runs/main
if [ ! -f "$RUN/best.json" ] || ! grep -q '"decisions"' "$RUN/best.json"; then
    say "(no winner from the search: the final training takes NASNet-A's cells instead)"
    RUN=$WORK/nasnet_a
    "$PY" - "$RUN" "$DATA_DIR" >>"$LOGS" 2>&1 <<'EOF'
import dataclasses, json, sys
from pathlib import Path
from nasty.search.settings import Settings
from nasty.searchspaces.nasnet import NASNET_A, decisions_of
run = Path(sys.argv[1]); run.mkdir(parents=True)
cfg = dataclasses.asdict(Settings(space="nasnet", budget="600MFLOPs", data_dir=sys.argv[2]))
cfg.update(space_name="nasnet", name=run.name, runs_dir=str(run.parent))
(run / "config.json").write_text(json.dumps(cfg))
(run / "best.json").write_text(json.dumps({"trial": -1, "decisions": decisions_of(NASNET_A, 4, 44)}))
EOF
fi
step final-training "${LIMITS[1]}" "${NASTY[@]}" train "$RUN" "${TRAIN[@]}" --data-dir "$DATA_DIR" \
    --save "$WORK/final.pt" --export "$WORK/final.onnx"

# ---------------------------------------------------------------- 3. trainer vs a plain loop
step trainer-vs-plain "${LIMITS[2]}" "$PY" benchmarks/bench_trainer.py "${BENCH[@]}" --data-dir "$DATA_DIR"

# ---------------------------------------------------------------- the figures
say ""
say "## figures"
grep -h -E "^trials:|^best architecture|^  target|img/s|test accuracy|^the final network|^recipe|nasty.train |DataLoader|ratio" \
    "$WORK"/search.log "$WORK"/final-training.log "$WORK"/trainer-vs-plain.log 2>/dev/null | sed 's/^/  /' \
    | tee -a "$REPORT"
[ -f "$WORK/final.onnx" ] && say "  onnx export: $(du -ch "$WORK"/final.onnx* | tail -1 | cut -f1) (graph and weights)"
rm -rf "$WORK"
say "done: $REPORT"
exit 0
