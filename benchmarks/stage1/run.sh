#!/usr/bin/env bash
# Stage 1 evidence on stories260K: router tuning at 25% and 40% target sparsity against dense and the best static
# skip of the same size. Trains on tinystories_valid_part2.txt, reports on tinystories_valid_head.txt (disjoint).
# Each run keeps the routers as trained (deterministic routing rounds the sampled probabilities) and a copy whose
# execute threshold was calibrated on training sequences to realise the target (--calibrate).
# Usage: bash benchmarks/stage1/run.sh [RUNS_DIR]   (from the repository root, after mvn package -DskipTests)
set -euo pipefail
runs=${1:-runs/stage1}
data=../shared/data
model=$data/models/stories260K/stories260K.gguf
train=$data/text/tinystories_valid_part2.txt
test=$data/text/tinystories_valid_head.txt
sg() { java -jar "${SKIPGPT_JAR:-target/skipgpt.jar}" "$@" --device cpu; }
mkdir -p "$runs"

sg eval --model $model --ppl $test --ctx 512 --json > "$runs/dense.json"
for t in 0.25 0.40; do
  sg train-routers --model $model --data $train --sparsity $t --steps 400 --lr 5e-3 --eval-every 100 \
      --checkpoint-every 100 --calibrate --out "$runs/r$t" 2> "$runs/r$t.log"
  sg eval --model $model --ppl $test --ctx 512 --json --routers "$runs/r$t/routers-uncalibrated.safetensors" \
      > "$runs/r$t-raw.json"
  sg eval --model $model --ppl $test --ctx 512 --json --routers "$runs/r$t/routers.safetensors" > "$runs/r$t-cal.json"
done
# Static baselines: the best k of 10 modules on calibration text (the start of the training file; greedy search
# beyond 50 subsets), then scored on the test text.
for s in 0.2 0.3 0.4; do
  spec=$(sg static-skip --model $model --calib $train --calib-chars 10000 --exhaustive-limit 50 --sparsity $s | sed -E 's/^--skip ([^ ]*) .*/\1/')
  echo "$spec" > "$runs/static$s.spec"
  sg eval --model $model --ppl $test --ctx 512 --json --skip "$spec" > "$runs/static$s.json"
done
