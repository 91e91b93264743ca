#!/usr/bin/env bash
# The GPU suite: on a machine with an NVIDIA GPU, every end-to-end test with the artifacts on the
# GPU (--device cuda), then the training-step benchmark against PyTorch (bench/run_bench.sh).
# Prints one summary; exit status 1 if any test failed.
#   tools/gpu_suite.sh [BUILD_DIR]      (default build/, made by tools/setup.sh)
set -uo pipefail
cd "$(dirname "$0")/.."
B=$(cd "${1:-build}" && pwd)
export DLCC_SOURCE_DIR=$PWD DLCC_BINARY_DIR=$B DLCC_TEST_DEVICE=cuda DLCC_PYTHON=${DLCC_PYTHON:-python3}
gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
echo "GPU suite on: ${gpu:-no GPU found}"
pass=0; failn=0; summary=""
for t in tests/e2e/*.sh; do
  n=$(basename "$t" .sh); t0=$(date +%s%N)
  log=${DLCC_SUITE_LOGS:-/tmp}/gpu_suite_$n.log
  if bash "$t" "$B" >"$log" 2>&1; then r=PASS; pass=$((pass+1)); else r=FAIL; failn=$((failn+1)); tail -20 "$log"; fi
  dev=$(grep -o -m1 'on cuda[^,]*\|on cpu emulation' "$log" || true)
  summary+=$(printf '%-16s %s  %6.1f s  %s' "$n" "$r" "$(( ($(date +%s%N) - t0) / 1000000 ))e-3" "$dev")$'\n'
done
echo "== GPU suite summary ($gpu) =="
printf '%s' "$summary"
echo "$pass passed, $failn failed"
[ "$failn" = 0 ]
