#!/usr/bin/env bash
# The GPU suite: on a machine with an NVIDIA GPU, every end-to-end test with the artifacts on the
# GPU (--device cuda) — the mixed-precision and epilogue tests among them — then `dlcc check` of
# every fixture model in fp32, fp16 and bf16 on the GPU against the interpreter in the same
# precision. The benchmark is separate: PRECISIONS="fp32 bf16 fp16" NO_FUSE=1 bench/run_bench.sh.
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
for p in fp32 fp16 bf16; do
  ok=0; bad=""
  for m in samples/mlp/mlp.onnx tests/fixtures/models/*.onnx tests/fixtures/train/*.onnx; do
    if "$B/bin/dlcc" check "$m" --precision "$p" --steps 3 --optimizer adam --device cuda >/tmp/gpu_suite_check.log 2>&1
    then ok=$((ok+1)); else bad+=" $(basename "$m")"; tail -3 /tmp/gpu_suite_check.log; fi
  done
  if [ -z "$bad" ]; then r=PASS; pass=$((pass+1)); else r=FAIL; failn=$((failn+1)); fi
  summary+=$(printf '%-16s %s  %d models%s' "check-$p" "$r" "$ok" "${bad:+, failed:$bad}")$'\n'
done
echo "== GPU suite summary ($gpu) =="
printf '%s' "$summary"
echo "$pass passed, $failn failed"
[ "$failn" = 0 ]
