#!/usr/bin/env bash
# Issue 7's GPU checks in one call (about 7-8 minutes on an H200), for a session that is lent a GPU machine:
#   bash benchmarks/gpu_check.sh            (PYTHON=python3.12 ... to choose the interpreter; OUT=folder for logs)
# 1. the CUDA tests; 2. bench_train --paired on resnext50 @ 224 (b/c from pairs of epochs that meet the same moment
# of a machine whose speed drifts; the target is b/c >= 0.95) and its wall line (files written behind the next
# epoch); 3. the same for resnext29 @ 32 (b/c 0.73 on 2026-11-27, before train.save_every_s: 0.5 GB of files after
# each half-second epoch); 4. profile_train on resnext50. Each step has a time limit of its own, so one that hangs
# leaves the others their time; the logs go to $OUT (or ./gpu_logs).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
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
step bench_resnext50 240 "$PY" benchmarks/bench_train.py --device cuda --only resnext50 --n 2048 --epochs 7 \
  --rounds 2 --skip-tutorial --paired --no-formats
step bench_resnext29 90 "$PY" benchmarks/bench_train.py --device cuda --only resnext29 --rounds 1 --paired --no-formats
step profile_resnext50 60 "$PY" benchmarks/profile_train.py --device cuda --n 512
