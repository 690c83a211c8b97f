#!/usr/bin/env bash
# The one script a GPU machine runs (CUDA toolkit, CMake, no Java, no network). From the repository root:
#   OUT=/some/dir bash tests/gpu/run.sh        (OUT defaults to ./target/gpu-out)
# Builds the native code with CMake, runs CTest (the CUDA kernel checks among it) and the CUDA benchmark, and,
# when a Java pack is present, the Java GPU tests (every op, stories260K end to end, training parity), the cuBLAS
# matmul benchmark through CudaBackend and the dense-vs-routed model benchmark (`skipgpt bench --device cuda` on
# LLaMA-2-7B and LLaMA-3-8B layer shapes: a 4k prefill and a batched decode, then one sequence decoding); then the
# PyTorch baseline of the same shapes (torch_baseline.py).
# Writes everything into $OUT/gpu-results.md, plus one log per step beside it.
# The Java pack (tests/gpu/pack.sh makes it on a machine with a JDK; $SKIPGPT_GPU_PACK, default ./.gpu-pack)
# brings a jlink runtime, the compiled classes, the JNI sources and the jars; the native libraries and the JNI
# glue are built here against its headers, into a copy of its classes. cuBLAS comes from the Python
# environment's nvidia-cublas package, found through python3, or from the CUDA toolkit.
# Each step runs even if an earlier one failed, so the results file is always written; the exit status is
# non-zero if any step failed. On a machine without a GPU it still builds and runs the Java tests (which skip),
# reports the CUDA steps as "skipped: no device" and exits 0 (a dry run).
# The commit is taken from $SKIPGPT_COMMIT, else git, else the pack's commit.txt, else target/gpu-commit.txt (a
# GPU machine gets the working tree without .git: write the file with `git rev-parse HEAD > target/gpu-commit.txt`).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
OUT=${OUT:-./target/gpu-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 1
BUILD=$PWD/target/gpu-build
RESULTS=$OUT/gpu-results.md
PACK=${SKIPGPT_GPU_PACK:-.gpu-pack}
have_pack=0
if [[ -x $PACK/jre/bin/java ]]; then
    have_pack=1
    PACK=$(cd "$PACK" && pwd)
    LIBS=$BUILD/java-classes/io/skipgpt/tensor/linux-x86_64  # the native libraries, where JavaCPP looks
else
    LIBS=$BUILD/lib
fi
failures=()
steps=()

# run_step NAME LOG COMMAND...: runs the command with its output in $OUT/LOG, records result and seconds.
run_step() {
    local name=$1 log=$2
    shift 2
    local start=$SECONDS
    "$@" >>"$OUT/$log" 2>&1
    local rc=$?
    step_rc=$rc
    step_time=$((SECONDS - start))
    echo "[$name] exit $rc after ${step_time}s (log: $OUT/$log)"
}

record() {  # record NAME RESULT
    steps+=("| $1 | $2 | ${step_time}s |")
    case $2 in ok* | skipped*) ;; *) failures+=("$1") ;; esac
}

: >"$OUT/nvidia-smi.log" && : >"$OUT/build.log" && : >"$OUT/ctest.log" && : >"$OUT/bench.log"
: >"$OUT/java-tests.log" && : >"$OUT/java-bench.log" && : >"$OUT/model-bench.log" && : >"$OUT/torch.log"
# The model benchmark: shapes, layers and phases (prefill of a 4k prompt; batched decode) — see bench --help. The
# PyTorch baseline runs the same shapes, layers, prompt, batch and context.
MODEL_SHAPES=${MODEL_SHAPES:-"llama2-7b llama3-8b"}
MODEL_LAYERS=${MODEL_LAYERS:-4} MODEL_PROMPT=${MODEL_PROMPT:-4096} MODEL_BATCH=${MODEL_BATCH:-16} MODEL_CONTEXT=${MODEL_CONTEXT:-512}
# Decode twice: the batch, then one sequence at the same context: a module every row skips is a weight not read,
# which a batch almost never gives (a batched GEMM over the kept rows still reads the whole weight).
MODEL_BENCH_ARGS="--layers $MODEL_LAYERS --pp $MODEL_PROMPT --tg 32 --batch $MODEL_BATCH,1 --context $MODEL_CONTEXT --sparsity 0.25,0.40 --reps 3 --warmup 1"
MODEL_PRECISIONS=${MODEL_PRECISIONS:-"bf16"}

