#!/bin/bash
# bench/counts.sh BUILD_DIR — per-step counts of the training step, from the compiler alone (no
# GPU): kernel launches, cuBLAS calls, bytes read+written (every launched node's distinct
# operands and results at the planned batch, plus end-of-step copies), and the workspace of the
# memory plan against its lower bound and a naive one-buffer-per-tensor layout (see `dlcc info`
# for what the lower bound includes). Models: the benchmark MLP 784-1024-1024-10 (written by
# bench/make_mlp_onnx.py), samples/mlp/mlp.onnx, every end-to-end fixture model and the GPT-style
# decoder of the architecture references (tests/fixtures/arch/gpt.onnx). All at
# batch 128 with SGD momentum (the benchmark's setting), in fp32 or the precision given as the
# second argument (fp16, bf16: mixed precision). Prints a Markdown table.
set -euo pipefail
build=${1:?usage: bench/counts.sh BUILD_DIR [fp32|fp16|bf16]}
prec=${2:-fp32}
src=$(cd "$(dirname "$0")/.." && pwd)
dlcc=$build/bin/dlcc
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 "$src/bench/make_mlp_onnx.py" "$tmp/bench_mlp_784-1024-1024-10.onnx"
echo "| model (training step, batch 128, SGD momentum, $prec) | kernel launches | cuBLAS calls | bytes read+written | workspace | lower bound | workspace / lower bound | naive |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for m in "$tmp/bench_mlp_784-1024-1024-10.onnx" "$src/samples/mlp/mlp.onnx" \
	 "$src"/tests/fixtures/models/*.onnx "$src"/tests/fixtures/train/*.onnx "$src/tests/fixtures/arch/gpt.onnx"; do
	"$dlcc" info "$m" --counts --batch 128 --optimizer momentum --precision "$prec"
done
