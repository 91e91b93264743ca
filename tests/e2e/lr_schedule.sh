#!/usr/bin/env bash
# Learning-rate schedules (docs/dl.md) against torch.optim.lr_scheduler: mlp_small trained 10
# steps with StepLR (sgd), warm-up + CosineAnnealingLR (momentum), CosineAnnealingLR held at
# min_lr (adamw) and a linear warm-up alone (adam), compiled with the schedule flags; per-step
# losses and final weights (tools/fixtures/make_sched.py); a run resumed from a saved file goes
# on with the schedule. Then `dlcc check` (the update kernels
# against the interpreter) through warm-up, decay and hold; the same schedule read from a .dl
# file's train { } section; and bad schedule flags, one line and exit status 2.
source "$(dirname "$0")/lib.bash"
F=$S/tests/fixtures/train
train_cmp() { # name artifact [train options...]: train 10 steps, compare with the reference
  local name=$1 so=$2; shift 2
  "$DLCC" train "$so" --input x="$F/x.npy" --label "$F/y.npy" --batch 4 --steps 10 --no-shuffle \
    --log "$T/$name.csv" --save "$T/$name.safetensors" --device "$DEV" "$@" >/dev/null
  $CMP csv "$T/$name.csv" "$F/losses_$name.csv" --col loss --rtol 1e-4 >/dev/null || fail "$name losses"
  $CMP safetensors "$T/$name.safetensors" "$F/final_$name.safetensors" --rtol 1e-4 --atol 1e-5 \
    --allow-extra >/dev/null || fail "$name weights"
}
run() { # name compile-options...
  local name=$1; shift
  "$DLCC" "$F/mlp_small.onnx" -o "$T/$name.so" --loss cross_entropy "$@" --batch 4 2>"$T/$name.err"
  grep -q "learning rate: " "$T/$name.err" || fail "$name: no learning-rate note on stderr"
  train_cmp "$name" "$T/$name.so"
  echo "ok $name"
}
run sgd_step --optimizer sgd --lr 0.1 --schedule step --step-size 3 --gamma 0.5
run momentum_cosine_warmup --optimizer momentum --lr 0.1 --momentum 0.9 --schedule cosine --warmup 3 \
  --schedule-steps 6 --min-lr 0.01
run adamw_cosine --optimizer adamw --lr 0.01 --weight-decay 0.1 --schedule cosine --schedule-steps 5 --min-lr 0.001
run adam_warmup --optimizer adam --lr 0.01 --warmup 4

"$DLCC" info "$F/mlp_small.onnx" --optimizer sgd --schedule step --step-size 3 --gamma 0.5 > "$T/info"
grep -q "^optimizer: sgd, learning rate 0.01, times 0.5 every 3 steps" "$T/info" || fail "dlcc info: no schedule"

# the step counter travels in the saved file: 4 steps, save, load, 6 more = the 10-step reference
# (step 4 ends an epoch, so the data order is the same)
"$DLCC" train "$T/momentum_cosine_warmup.so" --input x="$F/x.npy" --label "$F/y.npy" --batch 4 --steps 4 \
  --no-shuffle --save "$T/half.safetensors" --device "$DEV" >/dev/null
"$DLCC" train "$T/momentum_cosine_warmup.so" --input x="$F/x.npy" --label "$F/y.npy" --batch 4 --steps 6 \
  --no-shuffle --load "$T/half.safetensors" --save "$T/resumed.safetensors" --device "$DEV" >/dev/null
$CMP safetensors "$T/resumed.safetensors" "$F/final_momentum_cosine_warmup.safetensors" --rtol 1e-4 \
  --atol 1e-5 --allow-extra >/dev/null || fail "a resumed run does not continue the schedule"
echo "ok resumed after 4 steps: the schedule goes on from step 5"

# the artifact against the interpreter, 9 steps: 2 of warm-up, 4 of cosine, 3 held at min_lr
for opt in sgd momentum adamw; do
  "$DLCC" check "$F/mlp_small.onnx" --optimizer $opt --lr 0.05 --schedule cosine --warmup 2 \
    --schedule-steps 4 --min-lr 0.001 --steps 9 > "$T/check.txt" 2>&1 || { cat "$T/check.txt" >&2; fail "check $opt cosine"; }
done
"$DLCC" check "$F/mlp_small.onnx" --optimizer adam --schedule step --step-size 2 --gamma 0.5 --steps 6 \
  > "$T/check.txt" 2>&1 || { cat "$T/check.txt" >&2; fail "check adam step"; }
echo "ok dlcc check: artifact = interpreter under schedules"

# a .dl model's train { } section: PyTorch's initial weights, momentum + warm-up + cosine
sed '/^train {/,$d' "$S/tests/lit/dsl/Inputs/mlp_small.dl" > "$T/sched.dl"
cat >> "$T/sched.dl" <<'DL'
train {
  loss = cross_entropy
  optimizer = momentum(lr = 0.1, momentum = 0.9)
  schedule = cosine(steps = 6, min_lr = 0.01, warmup = 3)
  batch = 4
}
DL
"$DLCC" "$T/sched.dl" -o "$T/sched_dl.so" 2>/dev/null
train_cmp momentum_cosine_warmup "$T/sched_dl.so" --load "$F/init_mlp_small.safetensors"
echo "ok .dl schedule = cosine(steps = 6, min_lr = 0.01, warmup = 3): PyTorch's losses and weights"

# bad values: one line on stderr, exit status 2
bad() { # expected-message flags...
  local want=$1; shift
  set +e; "$DLCC" "$F/mlp_small.onnx" -o "$T/bad.so" "$@" 2>"$T/bad.err"; local rc=$?; set -e
  [ $rc = 2 ] || fail "$*: exit status $rc, not 2"
  [ "$(wc -l < "$T/bad.err")" = 1 ] && grep -q -- "$want" "$T/bad.err" || { cat "$T/bad.err" >&2; fail "$*: message"; }
}
bad "not a schedule" --schedule linear
bad "needs --step-size" --schedule step
bad "needs --schedule-steps" --schedule cosine --min-lr 0.1
bad "not in (0, 1]" --schedule step --step-size 2 --gamma 2
bad "is not an integer" --warmup -3
bad "applies to --schedule cosine" --schedule step --step-size 2 --min-lr 0.1
echo "ok bad schedule flags"
