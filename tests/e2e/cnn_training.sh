#!/usr/bin/env bash
# Training a small CNN (Conv-Relu-MaxPool-Conv(groups 2)-Relu-AveragePool-Flatten-Gemm) through the
# command-line contract against torch.optim: 10 steps of SGD and of Adam, batch 4, per-step losses
# and final weights (tests/fixtures/train_cnn, made by tools/fixtures/make_conv.py).
source "$(dirname "$0")/lib.bash"
F=$S/tests/fixtures/train_cnn
run() { # name compile-options...
  local name=$1; shift
  "$DLCC" "$F/cnn.onnx" -o "$T/$name.so" --loss cross_entropy "$@" --batch 4 2>/dev/null
  "$DLCC" train "$T/$name.so" --input x="$F/x.npy" --label "$F/y.npy" --batch 4 --steps 10 \
    --no-shuffle --log "$T/$name.csv" --save "$T/$name.safetensors" --device "$DEV" >/dev/null
  $CMP csv "$T/$name.csv" "$F/losses_$name.csv" --col loss --rtol 1e-4 || fail "cnn $name losses"
  $CMP safetensors "$T/$name.safetensors" "$F/final_$name.safetensors" --rtol 1e-4 --atol 1e-5 \
    --allow-extra || fail "cnn $name weights"
  echo "ok cnn $name"
}
run sgd --optimizer sgd --lr 0.1
run adam --optimizer adam --lr 0.01
