#!/usr/bin/env bash
# Issue 7's GPU checks in one call (about 6-7 minutes on an H200), for a session that is lent a GPU machine:
#   bash benchmarks/gpu_check.sh            (.venv/bin/python when there is one, else python3; PYTHON=... to choose; OUT=folder for logs)
# 1. the CUDA tests; 2. bench_train --paired on resnext50 @ 224 (b/c from pairs of epochs that meet the same moment
# of a machine whose speed drifts; the target is b/c >= 0.95); 3. the same for resnext29 @ 32 (b/a and b/c);
# 4. step_gap on resnext50: b/c with parts of the Trainer's step knocked out (augmentation; all extras), to see
# where the last few per cent go. On 2026-11-27 (H200): resnext50 paired b/c 0.913 (12 pairs) and 0.961 (4 pairs),
# resnext29 b/c 1.03 (paired 0.959). Each step has a time limit of its own, so one that hangs leaves the others
# their time; the logs go to $OUT (or ./gpu_logs).
set -u
cd "$(dirname "$0")/.."
DEFAULT_PY=python3
[ -x .venv/bin/python ] && DEFAULT_PY=.venv/bin/python  # (the project's own, as benchmarks/README.md runs them)
PY=${PYTHON:-$DEFAULT_PY}
LOGS=${OUT:-gpu_logs}
mkdir -p "$LOGS"
"$PY" -c 'import torch, torchvision, PIL, numpy; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' \
  || { echo "needs torch, torchvision, Pillow and numpy for $PY"; exit 2; }
"$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' || { echo "no CUDA device"; exit 2; }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null | tee "$LOGS/gpu.txt"

step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit} s)"
  local t0=$SECONDS
  timeout "$limit" "$@" >"$LOGS/$name.log" 2>&1
  echo "== $name: rc $? in $((SECONDS - t0)) s"
  tail -n 25 "$LOGS/$name.log"
}

step cuda_tests 120 "$PY" -m pytest -q -p no:cacheprovider tests/core/test_cuda.py -rs
step bench_resnext50 170 "$PY" benchmarks/bench_train.py --device cuda --only resnext50 --n 2048 --epochs 7 \
  --rounds 1 --skip-tutorial --paired --no-formats
step bench_resnext29 150 "$PY" benchmarks/bench_train.py --device cuda --only resnext29 --rounds 1 --paired --no-formats
step step_gap_resnext50 150 "$PY" benchmarks/step_gap.py --device cuda --variants full,no-aug,bare --epochs 6
