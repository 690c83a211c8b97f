#!/usr/bin/env bash
# Serving throughput and latency against concurrency, dense vs routed, on the CPU: stories260K (dense, untrained
# random routers) and a random model of LLaMA-2-7B layer shape with 1 layer and the stories260K tokenizer
# (dense, random routers, a static skip of its MLP). Server and load generator share the machine.
# Usage: bash benchmarks/serve/run.sh [RUNS_DIR]   (from the repository root, after mvn package -DskipTests)
set -euo pipefail
runs=${1:-runs/serve}
data=../shared/data
model=$data/models/stories260K/stories260K.gguf
tok=$data/models/stories260K/tok512.bin
jar=${SKIPGPT_JAR:-target/skipgpt.jar}
port=${PORT:-18123}
mkdir -p "$runs"

java -cp "$jar:target/lib/*" benchmarks/serve/RandomRouters.java "$runs/stories-routers.safetensors" 5 64 1
java -cp "$jar:target/lib/*" benchmarks/serve/RandomRouters.java "$runs/7b-routers.safetensors" 1 4096 1

# bench NAME ROUNDS MAX_TOKENS WARMUP SERVE_ARGS...: start a server, wait for it, load it, stop it.
bench() {
  local name=$1 rounds=$2 tokens=$3 warmup=$4
  shift 4
  java -jar "$jar" serve --device cpu --port "$port" --max-batch 64 --max-queue 256 "$@" 2> "$runs/$name.server.log" &
  local pid=$!
  until curl -sf "http://127.0.0.1:$port/health" > /dev/null; do sleep 0.5; done
  echo "$name: load average before $(cut -d' ' -f1-3 /proc/loadavg)" >> "$runs/loadavg.txt"
  java -jar "$jar" serve-bench --url "http://127.0.0.1:$port" --concurrency 1,4,16,64 --rounds "$rounds" \
      --max-tokens "$tokens" --warmup "$warmup" --json > "$runs/$name.json" 2> "$runs/$name.bench.log" \
      || echo "$name: serve-bench reported failed requests" >&2
  echo "$name: load average after $(cut -d' ' -f1-3 /proc/loadavg)" >> "$runs/loadavg.txt"
  kill "$pid"
  wait "$pid" || true
}

bench stories-dense 4 32 32 --model $model --ctx 512
bench stories-routed 4 32 32 --model $model --ctx 512 --routers "$runs/stories-routers.safetensors"
shape=(--shape llama2-7b --layers 1 --tokenizer $tok --ctx 128)
bench 7b-dense 1 8 8 "${shape[@]}"
bench 7b-routed 1 8 8 "${shape[@]}" --routers "$runs/7b-routers.safetensors"
bench 7b-static 1 8 8 "${shape[@]}" --skip mlp:0
