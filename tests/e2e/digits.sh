#!/usr/bin/env bash
# The demo in miniature: the sample MLP learns the handwritten digits (held-out accuracy > 90%).
source "$(dirname "$0")/lib.bash"
D=$S/samples/data
"$DLCC" "$S/samples/mlp/mlp.onnx" -o "$T/mlp.so" --optimizer adam --lr 0.002 --batch 64 2>/dev/null
"$DLCC" train "$T/mlp.so" --input x="$D/digits_train_x.npy" --label "$D/digits_train_y.npy" \
  --batch 64 --epochs 8 --seed 1 --eval-input x="$D/digits_test_x.npy" \
  --eval-label "$D/digits_test_y.npy" --device "$DEV" | tee "$T/log"
acc=$(sed -n 's/^held-out accuracy: \([0-9.]*\)%.*/\1/p' "$T/log")
[ -n "$acc" ] || fail "no accuracy printed"
awk -v a="$acc" 'BEGIN { exit !(a > 90) }' || fail "held-out accuracy $acc% is not above 90%"
echo "ok digits: $acc%"