# ---------------------------------------------------------------- the machine
have_gpu=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    have_gpu=1
    nvidia-smi | tee "$OUT/nvidia-smi.log"
    gpu_line=$(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader | head -1)
else
    gpu_line="no GPU (nvidia-smi missing or no device)"
    echo "$gpu_line" | tee "$OUT/nvidia-smi.log"
fi

if [[ -n ${SKIPGPT_COMMIT:-} ]]; then
    commit=$SKIPGPT_COMMIT
elif commit=$(git rev-parse HEAD 2>/dev/null); then
    [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]] && commit="$commit (with uncommitted changes)"
elif [[ $have_pack == 1 && -s $PACK/commit.txt ]]; then
    commit=$(tr '\n' ' ' <"$PACK/commit.txt")
elif [[ -s target/gpu-commit.txt ]]; then
    commit=$(head -1 target/gpu-commit.txt)
else
    commit=unknown
fi

# ---------------------------------------------------------------- build
if ! command -v nvcc >/dev/null 2>&1 && [[ -x /usr/local/cuda/bin/nvcc ]]; then
    export PATH=/usr/local/cuda/bin:$PATH
fi
jni_flags=(-DSKIPGPT_JNI_DIR=)
if [[ $have_pack == 1 ]]; then
    mkdir -p "$BUILD" && rm -rf "$BUILD/java-classes" && cp -r "$PACK/classes" "$BUILD/java-classes"
    jni_flags=(-DSKIPGPT_JNI_DIR="$PACK/jni" -DJAVA_HOME="$PACK/jre" -DSKIPGPT_OUTPUT_DIR="$LIBS")
fi
run_step configure build.log cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release "${jni_flags[@]}"
configure_rc=$step_rc
record configure "$([[ $step_rc == 0 ]] && echo ok || echo "FAILED (exit $step_rc)")"
if [[ $configure_rc == 0 ]]; then
    run_step build build.log timeout 400 cmake --build "$BUILD" -j16
    record build "$([[ $step_rc == 0 ]] && echo ok || echo "FAILED (exit $step_rc)")"
else
    step_time=0
    record build "FAILED (not configured)"
fi
if [[ $have_gpu == 1 && ! -f $LIBS/libskipgpt_cuda.so ]]; then
    step_time=0
    record "CUDA build" "FAILED (a GPU is present but libskipgpt_cuda was not built)"
fi

# ---------------------------------------------------------------- tests
run_step ctest ctest.log bash -c "cd '$BUILD' && ctest --output-on-failure --timeout 240"
ctest_rc=$step_rc
ctest_summary=$(grep -E 'Test +#[0-9]+:|tests passed|tests failed|\((Skipped|Failed|Not Run)\)' "$OUT/ctest.log")
[[ -f $BUILD/Testing/Temporary/LastTest.log ]] && cp "$BUILD/Testing/Temporary/LastTest.log" "$OUT/ctest-full.log"
cuda_test=missing
if grep -qE 'cuda_kernels \.+\s*Passed' "$OUT/ctest.log"; then cuda_test=passed
elif grep -qE 'cuda_kernels \.+\*+Skipped' "$OUT/ctest.log"; then cuda_test=skipped
elif grep -qE 'cuda_kernels' "$OUT/ctest.log"; then cuda_test=failed
fi
if [[ $ctest_rc != 0 ]]; then
    record ctest "FAILED (exit $ctest_rc)"
elif [[ $cuda_test == skipped && $have_gpu == 1 ]]; then
    record ctest "FAILED (cuda_kernels skipped although a GPU is present)"
elif [[ $cuda_test == skipped ]]; then
    record ctest "ok (cuda_kernels skipped: no device)"
elif [[ $cuda_test == missing && $have_gpu == 1 ]]; then
    record ctest "FAILED (cuda_kernels was not built)"
else
    record ctest "ok (cuda_kernels $cuda_test)"
fi

# ---------------------------------------------------------------- benchmark
if [[ -x $BUILD/bench_cuda_rows ]]; then
    run_step bench bench.log timeout 240 "$BUILD/bench_cuda_rows"
    if [[ $step_rc == 0 ]]; then record bench ok
    elif [[ $step_rc == 77 && $have_gpu == 0 ]]; then record bench "skipped: no device"
    else record bench "FAILED (exit $step_rc)"
    fi
