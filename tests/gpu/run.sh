#!/usr/bin/env bash
# The one script a GPU machine runs (CUDA toolkit, CMake, no Java, no network). From the repository root:
#   OUT=/some/dir bash tests/gpu/run.sh        (OUT defaults to ./target/gpu-out)
# Builds the native code standalone (no JNI glue), runs CTest (the CUDA kernel checks among it) and the
# CUDA benchmark, and writes everything into $OUT/gpu-results.md, plus one log per step beside it.
# Each step runs even if an earlier one failed, so the results file is always written; the exit status is
# non-zero if any step failed. On a machine without a GPU it still builds, reports the CUDA steps as
# "skipped: no device" and exits 0 (a dry run).
# The commit is taken from $SKIPGPT_COMMIT, else git, else target/gpu-commit.txt (a GPU machine gets the
# working tree without .git: write the file with `git rev-parse HEAD > target/gpu-commit.txt` and carry it).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
OUT=${OUT:-./target/gpu-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 1
BUILD=target/gpu-build
RESULTS=$OUT/gpu-results.md
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
elif [[ -s target/gpu-commit.txt ]]; then
    commit=$(head -1 target/gpu-commit.txt)
else
    commit=unknown
fi

# ---------------------------------------------------------------- build
if ! command -v nvcc >/dev/null 2>&1 && [[ -x /usr/local/cuda/bin/nvcc ]]; then
    export PATH=/usr/local/cuda/bin:$PATH
fi
run_step configure build.log cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSKIPGPT_JNI_DIR=
configure_rc=$step_rc
record configure "$([[ $step_rc == 0 ]] && echo ok || echo "FAILED (exit $step_rc)")"
if [[ $configure_rc == 0 ]]; then
    run_step build build.log timeout 400 cmake --build "$BUILD" -j16
    record build "$([[ $step_rc == 0 ]] && echo ok || echo "FAILED (exit $step_rc)")"
else
    step_time=0
    record build "FAILED (not configured)"
fi
if [[ $have_gpu == 1 && ! -f $BUILD/lib/libskipgpt_cuda.so ]]; then
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
} >"$RESULTS"

echo
echo "results: $RESULTS"
if ((${#failures[@]})); then
    echo "FAILED: ${failures[*]}"
    exit 1
fi
echo "all steps ok"
