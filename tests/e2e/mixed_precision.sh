#!/usr/bin/env bash
# Mixed precision (--precision fp16|bf16):
#  1. the generated half-precision kernels equal the interpreter run in the same precision
#     (`dlcc check`: f32 interpreter with the same fp16/bf16 roundings) on the e2e models;
#  2. fp16 and bf16 training of the MLP and the GPT-style decoder follow the fp32 loss curve over
#     50 steps (the largest difference is printed and bounded);
#  3. dynamic loss scaling recovers from overflow: an initial scale of 2^30 makes the first fp16
#     steps overflow; they are skipped (identically in the artifact and the interpreter), the scale
#     halves until the gradients fit, then training proceeds; the scale is saved in checkpoints.
source "$(dirname "$0")/lib.bash"
F=$S/tests/fixtures
D=$S/samples/data

for m in "$S/samples/mlp/mlp.onnx" "$F/models/cnn.onnx" "$F/models/attention.onnx" "$F/models/conv1d.onnx"; do
  for p in fp16 bf16; do
    "$DLCC" check "$m" --precision "$p" --steps 3 --optimizer adam --device "$DEV" > "$T/check.txt" ||
      { cat "$T/check.txt" >&2; fail "$(basename "$m") $p: dlcc check"; }
  done
  echo "ok $(basename "$m"): fp16 and bf16 kernels equal the interpreter in the same precision"
done

# the .dl training section's `precision = fp16` selects the same program as the flag
sed 's/^  batch = 64$/  batch = 64\n  precision = fp16/' "$S/samples/mlp/mlp.dl" > "$T/mlp16.dl"
grep -q 'precision = fp16' "$T/mlp16.dl" || fail "could not write the fp16 .dl variant"
"$DLCC" "$T/mlp16.dl" --emit ir -o "$T/mlp16.ir" 2>/dev/null
grep -q 'f16\[N,64\] = Cast(%x)' "$T/mlp16.ir" && grep -q 'AllFinite' "$T/mlp16.ir" ||
  fail ".dl precision = fp16: no half-precision casts or loss scaling in the IR"
"$DLCC" check "$T/mlp16.dl" --steps 3 --device "$DEV" > "$T/check.txt" || { cat "$T/check.txt" >&2; fail "mlp16.dl: dlcc check"; }
echo "ok .dl precision = fp16"

# loss curves: NAME MODEL X Y BATCH COMPILE-FLAGS...
curve() {
  local name=$1 model=$2 x=$3 y=$4 b=$5; shift 5
  for p in fp32 fp16 bf16; do
    "$DLCC" "$model" -o "$T/$name-$p.so" --precision "$p" --batch "$b" "$@" 2>/dev/null
    "$DLCC" train "$T/$name-$p.so" --input x="$x" --label "$y" --batch "$b" --steps 50 --no-shuffle \
      --log "$T/$name-$p.csv" --device "$DEV" > "$T/$name-$p.log"
  done
  for p in fp16 bf16; do
    # largest |loss - fp32 loss| over the 50 steps, and relative to the fp32 loss there
    d=$(paste -d, "$T/$name-fp32.csv" "$T/$name-$p.csv" | awk -F, 'NR > 1 {
          e = $2 - $4; if (e < 0) e = -e; r = e / ($2 > 0 ? $2 : 1); if (r > w) { w = r; a = e; s = $1 } }
          END { printf "%.3g %.3g %d", w, a, s }')
    set -- $d
    echo "$name $p: largest loss difference from fp32 over 50 steps: $2 (relative $1, step $3)"
    awk -v r="$1" 'BEGIN { exit !(r < 0.02) }' || fail "$name $p departs from the fp32 loss curve (relative $1)"
  done
  first=$(sed -n 2p "$T/$name-fp16.csv" | cut -d, -f2); last=$(tail -1 "$T/$name-fp16.csv" | cut -d, -f2)
  awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' || fail "$name fp16: loss did not go down ($first -> $last)"
}
curve mlp "$S/samples/mlp/mlp.onnx" "$D/digits_train_x.npy" "$D/digits_train_y.npy" 64 --optimizer adam --lr 0.002
curve gpt "$F/arch/gpt.onnx" "$F/arch/gpt_train_x.npy" "$F/arch/gpt_train_y.npy" 6 --loss cross_entropy --optimizer adam --lr 0.003
grep -q "0 of 50 steps skipped" "$T/mlp-fp16.log" || fail "mlp fp16 skipped steps at the default scale"

# forced overflow: the artifact and the interpreter skip the same steps and agree afterwards
"$DLCC" check "$S/samples/mlp/mlp.onnx" --precision fp16 --loss-scale 1073741824 --optimizer adam --steps 30 \
  --device "$DEV" > "$T/check.txt" || { cat "$T/check.txt" >&2; fail "forced overflow: dlcc check"; }
"$DLCC" "$S/samples/mlp/mlp.onnx" -o "$T/ovf.so" --precision fp16 --loss-scale 1073741824 --optimizer adam \
  --lr 0.002 --batch 64 2>/dev/null
"$DLCC" train "$T/ovf.so" --input x="$D/digits_train_x.npy" --label "$D/digits_train_y.npy" --batch 64 \
  --steps 60 --no-shuffle --log "$T/ovf.csv" --save "$T/ovf.safetensors" --device "$DEV" > "$T/ovf.log"
cat "$T/ovf.log"
read -r scale skipped < <(sed -n 's/^fp16 loss scale: \([0-9.e+]*\) (\([0-9]*\) of .*/\1 \2/p' "$T/ovf.log")
[ -n "${skipped:-}" ] || fail "forced overflow: no loss-scale line"
awk -v k="$skipped" -v s="$scale" 'BEGIN { exit !(k > 0 && k < 40 && s < 1073741824) }' ||
  fail "forced overflow: $skipped steps skipped, scale $scale (expected some skipped and a smaller scale)"
first=$(sed -n 2p "$T/ovf.csv" | cut -d, -f2); last=$(tail -1 "$T/ovf.csv" | cut -d, -f2)
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.2) }' || fail "forced overflow: no recovery ($first -> $last)"
grep -a -q 'dlcc.loss_scale_log2' "$T/ovf.safetensors" || fail "the loss scale is not in the checkpoint"
echo "ok forced overflow: $skipped steps skipped, scale 2^30 -> $scale, loss $first -> $last, scale checkpointed"
