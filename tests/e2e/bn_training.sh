#!/usr/bin/env bash
# BatchNormalization training against torch.optim (tools/fixtures/make_norm.py): a model exported
# in train mode, 10 SGD steps through the command line; per-step losses, final weights and the
# final running statistics (saved under their ONNX initializer names) must match PyTorch. Then
# --load of the saved file restores the running statistics for inference.
source "$(dirname "$0")/lib.bash"
F=$S/tests/fixtures/train
"$DLCC" "$F/bn_mlp.onnx" -o "$T/bn.so" --loss cross_entropy --optimizer sgd --lr 0.1 --batch 4 2>/dev/null
"$DLCC" train "$T/bn.so" --input x="$F/x.npy" --label "$F/y.npy" --batch 4 --steps 10 --no-shuffle \
  --log "$T/bn.csv" --save "$T/bn.safetensors" --device "$DEV" >/dev/null
$CMP csv "$T/bn.csv" "$F/losses_bn_sgd.csv" --col loss --rtol 1e-4 || fail "bn_sgd losses"
$CMP safetensors "$T/bn.safetensors" "$F/final_bn_sgd.safetensors" --rtol 1e-4 --atol 1e-5 \
  --allow-extra || fail "bn_sgd weights and running statistics"
# inference after --load uses the loaded running statistics: same output as the trained model
"$DLCC" run "$T/bn.so" --input x="$F/x.npy" --load "$T/bn.safetensors" --output-dir "$T/a" --device "$DEV"
"$DLCC" run "$T/bn.so" --input x="$F/x.npy" --output-dir "$T/b" --device "$DEV"
if $CMP npy "$T/a/logits.npy" "$T/b/logits.npy" --rtol 1e-6 --atol 1e-7 >/dev/null 2>&1; then
  fail "bn_sgd: --load changed nothing (running statistics not loaded?)"
fi
echo "ok bn_sgd"
