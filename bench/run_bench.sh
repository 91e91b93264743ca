#!/usr/bin/env bash
# Training-step benchmark against PyTorch, on the GPU (../shared/bench fixes the workloads and the
# timing). For each model: PyTorch (torch_baseline.py: eager fp32 / bf16, torch.compile bf16,
# CUDA graphs bf16 — the modes in $MODES_<model>), then dlcc on the very same network (the ONNX file
# the baseline script exports), timed by bench/bench_train.c, in the same run.
#   bench/run_bench.sh BUILD_DIR SHARED_BENCH_DIR OUT_DIR [MODELS]     (MODELS: mlp,resnet18,gpt2s)
#   PRECISIONS="fp32 bf16 fp16" (default fp32): dlcc is compiled and timed once per precision;
#   NO_FUSE=1 adds an unfused fp32 build (DLCC_NO_FUSE=1) for the before/after-fusion figure.
set -uo pipefail
B=$(cd "$1" && pwd); SB=$2; O=$3; MODELS=${4:-mlp}
export DLCC_BINARY_DIR=${DLCC_BINARY_DIR:-$B} DLCC_SOURCE_DIR=${DLCC_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
mkdir -p "$O"
PY=${DLCC_PYTHON:-python3}
for m in ${MODELS//,/ }; do
  ids=""
  case $m in
    mlp) modes=${MODES_mlp:-eager32,eager16,compile16,graphs16}; batch=128
         opt="--optimizer momentum --lr 0.01 --momentum 0.9" ;;
    resnet18) modes=${MODES_resnet18:-eager32,compile16}; batch=256
         opt="--optimizer momentum --lr 0.1 --momentum 0.9 --weight-decay 5e-4" ;;
    gpt2s) modes=${MODES_gpt2s:-eager32,eager16,compile16}; batch=8; ids="--ids 50257"
         opt="--optimizer adamw --lr 3e-4 --weight-decay 0.1" ;;
    *) echo "unknown model $m" >&2; exit 2 ;;
  esac
  $PY "$SB/torch_baseline.py" --models "$m" --modes "$modes" --out "$O" | tee "$O/torch_$m.txt"
  "$B/bin/dlcc" info "$O/$m.onnx" --batch $batch $opt | tee "$O/info_$m.txt"
  for p in ${PRECISIONS:-fp32} ${NO_FUSE:+unfused}; do
    t0=$(date +%s)
    flags="--precision $p"; [ "$p" = unfused ] && flags="--precision fp32 --no-fuse"
    "$B/bin/dlcc" "$O/$m.onnx" -o "$O/${m}_dlcc_$p.so" $opt $flags --batch $batch && \
      echo "dlcc compile of $m ($p): $(( $(date +%s) - t0 )) s" && \
      "$B/bin/dlcc-bench" "$O/${m}_dlcc_$p.so" --batch $batch --steps ${STEPS:-50} --warmup 5 --device cuda $ids |
        tee "$O/dlcc_${m}_$p.txt"
  done
done
