#!/usr/bin/env bash
# Training-step benchmark against PyTorch, on the GPU (shared/bench fixes the workloads):
# PyTorch eager fp32 / bf16, torch.compile bf16 and CUDA graphs bf16 on the MLP
# (784-1024-1024-10, batch 128, SGD momentum 0.9, lr 0.01), then dlcc on the very same network
# (the ONNX file the baseline script exports), in the same run.
#   bench/run_bench.sh BUILD_DIR SHARED_BENCH_DIR OUT_DIR
set -euo pipefail
B=$(cd "$1" && pwd); SB=$2; O=$3
mkdir -p "$O"
PY=${DLCC_PYTHON:-python3}
$PY "$SB/torch_baseline.py" --models mlp --modes eager32,eager16,compile16,graphs16 --out "$O" | tee "$O/torch.txt"
"$B/bin/dlcc" "$O/mlp.onnx" -o "$O/mlp_dlcc.so" --optimizer momentum --lr 0.01 --momentum 0.9 --batch 128
"$B/bin/dlcc-bench" "$O/mlp_dlcc.so" --batch 128 --steps 100 --warmup 10 --device cuda | tee "$O/dlcc.txt"
"$B/bin/dlcc" info "$O/mlp.onnx" --batch 128 --optimizer momentum --momentum 0.9 | tee "$O/info.txt"