else
    step_time=0
    echo "bench_cuda_rows was not built" >>"$OUT/bench.log"
    if [[ $have_gpu == 1 ]]; then record bench "FAILED (not built)"; else record bench "skipped: no device"; fi
fi

# ---------------------------------------------------------------- Java GPU tests and benchmark
# cuBLAS (and a CUDA runtime) for the CUDA presets: the toolkit's, then the Python environment's nvidia packages.
cuda_lib_path() {
    local dirs=()
    local nvcc_path
    nvcc_path=$(command -v nvcc 2>/dev/null) && dirs+=("$(dirname "$(dirname "$(readlink -f "$nvcc_path")")")/lib64")
    if command -v python3 >/dev/null 2>&1; then
        while IFS= read -r d; do dirs+=("$d"); done < <(python3 - <<'PY' 2>/dev/null
import glob, os, site
seen = []
for sp in site.getsitepackages():
    for f in sorted(glob.glob(os.path.join(sp, "nvidia", "**", "libcu*.so.*"), recursive=True)):
        d = os.path.dirname(f)
        if d not in seen and os.path.basename(f).split(".so")[0] in ("libcublas", "libcublasLt", "libcudart"):
            seen.append(d)
print("\n".join(seen))
PY
        )
    fi
    local joined="" d
    for d in "${dirs[@]}"; do [[ -n $d ]] && joined+="${joined:+:}$d"; done
    echo "$joined"
}

