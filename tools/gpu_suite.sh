#!/usr/bin/env bash
# The GPU suite: on a machine with an NVIDIA GPU, every end-to-end test with the artifacts on the
# GPU (--device cuda) — the mixed-precision and epilogue tests among them — then `dlcc check` of
# every fixture model in fp32, fp16 and bf16 on the GPU against the interpreter in the same
# precision, and which cuBLASLt epilogues pass their self-check on this GPU. The benchmark is
# separate: PRECISIONS="fp32 bf16 fp16" NO_FUSE=1 bench/run_bench.sh.
# Tests run DLCC_SUITE_JOBS at a time (default 8; they share the GPU, so no timings are taken here).
# Prints one summary; exit status 1 if any test failed.
#   tools/gpu_suite.sh [BUILD_DIR]      (default build/, made by tools/setup.sh)
set -uo pipefail
cd "$(dirname "$0")/.."
B=$(cd "${1:-build}" && pwd)
export DLCC_SOURCE_DIR=$PWD DLCC_BINARY_DIR=$B DLCC_TEST_DEVICE=cuda DLCC_PYTHON=${DLCC_PYTHON:-python3}
JOBS=${DLCC_SUITE_JOBS:-8}
L=${DLCC_SUITE_LOGS:-$(mktemp -d /tmp/gpu_suite-XXXXXX)}; mkdir -p "$L"
gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
echo "GPU suite on: ${gpu:-no GPU found}; logs in $L"
slot() { while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done; }
# one job: NAME COMMAND... — writes $L/NAME.log and $L/NAME.rc (exit status) and $L/NAME.ms
job() {
  local n=$1; shift; local t0; t0=$(date +%s%N)
  "$@" >"$L/$n.log" 2>&1; echo $? >"$L/$n.rc"
  echo $(( ($(date +%s%N) - t0) / 1000000 )) >"$L/$n.ms"
}
for t in tests/e2e/*.sh; do slot; job "e2e-$(basename "$t" .sh)" bash "$t" "$B" & done
models=(samples/mlp/mlp.onnx tests/fixtures/models/*.onnx tests/fixtures/train/*.onnx)
for p in fp32 fp16 bf16; do
  for m in "${models[@]}"; do
    slot; job "check-$p-$(basename "$m" .onnx)" "$B/bin/dlcc" check "$m" --precision "$p" --steps 3 \
      --optimizer adam --device cuda &
  done
done
# which cuBLASLt epilogues pass their first-use self-check on this GPU (runtime/rt_cublaslt.c)
for p in fp32 fp16 bf16; do
  for m in samples/mlp/mlp.onnx tests/fixtures/models/gelu_mlp.onnx; do
    slot; job "lt-$p-$(basename "$m" .onnx)" env DLCC_VERBOSE=1 "$B/bin/dlcc" check "$m" --precision "$p" \
      --steps 2 --device cuda &
  done
done
wait
pass=0; failn=0; summary=""
for t in tests/e2e/*.sh; do
  n=$(basename "$t" .sh); f=$L/e2e-$n
  if [ "$(cat "$f.rc")" = 0 ]; then r=PASS; pass=$((pass+1)); else r=FAIL; failn=$((failn+1)); echo "== $n"; tail -20 "$f.log"; fi
  dev=$(grep -o -m1 'on cuda[^,]*\|on cpu emulation' "$f.log" || true)
  summary+=$(printf '%-18s %s  %6.1f s  %s' "$n" "$r" "$(cat "$f.ms")e-3" "$dev")$'\n'
done
for p in fp32 fp16 bf16; do
  ok=0; bad=""
  for m in "${models[@]}"; do
    f=$L/check-$p-$(basename "$m" .onnx)
    if [ "$(cat "$f.rc")" = 0 ]; then ok=$((ok+1)); else bad+=" $(basename "$m")"; echo "== $p $m"; tail -3 "$f.log"; fi
  done
  if [ -z "$bad" ]; then r=PASS; pass=$((pass+1)); else r=FAIL; failn=$((failn+1)); fi
  summary+=$(printf '%-18s %s  %d models%s' "check-$p" "$r" "$ok" "${bad:+, failed:$bad}")$'\n'
done
lt=$(cat "$L"/lt-*.log 2>/dev/null | grep -o 'cuBLASLt epilogue .*' | sort -u)
summary+="cuBLASLt epilogues (self-checks):"$'\n'"${lt:-  none reported}"$'\n'
echo "== GPU suite summary ($gpu) =="
printf '%s' "$summary"
echo "$pass passed, $failn failed"
[ "$failn" = 0 ]
