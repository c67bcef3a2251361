#!/usr/bin/env bash
# One-shot GPU check for initsim's CUDA backend (issue 8). Run from the repository root:
#
#     bash scripts/gpu_device_check.sh
#
# On a machine with an NVIDIA GPU, numba-cuda and (optionally) torch; the tree
# need not be installed (PYTHONPATH=.). Every step runs even if an earlier one
# fails; all logs and the benchmark JSON go to $OUT (default ./gpu_check_out).
# Steps (about 6-8 minutes, most of it Numba compilation):
#   1. environment (nvidia-smi, versions)              -> env.txt
#   2. CUDA-simulator tests, in the background (CPU)   -> pytest_cudasim.log
#   3. GPU agreement tests (GPU vs CPU engine)         -> pytest_device.log, junit_device.xml
#   4. benchmark vs torch                              -> bench.txt, bench.json
#   5. summary                                         -> summary.txt (also printed)
# Set INITSIM_BENCH_ARGS to pass extra options to scripts/bench_gpu.py (e.g. --tiny).
# The step timeouts (INITSIM_TEST_TIMEOUT=360, INITSIM_BENCH_TIMEOUT=200 s) keep the
# worst case inside one 10-minute command.
set -u

OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-/tmp/initsim_numba_cache}"
export PYTHONDONTWRITEBYTECODE=1
PY="${PYTHON:-python}"
T_TESTS="${INITSIM_TEST_TIMEOUT:-360}"
T_BENCH="${INITSIM_BENCH_TIMEOUT:-200}"
start=$(date +%s)

step() { echo "== [$(($(date +%s) - start))s] $*"; }

# 1. environment
step "environment"
{
    date -u
    nvidia-smi 2>&1 || echo "nvidia-smi failed"
    "$PY" - <<'EOF' 2>&1
import platform, numpy, numba
print("python", platform.python_version(), "numpy", numpy.__version__, "numba", numba.__version__)
try:
    import numba_cuda
    print("numba_cuda", numba_cuda.__version__)
except Exception as exc:
    print("numba_cuda import failed:", exc)
from numba import cuda
print("cuda.is_available()", cuda.is_available())
if cuda.is_available():
    d = cuda.get_current_device()
    print("device", d.name, "cc", d.compute_capability)
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.cuda.is_available())
except Exception as exc:
    print("torch import failed:", exc)
EOF
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# 2. simulator tests in the background (CPU only; they run tests/test_gpu_device.py under CUDASIM)
step "CUDA-simulator tests (background)"
(
    timeout 400 "$PY" -m pytest -q -p no:cacheprovider -rs tests/test_gpu_cudasim.py \
        >"$OUT/pytest_cudasim.log" 2>&1
    echo "exit $?" >>"$OUT/pytest_cudasim.log"
) &
sim_pid=$!

# 3. GPU agreement tests
step "GPU agreement tests (timeout ${T_TESTS}s)"
timeout "$T_TESTS" "$PY" -m pytest -v -p no:cacheprovider -rs --durations=15 \
    --junitxml="$OUT/junit_device.xml" tests/test_gpu_device.py >"$OUT/pytest_device.log" 2>&1
rc_device=$?
tail -n 25 "$OUT/pytest_device.log"

# 4. benchmark
step "benchmark (timeout ${T_BENCH}s)"
# shellcheck disable=SC2086
timeout "$T_BENCH" "$PY" scripts/bench_gpu.py --end-to-end --json "$OUT/bench.json" \
    ${INITSIM_BENCH_ARGS:-} >"$OUT/bench.txt" 2>&1
rc_bench=$?
cat "$OUT/bench.txt"

# 5. summary
step "waiting for the simulator tests"
wait "$sim_pid"
rc_sim=$(tail -n 1 "$OUT/pytest_cudasim.log" | sed -n 's/^exit //p')
{
    echo "initsim GPU check, $(date -u), $(($(date +%s) - start)) s"
    echo "device tests   : exit $rc_device  | $(grep -E '[0-9]+ (passed|failed)' "$OUT/pytest_device.log" | tail -n 1)"
    echo "simulator tests: exit ${rc_sim:-?}  | $(grep -E '[0-9]+ (passed|failed)' "$OUT/pytest_cudasim.log" | tail -n 1)"
    echo "benchmark      : exit $rc_bench"
    grep -E "unit-layers/s|^ratio|^target|FAILED|torch" "$OUT/bench.txt" || true
    [ "$rc_device" = 124 ] && echo "device tests TIMED OUT after ${T_TESTS}s"
    [ "$rc_bench" = 124 ] && echo "benchmark TIMED OUT after ${T_BENCH}s"
    echo "outputs in $OUT: $(ls "$OUT" | tr '\n' ' ')"
} | tee "$OUT/summary.txt"