java_summary="not run"
if [[ $have_pack == 1 ]]; then
    CUDA_LIBS=$(cuda_lib_path)
    echo "CUDA library path: $CUDA_LIBS" >>"$OUT/java-tests.log"
    export LD_LIBRARY_PATH="$LIBS:$CUDA_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    java_cp="$BUILD/java-classes:$PACK/test-classes:$PACK/lib/*"
    java_opts=(-Xss4m -Dorg.bytedeco.javacpp.cachedir="$BUILD/javacpp-cache")
    export SKIPGPT_DATA=$PACK/data
    # Without a GPU CudaStories260KTest would fall back to the emulated device, which needs OpenBLAS (not packed).
    test_classes=(io.skipgpt.tensor.CudaBackendTest io.skipgpt.train.CudaTrainingParityTest)
    [[ $have_gpu == 1 ]] && test_classes+=(io.skipgpt.CudaStories260KTest)
    selectors=()
    for c in "${test_classes[@]}"; do selectors+=(--select-class "$c"); done
    run_step "java tests" java-tests.log timeout 300 "$PACK/jre/bin/java" "${java_opts[@]}" -cp "$java_cp" \
        org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree --disable-ansi-colors \
        "${selectors[@]}"
    java_rc=$step_rc
    # the launcher's summary box: "[ 24 tests successful ]" and so on
    count() { grep -oE "\[ +[0-9]+ tests $1" "$OUT/java-tests.log" | grep -oE '[0-9]+' | tail -1; }
    found=$(count found) ok=$(count successful) failed=$(count failed) aborted=$(count aborted)
    java_summary="${found:-?} tests: ${ok:-?} passed, ${failed:-?} failed, ${aborted:-?} skipped (assumptions)"
    if [[ $java_rc != 0 ]]; then
        record "java tests" "FAILED (exit $java_rc; $java_summary)"
    elif [[ -z $found || $found == 0 ]]; then
        record "java tests" "FAILED (no tests found)"
    elif [[ $have_gpu == 1 && $ok != "$found" ]]; then
        record "java tests" "FAILED ($java_summary although a GPU is present)"
    elif [[ $have_gpu == 1 ]]; then
        record "java tests" "ok ($java_summary)"
    else
        record "java tests" "ok (skipped: no device; $java_summary)"
    fi

    if [[ $have_gpu == 1 ]]; then
        run_step "java bench" java-bench.log timeout 200 "$PACK/jre/bin/java" "${java_opts[@]}" -cp "$java_cp" \
            io.skipgpt.tensor.CudaMatmulBench
        record "java bench" "$([[ $step_rc == 0 ]] && echo ok || echo "FAILED (exit $step_rc)")"
        model_failed=0 model_time=0
        for precision in $MODEL_PRECISIONS; do
            for shape in $MODEL_SHAPES; do
                echo "### $shape, $precision: skipgpt bench --shape $shape $MODEL_BENCH_ARGS --precision $precision --device cuda" \
                    >>"$OUT/model-bench.log"
                # shellcheck disable=SC2086 # the argument list is meant to split
                run_step "model bench $shape $precision" model-bench.log timeout 240 "$PACK/jre/bin/java" "${java_opts[@]}" \
                    -cp "$BUILD/java-classes:$PACK/lib/*" io.skipgpt.cli.Main bench --shape "$shape" $MODEL_BENCH_ARGS \
                    --precision "$precision" --device cuda
                [[ $step_rc == 0 ]] || model_failed=$step_rc
                model_time=$((model_time + step_time))
                echo >>"$OUT/model-bench.log"
            done
        done
        step_time=$model_time
        record "model bench" "$([[ $model_failed == 0 ]] && echo ok || echo "FAILED (exit $model_failed)")"
    else
        step_time=0
        echo "skipped: no device" >>"$OUT/java-bench.log"
        record "java bench" "skipped: no device"
        echo "skipped: no device" >>"$OUT/model-bench.log"
        record "model bench" "skipped: no device"
    fi
else
    step_time=0
    echo "no Java pack at ${SKIPGPT_GPU_PACK:-.gpu-pack} (make one with tests/gpu/pack.sh)" | tee -a "$OUT/java-tests.log"
    record "java tests" "skipped: no Java pack"
fi

# ---------------------------------------------------------------- PyTorch baseline
# The same shapes as the model benchmark, bf16, through PyTorch (transformers' LlamaForCausalLM when installed).
run_step "torch baseline" torch.log timeout 150 python3 tests/gpu/torch_baseline.py --models "${MODEL_SHAPES// /,}" \
    --layers "$MODEL_LAYERS" --prefill "$MODEL_PROMPT" --batch "$MODEL_BATCH" --context "$MODEL_CONTEXT" --json "$OUT/torch.jsonl"
if [[ $step_rc == 0 ]] && grep -q '^skipped' "$OUT/torch.log"; then
    record "torch baseline" "$(grep -m1 '^skipped' "$OUT/torch.log")"
else
    record "torch baseline" "$([[ $step_rc == 0 ]] && echo ok || echo "FAILED (exit $step_rc)")"
fi

# ---------------------------------------------------------------- results
# The output of one test, cut out of CTest's full log (between its "Output:" rule and "<end of output>").
test_output() {
    [[ -f $OUT/ctest-full.log ]] || return 0
    awk -v name="$1" '
        $0 ~ "Testing: " name "$" { mine = 1; next }
        mine && /^-+$/ && !inside { inside = 1; next }
        mine && inside && /^<end of output>/ { exit }
        mine && inside { print }' "$OUT/ctest-full.log"
}

{
    echo "# GPU results"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "- commit: $commit"
    echo "- machine: $(uname -n), $(nproc) cores; GPU: $gpu_line"
    echo "- command: OUT=$OUT bash tests/gpu/run.sh"
    echo
    echo "## Steps"
    echo
    echo "| step | result | time |"
    echo "|---|---|---|"
    printf '%s\n' "${steps[@]}"
    echo
    echo "## CTest"
    echo
    echo '```'
    echo "$ctest_summary"
    echo '```'
    echo
    echo "## CUDA kernels against their CPU twins (test_cuda_kernels)"
    echo
    echo '```'
    test_output cuda_kernels
    echo '```'
    echo
    echo "## Benchmark (bench_cuda_rows)"
    echo
    cat "$OUT/bench.log"
    echo
    echo "## Java GPU tests (CudaBackendTest, CudaTrainingParityTest: against the reference backend)"
    echo
    echo "$java_summary"
    echo
    echo '```'
    grep -E '^(OK cuda|CUDA backend on|PARITY )' "$OUT/java-tests.log"
    grep -E '(✘|\[X\]|FAILED|Exception|Error:)' "$OUT/java-tests.log" | head -40
    echo '```'
    echo
    echo "## cuBLAS matmul through CudaBackend (CudaMatmulBench)"
    echo
    cat "$OUT/java-bench.log"
    echo
    echo "## Dense vs routed on LLaMA layer shapes (skipgpt bench --device cuda, random weights)"
    echo
    cat "$OUT/model-bench.log"
    echo
    echo "## PyTorch baseline (tests/gpu/torch_baseline.py)"
    echo
    cat "$OUT/torch.log"
} >"$RESULTS"

echo
echo "results: $RESULTS"
if ((${#failures[@]})); then
    echo "FAILED: ${failures[*]}"
    exit 1
fi
echo "all steps ok"
