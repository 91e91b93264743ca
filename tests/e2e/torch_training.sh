#!/usr/bin/env bash
# Training through the command-line contract against torch.optim: 10 steps of SGD, SGD with
# momentum, SGD with weight decay, Adam and AdamW on an MLP (cross-entropy), and SGD on a
# regression MLP (mse): per-step losses and final weights (tests/fixtures/train/README.md).
source "$(dirname "$0")/lib.bash"
F=$S/tests/fixtures/train
run() { # name model loss label compile-options...
  local name=$1 model=$2 loss=$3 label=$4; shift 4
  "$DLCC" "$F/$model" -o "$T/$name.so" --loss "$loss" "$@" --batch 4 2>/dev/null
  "$DLCC" train "$T/$name.so" --input x="$F/x.npy" --label "$F/$label" --batch 4 --steps 10 \
    --no-shuffle --log "$T/$name.csv" --save "$T/$name.safetensors" --device "$DEV" >/dev/null
  $CMP csv "$T/$name.csv" "$F/losses_$name.csv" --col loss --rtol 1e-4 || fail "$name losses"
  $CMP safetensors "$T/$name.safetensors" "$F/final_$name.safetensors" --rtol 1e-4 --atol 1e-5 \
    --allow-extra || fail "$name weights"
  echo "ok $name"
}
run sgd mlp_small.onnx cross_entropy y.npy --optimizer sgd --lr 0.1
run momentum mlp_small.onnx cross_entropy y.npy --optimizer momentum --lr 0.1 --momentum 0.9
run sgd_wd mlp_small.onnx cross_entropy y.npy --optimizer sgd --lr 0.1 --weight-decay 0.01
run adam mlp_small.onnx cross_entropy y.npy --optimizer adam --lr 0.01
run adamw mlp_small.onnx cross_entropy y.npy --optimizer adamw --lr 0.01 --weight-decay 0.1
run mse mlp_reg.onnx mse y_reg.npy --optimizer sgd --lr 0.05
