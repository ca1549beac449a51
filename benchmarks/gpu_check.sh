#!/usr/bin/env bash
# Every check that needs a GPU, in one command, for a machine with an NVIDIA GPU, numba-cuda
# and torch (CUDA); it needs no network and no install (it runs from the checkout):
#
#     bash benchmarks/gpu_check.sh [OUTDIR]        # logs in OUTDIR (default gpu-check/)
#
# 1. the GPU, its driver and the library versions (versions.txt);
# 2. the CUDA test-suite on the real device: TINYCNN_TEST_GPU=1 python -m pytest tests/cuda
#    (tests.log; every kernel is compiled for the GPU on first use, most of the time here);
# 3. python -m benchmarks.gpu: the figures the README reports (bench.log).
# Each step has a time limit (TESTS_S, BENCH_S seconds) so the whole ends within ~10 minutes.
# The exit status is non-zero when the tests or the benchmark failed.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-check}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1

{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  python -c "
import sys
from importlib.metadata import version
print('python', sys.version.split()[0], *(f'{p} {version(p)}' for p in
      ('numpy', 'numba', 'numba-cuda', 'torch')))
import tinycnn as tc
print('tinycnn sees cuda:', tc.cuda.is_available())"
} 2>&1 | tee "$out/versions.txt"

start=$SECONDS
TINYCNN_TEST_GPU=1 timeout "${TESTS_S:-330}" python -m pytest -q -p no:cacheprovider \
  --durations=10 tests/cuda 2>&1 | tee "$out/tests.log"
tests=${PIPESTATUS[0]}
echo "tests: exit $tests after $((SECONDS - start)) s" | tee -a "$out/versions.txt"

start=$SECONDS
timeout "${BENCH_S:-240}" python -m benchmarks.gpu 2>&1 | tee "$out/bench.log"
bench=${PIPESTATUS[0]}
echo "benchmarks.gpu: exit $bench after $((SECONDS - start)) s" | tee -a "$out/versions.txt"

[ "$tests" -eq 0 ] && [ "$bench" -eq 0 ]
