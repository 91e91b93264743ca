#!/usr/bin/env bash
# Where a training step's time goes on the GPU: exports a benchmark model (../shared/bench's
# torch_baseline.py, one cheap timing so that the ONNX file exists), compiles it with dlcc and
# runs a few steps under DLCC_PROFILE=1 (runtime/rt_prof.c): one line per kernel, cuBLAS shape
# and copy, sorted by total time.
#   bench/profile.sh BUILD_DIR SHARED_BENCH_DIR OUT_DIR MODEL [PRECISION] [STEPS]
set -euo pipefail
B=$(cd "$1" && pwd); SB=$2; O=$3; m=$4; p=${5:-fp32}; steps=${6:-3}
export DLCC_BINARY_DIR=${DLCC_BINARY_DIR:-$B} DLCC_SOURCE_DIR=${DLCC_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
mkdir -p "$O"
ids=""
case $m in
  mlp) batch=128; opt="--optimizer momentum --lr 0.01 --momentum 0.9" ;;
  resnet18) batch=256; opt="--optimizer momentum --lr 0.1 --momentum 0.9 --weight-decay 5e-4" ;;
  gpt2s) batch=8; ids="--ids 50257"; opt="--optimizer adamw --lr 3e-4 --weight-decay 0.1" ;;
  *) echo "unknown model $m" >&2; exit 2 ;;
esac
[ -f "$O/$m.onnx" ] || ${DLCC_PYTHON:-python3} "$SB/torch_baseline.py" --models "$m" --modes eager32 --steps 1 --warmup 1 \
  --out "$O" >/dev/null
flags="--precision $p"; [ "$p" = unfused ] && flags="--precision fp32 --no-fuse"
"$B/bin/dlcc" "$O/$m.onnx" -o "$O/${m}_prof_$p.so" $opt $flags --batch $batch 2>/dev/null
DLCC_PROFILE=1 "$B/bin/dlcc-bench" "$O/${m}_prof_$p.so" --batch $batch --steps "$steps" --warmup 1 --device cuda $ids 2>&1
