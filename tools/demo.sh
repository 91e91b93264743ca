#!/usr/bin/env bash
# The demo: build dlcc, compile the sample MLP (samples/mlp/mlp.onnx) into a training library and
# train it on the UCI handwritten digits, printing one line per epoch and the held-out accuracy.
# Runs on the GPU when one is found, otherwise in the CPU emulation of the same generated code.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh >/dev/null
mkdir -p out
D=samples/data
dlcc=${DLCC_BUILD:-build}/bin/dlcc # the build tools/setup.sh made
$dlcc samples/mlp/mlp.onnx -o out/mlp.so --optimizer adam --lr 0.001 --batch 64
$dlcc train out/mlp.so --input x=$D/digits_train_x.npy --label $D/digits_train_y.npy \
  --batch 64 --epochs ${EPOCHS:-20} --seed 1 --eval-input x=$D/digits_test_x.npy \
  --eval-label $D/digits_test_y.npy --save out/mlp_trained.safetensors ${DLCC_DEVICE_ARG:-}
echo "trained parameters: out/mlp_trained.safetensors"
