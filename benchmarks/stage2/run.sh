#!/usr/bin/env bash
# Stage 2 evidence on stories260K (benchmarks/stage2-stories260K.md): at 25% and 40% target sparsity, held-out
# perplexity after stage 1 (calibrated routers) and after stage 2 (routers + LoRA), next to dense, dense + the same
# LoRA budget (LoRA trained without routing) and the best static skip. Trains on tinystories_valid_part2.txt,
# reports on tinystories_valid_head.txt at context 512 (disjoint texts).
# Usage: bash benchmarks/stage2/run.sh [RUNS_DIR [PART...]]   (from the repository root, after mvn package -DskipTests)
# PART: dense, prune0.25, prune0.40, dense-lora, static (default: all, in that order). One BLAS thread: the model's
# products are too small to split, and spinning BLAS threads cost 5-10x on a busy 2-core machine.
set -euo pipefail
runs=${1:-runs/stage2}
shift || true
parts=("$@")
((${#parts[@]})) || parts=(dense prune0.25 prune0.40 dense-lora static)
data=../shared/data
model=$data/models/stories260K/stories260K.gguf
train=$data/text/tinystories_valid_part2.txt
test=$data/text/tinystories_valid_head.txt
export OPENBLAS_NUM_THREADS=1
sg() { java -jar "${SKIPGPT_JAR:-target/skipgpt.jar}" "$@" --device cpu; }
evaluate() { sg eval --model $model --ppl $test --ctx 512 --json "$@"; }
lora=(--lora-steps 200 --lora-lr 2e-3)
mkdir -p "$runs"

for part in "${parts[@]}"; do
  case $part in
    dense)
      evaluate > "$runs/dense.json" ;;
    prune0.25 | prune0.40)
      t=${part#prune}
      # stage 1 (300 steps, calibrated), stage 2 with deterministic gates, the three evaluations, the merged model
      sg prune --model $model --data $train --eval $test --ctx 512 --sparsity $t --router-steps 300 --router-lr 5e-3 \
          "${lora[@]}" --out "$runs/p$t" 2> "$runs/p$t.log"
      evaluate --routers "$runs/p$t/routers/routers.safetensors" > "$runs/p$t-stage1.json"
      evaluate --routers "$runs/p$t/routers/routers.safetensors" --lora "$runs/p$t/adapter" > "$runs/p$t-stage2.json"
      # the same adapter budget trained with sampled gates (tau = 1), as train-lora does by default
      sg train-lora --model $model --routers "$runs/p$t/routers/routers.safetensors" --data $train --steps 200 --lr 2e-3 \
          --gates sample --eval-every 0 --out "$runs/p$t-sampled" 2> "$runs/p$t-sampled.log"
      evaluate --routers "$runs/p$t/routers/routers.safetensors" --lora "$runs/p$t-sampled" > "$runs/p$t-sampled.json" ;;
    dense-lora)
      sg train-lora --model $model --data $train --steps 200 --lr 2e-3 --eval-every 0 --out "$runs/dense-lora" \
          2> "$runs/dense-lora.log"
      evaluate --lora "$runs/dense-lora" > "$runs/dense-lora.json" ;;
    static)
      for s in 0.2 0.3 0.4; do
        spec=$(sg static-skip --model $model --calib $train --sparsity $s --ctx 512 2> "$runs/static$s.log" \
            | sed -E 's/^--skip ([^ ]*) .*/\1/')
        echo "$spec" > "$runs/static$s.spec"
        evaluate --skip "$spec" > "$runs/static$s.json"
      done ;;
    *) echo "unknown part $part" >&2; exit 2 ;;
  esac
done
